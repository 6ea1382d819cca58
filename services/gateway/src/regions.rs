//! Several regions: repainted one by one (SEPARATE, ADetailer's flow, with
//! per-region overrides) or joined into one mask (MERGED).

use inpaint_proto::v1::{
    self as pb, InpaintCropsRequest, InpaintParams, MaskOp, RegionMode, RegionOps, RegionOverride,
};

use crate::error::Error;

/// Checks `region_mode` and `region_overrides` before any work is done.
/// Most region overrides one request may carry (each unmatched one comes
/// back as a note, so the list must not be unbounded).
pub const MAX_REGION_OVERRIDES: usize = 256;

pub fn validate(params: &InpaintParams, longest_side: u32) -> Result<RegionMode, Error> {
    let mode = RegionMode::try_from(params.region_mode)
        .map_err(|_| Error::invalid("params.region_mode", "unknown region mode"))?;
    if mode == RegionMode::Merged && !params.region_overrides.is_empty() {
        return Err(Error::invalid(
            "params.region_overrides",
            "apply to separate regions, but region_mode is MERGED",
        ));
    }
    if params.region_overrides.len() > MAX_REGION_OVERRIDES {
        return Err(Error::invalid(
            "params.region_overrides",
            format!(
                "{} given, at most {MAX_REGION_OVERRIDES}",
                params.region_overrides.len()
            ),
        ));
    }
    let mut seen = Vec::new();
    for (k, o) in params.region_overrides.iter().enumerate() {
        let field = |name: &str| format!("params.region_overrides[{k}].{name}");
        if seen.contains(&o.region) {
            return Err(Error::invalid(field("region"), "is overridden twice"));
        }
        seen.push(o.region);
        if let Some(s) = o.strength.filter(|s| !(0.0..=1.0).contains(s)) {
            return Err(Error::invalid(
                field("strength"),
                format!("{s} is not in 0..=1"),
            ));
        }
        if o.grow.is_some_and(|g| g.unsigned_abs() > longest_side) {
            return Err(Error::invalid(
                field("grow"),
                "is beyond the image's longer side",
            ));
        }
        if o.feather.is_some_and(|f| f > longest_side) {
            return Err(Error::invalid(
                field("feather"),
                "is beyond the image's longer side",
            ));
        }
        let reshapes = o.grow.is_some() || o.feather.is_some();
        if reshapes && (params.invert || !params.mask_ops.is_empty()) {
            return Err(Error::invalid(
                field(if o.grow.is_some() { "grow" } else { "feather" }),
                "cannot be combined with invert or mask_ops (they act on all regions)",
            ));
        }
    }
    Ok(mode)
}

/// The override for region `index`, if any.
pub fn override_for(params: &InpaintParams, index: usize) -> Option<&RegionOverride> {
    params
        .region_overrides
        .iter()
        .find(|o| o.region as usize == index)
}

/// Notes for overrides that name a region that was not found.
pub fn unused_overrides(params: &InpaintParams, regions: usize) -> Vec<String> {
    params
        .region_overrides
        .iter()
        .filter(|o| o.region as usize >= regions)
        .map(|o| {
            format!(
                "region_overrides: region {} not found ({regions} regions): ignored",
                o.region
            )
        })
        .collect()
}

/// Own operator chains for regions whose grow or feather is overridden,
/// built by `derive` from the request's parameters with those replaced.
pub fn region_ops(
    params: &InpaintParams,
    regions: usize,
    derive: impl Fn(&InpaintParams) -> Vec<MaskOp>,
) -> Vec<RegionOps> {
    params
        .region_overrides
        .iter()
        .filter(|o| (o.region as usize) < regions && (o.grow.is_some() || o.feather.is_some()))
        .map(|o| {
            let own = InpaintParams {
                grow: o.grow.unwrap_or(params.grow),
                mask_blur: o.feather.unwrap_or(params.mask_blur),
                ..params.clone()
            };
            RegionOps {
                region: o.region,
                ops: derive(&own),
            }
        })
        .collect()
}

/// A region's Stable Diffusion settings: the override's non-empty strings
/// and set values over the request's.
pub fn merge_sd(base: Option<&pb::SdParams>, o: &pb::SdParams) -> pb::SdParams {
    let base = base.cloned().unwrap_or_default();
    let text = |mine: &String, theirs: String| {
        if mine.is_empty() {
            theirs
        } else {
            mine.clone()
        }
    };
    pb::SdParams {
        prompt: text(&o.prompt, base.prompt),
        negative_prompt: text(&o.negative_prompt, base.negative_prompt),
        steps: o.steps.or(base.steps),
        cfg_scale: o.cfg_scale.or(base.cfg_scale),
        sampler: text(&o.sampler, base.sampler),
        schedule: text(&o.schedule, base.schedule),
        denoising_strength: o.denoising_strength.or(base.denoising_strength),
        inpainting_mask_weight: o.inpainting_mask_weight.or(base.inpainting_mask_weight),
    }
}

/// Applies a region's engine, strength and seed to its crop's request.
pub fn apply_to_crop(request: &mut InpaintCropsRequest, o: &RegionOverride) {
    if let Some(sd) = &o.sd {
        request.sd = Some(merge_sd(request.sd.as_ref(), sd));
    }
    if let Some(engine) = &o.engine {
        request.engine = engine.clone();
    }
    if let Some(strength) = o.strength {
        request.strength = Some(strength);
    }
    if let Some(seed) = o.seed {
        request.seed = seed;
    }
}

/// The engines the overrides name (to check before any work).
pub fn engines(params: &InpaintParams) -> impl Iterator<Item = &str> {
    params
        .region_overrides
        .iter()
        .filter_map(|o| o.engine.as_deref())
}

/// Joins every region into one (MERGED) at the start of a derived chain.
pub fn merge_first(mut ops: Vec<MaskOp>) -> Vec<MaskOp> {
    let merge = MaskOp {
        op: Some(pb::mask_op::Op::Combine(pb::Combine {
            mode: pb::CombineMode::Merge as i32,
        })),
    };
    ops.insert(0, merge);
    ops
}
