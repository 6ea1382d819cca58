//! The `inpaint.v1.Mask` gRPC service.

use inpaint_common::tensor::{
    expand_mask, into_gray_tensor, into_rgb_tensor, to_gray, to_rgb, wire_box,
};
use inpaint_imaging::composite::{Corrections, Repainted, composite};
use inpaint_imaging::crop::{CropPlan, SIDE_MULTIPLE, plan_only_masked, plan_whole};
use inpaint_imaging::resize::{into_size, resize_hole};
use inpaint_imaging::{GrayImage, PixelBox, RgbImage, mask};
use inpaint_proto::v1::mask_server::Mask;
use inpaint_proto::v1::{
    CompositeRequest, CompositeResponse, Crop, InpaintArea, PrepareRequest, PrepareResponse,
    PreparedCrop,
};
use std::sync::Arc;

use inpaint_common::status::resource_exhausted;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
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
    /// One permit per Prepare or Composite call being worked on.
    slots: Arc<Semaphore>,
    max_inflight: usize,
}

impl MaskService {
    pub fn new(max_image_pixels: u64) -> Self {
        Self::with_slots(max_image_pixels, 0)
    }

    /// At most `calls` Prepare and Composite calls at once (0 = 64).
    pub fn with_max_inflight(self, calls: usize) -> Self {
        Self::with_slots(self.max_image_pixels, calls)
    }

    fn with_slots(max_image_pixels: u64, calls: usize) -> Self {
        // The default stays above what one gateway sends at its own limits
        // (32 synchronous calls and its job runners): the bound is for
        // several gateways sharing one mask service.
        let max_inflight = if calls == 0 { 64 } else { calls };
        Self {
            max_image_pixels,
            slots: Arc::new(Semaphore::new(max_inflight)),
            max_inflight,
        }
    }

    /// A permit to work on one call, or RESOURCE_EXHAUSTED at once: the
    /// pixel work of calls beyond the limit would only queue up in memory.
    fn slot(&self) -> Result<OwnedSemaphorePermit, Status> {
        self.slots.clone().try_acquire_owned().map_err(|_| {
            resource_exhausted(
                format!(
                    "the mask service is working on {} calls, its limit",
                    self.max_inflight
                ),
                1,
            )
        })
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
        let _slot = self.slot()?;
        let req = request.into_inner();
        let image = to_rgb(req.image, "image")?;
        self.check_pixels("image", image.width(), image.height())?;
        if !req.mask_boxes.is_empty() && req.mask_boxes.len() != req.masks.len() {
            let wrong = format!(
                "{} boxes for {} masks",
                req.mask_boxes.len(),
                req.masks.len()
            );
            return Err(Error::invalid("mask_boxes", wrong).into());
        }
        let mut masks = Vec::with_capacity(req.masks.len());
        for (i, m) in req.masks.into_iter().enumerate() {
            let field = format!("masks[{i}]");
            let window = to_gray(Some(m), &field)?;
            let area = req.mask_boxes.get(i).copied();
            let (w, h) = (image.width(), image.height());
            masks.push(expand_mask(window, area, w, h, &field)?);
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
                .map(|plan| {
                    cut(
                        &image,
                        &regions,
                        sketch.as_ref(),
                        plan,
                        req.caller_cuts_same_size,
                    )
                })
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
        let _slot = self.slot()?;
        let req = request.into_inner();
        tracing::Span::current().record("results", req.results.len());
        let windowed = !req.windows.is_empty();
        if windowed && req.image.is_some() {
            return Err(Error::invalid("windows", "send the image or windows, not both").into());
        }
        // What is composited: the whole image, or each window where it lies.
        let mut canvases: Vec<(PixelBox, RgbImage)> = Vec::new();
        if windowed {
            for (k, w) in req.windows.into_iter().enumerate() {
                let field = format!("windows[{k}]");
                let b = w
                    .r#box
                    .ok_or_else(|| Error::invalid(format!("{field}.box"), "is required"))?;
                let image = to_rgb(w.image, &format!("{field}.image"))?;
                if (image.width(), image.height()) != (b.width, b.height) {
                    return Err(Error::invalid(field, "image must be the box's size").into());
                }
                self.check_pixels(&field, image.width(), image.height())?;
                canvases.push((PixelBox::new(b.x, b.y, b.width, b.height), image));
            }
        } else {
            let image = to_rgb(req.image, "image")?;
            self.check_pixels("image", image.width(), image.height())?;
            let whole = PixelBox::new(0, 0, image.width(), image.height());
            canvases.push((whole, image));
        }
        let mut crops: Vec<Vec<Repainted>> = canvases.iter().map(|_| Vec::new()).collect();
        for (i, r) in req.results.into_iter().enumerate() {
            let field = format!("results[{i}].crop");
            let plan = plan_from_wire(r.crop, &field)?;
            let Some(k) = canvases.iter().position(|(b, _)| holds(b, &plan.area)) else {
                let within = if windowed {
                    "one of the windows"
                } else {
                    "the image"
                };
                return Err(Error::invalid(
                    format!("{field}.box"),
                    format!("must be a non-empty box inside {within}"),
                )
                .into());
            };
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
            // In the canvas's own coordinates.
            let (origin, area) = (canvases[k].0, plan.area);
            crops[k].push(Repainted {
                area: PixelBox::new(
                    area.x - origin.x,
                    area.y - origin.y,
                    area.width,
                    area.height,
                ),
                image: repainted,
                alpha,
            });
        }
        let corrections = Corrections {
            color: req.color_correction,
            seamless: req.seamless,
        };
        let mut out = tokio::task::spawn_blocking(move || {
            canvases
                .iter()
                .zip(&crops)
                .map(|((_, canvas), crops)| into_rgb_tensor(composite(canvas, crops, corrections)))
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| Status::internal(format!("composite task failed: {e}")))?;
        Ok(Response::new(if windowed {
            CompositeResponse {
                image: None,
                windows: out,
            }
        } else {
            CompositeResponse {
                image: out.pop(),
                windows: vec![],
            }
        }))
    }
}

/// Whether `inner` is a non-empty box inside `outer`.
fn holds(outer: &PixelBox, inner: &PixelBox) -> bool {
    inner.width > 0
        && inner.height > 0
        && inner.x >= outer.x
        && inner.y >= outer.y
        && inner.right() <= outer.right()
        && inner.bottom() <= outer.bottom()
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
/// the paste-back alpha of the regions it holds and the sketch, if any. With
/// `caller_cuts_same_size`, a crop at its own size comes without its pixels
/// (the caller has them).
fn cut(
    image: &RgbImage,
    regions: &[GrayImage],
    sketch: Option<&(RgbImage, GrayImage)>,
    plan: &CropPlan,
    caller_cuts_same_size: bool,
) -> PreparedCrop {
    let (w, h) = (plan.work_width, plan.work_height);
    let same_size = (w, h) == (plan.area.width, plan.area.height);
    let pixels = (!(same_size && caller_cuts_same_size))
        .then(|| into_rgb_tensor(into_size(image.crop(plan.area), w, h)));
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
        image: pixels,
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

fn plan_from_wire(crop: Option<Crop>, field: &str) -> Result<CropPlan, Error> {
    let crop = crop.ok_or_else(|| Error::invalid(field, "is required"))?;
    let b = crop
        .r#box
        .ok_or_else(|| Error::invalid(format!("{field}.box"), "is required"))?;
    let area = PixelBox::new(b.x, b.y, b.width, b.height);
    if area.x.checked_add(area.width).is_none() || area.y.checked_add(area.height).is_none() {
        return Err(Error::invalid(format!("{field}.box"), "is out of range"));
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

#[cfg(test)]
mod tests {
    use super::*;
    use inpaint_proto::v1::{CropResult, Window};

    fn noise(w: u32, h: u32, seed: u32) -> RgbImage {
        let data =
            (0..w * h * 3).map(|i| (i.wrapping_mul(2654435761).wrapping_add(seed) >> 24) as u8);
        RgbImage::from_raw(w, h, data.collect()).unwrap()
    }

    fn result(area: PixelBox, seed: u32) -> CropResult {
        let alpha = GrayImage::from_raw(
            area.width,
            area.height,
            (0..area.width * area.height)
                .map(|i| (i * 37 % 256) as u8)
                .collect(),
        )
        .unwrap();
        CropResult {
            crop: Some(Crop {
                r#box: Some(wire_box(area)),
                work_width: 16,
                work_height: 16,
                sd: None,
            }),
            image: Some(into_rgb_tensor(noise(16, 16, seed))),
            alpha: Some(into_gray_tensor(alpha)),
        }
    }

    async fn run(req: CompositeRequest) -> Result<CompositeResponse, Status> {
        let service = MaskService::new(1 << 20);
        service
            .composite(Request::new(req))
            .await
            .map(Response::into_inner)
    }

    /// With caller_cuts_same_size, a crop at its own size comes without
    /// its pixels; a resized one still carries them; without the flag,
    /// every crop does.
    #[tokio::test]
    async fn same_size_crops_come_without_pixels_when_the_caller_cuts() {
        let image = noise(64, 48, 3);
        let m = mask::from_box(64, 48, PixelBox::new(20, 10, 8, 8));
        let prepare = |area: InpaintArea, caller_cuts_same_size: bool| {
            let req = PrepareRequest {
                image: Some(into_rgb_tensor(image.clone())),
                masks: vec![into_gray_tensor(m.clone())],
                area: area as i32,
                work_width: 64,
                work_height: 64,
                caller_cuts_same_size,
                ..Default::default()
            };
            async move {
                MaskService::new(1 << 20)
                    .prepare(Request::new(req))
                    .await
                    .unwrap()
                    .into_inner()
                    .crops
                    .remove(0)
            }
        };
        let whole = prepare(InpaintArea::Whole, true).await;
        assert!(whole.image.is_none());
        assert!(whole.hole.is_some() && whole.alpha.is_some());
        let resized = prepare(InpaintArea::OnlyMasked, true).await;
        let crop = resized.crop.unwrap();
        assert_ne!(crop.r#box.unwrap().width, crop.work_width);
        assert!(resized.image.is_some());
        assert!(prepare(InpaintArea::Whole, false).await.image.is_some());
    }

    /// Windows composited and pasted back give the bytes of the whole
    /// image composited: two overlapping crops in one window (the second
    /// over the first), one crop alone.
    #[tokio::test]
    async fn windows_give_what_the_whole_image_gives() {
        let image = noise(120, 80, 1);
        let areas = [
            PixelBox::new(10, 10, 30, 20),
            PixelBox::new(30, 20, 25, 25),
            PixelBox::new(80, 50, 30, 24),
        ];
        let results = || {
            areas
                .iter()
                .zip(1..)
                .map(|(a, s)| result(*a, s))
                .collect::<Vec<_>>()
        };
        let whole = run(CompositeRequest {
            image: Some(into_rgb_tensor(image.clone())),
            results: results(),
            color_correction: true,
            ..Default::default()
        })
        .await
        .unwrap();
        let windows = PixelBox::merge_overlapping(&areas);
        assert_eq!(windows.len(), 2);
        let parts = run(CompositeRequest {
            windows: windows
                .iter()
                .map(|w| Window {
                    r#box: Some(wire_box(*w)),
                    image: Some(into_rgb_tensor(image.crop(*w))),
                })
                .collect(),
            results: results(),
            color_correction: true,
            ..Default::default()
        })
        .await
        .unwrap();
        let mut pasted = image.clone();
        for (w, part) in windows.iter().zip(parts.windows) {
            pasted.paste(&to_rgb(Some(part), "window").unwrap(), w.x, w.y);
        }
        assert_eq!(pasted, to_rgb(whole.image, "image").unwrap());
    }

    #[tokio::test]
    async fn calls_over_the_limit_are_refused_at_once_with_retry_after() {
        let service = MaskService::new(1 << 20).with_max_inflight(1);
        let held = service.slot().expect("the one slot");
        let request = CompositeRequest {
            image: Some(into_rgb_tensor(noise(8, 8, 1))),
            ..Default::default()
        };
        let refused = service
            .composite(Request::new(request.clone()))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert_eq!(refused.metadata().get("retry-after").unwrap(), "1");
        drop(held);
        assert!(service.composite(Request::new(request)).await.is_ok());
    }

    #[tokio::test]
    async fn a_crop_outside_every_window_is_refused_by_name() {
        let window = PixelBox::new(0, 0, 40, 40);
        let status = run(CompositeRequest {
            windows: vec![Window {
                r#box: Some(wire_box(window)),
                image: Some(into_rgb_tensor(noise(40, 40, 2))),
            }],
            results: vec![result(PixelBox::new(30, 30, 20, 20), 3)],
            ..Default::default()
        })
        .await
        .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(
            status.message().contains("results[0].crop.box"),
            "{}",
            status.message()
        );
        let both = run(CompositeRequest {
            image: Some(into_rgb_tensor(noise(40, 40, 2))),
            windows: vec![Window {
                r#box: Some(wire_box(window)),
                image: Some(into_rgb_tensor(noise(40, 40, 2))),
            }],
            ..Default::default()
        })
        .await
        .unwrap_err();
        assert!(both.message().starts_with("windows"), "{}", both.message());
    }
}
