//! The process-wide ONNX Runtime environment (ort allows one per process),
//! loaded from a library file at run time, and the execution providers a
//! session really gets.

use std::path::Path;
use std::sync::OnceLock;

pub mod tensor;
pub mod token_table;
pub mod weights;
pub mod wire;

pub use ort;
use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::SessionBuilder;

#[derive(Debug, Clone, thiserror::Error)]
pub enum OnnxError {
    #[error("{0}")]
    Load(String),
    #[error("CUDA was required but is not available: {0}")]
    NoGpu(String),
}

static ENVIRONMENT: OnceLock<Result<Environment, String>> = OnceLock::new();

/// Loads the ONNX Runtime library at `dylib` once per process and returns the
/// environment. A missing library is a clear error, not ort's panic.
pub fn environment(dylib: &Path) -> Result<&'static Environment, OnnxError> {
    let env = ENVIRONMENT.get_or_init(|| {
        if !dylib.is_file() {
            return Err(format!(
                "ONNX Runtime library not found at {} (run `make models`, or set ORT_DYLIB_PATH)",
                dylib.display()
            ));
        }
        let builder =
            ort::init_from(dylib).map_err(|e| format!("cannot load {}: {e}", dylib.display()))?;
        builder
            .with_name("inpaint")
            .build()
            .map_err(|e| e.to_string())
    });
    env.as_ref().map_err(|e| OnnxError::Load(e.clone()))
}

/// Where a session runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Cpu,
    Cuda,
}

impl Device {
    pub fn name(self) -> &'static str {
        match self {
            Device::Cpu => "cpu",
            Device::Cuda => "cuda",
        }
    }
}

/// Opens `model` on the preferred device. With `Device::Cuda`, the CUDA
/// execution provider is registered with `error_on_failure`, so a session
/// that would silently fall back to the CPU fails instead; the caller then
/// retries on the CPU unless the GPU is required. Returns the device the
/// session really runs on.
pub fn open_session(
    env: &Environment,
    model: &Path,
    prefer: Device,
    require_gpu: bool,
    threads: usize,
) -> Result<(Session, Device), OnnxError> {
    if !model.is_file() {
        return Err(OnnxError::Load(format!(
            "model file not found: {}",
            model.display()
        )));
    }
    open(env, Source::File(model), prefer, require_gpu, threads)
}

/// As [`open_session`], for a model held in memory (an edited copy of
/// `file`, whose folder still resolves external data); errors name `file`.
pub fn open_session_from_bytes(
    env: &Environment,
    bytes: &[u8],
    file: &Path,
    prefer: Device,
    require_gpu: bool,
    threads: usize,
) -> Result<(Session, Device), OnnxError> {
    open_session_with_files(env, bytes, file, &[], prefer, require_gpu, threads)
}

/// An external data file held in memory: the location the model's tensors
/// name, and its bytes.
pub type MemoryFile = (String, std::sync::Arc<[u8]>);

/// As [`open_session_from_bytes`], with external data files given in
/// memory (`files`) besides those in `file`'s folder.
pub fn open_session_with_files(
    env: &Environment,
    bytes: &[u8],
    file: &Path,
    files: &[MemoryFile],
    prefer: Device,
    require_gpu: bool,
    threads: usize,
) -> Result<(Session, Device), OnnxError> {
    open(
        env,
        Source::Memory { bytes, file, files },
        prefer,
        require_gpu,
        threads,
    )
}

#[derive(Clone, Copy)]
enum Source<'a> {
    File(&'a Path),
    Memory {
        bytes: &'a [u8],
        file: &'a Path,
        files: &'a [MemoryFile],
    },
}

impl Source<'_> {
    fn file(&self) -> &Path {
        match self {
            Source::File(f) | Source::Memory { file: f, .. } => f,
        }
    }

    fn commit(&self, mut b: SessionBuilder) -> Result<Session, String> {
        match self {
            Source::File(f) => b.commit_from_file(f).map_err(|e| e.to_string()),
            Source::Memory { bytes, file, files } => {
                for (name, data) in *files {
                    b = b
                        .with_external_initializer_file_in_memory(name, data.clone())
                        .map_err(|e| e.to_string())?;
                }
                let folder = file.parent().unwrap_or(Path::new("."));
                b = b
                    .with_config_entry(
                        "session.model_external_initializers_file_folder_path",
                        folder.to_string_lossy(),
                    )
                    .map_err(|e| e.to_string())?;
                b.commit_from_memory(bytes).map_err(|e| e.to_string())
            }
        }
    }
}

fn open(
    env: &Environment,
    source: Source<'_>,
    prefer: Device,
    require_gpu: bool,
    threads: usize,
) -> Result<(Session, Device), OnnxError> {
    let model = source.file();
    if prefer == Device::Cuda {
        match open_cuda(env, source, threads) {
            Ok(session) => return Ok((session, Device::Cuda)),
            Err(why) if require_gpu => return Err(OnnxError::NoGpu(why)),
            Err(why) => {
                tracing::warn!(model = %model.display(), %why, "CUDA unavailable, running on the CPU")
            }
        }
    } else if require_gpu {
        return Err(OnnxError::NoGpu(
            "this build or configuration selects the CPU".into(),
        ));
    }
    let session = builder(env, threads)
        .and_then(|b| source.commit(b))
        .map_err(|e| OnnxError::Load(format!("{}: {e}", model.display())))?;
    Ok((session, Device::Cpu))
}

fn builder(env: &Environment, threads: usize) -> Result<SessionBuilder, String> {
    let mut b = Session::builder(env).map_err(|e| e.to_string())?;
    if threads > 0 {
        b = b.with_intra_threads(threads).map_err(|e| e.to_string())?;
    }
    Ok(b)
}

#[cfg(feature = "cuda")]
fn open_cuda(env: &Environment, source: Source<'_>, threads: usize) -> Result<Session, String> {
    use ort::ep::{self, ExecutionProvider};
    if !ep::CUDA::is_available().unwrap_or(false) {
        return Err("the CUDA execution provider is not in this ONNX Runtime library".into());
    }
    let mut b = builder(env, threads)?;
    // Registering directly reports a CUDA that cannot load, instead of the
    // silent CPU fallback of environment-level providers.
    cuda_provider()?
        .register(&mut b)
        .map_err(|e| e.to_string())?;
    source.commit(b)
}

/// The CUDA provider with the operator's tuning from the environment:
/// `INPAINT_CUDA_CONV_SEARCH` (heuristic by default: cuDNN's own ranking;
/// exhaustive, ONNX Runtime's default, times every algorithm at each new
/// input shape, a stall whenever step batching makes a new batch size, and
/// measured slower on an H200 for SD: docs/benchmarks.md) and
/// `INPAINT_CUDA_NHWC=1` (channels-last convolutions; measured slower).
#[cfg(feature = "cuda")]
fn cuda_provider() -> Result<ort::ep::CUDA, String> {
    use ort::ep::cuda::ConvAlgorithmSearch;
    let search = match std::env::var("INPAINT_CUDA_CONV_SEARCH").as_deref() {
        Err(_) | Ok("") | Ok("heuristic") => ConvAlgorithmSearch::Heuristic,
        Ok("exhaustive") => ConvAlgorithmSearch::Exhaustive,
        Ok("default") => ConvAlgorithmSearch::Default,
        Ok(other) => {
            return Err(format!(
                "INPAINT_CUDA_CONV_SEARCH={other:?}: expected exhaustive, heuristic or default"
            ));
        }
    };
    let nhwc = match std::env::var("INPAINT_CUDA_NHWC").as_deref() {
        Err(_) | Ok("") | Ok("0") => false,
        Ok("1") => true,
        Ok(other) => return Err(format!("INPAINT_CUDA_NHWC={other:?}: expected 0 or 1")),
    };
    Ok(ort::ep::CUDA::default()
        .with_conv_algorithm_search(search)
        .with_prefer_nhwc(nhwc))
}

#[cfg(not(feature = "cuda"))]
fn open_cuda(_env: &Environment, _source: Source<'_>, _threads: usize) -> Result<Session, String> {
    Err("this binary was built without the `cuda` feature".into())
}
