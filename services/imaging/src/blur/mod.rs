//! Gaussian blur of masks. Small kernels are convolved directly
//! ([`direct`]); beyond [`DIRECT_MAX_RADIUS`] the cost stops growing with
//! sigma: three box blurs per axis approximate the Gaussian ([`cascade`]).
//! Borders replicate the edge pixel. Both keep their working rows small
//! enough for the CPU's caches (the result is the only full-size buffer)
//! and run with the instruction set [`Isa::best`] picks; every instruction
//! set gives the same bytes.

mod cascade;
mod direct;

use crate::buffer::GrayImage;
use crate::cpu::Isa;

/// The sigma OpenCV's GaussianBlur picks for a (2r+1)-wide kernel.
pub fn sigma_for_radius(radius: u32) -> f32 {
    0.3 * (radius as f32 - 1.0) + 0.8
}

/// Largest kernel radius convolved directly; wider ones use the box cascade,
/// whose cost is the same for any sigma.
pub const DIRECT_MAX_RADIUS: usize = direct::MAX_RADIUS;

/// Blurs `src` with a Gaussian of standard deviation `sigma` (<= 0: a copy),
/// kernel cut at 3 sigma.
pub fn gaussian_blur(src: &GrayImage, sigma: f32) -> GrayImage {
    gaussian_blur_with_radius(src, sigma, (3.0 * sigma).ceil().max(1.0) as usize)
}

/// Blurs `src` with a Gaussian of standard deviation `sigma` whose kernel
/// spans `radius` pixels each side (OpenCV's GaussianBlur with ksize
/// 2 * radius + 1).
pub fn gaussian_blur_with_radius(src: &GrayImage, sigma: f32, radius: usize) -> GrayImage {
    gaussian_blur_using(Isa::best(), src, sigma, radius)
}

/// [`gaussian_blur_with_radius`] with the instruction set `isa`.
pub fn gaussian_blur_using(isa: Isa, src: &GrayImage, sigma: f32, radius: usize) -> GrayImage {
    if sigma.is_nan() || sigma <= 0.0 || radius == 0 {
        return src.clone();
    }
    let (w, h) = (src.width() as usize, src.height() as usize);
    let mut out = vec![0u8; w * h];
    if radius <= DIRECT_MAX_RADIUS {
        direct::convolve(
            isa,
            src.as_raw(),
            &mut out,
            w,
            h,
            &direct::kernel(sigma, radius),
        );
    } else {
        cascade::blur(
            isa,
            src.as_raw(),
            &mut out,
            w,
            h,
            &cascade::box_radii(sigma),
        );
    }
    GrayImage::from_raw(src.width(), src.height(), out).expect("same size")
}

/// Bytes of a mask-like test image: runs of 255 among varied greys.
#[cfg(test)]
fn test_bytes(w: usize, h: usize) -> Vec<u8> {
    (0..w * h)
        .map(|i| {
            if (i * 7919) % 13 < 5 {
                255
            } else {
                (i * 31 % 256) as u8
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A mask like the service's: solid shapes, hard edges, some noise.
    fn shapes(w: u32, h: u32, seed: u64) -> GrayImage {
        let mut state = seed;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u32
        };
        let mut m = GrayImage::filled(w, h, 0);
        for _ in 0..6 {
            let (cx, cy, r) = (next() % w, next() % h, 1 + next() % (w.max(h) / 3 + 1));
            for y in 0..h {
                for x in 0..w {
                    let (dx, dy) = (x as i64 - cx as i64, y as i64 - cy as i64);
                    if dx * dx + dy * dy <= (r * r) as i64 {
                        m.as_raw_mut()[(y * w + x) as usize] = 255;
                    }
                }
            }
        }
        for _ in 0..(w * h / 20) {
            let at = (next() % (w * h)) as usize;
            m.as_raw_mut()[at] = next() as u8;
        }
        m
    }

    #[test]
    fn every_instruction_set_gives_the_same_bytes() {
        let isas = Isa::available();
        if isas.len() == 1 {
            eprintln!("only the portable kernels run on this CPU");
        }
        // Sizes around the lane and band widths, both blur methods, and a
        // box wide enough for 32-bit sums.
        for (i, (w, h)) in [(1, 1), (31, 7), (33, 65), (64, 64), (97, 130), (300, 129)]
            .into_iter()
            .enumerate()
        {
            let m = shapes(w, h, i as u64);
            for radius in [1usize, 4, 12, 13, 40, 900] {
                let sigma = sigma_for_radius(radius as u32);
                let portable = gaussian_blur_using(Isa::PORTABLE, &m, sigma, radius);
                for &isa in &isas[1..] {
                    assert!(
                        gaussian_blur_using(isa, &m, sigma, radius) == portable,
                        "{w}x{h} radius {radius}: {} differs from portable",
                        isa.name()
                    );
                }
            }
        }
    }

    #[test]
    fn flat_stays_flat_and_values_stay_in_range() {
        let flat = GrayImage::filled(37, 23, 200);
        assert_eq!(gaussian_blur(&flat, 4.0), flat);
        assert_eq!(gaussian_blur(&flat, 40.0), flat);
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
    fn wide_boxes_use_32_bit_sums() {
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

    #[test]
    fn direct_and_cascade_agree() {
        let mut m = GrayImage::filled(90, 70, 0);
        for (i, v) in m.as_raw_mut().iter_mut().enumerate() {
            if (i / 90 / 10 + i % 90 / 10) % 2 == 0 {
                *v = 255;
            }
        }
        let sigma = 3.5;
        // Radius 11 is convolved directly, 13 goes through the cascade.
        let direct = gaussian_blur_with_radius(&m, sigma, 11);
        let cascade = gaussian_blur_with_radius(&m, sigma, 13);
        let worst = direct
            .as_raw()
            .iter()
            .zip(cascade.as_raw())
            .map(|(a, b)| (*a as i32 - *b as i32).abs())
            .max()
            .unwrap();
        assert!(worst <= 16, "worst difference {worst}");
    }
}
