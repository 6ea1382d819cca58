//! Separable Gaussian convolution in 8.8 fixed point: a horizontal then a
//! vertical pass, each rounded to 8 bits. Rows are filtered horizontally
//! into a ring of the last 2r + 1, from which each output row is filtered
//! vertically, so nothing but the result is image-sized.

use crate::cpu::multiversion;

/// Largest radius convolved directly.
pub(super) const MAX_RADIUS: usize = 12;

/// Pixels one step of the inner loops works on: 32 16-bit sums fill two
/// AVX2 registers, one AVX-512 one or four SSE2 ones, and stay there
/// across the taps.
const LANES: usize = 32;

/// Gaussian weights for offsets -radius..=radius in 8.8 fixed point,
/// summing to exactly 256 and symmetric around the centre.
pub(super) fn kernel(sigma: f32, radius: usize) -> Vec<u16> {
    let raw: Vec<f64> = (0..=2 * radius)
        .map(|i| {
            let d = i as f64 - radius as f64;
            (-d * d / (2.0 * (sigma as f64).powi(2))).exp()
        })
        .collect();
    let total: f64 = raw.iter().sum();
    let mut fixed: Vec<u16> = raw
        .iter()
        .map(|v| (v / total * 256.0).round() as u16)
        .collect();
    // Put the rounding error on the centre tap so the weights sum to 256.
    let sum: i32 = fixed.iter().map(|&v| v as i32).sum();
    fixed[radius] = (fixed[radius] as i32 + 256 - sum) as u16;
    fixed
}

multiversion! {
    /// `out` = `src` (w x h) convolved with `weights` (sum 256, symmetric,
    /// at most 2 * MAX_RADIUS + 1 taps) along rows, then down columns.
    pub(super) fn convolve(src: &[u8], out: &mut [u8], w: usize, h: usize, weights: &[u16]) => convolve_body
}

#[inline(always)]
fn convolve_body(src: &[u8], out: &mut [u8], w: usize, h: usize, weights: &[u16]) {
    let taps = weights.len();
    let r = taps / 2;
    assert!(r <= MAX_RADIUS && taps == 2 * r + 1 && src.len() == w * h && out.len() == w * h);
    let mut ring = vec![0u8; taps * w];
    let mut padded = vec![0u8; w + 2 * r];
    let mut filtered = 0; // rows filtered horizontally so far
    for y in 0..h {
        while filtered < h.min(y + r + 1) {
            let row = &src[filtered * w..(filtered + 1) * w];
            padded[..r].fill(row[0]);
            padded[r..r + w].copy_from_slice(row);
            padded[r + w..].fill(row[w - 1]);
            let slot = filtered % taps;
            horizontal_row(&padded, weights, &mut ring[slot * w..(slot + 1) * w]);
            filtered += 1;
        }
        // Rows y - r..=y + r, the edge rows repeated.
        let mut rows = [&[][..]; 2 * MAX_RADIUS + 1];
        for (k, row) in rows[..taps].iter_mut().enumerate() {
            let slot = (y + k).saturating_sub(r).min(h - 1) % taps;
            *row = &ring[slot * w..(slot + 1) * w];
        }
        vertical_row(&rows[..taps], weights, &mut out[y * w..(y + 1) * w]);
    }
}

/// dst[x] = sum over k of weights[k] * padded[x + k]. Mirrored taps share
/// one multiply; the sum of all taps is at most 255 * 256 + 128, so 16-bit
/// lanes never overflow.
#[inline(always)]
fn horizontal_row(padded: &[u8], weights: &[u16], dst: &mut [u8]) {
    let r = weights.len() / 2;
    let lanes = |at: usize| -> &[u8; LANES] { padded[at..at + LANES].try_into().expect("lanes") };
    let mut x = 0;
    while x + LANES <= dst.len() {
        let mut acc = [128u16; LANES];
        let centre = lanes(x + r);
        for i in 0..LANES {
            acc[i] += weights[r] * centre[i] as u16;
        }
        for k in 1..=r {
            let (left, right) = (lanes(x + r - k), lanes(x + r + k));
            for i in 0..LANES {
                acc[i] += weights[r + k] * (left[i] as u16 + right[i] as u16);
            }
        }
        store(&acc, &mut dst[x..x + LANES]);
        x += LANES;
    }
    for (x, o) in dst.iter_mut().enumerate().skip(x) {
        let acc = (weights.iter().zip(&padded[x..])).fold(128u16, |a, (&wk, &v)| a + wk * v as u16);
        *o = (acc >> 8) as u8;
    }
}

/// dst[x] = sum over k of weights[k] * rows[k][x], as [`horizontal_row`].
#[inline(always)]
fn vertical_row(rows: &[&[u8]], weights: &[u16], dst: &mut [u8]) {
    let r = weights.len() / 2;
    let lanes =
        |k: usize, x: usize| -> &[u8; LANES] { rows[k][x..x + LANES].try_into().expect("lanes") };
    let mut x = 0;
    while x + LANES <= dst.len() {
        let mut acc = [128u16; LANES];
        let centre = lanes(r, x);
        for i in 0..LANES {
            acc[i] += weights[r] * centre[i] as u16;
        }
        for k in 1..=r {
            let (above, below) = (lanes(r - k, x), lanes(r + k, x));
            for i in 0..LANES {
                acc[i] += weights[r + k] * (above[i] as u16 + below[i] as u16);
            }
        }
        store(&acc, &mut dst[x..x + LANES]);
        x += LANES;
    }
    for (x, o) in dst.iter_mut().enumerate().skip(x) {
        let acc = (weights.iter().zip(rows)).fold(128u16, |a, (&wk, row)| a + wk * row[x] as u16);
        *o = (acc >> 8) as u8;
    }
}

/// The 8.8 sums' integer parts into `dst`, through a fixed-size array so
/// the narrowing is one pack instruction rather than a byte at a time.
#[inline(always)]
fn store(acc: &[u16; LANES], dst: &mut [u8]) {
    let out: &mut [u8; LANES] = dst.try_into().expect("lanes");
    for i in 0..LANES {
        out[i] = (acc[i] >> 8) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_sums_to_one_and_is_symmetric() {
        for (sigma, r) in [(0.8f32, 1usize), (1.7, 4), (5.0, 12)] {
            let k = kernel(sigma, r);
            assert_eq!(k.iter().map(|&v| v as u32).sum::<u32>(), 256);
            assert_eq!(k.len(), 2 * r + 1);
            assert!((0..r).all(|i| k[i] == k[2 * r - i]), "{k:?}");
        }
    }

    /// The straightforward convolution, tap by tap, clamped at the edges.
    fn reference(src: &[u8], w: usize, h: usize, weights: &[u16]) -> Vec<u8> {
        let r = weights.len() as isize / 2;
        let pass = |data: &[u8], along_rows: bool| -> Vec<u8> {
            let mut out = vec![0u8; w * h];
            for y in 0..h as isize {
                for x in 0..w as isize {
                    let mut acc = 128u32;
                    for k in -r..=r {
                        let (sx, sy) = if along_rows { (x + k, y) } else { (x, y + k) };
                        let (sx, sy) = (sx.clamp(0, w as isize - 1), sy.clamp(0, h as isize - 1));
                        acc += weights[(k + r) as usize] as u32
                            * data[(sy * w as isize + sx) as usize] as u32;
                    }
                    out[(y * w as isize + x) as usize] = (acc >> 8) as u8;
                }
            }
            out
        };
        pass(&pass(src, true), false)
    }

    #[test]
    fn matches_the_tap_by_tap_convolution() {
        for (w, h, r) in [(1, 1, 3), (40, 3, 4), (70, 33, 12), (33, 70, 1)] {
            let src = super::super::test_bytes(w, h);
            let weights = kernel(0.3 * (r as f32 - 1.0) + 0.8, r);
            let want = reference(&src, w, h, &weights);
            for isa in crate::cpu::Isa::available() {
                let mut out = vec![0u8; w * h];
                convolve(isa, &src, &mut out, w, h, &weights);
                assert!(out == want, "{w}x{h} radius {r} {}", isa.name());
            }
        }
    }
}
