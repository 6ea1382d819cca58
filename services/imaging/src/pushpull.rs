//! Push-pull fill (normalised-convolution pyramid): known pixels and their
//! weights are averaged 2x2 down the pyramid, then each level's normalised
//! value is blended, by its weight, with the upsampled coarser estimate. The
//! hole gets the smooth average of its surroundings at the scale that
//! reaches it. The same algorithm as the project's ONNX model
//! (models/build/pushpull.py), here for prefilling holes on the CPU.

use crate::buffer::{GrayImage, RgbImage};

/// A level's weight is trusted fully from this share of known pixels up.
const GAIN: f32 = 4.0;

/// Fills every pixel where `hole` > 0; the rest is copied.
pub fn fill(image: &RgbImage, hole: &GrayImage) -> RgbImage {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let known: Vec<f32> = hole
        .as_raw()
        .iter()
        .map(|&m| if m > 0 { 0.0 } else { 1.0 })
        .collect();
    if known.iter().all(|&k| k == 0.0) {
        return image.clone();
    }
    let num: Vec<[f32; 3]> = image
        .as_raw()
        .chunks_exact(3)
        .zip(&known)
        .map(|(p, &k)| [p[0] as f32 * k, p[1] as f32 * k, p[2] as f32 * k])
        .collect();
    let mut levels = vec![Level {
        w,
        h,
        num,
        den: known,
    }];
    while levels.last().is_some_and(|l| l.w > 1 || l.h > 1) {
        let next = levels.last().expect("non-empty").down();
        levels.push(next);
    }
    let mut value = levels.last().expect("non-empty").normalised();
    for level in levels.iter().rev().skip(1) {
        let coarse = (level.w.div_ceil(2), level.h.div_ceil(2));
        let up = upsample(&value, (level.w, level.h), coarse);
        value = level.blend(&up);
    }
    let mut out = image.clone();
    for (i, &m) in hole.as_raw().iter().enumerate() {
        if m > 0 {
            for c in 0..3 {
                out.as_raw_mut()[i * 3 + c] = crate::to_byte(value[i][c]);
            }
        }
    }
    out
}

struct Level {
    w: usize,
    h: usize,
    num: Vec<[f32; 3]>,
    den: Vec<f32>,
}

impl Level {
    /// 2x2 average (edge cells average what they have).
    fn down(&self) -> Level {
        let (w, h) = (self.w.div_ceil(2), self.h.div_ceil(2));
        let mut num = vec![[0f32; 3]; w * h];
        let mut den = vec![0f32; w * h];
        for y in 0..h {
            for x in 0..w {
                let mut count = 0f32;
                let at = y * w + x;
                for (sy, sx) in [
                    (2 * y, 2 * x),
                    (2 * y, 2 * x + 1),
                    (2 * y + 1, 2 * x),
                    (2 * y + 1, 2 * x + 1),
                ] {
                    if sy < self.h && sx < self.w {
                        let s = sy * self.w + sx;
                        for c in 0..3 {
                            num[at][c] += self.num[s][c];
                        }
                        den[at] += self.den[s];
                        count += 1.0;
                    }
                }
                for c in 0..3 {
                    num[at][c] /= count;
                }
                den[at] /= count;
            }
        }
        Level { w, h, num, den }
    }

    fn normalised(&self) -> Vec<[f32; 3]> {
        self.num
            .iter()
            .zip(&self.den)
            .map(|(n, &d)| {
                let d = d.max(1e-6);
                [n[0] / d, n[1] / d, n[2] / d]
            })
            .collect()
    }

    fn blend(&self, up: &[[f32; 3]]) -> Vec<[f32; 3]> {
        self.normalised()
            .iter()
            .zip(&self.den)
            .zip(up)
            .map(|((here, &d), coarse)| {
                let t = (d * GAIN).min(1.0);
                [0, 1, 2].map(|c| here[c] * t + coarse[c] * (1.0 - t))
            })
            .collect()
    }
}

/// Bilinear upsample of a coarse (cw x ch) grid to (w x h), centres aligned.
fn upsample(
    coarse: &[[f32; 3]],
    (w, h): (usize, usize),
    (cw, ch): (usize, usize),
) -> Vec<[f32; 3]> {
    let tap = |i: usize, n: usize| {
        let pos = ((i as f32 + 0.5) / 2.0 - 0.5).max(0.0);
        let i0 = (pos.floor() as usize).min(n - 1);
        (i0, (i0 + 1).min(n - 1), pos - i0 as f32)
    };
    let mut out = Vec::with_capacity(w * h);
    for y in 0..h {
        let (y0, y1, fy) = tap(y, ch);
        for x in 0..w {
            let (x0, x1, fx) = tap(x, cw);
            let p = |yy: usize, xx: usize| coarse[yy * cw + xx];
            let v = [0, 1, 2].map(|c| {
                let top = p(y0, x0)[c] * (1.0 - fx) + p(y0, x1)[c] * fx;
                let bottom = p(y1, x0)[c] * (1.0 - fx) + p(y1, x1)[c] * fx;
                top * (1.0 - fy) + bottom * fy
            });
            out.push(v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::PixelBox;
    use crate::mask::from_box;

    #[test]
    fn flat_colour_is_filled_exactly_and_known_pixels_stay() {
        let img = RgbImage::filled(37, 29, 90);
        let mut damaged = img.clone();
        let hole = from_box(37, 29, PixelBox::new(5, 7, 20, 11));
        for i in 0..37 * 29 {
            if hole.as_raw()[i] > 0 {
                damaged.as_raw_mut()[i * 3] = 255;
            }
        }
        assert_eq!(fill(&damaged, &hole), img);
    }

    #[test]
    fn two_colours_meet_in_between() {
        // Left half 0, right half 200, a hole across the middle.
        let data: Vec<u8> = (0..64 * 16)
            .flat_map(|i| {
                if i % 64 < 32 {
                    [0, 0, 0]
                } else {
                    [200, 200, 200]
                }
            })
            .collect();
        let img = RgbImage::from_raw(64, 16, data).unwrap();
        let hole = from_box(64, 16, PixelBox::new(24, 0, 16, 16));
        let out = fill(&img, &hole);
        let at = |x: usize| out.as_raw()[(8 * 64 + x) * 3];
        assert!(
            at(25) < at(32) && at(32) < at(38),
            "{} {} {}",
            at(25),
            at(32),
            at(38)
        );
    }
}
