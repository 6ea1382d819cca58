//! The model config file: which ONNX inpainting models a worker loads and
//! how to talk to each. A preset fills in one of the two public conventions
//! (see shared/MODELS.md) so an operator only points at the file; any field
//! can still be set to override it.
//!
//! ```toml
//! [[model]]
//! name = "lama"
//! path = "/models/big-lama.onnx"
//! preset = "lama"          # or "migan"
//! fixed_size = [512, 512]  # or side_multiple = 8 for dynamic sides
//! max_batch = 4
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Clone, thiserror::Error)]
#[error("model config {file}: {reason}")]
pub struct ConfigError {
    pub file: String,
    pub reason: String,
}

/// Element type of the image and mask inputs and of the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    F32,
    U8,
}

/// Value range of float pixels (u8 tensors are always 0..255).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Range {
    /// 0..1
    Unit,
    /// 0..255
    Byte,
}

/// What the mask tensor's values mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskPolarity {
    /// Full value (1, or 255 for u8) = hole, 0 = keep (LaMa).
    HoleIsOne,
    /// Full value = keep, 0 = fill (MI-GAN).
    KeepIsOne,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// image f32 [N,3,H,W] RGB 0..1, mask f32 [N,1,H,W] 1 = hole, output f32 0..1.
    Lama,
    /// image u8 [N,3,H,W] RGB, mask u8 [N,1,H,W] 255 = keep, output u8.
    Migan,
}

/// One model, everything resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    pub name: String,
    pub path: PathBuf,
    pub image_input: String,
    pub mask_input: String,
    pub output: String,
    pub dtype: DType,
    pub input_range: Range,
    pub output_range: Range,
    pub mask: MaskPolarity,
    /// Fixed models: crops are resized to this (width, height).
    pub fixed_size: Option<(u32, u32)>,
    /// Dynamic models: crops are padded to sides that are multiples of this.
    pub side_multiple: u32,
    pub max_batch: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    model: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    path: PathBuf,
    /// "inpaint" (default) or "sd" (a Stable Diffusion export folder).
    kind: Option<String>,
    preset: Option<Preset>,
    image_input: Option<String>,
    mask_input: Option<String>,
    output: Option<String>,
    dtype: Option<DType>,
    input_range: Option<Range>,
    output_range: Option<Range>,
    mask: Option<MaskPolarity>,
    fixed_size: Option<[u32; 2]>,
    side_multiple: Option<u32>,
    max_batch: Option<usize>,
}

/// Reads a model config file. Relative model paths are taken from the
/// file's folder.
pub fn load(file: &Path) -> Result<Vec<ModelSpec>, ConfigError> {
    let err = |reason: String| ConfigError {
        file: file.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(file).map_err(|e| err(format!("cannot read: {e}")))?;
    let base = file.parent().unwrap_or(Path::new("."));
    parse(&text, base).map_err(err)
}

pub fn parse(text: &str, base: &Path) -> Result<Vec<ModelSpec>, String> {
    Ok(parse_all(text, base)?.0)
}

/// A Stable Diffusion pipeline: a folder in the diffusers/optimum ONNX
/// layout (`kind = "sd"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdSpec {
    pub name: String,
    pub path: PathBuf,
}

/// Both kinds of model a config file names.
pub fn load_all(file: &Path) -> Result<(Vec<ModelSpec>, Vec<SdSpec>), ConfigError> {
    let err = |reason: String| ConfigError {
        file: file.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(file).map_err(|e| err(format!("cannot read: {e}")))?;
    let base = file.parent().unwrap_or(Path::new("."));
    parse_all(&text, base).map_err(err)
}

pub fn parse_all(text: &str, base: &Path) -> Result<(Vec<ModelSpec>, Vec<SdSpec>), String> {
    let parsed: File = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut specs: Vec<ModelSpec> = Vec::new();
    let mut sd: Vec<SdSpec> = Vec::new();
    for entry in parsed.model {
        if entry.kind.as_deref() == Some("sd") {
            let spec = resolve_sd(entry, base)?;
            if sd.iter().any(|s| s.name == spec.name) || specs.iter().any(|s| s.name == spec.name) {
                return Err(format!("model {:?} is defined twice", spec.name));
            }
            sd.push(spec);
            continue;
        }
        if let Some(kind) = entry.kind.as_deref().filter(|k| *k != "inpaint") {
            return Err(format!(
                "model {:?}: kind {kind:?} is unknown (\"inpaint\" or \"sd\")",
                entry.name
            ));
        }
        let spec = resolve(entry, base)?;
        if sd.iter().any(|s| s.name == spec.name) {
            return Err(format!("model {:?} is defined twice", spec.name));
        }
        if specs.iter().any(|s| s.name == spec.name) {
            return Err(format!("model {:?} is defined twice", spec.name));
        }
        specs.push(spec);
    }
    Ok((specs, sd))
}

fn resolve_sd(e: Entry, base: &Path) -> Result<SdSpec, String> {
    check_name(&e.name)?;
    let onnx_only = [
        e.preset.is_some(),
        e.image_input.is_some(),
        e.mask_input.is_some(),
        e.output.is_some(),
        e.dtype.is_some(),
        e.fixed_size.is_some(),
        e.side_multiple.is_some(),
        e.max_batch.is_some(),
    ];
    if onnx_only.iter().any(|set| *set) {
        return Err(format!(
            "model {:?}: a kind = \"sd\" model takes only name and path (the folder); its graphs say the rest",
            e.name
        ));
    }
    Ok(SdSpec {
        path: if e.path.is_absolute() {
            e.path
        } else {
            base.join(e.path)
        },
        name: e.name,
    })
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(format!("model name {name:?}: use letters, digits, - _ ."));
    }
    Ok(())
}

fn resolve(e: Entry, base: &Path) -> Result<ModelSpec, String> {
    let name = e.name.clone();
    check_name(&name)?;
    let need = |field: &str| format!("model {name:?}: `{field}` is required without a preset");
    let (dtype, range, mask) = match e.preset {
        Some(Preset::Lama) => (
            Some(DType::F32),
            Some(Range::Unit),
            Some(MaskPolarity::HoleIsOne),
        ),
        Some(Preset::Migan) => (
            Some(DType::U8),
            Some(Range::Byte),
            Some(MaskPolarity::KeepIsOne),
        ),
        None => (None, None, None),
    };
    let named = |v: Option<String>, default: &str| v.unwrap_or_else(|| default.to_string());
    let dtype = e.dtype.or(dtype).ok_or_else(|| need("dtype"))?;
    let input_range = e.input_range.or(range).ok_or_else(|| need("input_range"))?;
    let output_range = e
        .output_range
        .or(range)
        .ok_or_else(|| need("output_range"))?;
    if dtype == DType::U8 && (input_range != Range::Byte || output_range != Range::Byte) {
        return Err(format!(
            "model {name:?}: u8 tensors are always in the byte range"
        ));
    }
    let max_batch = e.max_batch.unwrap_or(8);
    if !(1..=64).contains(&max_batch) {
        return Err(format!("model {name:?}: max_batch must be in 1..=64"));
    }
    let side_multiple = e.side_multiple.unwrap_or(8);
    if !(1..=256).contains(&side_multiple) {
        return Err(format!("model {name:?}: side_multiple must be in 1..=256"));
    }
    let fixed_size = match e.fixed_size {
        Some([w, h]) if (8..=8192).contains(&w) && (8..=8192).contains(&h) => Some((w, h)),
        Some(_) => {
            return Err(format!(
                "model {name:?}: fixed_size sides must be in 8..=8192"
            ));
        }
        None => None,
    };
    Ok(ModelSpec {
        path: if e.path.is_absolute() {
            e.path
        } else {
            base.join(e.path)
        },
        image_input: named(e.image_input, "image"),
        mask_input: named(e.mask_input, "mask"),
        output: named(e.output, "output"),
        dtype,
        input_range,
        output_range,
        mask: e.mask.or(mask).ok_or_else(|| need("mask"))?,
        fixed_size,
        side_multiple,
        max_batch,
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_fill_the_conventions() {
        let specs = parse(
            r#"
            [[model]]
            name = "a"
            path = "a.onnx"
            preset = "lama"
            fixed_size = [512, 512]

            [[model]]
            name = "b"
            path = "/abs/b.onnx"
            preset = "migan"
            output = "result"
            max_batch = 2
            "#,
            Path::new("/models"),
        )
        .unwrap();
        assert_eq!(specs[0].path, PathBuf::from("/models/a.onnx"));
        assert_eq!(
            (specs[0].dtype, specs[0].mask),
            (DType::F32, MaskPolarity::HoleIsOne)
        );
        assert_eq!(specs[0].fixed_size, Some((512, 512)));
        assert_eq!(
            (specs[1].dtype, specs[1].mask),
            (DType::U8, MaskPolarity::KeepIsOne)
        );
        assert_eq!(
            (specs[1].output.as_str(), specs[1].max_batch),
            ("result", 2)
        );
    }

    #[test]
    fn mistakes_are_explained() {
        let base = Path::new(".");
        assert!(
            parse("[[model]]\nname = \"x\"\npath = \"x.onnx\"\n", base)
                .unwrap_err()
                .contains("required without a preset")
        );
        assert!(
            parse(
                "[[model]]\nname = \"x\"\npath = \"x\"\npreset = \"lama\"\ncolour = 1\n",
                base
            )
            .unwrap_err()
            .contains("unknown field")
        );
        let twice = "[[model]]\nname = \"x\"\npath = \"x\"\npreset = \"lama\"\n";
        assert!(
            parse(&format!("{twice}{twice}"), base)
                .unwrap_err()
                .contains("twice")
        );
        assert!(parse("[[model]]\nname = \"x\"\npath = \"x\"\npreset = \"migan\"\ninput_range = \"unit\"\n", base).is_err());
    }
}
