//! The CPU kernels (Telea, PatchMatch, the anonymisers) as engines.

use std::sync::Arc;

use inpaint_imaging::{GrayImage, RgbImage, anonymise, patchmatch, telea};
use inpaint_proto::v1::{InpaintCropsRequest, MaskedContent};
use tokio::sync::Semaphore;

use crate::engine::{Capabilities, CropParams, Engine, EngineFuture, Job};
use crate::error::Error;

/// A kernel's inputs besides the pixels: the request's radius, the crop's
/// seed.
type Kernel = fn(&RgbImage, &GrayImage, u32, u64) -> RgbImage;

/// A CPU kernel, run on the blocking pool at most `slots` at a time so a
/// burst of crops queues instead of oversubscribing the cores.
pub struct Native {
    name: &'static str,
    description: &'static str,
    capabilities: Capabilities,
    run: Kernel,
    slots: Arc<Semaphore>,
}

impl Native {
    /// Every native engine, sharing `parallelism` slots on the blocking
    /// pool.
    pub fn all(parallelism: usize) -> Vec<Native> {
        let slots = Arc::new(Semaphore::new(parallelism.max(1)));
        let engine = |name, description, capabilities, run| Native {
            name,
            description,
            capabilities,
            run,
            slots: slots.clone(),
        };
        let anonymiser = |reads_hole| Capabilities {
            reads_hole,
            anonymises: true,
            ..Default::default()
        };
        vec![
            engine(
                "telea",
                "fast marching inpainting (Telea 2004): smooth fills for small holes and scratches",
                Capabilities {
                    reads_within_radius: true,
                    ..Default::default()
                },
                |image, hole, radius, _| telea::inpaint(image, hole, radius),
            ),
            engine(
                "patchmatch",
                "multi-scale exemplar fill (PatchMatch + Wexler EM): texture from the surroundings",
                Capabilities {
                    reads_hole: true,
                    ..Default::default()
                },
                |image, hole, _, seed| patchmatch::inpaint(image, hole, seed),
            ),
            engine(
                "pixelate",
                "anonymisation: the mask in blocks of their mean colour, about 8 across the region",
                anonymiser(true),
                |image, hole, _, _| anonymise::pixelate(image, hole),
            ),
            engine(
                "blur",
                "anonymisation: the mask pixelated, then blurred (Gaussian of half a block); irreversible",
                anonymiser(true),
                |image, hole, _, _| anonymise::blur(image, hole),
            ),
            engine(
                "fill",
                "anonymisation: the mask in one solid colour, the mean just outside it",
                anonymiser(false),
                |image, hole, _, _| anonymise::fill(image, hole),
            ),
        ]
    }
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
    fn capabilities(&self) -> Capabilities {
        self.capabilities
    }
    fn prefill_content(&self, content: MaskedContent) -> MaskedContent {
        // Anonymisation sees the hole's original pixels.
        if self.capabilities.anonymises {
            MaskedContent::Original
        } else {
            content
        }
    }
    fn start(
        &self,
        req: &InpaintCropsRequest,
        _content: MaskedContent,
    ) -> Result<Arc<dyn Job>, Error> {
        Ok(Arc::new(NativeJob {
            radius: req.radius,
            run: self.run,
            slots: self.slots.clone(),
        }))
    }
}

struct NativeJob {
    radius: u32,
    run: Kernel,
    slots: Arc<Semaphore>,
}

impl Job for NativeJob {
    fn inpaint(
        self: Arc<Self>,
        image: RgbImage,
        hole: GrayImage,
        crop: CropParams,
    ) -> EngineFuture {
        Box::pin(async move {
            let _slot = self
                .slots
                .clone()
                .acquire_owned()
                .await
                .map_err(|e| Error::Task(e.to_string()))?;
            tokio::task::spawn_blocking(move || (self.run)(&image, &hole, self.radius, crop.seed))
                .await
                .map_err(|e| Error::Task(e.to_string()))
        })
    }
}
