//! Colour correction of a repainted crop against its surroundings, and CIE
//! L*a*b* helpers.
//!
//! A repaint often comes back with a colour cast over the whole crop. On the
//! unmasked ring of the crop the repaint and the original should agree, so
//! the affine colour map (3x3 matrix plus offset, least squares with a pull
//! towards identity) that takes the repaint's ring to the original's is
//! fitted there and applied to the whole repaint. It undoes gains, offsets
//! and channel mixing alike, whatever the content.

use crate::buffer::{GrayImage, RgbImage};

/// Fewer ring pixels than this: too little evidence, nothing is changed.
const MIN_RING: usize = 64;
/// Weight of the pull towards the identity map, per ring pixel.
const RIDGE: f64 = 1e-3;

/// Corrects `repainted` (same size as `original` and `alpha`) by the affine
/// colour map fitted where `alpha` is 0.
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
    if ring.len() < MIN_RING {
        return repainted.clone();
    }
    let (new, old) = (repainted.as_raw(), original.as_raw());
    // Normal equations (X'X + lambda I) B = X'Y + lambda I_affine, X = [r g b 1].
    let mut xtx = [[0f64; 4]; 4];
    let mut xty = [[0f64; 3]; 4];
    for &i in &ring {
        let x = [
            new[i * 3] as f64,
            new[i * 3 + 1] as f64,
            new[i * 3 + 2] as f64,
            255.0,
        ];
        for r in 0..4 {
            for c in 0..4 {
                xtx[r][c] += x[r] * x[c];
            }
            for c in 0..3 {
                xty[r][c] += x[r] * old[i * 3 + c] as f64;
            }
        }
    }
    let lambda = RIDGE * ring.len() as f64 * 255.0 * 255.0;
    for d in 0..4 {
        xtx[d][d] += lambda;
        if d < 3 {
            xty[d][d] += lambda;
        }
    }
    let Some(map) = solve4(xtx, xty) else {
        return repainted.clone();
    };
    let out = new
        .chunks_exact(3)
        .flat_map(|p| {
            let x = [p[0] as f64, p[1] as f64, p[2] as f64, 255.0];
            std::array::from_fn::<u8, 3, _>(|c| {
                let v: f64 = (0..4).map(|r| x[r] * map[r][c]).sum();
                crate::to_byte(v as f32)
            })
        })
        .collect();
    RgbImage::from_raw(repainted.width(), repainted.height(), out).expect("same size")
}

/// Solves A B = Y for B (4x3) by Gaussian elimination with partial pivoting.
fn solve4(mut a: [[f64; 4]; 4], mut y: [[f64; 3]; 4]) -> Option<[[f64; 3]; 4]> {
    for col in 0..4 {
        let pivot = (col..4).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-9 {
            return None;
        }
        a.swap(col, pivot);
        y.swap(col, pivot);
        for row in 0..4 {
            if row != col {
                let f = a[row][col] / a[col][col];
                let (pivot_a, pivot_y) = (a[col], y[col]);
                for (v, p) in a[row].iter_mut().zip(pivot_a) {
                    *v -= f * p;
                }
                for (v, p) in y[row].iter_mut().zip(pivot_y) {
                    *v -= f * p;
                }
            }
        }
    }
    Some(std::array::from_fn(|r| {
        std::array::from_fn(|c| y[r][c] / a[r][r])
    }))
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
    crate::to_byte(v * 255.0)
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
    fn channel_mixing_is_undone() {
        let original = RgbImage::from_raw(
            20,
            20,
            (0..20 * 20 * 3)
                .map(|i| (30 + (i * 13) % 180) as u8)
                .collect(),
        )
        .unwrap();
        let mixed: Vec<u8> = original
            .as_raw()
            .chunks(3)
            .flat_map(|p| {
                let (r, g, b) = (p[0] as f32, p[1] as f32, p[2] as f32);
                [
                    (0.8 * r + 0.1 * g + 15.0) as u8,
                    (0.9 * g + 0.05 * b) as u8,
                    (0.7 * b + 0.2 * r) as u8,
                ]
            })
            .collect();
        let mixed = RgbImage::from_raw(20, 20, mixed).unwrap();
        let alpha = from_box(20, 20, PixelBox::new(5, 5, 10, 10));
        let fixed = match_surroundings(&mixed, &original, &alpha);
        // Inside the hole too, the colours come back within rounding.
        let worst = fixed
            .as_raw()
            .iter()
            .zip(original.as_raw())
            .map(|(a, b)| (*a as i32 - *b as i32).abs())
            .max()
            .unwrap();
        assert!(worst <= 3, "worst error {worst}");
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
