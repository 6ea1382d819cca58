//! The `inpaint.v1.Mask` gRPC service.

use inpaint_common::tensor::{into_gray_tensor, into_rgb_tensor, to_gray, to_rgb, wire_box};
use inpaint_imaging::composite::{Corrections, Repainted, composite};
use inpaint_imaging::crop::{CropPlan, SIDE_MULTIPLE, plan_only_masked, plan_whole};
use inpaint_imaging::resize::{into_size, resize_hole};
use inpaint_imaging::{GrayImage, PixelBox, RgbImage, mask};
use inpaint_proto::v1::mask_server::Mask;
use inpaint_proto::v1::{
    CompositeRequest, CompositeResponse, Crop, InpaintArea, PrepareRequest, PrepareResponse,
    PreparedCrop,
};
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::error::Error;
use crate::ops;

/// Working size when the request leaves it at 0.
pub const DEFAULT_WORK_SIZE: u32 = 512;
/// Largest working side accepted.
pub use inpaint_common::limits::{MAX_WORK_SIDE, MIN_WORK_SIDE};

pub struct MaskService {
    max_image_pixels: u64,
}

impl MaskService {
    pub fn new(max_image_pixels: u64) -> Self {
        Self { max_image_pixels }
    }

    fn check_pixels(&self, field: &str, width: u32, height: u32) -> Result<(), Error> {
        let pixels = width as u64 * height as u64;
        if pixels > self.max_image_pixels {
            return Err(Error::TooManyPixels {
                field: field.into(),
                pixels,
                limit: self.max_image_pixels,
            });
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl Mask for MaskService {
    #[instrument(skip_all, fields(masks, ops, crops))]
    async fn prepare(
        &self,
        request: Request<PrepareRequest>,
    ) -> Result<Response<PrepareResponse>, Status> {
        let req = request.into_inner();
        let image = to_rgb(req.image, "image")?;
        self.check_pixels("image", image.width(), image.height())?;
        let mut masks = Vec::with_capacity(req.masks.len());
        for (i, m) in req.masks.into_iter().enumerate() {
            let field = format!("masks[{i}]");
            let m = to_gray(Some(m), &field)?;
            if (m.width(), m.height()) != (image.width(), image.height()) {
                return Err(Error::invalid(
                    field,
                    format!(
                        "is {}x{}, image is {}x{}",
                        m.width(),
                        m.height(),
                        image.width(),
                        image.height()
                    ),
                )
                .into());
            }
            masks.push(m);
        }
        let sketch = match (req.sketch, req.sketch_mask) {
            (None, None) => None,
            (Some(colours), Some(painted)) => {
                let colours = to_rgb(Some(colours), "sketch")?;
                let painted = to_gray(Some(painted), "sketch_mask")?;
                let size = (image.width(), image.height());
                if (colours.width(), colours.height()) != size {
                    return Err(Error::invalid("sketch", "must be the image's size").into());
                }
                if (painted.width(), painted.height()) != size {
                    return Err(Error::invalid("sketch_mask", "must be the image's size").into());
                }
                Some((colours, painted))
            }
            _ => {
                return Err(
                    Error::invalid("sketch", "sketch and sketch_mask come together").into(),
                );
            }
        };
        let area = InpaintArea::try_from(req.area)
            .map_err(|_| Error::invalid("area", "unknown inpaint area"))?;
        let work = work_size(req.work_width, req.work_height)?;
        ops::validate(&req.ops, image.width(), image.height())?;
        let region_ops = ops::region_ops(&req.region_ops, &req.ops, masks.len(), &image)?;
        tracing::Span::current()
            .record("masks", masks.len())
            .record("ops", req.ops.len());

        let response = tokio::task::spawn_blocking(move || -> Result<PrepareResponse, Error> {
            let regions = match region_ops {
                Some(per_region) => ops::apply_per_region(&per_region, masks)?,
                None => ops::apply(&req.ops, masks)?,
            };
            let union =
                mask::union(&regions.iter().collect::<Vec<_>>()).expect("at least one region");
            if mask::is_empty(&union) {
                return Ok(PrepareResponse {
                    empty: true,
                    ..Default::default()
                });
            }
            let plans = match area {
                InpaintArea::OnlyMasked => {
                    plan_only_masked(&regions, req.padding, work.0, work.1, !req.keep_crops_apart)
                }
                InpaintArea::Whole | InpaintArea::Unspecified => {
                    vec![plan_whole(image.width(), image.height(), regions.len())]
                }
            };
            let crops = plans
                .iter()
                .map(|plan| cut(&image, &regions, sketch.as_ref(), plan))
                .collect();
            Ok(PrepareResponse {
                empty: false,
                crops,
                mask: req.return_mask.then(|| into_gray_tensor(union)),
            })
        })
        .await
        .map_err(|e| Status::internal(format!("prepare task failed: {e}")))??;
        tracing::Span::current().record("crops", response.crops.len());
        Ok(Response::new(response))
    }

    #[instrument(skip_all, fields(results))]
    async fn composite(
        &self,
        request: Request<CompositeRequest>,
    ) -> Result<Response<CompositeResponse>, Status> {
        let req = request.into_inner();
        let image = to_rgb(req.image, "image")?;
        self.check_pixels("image", image.width(), image.height())?;
        tracing::Span::current().record("results", req.results.len());
        let mut crops = Vec::with_capacity(req.results.len());
        for (i, r) in req.results.into_iter().enumerate() {
            let plan = plan_from_wire(r.crop, &image, &format!("results[{i}].crop"))?;
            let field = format!("results[{i}].image");
            let repainted = to_rgb(r.image, &field)?;
            if (repainted.width(), repainted.height()) != (plan.work_width, plan.work_height) {
                return Err(Error::invalid(field, "must be the crop's working size").into());
            }
            let field = format!("results[{i}].alpha");
            let alpha = to_gray(r.alpha, &field)?;
            if (alpha.width(), alpha.height()) != (plan.area.width, plan.area.height) {
                return Err(Error::invalid(field, "must be the crop box's size").into());
            }
            crops.push(Repainted {
                area: plan.area,
                image: repainted,
                alpha,
            });
        }
        let corrections = Corrections {
            color: req.color_correction,
            seamless: req.seamless,
        };
        let out = tokio::task::spawn_blocking(move || composite(&image, &crops, corrections))
            .await
            .map_err(|e| Status::internal(format!("composite task failed: {e}")))?;
        Ok(Response::new(CompositeResponse {
            image: Some(into_rgb_tensor(out)),
        }))
    }
}

/// The working size, each side rounded up to a multiple of 8.
fn work_size(width: u32, height: u32) -> Result<(u32, u32), Error> {
    let pick = |v: u32, field: &str| match v {
        0 => Ok(DEFAULT_WORK_SIZE),
        MIN_WORK_SIDE..=MAX_WORK_SIDE => Ok(v.div_ceil(SIDE_MULTIPLE) * SIDE_MULTIPLE),
        _ => Err(Error::invalid(
            field,
            format!("must be 0 (default) or in {MIN_WORK_SIDE}..={MAX_WORK_SIDE}"),
        )),
    };
    Ok((pick(width, "work_width")?, pick(height, "work_height")?))
}

/// Cuts one crop out at its working size, with the hole the engine must fill,
/// the paste-back alpha of the regions it holds and the sketch, if any.
fn cut(
    image: &RgbImage,
    regions: &[GrayImage],
    sketch: Option<&(RgbImage, GrayImage)>,
    plan: &CropPlan,
) -> PreparedCrop {
    let (w, h) = (plan.work_width, plan.work_height);
    let pixels = into_size(image.crop(plan.area), w, h);
    let held: Vec<GrayImage> = plan
        .regions
        .iter()
        .map(|&i| regions[i].crop(plan.area))
        .collect();
    let alpha = mask::union(&held.iter().collect::<Vec<_>>()).expect("a crop holds a region");
    let hole = if (alpha.width(), alpha.height()) == (w, h) {
        mask::threshold(&alpha, 1)
    } else {
        resize_hole(&alpha, w, h)
    };
    let (sketch, sketch_mask) = match sketch {
        Some((colours, painted)) => {
            let painted = painted.crop(plan.area);
            let painted = if (w, h) == (painted.width(), painted.height()) {
                mask::threshold(&painted, 1)
            } else {
                resize_hole(&painted, w, h)
            };
            (
                Some(into_rgb_tensor(into_size(colours.crop(plan.area), w, h))),
                Some(into_gray_tensor(painted)),
            )
        }
        None => (None, None),
    };
    PreparedCrop {
        crop: Some(plan_to_wire(plan)),
        image: Some(into_rgb_tensor(pixels)),
        hole: Some(into_gray_tensor(hole)),
        alpha: Some(into_gray_tensor(alpha)),
        sketch,
        sketch_mask,
        regions: plan.regions.iter().map(|&i| i as u32).collect(),
    }
}

fn plan_to_wire(plan: &CropPlan) -> Crop {
    Crop {
        r#box: Some(wire_box(plan.area)),
        work_width: plan.work_width,
        work_height: plan.work_height,
        sd: None,
    }
}

fn plan_from_wire(crop: Option<Crop>, image: &RgbImage, field: &str) -> Result<CropPlan, Error> {
    let crop = crop.ok_or_else(|| Error::invalid(field, "is required"))?;
    let b = crop
        .r#box
        .ok_or_else(|| Error::invalid(format!("{field}.box"), "is required"))?;
    let area = PixelBox::new(b.x, b.y, b.width, b.height);
    let inside = area.width > 0
        && area.height > 0
        && area
            .x
            .checked_add(area.width)
            .is_some_and(|r| r <= image.width())
        && area
            .y
            .checked_add(area.height)
            .is_some_and(|b| b <= image.height());
    if !inside {
        return Err(Error::invalid(
            format!("{field}.box"),
            "must be a non-empty box inside the image",
        ));
    }
    if crop.work_width == 0 || crop.work_height == 0 {
        return Err(Error::invalid(field, "working size must be at least 1x1"));
    }
    Ok(CropPlan {
        area,
        work_width: crop.work_width,
        work_height: crop.work_height,
        regions: vec![],
    })
}
