//! Exemplar-based inpainting for textured areas: the hole is filled with
//! patches copied from the known part of the image, found with PatchMatch
//! (Barnes, Shechtman, Finkelstein and Goldman, 2009) and refined coarse to
//! fine by the expectation-maximisation of Wexler, Shechtman and Irani
//! ("Space-Time Completion of Video", 2007): match every patch touching the
//! hole to its nearest known patch, then set each hole pixel to the average
//! of what the overlapping matches say it should be.
//!
//! The coarsest level starts from the image's own hole content (so a
//! prefill or a sketch guides the result); randomness comes from `seed`
//! only, so a seed always gives the same bytes.

use crate::buffer::{GrayImage, RgbImage};
use crate::resize::resize_rgb;

/// Patch half-size: 7x7 patches.
const RADIUS: usize = 3;
/// EM iterations per level, finest level last.
const ITERATIONS_COARSE: usize = 6;
const ITERATIONS_FINE: usize = 3;
/// Stop building the pyramid when the hole's box fits in this many pixels.
const COARSEST_HOLE: usize = 24;

/// Fills every pixel where `hole` > 0 with texture from the rest of the
/// image. Images with no known patch are returned unchanged.
pub fn inpaint(image: &RgbImage, hole: &GrayImage, seed: u64) -> RgbImage {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let holes: Vec<bool> = hole.as_raw().iter().map(|&m| m > 0).collect();
    if !holes.iter().any(|&b| b) || w < 2 * RADIUS + 1 || h < 2 * RADIUS + 1 {
        return image.clone();
    }
    let mut pyramid = vec![Level::new(to_f32(image), holes, w, h)];
    while let Some(next) = pyramid.last().expect("non-empty").down() {
        pyramid.push(next);
    }
    let mut rng = Rng::new(seed);
    // The coarser level's matches, per pixel (NONE where it had none).
    let mut carried: Option<(Vec<u32>, usize, usize)> = None;
    for depth in (0..pyramid.len()).rev() {
        if depth + 1 < pyramid.len() {
            // The finer level's hole starts from the coarser result.
            let coarse = pyramid[depth + 1].to_rgb();
            let level = &mut pyramid[depth];
            let up = resize_rgb(&coarse, level.w as u32, level.h as u32);
            for i in 0..level.w * level.h {
                if level.hole[i] {
                    for c in 0..3 {
                        level.pixels[i * 3 + c] = up.as_raw()[i * 3 + c] as f32;
                    }
                }
            }
        }
        let level = &mut pyramid[depth];
        if level.targets.is_empty() || !level.source.iter().any(|&s| s) {
            carried = None;
            continue;
        }
        let iterations = if depth == 0 && carried.is_some() {
            ITERATIONS_FINE
        } else {
            ITERATIONS_COARSE
        };
        let mut field = level.initial_field(carried.as_ref(), &mut rng);
        for _ in 0..iterations {
            level.improve(&mut field, &mut rng);
            level.vote(&field);
        }
        let mut map = vec![NONE; level.w * level.h];
        for (&t, &s) in level.targets.iter().zip(&field) {
            map[t as usize] = s;
        }
        carried = Some((map, level.w, level.h));
    }
    let finest = &pyramid[0];
    let mut out = image.clone();
    for (i, &is_hole) in finest.hole.iter().enumerate() {
        if is_hole {
            for c in 0..3 {
                out.as_raw_mut()[i * 3 + c] = crate::to_byte(finest.pixels[i * 3 + c]);
            }
        }
    }
    out
}

const NONE: u32 = u32::MAX;

fn to_f32(image: &RgbImage) -> Vec<f32> {
    image.as_raw().iter().map(|&v| v as f32).collect()
}

struct Level {
    w: usize,
    h: usize,
    pixels: Vec<f32>,
    hole: Vec<bool>,
    /// Per pixel: is it the centre of a patch lying wholly in the known area?
    source: Vec<bool>,
    /// Centres of patches that touch the hole (what gets matched), and each
    /// pixel's index among them (NONE if it is not one).
    targets: Vec<u32>,
    target_index: Vec<u32>,
    /// A few source centres to draw random starts from.
    source_list: Vec<u32>,
}

impl Level {
    fn new(pixels: Vec<f32>, hole: Vec<bool>, w: usize, h: usize) -> Self {
        let mut level = Level {
            w,
            h,
            pixels,
            hole,
            source: vec![],
            targets: vec![],
            target_index: vec![],
            source_list: vec![],
        };
        level.index_patches();
        level
    }

    fn index_patches(&mut self) {
        let (w, h, r) = (self.w, self.h, RADIUS);
        // Hole pixels within the patch radius, per pixel (square window).
        let near_hole = window_any(&self.hole, w, h, r);
        self.source = vec![false; w * h];
        self.targets.clear();
        for y in r..h.saturating_sub(r) {
            for x in r..w.saturating_sub(r) {
                let i = y * w + x;
                if near_hole[i] {
                    self.targets.push(i as u32);
                } else {
                    self.source[i] = true;
                    self.source_list.push(i as u32);
                }
            }
        }
        // Hole pixels near the border still need covering patches.
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                if near_hole[i] && (x < r || y < r || x + r >= w || y + r >= h) {
                    let cx = x.clamp(r, w - r - 1);
                    let cy = y.clamp(r, h - r - 1);
                    self.targets.push((cy * w + cx) as u32);
                }
            }
        }
        self.targets.sort_unstable();
        self.targets.dedup();
        self.target_index = vec![NONE; w * h];
        for (k, &t) in self.targets.iter().enumerate() {
            self.target_index[t as usize] = k as u32;
        }
    }

    /// Half-size level, or None when the hole is already small.
    fn down(&self) -> Option<Level> {
        let (x0, y0, x1, y1) = bounds(&self.hole, self.w);
        let (hw, hh) = (x1 - x0 + 1, y1 - y0 + 1);
        let (w, h) = (self.w / 2, self.h / 2);
        if hw.max(hh) <= COARSEST_HOLE || w < 4 * RADIUS || h < 4 * RADIUS {
            return None;
        }
        let image =
            RgbImage::from_raw(self.w as u32, self.h as u32, self.to_bytes()).expect("sized");
        let small = resize_rgb(&image, w as u32, h as u32);
        let mut hole = vec![false; w * h];
        for y in 0..h {
            for x in 0..w {
                hole[y * w + x] =
                    (0..2).any(|dy| (0..2).any(|dx| self.hole[(2 * y + dy) * self.w + 2 * x + dx]));
            }
        }
        let level = Level::new(to_f32(&small), hole, w, h);
        (!level.source_list.is_empty()).then_some(level)
    }

    fn to_bytes(&self) -> Vec<u8> {
        self.pixels.iter().map(|v| crate::to_byte(*v)).collect()
    }

    fn to_rgb(&self) -> RgbImage {
        RgbImage::from_raw(self.w as u32, self.h as u32, self.to_bytes()).expect("sized")
    }

    /// The coarser level's matches scaled up where they are still sources,
    /// random sources elsewhere.
    fn initial_field(&self, coarser: Option<&(Vec<u32>, usize, usize)>, rng: &mut Rng) -> Vec<u32> {
        self.targets
            .iter()
            .map(|&t| {
                let (tx, ty) = (t as usize % self.w, t as usize / self.w);
                let guess = coarser.and_then(|(map, cw, ch)| {
                    let s = map[(ty / 2).min(ch - 1) * cw + (tx / 2).min(cw - 1)];
                    (s != NONE).then(|| {
                        let sx = (s as usize % cw * 2 + tx % 2).min(self.w - 1);
                        let sy = (s as usize / cw * 2 + ty % 2).min(self.h - 1);
                        (sy * self.w + sx) as u32
                    })
                });
                match guess {
                    Some(g) if self.source[g as usize] => g,
                    _ => self.source_list[rng.below(self.source_list.len())],
                }
            })
            .collect()
    }

    /// Sum of squared differences between the patches at `a` and `b`,
    /// giving up once it exceeds `limit`.
    fn distance(&self, a: usize, b: usize, limit: f32) -> f32 {
        let (w, r) = (self.w as isize, RADIUS as isize);
        let mut sum = 0f32;
        for dy in -r..=r {
            let (ra, rb) = ((a as isize + dy * w) * 3, (b as isize + dy * w) * 3);
            for dx in -r..=r {
                let (pa, pb) = ((ra + dx * 3) as usize, (rb + dx * 3) as usize);
                for c in 0..3 {
                    let d = self.pixels[pa + c] - self.pixels[pb + c];
                    sum += d * d;
                }
            }
            if sum > limit {
                return sum;
            }
        }
        sum
    }

    /// One PatchMatch pass over the targets (forward), one backward:
    /// propagation from the scan neighbours, then random search in
    /// shrinking windows.
    fn improve(&self, field: &mut [u32], rng: &mut Rng) {
        let mut best: Vec<f32> = self
            .targets
            .iter()
            .zip(field.iter())
            .map(|(&t, &s)| self.distance(t as usize, s as usize, f32::INFINITY))
            .collect();
        for forward in [true, false] {
            let order: Box<dyn Iterator<Item = usize>> = if forward {
                Box::new(0..self.targets.len())
            } else {
                Box::new((0..self.targets.len()).rev())
            };
            for k in order {
                let t = self.targets[k] as usize;
                let step: isize = if forward { -1 } else { 1 };
                // Propagation: the neighbour's match, shifted by one.
                for offset in [step, step * self.w as isize] {
                    let n = t as isize + offset;
                    if n < 0 || n as usize >= self.target_index.len() {
                        continue;
                    }
                    let nk = self.target_index[n as usize];
                    if nk != NONE {
                        let candidate = field[nk as usize] as isize - offset;
                        if candidate >= 0 {
                            self.try_candidate(t, candidate as u32, k, field, &mut best);
                        }
                    }
                }
                // Random search around the current match.
                let mut radius = self.w.max(self.h) as isize;
                while radius >= 1 {
                    let s = field[k] as usize;
                    let (sx, sy) = ((s % self.w) as isize, (s / self.w) as isize);
                    let cx = sx + rng.between(-radius, radius);
                    let cy = sy + rng.between(-radius, radius);
                    if cx >= 0 && cy >= 0 && (cx as usize) < self.w && (cy as usize) < self.h {
                        self.try_candidate(
                            t,
                            (cy as usize * self.w + cx as usize) as u32,
                            k,
                            field,
                            &mut best,
                        );
                    }
                    radius /= 2;
                }
            }
        }
    }

    fn try_candidate(
        &self,
        target: usize,
        candidate: u32,
        k: usize,
        field: &mut [u32],
        best: &mut [f32],
    ) {
        if candidate == field[k]
            || !self
                .source
                .get(candidate as usize)
                .copied()
                .unwrap_or(false)
        {
            return;
        }
        let d = self.distance(target, candidate as usize, best[k]);
        if d < best[k] {
            best[k] = d;
            field[k] = candidate;
        }
    }

    /// Each hole pixel becomes the mean of what the matched patches
    /// covering it say.
    fn vote(&mut self, field: &[u32]) {
        let (w, r) = (self.w as isize, RADIUS as isize);
        let mut sum = vec![0f32; self.w * self.h * 3];
        let mut count = vec![0f32; self.w * self.h];
        for (&t, &s) in self.targets.iter().zip(field) {
            for dy in -r..=r {
                for dx in -r..=r {
                    let p = (t as isize + dy * w + dx) as usize;
                    if !self.hole[p] {
                        continue;
                    }
                    let q = (s as isize + dy * w + dx) as usize;
                    for c in 0..3 {
                        sum[p * 3 + c] += self.pixels[q * 3 + c];
                    }
                    count[p] += 1.0;
                }
            }
        }
        for (p, &n) in count.iter().enumerate() {
            if n > 0.0 {
                for c in 0..3 {
                    self.pixels[p * 3 + c] = sum[p * 3 + c] / n;
                }
            }
        }
    }
}

/// For each pixel: is any pixel within the (2r+1) square window set?
fn window_any(set: &[bool], w: usize, h: usize, r: usize) -> Vec<bool> {
    let mut rows = vec![false; w * h];
    for y in 0..h {
        let mut last: Option<usize> = None;
        // Distance to the nearest set pixel in the row, both directions.
        for x in 0..w {
            if set[y * w + x] {
                last = Some(x);
            }
            rows[y * w + x] = last.is_some_and(|l| x - l <= r);
        }
        let mut next: Option<usize> = None;
        for x in (0..w).rev() {
            if set[y * w + x] {
                next = Some(x);
            }
            rows[y * w + x] |= next.is_some_and(|n| n - x <= r);
        }
    }
    let mut out = vec![false; w * h];
    for x in 0..w {
        let mut last: Option<usize> = None;
        for y in 0..h {
            if rows[y * w + x] {
                last = Some(y);
            }
            out[y * w + x] = last.is_some_and(|l| y - l <= r);
        }
        let mut next: Option<usize> = None;
        for y in (0..h).rev() {
            if rows[y * w + x] {
                next = Some(y);
            }
            out[y * w + x] |= next.is_some_and(|n| n - y <= r);
        }
    }
    out
}

/// (x0, y0, x1, y1) of the set pixels (inclusive).
fn bounds(set: &[bool], w: usize) -> (usize, usize, usize, usize) {
    let mut b = (usize::MAX, usize::MAX, 0, 0);
    for (i, _) in set.iter().enumerate().filter(|(_, s)| **s) {
        let (x, y) = (i % w, i / w);
        b = (b.0.min(x), b.1.min(y), b.2.max(x), b.3.max(y));
    }
    b
}

/// splitmix64: small, seedable, deterministic.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn between(&mut self, lo: isize, hi: isize) -> isize {
        lo + (self.next() % (hi - lo + 1) as u64) as isize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::PixelBox;
    use crate::mask::from_box;

    /// Vertical stripes, 4 pixels wide: a texture diffusion would blur.
    fn stripes(w: u32, h: u32) -> RgbImage {
        let data = (0..w * h).flat_map(|i| {
            if ((i % w) / 4).is_multiple_of(2) {
                [30, 60, 200]
            } else {
                [220, 180, 40]
            }
        });
        RgbImage::from_raw(w, h, data.collect()).unwrap()
    }

    #[test]
    fn stripes_are_continued_and_known_pixels_stay() {
        let img = stripes(96, 80);
        let hole = from_box(96, 80, PixelBox::new(30, 25, 24, 20));
        let mut damaged = img.clone();
        for i in 0..96 * 80 {
            if hole.as_raw()[i] > 0 {
                damaged.as_raw_mut()[i * 3..i * 3 + 3].copy_from_slice(&[128, 128, 128]);
            }
        }
        let out = inpaint(&damaged, &hole, 7);
        let mut wrong = 0;
        for i in 0..96 * 80 {
            let (a, b) = (
                &out.as_raw()[i * 3..i * 3 + 3],
                &img.as_raw()[i * 3..i * 3 + 3],
            );
            if hole.as_raw()[i] == 0 {
                assert_eq!(a, &damaged.as_raw()[i * 3..i * 3 + 3]);
            } else if a
                .iter()
                .zip(b)
                .any(|(x, y)| (*x as i32 - *y as i32).abs() > 40)
            {
                wrong += 1;
            }
        }
        // The stripes' phase can shift by a column at the seam; the rest is exact texture.
        assert!(
            wrong < 24 * 20 / 5,
            "{wrong} of {} hole pixels off",
            24 * 20
        );
    }

    #[test]
    fn same_seed_same_bytes_another_seed_other_patches() {
        // A random texture: many equally good source patches, so the seed
        // decides which are copied.
        let mut img = RgbImage::filled(64, 64, 0);
        let mut state = 12345u64;
        for v in img.as_raw_mut() {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *v = (state >> 56) as u8;
        }
        let hole = from_box(64, 64, PixelBox::new(20, 20, 16, 16));
        let a = inpaint(&img, &hole, 1);
        assert_eq!(a, inpaint(&img, &hole, 1));
        assert_ne!(a, inpaint(&img, &hole, 2), "the seed changed nothing");
        // Outside the hole nothing moved; inside, the fill is the engine's.
        let w = 64usize;
        for y in 0..64 {
            for x in 0..64 {
                let inside = (20..36).contains(&x) && (20..36).contains(&y);
                let i = (y * w + x) * 3;
                if !inside {
                    assert_eq!(a.as_raw()[i..i + 3], img.as_raw()[i..i + 3]);
                }
            }
        }
    }

    #[test]
    fn all_hole_or_no_hole() {
        let img = stripes(16, 16);
        assert_eq!(inpaint(&img, &GrayImage::filled(16, 16, 255), 0), img);
        assert_eq!(inpaint(&img, &GrayImage::filled(16, 16, 0), 0), img);
    }
}
