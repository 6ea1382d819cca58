//! The protobuf wire format, as far as editing an ONNX file needs it:
//! split a message into its fields (keeping each field's bytes, so a
//! message can be rewritten with one field changed and every other byte
//! kept, unknown fields included), and write fields back.

/// One field's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// A field: its number, payload, and its whole encoding (tag included).
#[derive(Debug, Clone, Copy)]
pub struct Field<'a> {
    pub number: u32,
    pub value: Value<'a>,
    pub encoded: &'a [u8],
}

impl<'a> Field<'a> {
    pub fn bytes(&self) -> Option<&'a [u8]> {
        match self.value {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    pub fn varint(&self) -> Option<u64> {
        match self.value {
            Value::Varint(v) => Some(v),
            _ => None,
        }
    }

    pub fn string(&self) -> Option<&'a str> {
        self.bytes().and_then(|b| std::str::from_utf8(b).ok())
    }
}

fn read_varint(buf: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf
            .get(*at)
            .ok_or_else(|| format!("truncated varint at byte {at}"))?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(format!("varint longer than 10 bytes before byte {at}"))
}

fn take<'a>(buf: &'a [u8], at: &mut usize, n: usize) -> Result<&'a [u8], String> {
    let end = at
        .checked_add(n)
        .filter(|&end| end <= buf.len())
        .ok_or_else(|| format!("field of {n} bytes at byte {at} runs past the end"))?;
    let out = &buf[*at..end];
    *at = end;
    Ok(out)
}

/// The fields of one message, in order.
pub fn fields(buf: &[u8]) -> Result<Vec<Field<'_>>, String> {
    let mut out = vec![];
    let mut at = 0;
    while at < buf.len() {
        let start = at;
        let tag = read_varint(buf, &mut at)?;
        let number = u32::try_from(tag >> 3).map_err(|_| format!("bad tag at byte {start}"))?;
        let value = match tag & 7 {
            0 => Value::Varint(read_varint(buf, &mut at)?),
            1 => Value::Fixed64(u64::from_le_bytes(
                take(buf, &mut at, 8)?.try_into().expect("8 bytes"),
            )),
            2 => {
                let len = read_varint(buf, &mut at)?;
                let len = usize::try_from(len).map_err(|_| "length overflow".to_string())?;
                Value::Bytes(take(buf, &mut at, len)?)
            }
            5 => Value::Fixed32(u32::from_le_bytes(
                take(buf, &mut at, 4)?.try_into().expect("4 bytes"),
            )),
            other => {
                return Err(format!(
                    "wire type {other} at byte {start} is not supported"
                ));
            }
        };
        out.push(Field {
            number,
            value,
            encoded: &buf[start..at],
        });
    }
    Ok(out)
}

/// The varints of a repeated integer field, packed or not.
pub fn repeated_varints(fields: &[Field<'_>], number: u32) -> Result<Vec<u64>, String> {
    let mut out = vec![];
    for f in fields.iter().filter(|f| f.number == number) {
        match f.value {
            Value::Varint(v) => out.push(v),
            Value::Bytes(packed) => {
                let mut at = 0;
                while at < packed.len() {
                    out.push(read_varint(packed, &mut at)?);
                }
            }
            _ => return Err(format!("field {number} is neither varint nor packed")),
        }
    }
    Ok(out)
}

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn put_varint_field(out: &mut Vec<u8>, number: u32, v: u64) {
    put_varint(out, u64::from(number) << 3);
    put_varint(out, v);
}

pub fn put_bytes_field(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    put_varint(out, (u64::from(number) << 3) | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes written by hand from the protobuf encoding guide's examples:
    /// field 1 = 150 (`08 96 01`), field 2 = "testing".
    #[test]
    fn reads_the_encoding_guides_examples() {
        let mut buf = vec![0x08, 0x96, 0x01, 0x12, 0x07];
        buf.extend_from_slice(b"testing");
        buf.extend_from_slice(&[0x1d, 1, 0, 0, 0]); // field 3, fixed32 1
        let f = fields(&buf).unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!((f[0].number, f[0].varint()), (1, Some(150)));
        assert_eq!((f[1].number, f[1].string()), (2, Some("testing")));
        assert_eq!(f[2].value, Value::Fixed32(1));
        assert_eq!(f[1].encoded.len(), 9);

        let mut again = vec![];
        put_varint_field(&mut again, 1, 150);
        put_bytes_field(&mut again, 2, b"testing");
        assert_eq!(again[..], buf[..again.len()]);
    }

    #[test]
    fn packed_and_plain_repeats_read_alike() {
        let mut plain = vec![];
        for v in [3u64, 300, 5] {
            put_varint_field(&mut plain, 1, v);
        }
        let mut packed_payload = vec![];
        for v in [3u64, 300, 5] {
            put_varint(&mut packed_payload, v);
        }
        let mut packed = vec![];
        put_bytes_field(&mut packed, 1, &packed_payload);
        for buf in [plain, packed] {
            assert_eq!(
                repeated_varints(&fields(&buf).unwrap(), 1).unwrap(),
                vec![3, 300, 5]
            );
        }
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        assert!(fields(&[0x12, 0x07, b'a']).is_err());
        assert!(fields(&[0x08, 0x96]).is_err());
        assert!(fields(&[0x0b]).is_err(), "group wire type");
    }
}
