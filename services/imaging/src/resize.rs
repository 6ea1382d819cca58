//! Resampling between image size and an engine's working size.

use crate::buffer::{GrayImage, RgbImage};
use crate::cpu::{Isa, multiversion};

/// Resizes with pixel centres aligned: bilinear on an axis that grows (as
/// OpenCV's INTER_LINEAR), area averaging on an axis that shrinks (as
/// INTER_AREA), so a repainted crop scaled back down does not alias.
/// Returns a copy when the size is unchanged.
pub fn resize_rgb(src: &RgbImage, width: u32, height: u32) -> RgbImage {
    resize_rgb_using(Isa::best(), src, width, height)
}

/// [`resize_rgb`] with the instruction set `isa` (the same bytes with each:
/// the same multiplies and adds in the same order, never fused).
pub fn resize_rgb_using(isa: Isa, src: &RgbImage, width: u32, height: u32) -> RgbImage {
    if (src.width(), src.height()) == (width, height) {
        return src.clone();
    }
    let xs = Taps::new(src.width() as usize, width as usize);
    let ys = Taps::new(src.height() as usize, height as usize);
    let mut out = vec![0u8; width as usize * height as usize * 3];
    resample(isa, src.as_raw(), src.width() as usize, &xs, &ys, &mut out);
    RgbImage::from_raw(width, height, out).expect("sized above")
}

multiversion! {
    fn resample(src: &[u8], src_width: usize, xs: &Taps, ys: &Taps, out: &mut [u8]) => resample_body
}

/// Separable: the axis resampled first is the one that leaves fewer rows
/// for the horizontal pass (which gathers pixels by index and costs the
/// most): down the columns first when the height shrinks, along the rows
/// first otherwise. Either way only rows are buffered, never an image.
#[inline(always)]
fn resample_body(src: &[u8], src_width: usize, xs: &Taps, ys: &Taps, out: &mut [u8]) {
    let src_height = src.len() / (src_width * 3);
    if ys.len() < src_height {
        columns_then_rows(src, src_width, xs, ys, out);
    } else {
        rows_then_columns(src, src_width, xs, ys, out);
    }
}

/// Each output row: its source rows summed by the vertical taps (whole rows
/// at a time, which vectorises), then resampled along the row.
#[inline(always)]
fn columns_then_rows(src: &[u8], src_width: usize, xs: &Taps, ys: &Taps, out: &mut [u8]) {
    let src_stride = src_width * 3;
    let mut column_sums = vec![0f32; src_stride];
    let mut row = vec![0f32; xs.len() * 3];
    for (y, dst) in out.chunks_exact_mut(xs.len() * 3).enumerate() {
        let (rows, weights) = ys.of(y);
        column_sums.fill(0.0);
        for (&sy, &w) in rows.iter().zip(weights) {
            for (a, &v) in column_sums
                .iter_mut()
                .zip(&src[sy * src_stride..(sy + 1) * src_stride])
            {
                *a += v as f32 * w;
            }
        }
        horizontal(&column_sums, xs, &mut row);
        for (value, &a) in dst.iter_mut().zip(&row) {
            *value = crate::to_byte(a);
        }
    }
}

/// Source rows resampled along the row as the vertical taps first need
/// them, into a ring of the last `ys.count`; each output row then sums its
/// ring rows (whole rows at a time).
#[inline(always)]
fn rows_then_columns(src: &[u8], src_width: usize, xs: &Taps, ys: &Taps, out: &mut [u8]) {
    let (src_stride, stride) = (src_width * 3, xs.len() * 3);
    let mut line = vec![0f32; src_stride];
    let mut ring = vec![0f32; ys.count * stride];
    let mut acc = vec![0f32; stride];
    let mut filtered = 0; // source rows resampled along the row so far
    for (y, dst) in out.chunks_exact_mut(stride).enumerate() {
        let (rows, weights) = ys.of(y);
        let last = *rows.iter().max().expect("at least one tap");
        while filtered <= last {
            let bytes = &src[filtered * src_stride..(filtered + 1) * src_stride];
            for (f, &v) in line.iter_mut().zip(bytes) {
                *f = v as f32;
            }
            let slot = filtered % ys.count;
            horizontal(&line, xs, &mut ring[slot * stride..(slot + 1) * stride]);
            filtered += 1;
        }
        acc.fill(0.0);
        for (&sy, &w) in rows.iter().zip(weights) {
            let slot = sy % ys.count;
            for (a, &v) in acc
                .iter_mut()
                .zip(&ring[slot * stride..(slot + 1) * stride])
            {
                *a += v * w;
            }
        }
        for (value, &a) in dst.iter_mut().zip(&acc) {
            *value = crate::to_byte(a);
        }
    }
}

/// One row of RGB values resampled by `xs`, with the tap count fixed at
/// compile time for the common small counts (so the taps unroll).
#[inline(always)]
fn horizontal(line: &[f32], xs: &Taps, out: &mut [f32]) {
    match xs.count {
        1 => horizontal_with::<1>(line, xs, out),
        2 => horizontal_with::<2>(line, xs, out),
        3 => horizontal_with::<3>(line, xs, out),
        4 => horizontal_with::<4>(line, xs, out),
        _ => horizontal_any(line, xs, out),
    }
}

#[inline(always)]
fn horizontal_with<const K: usize>(line: &[f32], xs: &Taps, out: &mut [f32]) {
    let taps = xs.index.chunks_exact(K).zip(xs.weight.chunks_exact(K));
    for (px, (cols, weights)) in out.chunks_exact_mut(3).zip(taps) {
        let (cols, weights): (&[usize; K], &[f32; K]) = (
            cols.try_into().expect("K taps"),
            weights.try_into().expect("K taps"),
        );
        let mut acc = [0f32; 3];
        for k in 0..K {
            let at = &line[cols[k] * 3..cols[k] * 3 + 3];
            for c in 0..3 {
                acc[c] += at[c] * weights[k];
            }
        }
        px.copy_from_slice(&acc);
    }
}

#[inline(always)]
fn horizontal_any(line: &[f32], xs: &Taps, out: &mut [f32]) {
    for (x, px) in out.chunks_exact_mut(3).enumerate() {
        let (cols, weights) = xs.of(x);
        let mut acc = [0f32; 3];
        for (&i, &w) in cols.iter().zip(weights) {
            let at = &line[i * 3..i * 3 + 3];
            for c in 0..3 {
                acc[c] += at[c] * w;
            }
        }
        px.copy_from_slice(&acc);
    }
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

/// An axis's taps as flat arrays, `count` per destination pixel (the most
/// any has; shorter lists end with zero weights on their last source
/// pixel, which adds exactly nothing), so the loops index without chasing
/// a list per pixel. The order of the taps is kept, so the sums are the
/// same to the bit.
struct Taps {
    count: usize,
    index: Vec<usize>,
    weight: Vec<f32>,
}

impl Taps {
    fn new(src_len: usize, dst_len: usize) -> Taps {
        let lists = axis_taps(src_len, dst_len);
        let count = lists.iter().map(Vec::len).max().unwrap_or(1).max(1);
        let (mut index, mut weight) = (
            Vec::with_capacity(count * dst_len),
            Vec::with_capacity(count * dst_len),
        );
        for list in &lists {
            let pad = list.last().map_or(0, |&(i, _)| i);
            for k in 0..count {
                let (i, w) = list.get(k).copied().unwrap_or((pad, 0.0));
                index.push(i);
                weight.push(w);
            }
        }
        Taps {
            count,
            index,
            weight,
        }
    }

    fn len(&self) -> usize {
        self.index.len() / self.count
    }

    /// The source indices and weights of destination pixel `i`.
    #[inline(always)]
    fn of(&self, i: usize) -> (&[usize], &[f32]) {
        let at = i * self.count..(i + 1) * self.count;
        (&self.index[at.clone()], &self.weight[at])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same resampling written as the definition: every output pixel a
    /// weighted sum over the whole source in f64, each axis's weight the
    /// tent around the (clamped) sample position when it grows, the share
    /// of the output pixel's span a source pixel covers when it shrinks.
    fn by_definition(src: &RgbImage, dw: usize, dh: usize) -> Vec<f64> {
        let weight = |src_len: usize, dst_len: usize, i: usize, s: usize| -> f64 {
            let scale = src_len as f64 / dst_len as f64;
            if scale <= 1.0 {
                let pos = ((i as f64 + 0.5) * scale - 0.5).clamp(0.0, (src_len - 1) as f64);
                (1.0 - (pos - s as f64).abs()).max(0.0)
            } else {
                let (start, end) = (i as f64 * scale, (i + 1) as f64 * scale);
                (end.min(s as f64 + 1.0) - start.max(s as f64)).max(0.0) / scale
            }
        };
        let (sw, sh) = (src.width() as usize, src.height() as usize);
        let mut out = vec![0f64; dw * dh * 3];
        for y in 0..dh {
            for x in 0..dw {
                for sy in 0..sh {
                    let wy = weight(sh, dh, y, sy);
                    for sx in 0..sw {
                        let w = wy * weight(sw, dw, x, sx);
                        for c in 0..3 {
                            out[(y * dw + x) * 3 + c] +=
                                w * src.as_raw()[(sy * sw + sx) * 3 + c] as f64;
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn every_order_and_instruction_set_matches_the_definition() {
        let src = RgbImage::from_raw(
            23,
            17,
            (0..23 * 17 * 3).map(|i| (i * 97 % 256) as u8).collect(),
        )
        .unwrap();
        // Both axes growing, both shrinking, and one of each (either pass
        // first), by whole and fractional factors.
        for (dw, dh) in [
            (46, 34),
            (50, 40),
            (7, 5),
            (11, 8),
            (60, 6),
            (5, 40),
            (1, 1),
            (23, 40),
        ] {
            let want = by_definition(&src, dw, dh);
            let results: Vec<RgbImage> = Isa::available()
                .into_iter()
                .map(|isa| resize_rgb_using(isa, &src, dw as u32, dh as u32))
                .collect();
            for (got, isa) in results.iter().zip(Isa::available()) {
                assert!(
                    got == &results[0],
                    "{dw}x{dh}: {} differs from portable",
                    isa.name()
                );
                let worst = got
                    .as_raw()
                    .iter()
                    .zip(&want)
                    .map(|(&g, &w)| (g as f64 - w).abs())
                    .fold(0.0, f64::max);
                assert!(worst < 0.51, "{dw}x{dh} {}: off by {worst}", isa.name());
            }
        }
    }

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
