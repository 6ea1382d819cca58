//! The worker's own metrics (the gRPC ones come from `inpaint_common`).

use std::sync::OnceLock;

use inpaint_common::metrics::histogram_vec;
use prometheus::HistogramVec;

/// Crops (ONNX models) or samples (SD UNet calls) per model run.
pub fn batch_size() -> &'static HistogramVec {
    static M: OnceLock<HistogramVec> = OnceLock::new();
    M.get_or_init(|| {
        histogram_vec(
            "inpaint_model_batch_size",
            "Crops (inpainting models) or samples (Stable Diffusion UNet calls) per model run",
            &["model"],
            &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0],
        )
    })
}
