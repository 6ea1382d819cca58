//! Binary masks packed 64 pixels to a word, for morphology that works on 64
//! pixels per instruction.
//!
//! Pixel x of a row is bit x % 64 of word x / 64; bits past the width stay 0.

use crate::buffer::GrayImage;
use crate::cpu::{Isa, multiversion};

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BitMask {
    width: usize,
    height: usize,
    stride: usize,
    words: Vec<u64>,
}

/// Gathers the top bit of each of 8 bytes (little-endian) into one byte.
const GATHER: u64 = 0x0102_0408_1020_4080;

/// The top bits (pixel >= 128) of 64 bytes, byte i as bit i: one SSE2
/// movemask per 16 bytes (part of every x86-64 CPU).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn pack64(bytes: &[u8; 64]) -> u64 {
    use std::arch::x86_64::{_mm_loadu_si128, _mm_movemask_epi8};
    let mut bits = 0u64;
    for (i, sixteen) in bytes.chunks_exact(16).enumerate() {
        // SAFETY: SSE2 is part of x86-64; the load reads the 16 bytes of
        // `sixteen`.
        #[allow(unsafe_code)]
        let top = unsafe { _mm_movemask_epi8(_mm_loadu_si128(sixteen.as_ptr().cast())) };
        bits |= (top as u64 & 0xffff) << (16 * i);
    }
    bits
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn pack64(bytes: &[u8; 64]) -> u64 {
    pack_any(bytes)
}

/// The top bits of up to 64 bytes, byte i as bit i: eight at a time by a
/// multiply that gathers them, the rest one by one.
fn pack_any(bytes: &[u8]) -> u64 {
    let mut bits = 0u64;
    let mut eight = bytes.chunks_exact(8);
    for (j, chunk) in eight.by_ref().enumerate() {
        let v = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let top = (v & 0x8080_8080_8080_8080) >> 7;
        bits |= (top.wrapping_mul(GATHER) >> 56) << (j * 8);
    }
    let done = bytes.len() / 8 * 8;
    for (j, &v) in eight.remainder().iter().enumerate() {
        bits |= ((v >= 128) as u64) << (done + j);
    }
    bits
}

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
            let mut whole = row.chunks_exact(64);
            for (word, bytes) in words.iter_mut().zip(whole.by_ref()) {
                *word = pack64(bytes.try_into().expect("64 bytes"));
            }
            let rest = whole.remainder();
            if !rest.is_empty() {
                words[w / 64] = pack_any(rest);
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
        self.dilate_disc_using(Isa::best(), r)
    }

    /// [`BitMask::dilate_disc`] with the instruction set `isa`.
    pub fn dilate_disc_using(&self, isa: Isa, r: usize) -> BitMask {
        dilate_disc(isa, self, r)
    }

    /// Dilation by the (2r+1) x (2r+1) square: horizontal by doubling
    /// (log r steps), vertical by van Herk / Gil-Werman (three ORs per word
    /// whatever r is).
    pub fn dilate_square(&self, r: usize) -> BitMask {
        self.dilate_square_using(Isa::best(), r)
    }

    /// [`BitMask::dilate_square`] with the instruction set `isa`.
    pub fn dilate_square_using(&self, isa: Isa, r: usize) -> BitMask {
        dilate_square(isa, self, r)
    }
}

multiversion! {
    fn dilate_disc(src: &BitMask, r: usize) -> BitMask => dilate_disc_body
}

multiversion! {
    fn dilate_square(src: &BitMask, r: usize) -> BitMask => dilate_square_body
}

#[inline(always)]
fn dilate_disc_body(src: &BitMask, r: usize) -> BitMask {
    if r == 0 {
        return src.clone();
    }
    let widths: Vec<usize> = (0..=r).map(|dy| isqrt(r * r - dy * dy)).collect();
    let window = 2 * r + 1;
    let ladder_len = (r + 1) * src.stride;
    // ring[slot] holds the ladder (widths 0..=r) of one source row.
    let mut ring = vec![0u64; window * ladder_len];
    let mut out = BitMask::new(src.width, src.height);
    let tail = src.tail_mask();
    let fill = |ring: &mut [u64], y: usize| {
        let slot = (y % window) * ladder_len;
        let ladder = &mut ring[slot..slot + ladder_len];
        ladder[..src.stride].copy_from_slice(src.row(y));
        for step in 1..=r {
            let (done, rest) = ladder.split_at_mut(step * src.stride);
            dilate_row_by_one(
                &done[(step - 1) * src.stride..],
                &mut rest[..src.stride],
                tail,
            );
        }
    };
    for y in 0..src.height.min(r) {
        fill(&mut ring, y);
    }
    for y in 0..src.height {
        if y + r < src.height {
            fill(&mut ring, y + r);
        }
        let acc = out.row_mut(y);
        let lo = y.saturating_sub(r);
        let hi = (y + r).min(src.height - 1);
        for from in lo..=hi {
            let w = widths[from.abs_diff(y)];
            let at = (from % window) * ladder_len + w * src.stride;
            for (a, &b) in acc.iter_mut().zip(&ring[at..at + src.stride]) {
                *a |= b;
            }
        }
    }
    out
}

#[inline(always)]
fn dilate_square_body(src: &BitMask, r: usize) -> BitMask {
    if r == 0 {
        return src.clone();
    }
    let tail = src.tail_mask();
    // Doubling needs the pixels that spill past the edges, so each row is
    // dilated inside r pixels (rounded up to words) of margin.
    let pad = r.div_ceil(64);
    let mut buf = vec![0u64; src.stride + 2 * pad];
    let mut scratch = buf.clone();
    let mut horizontal = BitMask::new(src.width, src.height);
    for y in 0..src.height {
        buf.fill(0);
        buf[pad..pad + src.stride].copy_from_slice(src.row(y));
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
        row.copy_from_slice(&buf[pad..pad + src.stride]);
        row[src.stride - 1] &= tail;
    }
    vertical_max(&horizontal, r)
}

/// `out = src | src shifted one pixel left | one pixel right`, in three
/// straight passes (no branch per word) so they vectorise.
#[inline(always)]
fn dilate_row_by_one(src: &[u64], out: &mut [u64], tail: u64) {
    let n = src.len();
    for (o, &s) in out.iter_mut().zip(src) {
        *o = s | (s << 1) | (s >> 1);
    }
    // Each word also gains the top pixel of the word before it and the
    // bottom pixel of the word after it.
    for (o, &before) in out[1..].iter_mut().zip(src) {
        *o |= before >> 63;
    }
    for (o, &after) in out.iter_mut().zip(&src[1..]) {
        *o |= after << 63;
    }
    out[n - 1] &= tail;
}

/// `row |= src shifted by s pixels either way`.
#[inline(always)]
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
#[inline(always)]
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
        for w in [1, 7, 63, 64, 65, 130, 256] {
            let m = scatter(w, 5, w as u64);
            assert_eq!(BitMask::from_gray(&m).to_gray(), m, "width {w}");
        }
    }

    #[test]
    fn pixels_from_128_up_are_on() {
        for w in [64u32, 100, 192] {
            let data: Vec<u8> = (0..w * 3).map(|i| (i * 97 % 256) as u8).collect();
            let m = GrayImage::from_raw(w, 3, data.clone()).unwrap();
            let want: Vec<u8> = data
                .iter()
                .map(|&v| if v >= 128 { 255 } else { 0 })
                .collect();
            assert_eq!(
                BitMask::from_gray(&m).to_gray().as_raw(),
                &want,
                "width {w}"
            );
        }
    }

    #[test]
    fn disc_and_square_match_brute_force() {
        for (w, h) in [(70, 40), (129, 9), (5, 5), (23, 61), (64, 64)] {
            let m = scatter(w, h, 42);
            let bits = BitMask::from_gray(&m);
            for r in [1usize, 2, 3, 4, 5, 6, 7, 8, 9, 13, 70] {
                // Every instruction set this CPU runs, portable first.
                for isa in Isa::available() {
                    assert_eq!(
                        bits.dilate_disc_using(isa, r).to_gray(),
                        brute_dilate(&m, r as i64, false),
                        "disc r={r} {w}x{h} {}",
                        isa.name()
                    );
                }
                for isa in Isa::available() {
                    let (got, want) = (
                        bits.dilate_square_using(isa, r).to_gray(),
                        brute_dilate(&m, r as i64, true),
                    );
                    if got != want {
                        let diff: Vec<(usize, usize, u8)> = (0..(w * h) as usize)
                            .filter(|&i| got.as_raw()[i] != want.as_raw()[i])
                            .map(|i| (i % w as usize, i / w as usize, got.as_raw()[i]))
                            .take(10)
                            .collect();
                        panic!("square r={r} {w}x{h} {}: {diff:?}", isa.name());
                    }
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
