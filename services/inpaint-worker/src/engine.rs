//! Inpainting engines behind one trait, and the registry the worker serves.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use inpaint_imaging::{GrayImage, RgbImage, anonymise, patchmatch, telea};
use inpaint_proto::v1::MaskedContent;
use tokio::sync::Semaphore;

use crate::sd::engine::{SdEngine, SdSettings};
use crate::sd::model::SdModel;

use crate::error::Error;
use crate::onnx_engine::ModelEngine;

/// Per-request engine settings.
#[derive(Debug, Clone, Default)]
pub struct EngineParams {
    /// Neighbourhood radius (telea); 0 = the engine's default.
    pub radius: u32,
    pub seed: u64,
    /// Which model (onnx, sd); empty = the first loaded.
    pub model: String,
    /// What the request asked to see in the hole.
    pub masked_content: MaskedContent,
    /// Engine "sd": prompt and sampling.
    pub sd: Option<SdSettings>,
    /// Where engines that sample in steps report each one.
    pub steps: Option<StepReporter>,
}

/// Reports one crop's sampling steps to a streaming caller.
#[derive(Debug, Clone)]
pub struct StepReporter {
    pub crop: u32,
    pub tx: tokio::sync::mpsc::UnboundedSender<inpaint_proto::v1::SamplingStep>,
}

impl StepReporter {
    pub fn report(&self, step: u32, steps: u32) {
        let _ = self.tx.send(inpaint_proto::v1::SamplingStep {
            crop: self.crop,
            step,
            steps,
        });
    }
}

pub type EngineFuture = Pin<Box<dyn Future<Output = Result<RgbImage, Error>> + Send>>;

/// Repaints the pixels where `hole` > 0; every other pixel is returned as is.
/// Native engines run on the blocking pool; model engines queue for their
/// model's batching thread.
pub trait Engine: Send + Sync {
    fn name(&self) -> &'static str;
    fn description(&self) -> &'static str;
    fn device(&self) -> &'static str;
    /// Checks what the request asks of this engine before any work starts.
    fn check(&self, _params: &EngineParams) -> Result<(), Error> {
        Ok(())
    }
    /// Whether the engine looks at the hole's pixels (so the masked-content
    /// prefill matters); engines that only read the surroundings skip it.
    fn reads_hole(&self) -> bool {
        true
    }
    /// Whether sketched hole pixels stay in the hole (repainted, guided by
    /// their colours, as the WebUI's inpaint sketch) instead of being kept
    /// as painted.
    fn repaints_sketch(&self) -> bool {
        false
    }
    /// The pixel prefill for the masked content the request asked for.
    fn prefill_content(&self, content: MaskedContent) -> MaskedContent {
        content
    }
    /// Whether the engine hides what is under the mask (anonymisation)
    /// rather than repairing it: nothing of the original may survive, so
    /// no partial strength blends it back.
    fn anonymises(&self) -> bool {
        false
    }
    /// Whether the engine reads only within radius + 2 of the hole (see
    /// EngineInfo.reads_within_radius).
    fn reads_within_radius(&self) -> bool {
        false
    }
    fn inpaint(&self, image: RgbImage, hole: GrayImage, params: EngineParams) -> EngineFuture;
}

/// A CPU kernel, run on the blocking pool at most `slots` at a time so a
/// burst of crops queues instead of oversubscribing the cores.
struct Native {
    name: &'static str,
    description: &'static str,
    reads_hole: bool,
    /// Anonymisation: sees the hole's original pixels (no prefill) and
    /// never blends them back.
    anonymises: bool,
    /// Reads only within its radius (+2) of the hole (Telea).
    within_radius: bool,
    run: fn(&RgbImage, &GrayImage, &EngineParams) -> RgbImage,
    slots: Arc<Semaphore>,
}

impl Engine for Native {
    fn name(&self) -> &'static str {
        self.name
    }
    fn description(&self) -> &'static str {
        self.description
    }
    fn device(&self) -> &'static str {
        "cpu"
    }
    fn reads_hole(&self) -> bool {
        self.reads_hole
    }
    fn anonymises(&self) -> bool {
        self.anonymises
    }
    fn reads_within_radius(&self) -> bool {
        self.within_radius
    }
    fn prefill_content(&self, content: MaskedContent) -> MaskedContent {
        if self.anonymises {
            MaskedContent::Original
        } else {
            content
        }
    }
    fn inpaint(&self, image: RgbImage, hole: GrayImage, params: EngineParams) -> EngineFuture {
        let (slots, run) = (self.slots.clone(), self.run);
        Box::pin(async move {
            let _slot = slots
                .acquire_owned()
                .await
                .map_err(|e| Error::Task(e.to_string()))?;
            tokio::task::spawn_blocking(move || run(&image, &hole, &params))
                .await
                .map_err(|e| Error::Task(e.to_string()))
        })
    }
}

/// Every loaded ONNX model, behind the engine name "onnx".
pub struct Onnx {
    pub models: Vec<Arc<ModelEngine>>,
}

impl Onnx {
    pub fn model(&self, name: &str) -> Result<Arc<ModelEngine>, Error> {
        pick_model(&self.models, name, |m| &m.spec.name)
    }
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
    fn check(&self, params: &EngineParams) -> Result<(), Error> {
        self.model(&params.model).map(|_| ())
    }
    fn inpaint(&self, image: RgbImage, hole: GrayImage, params: EngineParams) -> EngineFuture {
        let model = self.model(&params.model);
        Box::pin(async move { model?.inpaint(&image, &hole).await })
    }
}

/// Engines by name, with a default.
pub struct Registry {
    engines: BTreeMap<&'static str, Arc<dyn Engine>>,
    default: &'static str,
}

impl Registry {
    /// Telea and PatchMatch, "onnx" when models are loaded, and "sd" (which
    /// answers FAILED_PRECONDITION when no pipeline is configured).
    pub fn new(
        parallelism: usize,
        models: Vec<Arc<ModelEngine>>,
        sd_models: Vec<Arc<SdModel>>,
    ) -> Self {
        let slots = Arc::new(Semaphore::new(parallelism.max(1)));
        let mut engines: Vec<Arc<dyn Engine>> = vec![
            Arc::new(Native {
                name: "telea",
                description: "fast marching inpainting (Telea 2004): smooth fills for small holes and scratches",
                reads_hole: false,
                anonymises: false,
                within_radius: true,
                run: |image, hole, params| telea::inpaint(image, hole, params.radius),
                slots: slots.clone(),
            }),
            Arc::new(Native {
                name: "patchmatch",
                description: "multi-scale exemplar fill (PatchMatch + Wexler EM): texture from the surroundings",
                reads_hole: true,
                anonymises: false,
                within_radius: false,
                run: |image, hole, params| patchmatch::inpaint(image, hole, params.seed),
                slots: slots.clone(),
            }),
            Arc::new(Native {
                name: "pixelate",
                description: "anonymisation: the mask in blocks of their mean colour, about 8 across the region",
                reads_hole: true,
                anonymises: true,
                within_radius: false,
                run: |image, hole, _| anonymise::pixelate(image, hole),
                slots: slots.clone(),
            }),
            Arc::new(Native {
                name: "blur",
                description: "anonymisation: the mask pixelated, then blurred (Gaussian of half a block); irreversible",
                reads_hole: true,
                anonymises: true,
                within_radius: false,
                run: |image, hole, _| anonymise::blur(image, hole),
                slots: slots.clone(),
            }),
            Arc::new(Native {
                name: "fill",
                description: "anonymisation: the mask in one solid colour, the mean just outside it",
                reads_hole: false,
                anonymises: true,
                within_radius: false,
                run: |image, hole, _| anonymise::fill(image, hole),
                slots,
            }),
        ];
        if !models.is_empty() {
            engines.push(Arc::new(Onnx { models }));
        }
        engines.push(Arc::new(SdEngine { models: sd_models }));
        Self {
            default: "telea",
            engines: engines.into_iter().map(|e| (e.name(), e)).collect(),
        }
    }

    /// The engine called `name`, or the default for an empty name.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Engine>> {
        let name = if name.is_empty() { self.default } else { name };
        self.engines.get(name).cloned()
    }

    pub fn default_name(&self) -> &'static str {
        self.default
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn Engine>> {
        self.engines.values()
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.engines.keys().copied().collect()
    }
}
