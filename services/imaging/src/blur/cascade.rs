//! Gaussian blur as three box blurs per axis (W. Wells, "Efficient synthesis
//! of Gaussian filters by cascaded uniform filters", 1986; box widths after
//! P. Kovesi, 2010), each a running sum, so the cost is the same for any
//! sigma.
//!
//! Down the columns the three passes are streamed over whole rows: each
//! outputs a row as soon as its input holds the rows it needs, so between
//! passes only a ring of rows is kept. Along the rows, bands of rows are
//! transposed into a band-sized buffer, blurred down its columns with the
//! sums in registers, and transposed back.

use crate::cpu::multiversion;
use crate::transpose::transpose;

/// Box passes per axis.
const PASSES: usize = 3;

/// Rows per band of the passes along the rows: 64 sums in registers, and
/// a band of a 4096-pixel row is 256 KiB, within a common L2 cache.
const BAND: usize = 64;

/// Radii of the three boxes whose cascade has variance sigma^2 (some may be
/// 0 for a small sigma: those passes copy).
pub(super) fn box_radii(sigma: f32) -> [usize; PASSES] {
    let n = PASSES as f32;
    let ideal = (12.0 * sigma * sigma / n + 1.0).sqrt();
    let mut lower = ideal.floor() as i64;
    if lower % 2 == 0 {
        lower -= 1;
    }
    let lower = lower.max(1) as f32;
    let m = ((12.0 * sigma * sigma - n * lower * lower - 4.0 * n * lower - 3.0 * n)
        / (-4.0 * lower - 4.0))
        .round();
    std::array::from_fn(|i| {
        let width = if (i as f32) < m { lower } else { lower + 2.0 };
        ((width - 1.0) / 2.0) as usize
    })
}

multiversion! {
    /// `out` = `src` (w x h) blurred by boxes of `radii` down the columns,
    /// then along the rows.
    pub(super) fn blur(src: &[u8], out: &mut [u8], w: usize, h: usize, radii: &[usize; PASSES]) => blur_body
}

#[inline(always)]
fn blur_body(src: &[u8], out: &mut [u8], w: usize, h: usize, radii: &[usize; PASSES]) {
    assert!(src.len() == w * h && out.len() == w * h);
    if radii.iter().all(|&r| r <= 127) {
        blur_with::<u16>(src, out, w, h, radii);
    } else {
        blur_with::<u32>(src, out, w, h, radii);
    }
}

#[inline(always)]
fn blur_with<S: Sum>(src: &[u8], out: &mut [u8], w: usize, h: usize, radii: &[usize; PASSES]) {
    let boxes: Vec<usize> = radii.iter().copied().filter(|&r| r > 0).collect();
    passes_streamed::<S>(src, out, w, h, &boxes);
    let mut t = vec![0u8; BAND * w];
    let mut scratch = vec![0u8; BAND * w];
    for y0 in (0..h).step_by(BAND) {
        let rows = y0..(y0 + BAND).min(h);
        let band = rows.len();
        let (t, scratch) = (&mut t[..band * w], &mut scratch[..band * w]);
        let rows = &mut out[rows.start * w..rows.end * w];
        transpose(rows, t, w, band);
        // Ping-pong between the two buffers; the result ends in `t`.
        for (i, &r) in boxes.iter().enumerate() {
            let (from, to) = if i % 2 == 0 {
                (&*t, &mut *scratch)
            } else {
                (&*scratch, &mut *t)
            };
            if band == BAND {
                band_pass::<S, BAND>(from, to, w, r);
            } else {
                band_pass_any::<S>(from, to, band, w, r);
            }
        }
        if boxes.len() % 2 == 1 {
            t.copy_from_slice(scratch);
        }
        transpose(t, rows, band, w);
    }
}

/// Running column sums: 16 bits while a box holds at most 255 bytes (the
/// sum plus half the width stays below 2^16), 32 beyond.
trait Sum: Copy + Default {
    /// self + enter - leave.
    fn slide(self, enter: u8, leave: u8) -> Self;
    /// A box's mean, rounded half up, exactly: a multiply by the width's
    /// reciprocal gives the quotient or one less, and the remainder says
    /// which (no division in the inner loop).
    fn mean(self, d: Divisor) -> u8;
}

/// A box width and its reciprocal, floor(2^bits / width) for the sums'
/// bits.
#[derive(Clone, Copy)]
struct Divisor {
    width: u32,
    recip: u32,
}

impl Divisor {
    fn new<S>(width: usize) -> Divisor {
        let bits = 8 * size_of::<S>() as u32;
        Divisor {
            width: width as u32,
            recip: ((1u64 << bits) / width as u64) as u32,
        }
    }
}

impl Sum for u16 {
    #[inline(always)]
    fn slide(self, enter: u8, leave: u8) -> Self {
        self + enter as u16 - leave as u16
    }
    /// Multiplies keep to 16-bit lanes (the high half of a product is one
    /// instruction per 16 lanes with AVX2).
    #[inline(always)]
    fn mean(self, d: Divisor) -> u8 {
        let (width, recip) = (d.width as u16, d.recip as u16);
        let n = self + width / 2;
        let q = ((n as u32 * recip as u32) >> 16) as u16;
        let q = q + (n.wrapping_sub(q.wrapping_mul(width)) >= width) as u16;
        q.min(255) as u8
    }
}

impl Sum for u32 {
    #[inline(always)]
    fn slide(self, enter: u8, leave: u8) -> Self {
        self + enter as u32 - leave as u32
    }
    #[inline(always)]
    fn mean(self, d: Divisor) -> u8 {
        let n = self + d.width / 2;
        let q = ((n as u64 * d.recip as u64) >> 32) as u32;
        let q = q + (n.wrapping_sub(q.wrapping_mul(d.width)) >= d.width) as u32;
        q.min(255) as u8
    }
}

/// One box pass of a streamed cascade: its running column sums and the next
/// row it outputs.
struct StreamedPass<S> {
    r: usize,
    divisor: Divisor,
    sums: Vec<S>,
    next: usize,
}

impl<S: Sum> StreamedPass<S> {
    /// Whether `available` rows of its input let it output its next row (it
    /// also needs the row entering the sums after it).
    #[inline(always)]
    fn ready(&self, available: usize, h: usize) -> bool {
        self.next < h && available >= (self.next + self.r + 2).min(h)
    }

    /// Outputs row `self.next` into `out` and slides the sums down a row.
    #[inline(always)]
    fn step<'a>(&mut self, input: impl Fn(usize) -> &'a [u8], h: usize, out: &mut [u8]) {
        let (y, r) = (self.next as isize, self.r as isize);
        let row = |j: isize| input(j.clamp(0, h as isize - 1) as usize);
        if y == 0 {
            self.sums.fill(S::default());
            for j in -r..=r {
                for (s, &v) in self.sums.iter_mut().zip(row(j)) {
                    *s = s.slide(v, 0);
                }
            }
        }
        let (enter, leave, d) = (row(y + r + 1), row(y - r), self.divisor);
        for (((o, s), &e), &l) in out
            .iter_mut()
            .zip(self.sums.iter_mut())
            .zip(enter)
            .zip(leave)
        {
            *o = s.mean(d);
            *s = s.slide(e, l);
        }
        self.next += 1;
    }
}

/// Box passes of `radii` (none 0) down the columns of `src` (w x h) into
/// `dst`, streamed: the last pass that can output a row does, so the rows
/// between passes fit rings of 2r + 2 rows.
#[inline(always)]
fn passes_streamed<S: Sum>(src: &[u8], dst: &mut [u8], w: usize, h: usize, radii: &[usize]) {
    let Some(last) = radii.len().checked_sub(1) else {
        dst.copy_from_slice(src);
        return;
    };
    let mut passes: Vec<StreamedPass<S>> = radii
        .iter()
        .map(|&r| StreamedPass {
            r,
            divisor: Divisor::new::<S>(2 * r + 1),
            sums: vec![S::default(); w],
            next: 0,
        })
        .collect();
    // rings[k]: the input rows of pass k + 1, row j in slot j % slots[k].
    let slots: Vec<usize> = radii[1..].iter().map(|&r| 2 * r + 2).collect();
    let mut rings: Vec<Vec<u8>> = slots.iter().map(|&n| vec![0u8; n * w]).collect();
    let at = |j: usize, slots: usize| (j % slots) * w..(j % slots + 1) * w;
    loop {
        let ready = (0..=last).rev().find(|&k| {
            let available = if k == 0 { h } else { passes[k - 1].next };
            passes[k].ready(available, h)
        });
        let Some(k) = ready else { break };
        let (before, after) = rings.split_at_mut(k);
        let y = passes[k].next;
        let out = if k == last {
            &mut dst[y * w..(y + 1) * w]
        } else {
            &mut after[0][at(y, slots[k])]
        };
        if k == 0 {
            passes[0].step(|j| &src[j * w..(j + 1) * w], h, out);
        } else {
            let ring = &before[k - 1];
            passes[k].step(|j| &ring[at(j, slots[k - 1])], h, out);
        }
    }
}

/// One box pass of radius r down the N columns of a packed band (`h` rows
/// of N bytes): the N running sums stay in registers.
#[inline(always)]
fn band_pass<S: Sum, const N: usize>(src: &[u8], dst: &mut [u8], h: usize, r: usize) {
    let row = |y: isize| -> &[u8; N] {
        let y = y.clamp(0, h as isize - 1) as usize;
        src[y * N..(y + 1) * N].try_into().expect("band row")
    };
    let d = Divisor::new::<S>(2 * r + 1);
    let mut sums = [S::default(); N];
    for j in -(r as isize)..=(r as isize) {
        let add = row(j);
        for i in 0..N {
            sums[i] = sums[i].slide(add[i], 0);
        }
    }
    for y in 0..h {
        let (enter, leave) = (row((y + r + 1) as isize), row(y as isize - r as isize));
        let out: &mut [u8; N] = (&mut dst[y * N..(y + 1) * N]).try_into().expect("band row");
        for i in 0..N {
            out[i] = sums[i].mean(d);
            sums[i] = sums[i].slide(enter[i], leave[i]);
        }
    }
}

/// [`band_pass`] for a band of any width (the last, narrower one).
#[inline(always)]
fn band_pass_any<S: Sum>(src: &[u8], dst: &mut [u8], width: usize, h: usize, r: usize) {
    let row = |y: isize| {
        let y = y.clamp(0, h as isize - 1) as usize;
        &src[y * width..(y + 1) * width]
    };
    let d = Divisor::new::<S>(2 * r + 1);
    let mut sums = vec![S::default(); width];
    for j in -(r as isize)..=(r as isize) {
        for (s, &v) in sums.iter_mut().zip(row(j)) {
            *s = s.slide(v, 0);
        }
    }
    for y in 0..h {
        let (enter, leave) = (row((y + r + 1) as isize), row(y as isize - r as isize));
        let out = &mut dst[y * width..(y + 1) * width];
        for (((o, s), &e), &l) in out.iter_mut().zip(sums.iter_mut()).zip(enter).zip(leave) {
            *o = s.mean(d);
            *s = s.slide(e, l);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_cascade_has_the_right_variance() {
        for sigma in [0.8f32, 2.0, 5.3, 19.7] {
            let var: f32 = box_radii(sigma)
                .iter()
                .map(|&r| ((2 * r + 1).pow(2) - 1) as f32 / 12.0)
                .sum();
            assert!(
                (var.sqrt() - sigma).abs() / sigma < 0.15,
                "sigma {sigma}: got {}",
                var.sqrt()
            );
        }
    }

    /// Box means one pass at a time over whole images, clamped at the
    /// edges, rounded half up.
    fn reference(src: &[u8], w: usize, h: usize, radii: &[usize; PASSES]) -> Vec<u8> {
        let pass = |data: &[u8], r: usize, down: bool| -> Vec<u8> {
            let r = r as isize;
            let mut out = vec![0u8; w * h];
            for y in 0..h as isize {
                for x in 0..w as isize {
                    let mut sum = 0u32;
                    for k in -r..=r {
                        let (sx, sy) = if down { (x, y + k) } else { (x + k, y) };
                        let (sx, sy) = (sx.clamp(0, w as isize - 1), sy.clamp(0, h as isize - 1));
                        sum += data[(sy * w as isize + sx) as usize] as u32;
                    }
                    let width = (2 * r + 1) as u32;
                    out[(y * w as isize + x) as usize] = ((sum + width / 2) / width) as u8;
                }
            }
            out
        };
        let mut data = src.to_vec();
        for down in [true, false] {
            for &r in radii {
                data = pass(&data, r, down);
            }
        }
        data
    }

    #[test]
    fn matches_box_means_pass_by_pass() {
        // Sizes around the band width, radii with a copy pass, and boxes
        // wider than 255 rows (32-bit sums).
        for (w, h, radii) in [
            (1, 1, [1, 2, 2]),
            (70, 33, [3, 4, 4]),
            (33, 130, [0, 0, 1]),
            (65, 64, [12, 13, 13]),
            (20, 300, [140, 140, 141]),
        ] {
            let src = super::super::test_bytes(w, h);
            let want = reference(&src, w, h, &radii);
            for isa in crate::cpu::Isa::available() {
                let mut out = vec![0u8; w * h];
                blur(isa, &src, &mut out, w, h, &radii);
                assert!(out == want, "{w}x{h} radii {radii:?} {}", isa.name());
            }
        }
    }
}
