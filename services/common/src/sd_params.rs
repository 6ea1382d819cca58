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

/// The samplers, by their WebUI labels: the one list the gateway's check,
/// the CLI's help, GetCapabilities and the worker's sampling read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampler {
    Euler,
    EulerAncestral,
    DpmPp2M,
    Ddim,
}

impl Sampler {
    pub const ALL: [Sampler; 4] = [
        Sampler::Euler,
        Sampler::EulerAncestral,
        Sampler::DpmPp2M,
        Sampler::Ddim,
    ];
    /// The WebUI's default (`modules/shared_options.py`).
    pub const DEFAULT: Sampler = Sampler::DpmPp2M;

    /// The WebUI's label.
    pub fn name(self) -> &'static str {
        match self {
            Self::Euler => "Euler",
            Self::EulerAncestral => "Euler a",
            Self::DpmPp2M => "DPM++ 2M",
            Self::Ddim => "DDIM",
        }
    }

    /// Other names clients send (the WebUI's k-diffusion aliases).
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Self::Euler => &["k_euler"],
            Self::EulerAncestral => &["k_euler_a", "euler_a", "euler ancestral"],
            Self::DpmPp2M => &["k_dpmpp_2m", "dpmpp_2m"],
            Self::Ddim => &[],
        }
    }

    /// A label or alias, case-insensitive; empty is the default.
    pub fn parse(name: &str) -> Option<Self> {
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() {
            return Some(Self::DEFAULT);
        }
        Self::ALL
            .into_iter()
            .find(|s| s.name().to_ascii_lowercase() == name || s.aliases().contains(&name.as_str()))
    }

    /// The schedule the WebUI picks on "Automatic".
    pub fn default_schedule(self) -> Schedule {
        match self {
            Self::DpmPp2M => Schedule::Karras,
            _ => Schedule::Normal,
        }
    }

    /// Whether it draws fresh noise at every step.
    pub fn is_ancestral(self) -> bool {
        matches!(self, Self::EulerAncestral)
    }
}

/// The noise schedules, by their WebUI names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Evenly spaced timesteps (k-diffusion's default).
    Normal,
    /// Karras et al. (2022), rho 7, between the model's sigma extremes.
    Karras,
}

impl Schedule {
    pub const ALL: [Schedule; 2] = [Schedule::Normal, Schedule::Karras];

    pub fn name(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Karras => "karras",
        }
    }

    /// A name, case-insensitive.
    pub fn parse(name: &str) -> Option<Self> {
        let name = name.trim().to_ascii_lowercase();
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// The sampler labels, the default first (as GetCapabilities and
/// ListModels list them).
pub fn sampler_names() -> Vec<String> {
    default_first(Sampler::DEFAULT.name(), Sampler::ALL.map(Sampler::name))
}

/// The schedule names, the default sampler's first.
pub fn schedule_names() -> Vec<String> {
    let default = Sampler::DEFAULT.default_schedule().name();
    default_first(default, Schedule::ALL.map(Schedule::name))
}

fn default_first<const N: usize>(default: &str, names: [&str; N]) -> Vec<String> {
    std::iter::once(default)
        .chain(names.into_iter().filter(|n| *n != default))
        .map(String::from)
        .collect()
}

/// `names` joined as a sentence: "a", "b" or "c"; `default` marked.
pub fn sentence(names: &[&str], default: Option<&str>) -> String {
    let quoted: Vec<String> = names
        .iter()
        .map(|n| {
            let mark = if Some(*n) == default {
                " (default)"
            } else {
                ""
            };
            format!("\"{n}\"{mark}")
        })
        .collect();
    match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// Settings with defaults filled in and names made canonical.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedSd {
    pub prompt: String,
    pub negative_prompt: String,
    pub sampler: Sampler,
    pub schedule: Schedule,
    pub steps: u32,
    pub cfg_scale: f32,
    pub denoising_strength: f32,
    pub inpainting_mask_weight: f32,
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
    let sampler = Sampler::parse(&p.sampler).ok_or_else(|| {
        let names: Vec<&str> = Sampler::ALL.iter().map(|s| s.name()).collect();
        (
            field("sampler"),
            format!(
                "unknown sampler {:?}; use one of: {}",
                p.sampler,
                names.join(", ")
            ),
        )
    })?;
    let schedule = match p.schedule.trim().to_ascii_lowercase().as_str() {
        "" | "automatic" => sampler.default_schedule(),
        name => Schedule::parse(name).ok_or_else(|| {
            let names: Vec<&str> = Schedule::ALL.iter().map(|s| s.name()).collect();
            (
                field("schedule"),
                format!(
                    "unknown schedule {:?}; use {}",
                    p.schedule,
                    names.join(" or ")
                ),
            )
        })?,
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
    for (i, l) in p.loras.iter().enumerate() {
        if l.name.trim().is_empty() {
            return Err((field(&format!("loras[{i}].name")), "empty".into()));
        }
        for (w, name) in [
            (l.unet_weight, "unet_weight"),
            (l.text_encoder_weight, "text_encoder_weight"),
        ] {
            if w.is_some_and(|w| !w.is_finite()) {
                return Err((
                    field(&format!("loras[{i}].{name}")),
                    "not a finite number".into(),
                ));
            }
        }
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
        assert_eq!(
            (r.sampler.name(), r.schedule.name(), r.steps),
            ("DPM++ 2M", "karras", 20)
        );
        assert_eq!((r.cfg_scale, r.denoising_strength), (7.0, 0.75));
        let euler = SdParams {
            sampler: "k_euler_a".into(),
            ..Default::default()
        };
        assert_eq!(resolve(&euler, "").unwrap().schedule.name(), "normal");
    }

    #[test]
    fn names_round_trip_and_aliases_parse() {
        for kind in Sampler::ALL {
            assert_eq!(Sampler::parse(kind.name()), Some(kind));
        }
        assert_eq!(Sampler::parse("k_euler_a"), Some(Sampler::EulerAncestral));
        assert_eq!(Sampler::parse("Heun"), None);
        for schedule in Schedule::ALL {
            assert_eq!(Schedule::parse(schedule.name()), Some(schedule));
        }
    }

    #[test]
    fn the_default_comes_first_once() {
        assert_eq!(sampler_names(), ["DPM++ 2M", "Euler", "Euler a", "DDIM"]);
        assert_eq!(schedule_names(), ["karras", "normal"]);
    }

    #[test]
    fn sentences_read_as_the_help_does() {
        assert_eq!(
            sentence(&["Euler", "Euler a", "DPM++ 2M", "DDIM"], Some("DPM++ 2M")),
            "\"Euler\", \"Euler a\", \"DPM++ 2M\" (default) or \"DDIM\""
        );
        assert_eq!(
            sentence(&["normal", "karras"], None),
            "\"normal\" or \"karras\""
        );
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
