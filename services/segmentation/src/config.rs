//! Segmentation configuration.

use std::path::PathBuf;

use clap::Parser;
use inpaint_common::ServiceArgs;

/// inpaint-segmentation: detectors and prompts to regions.
#[derive(Debug, Clone, Parser)]
#[command(version)]
pub struct Config {
    #[command(flatten)]
    pub service: ServiceArgs,

    /// ONNX Runtime shared library (fetched by `make models`).
    #[arg(
        long,
        env = "ORT_DYLIB_PATH",
        default_value = "models/cache/onnxruntime/libonnxruntime.so"
    )]
    pub ort_dylib: PathBuf,

    /// YuNet face detector model.
    #[arg(
        long,
        env = "INPAINT_FACE_MODEL",
        default_value = "models/cache/yunet/face_detection_yunet_2023mar.onnx"
    )]
    pub face_model: PathBuf,

    /// Face score used when a request leaves min_confidence at 0.
    #[arg(long, env = "INPAINT_FACE_MIN_CONFIDENCE", default_value_t = 0.6)]
    pub face_min_confidence: f32,

    /// Threads ONNX Runtime may use inside one model run; 0 = its default.
    #[arg(long, env = "INPAINT_ORT_THREADS", default_value_t = 0)]
    pub ort_threads: usize,

    /// Requests waiting for the face model beyond this are refused with
    /// RESOURCE_EXHAUSTED.
    #[arg(long, env = "INPAINT_FACE_QUEUE", default_value_t = 64)]
    pub face_queue: usize,

    /// Stop the service when a model cannot load (for clusters, where a
    /// crash-looping pod is visible). Off, it keeps serving what it can.
    #[arg(long, env = "INPAINT_REQUIRE_MODELS", default_value_t = true, action = clap::ArgAction::Set)]
    pub require_models: bool,
}

impl Config {
    pub fn local(listen: std::net::SocketAddr) -> Self {
        Self {
            service: ServiceArgs::local(listen),
            ort_dylib: "models/cache/onnxruntime/libonnxruntime.so".into(),
            face_model: "models/cache/yunet/face_detection_yunet_2023mar.onnx".into(),
            face_min_confidence: 0.6,
            ort_threads: 0,
            face_queue: 64,
            require_models: false,
        }
    }
}
