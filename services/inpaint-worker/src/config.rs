//! Worker configuration.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use inpaint_common::ServiceArgs;

use crate::onnx_engine::RuntimeOptions;

/// Where model engines should run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    Cpu,
    /// CUDA when this build has the `cuda` feature and the GPU loads; the CPU
    /// otherwise (unless --require-gpu).
    Cuda,
}

/// inpaint-worker: repaints crops with native and model engines.
#[derive(Debug, Clone, Parser)]
#[command(version)]
pub struct Config {
    #[command(flatten)]
    pub service: ServiceArgs,

    /// Crops repainted at once by native engines; 0 = one per core.
    #[arg(long, env = "INPAINT_WORKER_PARALLELISM", default_value_t = 0)]
    pub parallelism: usize,

    /// Model config file (TOML, see models/worker-models.toml). Without it
    /// no ONNX model is loaded.
    #[arg(long, env = "INPAINT_WORKER_MODELS")]
    pub models: Option<PathBuf>,

    /// Stable Diffusion pipelines (engine "sd"), each a folder in the
    /// diffusers/optimum ONNX layout, named after the folder; in addition to
    /// `kind = "sd"` entries in the model file. Comma-separated in the
    /// environment.
    #[arg(long = "sd-model", env = "INPAINT_SD_MODELS", value_delimiter = ',')]
    pub sd_models: Vec<PathBuf>,

    /// ONNX Runtime shared library.
    #[arg(
        long,
        env = "ORT_DYLIB_PATH",
        default_value = "models/cache/onnxruntime/libonnxruntime.so"
    )]
    pub ort_dylib: PathBuf,

    /// Device for model engines.
    #[arg(long, env = "INPAINT_WORKER_DEVICE", value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,

    /// Refuse to start unless every model runs on the GPU.
    #[arg(long, env = "INPAINT_REQUIRE_GPU")]
    pub require_gpu: bool,

    /// Longest a crop waits for others to share its batch, in microseconds.
    #[arg(long, env = "INPAINT_BATCH_WAIT_US", default_value_t = 2000)]
    pub batch_wait_us: u64,

    /// Always wait up to the batch wait for a batch to fill, even with no
    /// other crop on its way (throughput over latency, e.g. on GPUs).
    #[arg(long, env = "INPAINT_BATCH_ALWAYS_WAIT")]
    pub batch_always_wait: bool,

    /// Crops queued per model beyond which requests get RESOURCE_EXHAUSTED.
    #[arg(long, env = "INPAINT_MODEL_QUEUE", default_value_t = 64)]
    pub model_queue: usize,

    /// Stable Diffusion: most requests whose sampling steps share one UNet
    /// call (each brings its condition and negative condition); 1 runs
    /// them one at a time; 0 = by device (8 on CUDA, 1 on the CPU, where
    /// batching measured slower).
    #[arg(long, env = "INPAINT_SD_MAX_BATCH", default_value_t = 0)]
    pub sd_max_batch: usize,

    /// Stable Diffusion: a folder of textual-inversion embeddings
    /// (`.safetensors`), used in prompts by file name as in the WebUI, or
    /// as `embedding:NAME`.
    #[arg(long, env = "INPAINT_SD_EMBEDDINGS")]
    pub sd_embeddings: Option<PathBuf>,

    /// Folder of LoRA files (`.safetensors`, kohya or diffusers/peft keys)
    /// for the SD models, used in prompts as `<lora:NAME:WEIGHT>` by file
    /// stem, as in the WebUI.
    #[arg(long, env = "INPAINT_SD_LORAS")]
    pub sd_loras: Option<PathBuf>,

    /// Bytes the merged LoRA variants of one SD model may hold (least
    /// recently used dropped first; the base model always stays).
    #[arg(long, env = "INPAINT_SD_LORA_CACHE_BYTES", default_value_t = crate::onnx_engine::DEFAULT_LORA_CACHE_BYTES)]
    pub sd_lora_cache_bytes: u64,

    /// Threads ONNX Runtime may use inside one model run; 0 = its default.
    #[arg(long, env = "INPAINT_ORT_THREADS", default_value_t = 0)]
    pub ort_threads: usize,
}

impl Config {
    pub fn local(listen: std::net::SocketAddr) -> Self {
        Self {
            service: ServiceArgs::local(listen),
            parallelism: 0,
            models: None,
            sd_models: vec![],
            sd_max_batch: 0,
            sd_embeddings: None,
            sd_loras: None,
            sd_lora_cache_bytes: crate::onnx_engine::DEFAULT_LORA_CACHE_BYTES,
            ort_dylib: "models/cache/onnxruntime/libonnxruntime.so".into(),
            device: DeviceArg::Cpu,
            require_gpu: false,
            batch_wait_us: 2000,
            batch_always_wait: false,
            model_queue: 64,
            ort_threads: 0,
        }
    }

    pub fn effective_parallelism(&self) -> usize {
        match self.parallelism {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    pub fn runtime(&self) -> RuntimeOptions {
        RuntimeOptions {
            ort_dylib: self.ort_dylib.clone(),
            device: match self.device {
                DeviceArg::Cpu => inpaint_onnx::Device::Cpu,
                DeviceArg::Cuda => inpaint_onnx::Device::Cuda,
            },
            require_gpu: self.require_gpu,
            threads: self.ort_threads,
            max_wait: Duration::from_micros(self.batch_wait_us),
            always_wait: self.batch_always_wait,
            queue: self.model_queue,
            sd_max_batch: self.sd_max_batch,
            sd_embeddings: self.sd_embeddings.clone(),
            sd_loras: self.sd_loras.clone(),
            sd_lora_cache_bytes: self.sd_lora_cache_bytes,
        }
    }
}
