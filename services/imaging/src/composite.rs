//! Paste-back of repainted crops with their feathered alpha.

use std::borrow::Cow;

use crate::buffer::{GrayImage, PixelBox, RgbImage};
use crate::color::match_surroundings;
use crate::cpu::{Isa, multiversion};
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
    composite_using(Isa::best(), original, crops, corrections)
}

/// [`composite`] with the instruction set `isa` for the blend.
pub fn composite_using(
    isa: Isa,
    original: &RgbImage,
    crops: &[Repainted],
    corrections: Corrections,
) -> RgbImage {
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
        let w = area.width as usize;
        for y in 0..area.height as usize {
            let at = ((area.y as usize + y) * width + area.x as usize) * 3;
            blend_row(
                isa,
                &mut dst[at..at + 3 * w],
                &src[y * w * 3..(y + 1) * w * 3],
                &a[y * w..(y + 1) * w],
            );
        }
    }
    out
}

multiversion! {
    /// `dst` = `src` over `dst` with `alpha` (one per pixel of three
    /// channels), rounded to nearest.
    fn blend_row(dst: &mut [u8], src: &[u8], alpha: &[u8]) => blend_row_body
}

/// Pixels blended per step; steps whose alpha is all 0 are skipped.
const BLEND_STEP: usize = 16;

/// Inside a step, alpha 0 gives (255 * old + 127) / 255 = old: untouched
/// pixels stay byte-identical without a branch per pixel, so the step
/// vectorises.
#[inline(always)]
fn blend_row_body(dst: &mut [u8], src: &[u8], alpha: &[u8]) {
    let steps = dst
        .chunks_mut(3 * BLEND_STEP)
        .zip(src.chunks(3 * BLEND_STEP));
    for ((d, s), a) in steps.zip(alpha.chunks(BLEND_STEP)) {
        if a.iter().all(|&v| v == 0) {
            continue;
        }
        for ((d, s), &a) in d.chunks_exact_mut(3).zip(s.chunks_exact(3)).zip(a) {
            let weight = a as u32;
            for c in 0..3 {
                let (new, old) = (s[c] as u32, d[c] as u32);
                d[c] = ((new * weight + old * (255 - weight) + 127) / 255) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crop::plan_only_masked;
    use crate::mask::{feather, from_box};

    #[test]
    fn every_instruction_set_blends_as_the_formula() {
        let (w, h) = (97u32, 61u32);
        let original =
            RgbImage::from_raw(w, h, (0..w * h * 3).map(|i| (i * 31 % 251) as u8).collect())
                .unwrap();
        let area = PixelBox::new(5, 7, 70, 50);
        let repaint = RgbImage::from_raw(
            70,
            50,
            (0..70 * 50 * 3).map(|i| (i * 7 % 256) as u8).collect(),
        )
        .unwrap();
        // Every alpha value, with runs of 0 longer than a blend step.
        let alpha: Vec<u8> = (0..70 * 50u32)
            .map(|i| if i % 90 < 40 { 0 } else { (i * 13 % 256) as u8 })
            .collect();
        let crop = Repainted {
            area,
            image: repaint.clone(),
            alpha: GrayImage::from_raw(70, 50, alpha.clone()).unwrap(),
        };
        let mut want = original.as_raw().to_vec();
        for y in 0..50usize {
            for x in 0..70usize {
                let a = alpha[y * 70 + x] as f64 / 255.0;
                for c in 0..3 {
                    let i = ((7 + y) * w as usize + 5 + x) * 3 + c;
                    let new = repaint.as_raw()[(y * 70 + x) * 3 + c] as f64;
                    want[i] = (new * a + want[i] as f64 * (1.0 - a)).round() as u8;
                }
            }
        }
        for isa in Isa::available() {
            let got = composite_using(
                isa,
                &original,
                std::slice::from_ref(&crop),
                Corrections::default(),
            );
            assert!(*got.as_raw() == want, "{}", isa.name());
        }
    }

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
