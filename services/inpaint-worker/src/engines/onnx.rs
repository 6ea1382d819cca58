//! Every loaded ONNX inpainting model, behind the engine name "onnx".

use std::sync::Arc;

use inpaint_imaging::{GrayImage, RgbImage};
use inpaint_proto::v1::{InpaintCropsRequest, MaskedContent};

use crate::engine::{Capabilities, CropParams, Engine, EngineFuture, Job, pick_model};
use crate::error::Error;
use crate::onnx_engine::ModelEngine;

pub struct Onnx {
    pub models: Vec<Arc<ModelEngine>>,
}

impl Engine for Onnx {
    fn name(&self) -> &'static str {
        "onnx"
    }
    fn description(&self) -> &'static str {
        "an ONNX image+mask inpainting model from the model config, batched across requests"
    }
    fn device(&self) -> &'static str {
        self.models.first().map_or("cpu", |m| m.device.name())
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            reads_hole: true,
            needs_model: true,
            ..Default::default()
        }
    }
    fn start(
        &self,
        req: &InpaintCropsRequest,
        _content: MaskedContent,
    ) -> Result<Arc<dyn Job>, Error> {
        let model = pick_model(&self.models, &req.model, |m| &m.spec.name)?;
        Ok(Arc::new(OnnxJob { model }))
    }
}

struct OnnxJob {
    model: Arc<ModelEngine>,
}

impl Job for OnnxJob {
    fn inpaint(
        self: Arc<Self>,
        image: RgbImage,
        hole: GrayImage,
        _crop: CropParams,
    ) -> EngineFuture {
        Box::pin(async move { self.model.inpaint(&image, &hole).await })
    }
}
