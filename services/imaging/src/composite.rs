//! Paste-back of repainted crops with the feathered alpha.

use crate::buffer::{GrayImage, RgbImage};
use crate::crop::CropPlan;
use crate::resize::resize_rgb;

/// Blends each repainted crop (at its working size) into `original` through
/// `alpha` (255 = fully repainted), in the order given. A pixel whose alpha
/// is 0 is copied from `original` untouched, so it stays byte-identical.
pub fn composite(
    original: &RgbImage,
    alpha: &GrayImage,
    results: &[(CropPlan, RgbImage)],
) -> RgbImage {
    assert_eq!(
        (original.width(), original.height()),
        (alpha.width(), alpha.height())
    );
    let mut out = original.clone();
    let width = original.width() as usize;
    for (plan, repainted) in results {
        let area = plan.area;
        let back = resize_rgb(repainted, area.width, area.height);
        let (src, a, dst) = (back.as_raw(), alpha.as_raw(), out.as_raw_mut());
        for y in 0..area.height as usize {
            for x in 0..area.width as usize {
                let i = (area.y as usize + y) * width + area.x as usize + x;
                let weight = a[i] as u32;
                if weight == 0 {
                    continue;
                }
                let s = (y * area.width as usize + x) * 3;
                for c in 0..3 {
                    let (new, old) = (src[s + c] as u32, dst[i * 3 + c] as u32);
                    dst[i * 3 + c] = ((new * weight + old * (255 - weight) + 127) / 255) as u8;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::PixelBox;
    use crate::crop::plan_only_masked;
    use crate::mask::{feather, from_box};

    #[test]
    fn outside_alpha_is_byte_identical_and_inside_is_repainted() {
        let original = RgbImage::from_raw(
            64,
            48,
            (0..64 * 48 * 3).map(|i| (i * 31 % 251) as u8).collect(),
        )
        .unwrap();
        let alpha = feather(&from_box(64, 48, PixelBox::new(20, 15, 10, 8)), 4);
        let plans = plan_only_masked(&alpha, 6, 40, 40);
        let results: Vec<_> = plans
            .iter()
            .map(|p| (*p, RgbImage::filled(40, 40, 7)))
            .collect();
        let out = composite(&original, &alpha, &results);
        for i in 0..64 * 48 {
            let (o, n) = (
                &original.as_raw()[i * 3..i * 3 + 3],
                &out.as_raw()[i * 3..i * 3 + 3],
            );
            match alpha.as_raw()[i] {
                0 => assert_eq!(o, n, "pixel {i} changed outside the mask"),
                255 => assert_eq!(n, &[7, 7, 7]),
                _ => {}
            }
        }
    }
}
