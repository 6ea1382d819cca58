//! The prepare stage: the mask service runs the mask's operators and plans
//! the crops; here is what the public parameters ask of it.

use inpaint_common::tensor::{from_rgb, into_gray_tensor, wire_box};
use inpaint_imaging::{GrayImage, PixelBox, RgbImage};
use inpaint_proto::v1::{
    self as pb, InpaintParams, MaskOp, PrepareRequest, PrepareResponse, mask_op::Op,
};

use super::base::Pipeline;
use super::find::MASK_LEVEL;
use super::validate::Checked;
use crate::error::Error;
use crate::regions;

impl Pipeline {
    /// The crops to repaint, or None when the mask is empty after its
    /// operators. Notes unmatched region overrides in `notes`.
    pub(super) async fn prepare(
        &self,
        req: &Checked,
        image: &RgbImage,
        sketch: Option<(RgbImage, GrayImage)>,
        masks: Vec<(PixelBox, GrayImage)>,
        notes: &mut Vec<String>,
    ) -> Result<Option<PrepareResponse>, Error> {
        let params = &req.params;
        let user_ops = !params.mask_ops.is_empty();
        let mut ops = if user_ops {
            params.mask_ops.clone()
        } else {
            mask_ops(params)
        };
        if !req.separate() {
            ops = regions::merge_first(ops);
        }
        let region_ops = if req.separate() {
            notes.extend(regions::unused_overrides(params, masks.len()));
            regions::region_ops(params, masks.len(), mask_ops)
        } else {
            vec![]
        };
        let prepared = self
            .call(
                "mask",
                self.stages.mask.clone().prepare(PrepareRequest {
                    image: Some(from_rgb(image)),
                    mask_boxes: masks.iter().map(|(area, _)| wire_box(*area)).collect(),
                    masks: masks
                        .into_iter()
                        .map(|(_, m)| into_gray_tensor(m))
                        .collect(),
                    ops,
                    region_ops,
                    area: req.area as i32,
                    padding: req.padding(),
                    work_width: params.work_width,
                    work_height: params.work_height,
                    keep_crops_apart: params.keep_crops_apart || req.separate(),
                    return_mask: params.return_mask,
                    sketch: sketch.as_ref().map(|(colours, _)| from_rgb(colours)),
                    sketch_mask: sketch.map(|(_, painted)| into_gray_tensor(painted)),
                    caller_cuts_same_size: true,
                }),
            )
            .await
            .map_err(|err| if user_ops { public_op_field(err) } else { err })?;
        Ok((!prepared.empty).then_some(prepared))
    }
}

/// The operator chain the public parameters stand for, in A1111's order.
/// Inverting joins the regions first: "everything but the faces" is the
/// complement of their union, not the union of each one's complement.
fn mask_ops(params: &InpaintParams) -> Vec<MaskOp> {
    let mut ops = vec![Op::Threshold(pb::Threshold { level: MASK_LEVEL })];
    if params.invert {
        ops.push(Op::Combine(pb::Combine {
            mode: pb::CombineMode::MergeInvert as i32,
        }));
    }
    if params.grow != 0 {
        ops.push(Op::Grow(pb::Grow {
            pixels: params.grow,
            ..Default::default()
        }));
    }
    if params.mask_blur > 0 {
        ops.push(Op::Feather(pb::Feather {
            radius: params.mask_blur,
            ..Default::default()
        }));
    }
    ops.into_iter().map(|op| MaskOp { op: Some(op) }).collect()
}

/// The mask service names operations `ops[i]...`; in the public API they are
/// `params.mask_ops[i]...`.
fn public_op_field(err: Error) -> Error {
    err.rename_stage_field(|field| {
        field
            .starts_with("ops")
            .then(|| format!("params.mask_{field}"))
    })
}
