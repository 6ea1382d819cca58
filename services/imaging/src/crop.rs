//! Crop planning: where each repaint happens and at what size.

use crate::buffer::{GrayImage, PixelBox};
use crate::mask::bounding_box;

/// A planned repaint: `area` cut from the image, rendered at `work_width` x
/// `work_height`, holding the regions listed in `regions` (indices into the
/// planner's input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CropPlan {
    pub area: PixelBox,
    pub work_width: u32,
    pub work_height: u32,
    pub regions: Vec<usize>,
}

/// Crop sides are rounded up to a multiple of this when the image allows
/// (what latent-space models need).
pub const SIDE_MULTIPLE: u32 = 8;

/// The whole picture at its own resolution, holding every region.
pub fn plan_whole(width: u32, height: u32, regions: usize) -> CropPlan {
    CropPlan {
        area: PixelBox::new(0, 0, width, height),
        work_width: width,
        work_height: height,
        regions: (0..regions).collect(),
    }
}

/// Only the masked parts: one crop per non-empty region (mask > 0), grown by
/// `padding`, widened to the working aspect ratio, sides rounded up to a
/// multiple of 8 and clamped to the image. With `merge_overlapping`, crops
/// that overlap become one (holding both regions); otherwise each region
/// keeps its own crop. Crops come in a stable order: merged, top to bottom
/// then left to right; kept apart, in region order (so that overlapping
/// crops are pasted in the order the caller gave the regions).
pub fn plan_only_masked(
    regions: &[GrayImage],
    padding: u32,
    work_width: u32,
    work_height: u32,
    merge_overlapping: bool,
) -> Vec<CropPlan> {
    let Some(first) = regions.first() else {
        return vec![];
    };
    let (w, h) = (first.width(), first.height());
    let ratio = work_width as f64 / work_height as f64;
    let fit = |b: PixelBox| round_sides(fit_aspect(pad(&b, padding, w, h), ratio, w, h), w, h);
    let mut plans: Vec<CropPlan> = regions
        .iter()
        .enumerate()
        .filter_map(|(i, m)| bounding_box(m).map(|b| (i, b)))
        .map(|(i, b)| CropPlan {
            area: fit(b),
            work_width,
            work_height,
            regions: vec![i],
        })
        .collect();
    if merge_overlapping {
        while let Some((i, j)) = first_overlap(&plans) {
            let other = plans.swap_remove(j);
            let plan = &mut plans[i];
            plan.area = fit(plan.area.union(&other.area));
            plan.regions.extend(other.regions);
            plan.regions.sort_unstable();
        }
    }
    if merge_overlapping {
        plans.sort_by_key(|p| (p.area.y, p.area.x, p.regions.first().copied()));
    }
    plans
}

fn pad(b: &PixelBox, padding: u32, w: u32, h: u32) -> PixelBox {
    let x0 = b.x.saturating_sub(padding);
    let y0 = b.y.saturating_sub(padding);
    let x1 = b.right().saturating_add(padding).min(w);
    let y1 = b.bottom().saturating_add(padding).min(h);
    PixelBox::new(x0, y0, x1 - x0, y1 - y0)
}

/// Widens the shorter side around the centre until width/height = ratio (as
/// far as the image allows), then shifts the box inside the image.
fn fit_aspect(b: PixelBox, ratio: f64, w: u32, h: u32) -> PixelBox {
    let (mut bw, mut bh) = (b.width as f64, b.height as f64);
    if bw / bh < ratio {
        bw = bh * ratio;
    } else {
        bh = bw / ratio;
    }
    centred(b, bw.round() as u32, bh.round() as u32, w, h)
}

/// Rounds each side up to a multiple of [`SIDE_MULTIPLE`] (or to the image's
/// side when that is smaller), keeping the centre.
fn round_sides(b: PixelBox, w: u32, h: u32) -> PixelBox {
    let up = |v: u32| v.div_ceil(SIDE_MULTIPLE) * SIDE_MULTIPLE;
    centred(b, up(b.width), up(b.height), w, h)
}

/// A box of (about) `bw` x `bh` around `b`'s centre, never smaller than `b`,
/// clamped to and shifted inside the image.
fn centred(b: PixelBox, bw: u32, bh: u32, w: u32, h: u32) -> PixelBox {
    let bw = bw.clamp(b.width, w);
    let bh = bh.clamp(b.height, h);
    let cx = b.x as f64 + b.width as f64 / 2.0;
    let cy = b.y as f64 + b.height as f64 / 2.0;
    let x = (cx - bw as f64 / 2.0).round().clamp(0.0, (w - bw) as f64) as u32;
    let y = (cy - bh as f64 / 2.0).round().clamp(0.0, (h - bh) as f64) as u32;
    PixelBox::new(x, y, bw, bh)
}

fn first_overlap(plans: &[CropPlan]) -> Option<(usize, usize)> {
    (0..plans.len()).find_map(|i| {
        (i + 1..plans.len())
            .find(|&j| plans[i].area.intersects(&plans[j].area))
            .map(|j| (i, j))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::from_box;

    #[test]
    fn one_region_gets_a_padded_square_crop_with_sides_of_eight() {
        let m = from_box(200, 100, PixelBox::new(90, 40, 20, 10));
        let plans = plan_only_masked(&[m], 5, 512, 512, true);
        assert_eq!(plans.len(), 1);
        let a = plans[0].area;
        assert_eq!((a.width, a.height), (32, 32));
        assert!(a.x <= 85 && a.right() >= 115 && a.y <= 35 && a.bottom() >= 55);
        assert_eq!(plans[0].regions, vec![0]);
    }

    #[test]
    fn crop_stays_inside_the_image() {
        let m = from_box(100, 100, PixelBox::new(0, 0, 5, 60));
        let a = plan_only_masked(&[m], 10, 512, 512, true)[0].area;
        assert!(a.right() <= 100 && a.bottom() <= 100);
        assert_eq!((a.width, a.height), (72, 72));
        assert_eq!((a.x, a.y), (0, 0));
    }

    #[test]
    fn sides_stop_at_the_image_size() {
        let m = from_box(30, 20, PixelBox::new(0, 0, 30, 20));
        let a = plan_only_masked(&[m], 0, 64, 64, true)[0].area;
        assert_eq!(a, PixelBox::new(0, 0, 30, 20));
    }

    #[test]
    fn overlapping_regions_merge_or_stay_apart() {
        let a = from_box(300, 300, PixelBox::new(10, 10, 10, 10));
        let b = from_box(300, 300, PixelBox::new(250, 250, 10, 10));
        let c = from_box(300, 300, PixelBox::new(25, 10, 10, 10));
        let far = plan_only_masked(&[a.clone(), b], 4, 64, 64, true);
        assert_eq!(far.len(), 2);
        let merged = plan_only_masked(&[a.clone(), c.clone()], 4, 64, 64, true);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].regions, vec![0, 1]);
        assert!(merged[0].area.width >= 33 && merged[0].area.width.is_multiple_of(8));
        let apart = plan_only_masked(&[a, c], 4, 64, 64, false);
        assert_eq!(apart.len(), 2);
        assert!(apart[0].area.intersects(&apart[1].area));
    }

    #[test]
    fn empty_regions_get_no_crop() {
        assert!(plan_only_masked(&[GrayImage::filled(10, 10, 0)], 4, 64, 64, true).is_empty());
        assert!(plan_only_masked(&[], 4, 64, 64, true).is_empty());
    }

    #[test]
    fn whole_is_the_picture() {
        let p = plan_whole(30, 20, 2);
        assert_eq!(p.area, PixelBox::new(0, 0, 30, 20));
        assert_eq!((p.work_width, p.work_height), (30, 20));
        assert_eq!(p.regions, vec![0, 1]);
    }
}
