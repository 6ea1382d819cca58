//! Stable Diffusion flags (engine "sd") and their wire form.

use clap::Args;
use inpaint_common::sd_params::{Sampler, Schedule, sentence};
use inpaint_proto::v1::{RegionOverride, SdParams};

/// Stable Diffusion settings (engine "sd"), with the WebUI's meanings.
#[derive(Args, Clone)]
pub struct SdArgs {
    /// What to paint into the masked area, e.g. "closed eyes, smiling".
    #[arg(long, default_value = "")]
    pub prompt: String,

    /// What to keep out of it.
    #[arg(long, default_value = "")]
    pub negative_prompt: String,

    /// Sampling steps (1..150; default 20). A denoising strength below 1
    /// runs int(min(strength, 0.999) * steps) + 1 of them, as the WebUI.
    #[arg(long)]
    pub steps: Option<u32>,

    /// Classifier-free guidance scale (default 7).
    #[arg(long = "cfg")]
    pub cfg_scale: Option<f32>,

    #[arg(long, default_value = "", help = sampler_help())]
    pub sampler: String,

    #[arg(long, default_value = "", help = schedule_help())]
    pub schedule: String,

    /// Denoising strength, 0..1 (default 0.75).
    #[arg(long = "denoise")]
    pub denoising_strength: Option<f32>,

    /// Inpainting conditioning mask strength, 0..1 (default 1; 9-channel
    /// inpainting models): lower lets the original show through to the
    /// model, as the WebUI's setting of that name.
    #[arg(long = "mask-weight")]
    pub inpainting_mask_weight: Option<f32>,

    /// One region's own prompt, e.g. `--region-prompt 1="a smiling man"`
    /// (regions count from 0 in the response's order; repeatable; the
    /// region keeps the request's other settings), as ADetailer's per-face
    /// prompts.
    #[arg(long = "region-prompt", value_name = "INDEX=PROMPT", value_parser = parse_region_prompt)]
    pub region_prompts: Vec<(u32, String)>,
}

fn parse_region_prompt(s: &str) -> Result<(u32, String), String> {
    let (index, prompt) = s
        .split_once('=')
        .ok_or("expected INDEX=PROMPT, e.g. 1=\"a smiling man\"")?;
    let index = index
        .trim()
        .parse()
        .map_err(|e| format!("region index: {e}"))?;
    Ok((index, prompt.to_string()))
}

impl SdArgs {
    /// Per-region overrides carrying each region's own prompt.
    pub fn region_overrides(&self) -> Vec<RegionOverride> {
        self.region_prompts
            .iter()
            .map(|(region, prompt)| RegionOverride {
                region: *region,
                sd: Some(SdParams {
                    prompt: prompt.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect()
    }

    /// The wire settings when the engine is "sd" or any was given.
    pub fn wire(&self, engine: &str) -> Option<SdParams> {
        let p = SdParams {
            prompt: self.prompt.clone(),
            negative_prompt: self.negative_prompt.clone(),
            steps: self.steps,
            cfg_scale: self.cfg_scale,
            sampler: self.sampler.clone(),
            schedule: self.schedule.clone(),
            denoising_strength: self.denoising_strength,
            inpainting_mask_weight: self.inpainting_mask_weight,
            // LoRAs come as `<lora:NAME:WEIGHT>` tags in --prompt.
            loras: vec![],
        };
        (engine == "sd" || p != SdParams::default()).then_some(p)
    }
}

/// The samplers, from the one list the gateway checks against.
fn sampler_help() -> String {
    let names = Sampler::ALL.map(Sampler::name);
    sentence(&names, Some(Sampler::DEFAULT.name()))
}

/// The schedules, from the same list.
fn schedule_help() -> String {
    let names = Schedule::ALL.map(Schedule::name);
    format!(
        "{} (default: the sampler's, as the WebUI's Automatic)",
        sentence(&names, None)
    )
}
