//! Gaussian blur of masks. Small kernels are convolved directly (separable,
//! 8.8 fixed point, whole rows at a time so the compiler vectorises them).
//! Beyond [`DIRECT_MAX_RADIUS`] the cost stops growing with sigma: three box
//! blurs per axis (running sums) approximate the Gaussian (W. Wells,
//! "Efficient synthesis of Gaussian filters by cascaded uniform filters",
//! 1986; box widths after P. Kovesi, 2010), the horizontal ones as vertical
//! passes on the transposed image. Borders replicate the edge pixel.

use crate::buffer::GrayImage;

/// Box passes per axis.
const PASSES: usize = 3;

/// The sigma OpenCV's GaussianBlur picks for a (2r+1)-wide kernel.
pub fn sigma_for_radius(radius: u32) -> f32 {
    0.3 * (radius as f32 - 1.0) + 0.8
}

/// Largest kernel radius convolved directly; wider ones use the box cascade,
/// whose cost is the same for any sigma.
pub const DIRECT_MAX_RADIUS: usize = 12;

/// Blurs `src` with a Gaussian of standard deviation `sigma` (<= 0: a copy),
/// kernel cut at 3 sigma.
pub fn gaussian_blur(src: &GrayImage, sigma: f32) -> GrayImage {
    gaussian_blur_with_radius(src, sigma, (3.0 * sigma).ceil().max(1.0) as usize)
}

/// Blurs `src` with a Gaussian of standard deviation `sigma` whose kernel
/// spans `radius` pixels each side (OpenCV's GaussianBlur with ksize
/// 2 * radius + 1).
pub fn gaussian_blur_with_radius(src: &GrayImage, sigma: f32, radius: usize) -> GrayImage {
    if sigma.is_nan() || sigma <= 0.0 || radius == 0 {
        return src.clone();
    }
    if radius <= DIRECT_MAX_RADIUS {
        return convolve_separable(src, &kernel(sigma, radius));
    }
    box_cascade(src, sigma)
}

/// Gaussian weights for offsets -radius..=radius in 8.8 fixed point,
/// summing to exactly 256.
fn kernel(sigma: f32, radius: usize) -> Vec<u16> {
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

/// Horizontal then vertical pass with `weights` (sum 256), rounding to 8 bits
/// after each.
fn convolve_separable(src: &GrayImage, weights: &[u16]) -> GrayImage {
    let (w, h) = (src.width() as usize, src.height() as usize);
    let r = weights.len() / 2;
    let data = src.as_raw();
    let mut horizontal = vec![0u8; w * h];
    let mut padded = vec![0u8; w + 2 * r];
    let mut acc = vec![0u16; w];
    for y in 0..h {
        let row = &data[y * w..(y + 1) * w];
        padded[..r].fill(row[0]);
        padded[r..r + w].copy_from_slice(row);
        padded[r + w..].fill(row[w - 1]);
        acc.fill(128);
        for (k, &wk) in weights.iter().enumerate() {
            for (a, &v) in acc.iter_mut().zip(&padded[k..k + w]) {
                *a += wk * v as u16;
            }
        }
        for (o, &a) in horizontal[y * w..(y + 1) * w].iter_mut().zip(&acc) {
            *o = (a >> 8) as u8;
        }
    }
    let mut out = vec![0u8; w * h];
    for y in 0..h {
        acc.fill(128);
        for (k, &wk) in weights.iter().enumerate() {
            let sy = (y as isize + k as isize - r as isize).clamp(0, h as isize - 1) as usize;
            for (a, &v) in acc.iter_mut().zip(&horizontal[sy * w..(sy + 1) * w]) {
                *a += wk * v as u16;
            }
        }
        for (o, &a) in out[y * w..(y + 1) * w].iter_mut().zip(&acc) {
            *o = (a >> 8) as u8;
        }
    }
    GrayImage::from_raw(src.width(), src.height(), out).expect("same size")
}

fn box_cascade(src: &GrayImage, sigma: f32) -> GrayImage {
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
    fn direct_and_cascade_agree() {
        let mut m = GrayImage::filled(90, 70, 0);
        for (i, v) in m.as_raw_mut().iter_mut().enumerate() {
            if (i / 90 / 10 + i % 90 / 10) % 2 == 0 {
                *v = 255;
            }
        }
        let sigma = 3.5;
        let direct = convolve_separable(&m, &kernel(sigma, 11));
        let cascade = box_cascade(&m, sigma);
        let worst = direct
            .as_raw()
            .iter()
            .zip(cascade.as_raw())
            .map(|(a, b)| (*a as i32 - *b as i32).abs())
            .max()
            .unwrap();
        assert!(worst <= 16, "worst difference {worst}");
    }

    #[test]
    fn kernel_sums_to_one() {
        for (sigma, r) in [(0.8f32, 1usize), (1.7, 4), (5.0, 12)] {
            let k = kernel(sigma, r);
            assert_eq!(k.iter().map(|&v| v as u32).sum::<u32>(), 256);
            assert_eq!(k.len(), 2 * r + 1);
            assert_eq!(k[0], k[2 * r]);
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
