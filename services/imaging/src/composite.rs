//! Paste-back of repainted crops with their feathered alpha.

use std::borrow::Cow;

use crate::buffer::{GrayImage, PixelBox, RgbImage};
use crate::color::match_surroundings;
use crate::poisson::seamless;
use crate::resize::resize_rgb;

/// One repainted crop: where it goes, the repaint at its working size, and
/// the paste-back alpha over `area` (255 = fully repainted).
pub struct Repainted {
    pub area: PixelBox,
    pub image: RgbImage,
    pub alpha: GrayImage,
}

/// Optional corrections applied to each crop before it is blended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Corrections {
    /// Fit the affine colour map on the unmasked ring of the crop.
    pub color: bool,
    /// Poisson-blend the repaint into the original inside the alpha.
    pub seamless: bool,
}

/// Blends each crop into `original` in the order given. A pixel whose alpha
/// is 0 in every crop is copied untouched, so it stays byte-identical.
pub fn composite(original: &RgbImage, crops: &[Repainted], corrections: Corrections) -> RgbImage {
    let mut out = original.clone();
    let width = original.width() as usize;
    for crop in crops {
        let area = crop.area;
        assert_eq!(
            (crop.alpha.width(), crop.alpha.height()),
            (area.width, area.height)
        );
        let mut back = if (crop.image.width(), crop.image.height()) == (area.width, area.height) {
            Cow::Borrowed(&crop.image)
        } else {
            Cow::Owned(resize_rgb(&crop.image, area.width, area.height))
        };
        if corrections.color || corrections.seamless {
            let before = original.crop(area);
            if corrections.color {
                back = Cow::Owned(match_surroundings(&back, &before, &crop.alpha));
            }
            if corrections.seamless {
                back = Cow::Owned(seamless(&back, &before, &crop.alpha));
            }
        }
        let (src, a, dst) = (back.as_raw(), crop.alpha.as_raw(), out.as_raw_mut());
        for y in 0..area.height as usize {
            for x in 0..area.width as usize {
                let local = y * area.width as usize + x;
                let weight = a[local] as u32;
                if weight == 0 {
                    continue;
                }
                let i = (area.y as usize + y) * width + area.x as usize + x;
                for c in 0..3 {
                    let (new, old) = (src[local * 3 + c] as u32, dst[i * 3 + c] as u32);
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
        let plans = plan_only_masked(std::slice::from_ref(&alpha), 6, 40, 40, true);
        for corrections in [
            Corrections::default(),
            Corrections {
                color: true,
                seamless: true,
            },
        ] {
            let crops: Vec<_> = plans
                .iter()
                .map(|p| Repainted {
                    area: p.area,
                    image: RgbImage::filled(40, 40, 7),
                    alpha: alpha.crop(p.area),
                })
                .collect();
            let out = composite(&original, &crops, corrections);
            for i in 0..64 * 48 {
                let (o, n) = (
                    &original.as_raw()[i * 3..i * 3 + 3],
                    &out.as_raw()[i * 3..i * 3 + 3],
                );
                match alpha.as_raw()[i] {
                    0 => assert_eq!(o, n, "pixel {i} changed outside the mask"),
                    255 if corrections == Corrections::default() => assert_eq!(n, &[7, 7, 7]),
                    _ => {}
                }
            }
        }
    }
}
