//! A LoRA `.safetensors` file in the formats users have, read into
//! low-rank pairs per module:
//!
//! - kohya-ss: `lora_unet_<path>` / `lora_te_<path>` (`lora_te1_` too), the
//!   module path with `_` for `.`, and `.lora_down.weight`,
//!   `.lora_up.weight`, `.alpha`; LoCon the same on convolutions (down a
//!   k x k conv, up 1 x 1);
//! - diffusers/peft: `unet.<path>` / `text_encoder.<path>` with
//!   `.lora_A.weight` / `.lora_B.weight` (no alpha: scale 1), and the older
//!   `.lora.down/up`, `.lora_linear_layer.down/up` and attention-processor
//!   `attn1.processor.to_q_lora.down/up` spellings.
//!
//! `lora_te2_` / `text_encoder_2.` keys belong to SDXL's second text
//! encoder: such a file is for another base. LyCORIS' LoHa/LoKr/CP
//! (`hada_`, `lokr_`, `lora_mid`) and DoRA (`dora_scale`) are not read:
//! their keys are listed as unsupported.

use std::collections::BTreeMap;
use std::path::Path;

use safetensors::{Dtype, SafeTensors, tensor::TensorView};

/// Which graph a module lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    TextEncoder,
    Unet,
}

/// How the file names its module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A dotted module path (diffusers/peft).
    Dotted(String),
    /// kohya's path with `_` for `.`.
    Underscored(String),
}

/// One module's low-rank pair: `up` is `[out, rank]`, `down` is
/// `[rank, inner]` (inner = input channels x kernel).
#[derive(Debug, Clone)]
pub struct LoraModule {
    pub part: Part,
    /// The key prefix in the file, for messages.
    pub key: String,
    pub target: Target,
    pub up: Vec<f32>,
    pub down: Vec<f32>,
    pub out: usize,
    pub rank: usize,
    pub inner: usize,
    pub in_channels: usize,
    pub alpha: Option<f32>,
}

/// What a file holds.
#[derive(Debug, Clone, Default)]
pub struct LoraFile {
    pub modules: Vec<LoraModule>,
    /// Keys not read, each with the reason.
    pub unsupported: Vec<String>,
    /// Set when the keys say the file is for another base model.
    pub other_base: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Up,
    Down,
    Alpha,
}

/// Key endings and what they hold; the longest spellings first.
const SUFFIXES: &[(&str, Role)] = &[
    (".lora_linear_layer.down.weight", Role::Down),
    (".lora_linear_layer.up.weight", Role::Up),
    ("_lora.down.weight", Role::Down),
    ("_lora.up.weight", Role::Up),
    (".lora_down.weight", Role::Down),
    (".lora_up.weight", Role::Up),
    (".lora.down.weight", Role::Down),
    (".lora.up.weight", Role::Up),
    (".lora_A.weight", Role::Down),
    (".lora_B.weight", Role::Up),
    (".alpha", Role::Alpha),
];

/// A safetensors tensor as f32 (f32, f16 or bf16 stored).
pub fn floats(t: &TensorView<'_>) -> Result<Vec<f32>, String> {
    let d = t.data();
    Ok(match t.dtype() {
        Dtype::F32 => d
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect(),
        Dtype::F16 => d
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes(b.try_into().expect("2 bytes")).to_f32())
            .collect(),
        Dtype::BF16 => d
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes(b.try_into().expect("2 bytes")).to_f32())
            .collect(),
        other => return Err(format!("{other:?}; float expected")),
    })
}

/// The part and module a key prefix names (None: not a module this
/// reader knows; Err: a module of another base model).
fn target(prefix: &str) -> Result<Option<(Part, Target)>, String> {
    const UNET_ROOTS: &[&str] = &[
        "down_blocks.",
        "mid_block.",
        "up_blocks.",
        "conv_in",
        "conv_out",
    ];
    if prefix.starts_with("lora_te2_") || prefix.starts_with("text_encoder_2.") {
        return Err("keys for a second text encoder (an SDXL LoRA)".into());
    }
    let dotted = |p: &str| {
        // Attention-processor spelling: `attn1.processor.to_q_lora` -> `attn1.to_q`.
        let p = p.replace(".processor.", ".");
        Target::Dotted(p.strip_suffix("_lora").unwrap_or(&p).to_string())
    };
    Ok(if let Some(rest) = prefix.strip_prefix("lora_unet_") {
        Some((Part::Unet, Target::Underscored(rest.into())))
    } else if let Some(rest) = prefix
        .strip_prefix("lora_te_")
        .or_else(|| prefix.strip_prefix("lora_te1_"))
    {
        Some((Part::TextEncoder, Target::Underscored(rest.into())))
    } else if let Some(rest) = prefix.strip_prefix("unet.") {
        Some((Part::Unet, dotted(rest)))
    } else if let Some(rest) = prefix.strip_prefix("text_encoder.") {
        Some((Part::TextEncoder, dotted(rest)))
    } else if UNET_ROOTS.iter().any(|r| prefix.starts_with(r)) {
        Some((Part::Unet, dotted(prefix)))
    } else {
        None
    })
}

/// Reads and checks a LoRA file.
pub fn read(path: &Path) -> Result<LoraFile, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    parse(&bytes)
}

pub fn parse(bytes: &[u8]) -> Result<LoraFile, String> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| format!("not a safetensors file: {e}"))?;
    let mut file = LoraFile::default();
    let mut groups: BTreeMap<String, [Option<TensorView<'_>>; 3]> = BTreeMap::new();
    for (key, view) in st.tensors() {
        match SUFFIXES.iter().find(|(s, _)| key.ends_with(s)) {
            Some((suffix, role)) => {
                let prefix = key[..key.len() - suffix.len()].to_string();
                groups.entry(prefix).or_default()[*role as usize] = Some(view);
            }
            None => file.unsupported.push(format!(
                "{key}: {}",
                if key.contains("hada_") || key.contains("lokr_") || key.contains("lora_mid") {
                    "LyCORIS LoHa/LoKr/CP is not supported"
                } else if key.contains("dora_scale") {
                    "DoRA is not supported"
                } else {
                    "not a LoRA weight"
                }
            )),
        }
    }
    for (prefix, [up, down, alpha]) in groups {
        let (part, target) = match target(&prefix) {
            Ok(Some(t)) => t,
            Ok(None) => {
                file.unsupported
                    .push(format!("{prefix}: names no UNet or text-encoder module"));
                continue;
            }
            Err(why) => {
                file.other_base.get_or_insert(why);
                continue;
            }
        };
        let (Some(up), Some(down)) = (up, down) else {
            file.unsupported
                .push(format!("{prefix}: an up or down weight is missing"));
            continue;
        };
        let (us, ds) = (up.shape().to_vec(), down.shape().to_vec());
        let rank = *ds.first().ok_or(format!("{prefix}: empty down weight"))?;
        let inner = ds.iter().skip(1).product::<usize>();
        let out = *us.first().ok_or(format!("{prefix}: empty up weight"))?;
        let up_ok = us.len() >= 2 && us[1] == rank && us[2..].iter().all(|&d| d == 1);
        if rank == 0 || inner == 0 || ds.len() < 2 || !up_ok {
            return Err(format!(
                "{prefix}: up {us:?} and down {ds:?} are not a low-rank pair"
            ));
        }
        let alpha = match alpha {
            Some(a) => Some(
                *floats(&a)
                    .map_err(|e| format!("{prefix}.alpha: {e}"))?
                    .first()
                    .ok_or(format!("{prefix}.alpha is empty"))?,
            ),
            None => None,
        };
        let (up, down) = (
            floats(&up).map_err(|e| format!("{prefix} up: {e}"))?,
            floats(&down).map_err(|e| format!("{prefix} down: {e}"))?,
        );
        if up.iter().chain(&down).any(|v| !v.is_finite()) {
            return Err(format!("{prefix}: values that are not finite"));
        }
        file.modules.push(LoraModule {
            part,
            key: prefix,
            target,
            up,
            down,
            out,
            rank,
            inner,
            in_channels: ds[1],
            alpha,
        });
    }
    if file.modules.is_empty() && file.other_base.is_none() {
        return Err(format!(
            "no LoRA weights in it ({} keys not read)",
            file.unsupported.len()
        ));
    }
    Ok(file)
}
