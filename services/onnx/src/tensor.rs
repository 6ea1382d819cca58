//! Float initializers of an ONNX file read off the wire: dims, element
//! type and values, wherever the values sit (raw_data, float_data,
//! int32_data for float16, or an external data file beside the model).

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use half::f16;

use crate::wire::{self, Field};

// Field numbers from onnx.proto (TensorProto and StringStringEntryProto).
pub(crate) const TENSOR_DIMS: u32 = 1;
pub(crate) const TENSOR_DATA_TYPE: u32 = 2;
const TENSOR_FLOAT_DATA: u32 = 4;
const TENSOR_INT32_DATA: u32 = 5;
pub(crate) const TENSOR_NAME: u32 = 8;
pub(crate) const TENSOR_RAW_DATA: u32 = 9;
pub(crate) const TENSOR_EXTERNAL_DATA: u32 = 13;
pub(crate) const TENSOR_DATA_LOCATION: u32 = 14;
pub(crate) const ENTRY_KEY: u32 = 1;
pub(crate) const ENTRY_VALUE: u32 = 2;
pub(crate) const ONNX_FLOAT: u64 = 1;
pub(crate) const ONNX_FLOAT16: u64 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatKind {
    F32,
    F16,
}

impl FloatKind {
    pub fn size(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 => 2,
        }
    }

    pub fn onnx_type(self) -> u64 {
        match self {
            Self::F32 => ONNX_FLOAT,
            Self::F16 => ONNX_FLOAT16,
        }
    }

    /// Little-endian values of this kind as f32.
    pub fn decode(self, bytes: &[u8]) -> Vec<f32> {
        match self {
            Self::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                .collect(),
            Self::F16 => bytes
                .chunks_exact(2)
                .map(|b| f16::from_le_bytes(b.try_into().expect("2 bytes")).to_f32())
                .collect(),
        }
    }

    /// f32 values as little-endian values of this kind (f16 rounded to
    /// nearest).
    pub fn encode(self, values: &[f32]) -> Vec<u8> {
        match self {
            Self::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            Self::F16 => values
                .iter()
                .flat_map(|&v| f16::from_f32(v).to_le_bytes())
                .collect(),
        }
    }
}

/// The name of a TensorProto given as its fields.
pub(crate) fn tensor_name<'a>(fields: &[Field<'a>]) -> Option<&'a str> {
    fields
        .iter()
        .find(|f| f.number == TENSOR_NAME)
        .and_then(Field::string)
}

/// A tensor's dims and float kind, without its values.
pub fn header(tensor: &[Field<'_>], name: &str) -> Result<(Vec<usize>, FloatKind), String> {
    let dims = wire::repeated_varints(tensor, TENSOR_DIMS)?
        .into_iter()
        .map(|d| d as usize)
        .collect();
    let kind = match tensor
        .iter()
        .find(|f| f.number == TENSOR_DATA_TYPE)
        .and_then(Field::varint)
    {
        Some(ONNX_FLOAT) => FloatKind::F32,
        Some(ONNX_FLOAT16) => FloatKind::F16,
        other => {
            return Err(format!(
                "tensor {name:?} has data type {other:?}; float32 or float16 expected"
            ));
        }
    };
    Ok((dims, kind))
}

fn read_external(entries: &[Field<'_>], folder: &Path, bytes: usize) -> Result<Vec<u8>, String> {
    let mut location = None;
    let mut offset = 0u64;
    for e in entries.iter().filter_map(Field::bytes) {
        let kv = wire::fields(e)?;
        let get = |n| kv.iter().find(|f| f.number == n).and_then(Field::string);
        match (get(ENTRY_KEY), get(ENTRY_VALUE)) {
            (Some("location"), Some(v)) => location = Some(v.to_string()),
            (Some("offset"), Some(v)) => offset = v.parse().map_err(|_| format!("offset {v:?}"))?,
            _ => {}
        }
    }
    let location = location.ok_or("external data without a location")?;
    let path = folder.join(&location);
    let mut file = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut data = vec![0u8; bytes];
    file.read_exact(&mut data)
        .map_err(|e| format!("{}: {bytes} bytes at {offset}: {e}", path.display()))?;
    Ok(data)
}

/// A tensor's values as little-endian bytes of its kind. `folder` is where
/// external data files are looked up (the model's folder).
pub fn values(tensor: &[Field<'_>], name: &str, folder: &Path) -> Result<Vec<u8>, String> {
    let (dims, kind) = header(tensor, name)?;
    let bytes = dims.iter().product::<usize>() * kind.size();
    let external = tensor
        .iter()
        .find(|f| f.number == TENSOR_DATA_LOCATION)
        .and_then(Field::varint)
        == Some(1);
    let raw = tensor
        .iter()
        .find(|f| f.number == TENSOR_RAW_DATA)
        .and_then(Field::bytes);
    let data = if external {
        let entries: Vec<Field<'_>> = tensor
            .iter()
            .filter(|f| f.number == TENSOR_EXTERNAL_DATA)
            .copied()
            .collect();
        read_external(&entries, folder, bytes)?
    } else if let Some(raw) = raw {
        raw.to_vec()
    } else if kind == FloatKind::F32 {
        let mut out = vec![];
        for f in tensor.iter().filter(|f| f.number == TENSOR_FLOAT_DATA) {
            match f.value {
                wire::Value::Bytes(packed) => out.extend_from_slice(packed),
                wire::Value::Fixed32(v) => out.extend_from_slice(&v.to_le_bytes()),
                _ => return Err("float_data is malformed".into()),
            }
        }
        out
    } else {
        wire::repeated_varints(tensor, TENSOR_INT32_DATA)?
            .into_iter()
            .flat_map(|v| (v as u16).to_le_bytes())
            .collect()
    };
    if data.len() != bytes {
        return Err(format!(
            "tensor {name:?} holds {} bytes, expected {bytes}",
            data.len()
        ));
    }
    Ok(data)
}
