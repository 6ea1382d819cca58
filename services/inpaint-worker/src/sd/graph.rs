//! One ONNX graph of a pipeline and the tensors it trades: its session,
//! its inputs' and outputs' signatures, f32/f16 floats, and the names and
//! types read from the four graphs (`Io`).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use half::f16;
use inpaint_onnx::ort::session::{Session, SessionInputValue};
use inpaint_onnx::ort::value::{DynValue, Outlet, Tensor, TensorElementType, ValueType};
use inpaint_onnx::{Device, ort};

use crate::onnx_engine::RuntimeOptions;

/// Float tensors a graph takes and gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatType {
    F32,
    F16,
}

impl FloatType {
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
        }
    }
}

/// How the UNet takes its timestep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestepInput {
    pub ty: TensorElementType,
    /// `[B]` rather than a scalar.
    pub batched: bool,
}

/// What the VAE encoder gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncoderOutput {
    /// Mean and log-variance (2 x latent channels): we take the mean.
    Parameters,
    /// A latent sampled inside the graph: not reproducible.
    Sample,
}

/// One graph: its session (ort runs take `&mut`), and its input/output names.
pub struct Graph {
    pub file: PathBuf,
    session: Mutex<Session>,
    pub device: Device,
    /// External data held in memory for the session (merged LoRA weights).
    _files: Vec<inpaint_onnx::MemoryFile>,
}

impl Graph {
    pub fn open(file: &Path, runtime: &RuntimeOptions) -> Result<Self, String> {
        Self::open_from(file, None, vec![], runtime)
    }

    /// Opens an edited copy of `file` held in memory.
    pub fn open_bytes(bytes: &[u8], file: &Path, runtime: &RuntimeOptions) -> Result<Self, String> {
        Self::open_from(file, Some(bytes), vec![], runtime)
    }

    /// Opens an edited copy of `file` whose tensors also point into
    /// external data `files` held in memory.
    pub fn open_with_files(
        bytes: &[u8],
        file: &Path,
        files: Vec<inpaint_onnx::MemoryFile>,
        runtime: &RuntimeOptions,
    ) -> Result<Self, String> {
        Self::open_from(file, Some(bytes), files, runtime)
    }

    fn open_from(
        file: &Path,
        bytes: Option<&[u8]>,
        files: Vec<inpaint_onnx::MemoryFile>,
        runtime: &RuntimeOptions,
    ) -> Result<Self, String> {
        let env = inpaint_onnx::environment(&runtime.ort_dylib).map_err(|e| e.to_string())?;
        let (device, gpu, threads) = (runtime.device, runtime.require_gpu, runtime.threads);
        let (session, device) = match bytes {
            None => inpaint_onnx::open_session(env, file, device, gpu, threads),
            Some(b) => {
                inpaint_onnx::open_session_with_files(env, b, file, &files, device, gpu, threads)
            }
        }
        .map_err(|e| e.to_string())?;
        Ok(Self {
            file: file.to_path_buf(),
            session: Mutex::new(session),
            device,
            _files: files,
        })
    }

    fn with<R>(&self, f: impl FnOnce(&Session) -> R) -> R {
        f(&self.session.lock().expect("session lock"))
    }

    /// (name, element type, dims) of each tensor input.
    pub fn inputs(&self) -> Vec<Signature> {
        self.with(|s| signatures(s.inputs()))
    }

    /// (name, element type, dims) of each tensor output.
    pub fn outputs(&self) -> Vec<Signature> {
        self.with(|s| signatures(s.outputs()))
    }

    /// Runs the graph and returns output `name` as f32 with its shape.
    pub fn run(
        &self,
        inputs: Vec<(String, DynValue)>,
        output: &str,
    ) -> Result<(Vec<i64>, Vec<f32>), String> {
        let named: Vec<(std::borrow::Cow<'_, str>, SessionInputValue<'_>)> = inputs
            .into_iter()
            .map(|(n, v)| (n.into(), v.into()))
            .collect();
        let mut session = self.session.lock().expect("session lock");
        let out = session
            .run(named)
            .map_err(|e| format!("{}: {e}", self.file.display()))?;
        let value = &out[output];
        floats(value).map_err(|e| format!("{}: output {output:?}: {e}", self.file.display()))
    }
}

/// A tensor input or output: name, element type, dims (-1 = dynamic).
pub type Signature = (String, TensorElementType, Vec<i64>);

fn signatures(outlets: &[Outlet]) -> Vec<Signature> {
    outlets
        .iter()
        .filter_map(|o| match o.dtype() {
            ValueType::Tensor { ty, shape, .. } => {
                Some((o.name().to_string(), *ty, shape.to_vec()))
            }
            _ => None,
        })
        .collect()
}

/// Values already in a graph input's float type: a tensor sent at every
/// step (the text condition) is converted once per request, not per step.
#[derive(Debug, Clone, PartialEq)]
pub enum TypedFloats {
    F32(Vec<f32>),
    F16(Vec<f16>),
}

impl TypedFloats {
    pub fn new(ty: FloatType, data: &[f32]) -> Self {
        match ty {
            FloatType::F32 => Self::F32(data.to_vec()),
            FloatType::F16 => Self::F16(data.iter().map(|&v| f16::from_f32(v)).collect()),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Self::F32(v) => v.len(),
            Self::F16(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `parts` one after another (all of one type, as made for one graph).
    pub fn concat<'a>(ty: FloatType, parts: impl IntoIterator<Item = &'a TypedFloats>) -> Self {
        let mut out = match ty {
            FloatType::F32 => Self::F32(vec![]),
            FloatType::F16 => Self::F16(vec![]),
        };
        for part in parts {
            match (&mut out, part) {
                (Self::F32(o), Self::F32(p)) => o.extend_from_slice(p),
                (Self::F16(o), Self::F16(p)) => o.extend_from_slice(p),
                (Self::F32(o), Self::F16(p)) => o.extend(p.iter().map(|v| v.to_f32())),
                (Self::F16(o), Self::F32(p)) => o.extend(p.iter().map(|&v| f16::from_f32(v))),
            }
        }
        out
    }

    pub fn into_tensor(self, shape: Vec<i64>) -> Result<DynValue, String> {
        let e = |err: ort::Error| err.to_string();
        Ok(match self {
            Self::F32(v) => Tensor::from_array((shape, v)).map_err(e)?.into_dyn(),
            Self::F16(v) => Tensor::from_array((shape, v)).map_err(e)?.into_dyn(),
        })
    }
}

/// A float tensor of `ty` from f32 values.
pub fn float_tensor(ty: FloatType, shape: Vec<i64>, data: &[f32]) -> Result<DynValue, String> {
    TypedFloats::new(ty, data).into_tensor(shape)
}

/// An output's values as f32, whether the graph gives f32 or f16.
fn floats(value: &DynValue) -> Result<(Vec<i64>, Vec<f32>), String> {
    if let Ok((shape, data)) = value.try_extract_tensor::<f32>() {
        return Ok((shape.to_vec(), data.to_vec()));
    }
    let (shape, data) = value
        .try_extract_tensor::<f16>()
        .map_err(|e| e.to_string())?;
    Ok((shape.to_vec(), data.iter().map(|v| v.to_f32()).collect()))
}

pub fn float_type(ty: TensorElementType, what: &str) -> Result<FloatType, String> {
    match ty {
        TensorElementType::Float32 => Ok(FloatType::F32),
        TensorElementType::Float16 => Ok(FloatType::F16),
        other => Err(format!("{what} is {other:?}; expected float32 or float16")),
    }
}

/// Names and types read from the graphs.
#[derive(Debug, Clone)]
pub struct Io {
    pub ids_input: String,
    pub ids_type: TensorElementType,
    pub hidden_output: String,
    pub unet_sample: String,
    pub unet_timestep: String,
    pub unet_hidden: String,
    pub unet_output: String,
    pub unet_float: FloatType,
    pub timestep: TimestepInput,
    /// 9 (inpainting checkpoint) or 4 (regular).
    pub unet_channels: usize,
    pub latent_channels: usize,
    pub encoder_input: String,
    pub encoder_output: String,
    pub encoder_kind: EncoderOutput,
    pub encoder_float: FloatType,
    pub decoder_input: String,
    pub decoder_output: String,
    pub decoder_float: FloatType,
    /// Pixels per latent pixel, measured on the VAE encoder.
    pub vae_factor: usize,
}

pub(super) fn named_or_first<'a>(
    list: &'a [Signature],
    names: &[&str],
    file: &Path,
    what: &str,
) -> Result<&'a Signature, String> {
    names
        .iter()
        .find_map(|n| list.iter().find(|(name, ..)| name == n))
        .or(if list.len() == 1 { list.first() } else { None })
        .ok_or_else(|| {
            let have: Vec<&str> = list.iter().map(|(n, ..)| n.as_str()).collect();
            format!("{}: no {what} ({names:?}); it has {have:?}", file.display())
        })
}
