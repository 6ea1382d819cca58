//! Seamless (Poisson) blending, after Pérez, Gangnet and Blake, "Poisson
//! Image Editing" (2003): inside the region the result keeps the repaint's
//! gradients while its border values become the original's, so a colour
//! seam spreads out smoothly instead of showing as an edge. Solved for the
//! correction field (a membrane: Laplace equation with the seam's
//! differences on the border) by successive over-relaxation.

use crate::buffer::{GrayImage, RgbImage};

const OMEGA: f32 = 1.9;
const MAX_SWEEPS: usize = 2000;
/// Stop when no value moved more than this (grey levels) in a sweep.
const TOLERANCE: f32 = 0.05;

/// Blends `repainted` into `original` (same size) over the pixels where
/// `region` > 0; pixels outside it are taken from `original`.
pub fn seamless(repainted: &RgbImage, original: &RgbImage, region: &GrayImage) -> RgbImage {
    let (w, h) = (original.width() as usize, original.height() as usize);
    let inside: Vec<bool> = region.as_raw().iter().map(|&v| v > 0).collect();
    let (new, old) = (repainted.as_raw(), original.as_raw());
    let mut out = old.to_vec();
    let cells: Vec<usize> = (0..w * h).filter(|&i| inside[i]).collect();
    for c in 0..3 {
        // Correction = original - repaint on the border, harmonic inside.
        let mut corr = vec![0f32; w * h];
        for i in 0..w * h {
            if !inside[i] {
                corr[i] = old[i * 3 + c] as f32 - new[i * 3 + c] as f32;
            }
        }
        for _ in 0..MAX_SWEEPS {
            let mut moved = 0f32;
            for &i in &cells {
                let (x, y) = (i % w, i / w);
                let mut sum = 0f32;
                let mut n = 0f32;
                for (ok, j) in [
                    (x > 0, i.wrapping_sub(1)),
                    (x + 1 < w, i + 1),
                    (y > 0, i.wrapping_sub(w)),
                    (y + 1 < h, i + w),
                ] {
                    if ok {
                        sum += corr[j];
                        n += 1.0;
                    }
                }
                let target = sum / n;
                let delta = OMEGA * (target - corr[i]);
                corr[i] += delta;
                moved = moved.max(delta.abs());
            }
            if moved < TOLERANCE {
                break;
            }
        }
        for &i in &cells {
            out[i * 3 + c] = crate::to_byte(new[i * 3 + c] as f32 + corr[i]);
        }
    }
    RgbImage::from_raw(original.width(), original.height(), out).expect("same size")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::PixelBox;
    use crate::mask::from_box;

    #[test]
    fn constant_offset_disappears_and_gradients_stay() {
        // A horizontal ramp; the repaint is the same ramp 30 levels brighter.
        let ramp = |lift: u8| {
            let data = (0..40 * 30).flat_map(|i| {
                let v = (i % 40) as u8 * 3 + lift;
                [v, v, v]
            });
            RgbImage::from_raw(40, 30, data.collect()).unwrap()
        };
        let (original, repainted) = (ramp(0), ramp(30));
        let region = from_box(40, 30, PixelBox::new(10, 8, 20, 14));
        let out = seamless(&repainted, &original, &region);
        for (a, b) in out.as_raw().iter().zip(original.as_raw()) {
            assert!((*a as i32 - *b as i32).abs() <= 1, "{a} vs {b}");
        }
    }

    #[test]
    fn outside_is_untouched() {
        let original = RgbImage::filled(12, 12, 50);
        let repainted = RgbImage::filled(12, 12, 250);
        let region = from_box(12, 12, PixelBox::new(3, 3, 4, 4));
        let out = seamless(&repainted, &original, &region);
        for i in 0..144 {
            if region.as_raw()[i] == 0 {
                assert_eq!(out.as_raw()[i * 3], 50);
            }
        }
    }
}
