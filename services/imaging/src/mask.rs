//! Mask operators. A mask is a [`GrayImage`]: 0 = keep, 255 = repaint.
//! Binary operators treat a pixel as "on" when it is >= [`ON_LEVEL`].

use crate::buffer::{GrayImage, PixelBox};
use crate::distance::squared_distance_to;

/// Values at or above this count as part of the mask.
pub const ON_LEVEL: u8 = 128;

/// 255 where `value >= level`, else 0.
pub fn threshold(mask: &GrayImage, level: u8) -> GrayImage {
    map(mask, |v| if v >= level { 255 } else { 0 })
}

/// 255 - value: repaint everything but the mask.
pub fn invert(mask: &GrayImage) -> GrayImage {
    map(mask, |v| 255 - v)
}

/// Grows (`pixels > 0`) or shrinks (`pixels < 0`) the binary mask by a disc of
/// radius |pixels|. Cost is linear in the pixel count for any radius.
///
/// Shrinking treats the outside of the image as "on", as OpenCV's erode does
/// by default, so a mask touching the border is not eaten from there.
pub fn grow(mask: &GrayImage, pixels: i32) -> GrayImage {
    let (w, h) = (mask.width() as usize, mask.height() as usize);
    let data = mask.as_raw();
    let radius_sq = (pixels as i64 * pixels as i64) as f32;
    let out: Vec<u8> = if pixels >= 0 {
        let dist = squared_distance_to(w, h, |i| data[i] >= ON_LEVEL);
        dist.iter().map(|&d| on_off(d <= radius_sq)).collect()
    } else {
        let dist = squared_distance_to(w, h, |i| data[i] < ON_LEVEL);
        dist.iter().map(|&d| on_off(d > radius_sq)).collect()
    };
    GrayImage::from_raw(mask.width(), mask.height(), out).expect("same size")
}

/// Soft edge: 255 on the mask, falling smoothly (smoothstep of the Euclidean
/// distance) to 0 at `radius` pixels outside it. The mask itself stays fully
/// opaque, so nothing of what was under it shows through; every pixel at
/// `radius` or further from it is exactly 0. Linear cost for any radius.
pub fn feather(mask: &GrayImage, radius: u32) -> GrayImage {
    if radius == 0 {
        return threshold(mask, ON_LEVEL);
    }
    let (w, h) = (mask.width() as usize, mask.height() as usize);
    let data = mask.as_raw();
    let dist = squared_distance_to(w, h, |i| data[i] >= ON_LEVEL);
    let span = radius as f32;
    let out = dist
        .iter()
        .map(|&d2| {
            if d2 == 0.0 {
                return 255;
            }
            let t = 1.0 - d2.sqrt() / span;
            if t <= 0.0 {
                0
            } else {
                let smooth = t * t * (3.0 - 2.0 * t);
                (smooth * 255.0).round().clamp(1.0, 255.0) as u8
            }
        })
        .collect();
    GrayImage::from_raw(mask.width(), mask.height(), out).expect("same size")
}

/// Per-pixel maximum of masks of one size (set union for binary masks).
pub fn union(masks: &[&GrayImage]) -> Option<GrayImage> {
    let (first, rest) = masks.split_first()?;
    let mut out = (*first).clone();
    for m in rest {
        assert_eq!((m.width(), m.height()), (out.width(), out.height()));
        for (o, &v) in out.as_raw_mut().iter_mut().zip(m.as_raw()) {
            *o = (*o).max(v);
        }
    }
    Some(out)
}

/// True when no pixel is above zero.
pub fn is_empty(mask: &GrayImage) -> bool {
    mask.as_raw().iter().all(|&v| v == 0)
}

/// The box around every pixel above zero, or None for an empty mask.
pub fn bounding_box(mask: &GrayImage) -> Option<PixelBox> {
    let w = mask.width() as usize;
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0usize, 0usize);
    for (y, row) in mask.as_raw().chunks_exact(w.max(1)).enumerate() {
        let Some(first) = row.iter().position(|&v| v > 0) else {
            continue;
        };
        let last = row.iter().rposition(|&v| v > 0).unwrap_or(first);
        x0 = x0.min(first);
        x1 = x1.max(last);
        y0 = y0.min(y);
        y1 = y;
    }
    (x0 != usize::MAX).then(|| {
        PixelBox::new(
            x0 as u32,
            y0 as u32,
            (x1 - x0 + 1) as u32,
            (y1 - y0 + 1) as u32,
        )
    })
}

/// A mask of the given size that is 255 inside `area` and 0 elsewhere.
pub fn from_box(width: u32, height: u32, area: PixelBox) -> GrayImage {
    let mut out = GrayImage::filled(width, height, 0);
    let x1 = area.right().min(width) as usize;
    let x0 = (area.x as usize).min(x1);
    for y in area.y..area.bottom().min(height) {
        let row = y as usize * width as usize;
        out.as_raw_mut()[row + x0..row + x1].fill(255);
    }
    out
}

fn map(mask: &GrayImage, f: impl Fn(u8) -> u8) -> GrayImage {
    let out = mask.as_raw().iter().map(|&v| f(v)).collect();
    GrayImage::from_raw(mask.width(), mask.height(), out).expect("same size")
}

fn on_off(on: bool) -> u8 {
    if on { 255 } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(size: u32, x: u32, y: u32) -> GrayImage {
        from_box(size, size, PixelBox::new(x, y, 1, 1))
    }

    fn count_on(m: &GrayImage) -> usize {
        m.as_raw().iter().filter(|&&v| v >= ON_LEVEL).count()
    }

    #[test]
    fn grow_by_zero_is_threshold() {
        let m = dot(9, 4, 4);
        assert_eq!(grow(&m, 0), threshold(&m, ON_LEVEL));
    }

    #[test]
    fn grow_makes_a_disc() {
        // Pixels within Euclidean distance 2 of the centre: 13 of them.
        assert_eq!(count_on(&grow(&dot(9, 4, 4), 2)), 13);
    }

    #[test]
    fn grow_beyond_the_image_fills_it() {
        let g = grow(&dot(9, 0, 0), 100);
        assert_eq!(count_on(&g), 81);
    }

    #[test]
    fn shrink_undoes_grow_of_a_box() {
        let square = from_box(32, 32, PixelBox::new(10, 10, 8, 8));
        let back = grow(&grow(&square, 3), -3);
        // Closing a convex box gives the box back.
        assert_eq!(back, square);
    }

    #[test]
    fn shrink_keeps_full_mask_full() {
        let full = GrayImage::filled(8, 8, 255);
        assert_eq!(grow(&full, -3), full);
        let empty = GrayImage::filled(8, 8, 0);
        assert_eq!(grow(&empty, 3), empty);
    }

    #[test]
    fn feather_is_opaque_inside_and_zero_far_away() {
        let m = from_box(40, 40, PixelBox::new(15, 15, 10, 10));
        let f = feather(&m, 5);
        let at = |x: usize, y: usize| f.as_raw()[y * 40 + x];
        assert_eq!(at(20, 20), 255);
        assert_eq!(at(15, 15), 255);
        // 3 pixels left of the box: between.
        let mid = at(12, 20);
        assert!(mid > 0 && mid < 255, "{mid}");
        // 5 pixels out: at the radius.
        assert_eq!(at(10, 20), 0);
        // Diagonal: sqrt(18) < 5 is still inside the soft edge.
        assert!(at(12, 12) > 0);
        // Falls monotonically outwards.
        assert!(at(14, 20) > at(13, 20) && at(13, 20) > at(12, 20));
    }

    #[test]
    fn invert_and_threshold() {
        let m = GrayImage::from_raw(3, 1, vec![0, 127, 200]).unwrap();
        assert_eq!(invert(&m).as_raw(), &[255, 128, 55]);
        assert_eq!(threshold(&m, 128).as_raw(), &[0, 0, 255]);
    }

    #[test]
    fn bounding_box_and_empty() {
        let m = from_box(10, 10, PixelBox::new(2, 3, 4, 5));
        assert_eq!(bounding_box(&m), Some(PixelBox::new(2, 3, 4, 5)));
        assert!(!is_empty(&m));
        assert_eq!(bounding_box(&GrayImage::filled(4, 4, 0)), None);
    }
}
