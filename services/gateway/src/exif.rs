//! Carrying a photo's EXIF block into the result: the orientation tag set
//! to "upright" when the pixels were turned at decode, and the GPS
//! position scrubbed unless it is asked for (every GPS entry's value,
//! inline or out of line, zeroed and the GPS directory emptied, so no
//! coordinate survives in the bytes).

use image::metadata::Orientation;

/// The EXIF block to write into the result, from the upload's.
pub fn carried(mut exif: Vec<u8>, turned_upright: bool, keep_gps: bool) -> Vec<u8> {
    if turned_upright {
        // The pixels are upright now: a viewer must not turn them again.
        let _ = Orientation::remove_from_exif_chunk(&mut exif);
    }
    if !keep_gps {
        scrub_gps(&mut exif);
    }
    exif
}

const GPS_POINTER: u16 = 0x8825;

#[derive(Clone, Copy)]
struct Tiff {
    little: bool,
}

impl Tiff {
    fn u16(self, b: &[u8], at: usize) -> Option<u16> {
        let v: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
        Some(if self.little {
            u16::from_le_bytes(v)
        } else {
            u16::from_be_bytes(v)
        })
    }

    fn u32(self, b: &[u8], at: usize) -> Option<u32> {
        let v: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(if self.little {
            u32::from_le_bytes(v)
        } else {
            u32::from_be_bytes(v)
        })
    }
}

/// Bytes per value of a TIFF field type.
fn type_size(ty: u16) -> usize {
    match ty {
        1 | 2 | 6 | 7 => 1,
        3 | 8 => 2,
        4 | 9 | 11 => 4,
        5 | 10 | 12 => 8,
        _ => 0,
    }
}

/// Zeroes every GPS entry's value and the GPS directory's entry count.
/// Returns whether there was a GPS directory. A malformed block is left
/// as it is, except what could be read.
pub fn scrub_gps(exif: &mut [u8]) -> bool {
    let tiff = match exif.get(..4) {
        Some([0x49, 0x49, 42, 0]) => Tiff { little: true },
        Some([0x4d, 0x4d, 0, 42]) => Tiff { little: false },
        _ => return false,
    };
    let Some(ifd0) = tiff.u32(exif, 4).map(|v| v as usize) else {
        return false;
    };
    let Some(count) = tiff.u16(exif, ifd0) else {
        return false;
    };
    let gps = (0..count as usize)
        .map(|i| ifd0 + 2 + 12 * i)
        .find(|&e| tiff.u16(exif, e) == Some(GPS_POINTER))
        .and_then(|e| tiff.u32(exif, e + 8));
    let Some(gps) = gps.map(|v| v as usize) else {
        return false;
    };
    let Some(entries) = tiff.u16(exif, gps) else {
        return false;
    };
    for i in 0..entries as usize {
        let e = gps + 2 + 12 * i;
        let (Some(ty), Some(n)) = (tiff.u16(exif, e + 2), tiff.u32(exif, e + 4)) else {
            break;
        };
        let bytes = type_size(ty).saturating_mul(n as usize);
        if bytes > 4
            && let Some(at) = tiff.u32(exif, e + 8).map(|v| v as usize)
            && let Some(data) = exif.get_mut(at..at.saturating_add(bytes))
        {
            data.fill(0);
        }
        if let Some(entry) = exif.get_mut(e..e + 12) {
            entry.fill(0);
        }
    }
    if let Some(n) = exif.get_mut(gps..gps + 2) {
        n.fill(0);
    }
    true
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A little-endian EXIF block written by hand: IFD0 with Orientation 6
    /// and a GPS pointer; the GPS directory with a latitude reference
    /// ("N", inline) and a latitude (three rationals, out of line).
    pub fn exif_with_gps() -> Vec<u8> {
        let mut e = b"II*\0".to_vec();
        e.extend(8u32.to_le_bytes());
        // IFD0 at 8: two entries.
        e.extend(2u16.to_le_bytes());
        e.extend(0x0112u16.to_le_bytes());
        e.extend(3u16.to_le_bytes());
        e.extend(1u32.to_le_bytes());
        e.extend([6, 0, 0, 0]);
        e.extend(GPS_POINTER.to_le_bytes());
        e.extend(4u16.to_le_bytes());
        e.extend(1u32.to_le_bytes());
        e.extend(38u32.to_le_bytes()); // GPS IFD at 38
        e.extend(0u32.to_le_bytes()); // no next IFD
        assert_eq!(e.len(), 38);
        // GPS IFD at 38: two entries, then the latitude's 24 bytes at 68.
        e.extend(2u16.to_le_bytes());
        e.extend(1u16.to_le_bytes()); // GPSLatitudeRef
        e.extend(2u16.to_le_bytes());
        e.extend(2u32.to_le_bytes());
        e.extend(*b"N\0\0\0");
        e.extend(2u16.to_le_bytes()); // GPSLatitude
        e.extend(5u16.to_le_bytes());
        e.extend(3u32.to_le_bytes());
        e.extend(68u32.to_le_bytes());
        e.extend(0u32.to_le_bytes());
        assert_eq!(e.len(), 68);
        for (num, den) in [(48u32, 1u32), (51, 1), (2433, 100)] {
            e.extend(num.to_le_bytes());
            e.extend(den.to_le_bytes());
        }
        e
    }

    #[test]
    fn gps_is_scrubbed_and_orientation_reset() {
        let original = exif_with_gps();
        let out = carried(original.clone(), true, false);
        assert_eq!(out.len(), original.len());
        // Orientation now 1; the GPS directory empty; no latitude left.
        assert_eq!(
            Orientation::from_exif_chunk(&out),
            Some(Orientation::NoTransforms)
        );
        assert_eq!(&out[38..40], &[0, 0]);
        assert!(out[68..92].iter().all(|&b| b == 0));
        assert!(!out.windows(1).any(|w| w == b"N"));
        // Asked to keep: the position stays, the orientation still resets.
        let kept = carried(original.clone(), true, true);
        assert_eq!(&kept[38..], &original[38..]);
        // Not turned: the orientation stays.
        let as_is = carried(original.clone(), false, true);
        assert_eq!(as_is, original);
        // Garbage is left alone.
        let mut junk = vec![1, 2, 3];
        assert!(!scrub_gps(&mut junk));
    }
}
