//! Binary masks packed 64 pixels to a word, for morphology that works on 64
//! pixels per instruction.
//!
//! Pixel x of a row is bit x % 64 of word x / 64; bits past the width stay 0.

use crate::buffer::GrayImage;

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BitMask {
    width: usize,
    height: usize,
    stride: usize,
    words: Vec<u64>,
}

/// Gathers the top bit of each of 8 bytes (little-endian) into one byte.
const GATHER: u64 = 0x0102_0408_1020_4080;

impl BitMask {
    pub fn new(width: usize, height: usize) -> Self {
        let stride = width.div_ceil(64).max(1);
        Self {
            width,
            height,
            stride,
            words: vec![0; stride * height],
        }
    }

    /// Pixels >= 128 are on.
    pub fn from_gray(mask: &GrayImage) -> Self {
        let (w, h) = (mask.width() as usize, mask.height() as usize);
        let mut out = Self::new(w, h);
        for (y, row) in mask.as_raw().chunks_exact(w.max(1)).enumerate().take(h) {
            let words = &mut out.words[y * out.stride..(y + 1) * out.stride];
            for (k, word) in words.iter_mut().enumerate() {
                let start = k * 64;
                let end = (start + 64).min(w);
                let mut bits = 0u64;
                let chunk = &row[start..end];
                let mut eight = chunk.chunks_exact(8);
                for (j, bytes) in eight.by_ref().enumerate() {
                    let v = u64::from_le_bytes(bytes.try_into().expect("8 bytes"));
                    let top = (v & 0x8080_8080_8080_8080) >> 7;
                    bits |= (top.wrapping_mul(GATHER) >> 56) << (j * 8);
                }
                let done = chunk.len() / 8 * 8;
                for (j, &v) in eight.remainder().iter().enumerate() {
                    bits |= ((v >= 128) as u64) << (done + j);
                }
                *word = bits;
            }
        }
        out
    }

    /// 255 for on, 0 for off.
    pub fn to_gray(&self) -> GrayImage {
        let mut out = GrayImage::filled(self.width as u32, self.height as u32, 0);
        self.write_into(&mut out);
        out
    }

    /// Writes 255 for on and 0 for off into `out`, which must be this size
    /// (no allocation: pipelines reuse their buffers).
    pub fn write_into(&self, out: &mut GrayImage) {
        assert_eq!(
            (out.width() as usize, out.height() as usize),
            (self.width, self.height)
        );
        let table = expand_table();
        let (w, h) = (self.width, self.height);
        let data = out.as_raw_mut();
        for (y, row) in data.chunks_exact_mut(w.max(1)).enumerate().take(h) {
            let words = self.row(y);
            let mut bytes = row.chunks_exact_mut(8);
            for (j, out) in bytes.by_ref().enumerate() {
                let byte = (words[j / 8] >> ((j % 8) * 8)) & 0xff;
                out.copy_from_slice(&table[byte as usize].to_le_bytes());
            }
            let done = w / 8 * 8;
            for (j, out) in bytes.into_remainder().iter_mut().enumerate() {
                let x = done + j;
                *out = if (words[x / 64] >> (x % 64)) & 1 == 1 {
                    255
                } else {
                    0
                };
            }
        }
    }

    pub fn row(&self, y: usize) -> &[u64] {
        &self.words[y * self.stride..(y + 1) * self.stride]
    }

    fn row_mut(&mut self, y: usize) -> &mut [u64] {
        &mut self.words[y * self.stride..(y + 1) * self.stride]
    }

    /// Mask of the valid bits in a row's last word.
    fn tail_mask(&self) -> u64 {
        match self.width % 64 {
            0 => !0,
            n => (1u64 << n) - 1,
        }
    }

    /// Flips every pixel.
    pub fn invert(&mut self) {
        let tail = self.tail_mask();
        let stride = self.stride;
        for row in self.words.chunks_exact_mut(stride) {
            for w in row.iter_mut() {
                *w = !*w;
            }
            row[stride - 1] &= tail;
        }
    }

    /// Dilation by the Euclidean disc x^2 + y^2 <= r^2. Each source row is
    /// dilated horizontally once per width 0..=r (one shift-or per step) into
    /// a ring of the 2r+1 rows in reach; each output row ORs, for every dy,
    /// the row dy away dilated by floor(sqrt(r^2 - dy^2)).
    pub fn dilate_disc(&self, r: usize) -> BitMask {
        if r == 0 {
            return self.clone();
        }
        let widths: Vec<usize> = (0..=r).map(|dy| isqrt(r * r - dy * dy)).collect();
        let window = 2 * r + 1;
        let ladder_len = (r + 1) * self.stride;
        // ring[slot] holds the ladder (widths 0..=r) of one source row.
        let mut ring = vec![0u64; window * ladder_len];
        let mut out = BitMask::new(self.width, self.height);
        let tail = self.tail_mask();
        let fill = |ring: &mut [u64], y: usize| {
            let slot = (y % window) * ladder_len;
            let ladder = &mut ring[slot..slot + ladder_len];
            ladder[..self.stride].copy_from_slice(self.row(y));
            for step in 1..=r {
                let (done, rest) = ladder.split_at_mut(step * self.stride);
                dilate_row_by_one(
                    &done[(step - 1) * self.stride..],
                    &mut rest[..self.stride],
                    tail,
                );
            }
        };
        for y in 0..self.height.min(r) {
            fill(&mut ring, y);
        }
        for y in 0..self.height {
            if y + r < self.height {
                fill(&mut ring, y + r);
            }
            let acc = out.row_mut(y);
            let lo = y.saturating_sub(r);
            let hi = (y + r).min(self.height - 1);
            for src in lo..=hi {
                let w = widths[src.abs_diff(y)];
                let at = (src % window) * ladder_len + w * self.stride;
                for (a, &b) in acc.iter_mut().zip(&ring[at..at + self.stride]) {
                    *a |= b;
                }
            }
        }
        out
    }

    /// Dilation by the (2r+1) x (2r+1) square: horizontal by doubling
    /// (log r steps), vertical by van Herk / Gil-Werman (three ORs per word
    /// whatever r is).
    pub fn dilate_square(&self, r: usize) -> BitMask {
        if r == 0 {
            return self.clone();
        }
        let tail = self.tail_mask();
        // Doubling needs the pixels that spill past the edges, so each row is
        // dilated inside r pixels (rounded up to words) of margin.
        let pad = r.div_ceil(64);
        let mut buf = vec![0u64; self.stride + 2 * pad];
        let mut scratch = buf.clone();
        let mut horizontal = BitMask::new(self.width, self.height);
        for y in 0..self.height {
            buf.fill(0);
            buf[pad..pad + self.stride].copy_from_slice(self.row(y));
            // x dilated by [-a, a], or-ed with itself shifted by b <= 2a + 1,
            // is x dilated by [-(a + b), a + b].
            let mut reach = 0usize;
            while reach < r {
                let step = (2 * reach + 1).min(r - reach);
                scratch.copy_from_slice(&buf);
                shift_or(&scratch, &mut buf, step);
                reach += step;
            }
            let row = horizontal.row_mut(y);
            row.copy_from_slice(&buf[pad..pad + self.stride]);
            row[self.stride - 1] &= tail;
        }
        vertical_max(&horizontal, r)
    }
}

/// `out = src | src shifted one pixel left | one pixel right`.
fn dilate_row_by_one(src: &[u64], out: &mut [u64], tail: u64) {
    let n = src.len();
    for k in 0..n {
        let prev = if k > 0 { src[k - 1] >> 63 } else { 0 };
        let next = if k + 1 < n { src[k + 1] << 63 } else { 0 };
        out[k] = src[k] | (src[k] << 1) | prev | (src[k] >> 1) | next;
    }
    out[n - 1] &= tail;
}

/// `row |= src shifted by s pixels either way`.
fn shift_or(src: &[u64], row: &mut [u64], s: usize) {
    let n = src.len() as isize;
    let (words, bits) = ((s / 64) as isize, (s % 64) as u32);
    let get = |k: isize| {
        if (0..n).contains(&k) {
            src[k as usize]
        } else {
            0
        }
    };
    for k in 0..n {
        // Pixels move to higher x: bits move up.
        let up = if bits == 0 {
            get(k - words)
        } else {
            (get(k - words) << bits) | (get(k - words - 1) >> (64 - bits))
        };
        let down = if bits == 0 {
            get(k + words)
        } else {
            (get(k + words) >> bits) | (get(k + words + 1) << (64 - bits))
        };
        row[k as usize] |= up | down;
    }
}

/// out[y] = OR of rows y-r..=y+r, by prefix/suffix ORs over blocks of 2r+1
/// rows of the source padded with r empty rows above and below.
fn vertical_max(src: &BitMask, r: usize) -> BitMask {
    let (h, stride) = (src.height, src.stride);
    let block = 2 * r + 1;
    let padded = h + 2 * r;
    let mut prefix = vec![0u64; padded * stride];
    prefix[r * stride..(r + h) * stride].copy_from_slice(&src.words);
    let mut suffix = prefix.clone();
    for p in 1..padded {
        if p % block != 0 {
            let (before, here) = prefix.split_at_mut(p * stride);
            for (a, &b) in here[..stride].iter_mut().zip(&before[(p - 1) * stride..]) {
                *a |= b;
            }
        }
    }
    for p in (0..padded - 1).rev() {
        if p % block != block - 1 {
            let (here, after) = suffix.split_at_mut((p + 1) * stride);
            for (a, &b) in here[p * stride..].iter_mut().zip(&after[..stride]) {
                *a |= b;
            }
        }
    }
    let mut out = BitMask::new(src.width, h);
    for y in 0..h {
        // Padded window [y, y + 2r] spans at most two blocks: the suffix of
        // its first row and the prefix of its last row cover it exactly.
        let (first, last) = (y * stride, (y + 2 * r) * stride);
        for (k, acc) in out.row_mut(y).iter_mut().enumerate() {
            *acc = suffix[first + k] | prefix[last + k];
        }
    }
    out
}

fn isqrt(n: usize) -> usize {
    let mut r = (n as f64).sqrt() as usize;
    while r * r > n {
        r -= 1;
    }
    while (r + 1) * (r + 1) <= n {
        r += 1;
    }
    r
}

/// For each byte of bits, the 8 bytes (255 or 0) it stands for.
fn expand_table() -> [u64; 256] {
    let mut table = [0u64; 256];
    for (bits, entry) in table.iter_mut().enumerate() {
        for i in 0..8 {
            if bits >> i & 1 == 1 {
                *entry |= 0xff << (i * 8);
            }
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scatter(w: u32, h: u32, seed: u64) -> GrayImage {
        let mut state = seed;
        let data = (0..w * h)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                if state >> 58 == 0 { 255 } else { 0 }
            })
            .collect();
        GrayImage::from_raw(w, h, data).unwrap()
    }

    fn brute_dilate(m: &GrayImage, r: i64, square: bool) -> GrayImage {
        let (w, h) = (m.width() as i64, m.height() as i64);
        let on = |x: i64, y: i64| {
            x >= 0 && y >= 0 && x < w && y < h && m.as_raw()[(y * w + x) as usize] >= 128
        };
        let data = (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                let hit = (-r..=r).any(|dy| {
                    (-r..=r).any(|dx| (square || dx * dx + dy * dy <= r * r) && on(x + dx, y + dy))
                });
                if hit { 255 } else { 0 }
            })
            .collect();
        GrayImage::from_raw(m.width(), m.height(), data).unwrap()
    }

    #[test]
    fn pack_round_trip_at_odd_widths() {
        for w in [1, 7, 63, 64, 65, 130] {
            let m = scatter(w, 5, w as u64);
            assert_eq!(BitMask::from_gray(&m).to_gray(), m, "width {w}");
        }
    }

    #[test]
    fn disc_and_square_match_brute_force() {
        for (w, h) in [(70, 40), (129, 9), (5, 5), (23, 61), (64, 64)] {
            let m = scatter(w, h, 42);
            let bits = BitMask::from_gray(&m);
            for r in [1usize, 2, 3, 4, 5, 6, 7, 8, 9, 13, 70] {
                assert_eq!(
                    bits.dilate_disc(r).to_gray(),
                    brute_dilate(&m, r as i64, false),
                    "disc r={r} {w}x{h}"
                );
                let (got, want) = (
                    bits.dilate_square(r).to_gray(),
                    brute_dilate(&m, r as i64, true),
                );
                if got != want {
                    let diff: Vec<(usize, usize, u8)> = (0..(w * h) as usize)
                        .filter(|&i| got.as_raw()[i] != want.as_raw()[i])
                        .map(|i| (i % w as usize, i / w as usize, got.as_raw()[i]))
                        .take(10)
                        .collect();
                    panic!("square r={r} {w}x{h}: {diff:?}");
                }
            }
        }
    }

    #[test]
    fn invert_keeps_padding_clear() {
        let mut b = BitMask::from_gray(&GrayImage::filled(70, 2, 0));
        b.invert();
        assert_eq!(b.to_gray(), GrayImage::filled(70, 2, 255));
        assert_eq!(b.row(0)[1], (1 << 6) - 1);
    }
}
