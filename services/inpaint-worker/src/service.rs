//! The `inpaint.v1.InpaintWorker` gRPC service.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use inpaint_common::sd_params::{sampler_names, schedule_names};
use inpaint_common::seed::crop_seed;
use inpaint_common::tensor::{into_rgb_tensor, to_gray, to_rgb};
use inpaint_imaging::{GrayImage, PixelBox, RgbImage};
use inpaint_proto::v1::inpaint_worker_server::InpaintWorker;
use inpaint_proto::v1::{
    CropInput, EngineInfo, InpaintCropsEvent, InpaintCropsRequest, InpaintCropsResponse,
    ListEnginesRequest, ListEnginesResponse, ListModelsRequest, ListModelsResponse, MaskedContent,
    ModelInfo, SamplingStep, inpaint_crops_event::Event,
};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::config::Config;
use crate::engine::{CropParams, StepReporter};
use crate::engines::Registry;
use crate::error::Error;
use crate::models::DType;
use crate::onnx_engine::ModelEngine;
use crate::prefill::{apply_sketch, blend_strength, prefill};
use crate::sd::engine::model_notes;
use crate::sd::model::SdModel;

/// Largest neighbourhood radius accepted.
pub use inpaint_common::limits::MAX_RADIUS;

#[derive(Clone)]
pub struct WorkerService {
    engines: Arc<Registry>,
    models: Vec<Arc<ModelEngine>>,
    sd_models: Vec<Arc<SdModel>>,
    max_image_pixels: u64,
}

impl WorkerService {
    pub fn new(
        engines: Arc<Registry>,
        models: Vec<Arc<ModelEngine>>,
        sd_models: Vec<Arc<SdModel>>,
        config: &Config,
    ) -> Self {
        Self {
            engines,
            models,
            sd_models,
            max_image_pixels: config.service.max_image_pixels,
        }
    }
}

impl WorkerService {
    /// Repaints a request's crops; with `steps`, engines that sample in
    /// steps report each one there. Dropped, it stops every crop's work.
    async fn run_crops(
        &self,
        req: InpaintCropsRequest,
        steps: Option<mpsc::UnboundedSender<SamplingStep>>,
    ) -> Result<InpaintCropsResponse, Status> {
        let engine = self
            .engines
            .get(&req.engine)
            .ok_or_else(|| Error::UnknownEngine {
                name: req.engine.clone(),
                available: self.engines.names().join(", "),
            })?;
        if req.radius > MAX_RADIUS {
            return Err(Error::invalid("radius", format!("must be at most {MAX_RADIUS}")).into());
        }
        let strength = req.strength.unwrap_or(1.0);
        if !(0.0..=1.0).contains(&strength) {
            return Err(Error::invalid("strength", format!("{strength} is not in 0..=1")).into());
        }
        let capabilities = engine.capabilities();
        if capabilities.anonymises && strength < 1.0 {
            // Blending with the original would let the hidden pixels through.
            return Err(Error::invalid(
                "strength",
                format!(
                    "engine {} hides what is under the mask and runs at strength 1 only",
                    engine.name()
                ),
            )
            .into());
        }
        let content = MaskedContent::try_from(req.masked_content)
            .map_err(|_| Error::invalid("masked_content", "unknown masked content"))?;
        let job = engine.start(&req, content)?;
        let crops = req
            .crops
            .into_iter()
            .enumerate()
            .map(|(i, c)| check_crop(i, c, self.max_image_pixels))
            .collect::<Result<Vec<_>, _>>()?;

        // All crops at once: native engines share the CPU slots, model
        // engines share their model's batches (with other requests' too).
        let prefill_content = engine.prefill_content(content);
        // Distinct but repeatable randomness per crop.
        let seeds: Vec<u64> = (0..crops.len())
            .map(|i| crop_seed(engine.name(), req.seed, i))
            .collect();
        let runs = crops
            .into_iter()
            .zip(&seeds)
            .enumerate()
            .map(|(i, (crop, &seed))| {
                let job = job.clone();
                let steps = steps
                    .clone()
                    .filter(|_| capabilities.streams_steps)
                    .map(|tx| StepReporter { crop: i as u32, tx });
                let params = CropParams { seed, steps };
                tokio::spawn(async move {
                    // Engines leave pixels outside the hole as they were, so at
                    // full strength the repaint is the answer as it stands and
                    // the original need not be kept for blending.
                    let original =
                        (strength < 1.0).then(|| (crop.image.clone(), crop.hole.clone()));
                    let answer = crop.answer;
                    let sketch = crop.sketch.as_ref().map(|(c, p)| (c, p));
                    let whole_hole = capabilities.repaints_sketch.then(|| crop.hole.clone());
                    let (guided, hole) = apply_sketch(crop.image, crop.hole, sketch);
                    let hole = whole_hole.unwrap_or(hole);
                    let seen = if capabilities.reads_hole {
                        // The sketch's colours are what an ORIGINAL prefill keeps.
                        prefill(guided, &hole, prefill_content, seed)
                    } else {
                        guided
                    };
                    let repainted = job.inpaint(seen, hole, params).await?;
                    let repainted = match original {
                        None => repainted,
                        Some((image, hole)) => blend_strength(&image, &repainted, &hole, strength),
                    };
                    Ok::<_, Error>(match answer {
                        Some(part) => repainted.crop(part),
                        None => repainted,
                    })
                })
            });
        let mut runs = AbortOnDrop(runs.collect());
        let mut images = Vec::new();
        for run in &mut runs.0 {
            let image = run.await.map_err(|e| Error::Task(e.to_string()))??;
            images.push(into_rgb_tensor(image));
        }
        let mut response = InpaintCropsResponse {
            images,
            engine: engine.name().to_string(),
            device: engine.device().to_string(),
            sd: vec![],
        };
        job.report(&seeds, &mut response);
        Ok(response)
    }
}

/// Aborts its tasks when dropped (a caller that went away stops the work).
struct AbortOnDrop<T>(Vec<tokio::task::JoinHandle<T>>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// The streaming call's events; dropping it (the client went away) stops
/// the work.
pub struct StepStream {
    events: UnboundedReceiverStream<Result<InpaintCropsEvent, Status>>,
    _work: AbortOnDrop<()>,
}

impl Stream for StepStream {
    type Item = Result<InpaintCropsEvent, Status>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::pin::Pin::new(&mut self.events).poll_next(cx)
    }
}

/// One crop, checked.
struct Crop {
    image: RgbImage,
    hole: GrayImage,
    sketch: Option<(RgbImage, GrayImage)>,
    /// The part of the repaint to answer with (None = all of it).
    answer: Option<PixelBox>,
}

fn check_crop(i: usize, crop: CropInput, max_pixels: u64) -> Result<Crop, Status> {
    let image = to_rgb(crop.image, &format!("crops[{i}].image"))?;
    let size = (image.width(), image.height());
    let same_size = |field: String, w: u32, h: u32| -> Result<(), Status> {
        if (w, h) != size {
            return Err(Error::invalid(field, "must be the image's size").into());
        }
        Ok(())
    };
    let hole = to_gray(crop.hole, &format!("crops[{i}].hole"))?;
    same_size(format!("crops[{i}].hole"), hole.width(), hole.height())?;
    if image.pixel_count() as u64 > max_pixels {
        return Err(Error::invalid(format!("crops[{i}].image"), "is over the pixel limit").into());
    }
    let sketch = match (crop.sketch, crop.sketch_mask) {
        (None, None) => None,
        (Some(colours), Some(painted)) => {
            let colours = to_rgb(Some(colours), &format!("crops[{i}].sketch"))?;
            same_size(
                format!("crops[{i}].sketch"),
                colours.width(),
                colours.height(),
            )?;
            let painted = to_gray(Some(painted), &format!("crops[{i}].sketch_mask"))?;
            same_size(
                format!("crops[{i}].sketch_mask"),
                painted.width(),
                painted.height(),
            )?;
            Some((colours, painted))
        }
        _ => {
            return Err(Error::invalid(
                format!("crops[{i}].sketch"),
                "sketch and sketch_mask come together",
            )
            .into());
        }
    };
    let answer = match crop.answer {
        None => None,
        Some(b) => {
            let inside = b.width > 0
                && b.height > 0
                && b.x.checked_add(b.width).is_some_and(|r| r <= size.0)
                && b.y.checked_add(b.height).is_some_and(|r| r <= size.1);
            if !inside {
                return Err(Error::invalid(
                    format!("crops[{i}].answer"),
                    format!(
                        "{b:?} is not a non-empty box inside the {}x{} crop",
                        size.0, size.1
                    ),
                )
                .into());
            }
            Some(PixelBox::new(b.x, b.y, b.width, b.height))
        }
    };
    Ok(Crop {
        image,
        hole,
        sketch,
        answer,
    })
}

#[tonic::async_trait]
impl InpaintWorker for WorkerService {
    #[instrument(skip_all, fields(engine = %request.get_ref().engine, crops = request.get_ref().crops.len()))]
    async fn inpaint_crops(
        &self,
        request: Request<InpaintCropsRequest>,
    ) -> Result<Response<InpaintCropsResponse>, Status> {
        Ok(Response::new(
            self.run_crops(request.into_inner(), None).await?,
        ))
    }

    type InpaintCropsStreamStream = StepStream;

    #[instrument(skip_all, fields(engine = %request.get_ref().engine, crops = request.get_ref().crops.len()))]
    async fn inpaint_crops_stream(
        &self,
        request: Request<InpaintCropsRequest>,
    ) -> Result<Response<StepStream>, Status> {
        let (tx, rx) = mpsc::unbounded_channel::<Result<InpaintCropsEvent, Status>>();
        let (steps, mut step_rx) = mpsc::unbounded_channel::<SamplingStep>();
        let this = self.clone();
        let forward = tx.clone();
        let run = tokio::spawn(async move {
            let work = this.run_crops(request.into_inner(), Some(steps));
            tokio::pin!(work);
            let result = loop {
                tokio::select! {
                    step = step_rx.recv() => if let Some(step) = step {
                        let _ = forward.send(Ok(InpaintCropsEvent { event: Some(Event::Step(step)) }));
                    },
                    result = &mut work => break result,
                }
            };
            // Steps reported just before the end come first.
            while let Ok(step) = step_rx.try_recv() {
                let _ = forward.send(Ok(InpaintCropsEvent {
                    event: Some(Event::Step(step)),
                }));
            }
            let last = result.map(|done| InpaintCropsEvent {
                event: Some(Event::Done(done)),
            });
            let _ = forward.send(last);
        });
        drop(tx);
        Ok(Response::new(StepStream {
            events: UnboundedReceiverStream::new(rx),
            _work: AbortOnDrop(vec![run]),
        }))
    }

    async fn list_engines(
        &self,
        _request: Request<ListEnginesRequest>,
    ) -> Result<Response<ListEnginesResponse>, Status> {
        let engines = self
            .engines
            .all()
            .map(|e| {
                let can = e.capabilities();
                EngineInfo {
                    name: e.name().into(),
                    description: e.description().into(),
                    device: e.device().into(),
                    reads_within_radius: can.reads_within_radius,
                    needs_model: can.needs_model,
                    streams_steps: can.streams_steps,
                }
            })
            .collect();
        Ok(Response::new(ListEnginesResponse {
            engines,
            default_engine: self.engines.default_name().into(),
        }))
    }

    async fn list_models(
        &self,
        _request: Request<ListModelsRequest>,
    ) -> Result<Response<ListModelsResponse>, Status> {
        let models = self
            .models
            .iter()
            .map(|m| {
                let (fixed_width, fixed_height) = m.spec.fixed_size.unwrap_or((0, 0));
                ModelInfo {
                    name: m.spec.name.clone(),
                    path: m.spec.path.display().to_string(),
                    device: m.device.name().into(),
                    dtype: match m.spec.dtype {
                        DType::F32 => "f32",
                        DType::U8 => "u8",
                    }
                    .into(),
                    fixed_width,
                    fixed_height,
                    side_multiple: m.spec.side_multiple,
                    max_batch: m.spec.max_batch as u32,
                    batches: m.stats.batches.load(Ordering::Relaxed),
                    crops: m.stats.crops.load(Ordering::Relaxed),
                    largest_batch: m.stats.largest.load(Ordering::Relaxed),
                    kind: "inpaint".into(),
                    ..Default::default()
                }
            })
            .chain(self.sd_models.iter().map(|m| ModelInfo {
                name: m.name.clone(),
                path: m.folder.root.display().to_string(),
                device: m.device().name().into(),
                dtype: m.io.unet_float.name().into(),
                kind: "sd".into(),
                unet_channels: m.io.unet_channels as u32,
                vae_factor: m.io.vae_factor as u32,
                side_multiple: m.io.vae_factor as u32,
                // Step-level batching: UNet calls, samples in them (two per
                // request and step), and the largest call.
                max_batch: m.unet_batcher.max_samples() as u32,
                batches: m.unet_batcher.stats.calls.load(Ordering::Relaxed),
                crops: m.unet_batcher.stats.samples.load(Ordering::Relaxed),
                largest_batch: m.unet_batcher.stats.largest.load(Ordering::Relaxed),
                notes: model_notes(m),
                samplers: sampler_names(),
                schedules: schedule_names(),
                ..Default::default()
            }))
            .collect();
        Ok(Response::new(ListModelsResponse { models }))
    }
}
