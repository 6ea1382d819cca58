//! Colour correction of a repainted crop against its surroundings: the
//! mean and spread of each CIE L*a*b* channel over the unmasked ring of the
//! crop are moved to those of the original there (Reinhard et al., "Color
//! Transfer between Images", 2001, with the statistics taken where both
//! images should agree).

use crate::buffer::{GrayImage, RgbImage};

/// The spread ratio is kept within these bounds, so a flat ring cannot blow
/// the repaint up.
const MIN_SCALE: f32 = 0.5;
const MAX_SCALE: f32 = 2.0;

/// Corrects `repainted` (same size as `original` and `alpha`) so that its
/// Lab statistics over pixels where `alpha` is 0 match `original`'s there.
/// Without such pixels it is returned unchanged.
pub fn match_surroundings(
    repainted: &RgbImage,
    original: &RgbImage,
    alpha: &GrayImage,
) -> RgbImage {
    let ring: Vec<usize> = alpha
        .as_raw()
        .iter()
        .enumerate()
        .filter(|(_, a)| **a == 0)
        .map(|(i, _)| i)
        .collect();
    if ring.len() < 16 {
        return repainted.clone();
    }
    let lab_new: Vec<[f32; 3]> = repainted.as_raw().chunks_exact(3).map(rgb_to_lab).collect();
    let lab_old: Vec<[f32; 3]> = original.as_raw().chunks_exact(3).map(rgb_to_lab).collect();
    let (mean_new, sd_new) = stats(&lab_new, &ring);
    let (mean_old, sd_old) = stats(&lab_old, &ring);
    let scale: [f32; 3] = std::array::from_fn(|c| {
        if sd_new[c] < 1e-3 {
            1.0
        } else {
            (sd_old[c] / sd_new[c]).clamp(MIN_SCALE, MAX_SCALE)
        }
    });
    let out = lab_new
        .iter()
        .flat_map(|lab| {
            let moved: [f32; 3] =
                std::array::from_fn(|c| (lab[c] - mean_new[c]) * scale[c] + mean_old[c]);
            lab_to_rgb(moved)
        })
        .collect();
    RgbImage::from_raw(repainted.width(), repainted.height(), out).expect("same size")
}

fn stats(lab: &[[f32; 3]], at: &[usize]) -> ([f32; 3], [f32; 3]) {
    let n = at.len() as f64;
    let mut sum = [0f64; 3];
    let mut sq = [0f64; 3];
    for &i in at {
        for c in 0..3 {
            sum[c] += lab[i][c] as f64;
            sq[c] += (lab[i][c] as f64).powi(2);
        }
    }
    let mean: [f32; 3] = std::array::from_fn(|c| (sum[c] / n) as f32);
    let sd: [f32; 3] =
        std::array::from_fn(|c| ((sq[c] / n - (sum[c] / n).powi(2)).max(0.0)).sqrt() as f32);
    (mean, sd)
}

fn srgb_to_linear(v: u8) -> f32 {
    let c = v as f32 / 255.0;
    if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

fn linear_to_srgb(c: f32) -> u8 {
    let c = c.clamp(0.0, 1.0);
    let v = if c <= 0.003_130_8 {
        c * 12.92
    } else {
        1.055 * c.powf(1.0 / 2.4) - 0.055
    };
    (v * 255.0).round().clamp(0.0, 255.0) as u8
}

// D65 white.
const WHITE: [f32; 3] = [0.950_47, 1.0, 1.088_83];

/// sRGB (8-bit) to CIE L*a*b* (D65).
pub fn rgb_to_lab(px: &[u8]) -> [f32; 3] {
    let (r, g, b) = (
        srgb_to_linear(px[0]),
        srgb_to_linear(px[1]),
        srgb_to_linear(px[2]),
    );
    let xyz = [
        0.412_456_4 * r + 0.357_576_1 * g + 0.180_437_5 * b,
        0.212_672_9 * r + 0.715_152_2 * g + 0.072_175 * b,
        0.019_333_9 * r + 0.119_192 * g + 0.950_304_1 * b,
    ];
    let f = |t: f32| {
        if t > 0.008_856 {
            t.cbrt()
        } else {
            7.787 * t + 16.0 / 116.0
        }
    };
    let (fx, fy, fz) = (
        f(xyz[0] / WHITE[0]),
        f(xyz[1] / WHITE[1]),
        f(xyz[2] / WHITE[2]),
    );
    [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
}

/// CIE L*a*b* (D65) to sRGB (8-bit), clamped to the gamut.
pub fn lab_to_rgb(lab: [f32; 3]) -> [u8; 3] {
    let fy = (lab[0] + 16.0) / 116.0;
    let (fx, fz) = (fy + lab[1] / 500.0, fy - lab[2] / 200.0);
    let inv = |t: f32| {
        if t.powi(3) > 0.008_856 {
            t.powi(3)
        } else {
            (t - 16.0 / 116.0) / 7.787
        }
    };
    let (x, y, z) = (inv(fx) * WHITE[0], inv(fy) * WHITE[1], inv(fz) * WHITE[2]);
    let r = 3.240_454_2 * x - 1.537_138_5 * y - 0.498_531_4 * z;
    let g = -0.969_266 * x + 1.876_010_8 * y + 0.041_556 * z;
    let b = 0.055_643_4 * x - 0.204_025_9 * y + 1.057_225_2 * z;
    [linear_to_srgb(r), linear_to_srgb(g), linear_to_srgb(b)]
}

/// CIE76 colour difference between two sRGB pixels.
pub fn delta_e(a: &[u8], b: &[u8]) -> f32 {
    let (x, y) = (rgb_to_lab(a), rgb_to_lab(b));
    ((x[0] - y[0]).powi(2) + (x[1] - y[1]).powi(2) + (x[2] - y[2]).powi(2)).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::PixelBox;
    use crate::mask::from_box;

    #[test]
    fn lab_round_trip() {
        for px in [
            [0u8, 0, 0],
            [255, 255, 255],
            [200, 30, 90],
            [12, 140, 250],
            [128, 128, 128],
        ] {
            let back = lab_to_rgb(rgb_to_lab(&px));
            for c in 0..3 {
                assert!(
                    (back[c] as i32 - px[c] as i32).abs() <= 1,
                    "{px:?} -> {back:?}"
                );
            }
        }
        // Mid grey is L* ~ 53.6, neutral.
        let grey = rgb_to_lab(&[128, 128, 128]);
        assert!((grey[0] - 53.6).abs() < 0.2 && grey[1].abs() < 0.1 && grey[2].abs() < 0.1);
    }

    #[test]
    fn a_colour_cast_is_removed() {
        let original = RgbImage::from_raw(
            16,
            16,
            (0..16 * 16 * 3)
                .map(|i| (60 + (i * 7) % 90) as u8)
                .collect(),
        )
        .unwrap();
        let cast: Vec<u8> = original
            .as_raw()
            .chunks(3)
            .flat_map(|p| [p[0].saturating_add(40), p[1], p[2] / 2])
            .collect();
        let cast = RgbImage::from_raw(16, 16, cast).unwrap();
        let alpha = from_box(16, 16, PixelBox::new(4, 4, 8, 8));
        let fixed = match_surroundings(&cast, &original, &alpha);
        let err = |img: &RgbImage| -> f32 {
            (0..256)
                .filter(|&i| alpha.as_raw()[i] == 0)
                .map(|i| {
                    delta_e(
                        &img.as_raw()[i * 3..i * 3 + 3],
                        &original.as_raw()[i * 3..i * 3 + 3],
                    )
                })
                .sum::<f32>()
        };
        assert!(
            err(&fixed) < err(&cast) / 4.0,
            "{} vs {}",
            err(&fixed),
            err(&cast)
        );
    }

    #[test]
    fn no_ring_means_no_change() {
        let img = RgbImage::filled(4, 4, 10);
        assert_eq!(
            match_surroundings(
                &img,
                &RgbImage::filled(4, 4, 200),
                &GrayImage::filled(4, 4, 255)
            ),
            img
        );
    }
}
