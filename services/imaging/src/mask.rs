//! Mask operators. A mask is a [`GrayImage`]: 0 = keep, 255 = repaint.
//! Binary operators treat a pixel as "on" when it is >= [`ON_LEVEL`].

use crate::bits::BitMask;
pub use crate::blur::{gaussian_blur, gaussian_blur_with_radius, sigma_for_radius};
use crate::buffer::{GrayImage, PixelBox};
use crate::components::label;
use crate::cpu::{Isa, multiversion};
use crate::distance::squared_distance_to;

/// Values at or above this count as part of the mask.
pub const ON_LEVEL: u8 = 128;

/// 255 where `value >= level`, else 0.
pub fn threshold(mask: &GrayImage, level: u8) -> GrayImage {
    let mut out = mask.clone();
    threshold_in_place(&mut out, level);
    out
}

/// [`threshold`] without allocating.
pub fn threshold_in_place(mask: &mut GrayImage, level: u8) {
    threshold_bytes(Isa::best(), mask.as_raw_mut(), level);
}

multiversion! {
    fn threshold_bytes(data: &mut [u8], level: u8) => threshold_bytes_body
}

#[inline(always)]
fn threshold_bytes_body(data: &mut [u8], level: u8) {
    for v in data {
        *v = if *v >= level { 255 } else { 0 };
    }
}

/// 255 - value: repaint everything but the mask.
pub fn invert(mask: &GrayImage) -> GrayImage {
    map(mask, |v| 255 - v)
}

/// Structuring element for grow and shrink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shape {
    /// The Euclidean disc x^2 + y^2 <= r^2 (round corners; OpenCV's
    /// MORPH_ELLIPSE of size 2r+1 up to rounding at its rim).
    #[default]
    Ellipse,
    /// The (2r+1) x (2r+1) square (keeps corners square).
    Square,
}

/// Grows (`pixels > 0`) or shrinks (`pixels < 0`) the binary mask by a disc of
/// radius |pixels|; see [`grow_shaped`].
pub fn grow(mask: &GrayImage, pixels: i32) -> GrayImage {
    grow_shaped(mask, pixels, Shape::Ellipse)
}

/// Grows (`pixels > 0`) or shrinks (`pixels < 0`) the binary mask by `shape`
/// of radius |pixels|, on masks packed 64 pixels to a word (see
/// [`crate::bits`]). Radii beyond [`BIT_DISC_MAX`] use the exact distance
/// transform instead, whose cost does not depend on the radius.
///
/// Shrinking treats the outside of the image as "on", as OpenCV's erode does
/// by default, so a mask touching the border is not eaten from there.
pub fn grow_shaped(mask: &GrayImage, pixels: i32, shape: Shape) -> GrayImage {
    if shape == Shape::Ellipse && pixels.unsigned_abs() as usize > BIT_DISC_MAX {
        return grow_by_distance(mask, pixels);
    }
    grow_bits(mask, pixels, shape).to_gray()
}

/// [`grow_shaped`] writing over `mask` (no new image buffer).
pub fn grow_in_place(mask: &mut GrayImage, pixels: i32, shape: Shape) {
    if shape == Shape::Ellipse && pixels.unsigned_abs() as usize > BIT_DISC_MAX {
        *mask = grow_by_distance(mask, pixels);
        return;
    }
    grow_bits(mask, pixels, shape).write_into(mask);
}

/// Grows (shrinks when negative) `mask` by `pixels` on packed bits: a
/// shrink is the dilation of the complement.
fn grow_bits(mask: &GrayImage, pixels: i32, shape: Shape) -> BitMask {
    let r = pixels.unsigned_abs() as usize;
    let mut bits = BitMask::from_gray(mask);
    if pixels < 0 {
        bits.invert();
    }
    let mut grown = match shape {
        Shape::Ellipse => bits.dilate_disc(r),
        Shape::Square => bits.dilate_square(r),
    };
    if pixels < 0 {
        grown.invert();
    }
    grown
}

/// Above this radius a disc costs more row passes than the distance
/// transform's fixed cost.
pub const BIT_DISC_MAX: usize = 96;

fn grow_by_distance(mask: &GrayImage, pixels: i32) -> GrayImage {
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

/// Fills holes: off pixels that cannot reach the image border through off
/// pixels (4-connected) become on.
pub fn fill_holes(mask: &GrayImage) -> GrayImage {
    let (w, h) = (mask.width() as usize, mask.height() as usize);
    let data = mask.as_raw();
    let mut outside = vec![false; w * h];
    let mut stack: Vec<usize> = Vec::new();
    let seed = |i: usize, outside: &mut [bool], stack: &mut Vec<usize>| {
        if data[i] < ON_LEVEL && !outside[i] {
            outside[i] = true;
            stack.push(i);
        }
    };
    for x in 0..w {
        seed(x, &mut outside, &mut stack);
        seed((h - 1) * w + x, &mut outside, &mut stack);
    }
    for y in 0..h {
        seed(y * w, &mut outside, &mut stack);
        seed(y * w + w - 1, &mut outside, &mut stack);
    }
    while let Some(i) = stack.pop() {
        let (x, y) = (i % w, i / w);
        if x > 0 {
            seed(i - 1, &mut outside, &mut stack);
        }
        if x + 1 < w {
            seed(i + 1, &mut outside, &mut stack);
        }
        if y > 0 {
            seed(i - w, &mut outside, &mut stack);
        }
        if y + 1 < h {
            seed(i + w, &mut outside, &mut stack);
        }
    }
    let out = data
        .iter()
        .zip(&outside)
        .map(|(&v, &reaches_border)| {
            if reaches_border || v >= ON_LEVEL {
                v
            } else {
                255
            }
        })
        .collect();
    GrayImage::from_raw(mask.width(), mask.height(), out).expect("same size")
}

/// Moves the mask by (dx, dy) pixels; what enters from the edge is off.
pub fn offset(mask: &GrayImage, dx: i32, dy: i32) -> GrayImage {
    let (w, h) = (mask.width() as i64, mask.height() as i64);
    let mut out = GrayImage::filled(mask.width(), mask.height(), 0);
    let (dx, dy) = (dx as i64, dy as i64);
    let x0 = dx.clamp(0, w);
    let x1 = (w + dx).clamp(0, w);
    if x0 >= x1 {
        return out;
    }
    for y in 0..h {
        let sy = y - dy;
        if !(0..h).contains(&sy) {
            continue;
        }
        let src = &mask.as_raw()[(sy * w + x0 - dx) as usize..(sy * w + x1 - dx) as usize];
        out.as_raw_mut()[(y * w + x0) as usize..(y * w + x1) as usize].copy_from_slice(src);
    }
    out
}

/// Keeps the `count` largest connected components (ties: the first in scan
/// order), as a binary mask.
pub fn keep_largest(mask: &GrayImage, count: usize) -> GrayImage {
    let labels = label(&threshold(mask, ON_LEVEL));
    let mut order: Vec<usize> = (0..labels.components.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(labels.components[i].pixels));
    let mut keep = vec![false; labels.components.len()];
    for &i in order.iter().take(count) {
        keep[i] = true;
    }
    labels.render(|i| keep[i])
}

/// Keeps the connected components whose area, as a fraction of the image,
/// lies in `min_ratio..=max_ratio`, as a binary mask.
pub fn filter_by_area(mask: &GrayImage, min_ratio: f64, max_ratio: f64) -> GrayImage {
    let labels = label(&threshold(mask, ON_LEVEL));
    let total = mask.pixel_count() as f64;
    labels.render(|i| {
        let ratio = labels.components[i].pixels as f64 / total;
        ratio >= min_ratio && ratio <= max_ratio
    })
}

/// Per-pixel minimum of masks of one size (set intersection).
pub fn intersect(masks: &[&GrayImage]) -> Option<GrayImage> {
    combine(masks, u8::min)
}

/// The first mask minus every other one: min(first, 255 - max(rest)).
pub fn subtract(masks: &[&GrayImage]) -> Option<GrayImage> {
    let (first, rest) = masks.split_first()?;
    let Some(others) = union(rest) else {
        return Some((*first).clone());
    };
    combine(&[first, &invert(&others)], u8::min)
}

/// Per-pixel maximum of masks of one size (set union for binary masks).
pub fn union(masks: &[&GrayImage]) -> Option<GrayImage> {
    combine(masks, u8::max)
}

fn combine(masks: &[&GrayImage], f: impl Fn(u8, u8) -> u8) -> Option<GrayImage> {
    let (first, rest) = masks.split_first()?;
    let mut out = (*first).clone();
    for m in rest {
        assert_eq!((m.width(), m.height()), (out.width(), out.height()));
        for (o, &v) in out.as_raw_mut().iter_mut().zip(m.as_raw()) {
            *o = f(*o, v);
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
    fn bit_path_and_distance_path_agree() {
        let mut m = GrayImage::filled(150, 90, 0);
        for (i, v) in m.as_raw_mut().iter_mut().enumerate() {
            if (i * 7919) % 211 == 0 {
                *v = 255;
            }
        }
        for r in [1, 4, 17, -1, -4, -17] {
            assert_eq!(grow(&m, r), grow_by_distance(&m, r), "radius {r}");
        }
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
    fn fill_holes_fills_only_enclosed_background() {
        let ring = {
            let outer = from_box(20, 20, PixelBox::new(2, 2, 10, 10));
            let inner = from_box(20, 20, PixelBox::new(4, 4, 6, 6));
            subtract(&[&outer, &inner]).unwrap()
        };
        let filled = fill_holes(&ring);
        assert_eq!(filled, from_box(20, 20, PixelBox::new(2, 2, 10, 10)));
        // An open C shape has no hole.
        let c = subtract(&[&ring, &from_box(20, 20, PixelBox::new(9, 5, 3, 2))]).unwrap();
        assert_eq!(fill_holes(&c), c);
        assert_eq!(
            fill_holes(&GrayImage::filled(4, 4, 0)),
            GrayImage::filled(4, 4, 0)
        );
        assert_eq!(
            fill_holes(&GrayImage::filled(4, 4, 255)),
            GrayImage::filled(4, 4, 255)
        );
    }

    #[test]
    fn offset_moves_and_clips() {
        let m = from_box(10, 10, PixelBox::new(2, 2, 3, 3));
        assert_eq!(
            offset(&m, 4, -1),
            from_box(10, 10, PixelBox::new(6, 1, 3, 3))
        );
        assert_eq!(
            offset(&m, 7, 0),
            from_box(10, 10, PixelBox::new(9, 2, 1, 3))
        );
        assert_eq!(offset(&m, 100, 0), GrayImage::filled(10, 10, 0));
        assert_eq!(offset(&m, 0, 0), m);
    }

    #[test]
    fn component_filters() {
        let big = from_box(20, 10, PixelBox::new(0, 0, 5, 5));
        let mid = from_box(20, 10, PixelBox::new(8, 0, 3, 3));
        let small = from_box(20, 10, PixelBox::new(15, 0, 1, 1));
        let all = union(&[&big, &mid, &small]).unwrap();
        assert_eq!(keep_largest(&all, 2), union(&[&big, &mid]).unwrap());
        assert_eq!(keep_largest(&all, 0), GrayImage::filled(20, 10, 0));
        assert_eq!(keep_largest(&all, 10), all);
        // 200 pixels: big is 12.5%, mid 4.5%, small 0.5%.
        assert_eq!(filter_by_area(&all, 0.01, 0.10), mid);
        assert_eq!(filter_by_area(&all, 0.0, 1.0), all);
    }

    #[test]
    fn set_operations() {
        let a = from_box(10, 10, PixelBox::new(0, 0, 6, 6));
        let b = from_box(10, 10, PixelBox::new(3, 3, 6, 6));
        assert_eq!(
            intersect(&[&a, &b]).unwrap(),
            from_box(10, 10, PixelBox::new(3, 3, 3, 3))
        );
        let diff = subtract(&[&a, &b]).unwrap();
        assert_eq!(diff.as_raw().iter().filter(|&&v| v == 255).count(), 36 - 9);
        assert_eq!(subtract(&[&a]).unwrap(), a);
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
