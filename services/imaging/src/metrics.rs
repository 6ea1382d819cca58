//! Quality measures used by tests and benchmarks.

use crate::buffer::{GrayImage, RgbImage};

/// Peak signal-to-noise ratio in dB over the pixels where `mask` > 0 (all
/// three channels). Infinite when they are equal; None for an empty mask.
pub fn psnr_in_mask(a: &RgbImage, b: &RgbImage, mask: &GrayImage) -> Option<f64> {
    assert_eq!((a.width(), a.height()), (b.width(), b.height()));
    let mut sum = 0f64;
    let mut count = 0usize;
    for (i, &m) in mask.as_raw().iter().enumerate() {
        if m == 0 {
            continue;
        }
        for c in 0..3 {
            let d = a.as_raw()[i * 3 + c] as f64 - b.as_raw()[i * 3 + c] as f64;
            sum += d * d;
        }
        count += 3;
    }
    (count > 0).then(|| {
        let mse = sum / count as f64;
        if mse == 0.0 {
            f64::INFINITY
        } else {
            10.0 * (255.0 * 255.0 / mse).log10()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psnr_of_known_error() {
        let a = RgbImage::filled(2, 1, 100);
        let b = RgbImage::from_raw(2, 1, vec![110, 110, 110, 100, 100, 100]).unwrap();
        let only_first = GrayImage::from_raw(2, 1, vec![255, 0]).unwrap();
        let got = psnr_in_mask(&a, &b, &only_first).unwrap();
        assert!((got - 10.0 * (65025.0f64 / 100.0).log10()).abs() < 1e-9);
        assert_eq!(psnr_in_mask(&a, &a, &only_first), Some(f64::INFINITY));
        assert_eq!(psnr_in_mask(&a, &b, &GrayImage::filled(2, 1, 0)), None);
    }
}
