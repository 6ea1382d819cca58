//! Crop planning: where each repaint happens and at what size.

use crate::buffer::{GrayImage, PixelBox};
use crate::components::components;

/// A planned repaint: `area` cut from the image, rendered at `work_width` x
/// `work_height`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropPlan {
    pub area: PixelBox,
    pub work_width: u32,
    pub work_height: u32,
}

/// Past this many separate pieces, one crop around all of them is cheaper
/// than many tiny ones.
pub const MAX_CROPS: usize = 16;

/// The whole picture at its own resolution.
pub fn plan_whole(width: u32, height: u32) -> CropPlan {
    CropPlan {
        area: PixelBox::new(0, 0, width, height),
        work_width: width,
        work_height: height,
    }
}

/// Only the masked parts: one crop per connected piece of `alpha` (> 0),
/// each grown by `padding`, widened to the working aspect ratio and clamped
/// to the image; crops that overlap are merged into one.
pub fn plan_only_masked(
    alpha: &GrayImage,
    padding: u32,
    work_width: u32,
    work_height: u32,
) -> Vec<CropPlan> {
    let (w, h) = (alpha.width(), alpha.height());
    let pieces = components(alpha);
    let mut boxes: Vec<PixelBox> = if pieces.len() > MAX_CROPS {
        let all = pieces.iter().map(|c| c.bounds).reduce(|a, b| a.union(&b));
        all.into_iter().collect()
    } else {
        pieces.iter().map(|c| c.bounds).collect()
    };
    let ratio = work_width as f64 / work_height as f64;
    boxes = boxes
        .iter()
        .map(|b| fit_aspect(pad(b, padding, w, h), ratio, w, h))
        .collect();
    // Merge until no two overlap; each merge refits the aspect ratio.
    while let Some((i, j)) = first_overlap(&boxes) {
        let merged = fit_aspect(boxes[i].union(&boxes[j]), ratio, w, h);
        boxes.swap_remove(j);
        boxes[i] = merged;
    }
    boxes.sort_by_key(|b| (b.y, b.x));
    boxes
        .into_iter()
        .map(|area| CropPlan {
            area,
            work_width,
            work_height,
        })
        .collect()
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
    let bw = (bw.round() as u32).clamp(b.width, w);
    let bh = (bh.round() as u32).clamp(b.height, h);
    let cx = b.x as f64 + b.width as f64 / 2.0;
    let cy = b.y as f64 + b.height as f64 / 2.0;
    let x = (cx - bw as f64 / 2.0).round().clamp(0.0, (w - bw) as f64) as u32;
    let y = (cy - bh as f64 / 2.0).round().clamp(0.0, (h - bh) as f64) as u32;
    PixelBox::new(x, y, bw, bh)
}

fn first_overlap(boxes: &[PixelBox]) -> Option<(usize, usize)> {
    (0..boxes.len()).find_map(|i| {
        (i + 1..boxes.len())
            .find(|&j| boxes[i].intersects(&boxes[j]))
            .map(|j| (i, j))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::{from_box, union};

    #[test]
    fn one_piece_gets_a_padded_square_crop() {
        let m = from_box(200, 100, PixelBox::new(90, 40, 20, 10));
        let plans = plan_only_masked(&m, 5, 512, 512);
        assert_eq!(plans.len(), 1);
        let a = plans[0].area;
        assert_eq!((a.width, a.height), (30, 30));
        // Contains the padded mask box.
        assert!(a.x <= 85 && a.right() >= 115 && a.y <= 35 && a.bottom() >= 55);
    }

    #[test]
    fn crop_stays_inside_the_image() {
        let m = from_box(100, 100, PixelBox::new(0, 0, 5, 60));
        let a = plan_only_masked(&m, 10, 512, 512)[0].area;
        assert!(a.right() <= 100 && a.bottom() <= 100);
        assert_eq!((a.width, a.height), (70, 70));
        assert_eq!((a.x, a.y), (0, 0));
    }

    #[test]
    fn far_pieces_stay_apart_and_near_ones_merge() {
        let a = from_box(300, 300, PixelBox::new(10, 10, 10, 10));
        let b = from_box(300, 300, PixelBox::new(250, 250, 10, 10));
        let c = from_box(300, 300, PixelBox::new(25, 10, 10, 10));
        let apart = plan_only_masked(&union(&[&a, &b]).unwrap(), 4, 64, 64);
        assert_eq!(apart.len(), 2);
        let merged = plan_only_masked(&union(&[&a, &c]).unwrap(), 4, 64, 64);
        assert_eq!(merged.len(), 1);
        assert!(merged[0].area.width >= 33);
    }

    #[test]
    fn whole_is_the_picture() {
        let p = plan_whole(30, 20);
        assert_eq!(p.area, PixelBox::new(0, 0, 30, 20));
        assert_eq!((p.work_width, p.work_height), (30, 20));
    }
}
