//! The public contract of Stable Diffusion settings (`inpaint.v1.SdParams`):
//! the WebUI's sampler and schedule names, ranges and defaults. The gateway
//! checks requests with it before any stage runs; the worker resolves the
//! same settings with it before sampling.

use inpaint_proto::v1::SdParams;

pub const DEFAULT_STEPS: u32 = 20;
pub const MAX_STEPS: u32 = 150;
pub const DEFAULT_CFG: f32 = 7.0;
pub const MAX_CFG: f32 = 30.0;
/// The WebUI's default denoising strength for img2img.
pub const DEFAULT_DENOISE: f32 = 0.75;
/// Longest prompt accepted on the wire, in bytes (the tokenizer's own
/// limit is checked by the worker).
pub const MAX_PROMPT_BYTES: usize = 4096;

/// Samplers by their WebUI labels.
pub const SAMPLERS: [&str; 4] = ["Euler", "Euler a", "DPM++ 2M", "DDIM"];
pub const SCHEDULES: [&str; 2] = ["normal", "karras"];

/// Settings with defaults filled in and names made canonical.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedSd {
    pub prompt: String,
    pub negative_prompt: String,
    /// One of `SAMPLERS`.
    pub sampler: &'static str,
    /// One of `SCHEDULES`.
    pub schedule: &'static str,
    pub steps: u32,
    pub cfg_scale: f32,
    pub denoising_strength: f32,
    pub inpainting_mask_weight: f32,
}

/// The WebUI label for a sampler name or alias (case-insensitive; empty is
/// the WebUI's default, DPM++ 2M).
pub fn sampler_label(name: &str) -> Option<&'static str> {
    match name.trim().to_ascii_lowercase().as_str() {
        "" | "dpm++ 2m" | "k_dpmpp_2m" | "dpmpp_2m" => Some("DPM++ 2M"),
        "euler" | "k_euler" => Some("Euler"),
        "euler a" | "k_euler_a" | "euler_a" | "euler ancestral" => Some("Euler a"),
        "ddim" => Some("DDIM"),
        _ => None,
    }
}

/// The schedule the WebUI picks on "Automatic".
pub fn default_schedule(sampler: &str) -> &'static str {
    if sampler == "DPM++ 2M" {
        "karras"
    } else {
        "normal"
    }
}

/// Checks `p`; an error is (field under `prefix`, reason).
pub fn resolve(p: &SdParams, prefix: &str) -> Result<ResolvedSd, (String, String)> {
    let field = |name: &str| format!("{prefix}{name}");
    for (name, text) in [
        ("prompt", &p.prompt),
        ("negative_prompt", &p.negative_prompt),
    ] {
        if text.len() > MAX_PROMPT_BYTES {
            return Err((
                field(name),
                format!("{} bytes; at most {MAX_PROMPT_BYTES}", text.len()),
            ));
        }
    }
    let sampler = sampler_label(&p.sampler).ok_or_else(|| {
        (
            field("sampler"),
            format!(
                "unknown sampler {:?}; use one of: {}",
                p.sampler,
                SAMPLERS.join(", ")
            ),
        )
    })?;
    let schedule = match p.schedule.trim().to_ascii_lowercase().as_str() {
        "" | "automatic" => default_schedule(sampler),
        "normal" => "normal",
        "karras" => "karras",
        _ => {
            return Err((
                field("schedule"),
                format!("unknown schedule {:?}; use normal or karras", p.schedule),
            ));
        }
    };
    let steps = p.steps.unwrap_or(DEFAULT_STEPS);
    if !(1..=MAX_STEPS).contains(&steps) {
        return Err((field("steps"), format!("{steps} is not in 1..={MAX_STEPS}")));
    }
    let cfg_scale = p.cfg_scale.unwrap_or(DEFAULT_CFG);
    if !(0.0..=MAX_CFG).contains(&cfg_scale) {
        return Err((
            field("cfg_scale"),
            format!("{cfg_scale} is not in 0..={MAX_CFG}"),
        ));
    }
    let denoising_strength = p.denoising_strength.unwrap_or(DEFAULT_DENOISE);
    if !(0.0..=1.0).contains(&denoising_strength) {
        return Err((
            field("denoising_strength"),
            format!("{denoising_strength} is not in 0..=1"),
        ));
    }
    let inpainting_mask_weight = p.inpainting_mask_weight.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&inpainting_mask_weight) {
        return Err((
            field("inpainting_mask_weight"),
            format!("{inpainting_mask_weight} is not in 0..=1"),
        ));
    }
    Ok(ResolvedSd {
        prompt: p.prompt.clone(),
        negative_prompt: p.negative_prompt.clone(),
        sampler,
        schedule,
        steps,
        cfg_scale,
        denoising_strength,
        inpainting_mask_weight,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(p: SdParams) -> String {
        resolve(&p, "params.sd.").unwrap_err().0
    }

    #[test]
    fn defaults_are_the_webuis() {
        let r = resolve(&SdParams::default(), "").unwrap();
        assert_eq!((r.sampler, r.schedule, r.steps), ("DPM++ 2M", "karras", 20));
        assert_eq!((r.cfg_scale, r.denoising_strength), (7.0, 0.75));
        let euler = SdParams {
            sampler: "k_euler_a".into(),
            ..Default::default()
        };
        assert_eq!(resolve(&euler, "").unwrap().schedule, "normal");
    }

    #[test]
    fn bad_values_name_their_field() {
        let bad = |f: fn(&mut SdParams)| {
            let mut p = SdParams::default();
            f(&mut p);
            field_of(p)
        };
        assert_eq!(bad(|p| p.sampler = "Heun".into()), "params.sd.sampler");
        assert_eq!(
            bad(|p| p.schedule = "exponential".into()),
            "params.sd.schedule"
        );
        assert_eq!(bad(|p| p.steps = Some(0)), "params.sd.steps");
        assert_eq!(bad(|p| p.steps = Some(151)), "params.sd.steps");
        assert_eq!(bad(|p| p.cfg_scale = Some(f32::NAN)), "params.sd.cfg_scale");
        assert_eq!(bad(|p| p.cfg_scale = Some(31.0)), "params.sd.cfg_scale");
        assert_eq!(
            bad(|p| p.denoising_strength = Some(f32::NAN)),
            "params.sd.denoising_strength"
        );
        assert_eq!(
            bad(|p| p.denoising_strength = Some(1.5)),
            "params.sd.denoising_strength"
        );
        assert_eq!(
            bad(|p| p.inpainting_mask_weight = Some(f32::NAN)),
            "params.sd.inpainting_mask_weight"
        );
        assert_eq!(
            bad(|p| p.inpainting_mask_weight = Some(-0.1)),
            "params.sd.inpainting_mask_weight"
        );
        assert_eq!(bad(|p| p.prompt = "x".repeat(5000)), "params.sd.prompt");
    }
}
