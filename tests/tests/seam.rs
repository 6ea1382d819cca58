//! Colour seams on a real photo: a repaint that comes back with a colour
//! cast (as model outputs often do) is pasted into the astronaut photo with
//! and without correction.
//!
//! Metric: mean CIE76 colour difference (Delta E) across the paste boundary,
//! over every pair of 4-neighbours with one pixel fully repainted (alpha 255)
//! and the other untouched (alpha 0). The photo's own difference across the
//! same pairs is the floor.

mod support;

use inpaint_imaging::color::delta_e;
use inpaint_imaging::composite::{Corrections, Repainted, composite};
use inpaint_imaging::{GrayImage, PixelBox, RgbImage, mask};
use support::*;

fn seam_delta_e(img: &RgbImage, alpha: &GrayImage) -> f64 {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let px = |i: usize| &img.as_raw()[i * 3..i * 3 + 3];
    let a = alpha.as_raw();
    let (mut sum, mut n) = (0f64, 0usize);
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            if a[i] != 255 {
                continue;
            }
            for (ok, j) in [
                (x > 0, i.wrapping_sub(1)),
                (x + 1 < w, i + 1),
                (y > 0, i.wrapping_sub(w)),
                (y + 1 < h, i + w),
            ] {
                if ok && a[j] == 0 {
                    sum += delta_e(px(i), px(j)) as f64;
                    n += 1;
                }
            }
        }
    }
    sum / n as f64
}

#[test]
fn colour_correction_and_seamless_blend_shrink_the_seam() {
    let photo = decode_rgb(&photo_bytes("astronaut.png"));
    // A crop over backdrop, rocket and flag edge; the hole in its middle.
    let area = PixelBox::new(300, 40, 160, 160);
    let hole = PixelBox::new(340, 80, 80, 80);
    let full_alpha = mask::from_box(photo.width(), photo.height(), hole);
    let alpha = full_alpha.crop(area);
    // The "model output": the true content with a warm cast, over the crop.
    let cast: Vec<u8> = photo
        .crop(area)
        .as_raw()
        .chunks(3)
        .flat_map(|p| {
            let r = (p[0] as f32 * 1.12 + 12.0).min(255.0) as u8;
            let b = (p[2] as f32 * 0.82) as u8;
            [r, p[1], b]
        })
        .collect();
    let repaint = RgbImage::from_raw(area.width, area.height, cast).unwrap();
    let paste = |corrections| {
        let crop = Repainted {
            area,
            image: repaint.clone(),
            alpha: alpha.clone(),
        };
        composite(&photo, &[crop], corrections)
    };

    let floor = seam_delta_e(&photo, &full_alpha);
    let plain = seam_delta_e(&paste(Corrections::default()), &full_alpha);
    let corrected = seam_delta_e(
        &paste(Corrections {
            color: true,
            seamless: false,
        }),
        &full_alpha,
    );
    let seamless = seam_delta_e(
        &paste(Corrections {
            color: false,
            seamless: true,
        }),
        &full_alpha,
    );
    println!(
        "seam_delta_e floor={floor:.2} plain={plain:.2} color_corrected={corrected:.2} seamless={seamless:.2}"
    );
    assert!(
        plain > floor + 3.0,
        "the cast makes a visible seam ({plain:.2} vs {floor:.2})"
    );
    assert!(
        corrected < plain,
        "colour correction: {corrected:.2} vs {plain:.2}"
    );
    assert!(
        corrected < floor + 1.5,
        "colour correction brings the seam near the photo's own: {corrected:.2} vs {floor:.2}"
    );
    assert!(seamless < plain, "seamless: {seamless:.2} vs {plain:.2}");
}
