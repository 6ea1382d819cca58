//! Resampling between image size and an engine's working size.

use crate::buffer::{GrayImage, RgbImage};

/// Bilinear resize with pixel centres aligned (as OpenCV's INTER_LINEAR).
/// Returns a copy when the size is unchanged.
pub fn resize_rgb(src: &RgbImage, width: u32, height: u32) -> RgbImage {
    if (src.width(), src.height()) == (width, height) {
        return src.clone();
    }
    let xs = axis_taps(src.width(), width);
    let ys = axis_taps(src.height(), height);
    let sw = src.width() as usize;
    let data = src.as_raw();
    let mut out = Vec::with_capacity(width as usize * height as usize * 3);
    for &(y0, y1, fy) in &ys {
        let (r0, r1) = (y0 * sw * 3, y1 * sw * 3);
        for &(x0, x1, fx) in &xs {
            for c in 0..3 {
                let p = |row: usize, x: usize| data[row + x * 3 + c] as f32;
                let top = p(r0, x0) + (p(r0, x1) - p(r0, x0)) * fx;
                let bottom = p(r1, x0) + (p(r1, x1) - p(r1, x0)) * fx;
                out.push((top + (bottom - top) * fy).round() as u8);
            }
        }
    }
    RgbImage::from_raw(width, height, out).expect("sized above")
}

/// Resizes a hole (> 0 = fill) so that the result covers every source hole
/// pixel and its one-pixel neighbourhood: after the repainted crop is scaled
/// back, every pixel that needed repainting was inside the engine's hole,
/// including the bilinear taps that reach across the hole's edge.
pub fn resize_hole(src: &GrayImage, width: u32, height: u32) -> GrayImage {
    let (sw, sh) = (src.width() as usize, src.height() as usize);
    let data = src.as_raw();
    // Source hole dilated by one pixel (3x3), then sampled by footprint.
    let mut grown = vec![false; sw * sh];
    for y in 0..sh {
        for x in 0..sw {
            if data[y * sw + x] > 0 {
                for ny in y.saturating_sub(1)..(y + 2).min(sh) {
                    for nx in x.saturating_sub(1)..(x + 2).min(sw) {
                        grown[ny * sw + nx] = true;
                    }
                }
            }
        }
    }
    let span = |dst: u32, src_len: usize, i: usize| {
        let scale = src_len as f64 / dst as f64;
        let start = ((i as f64 * scale).floor() as usize).min(src_len - 1);
        let end = (((i + 1) as f64 * scale).ceil() as usize).clamp(start + 1, src_len);
        start..end
    };
    let mut out = Vec::with_capacity(width as usize * height as usize);
    for y in 0..height as usize {
        let rows = span(height, sh, y);
        for x in 0..width as usize {
            let cols = span(width, sw, x);
            let any = rows.clone().any(|sy| cols.clone().any(|sx| grown[sy * sw + sx]));
            out.push(if any { 255 } else { 0 });
        }
    }
    GrayImage::from_raw(width, height, out).expect("sized above")
}

/// For each destination index: the two source indices and the weight of the
/// second, for centre-aligned linear interpolation.
fn axis_taps(src_len: u32, dst_len: u32) -> Vec<(usize, usize, f32)> {
    let scale = src_len as f32 / dst_len as f32;
    let last = src_len as usize - 1;
    (0..dst_len)
        .map(|i| {
            let pos = ((i as f32 + 0.5) * scale - 0.5).max(0.0);
            let i0 = (pos.floor() as usize).min(last);
            let i1 = (i0 + 1).min(last);
            (i0, i1, pos - i0 as f32)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_size_is_identity() {
        let img = RgbImage::from_raw(2, 1, vec![1, 2, 3, 4, 5, 6]).unwrap();
        assert_eq!(resize_rgb(&img, 2, 1), img);
    }

    #[test]
    fn flat_colour_stays_flat() {
        let img = RgbImage::filled(7, 5, 90);
        let up = resize_rgb(&img, 20, 13);
        assert!(up.as_raw().iter().all(|&v| v == 90));
        let down = resize_rgb(&up, 3, 2);
        assert!(down.as_raw().iter().all(|&v| v == 90));
    }

    #[test]
    fn upscale_interpolates_between_neighbours() {
        let img = RgbImage::from_raw(2, 1, vec![0, 0, 0, 200, 200, 200]).unwrap();
        let up = resize_rgb(&img, 4, 1);
        let reds: Vec<u8> = up.as_raw().chunks(3).map(|p| p[0]).collect();
        assert_eq!(reds, vec![0, 50, 150, 200]);
    }

    #[test]
    fn downscaled_hole_still_covers_a_single_pixel() {
        let mut hole = GrayImage::filled(100, 100, 0);
        hole.as_raw_mut()[50 * 100 + 50] = 255;
        let small = resize_hole(&hole, 10, 10);
        assert_eq!(small.as_raw()[5 * 10 + 5], 255);
        assert!(small.as_raw().iter().filter(|&&v| v > 0).count() <= 4);
    }
}
