//! The inpaint stage: one worker call per crop, all at once (the worker
//! batches them, with other requests' crops too); each sampling step and
//! each finished crop is reported as progress.

use std::time::Duration;

use inpaint_common::tensor::{box_inside, into_gray_tensor, into_rgb_tensor, to_gray, wire_box};
use inpaint_common::trace::TracedChannel;
use inpaint_imaging::{PixelBox, RgbImage};
use inpaint_proto::v1::inpaint_crops_event::Event as CropEvent;
use inpaint_proto::v1::inpaint_worker_client::InpaintWorkerClient;
use inpaint_proto::v1::{
    self as pb, CropInput, InpaintCropsRequest, InpaintCropsResponse, PreparedCrop,
};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::base::Pipeline;
use super::progress::{Progress, Stage};
use super::validate::Checked;
use crate::error::Error;
use crate::regions;

/// The crops as planned: what is repainted and how it is pasted back.
pub(super) struct Plan {
    pub crops: Vec<pb::Crop>,
    /// Each crop's paste-back alpha.
    pub alphas: Vec<Option<pb::Tensor>>,
    /// The part of each crop the paste-back reads (None: all of it).
    pub answers: Vec<Option<PixelBox>>,
}

impl Plan {
    /// The plan in the mask service's answer; what is left of each
    /// prepared crop is what the worker is given.
    pub fn take(prepared: &mut [PreparedCrop], req: &Checked) -> Result<Plan, Error> {
        let mut crops = Vec::with_capacity(prepared.len());
        let mut alphas = Vec::with_capacity(prepared.len());
        for c in prepared.iter_mut() {
            let crop = c
                .crop
                .take()
                .ok_or_else(|| Error::stage_fault("mask", "a prepared crop without its box"))?;
            crops.push(crop);
            alphas.push(c.alpha.take());
        }
        let answers = crops
            .iter()
            .zip(&alphas)
            .map(|(crop, alpha)| crate::trim::answer_box(crop, alpha.as_ref(), &req.params))
            .collect();
        Ok(Plan {
            crops,
            alphas,
            answers,
        })
    }
}

/// The worker's answers, in the crops' order.
pub(super) struct Repainted {
    pub images: Vec<pb::Tensor>,
    /// Each crop's Stable Diffusion facts (seed, steps run...), if any.
    pub reports: Vec<Option<pb::SdReport>>,
    /// The engine that ran.
    pub engine: String,
}

type CropCall = (
    usize,
    Result<Result<InpaintCropsResponse, Error>, tokio::time::error::Elapsed>,
);

impl Pipeline {
    pub(super) async fn repaint(
        &self,
        req: &Checked,
        image: &RgbImage,
        plan: &Plan,
        inputs: Vec<PreparedCrop>,
        progress: &impl Progress,
    ) -> Result<Repainted, Error> {
        let total = plan.crops.len() as u32;
        let local = self
            .engine_names
            .reads_within_radius(&req.params.engine)
            .await;
        let mut calls = JoinSet::new();
        let (step_tx, mut step_rx) = tokio::sync::mpsc::unbounded_channel::<(u32, u32, u32)>();
        for (i, input) in inputs.into_iter().enumerate() {
            let request = crop_request(req, image, plan, i, input, local)?;
            spawn_call(
                &mut calls,
                self.stages.worker.clone(),
                request,
                i,
                self.stage_timeout,
                step_tx.clone(),
            );
        }
        drop(step_tx);
        let mut images: Vec<Option<pb::Tensor>> = vec![None; plan.crops.len()];
        let mut reports: Vec<Option<pb::SdReport>> = vec![None; plan.crops.len()];
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
            let (i, answer) = joined.map_err(|e| Error::stage_fault("worker", e.to_string()))?;
            let answer = answer.map_err(|_| {
                let late = format!("no answer within {:?}", self.stage_timeout);
                Error::stage_unavailable("worker", late)
            })??;
            engine = answer.engine;
            reports[i] = answer.sd.into_iter().next();
            images[i] = answer.images.into_iter().next();
            done += 1;
            progress.report(Stage::Inpainting { done, total }).await?;
        }
        let images = images
            .into_iter()
            .collect::<Option<_>>()
            .ok_or_else(|| Error::stage_fault("worker", "worker returned no image for a crop"))?;
        Ok(Repainted {
            images,
            reports,
            engine,
        })
    }
}

/// Crop `i`'s worker call: the request's engine settings (and its
/// region's overrides) over the crop's pixels, or only the part of them
/// an engine that reads near the hole needs.
fn crop_request(
    req: &Checked,
    image: &RgbImage,
    plan: &Plan,
    i: usize,
    input: PreparedCrop,
    reads_within_radius: bool,
) -> Result<InpaintCropsRequest, Error> {
    let params = &req.params;
    let mut request = InpaintCropsRequest {
        engine: params.engine.clone(),
        radius: params.radius,
        // Distinct but repeatable randomness per crop; Stable Diffusion
        // seeds crops as the WebUI seeds a batch (seed + index).
        seed: inpaint_common::seed::crop_seed(&params.engine, params.seed, i),
        model: params.model.clone(),
        masked_content: params.masked_content,
        strength: params.strength,
        sd: params.sd.clone(),
        crops: vec![],
    };
    if let [region] = input.regions[..]
        && let Some(o) = regions::override_for(params, region as usize)
    {
        regions::apply_to_crop(&mut request, o);
    }
    // A crop at its own size comes without pixels: cut here. An engine
    // that reads only near the hole gets only that part.
    let narrow = plan.answers[i].filter(|_| reads_within_radius && input.sketch.is_none());
    let area = || crop_area(&plan.crops[i], image);
    let (pixels, hole, answer) = match narrow {
        Some(part) => {
            let area = area()?;
            let reach = crate::trim::reach_box(part, area.width, area.height, params.radius);
            let hole =
                to_gray(input.hole, "hole").map_err(|status| Error::stage("mask", status))?;
            let within = PixelBox::new(
                area.x + reach.x,
                area.y + reach.y,
                reach.width,
                reach.height,
            );
            let part = PixelBox::new(part.x - reach.x, part.y - reach.y, part.width, part.height);
            (
                into_rgb_tensor(image.crop(within)),
                Some(into_gray_tensor(hole.crop(reach))),
                Some(part),
            )
        }
        None => {
            let pixels = match input.image {
                Some(pixels) => pixels,
                None => into_rgb_tensor(image.crop(area()?)),
            };
            (pixels, input.hole, plan.answers[i])
        }
    };
    request.crops = vec![CropInput {
        image: Some(pixels),
        hole,
        sketch: input.sketch,
        sketch_mask: input.sketch_mask,
        answer: answer.map(wire_box),
    }];
    Ok(request)
}

/// Starts crop `i`'s streaming call, which sends each sampling step to
/// `steps`.
fn spawn_call(
    calls: &mut JoinSet<CropCall>,
    mut worker: InpaintWorkerClient<TracedChannel>,
    request: InpaintCropsRequest,
    i: usize,
    limit: Duration,
    steps: UnboundedSender<(u32, u32, u32)>,
) {
    let failed = |status| public_worker_field(Error::stage("worker", status));
    calls.spawn(
        async move {
            let call = async {
                // The JoinSet dropping this task (a cancel, a caller gone)
                // drops the call, which stops the worker's work.
                let mut events = worker
                    .inpaint_crops_stream(request)
                    .await
                    .map_err(failed)?
                    .into_inner();
                while let Some(event) = events.message().await.map_err(failed)? {
                    match event.event {
                        Some(CropEvent::Step(step)) => {
                            let _ = steps.send((i as u32, step.step, step.steps));
                        }
                        Some(CropEvent::Done(done)) => return Ok(done),
                        None => {}
                    }
                }
                Err(Error::stage_fault(
                    "worker",
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

/// A crop's box in the image, checked to lie inside it.
pub(super) fn crop_area(crop: &pb::Crop, image: &RgbImage) -> Result<PixelBox, Error> {
    match crop
        .r#box
        .filter(|b| box_inside(b, image.width(), image.height()))
    {
        Some(b) => Ok(PixelBox::new(b.x, b.y, b.width, b.height)),
        None => Err(Error::stage_fault("mask", "a crop box outside the image")),
    }
}

/// The worker names Stable Diffusion fields `sd.*`; in the public API they
/// are `params.sd.*`.
fn public_worker_field(err: Error) -> Error {
    err.rename_stage_field(|field| field.starts_with("sd.").then(|| format!("params.{field}")))
}
