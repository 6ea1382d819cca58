//! Anonymisation: hide what is under a mask for good, rather than repair it.
//! Every value written into the hole comes from averages over whole blocks
//! of at least `block x block` pixels (or from pixels outside the hole), so
//! no single original pixel of the hole survives, whatever the picture.
//!
//! The block size follows the hole: about [`BLOCKS_ACROSS`] blocks across
//! its longer side, never under [`MIN_BLOCK`] pixels, so a small face and a
//! large one are hidden alike.

use crate::blur;
use crate::buffer::{GrayImage, RgbImage};
use crate::mask;

/// Blocks across the hole's longer side.
pub const BLOCKS_ACROSS: u32 = 8;
/// Smallest block side, in pixels.
pub const MIN_BLOCK: u32 = 4;
/// How far around the hole `fill` looks for its colour.
const RING: i32 = 3;

/// The block side for `hole`, or None for an empty hole.
pub fn block_size(hole: &GrayImage) -> Option<u32> {
    mask::bounding_box(hole).map(|b| b.width.max(b.height).div_ceil(BLOCKS_ACROSS).max(MIN_BLOCK))
}

/// The hole painted in blocks, each the mean colour of the whole block
/// (hole or not) it covers. Blocks are laid from the hole's top-left
/// corner; one cut by the picture's edge averages the `block`-wide window
/// inside the picture that covers it, so it still averages a full block.
pub fn pixelate(image: &RgbImage, hole: &GrayImage) -> RgbImage {
    let mut out = image.clone();
    let (Some(b), Some(area)) = (block_size(hole), mask::bounding_box(hole)) else {
        return out;
    };
    let (w, h) = (image.width(), image.height());
    let window = |start: u32, size: u32| -> (u32, u32) {
        let len = b.min(size);
        let from = start.min(size - len);
        (from, from + len)
    };
    let src = image.as_raw();
    let dst = out.as_raw_mut();
    let holes = hole.as_raw();
    for by in (area.y..area.bottom()).step_by(b as usize) {
        for bx in (area.x..area.right()).step_by(b as usize) {
            let (x0, x1) = window(bx, w);
            let (y0, y1) = window(by, h);
            let mut sum = [0u64; 3];
            for y in y0..y1 {
                for x in x0..x1 {
                    let i = 3 * (y * w + x) as usize;
                    for c in 0..3 {
                        sum[c] += u64::from(src[i + c]);
                    }
                }
            }
            let n = u64::from((x1 - x0) * (y1 - y0));
            let mean = sum.map(|s| ((s + n / 2) / n) as u8);
            for y in by..(by + b).min(area.bottom()) {
                for x in bx..(bx + b).min(area.right()) {
                    let p = (y * w + x) as usize;
                    if holes[p] > 0 {
                        dst[3 * p..3 * p + 3].copy_from_slice(&mean);
                    }
                }
            }
        }
    }
    out
}

/// The pixelated hole, blurred (a Gaussian of half a block): looks like a
/// blur, hides like pixelation.
pub fn blur(image: &RgbImage, hole: &GrayImage) -> RgbImage {
    let Some(b) = block_size(hole) else {
        return image.clone();
    };
    let blocks = pixelate(image, hole);
    let sigma = b as f32 / 2.0;
    let (w, h) = (image.width(), image.height());
    let planes: Vec<GrayImage> = (0..3)
        .map(|c| {
            let plane = blocks.as_raw().iter().skip(c).step_by(3).copied().collect();
            blur::gaussian_blur(&GrayImage::from_raw(w, h, plane).expect("size"), sigma)
        })
        .collect();
    let mut out = image.clone();
    let dst = out.as_raw_mut();
    for (p, &m) in hole.as_raw().iter().enumerate() {
        if m > 0 {
            for (c, plane) in planes.iter().enumerate() {
                dst[3 * p + c] = plane.as_raw()[p];
            }
        }
    }
    out
}

/// The hole in one solid colour: the mean of the ring of pixels just
/// outside it (mid grey when there is none), so nothing inside is read.
pub fn fill(image: &RgbImage, hole: &GrayImage) -> RgbImage {
    let ring = mask::grow(hole, RING);
    let (mut sum, mut n) = ([0u64; 3], 0u64);
    for (p, (&r, &m)) in ring.as_raw().iter().zip(hole.as_raw()).enumerate() {
        if r > 0 && m == 0 {
            for c in 0..3 {
                sum[c] += u64::from(image.as_raw()[3 * p + c]);
            }
            n += 1;
        }
    }
    let colour = if n == 0 {
        [128; 3]
    } else {
        sum.map(|s| ((s + n / 2) / n) as u8)
    };
    let mut out = image.clone();
    let dst = out.as_raw_mut();
    for (p, &m) in hole.as_raw().iter().enumerate() {
        if m > 0 {
            dst[3 * p..3 * p + 3].copy_from_slice(&colour);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A noisy picture (every pixel its own value) and a 40x24 hole.
    fn scene() -> (RgbImage, GrayImage) {
        let (w, h) = (64u32, 48u32);
        let data = (0..w * h * 3)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let mut hole = GrayImage::filled(w, h, 0);
        for y in 10..34 {
            for x in 12..52 {
                hole.as_raw_mut()[(y * w + x) as usize] = 255;
            }
        }
        (RgbImage::from_raw(w, h, data).unwrap(), hole)
    }

    #[test]
    fn blocks_follow_the_hole_size() {
        let (_, hole) = scene();
        assert_eq!(block_size(&hole), Some(5), "40 px across / 8");
        assert_eq!(block_size(&GrayImage::filled(8, 8, 0)), None);
        assert_eq!(block_size(&GrayImage::filled(8, 8, 255)), Some(MIN_BLOCK));
    }

    #[test]
    fn pixelate_writes_block_means_measured_by_hand() {
        let (image, hole) = scene();
        let out = pixelate(&image, &hole);
        // The first block: x 12..17, y 10..15, 25 pixels.
        let w = 64usize;
        for c in 0..3 {
            let mut sum = 0u32;
            for y in 10..15 {
                for x in 12..17 {
                    sum += u32::from(image.as_raw()[3 * (y * w + x) + c]);
                }
            }
            let expect = ((sum + 12) / 25) as u8;
            for y in 10..15 {
                for x in 12..17 {
                    assert_eq!(out.as_raw()[3 * (y * w + x) + c], expect);
                }
            }
        }
    }

    /// No engine lets an original hole pixel through, and none touches a
    /// pixel outside the hole. In a noisy picture, a pixel equal to its
    /// original by chance is rare; a leak would make it the rule.
    #[test]
    fn nothing_of_the_hole_survives_and_nothing_outside_changes() {
        let (image, hole) = scene();
        for (name, run) in [
            (
                "pixelate",
                pixelate as fn(&RgbImage, &GrayImage) -> RgbImage,
            ),
            ("blur", blur),
            ("fill", fill),
        ] {
            let out = run(&image, &hole);
            let (mut inside, mut same) = (0, 0);
            for (p, &m) in hole.as_raw().iter().enumerate() {
                let (a, b) = (
                    &image.as_raw()[3 * p..3 * p + 3],
                    &out.as_raw()[3 * p..3 * p + 3],
                );
                if m > 0 {
                    inside += 1;
                    same += usize::from(a == b);
                } else {
                    assert_eq!(a, b, "{name}: pixel {p} outside the hole changed");
                }
            }
            assert!(
                same * 100 < inside,
                "{name}: {same} of {inside} hole pixels kept"
            );
        }
    }
}
