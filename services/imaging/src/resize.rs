//! Resampling between image size and an engine's working size.

use crate::buffer::{GrayImage, RgbImage};

/// Resizes with pixel centres aligned: bilinear on an axis that grows (as
/// OpenCV's INTER_LINEAR), area averaging on an axis that shrinks (as
/// INTER_AREA), so a repainted crop scaled back down does not alias.
/// Returns a copy when the size is unchanged.
pub fn resize_rgb(src: &RgbImage, width: u32, height: u32) -> RgbImage {
    if (src.width(), src.height()) == (width, height) {
        return src.clone();
    }
    let (sw, sh) = (src.width() as usize, src.height() as usize);
    let (dw, dh) = (width as usize, height as usize);
    let xs = axis_taps(sw, dw);
    let ys = axis_taps(sh, dh);
    // Horizontal pass into f32 rows, then vertical pass to bytes.
    let data = src.as_raw();
    let mut rows = vec![0f32; sh * dw * 3];
    for y in 0..sh {
        let line = &data[y * sw * 3..(y + 1) * sw * 3];
        let out = &mut rows[y * dw * 3..(y + 1) * dw * 3];
        for (x, taps) in xs.iter().enumerate() {
            let mut acc = [0f32; 3];
            for &(i, w) in taps {
                for c in 0..3 {
                    acc[c] += line[i * 3 + c] as f32 * w;
                }
            }
            out[x * 3..x * 3 + 3].copy_from_slice(&acc);
        }
    }
    // Whole rows at a time (vectorises).
    let stride = dw * 3;
    let mut out = vec![0u8; stride * dh];
    let mut acc = vec![0f32; stride];
    for (y, taps) in ys.iter().enumerate() {
        acc.fill(0.0);
        for &(i, w) in taps {
            let row = &rows[i * stride..(i + 1) * stride];
            for (a, &v) in acc.iter_mut().zip(row) {
                *a += v * w;
            }
        }
        let dst = &mut out[y * stride..(y + 1) * stride];
        for (value, &a) in dst.iter_mut().zip(&acc) {
            *value = crate::to_byte(a);
        }
    }
    RgbImage::from_raw(width, height, out).expect("sized above")
}

/// [`resize_rgb`] that hands the image back untouched when the size already
/// matches (no copy).
pub fn into_size(src: RgbImage, width: u32, height: u32) -> RgbImage {
    if (src.width(), src.height()) == (width, height) {
        src
    } else {
        resize_rgb(&src, width, height)
    }
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
            let any = rows
                .clone()
                .any(|sy| cols.clone().any(|sx| grown[sy * sw + sx]));
            out.push(if any { 255 } else { 0 });
        }
    }
    GrayImage::from_raw(width, height, out).expect("sized above")
}

/// For each destination index, the source indices and weights that make it
/// (they sum to one): linear interpolation when enlarging, the covered
/// fraction of each source pixel when shrinking.
fn axis_taps(src_len: usize, dst_len: usize) -> Vec<Vec<(usize, f32)>> {
    let scale = src_len as f64 / dst_len as f64;
    let last = src_len - 1;
    (0..dst_len)
        .map(|i| {
            if scale <= 1.0 {
                let pos = ((i as f64 + 0.5) * scale - 0.5).max(0.0);
                let i0 = (pos.floor() as usize).min(last);
                let i1 = (i0 + 1).min(last);
                let f = (pos - i0 as f64) as f32;
                vec![(i0, 1.0 - f), (i1, f)]
            } else {
                let (start, end) = (i as f64 * scale, (i as f64 + 1.0) * scale);
                let mut taps = Vec::new();
                let mut j = start.floor() as usize;
                while (j as f64) < end && j <= last {
                    let cover = (end.min(j as f64 + 1.0) - start.max(j as f64)) / scale;
                    if cover > 0.0 {
                        taps.push((j, cover as f32));
                    }
                    j += 1;
                }
                taps
            }
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
    fn downscale_averages_the_area() {
        // 4x1 -> 2x1 averages pairs; 3x1 -> 2x1 splits the middle pixel.
        let img = RgbImage::from_raw(
            4,
            1,
            [0, 0, 0, 100, 100, 100, 200, 200, 200, 40, 40, 40].to_vec(),
        )
        .unwrap();
        let reds: Vec<u8> = resize_rgb(&img, 2, 1)
            .as_raw()
            .chunks(3)
            .map(|p| p[0])
            .collect();
        assert_eq!(reds, vec![50, 120]);
        let img = RgbImage::from_raw(3, 1, [0, 0, 0, 90, 90, 90, 180, 180, 180].to_vec()).unwrap();
        let reds: Vec<u8> = resize_rgb(&img, 2, 1)
            .as_raw()
            .chunks(3)
            .map(|p| p[0])
            .collect();
        assert_eq!(reds, vec![30, 150]);
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
