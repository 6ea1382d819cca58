//! Several regions: repainted one by one (SEPARATE, ADetailer's flow, with
//! per-region overrides) or joined into one mask (MERGED).

use inpaint_proto::v1::{
    self as pb, InpaintCropsRequest, InpaintParams, MaskOp, RegionOps, RegionOverride,
};

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
        // A region that names its own LoRAs replaces the request's list
        // (tags in its own prompt come with that prompt).
        loras: if o.loras.is_empty() {
            base.loras
        } else {
            o.loras.clone()
        },
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
