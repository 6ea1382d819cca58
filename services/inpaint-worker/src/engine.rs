//! The interface every inpainting engine implements. It names no engine:
//! each engine reads its own settings from the wire request, reports its
//! own facts about the crops it repainted, and says what it needs and does
//! (`Capabilities`); the service reads only that.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use inpaint_imaging::{GrayImage, RgbImage};
use inpaint_proto::v1::{InpaintCropsRequest, InpaintCropsResponse, MaskedContent, SamplingStep};

use crate::error::Error;

/// What an engine needs and how it treats a crop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Looks at the hole's pixels (so the masked-content prefill matters);
    /// engines that only read the surroundings skip the prefill.
    pub reads_hole: bool,
    /// Sketched hole pixels stay in the hole (repainted, guided by their
    /// colours, as the WebUI's inpaint sketch) instead of being kept as
    /// painted.
    pub repaints_sketch: bool,
    /// Hides what is under the mask (anonymisation) rather than repairing
    /// it: nothing of the original may survive, so no partial strength
    /// blends it back.
    pub anonymises: bool,
    /// Reads only within radius + 2 of the hole (see
    /// EngineInfo.reads_within_radius).
    pub reads_within_radius: bool,
    /// Runs a model from the configuration (and fails without one).
    pub needs_model: bool,
    /// Samples in steps, and reports each one to a streaming caller.
    pub streams_steps: bool,
}

/// Reports one crop's sampling steps to a streaming caller.
#[derive(Debug, Clone)]
pub struct StepReporter {
    pub crop: u32,
    pub tx: tokio::sync::mpsc::UnboundedSender<SamplingStep>,
}

impl StepReporter {
    pub fn report(&self, step: u32, steps: u32) {
        let _ = self.tx.send(SamplingStep {
            crop: self.crop,
            step,
            steps,
        });
    }
}

/// What differs between the crops of one request.
#[derive(Debug, Clone, Default)]
pub struct CropParams {
    /// The crop's own seed (see `inpaint_common::seed::crop_seed`).
    pub seed: u64,
    /// Where an engine that streams steps reports each one.
    pub steps: Option<StepReporter>,
}

pub type EngineFuture = Pin<Box<dyn Future<Output = Result<RgbImage, Error>> + Send>>;

/// An inpainting engine, as the registry serves it.
pub trait Engine: Send + Sync {
    fn name(&self) -> &'static str;
    fn description(&self) -> &'static str;
    fn device(&self) -> &'static str;
    fn capabilities(&self) -> Capabilities;
    /// The pixel prefill for the masked content the request asked for.
    fn prefill_content(&self, content: MaskedContent) -> MaskedContent {
        content
    }
    /// Reads and checks what `req` asks of this engine (errors name the
    /// request's fields) before any crop is touched; the job it returns
    /// repaints every crop of the request.
    fn start(
        &self,
        req: &InpaintCropsRequest,
        content: MaskedContent,
    ) -> Result<Arc<dyn Job>, Error>;
}

/// One request's work for an engine: its settings, read once.
pub trait Job: Send + Sync {
    /// Repaints the pixels where `hole` > 0; every other pixel is returned
    /// as is. Native engines run on the blocking pool; model engines queue
    /// for their model's batching thread.
    fn inpaint(self: Arc<Self>, image: RgbImage, hole: GrayImage, crop: CropParams)
    -> EngineFuture;
    /// Adds what this engine says about the crops it repainted (seeded
    /// with `seeds`, in order) to the response.
    fn report(&self, _seeds: &[u64], _response: &mut InpaintCropsResponse) {}
}

/// The model called `name` (the first for an empty name), or an error
/// listing the loaded ones.
pub fn pick_model<T>(
    models: &[Arc<T>],
    name: &str,
    name_of: impl Fn(&T) -> &str,
) -> Result<Arc<T>, Error> {
    let found = if name.is_empty() {
        models.first()
    } else {
        models.iter().find(|m| name_of(m) == name)
    };
    found.cloned().ok_or_else(|| Error::UnknownModel {
        name: name.to_string(),
        loaded: models
            .iter()
            .map(|m| name_of(m).to_string())
            .collect::<Vec<_>>()
            .join(", "),
    })
}
