//! Properties of the mask operators on many random masks (a fixed-seed
//! generator, so failures reproduce).

use inpaint_imaging::composite::{Corrections, Repainted, composite};
use inpaint_imaging::crop::plan_only_masked;
use inpaint_imaging::distance::squared_distance_to;
use inpaint_imaging::mask::{self, Shape};
use inpaint_imaging::{GrayImage, PixelBox, RgbImage};

/// xorshift64*: small, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A mask of a few random boxes and specks.
fn random_mask(rng: &mut Rng) -> GrayImage {
    let (w, h) = (20 + rng.below(60) as u32, 20 + rng.below(60) as u32);
    let mut parts = vec![GrayImage::filled(w, h, 0)];
    for _ in 0..rng.below(6) {
        let (x, y) = (rng.below(w as u64) as u32, rng.below(h as u64) as u32);
        let bw = 1 + rng.below((w - x) as u64) as u32;
        let bh = 1 + rng.below((h - y) as u64) as u32;
        parts.push(mask::from_box(
            w,
            h,
            PixelBox::new(x, y, bw.min(25), bh.min(25)),
        ));
    }
    mask::union(&parts.iter().collect::<Vec<_>>()).unwrap()
}

fn subset(a: &GrayImage, b: &GrayImage) -> bool {
    a.as_raw().iter().zip(b.as_raw()).all(|(&x, &y)| x <= y)
}

const CASES: u64 = 150;

#[test]
fn closing_contains_the_mask_and_opening_is_inside_it() {
    let mut rng = Rng(0x5eed);
    for _ in 0..CASES {
        let m = random_mask(&mut rng);
        let r = rng.below(12) as i32;
        for shape in [Shape::Ellipse, Shape::Square] {
            let closing = mask::grow_shaped(&mask::grow_shaped(&m, r, shape), -r, shape);
            let opening = mask::grow_shaped(&mask::grow_shaped(&m, -r, shape), r, shape);
            assert!(
                subset(&m, &closing),
                "closing lost pixels (r={r}, {shape:?})"
            );
            assert!(
                subset(&opening, &m),
                "opening added pixels (r={r}, {shape:?})"
            );
            // Grow then shrink again never goes beyond the closing.
            let again = mask::grow_shaped(&mask::grow_shaped(&closing, r, shape), -r, shape);
            assert_eq!(again, closing, "closing is idempotent (r={r}, {shape:?})");
        }
    }
}

#[test]
fn shrink_is_grow_of_the_complement() {
    let mut rng = Rng(0xd0a1);
    for _ in 0..CASES {
        let m = random_mask(&mut rng);
        let r = 1 + rng.below(10) as i32;
        for shape in [Shape::Ellipse, Shape::Square] {
            let shrunk = mask::grow_shaped(&m, -r, shape);
            let dual = mask::invert(&mask::grow_shaped(&mask::invert(&m), r, shape));
            assert_eq!(shrunk, dual, "r={r} {shape:?}");
        }
    }
}

#[test]
fn feather_is_opaque_on_the_mask_and_zero_from_the_radius() {
    let mut rng = Rng(0xfea7);
    for _ in 0..CASES {
        let m = random_mask(&mut rng);
        let r = rng.below(15) as u32;
        let f = mask::feather(&m, r);
        let (w, h) = (m.width() as usize, m.height() as usize);
        let dist = squared_distance_to(w, h, |i| m.as_raw()[i] >= 128);
        for (d2, &v) in dist.iter().zip(f.as_raw()) {
            let d = d2.sqrt();
            if d == 0.0 {
                assert_eq!(v, 255);
            } else if d >= r as f32 {
                assert_eq!(v, 0, "d={d} r={r}");
            } else {
                assert!(v > 0 && v < 255, "d={d} r={r} v={v}");
            }
        }
    }
}

#[test]
fn gaussian_blur_of_a_mask_stays_between_its_extremes() {
    let mut rng = Rng(0xb1b1);
    for _ in 0..CASES / 3 {
        let m = random_mask(&mut rng);
        let sigma = 0.5 + rng.below(80) as f32 / 10.0;
        let b = mask::gaussian_blur(&m, sigma);
        let (lo, hi) = (
            *m.as_raw().iter().min().unwrap(),
            *m.as_raw().iter().max().unwrap(),
        );
        assert!(
            b.as_raw().iter().all(|&v| v >= lo && v <= hi),
            "sigma {sigma}"
        );
    }
}

#[test]
fn composite_leaves_every_unmasked_pixel_equal() {
    let mut rng = Rng(0xc0c0);
    for _ in 0..CASES / 3 {
        let m = random_mask(&mut rng);
        let alpha = mask::feather(&m, rng.below(6) as u32);
        let (w, h) = (m.width(), m.height());
        let original =
            RgbImage::from_raw(w, h, (0..w * h * 3).map(|_| rng.below(256) as u8).collect())
                .unwrap();
        let work = 8 * (1 + rng.below(8) as u32);
        let plans = plan_only_masked(
            std::slice::from_ref(&alpha),
            rng.below(10) as u32,
            work,
            work,
            true,
        );
        let crops: Vec<Repainted> = plans
            .iter()
            .map(|p| Repainted {
                area: p.area,
                image: RgbImage::from_raw(
                    work,
                    work,
                    (0..work * work * 3).map(|_| rng.below(256) as u8).collect(),
                )
                .unwrap(),
                alpha: alpha.crop(p.area),
            })
            .collect();
        let corrections = Corrections {
            color: rng.below(2) == 0,
            seamless: rng.below(2) == 0,
        };
        let out = composite(&original, &crops, corrections);
        for i in 0..(w * h) as usize {
            if alpha.as_raw()[i] == 0 {
                assert_eq!(
                    out.as_raw()[i * 3..i * 3 + 3],
                    original.as_raw()[i * 3..i * 3 + 3]
                );
            }
        }
    }
}
