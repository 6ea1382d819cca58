//! Gaussian blur of masks at a cost that does not depend on sigma: three
//! box blurs per axis (running sums) approximate the Gaussian (W. Wells,
//! "Efficient synthesis of Gaussian filters by cascaded uniform filters",
//! 1986; box widths after P. Kovesi, 2010). Vertical passes run along whole
//! rows (vectorisable); the horizontal ones are vertical passes on the
//! transposed image. Borders replicate the edge pixel.

use crate::buffer::GrayImage;

/// Box passes per axis.
const PASSES: usize = 3;

/// The sigma OpenCV's GaussianBlur picks for a (2r+1)-wide kernel.
pub fn sigma_for_radius(radius: u32) -> f32 {
    0.3 * (radius as f32 - 1.0) + 0.8
}

/// Blurs `src` with a Gaussian of standard deviation `sigma` (<= 0: a copy).
pub fn gaussian_blur(src: &GrayImage, sigma: f32) -> GrayImage {
    if sigma.is_nan() || sigma <= 0.0 {
        return src.clone();
    }
    let (w, h) = (src.width() as usize, src.height() as usize);
    let radii = box_radii(sigma);
    let mut a = src.as_raw().to_vec();
    let mut b = vec![0u8; w * h];
    for &r in &radii {
        box_vertical(&a, &mut b, w, h, r);
        std::mem::swap(&mut a, &mut b);
    }
    transpose(&a, &mut b, w, h);
    std::mem::swap(&mut a, &mut b);
    for &r in &radii {
        box_vertical(&a, &mut b, h, w, r);
        std::mem::swap(&mut a, &mut b);
    }
    transpose(&a, &mut b, h, w);
    GrayImage::from_raw(src.width(), src.height(), b).expect("same size")
}

/// Radii of the three boxes whose cascade has variance sigma^2.
fn box_radii(sigma: f32) -> [usize; PASSES] {
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

/// Mean over rows y-r..=y+r (edge rows repeated), row by row. Sums fit
/// 16 bits up to r = 127, which lets the compiler use 8-lane integer SIMD.
fn box_vertical(src: &[u8], dst: &mut [u8], w: usize, h: usize, r: usize) {
    if r == 0 {
        dst.copy_from_slice(src);
        return;
    }
    if r <= 127 {
        box_vertical_with::<u16>(src, dst, w, h, r);
    } else {
        box_vertical_with::<u32>(src, dst, w, h, r);
    }
}

/// Running column sums of one width.
trait Sum: Copy + Default {
    fn add(self, enter: u8, leave: u8) -> Self;
    /// (self + width / 2) / width, via a reciprocal.
    fn mean(self, half: u32, recip: u32, bits: u32) -> u8;
}

impl Sum for u16 {
    fn add(self, enter: u8, leave: u8) -> Self {
        self + enter as u16 - leave as u16
    }
    fn mean(self, half: u32, recip: u32, bits: u32) -> u8 {
        ((((self + half as u16) as u32) * recip) >> bits).min(255) as u8
    }
}

impl Sum for u32 {
    fn add(self, enter: u8, leave: u8) -> Self {
        self + enter as u32 - leave as u32
    }
    fn mean(self, half: u32, recip: u32, bits: u32) -> u8 {
        (((self + half) as u64 * recip as u64) >> bits).min(255) as u8
    }
}

fn box_vertical_with<S: Sum>(src: &[u8], dst: &mut [u8], w: usize, h: usize, r: usize) {
    let row = |y: isize| {
        let y = y.clamp(0, h as isize - 1) as usize;
        &src[y * w..(y + 1) * w]
    };
    let width = (2 * r + 1) as u32;
    let bits = if size_of::<S>() == 2 { 16 } else { 32 };
    let recip = ((1u64 << bits) / width as u64 + 1) as u32;
    let half = width / 2;
    let mut sums = vec![S::default(); w];
    for dy in -(r as isize)..=(r as isize) {
        for (s, &v) in sums.iter_mut().zip(row(dy)) {
            *s = s.add(v, 0);
        }
    }
    for y in 0..h {
        let out = &mut dst[y * w..(y + 1) * w];
        let enter = row(y as isize + r as isize + 1);
        let leave = row(y as isize - r as isize);
        for (((o, s), &e), &l) in out.iter_mut().zip(sums.iter_mut()).zip(enter).zip(leave) {
            *o = s.mean(half, recip, bits);
            *s = s.add(e, l);
        }
    }
}

/// `dst` (h x w) = `src` (w x h) transposed: 8x8 byte blocks swapped inside
/// u64 registers, the ragged edge pixel by pixel.
fn transpose(src: &[u8], dst: &mut [u8], w: usize, h: usize) {
    let (w8, h8) = (w / 8 * 8, h / 8 * 8);
    for y0 in (0..h8).step_by(8) {
        for x0 in (0..w8).step_by(8) {
            let mut rows: [u64; 8] = std::array::from_fn(|i| {
                let at = (y0 + i) * w + x0;
                u64::from_le_bytes(src[at..at + 8].try_into().expect("8 bytes"))
            });
            transpose8x8(&mut rows);
            for (i, row) in rows.iter().enumerate() {
                let at = (x0 + i) * h + y0;
                dst[at..at + 8].copy_from_slice(&row.to_le_bytes());
            }
        }
    }
    for y in 0..h {
        let x_from = if y < h8 { w8 } else { 0 };
        for x in x_from..w {
            dst[x * h + y] = src[y * w + x];
        }
    }
}

/// Transposes an 8x8 byte matrix held as eight little-endian rows.
fn transpose8x8(x: &mut [u64; 8]) {
    for (step, mask) in [
        (32u32, 0x0000_0000_FFFF_FFFFu64),
        (16, 0x0000_FFFF_0000_FFFF),
        (8, 0x00FF_00FF_00FF_00FF),
    ] {
        let gap = (step / 8) as usize;
        for i in 0..8 {
            if i & gap == 0 {
                let (a, b) = (x[i], x[i + gap]);
                x[i] = (a & mask) | ((b & mask) << step);
                x[i + gap] = ((a >> step) & mask) | (b & !mask);
            }
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

    #[test]
    fn flat_stays_flat_and_values_stay_in_range() {
        let flat = GrayImage::filled(37, 23, 200);
        assert_eq!(gaussian_blur(&flat, 4.0), flat);
        let mut m = GrayImage::filled(64, 48, 0);
        m.as_raw_mut()[24 * 64 + 32] = 255;
        let b = gaussian_blur(&m, 3.0);
        let total: u32 = b.as_raw().iter().map(|&v| v as u32).sum();
        // Mass is kept (up to rounding per pass).
        assert!((total as i64 - 255).abs() < 60, "{total}");
        // Symmetric around the impulse.
        let at = |x: usize, y: usize| b.as_raw()[y * 64 + x];
        assert_eq!(at(30, 24), at(34, 24));
        assert_eq!(at(32, 22), at(32, 26));
        assert!(at(32, 24) > at(35, 24));
    }

    #[test]
    fn transpose_round_trips_at_ragged_sizes() {
        for (w, h) in [(8, 8), (17, 9), (64, 3), (5, 40)] {
            let src: Vec<u8> = (0..w * h).map(|i| (i * 37 % 251) as u8).collect();
            let mut t = vec![0; w * h];
            transpose(&src, &mut t, w, h);
            for y in 0..h {
                for x in 0..w {
                    assert_eq!(t[x * h + y], src[y * w + x]);
                }
            }
            let mut back = vec![0; w * h];
            transpose(&t, &mut back, h, w);
            assert_eq!(back, src);
        }
    }

    #[test]
    fn wide_boxes_use_the_32_bit_path() {
        let mut m = GrayImage::filled(300, 300, 0);
        m.as_raw_mut()[150 * 300 + 150] = 255;
        let flat = GrayImage::filled(300, 300, 255);
        assert_eq!(gaussian_blur(&flat, 90.0), flat);
        assert!(gaussian_blur(&m, 90.0).as_raw().iter().all(|&v| v <= 1));
    }

    #[test]
    fn non_square_images_keep_their_shape() {
        let mut m = GrayImage::filled(50, 10, 0);
        m.as_raw_mut()[5 * 50 + 40] = 255;
        let b = gaussian_blur(&m, 1.5);
        assert_eq!((b.width(), b.height()), (50, 10));
        let peak = b
            .as_raw()
            .iter()
            .enumerate()
            .max_by_key(|(_, v)| **v)
            .unwrap()
            .0;
        assert_eq!(peak, 5 * 50 + 40);
    }
}
