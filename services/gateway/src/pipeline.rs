//! One Inpaint request, stage by stage: decode, find regions, prepare masks
//! and crops, repaint, composite, encode.

use std::future::Future;
use std::time::{Duration, Instant};

use inpaint_common::limits::{MAX_RADIUS, MAX_WORK_SIDE, MIN_WORK_SIDE};
use inpaint_common::tensor::{
    box_inside, from_rgb, into_gray_tensor, into_rgb_tensor, mask_window, to_gray, to_rgb, wire_box,
};
use inpaint_imaging::{GrayImage, PixelBox, RgbImage, mask};
use inpaint_proto::v1::inpaint_crops_event::Event as CropEvent;
use inpaint_proto::v1::{
    self as pb, CompositeRequest, CropInput, CropResult, InpaintArea, InpaintCropsRequest,
    InpaintParams, InpaintRequest, InpaintResponse, ListEnginesRequest, MaskOp, PrepareRequest,
    RegionMode, SegmentRequest, StageTiming, inpaint_request::Target, mask_op::Op,
};

use tracing::Instrument;

use crate::decode::{
    Carried, DEFAULT_QUALITY, Decoding, decode_mask, decode_photo, decode_sketch, encode_gray_png,
    encode_result,
};
use crate::error::Error;
use crate::stages::Stages;
use crate::{regions, targets};

/// Padding around the mask's box in ONLY_MASKED mode when not given.
pub const DEFAULT_PADDING: u32 = 32;
/// Uploaded masks are binarised at this level before the user's operators.
const MASK_LEVEL: u32 = 128;

pub struct Pipeline {
    pub stages: Stages,
    pub max_image_pixels: u64,
    /// Longest any one stage call may take, including waiting for a
    /// reachable replica.
    pub stage_timeout: Duration,
    /// Requests and pixels this process holds, synchronous and job runs.
    pub inflight: std::sync::Arc<crate::inflight::InFlight>,
    /// The worker's engine names, as last listed.
    pub engine_names: EngineNames,
}

/// The worker's engines as last listed (name, and whether it reads only
/// within its radius of the hole) and its default, listed again at most
/// every `FRESH` while every name asked for is among them: a request costs
/// no ListEngines call of its own, and an engine a new worker brings is
/// seen at the first request that names it.
#[derive(Default)]
pub struct EngineNames(tokio::sync::Mutex<Option<(Instant, Listed)>>);

#[derive(Debug, Clone, PartialEq)]
struct Listed {
    engines: Vec<(String, bool)>,
    default: String,
}

impl Listed {
    fn knows(&self, name: &str) -> bool {
        name.is_empty() || self.engines.iter().any(|(n, _)| n == name)
    }
}

impl EngineNames {
    const FRESH: Duration = Duration::from_secs(30);

    /// The cached list when fresh and knowing every one of `wanted`.
    async fn cached(&self, wanted: &[&str]) -> Option<Listed> {
        let guard = self.0.lock().await;
        let (at, listed) = guard.as_ref()?;
        let fresh = at.elapsed() < Self::FRESH;
        (fresh && wanted.iter().all(|w| listed.knows(w))).then(|| listed.clone())
    }

    async fn store(&self, listed: Listed) {
        *self.0.lock().await = Some((Instant::now(), listed));
    }

    /// Whether `engine` (empty: the default) reads only within its radius
    /// of the hole, as last listed (false before a request named an
    /// engine).
    pub async fn reads_within_radius(&self, engine: &str) -> bool {
        let guard = self.0.lock().await;
        let Some((_, listed)) = guard.as_ref() else {
            return false;
        };
        let name = if engine.is_empty() {
            &listed.default
        } else {
            engine
        };
        listed.engines.iter().any(|(n, local)| n == name && *local)
    }
}

/// A stage boundary of one request, for progress reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Segmenting,
    MasksReady {
        regions: u32,
    },
    Inpainting {
        done: u32,
        total: u32,
    },
    /// Region `region` ran `step` of its `steps` sampling steps.
    Sampling {
        region: u32,
        step: u32,
        steps: u32,
    },
    Compositing,
}

impl Stage {
    /// (stage name, regions done, regions total) for job events.
    pub fn describe(self) -> (&'static str, u32, u32) {
        match self {
            Stage::Segmenting => ("segmenting", 0, 0),
            Stage::MasksReady { regions } => ("masks_ready", 0, regions),
            Stage::Inpainting { done, total } => ("inpainting", done, total),
            // Region counts stay as the inpainting events set them.
            Stage::Sampling { .. } => ("sampling", 0, 0),
            Stage::Compositing => ("compositing", 0, 0),
        }
    }

    /// (region, step, steps) of a sampling step.
    pub fn step(self) -> Option<(u32, u32, u32)> {
        match self {
            Stage::Sampling {
                region,
                step,
                steps,
                ..
            } => Some((region, step, steps)),
            _ => None,
        }
    }
}

/// Hears about each stage boundary; an error stops the request there (a
/// job's cancellation).
pub trait Progress: Sync {
    fn report(&self, stage: Stage) -> impl Future<Output = Result<(), Error>> + Send;
}

/// For synchronous calls: nobody is listening.
pub struct Silent;

impl Progress for Silent {
    async fn report(&self, _stage: Stage) -> Result<(), Error> {
        Ok(())
    }
}

/// Accumulates per-stage timings for the response.
struct Timer {
    timings: Vec<StageTiming>,
    started: Instant,
}

impl Timer {
    fn new() -> Self {
        Self {
            timings: Vec::new(),
            started: Instant::now(),
        }
    }

    fn lap(&mut self, stage: &str) {
        let now = Instant::now();
        crate::metrics::stage_seconds()
            .with_label_values(&[stage])
            .observe((now - self.started).as_secs_f64());
        self.timings.push(StageTiming {
            stage: stage.into(),
            millis: (now - self.started).as_secs_f64() * 1e3,
        });
        self.started = now;
    }
}

/// What to repaint, once decoded.
pub(crate) enum Regions {
    Found {
        /// Each region's mask as it travels: its box and the pixels in it.
        masks: Vec<(PixelBox, GrayImage)>,
        regions: Vec<pb::Region>,
    },
    None {
        note: String,
    },
}

impl Pipeline {
    #[tracing::instrument(
        name = "inpaint",
        skip_all,
        fields(engine = tracing::field::Empty, target = tracing::field::Empty, image_bytes = req.image.len())
    )]
    pub async fn inpaint(
        &self,
        req: InpaintRequest,
        progress: &impl Progress,
    ) -> Result<InpaintResponse, Error> {
        let params = req.params.unwrap_or_default();
        let target = req
            .target
            .ok_or_else(|| Error::invalid("target", "set `mask`, `faces`, `prompt` or `detect`"))?;
        let span = tracing::Span::current();
        span.record("engine", params.engine.as_str());
        span.record("target", crate::targets::describe(&target));
        let mut engines = vec![(params.engine.clone(), "params.engine".to_string())];
        engines.extend(regions::engines(&params).enumerate().map(|(k, engine)| {
            let field = format!("params.region_overrides[{k}].engine");
            (engine.to_string(), field)
        }));
        self.check_engines(&engines).await?;
        let mut timer = Timer::new();

        let decoding = Decoding {
            max_pixels: self.max_image_pixels,
            upright: !params.keep_stored_orientation,
        };
        let photo = decode_photo(&req.image, "image", decoding)?;
        let exif = photo
            .exif
            .filter(|_| params.keep_metadata)
            .map(|e| crate::exif::carried(e, photo.turned, params.keep_gps));
        let carried = Carried {
            icc: photo.icc.as_deref(),
            exif: exif.as_deref(),
            deep: photo.deep.as_ref(),
        };
        let image = photo.image;
        let photo_notes = photo.notes;
        check_params(&params, &image)?;
        let mode = regions::validate(&params, image.width().max(image.height()))?;
        let sketch = if req.sketch.is_empty() {
            None
        } else {
            Some(decode_sketch(&req.sketch, &image, decoding)?)
        };
        timer.lap("decode");

        let upload = matches!(target, Target::Mask(_));
        // Regions are repainted one by one (detections at the working size)
        // unless asked to merge them; an upload is a single region.
        let merged = mode == RegionMode::Merged;
        let separate = !merged;
        let default_area = if upload {
            InpaintArea::Whole
        } else {
            InpaintArea::OnlyMasked
        };
        progress.report(Stage::Segmenting).await?;
        let regions = self.find_regions(target, &image, decoding).await?;
        timer.lap("segment");
        let (masks, regions) = match regions {
            Regions::Found { masks, regions } => (masks, regions),
            Regions::None { note } => {
                let notes = [photo_notes, vec![note]].concat();
                return unchanged(req.image, &image, carried, &params, notes, vec![], timer);
            }
        };

        let area = match InpaintArea::try_from(params.area) {
            Ok(InpaintArea::Unspecified) => default_area,
            Ok(area) => area,
            Err(_) => return Err(Error::invalid("params.area", "unknown inpaint area")),
        };
        let user_ops = !params.mask_ops.is_empty();
        let mut ops = if user_ops {
            params.mask_ops.clone()
        } else {
            mask_ops(&params)
        };
        if merged {
            ops = regions::merge_first(ops);
        }
        let mut notes = photo_notes;
        let region_ops = if separate {
            notes.extend(regions::unused_overrides(&params, masks.len()));
            regions::region_ops(&params, masks.len(), mask_ops)
        } else {
            vec![]
        };
        let prepared = self
            .call(
                "mask",
                self.stages.mask.clone().prepare(PrepareRequest {
                    image: Some(from_rgb(&image)),
                    mask_boxes: masks.iter().map(|(area, _)| wire_box(*area)).collect(),
                    masks: masks
                        .into_iter()
                        .map(|(_, m)| into_gray_tensor(m))
                        .collect(),
                    ops,
                    region_ops,
                    area: area as i32,
                    padding: params.padding.unwrap_or(DEFAULT_PADDING),
                    work_width: params.work_width,
                    work_height: params.work_height,
                    keep_crops_apart: params.keep_crops_apart || separate,
                    return_mask: params.return_mask,
                    sketch: sketch.as_ref().map(|(colours, _)| from_rgb(colours)),
                    sketch_mask: sketch.map(|(_, painted)| into_gray_tensor(painted)),
                    caller_cuts_same_size: true,
                }),
            )
            .await
            .map_err(|err| if user_ops { public_op_field(err) } else { err })?;
        timer.lap("prepare");
        if prepared.empty {
            notes.push("the mask is empty after processing: nothing to repaint".to_string());
            return unchanged(req.image, &image, carried, &params, notes, regions, timer);
        }

        let mut crops: Vec<pb::Crop> = prepared
            .crops
            .iter()
            .filter_map(|c| c.crop.clone())
            .collect();
        let total = crops.len() as u32;
        progress
            .report(Stage::MasksReady { regions: total })
            .await?;
        progress
            .report(Stage::Inpainting { done: 0, total })
            .await?;
        let alphas: Vec<Option<pb::Tensor>> =
            prepared.crops.iter().map(|c| c.alpha.clone()).collect();
        // The part of each crop the paste-back reads (None: all of it).
        let answers: Vec<Option<PixelBox>> = crops
            .iter()
            .zip(&alphas)
            .map(|(crop, alpha)| crate::trim::answer_box(crop, alpha.as_ref(), &params))
            .collect();
        // One call per crop, all at once: the worker batches them (with other
        // requests' crops) and each finished crop is reported as progress.
        let template = InpaintCropsRequest {
            engine: params.engine.clone(),
            radius: params.radius,
            seed: params.seed,
            model: params.model.clone(),
            masked_content: params.masked_content,
            strength: params.strength,
            sd: params.sd.clone(),
            crops: vec![],
        };
        let local = self.engine_names.reads_within_radius(&params.engine).await;
        let mut calls = tokio::task::JoinSet::new();
        let (step_tx, mut step_rx) = tokio::sync::mpsc::unbounded_channel::<(u32, u32, u32)>();
        for (i, c) in prepared.crops.into_iter().enumerate() {
            let mut request = template.clone();
            // Distinct but repeatable randomness per crop; Stable Diffusion
            // seeds crops as the WebUI seeds a batch (seed + index).
            request.seed = inpaint_common::seed::crop_seed(&request.engine, params.seed, i);
            if let [region] = c.regions[..]
                && let Some(o) = regions::override_for(&params, region as usize)
            {
                regions::apply_to_crop(&mut request, o);
            }
            // A crop at its own size comes without pixels: cut here. An
            // engine that reads only near the hole gets only that part.
            let narrow = answers[i].filter(|_| local && c.sketch.is_none());
            let (pixels, hole, answer) = match narrow {
                Some(part) => {
                    let area = crop_area(&crops[i], &image)?;
                    let reach =
                        crate::trim::reach_box(part, area.width, area.height, params.radius);
                    let hole = to_gray(c.hole, "hole").map_err(|status| stage("mask", status))?;
                    let within = PixelBox::new(
                        area.x + reach.x,
                        area.y + reach.y,
                        reach.width,
                        reach.height,
                    );
                    let part =
                        PixelBox::new(part.x - reach.x, part.y - reach.y, part.width, part.height);
                    (
                        into_rgb_tensor(image.crop(within)),
                        Some(into_gray_tensor(hole.crop(reach))),
                        Some(part),
                    )
                }
                None => {
                    let pixels = match c.image {
                        Some(pixels) => pixels,
                        None => into_rgb_tensor(image.crop(crop_area(&crops[i], &image)?)),
                    };
                    (pixels, c.hole, answers[i])
                }
            };
            request.crops = vec![CropInput {
                image: Some(pixels),
                hole,
                sketch: c.sketch,
                sketch_mask: c.sketch_mask,
                answer: answer.map(wire_box),
            }];
            let mut worker = self.stages.worker.clone();
            let limit = self.stage_timeout;
            let steps = step_tx.clone();
            calls.spawn(
                async move {
                    let call = async {
                        // The streaming call reports each sampling step; the
                        // JoinSet dropping this task (a cancel, a caller gone)
                        // drops the call, which stops the worker's work.
                        let mut events = worker.inpaint_crops_stream(request).await?.into_inner();
                        while let Some(event) = events.message().await? {
                            match event.event {
                                Some(CropEvent::Step(step)) => {
                                    let _ = steps.send((i as u32, step.step, step.steps));
                                }
                                Some(CropEvent::Done(done)) => return Ok(done),
                                None => {}
                            }
                        }
                        Err(tonic::Status::internal(
                            "the worker's stream ended without a result",
                        ))
                    };
                    (i, tokio::time::timeout(limit, call).await)
                }
                // A spawned task starts outside any span: this one keeps the
                // crop's call in the request's trace.
                .instrument(tracing::info_span!(
                    "stage",
                    otel.name = "worker",
                    stage = "worker",
                    crop = i
                )),
            );
        }
        drop(step_tx);
        let mut images: Vec<Option<pb::Tensor>> = vec![None; crops.len()];
        let mut sd_reports: Vec<Option<pb::SdReport>> = vec![None; crops.len()];
        let mut engine = String::new();
        let mut done = 0;
        loop {
            let joined = tokio::select! {
                Some((region, step, steps)) = step_rx.recv() => {
                    progress.report(Stage::Sampling { region, step, steps }).await?;
                    continue;
                }
                joined = calls.join_next() => match joined {
                    Some(joined) => joined,
                    None => break,
                },
            };
            let (i, answer) =
                joined.map_err(|e| stage("worker", tonic::Status::internal(e.to_string())))?;
            let answer = match answer {
                Ok(Ok(response)) => response,
                Ok(Err(status)) => return Err(public_worker_field(stage("worker", status))),
                Err(_) => {
                    let late = format!("no answer within {:?}", self.stage_timeout);
                    return Err(stage("worker", tonic::Status::unavailable(late)));
                }
            };
            engine = answer.engine;
            sd_reports[i] = answer.sd.into_iter().next();
            images[i] = answer.images.into_iter().next();
            done += 1;
            progress.report(Stage::Inpainting { done, total }).await?;
        }
        timer.lap("inpaint");
        for (crop, report) in crops.iter_mut().zip(sd_reports) {
            crop.sd = report;
        }
        let images: Vec<pb::Tensor> =
            images.into_iter().collect::<Option<_>>().ok_or_else(|| {
                stage(
                    "worker",
                    tonic::Status::internal("worker returned no image for a crop"),
                )
            })?;
        progress.report(Stage::Compositing).await?;

        // What is pasted: each crop, or the part of it the worker answered
        // with.
        let (pasted, alphas): (Vec<pb::Crop>, Vec<Option<pb::Tensor>>) = crops
            .iter()
            .zip(alphas)
            .zip(&answers)
            .map(|((crop, alpha), answer)| match answer {
                Some(part) => crate::trim::narrow(crop, alpha, *part),
                None => (crop.clone(), alpha),
            })
            .unzip();
        // Only the parts the crops touch travel, there and back: the
        // boxes of each group of overlapping crops.
        let boxes = pasted
            .iter()
            .map(|crop| crop_area(crop, &image))
            .collect::<Result<Vec<_>, _>>()?;
        let windows = PixelBox::merge_overlapping(&boxes);
        let composited = self
            .call(
                "mask",
                self.stages.mask.clone().composite(CompositeRequest {
                    image: None,
                    windows: windows
                        .iter()
                        .map(|w| pb::Window {
                            r#box: Some(wire_box(*w)),
                            image: Some(into_rgb_tensor(image.crop(*w))),
                        })
                        .collect(),
                    results: pasted
                        .iter()
                        .zip(images)
                        .zip(alphas)
                        .map(|((crop, image), alpha)| CropResult {
                            crop: Some(crop.clone()),
                            image: Some(image),
                            alpha,
                        })
                        .collect(),
                    color_correction: params.color_correction,
                    seamless: params.seamless,
                }),
            )
            .await?;
        timer.lap("composite");
        if composited.windows.len() != windows.len() {
            let wrong = format!(
                "{} windows back for {}",
                composited.windows.len(),
                windows.len()
            );
            return Err(stage("mask", tonic::Status::internal(wrong)));
        }
        let mut result = image;
        for (w, back) in windows.iter().zip(composited.windows) {
            let back = to_rgb(Some(back), "window").map_err(|status| stage("mask", status))?;
            if (back.width(), back.height()) != (w.width, w.height) {
                let wrong = format!("a window came back {}x{}", back.width(), back.height());
                return Err(stage("mask", tonic::Status::internal(wrong)));
            }
            result.paste(&back, w.x, w.y);
        }
        let (encoded, mime_type) = encode_result(
            &result,
            pb::OutputFormat::try_from(params.output_format).unwrap_or_default(),
            params.quality.map_or(DEFAULT_QUALITY, |q| q as u8),
            &req.image,
            carried,
        )?;
        let used_mask = match prepared.mask {
            Some(m) => {
                let m = to_gray(Some(m), "mask").map_err(|status| stage("mask", status))?;
                encode_gray_png(&m)?
            }
            None => vec![],
        };
        timer.lap("encode");

        Ok(InpaintResponse {
            image: encoded,
            mime_type: mime_type.into(),
            width: result.width(),
            height: result.height(),
            unchanged: false,
            notes,
            regions,
            crops,
            timings: timer.timings,
            engine,
            mask: used_mask,
        })
    }

    /// One stage call, bounded by the stage timeout.
    pub(crate) async fn call<T>(
        &self,
        name: &'static str,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, Error> {
        // The stage's own span is this one's child: the call carries its
        // trace context (see `Stages`).
        let span = tracing::info_span!("stage", otel.name = name, stage = name);
        match tokio::time::timeout(self.stage_timeout, call.instrument(span)).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(stage(name, status)),
            Err(_) => Err(stage(
                name,
                tonic::Status::unavailable(format!("no answer within {:?}", self.stage_timeout)),
            )),
        }
    }

    /// Refuses an unknown engine before any pixel work is done.
    /// Refuses unknown engines (each named with its field) before any pixel
    /// work is done; one ListEngines call, and none when all are defaults.
    async fn check_engines(&self, engines: &[(String, String)]) -> Result<(), Error> {
        // Default engines need no check (and no call to a worker that may
        // be down before the stages that come first have been tried).
        if engines.iter().all(|(engine, _)| engine.is_empty()) {
            return Ok(());
        }
        let wanted: Vec<&str> = engines.iter().map(|(engine, _)| engine.as_str()).collect();
        if self.engine_names.cached(&wanted).await.is_some() {
            return Ok(());
        }
        let list = self
            .call(
                "worker",
                self.stages
                    .worker
                    .clone()
                    .list_engines(ListEnginesRequest {}),
            )
            .await?;
        let listed = Listed {
            engines: list
                .engines
                .into_iter()
                .map(|e| (e.name, e.reads_within_radius))
                .collect(),
            default: list.default_engine,
        };
        self.engine_names.store(listed.clone()).await;
        match engines.iter().find(|(engine, _)| !listed.knows(engine)) {
            None => Ok(()),
            Some((engine, field)) => {
                let names: Vec<&str> = listed.engines.iter().map(|(n, _)| n.as_str()).collect();
                Err(Error::invalid(
                    field.as_str(),
                    format!("unknown engine {engine:?}; available: {}", names.join(", ")),
                ))
            }
        }
    }

    pub(crate) async fn find_regions(
        &self,
        target: Target,
        image: &RgbImage,
        decoding: Decoding,
    ) -> Result<Regions, Error> {
        match target {
            Target::Mask(bytes) => {
                let m = decode_mask(&bytes, image.width(), image.height(), decoding)?;
                let window = mask_window(&m);
                let Some(area) = mask::bounding_box(&mask::threshold(&m, MASK_LEVEL as u8)) else {
                    // Still goes through the operators: an inverted empty mask is full.
                    return Ok(Regions::Found {
                        masks: vec![window],
                        regions: vec![],
                    });
                };
                let region = pb::Region {
                    r#box: Some(wire_box(area)),
                    score: 1.0,
                    label: "upload".into(),
                    mask: None,
                    mask_box: None,
                };
                Ok(Regions::Found {
                    masks: vec![window],
                    regions: vec![region],
                })
            }
            detection => {
                let (sources, public) =
                    targets::sources(&detection)?.expect("an upload is handled above");
                let found = self
                    .call(
                        "segmentation",
                        self.stages.segmentation.clone().segment(SegmentRequest {
                            image: Some(from_rgb(image)),
                            sources,
                        }),
                    )
                    .await
                    .map_err(|err| targets::public_field(err, public))?;
                if found.regions.is_empty() {
                    let what = targets::describe(&detection);
                    return Ok(Regions::None {
                        note: format!("no {what} found: nothing to repaint"),
                    });
                }
                let mut masks = Vec::with_capacity(found.regions.len());
                let mut regions = Vec::with_capacity(found.regions.len());
                let (w, h) = (image.width(), image.height());
                for mut region in found.regions {
                    let bad = |status| stage("segmentation", status);
                    let m = to_gray(region.mask.take(), "regions.mask").map_err(bad)?;
                    // A mask of the image's size when no box comes with it.
                    let area = region
                        .mask_box
                        .take()
                        .unwrap_or(wire_box(PixelBox::new(0, 0, w, h)));
                    let fits = box_inside(&area, w, h)
                        && (m.width(), m.height()) == (area.width, area.height);
                    let area = PixelBox::new(area.x, area.y, area.width, area.height);
                    if !fits {
                        let wrong = "a region mask that does not fit its box in the image";
                        return Err(bad(tonic::Status::internal(wrong)));
                    }
                    masks.push((area, m));
                    regions.push(region);
                }
                Ok(Regions::Found { masks, regions })
            }
        }
    }
}

/// A crop's box in the image, checked to lie inside it.
fn crop_area(crop: &pb::Crop, image: &RgbImage) -> Result<PixelBox, Error> {
    match crop
        .r#box
        .filter(|b| box_inside(b, image.width(), image.height()))
    {
        Some(b) => Ok(PixelBox::new(b.x, b.y, b.width, b.height)),
        None => Err(stage(
            "mask",
            tonic::Status::internal("a crop box outside the image"),
        )),
    }
}

/// The operator chain the public parameters stand for, in A1111's order.
/// Inverting joins the regions first: "everything but the faces" is the
/// complement of their union, not the union of each one's complement.
fn mask_ops(params: &InpaintParams) -> Vec<MaskOp> {
    let mut ops = vec![Op::Threshold(pb::Threshold { level: MASK_LEVEL })];
    if params.invert {
        ops.push(Op::Combine(pb::Combine {
            mode: pb::CombineMode::MergeInvert as i32,
        }));
    }
    if params.grow != 0 {
        ops.push(Op::Grow(pb::Grow {
            pixels: params.grow,
            ..Default::default()
        }));
    }
    if params.mask_blur > 0 {
        ops.push(Op::Feather(pb::Feather {
            radius: params.mask_blur,
            ..Default::default()
        }));
    }
    ops.into_iter().map(|op| MaskOp { op: Some(op) }).collect()
}

/// Stable Diffusion settings, checked when the request (or a region
/// override) uses engine "sd" or carries them.
pub fn check_sd(params: &InpaintParams) -> Result<(), Error> {
    let uses_sd = params.engine == "sd" || regions::engines(params).any(|e| e == "sd");
    let any_sd = params.sd.is_some() || params.region_overrides.iter().any(|o| o.sd.is_some());
    if !uses_sd && !any_sd {
        return Ok(());
    }
    let sd = params.sd.clone().unwrap_or_default();
    let resolve = |sd: &pb::SdParams, prefix: &str| {
        inpaint_common::sd_params::resolve(sd, prefix)
            .map(|_| ())
            .map_err(|(field, reason)| Error::invalid(field, reason))
    };
    resolve(&sd, "params.sd.")?;
    for (k, o) in params.region_overrides.iter().enumerate() {
        if let Some(own) = &o.sd {
            let merged = regions::merge_sd(params.sd.as_ref(), own);
            resolve(&merged, &format!("params.region_overrides[{k}].sd."))?;
        }
    }
    Ok(())
}

/// Every check that needs no image: run on `Inpaint` before any stage and
/// on `SubmitJob` at submission (which prefixes the fields with
/// "request."). Fields are named as the public API names them.
pub fn check_wire_params(params: &InpaintParams) -> Result<(), Error> {
    check_sd(params)?;
    if let Some(s) = params.strength.filter(|s| !(0.0..=1.0).contains(s)) {
        return Err(Error::invalid(
            "params.strength",
            format!("{s} is not in 0..=1"),
        ));
    }
    if pb::OutputFormat::try_from(params.output_format).is_err() {
        return Err(Error::invalid(
            "params.output_format",
            "unknown output format",
        ));
    }
    if let Some(q) = params.quality.filter(|q| !(1..=100).contains(q)) {
        return Err(Error::invalid(
            "params.quality",
            format!("{q} is not in 1..=100"),
        ));
    }
    if pb::MaskedContent::try_from(params.masked_content).is_err() {
        return Err(Error::invalid(
            "params.masked_content",
            "unknown masked content",
        ));
    }
    for (field, side) in [
        ("params.work_width", params.work_width),
        ("params.work_height", params.work_height),
    ] {
        if side != 0 && !(MIN_WORK_SIDE..=MAX_WORK_SIDE).contains(&side) {
            return Err(Error::invalid(
                field,
                format!("{side} must be 0 (default) or in {MIN_WORK_SIDE}..={MAX_WORK_SIDE}"),
            ));
        }
    }
    if params.radius > MAX_RADIUS {
        return Err(Error::invalid(
            "params.radius",
            format!("{} is over {MAX_RADIUS}", params.radius),
        ));
    }
    Ok(())
}

fn check_params(params: &InpaintParams, image: &RgbImage) -> Result<(), Error> {
    check_wire_params(params)?;
    let longest = image.width().max(image.height());
    if params.grow.unsigned_abs() > longest {
        return Err(Error::invalid(
            "params.grow",
            format!(
                "|{}| is beyond the image's longer side ({longest})",
                params.grow
            ),
        ));
    }
    if params.mask_blur > longest {
        return Err(Error::invalid(
            "params.mask_blur",
            format!(
                "{} is beyond the image's longer side ({longest})",
                params.mask_blur
            ),
        ));
    }
    Ok(())
}

/// Nothing to repaint: the upload as it came, unless another format (or
/// an upright copy of a turned photo) was asked for.
fn unchanged(
    original: Vec<u8>,
    image: &RgbImage,
    carried: Carried<'_>,
    params: &InpaintParams,
    notes: Vec<String>,
    regions: Vec<pb::Region>,
    timer: Timer,
) -> Result<InpaintResponse, Error> {
    let format = pb::OutputFormat::try_from(params.output_format).unwrap_or_default();
    let sent = sniff_mime(&original);
    let wanted = match format {
        pb::OutputFormat::Unspecified | pb::OutputFormat::SameAsInput => sent,
        pb::OutputFormat::Png => "image/png",
        pb::OutputFormat::Jpeg => "image/jpeg",
        pb::OutputFormat::Webp => "image/webp",
    };
    let (bytes, mime_type) = if wanted == sent {
        (original, sent)
    } else {
        encode_result(
            image,
            format,
            params.quality.map_or(DEFAULT_QUALITY, |q| q as u8),
            &original,
            carried,
        )?
    };
    Ok(InpaintResponse {
        mime_type: mime_type.into(),
        image: bytes,
        width: image.width(),
        height: image.height(),
        unchanged: true,
        notes,
        regions,
        crops: vec![],
        timings: timer.timings,
        engine: String::new(),
        mask: vec![],
    })
}

fn sniff_mime(bytes: &[u8]) -> &'static str {
    match image::guess_format(bytes) {
        Ok(image::ImageFormat::Jpeg) => "image/jpeg",
        Ok(image::ImageFormat::WebP) => "image/webp",
        _ => "image/png",
    }
}

/// The mask service names operations `ops[i]...`; in the public API they are
/// `params.mask_ops[i]...`.
fn public_op_field(err: Error) -> Error {
    err.rename_stage_field(|field| {
        field
            .starts_with("ops")
            .then(|| format!("params.mask_{field}"))
    })
}

/// The worker names Stable Diffusion fields `sd.*`; in the public API they
/// are `params.sd.*`.
fn public_worker_field(err: Error) -> Error {
    err.rename_stage_field(|field| field.starts_with("sd.").then(|| format!("params.{field}")))
}

/// A stage's answer as an error. When the connection itself broke
/// mid-call (the stage's process died: tonic reports INTERNAL or UNKNOWN
/// with the transport's error underneath, where a status the stage sent
/// has none), it is UNAVAILABLE, as an unreachable stage is: stage calls
/// are idempotent, so a job runs again (on another replica) rather than
/// failing.
fn stage(stage: &'static str, status: tonic::Status) -> Error {
    let broken = matches!(status.code(), tonic::Code::Internal | tonic::Code::Unknown)
        && std::error::Error::source(&status).is_some();
    let status = if broken {
        tonic::Status::unavailable(format!(
            "the connection broke mid-call: {}",
            status.message()
        ))
    } else {
        status
    };
    Error::Stage { stage, status }
}

#[cfg(test)]
mod tests {
    use super::{EngineNames, Listed};

    #[tokio::test]
    async fn engine_names_answer_only_when_every_name_is_known() {
        let names = EngineNames::default();
        assert_eq!(names.cached(&["telea"]).await, None, "nothing listed yet");
        assert!(!names.reads_within_radius("").await);
        names
            .store(Listed {
                engines: vec![("telea".into(), true), ("onnx".into(), false)],
                default: "telea".into(),
            })
            .await;
        assert!(names.cached(&["telea", "onnx", ""]).await.is_some());
        assert_eq!(
            names.cached(&["sd"]).await,
            None,
            "a new name is listed again"
        );
        assert!(names.reads_within_radius("").await, "the default, telea");
        assert!(!names.reads_within_radius("onnx").await);
    }
}
