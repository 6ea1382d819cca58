//! What the engine sees in the hole, the user's sketch, and strength.

use inpaint_imaging::{GrayImage, RgbImage, pushpull};
use inpaint_proto::v1::MaskedContent;

/// Sketched hole pixels become known pixels with the sketch's colours (they
/// guide every engine's fill around them); returns the image and the hole
/// the engine works on, changed in place.
pub fn apply_sketch(
    mut image: RgbImage,
    mut hole: GrayImage,
    sketch: Option<(&RgbImage, &GrayImage)>,
) -> (RgbImage, GrayImage) {
    let Some((colours, painted)) = sketch else {
        return (image, hole);
    };
    for (i, (&p, h)) in painted.as_raw().iter().zip(hole.as_raw_mut()).enumerate() {
        if p > 0 && *h > 0 {
            *h = 0;
            image.as_raw_mut()[i * 3..i * 3 + 3]
                .copy_from_slice(&colours.as_raw()[i * 3..i * 3 + 3]);
        }
    }
    (image, hole)
}

/// Replaces the hole's pixels as `content` says; `seed` drives the noise.
pub fn prefill(image: RgbImage, hole: &GrayImage, content: MaskedContent, seed: u64) -> RgbImage {
    match content {
        MaskedContent::Original => image,
        MaskedContent::Fill | MaskedContent::Unspecified => pushpull::fill(&image, hole),
        MaskedContent::Nothing => paint(image, hole, |_| [128, 128, 128]),
        MaskedContent::Noise => {
            let mut state = seed ^ 0xD1B5_4A32_D192_ED03;
            paint(image, hole, move |_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let v = (state >> 40).to_le_bytes();
                [v[0], v[1], v[2]]
            })
        }
    }
}

fn paint(
    mut out: RgbImage,
    hole: &GrayImage,
    mut colour: impl FnMut(usize) -> [u8; 3],
) -> RgbImage {
    for (i, &m) in hole.as_raw().iter().enumerate() {
        if m > 0 {
            out.as_raw_mut()[i * 3..i * 3 + 3].copy_from_slice(&colour(i));
        }
    }
    out
}

/// Inside `hole`: result * strength + original * (1 - strength); outside:
/// the original.
pub fn blend_strength(
    original: &RgbImage,
    result: &RgbImage,
    hole: &GrayImage,
    strength: f32,
) -> RgbImage {
    let mut out = original.clone();
    let s = strength.clamp(0.0, 1.0);
    for (i, &m) in hole.as_raw().iter().enumerate() {
        if m > 0 {
            for c in 0..3 {
                let (new, old) = (
                    result.as_raw()[i * 3 + c] as f32,
                    original.as_raw()[i * 3 + c] as f32,
                );
                out.as_raw_mut()[i * 3 + c] = inpaint_imaging::to_byte(new * s + old * (1.0 - s));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use inpaint_imaging::PixelBox;
    use inpaint_imaging::mask::from_box;

    #[test]
    fn noise_is_seeded_and_only_in_the_hole() {
        let img = RgbImage::filled(10, 10, 7);
        let hole = from_box(10, 10, PixelBox::new(2, 2, 4, 4));
        let a = prefill(img.clone(), &hole, MaskedContent::Noise, 1);
        assert_eq!(a, prefill(img.clone(), &hole, MaskedContent::Noise, 1));
        assert_ne!(a, prefill(img.clone(), &hole, MaskedContent::Noise, 2));
        assert_eq!(a.as_raw()[0..3], [7, 7, 7]);
        assert_eq!(prefill(img.clone(), &hole, MaskedContent::Original, 1), img);
        assert_eq!(prefill(img.clone(), &hole, MaskedContent::Fill, 1), img);
    }

    #[test]
    fn fill_takes_the_surroundings_on_each_side() {
        // Black left half, white right half, a red square across the edge:
        // FILL replaces every red pixel with grey from its own side.
        let mut img = RgbImage::filled(32, 16, 0);
        for y in 0..16 {
            for x in 16..32 {
                let i = (y * 32 + x) * 3;
                img.as_raw_mut()[i..i + 3].copy_from_slice(&[255, 255, 255]);
            }
        }
        let hole = from_box(32, 16, PixelBox::new(10, 4, 12, 8));
        for y in 4..12 {
            for x in 10..22 {
                let i = (y * 32 + x) * 3;
                img.as_raw_mut()[i..i + 3].copy_from_slice(&[255, 0, 0]);
            }
        }
        let out = prefill(img.clone(), &hole, MaskedContent::Fill, 0);
        let px = |x: usize, y: usize| {
            let i = (y * 32 + x) * 3;
            [out.as_raw()[i], out.as_raw()[i + 1], out.as_raw()[i + 2]]
        };
        for y in 4..12 {
            for x in 10..22 {
                let [r, g, b] = px(x, y);
                assert!(
                    r.abs_diff(g) <= 2 && g.abs_diff(b) <= 2,
                    "({x},{y}) not grey: {r},{g},{b}"
                );
            }
        }
        assert!(
            px(10, 8)[0] < 100 && px(21, 8)[0] > 155,
            "{:?} {:?}",
            px(10, 8),
            px(21, 8)
        );
        // Outside the hole, untouched.
        assert_eq!(px(0, 0), [0, 0, 0]);
        assert_eq!(px(31, 15), [255, 255, 255]);
    }

    #[test]
    fn strength_blends_inside_only() {
        let original = RgbImage::filled(4, 1, 100);
        let result = RgbImage::filled(4, 1, 200);
        let hole = GrayImage::from_raw(4, 1, vec![0, 255, 255, 0]).unwrap();
        let out = blend_strength(&original, &result, &hole, 0.25);
        assert_eq!(
            out.as_raw(),
            &[100, 100, 100, 125, 125, 125, 125, 125, 125, 100, 100, 100]
        );
    }

    #[test]
    fn sketch_pixels_become_known() {
        let img = RgbImage::filled(4, 1, 0);
        let hole = GrayImage::from_raw(4, 1, vec![255, 255, 255, 0]).unwrap();
        let colours = RgbImage::filled(4, 1, 9);
        let painted = GrayImage::from_raw(4, 1, vec![0, 255, 0, 255]).unwrap();
        let (image, hole) = apply_sketch(img, hole, Some((&colours, &painted)));
        assert_eq!(hole.as_raw(), &[255, 0, 255, 0]);
        assert_eq!(image.as_raw()[3..6], [9, 9, 9]);
        assert_eq!(
            image.as_raw()[9..12],
            [0, 0, 0],
            "outside the hole the sketch is ignored"
        );
    }
}
