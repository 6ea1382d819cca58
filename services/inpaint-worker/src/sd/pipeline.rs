//! One Stable Diffusion inpainting run on an opened export: prompts to
//! conditions, pixels to latents, the WebUI's img2img sampling with
//! classifier-free guidance, latents back to pixels.
//!
//! Graph calls run on the blocking pool (a session runs one call at a
//! time); the sampling loop awaits them, so a run can be abandoned between
//! steps by dropping its future.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::batcher::Sampling;
use super::batcher::UnetBatcher;
use super::graph::{EncoderOutput, FloatType, Graph, TypedFloats, float_tensor};
use super::img2img::{self, Denoiser, LatentFill, SamplingPlan};
use super::latent_mask;
use super::model::SdModel;
use super::networks::Graphs;
use super::noise::TorchRng;
use super::prompt;
use super::runs::{UnetShape, encode_window};
use super::schedule::ModelSchedule;

/// What one run is asked to do.
#[derive(Debug, Clone)]
pub struct SdRequest {
    pub prompt: String,
    pub negative_prompt: String,
    pub plan: SamplingPlan,
    pub cfg_scale: f32,
    pub seed: u64,
    pub fill: LatentFill,
    /// The WebUI's `inpainting_mask_weight` (9-channel models): 1 masks the
    /// hole out of the conditioning image completely.
    pub mask_weight: f32,
}

/// Planar float pixels, RGB in -1..1, `width * height` per plane.
#[derive(Debug, Clone)]
pub struct Pixels {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
}

impl Pixels {
    /// From interleaved RGB8.
    pub fn from_rgb8(rgb: &[u8], width: usize, height: usize) -> Self {
        let plane = width * height;
        let mut data = vec![0.0; 3 * plane];
        for (i, px) in rgb.chunks_exact(3).enumerate() {
            for c in 0..3 {
                data[c * plane + i] = px[c] as f32 / 255.0 * 2.0 - 1.0;
            }
        }
        Self {
            width,
            height,
            data,
        }
    }

    /// To interleaved RGB8, rounding.
    pub fn to_rgb8(&self) -> Vec<u8> {
        let plane = self.width * self.height;
        let mut out = vec![0u8; 3 * plane];
        for i in 0..plane {
            for c in 0..3 {
                let v = ((self.data[c * plane + i] + 1.0) / 2.0).clamp(0.0, 1.0);
                out[i * 3 + c] = (v * 255.0).round() as u8;
            }
        }
        out
    }
}

/// A run's results.
#[derive(Debug, Clone)]
pub struct SdResult {
    pub image: Pixels,
    pub latent: Vec<f32>,
    pub steps_run: u32,
    /// Wall time of the sampling loop, and the part of it spent inside the
    /// UNet's session runs (the rest is ours: guidance, blending, sampler
    /// arithmetic, tensor copies, task hand-offs).
    pub sampling: Duration,
    pub unet: Duration,
}

/// A prompt's condition as the WebUI makes it: attention syntax parsed,
/// tokens in chunks of 75, each chunk encoded, weighted with its mean
/// restored, and the chunks joined along the token axis
/// (`[77 * chunks, width]`).
pub fn encode_prompt(model: &SdModel, text: &str) -> Result<Vec<f32>, String> {
    encode_prompt_on(model, &model.text_encoder, text)
}

/// As [`encode_prompt`], on text encoder `graph` (a LoRA variant).
pub fn encode_prompt_on(model: &SdModel, graph: &Graph, text: &str) -> Result<Vec<f32>, String> {
    let mut hidden = vec![];
    for chunk in prompt_chunks(model, text)? {
        let mut h = encode_window(graph, &model.io, &chunk.ids)?;
        prompt::apply_weights(&mut h, &chunk.weights);
        hidden.extend(h);
    }
    Ok(hidden)
}

/// The 77-token windows a prompt becomes.
pub fn prompt_chunks(model: &SdModel, text: &str) -> Result<Vec<prompt::Chunk>, String> {
    let t = &model.tokenizer;
    let ids = prompt::SpecialIds {
        bos: t.bos,
        eos: t.eos,
        pad: t.pad,
        comma: t.comma,
    };
    let text = model.embeddings.resolve_explicit(text)?;
    prompt::chunks(
        &prompt::parse_attention(&text),
        ids,
        |piece| t.tokens(piece),
        |tokens, at| model.embeddings.find_at(tokens, at),
    )
}

/// Latent (mean, scaled) of pixels whose sides are multiples of the VAE factor.
fn vae_encode(model: &SdModel, pixels: &Pixels) -> Result<Vec<f32>, String> {
    let io = &model.io;
    let input = float_tensor(
        io.encoder_float,
        vec![1, 3, pixels.height as i64, pixels.width as i64],
        &pixels.data,
    )?;
    let (shape, values) = model
        .vae_encoder
        .run(vec![(io.encoder_input.clone(), input)], &io.encoder_output)?;
    let latent_len =
        io.latent_channels * (pixels.width / io.vae_factor) * (pixels.height / io.vae_factor);
    let mean = match io.encoder_kind {
        EncoderOutput::Parameters => &values[..latent_len],
        EncoderOutput::Sample => &values[..],
    };
    if mean.len() != latent_len {
        return Err(format!(
            "{}: output {shape:?} does not fit the image",
            model.folder.vae_encoder.display()
        ));
    }
    Ok(mean
        .iter()
        .map(|v| v * model.folder.scaling_factor)
        .collect())
}

fn vae_decode(model: &SdModel, latent: &[f32], lw: usize, lh: usize) -> Result<Pixels, String> {
    let io = &model.io;
    let scaled: Vec<f32> = latent
        .iter()
        .map(|v| v / model.folder.scaling_factor)
        .collect();
    let input = float_tensor(
        io.decoder_float,
        vec![1, io.latent_channels as i64, lh as i64, lw as i64],
        &scaled,
    )?;
    let (shape, data) = model
        .vae_decoder
        .run(vec![(io.decoder_input.clone(), input)], &io.decoder_output)?;
    let (w, h) = (lw * io.vae_factor, lh * io.vae_factor);
    if shape != [1, 3, h as i64, w as i64] {
        return Err(format!(
            "{}: output {shape:?}, expected [1, 3, {h}, {w}]",
            model.folder.vae_decoder.display()
        ));
    }
    Ok(Pixels {
        width: w,
        height: h,
        data,
    })
}

/// The condition and the negative condition as the UNet takes them: one
/// `[2, tokens, width]` block when their token counts match, else apart
/// (then the UNet runs once for each, as the WebUI does without its
/// pad_cond_uncond option).
#[derive(Clone)]
enum Conds {
    Pair(Arc<TypedFloats>),
    Apart(Arc<TypedFloats>, Arc<TypedFloats>),
}

impl Conds {
    /// In the UNet's float type `ty`, converted once for every step.
    fn new(ty: FloatType, cond: Vec<f32>, uncond: Vec<f32>) -> Self {
        let typed = |v: &[f32]| Arc::new(TypedFloats::new(ty, v));
        if cond.len() == uncond.len() {
            let mut pair = cond;
            pair.extend(uncond);
            Self::Pair(typed(&pair))
        } else {
            Self::Apart(typed(&cond), typed(&uncond))
        }
    }
}

/// CFG over one UNet call with the condition and the negative condition.
struct Guided {
    model: Arc<SdModel>,
    /// The UNet's batching thread (the model's, or a LoRA variant's).
    unet: Arc<UnetBatcher>,
    /// The prompt's and the negative prompt's hidden states, made once for
    /// every step.
    conds: Conds,
    /// 9-channel models: `[mask, masked-image latent]` planes.
    image_cond: Option<Arc<Vec<f32>>>,
    cfg_scale: f32,
    lw: usize,
    lh: usize,
    /// Nanoseconds spent waiting for the UNet (its runs, and the wait for
    /// other requests' steps to share them).
    unet_nanos: Arc<AtomicU64>,
    /// Counts this request as sampling on the model's UNet thread.
    _sampling: Sampling,
}

impl Denoiser for Guided {
    type Error = String;

    fn eps(
        &mut self,
        x_in: Vec<f32>,
        t: f32,
    ) -> impl Future<Output = Result<Vec<f32>, String>> + Send {
        let model = self.model.clone();
        let batcher = self.unet.clone();
        let conds = self.conds.clone();
        let image_cond = self.image_cond.clone();
        let (cfg, lw, lh) = (self.cfg_scale, self.lw, self.lh);
        let unet_nanos = self.unet_nanos.clone();
        async move {
            let one: Vec<f32> = match image_cond.as_deref() {
                Some(extra) => x_in.iter().chain(extra).copied().collect(),
                None => x_in,
            };
            let width = model.text_width;
            let shape = |hidden: &TypedFloats, n: usize| UnetShape {
                channels: one.len() / (lw * lh),
                width: lw,
                height: lh,
                tokens: hidden.len() / (n * width),
            };
            let started = Instant::now();
            let out = match conds {
                Conds::Pair(hidden) => {
                    // One evaluation of two samples: condition, negative.
                    let mut samples = one.clone();
                    samples.extend_from_slice(&one);
                    let shape = shape(&hidden, 2);
                    batcher.eval(samples, hidden, 2, shape, t).await
                }
                Conds::Apart(cond, uncond) => {
                    // Different token counts cannot share a call.
                    let (cs, us) = (shape(&cond, 1), shape(&uncond, 1));
                    let c = batcher.eval(one.clone(), cond, 1, cs, t);
                    let u = batcher.eval(one.clone(), uncond, 1, us, t);
                    let (c, u) = tokio::join!(c, u);
                    c.and_then(|mut c| {
                        c.extend(u?);
                        Ok(c)
                    })
                }
            };
            unet_nanos.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
            let out = out?;
            let (cond, uncond) = out.split_at(out.len() / 2);
            Ok(uncond
                .iter()
                .zip(cond)
                .map(|(u, c)| u + (c - u) * cfg)
                .collect())
        }
    }
}

/// Repaints `image` (sides multiples of the VAE factor) where `mask`
/// (8-bit, 255 = repaint) says, following the WebUI; pixels are returned
/// as the VAE decodes them (the caller pastes back).
pub async fn inpaint(
    model: Arc<SdModel>,
    graphs: Graphs,
    image: Pixels,
    mask: Vec<u8>,
    request: &SdRequest,
    on_step: &mut (dyn FnMut(u32, u32) + Send),
) -> Result<SdResult, String> {
    let io = model.io.clone();
    let (w, h) = (image.width, image.height);
    if w % io.vae_factor != 0 || h % io.vae_factor != 0 || mask.len() != w * h {
        return Err(format!(
            "image {w}x{h} with a mask of {} values; sides must be multiples of {}",
            mask.len(),
            io.vae_factor
        ));
    }
    let (lw, lh) = (w / io.vae_factor, h / io.vae_factor);
    let schedule = ModelSchedule::new(&model.folder.betas)?;
    let blocking = |f: Box<dyn FnOnce() -> Result<Vec<f32>, String> + Send>| async move {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| format!("task: {e}"))?
    };

    let m = model.clone();
    let (prompt, negative) = (request.prompt.clone(), request.negative_prompt.clone());
    let te = graphs.text_encoder.clone();
    let cond = blocking(Box::new(move || encode_prompt_on(&m, &te, &prompt))).await?;
    let (m, te) = (model.clone(), graphs.text_encoder.clone());
    let uncond = blocking(Box::new(move || encode_prompt_on(&m, &te, &negative))).await?;

    let m = model.clone();
    let pixels = image.clone();
    let mut init = blocking(Box::new(move || vae_encode(&m, &pixels))).await?;
    let blend = latent_mask::blend_mask(&mask, w, h, lw, lh);

    let plane = lw * lh;
    let mut rng = TorchRng::new(request.seed);
    let noise = rng.randn(io.latent_channels * plane);
    // The WebUI's latent noise comes from a fresh generator on the same seed.
    img2img::fill_latent(&mut init, &blend, request.fill, &noise);

    let image_cond = if model.is_inpainting() {
        let rounded = latent_mask::rounded(&mask);
        let keep: Vec<f32> = image
            .data
            .iter()
            .enumerate()
            .map(|(i, v)| v * (1.0 - rounded[i % (w * h)] * request.mask_weight))
            .collect();
        let masked = Pixels {
            width: w,
            height: h,
            data: keep,
        };
        let m = model.clone();
        let masked_latent = blocking(Box::new(move || vae_encode(&m, &masked))).await?;
        let mut cond = latent_mask::conditioning_mask(&rounded, w, h, lw, lh);
        cond.extend(masked_latent);
        Some(Arc::new(cond))
    } else {
        None
    };

    let mut guided = Guided {
        model: model.clone(),
        unet: graphs.unet.clone(),
        conds: Conds::new(io.unet_float, cond, uncond),
        image_cond,
        cfg_scale: request.cfg_scale,
        lw,
        lh,
        unet_nanos: Arc::new(AtomicU64::new(0)),
        _sampling: graphs.unet.sampling(),
    };
    let unet_nanos = guided.unet_nanos.clone();
    let sampling_started = Instant::now();
    let channels = io.latent_channels;
    let mut next_noise = move || rng.randn(channels * plane);
    let latent = img2img::sample(
        &request.plan,
        &schedule,
        img2img::LatentStart {
            init: &init,
            mask: &blend,
            noise: &noise,
        },
        &mut next_noise,
        &mut guided,
        on_step,
    )
    .await?;
    let sampling = sampling_started.elapsed();

    let m = model.clone();
    let final_latent = latent.clone();
    let decoded = tokio::task::spawn_blocking(move || vae_decode(&m, &final_latent, lw, lh))
        .await
        .map_err(|e| format!("task: {e}"))??;
    Ok(SdResult {
        image: decoded,
        latent,
        steps_run: request.plan.steps_run(),
        sampling,
        unet: Duration::from_nanos(unet_nanos.load(Ordering::Relaxed)),
    })
}
