//! The `sd` engine: Stable Diffusion pipelines from the model config,
//! behind the worker's engine trait. A crop's pixels outside its hole come
//! back untouched (the VAE round trip never reaches them); the mask service
//! pastes the result back.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use inpaint_imaging::{GrayImage, RgbImage};
use inpaint_proto::v1::{
    InpaintCropsRequest, InpaintCropsResponse, MaskedContent, SdParams as WireParams, SdReport,
};

use inpaint_common::sd_params;

use super::graph::EncoderOutput;
use super::img2img::{LatentFill, SamplingPlan};
use super::lora::LoraSet;
use super::lora::tags::{self, LoraUse};
use super::model::SdModel;
use super::networks;
use super::pipeline::{self, Pixels, SdRequest};
use super::sampler::SamplerKind;
use super::schedule::Schedule;
use crate::engine::{Capabilities, CropParams, Engine, EngineFuture, Job, pick_model};
use crate::error::Error;

/// Checked Stable Diffusion settings for one request.
#[derive(Debug, Clone, PartialEq)]
pub struct SdSettings {
    pub prompt: String,
    pub negative_prompt: String,
    pub sampler: SamplerKind,
    pub schedule: Schedule,
    pub steps: u32,
    pub cfg_scale: f32,
    pub denoising_strength: f32,
    pub inpainting_mask_weight: f32,
    /// LoRAs named in the request's fields (ComfyUI-style); the prompts'
    /// tags are read when the job starts.
    pub loras: Vec<LoraUse>,
}

impl SdSettings {
    /// Validates the wire settings (the public contract in
    /// `inpaint_common::sd_params`); errors name the field under `prefix`.
    pub fn from_wire(p: &WireParams, prefix: &str) -> Result<Self, Error> {
        let r = sd_params::resolve(p, prefix)
            .map_err(|(field, reason)| Error::invalid(field, reason))?;
        Ok(Self {
            prompt: r.prompt,
            negative_prompt: r.negative_prompt,
            sampler: r.sampler,
            schedule: r.schedule,
            steps: r.steps,
            cfg_scale: r.cfg_scale,
            denoising_strength: r.denoising_strength,
            inpainting_mask_weight: r.inpainting_mask_weight,
            loras: p
                .loras
                .iter()
                .map(|l| LoraUse {
                    name: l.name.clone(),
                    te: l.text_encoder_weight.unwrap_or(1.0),
                    unet: l.unet_weight.unwrap_or(1.0),
                    dyn_dim: None,
                })
                .collect(),
        })
    }

    pub fn plan(&self) -> SamplingPlan {
        SamplingPlan {
            sampler: self.sampler,
            schedule: self.schedule,
            steps: self.steps,
            denoising_strength: self.denoising_strength,
        }
    }
}

/// Masked content as the WebUI's `inpainting_fill`: what the pixels are
/// pre-filled with before encoding, and what the hole's latent starts from.
pub fn webui_fill(content: MaskedContent) -> (MaskedContent, LatentFill) {
    match content {
        MaskedContent::Original => (MaskedContent::Original, LatentFill::Encoded),
        MaskedContent::Fill | MaskedContent::Unspecified => {
            (MaskedContent::Fill, LatentFill::Encoded)
        }
        MaskedContent::Noise => (MaskedContent::Fill, LatentFill::Noise),
        MaskedContent::Nothing => (MaskedContent::Fill, LatentFill::Zeros),
    }
}

/// Every loaded Stable Diffusion pipeline, behind the engine name "sd".
pub struct SdEngine {
    pub models: Vec<Arc<SdModel>>,
}

impl SdEngine {
    pub fn model(&self, name: &str) -> Result<Arc<SdModel>, Error> {
        if self.models.is_empty() {
            return Err(Error::NoSdModel);
        }
        pick_model(&self.models, name, |m| &m.name)
    }
}

/// Most 75-token chunks a prompt may fill (600 tokens; the WebUI sets no
/// limit, but every chunk costs a text-encoder run and UNet attention).
pub const MAX_PROMPT_CHUNKS: usize = 8;

/// Refuses a prompt the tokenizer cannot read or that is too long.
fn check_prompt(model: &SdModel, text: &str, field: &str) -> Result<(), Error> {
    let chunks = pipeline::prompt_chunks(model, text).map_err(|e| Error::invalid(field, e))?;
    if chunks.len() > MAX_PROMPT_CHUNKS {
        return Err(Error::invalid(
            field,
            format!(
                "{} chunks of 75 tokens; at most {MAX_PROMPT_CHUNKS}",
                chunks.len()
            ),
        ));
    }
    Ok(())
}

impl Engine for SdEngine {
    fn name(&self) -> &'static str {
        "sd"
    }
    fn description(&self) -> &'static str {
        "Stable Diffusion inpainting from an ONNX export (prompt, sampler, steps, CFG, denoising strength; the WebUI's img2img semantics)"
    }
    fn device(&self) -> &'static str {
        self.models.first().map_or("cpu", |m| m.device().name())
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            reads_hole: true,
            repaints_sketch: true,
            needs_model: true,
            streams_steps: true,
            ..Default::default()
        }
    }
    fn prefill_content(&self, content: MaskedContent) -> MaskedContent {
        webui_fill(content).0
    }
    fn start(
        &self,
        req: &InpaintCropsRequest,
        content: MaskedContent,
    ) -> Result<Arc<dyn Job>, Error> {
        let mut settings = SdSettings::from_wire(&req.sd.clone().unwrap_or_default(), "sd.")?;
        let model = self.model(&req.model)?;
        let loras = take_loras(&model, &mut settings)?;
        check_prompt(&model, &settings.prompt, "sd.prompt")?;
        check_prompt(&model, &settings.negative_prompt, "sd.negative_prompt")?;
        Ok(Arc::new(SdJob {
            model,
            settings,
            loras,
            merge_nanos: AtomicU64::new(0),
            fill: webui_fill(content).1,
        }))
    }
}

/// Removes the `<lora:...>` tags from both prompts and resolves them and
/// the request's `loras` fields against the model's files; errors name
/// the field that wrote the bad one.
fn take_loras(model: &SdModel, settings: &mut SdSettings) -> Result<LoraSet, Error> {
    let mut all = vec![];
    for (text, field) in [
        (&mut settings.prompt, "sd.prompt"),
        (&mut settings.negative_prompt, "sd.negative_prompt"),
    ] {
        let (clean, uses) = tags::extract(text).map_err(|e| Error::invalid(field, e))?;
        model
            .loras
            .resolve(&uses)
            .map_err(|e| Error::invalid(field, e))?;
        *text = clean;
        all.extend(uses);
    }
    for (i, u) in settings.loras.iter().enumerate() {
        model
            .loras
            .resolve(std::slice::from_ref(u))
            .map_err(|e| Error::invalid(format!("sd.loras[{i}].name"), e))?;
    }
    all.extend(settings.loras.iter().cloned());
    model
        .loras
        .resolve(&all)
        .map_err(|e| Error::invalid("sd.loras", e))
}

/// One request's Stable Diffusion settings, over its pipeline.
struct SdJob {
    model: Arc<SdModel>,
    settings: SdSettings,
    loras: LoraSet,
    /// Time spent merging this request's LoRA variants.
    merge_nanos: AtomicU64,
    fill: LatentFill,
}

impl Job for SdJob {
    fn inpaint(
        self: Arc<Self>,
        image: RgbImage,
        hole: GrayImage,
        crop: CropParams,
    ) -> EngineFuture {
        Box::pin(async move {
            let settings = &self.settings;
            let request = SdRequest {
                prompt: settings.prompt.clone(),
                negative_prompt: settings.negative_prompt.clone(),
                plan: settings.plan(),
                cfg_scale: settings.cfg_scale,
                seed: crop.seed,
                fill: self.fill,
                mask_weight: settings.inpainting_mask_weight,
            };
            let mut on_step = |done: u32, total: u32| {
                if let Some(steps) = &crop.steps {
                    steps.report(done, total);
                }
            };
            let (graphs, merging) = networks::for_set(&self.model, &self.loras)
                .await
                .map_err(Error::Model)?;
            self.merge_nanos
                .fetch_add(merging.as_nanos() as u64, Ordering::Relaxed);
            repaint(
                self.model.clone(),
                graphs,
                image,
                hole,
                &request,
                &mut on_step,
            )
            .await
        })
    }

    fn report(&self, seeds: &[u64], response: &mut InpaintCropsResponse) {
        let settings = &self.settings;
        response.sd = seeds
            .iter()
            .map(|&seed| SdReport {
                sampler: settings.sampler.name().into(),
                schedule: settings.schedule.name().into(),
                steps_run: settings.plan().steps_run(),
                seed,
                model: self.model.name.clone(),
                loras: self.loras.report.clone(),
                lora_merge_ms: (self.merge_nanos.load(Ordering::Relaxed) / 1_000_000) as u32,
            })
            .collect();
    }
}

/// Pads the crop to the VAE's multiple (edge pixels repeated), runs the
/// pipeline, and keeps the decoded pixels only inside the hole.
async fn repaint(
    model: Arc<SdModel>,
    graphs: networks::Graphs,
    image: RgbImage,
    hole: GrayImage,
    request: &SdRequest,
    on_step: &mut (dyn FnMut(u32, u32) + Send),
) -> Result<RgbImage, Error> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let f = model.io.vae_factor;
    let (pw, ph) = (w.div_ceil(f) * f, h.div_ceil(f) * f);
    let mut rgb = vec![0u8; pw * ph * 3];
    let mut mask = vec![0u8; pw * ph];
    for y in 0..ph {
        let sy = y.min(h - 1);
        for x in 0..pw {
            let sx = x.min(w - 1);
            let (src, dst) = (sy * w + sx, y * pw + x);
            rgb[dst * 3..dst * 3 + 3].copy_from_slice(&image.as_raw()[src * 3..src * 3 + 3]);
            mask[dst] = if hole.as_raw()[src] > 0 { 255 } else { 0 };
        }
    }
    let result = pipeline::inpaint(
        model,
        graphs,
        Pixels::from_rgb8(&rgb, pw, ph),
        mask,
        request,
        on_step,
    )
    .await
    .map_err(Error::Model)?;
    let decoded = result.image.to_rgb8();
    let mut out = image;
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            if hole.as_raw()[i] > 0 {
                let j = (y * pw + x) * 3;
                out.as_raw_mut()[i * 3..i * 3 + 3].copy_from_slice(&decoded[j..j + 3]);
            }
        }
    }
    Ok(out)
}

/// Notes ListModels gives about a pipeline.
pub fn model_notes(model: &SdModel) -> Vec<String> {
    let mut notes = vec![];
    if model.io.encoder_kind == EncoderOutput::Sample {
        notes.push(
            "the VAE encoder samples its latent inside the graph: results are not reproducible for a seed (export latent_parameters instead)"
                .into(),
        );
    }
    if !matches!(
        model.io.timestep.ty,
        inpaint_onnx::ort::value::TensorElementType::Float32
            | inpaint_onnx::ort::value::TensorElementType::Float16
    ) {
        notes.push(
            "the UNet takes integer timesteps: the samplers' fractional timesteps are rounded"
                .into(),
        );
    }
    if !model.embeddings.is_empty() {
        notes.push(format!(
            "embeddings: {}",
            model.embeddings.names().join(", ")
        ));
    }
    for skipped in &model.embeddings.skipped {
        notes.push(format!("embedding skipped: {skipped}"));
    }
    notes.extend(model.loras.notes());
    notes
}
