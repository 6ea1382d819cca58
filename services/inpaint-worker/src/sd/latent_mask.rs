//! Masks at latent size, as the WebUI makes them:
//! - the blending mask (`latmask` in modules/processing.py): the mask
//!   resized to latent size by PIL with its default filter for RGB images
//!   (bicubic, antialiased when shrinking), then rounded to 0 or 1;
//! - the 9-channel model's conditioning mask: the full-size mask rounded,
//!   then shrunk by nearest neighbour (torch `interpolate`, mode nearest).
//!
//! PIL's resampling is reproduced to the integer: coefficients normalised
//! and held with 22 fractional bits, one horizontal pass then one vertical
//! pass, each rounded and clipped to 8 bits.

use super::img2img::LatentMask;

const PRECISION_BITS: u32 = 22;

fn bicubic(x: f64) -> f64 {
    let a = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * a
    } else {
        0.0
    }
}

/// For each output index: the first input index and fixed-point weights.
fn coefficients(in_size: usize, out_size: usize) -> Vec<(usize, Vec<i64>)> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = 2.0 * filterscale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let weights: Vec<f64> = (xmin..xmax)
                .map(|x| bicubic((x as f64 - center + 0.5) / filterscale))
                .collect();
            let total: f64 = weights.iter().sum();
            let fixed = weights
                .iter()
                .map(|w| {
                    let w = if total != 0.0 { w / total } else { *w };
                    let v = w * (1u64 << PRECISION_BITS) as f64;
                    (if v < 0.0 { v - 0.5 } else { v + 0.5 }).trunc() as i64
                })
                .collect();
            (xmin, fixed)
        })
        .collect()
}

fn clip8(v: i64) -> u8 {
    if v >= (1i64 << PRECISION_BITS) << 8 {
        255
    } else if v <= 0 {
        0
    } else {
        (v >> PRECISION_BITS) as u8
    }
}

/// PIL's `Image.resize((out_w, out_h), BICUBIC)` of one 8-bit plane.
pub fn pil_bicubic(plane: &[u8], w: usize, h: usize, out_w: usize, out_h: usize) -> Vec<u8> {
    let horizontal = if out_w != w {
        let coeffs = coefficients(w, out_w);
        let mut out = vec![0u8; out_w * h];
        for y in 0..h {
            let row = &plane[y * w..(y + 1) * w];
            for (xx, (xmin, k)) in coeffs.iter().enumerate() {
                let mut ss = 1i64 << (PRECISION_BITS - 1);
                for (i, kk) in k.iter().enumerate() {
                    ss += row[xmin + i] as i64 * kk;
                }
                out[y * out_w + xx] = clip8(ss);
            }
        }
        out
    } else {
        plane.to_vec()
    };
    if out_h == h {
        return horizontal;
    }
    let coeffs = coefficients(h, out_h);
    let mut out = vec![0u8; out_w * out_h];
    for (yy, (ymin, k)) in coeffs.iter().enumerate() {
        for x in 0..out_w {
            let mut ss = 1i64 << (PRECISION_BITS - 1);
            for (i, kk) in k.iter().enumerate() {
                ss += horizontal[(ymin + i) * out_w + x] as i64 * kk;
            }
            out[yy * out_w + x] = clip8(ss);
        }
    }
    out
}

/// The blending mask from an 8-bit mask (255 = repaint).
pub fn blend_mask(mask: &[u8], w: usize, h: usize, lw: usize, lh: usize) -> LatentMask {
    let small = pil_bicubic(mask, w, h, lw, lh);
    LatentMask {
        width: lw,
        height: lh,
        paint: small
            .iter()
            .map(|&v| if v >= 128 { 1.0 } else { 0.0 })
            .collect(),
    }
}

/// The full-size mask rounded to 0/1 (what the 9-channel model's masked
/// image is made with).
pub fn rounded(mask: &[u8]) -> Vec<f32> {
    mask.iter()
        .map(|&v| if v >= 128 { 1.0 } else { 0.0 })
        .collect()
}

/// The rounded mask shrunk by nearest neighbour to latent size.
pub fn conditioning_mask(rounded: &[f32], w: usize, h: usize, lw: usize, lh: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(lw * lh);
    for y in 0..lh {
        let sy = (y * h / lh).min(h - 1);
        for x in 0..lw {
            let sx = (x * w / lw).min(w - 1);
            out.push(rounded[sy * w + sx]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_plane_stays_flat_and_halves_round_as_pil() {
        assert_eq!(pil_bicubic(&[200; 64], 8, 8, 4, 4), vec![200; 16]);
        // A hard edge between columns 3 and 4 of 8, shrunk to 4 columns:
        // the edge column gets exactly the mean of its two pixels' weights.
        let mut plane = vec![0u8; 8 * 2];
        for y in 0..2 {
            for x in 4..8 {
                plane[y * 8 + x] = 255;
            }
        }
        let small = pil_bicubic(&plane, 8, 2, 4, 2);
        assert_eq!(small[0], 0);
        assert_eq!(small[3], 255);
        assert!(small[1] < 128 && small[2] >= 128, "{small:?}");
    }
}
