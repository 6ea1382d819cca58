//! A rotated square region of an image (as MediaPipe's landmark models take
//! their input): cut out upright at a model's size, model points mapped
//! back, and the mask that a set of points outlines.

use inpaint_imaging::{GrayImage, RgbImage, mask};

/// A square of `side` pixels centred at (`cx`, `cy`), turned by
/// `rotation` radians (clockwise on screen).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Roi {
    pub cx: f32,
    pub cy: f32,
    pub side: f32,
    pub rotation: f32,
}

impl Roi {
    /// Maps a point of the square's own frame (-0.5..0.5, upright) to
    /// image pixels.
    pub fn to_image(&self, x: f32, y: f32) -> (f32, f32) {
        let (s, c) = self.rotation.sin_cos();
        (
            self.cx + self.side * (c * x - s * y),
            self.cy + self.side * (s * x + c * y),
        )
    }

    /// The square cut out upright at `size` x `size`: NHWC RGB in 0..1,
    /// bilinear, pixels past the image's edge repeat the edge.
    pub fn crop(&self, image: &RgbImage, size: usize) -> Vec<f32> {
        let (w, h) = (image.width() as usize, image.height() as usize);
        let src = image.as_raw();
        let at = |x: usize, y: usize, c: usize| src[3 * (y * w + x) + c] as f32;
        let mut out = Vec::with_capacity(size * size * 3);
        let n = size as f32;
        for v in 0..size {
            for u in 0..size {
                let (px, py) =
                    self.to_image((u as f32 + 0.5) / n - 0.5, (v as f32 + 0.5) / n - 0.5);
                // Bilinear between pixel centres, clamped to the image.
                let fx = (px - 0.5).clamp(0.0, (w - 1) as f32);
                let fy = (py - 0.5).clamp(0.0, (h - 1) as f32);
                let (x0, y0) = (fx.floor() as usize, fy.floor() as usize);
                let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
                let (tx, ty) = (fx - x0 as f32, fy - y0 as f32);
                for c in 0..3 {
                    let top = at(x0, y0, c) * (1.0 - tx) + at(x1, y0, c) * tx;
                    let bottom = at(x0, y1, c) * (1.0 - tx) + at(x1, y1, c) * tx;
                    out.push((top * (1.0 - ty) + bottom * ty) / 255.0);
                }
            }
        }
        out
    }

    /// A model's points (x, y in the crop's `size` pixels, then `stride -
    /// 2` more values each) in image pixels.
    pub fn project(&self, raw: &[f32], size: usize, stride: usize) -> Vec<(f32, f32)> {
        let n = size as f32;
        raw.chunks_exact(stride)
            .map(|p| self.to_image(p[0] / n - 0.5, p[1] / n - 0.5))
            .collect()
    }

    /// Whether pixel centre (x, y) lies inside the square.
    pub fn contains(&self, x: f32, y: f32) -> bool {
        let (dx, dy) = (x - self.cx, y - self.cy);
        let (s, c) = self.rotation.sin_cos();
        let (u, v) = (dx * c + dy * s, -dx * s + dy * c);
        u.abs() <= self.side / 2.0 && v.abs() <= self.side / 2.0
    }

    /// The axis-aligned bounds (x0, y0, x1, y1) of the square.
    pub fn bounds(&self) -> (f32, f32, f32, f32) {
        let half = self.side / 2.0 * (self.rotation.cos().abs() + self.rotation.sin().abs());
        (
            self.cx - half,
            self.cy - half,
            self.cx + half,
            self.cy + half,
        )
    }
}

/// The convex hull of `points` filled, grown by `margin` times the hull's
/// longer side (at least 2 pixels), in a `width` x `height` image.
pub fn hull_mask(points: &[(f32, f32)], margin: f32, width: u32, height: u32) -> GrayImage {
    let hull = convex_hull(points);
    let mut m = GrayImage::filled(width, height, 0);
    let (x0, y0, x1, y1) = hull.iter().fold(
        (f32::MAX, f32::MAX, f32::MIN, f32::MIN),
        |(a, b, c, d), &(x, y)| (a.min(x), b.min(y), c.max(x), d.max(y)),
    );
    let xs = (x0.floor().max(0.0) as u32)..(x1.ceil().min(width as f32).max(0.0) as u32);
    let ys = (y0.floor().max(0.0) as u32)..(y1.ceil().min(height as f32).max(0.0) as u32);
    for y in ys {
        for x in xs.clone() {
            if inside(&hull, x as f32 + 0.5, y as f32 + 0.5) {
                m.as_raw_mut()[(y * width + x) as usize] = 255;
            }
        }
    }
    let grow = ((x1 - x0).max(y1 - y0) * margin).round().max(2.0) as i32;
    mask::grow(&m, grow)
}

fn cross(o: (f32, f32), a: (f32, f32), b: (f32, f32)) -> f32 {
    (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
}

/// Andrew's monotone chain; counter-clockwise in maths axes.
fn convex_hull(points: &[(f32, f32)]) -> Vec<(f32, f32)> {
    let mut p = points.to_vec();
    p.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    p.dedup();
    if p.len() < 3 {
        return p;
    }
    let mut hull: Vec<(f32, f32)> = vec![];
    for pass in 0..2 {
        let start = hull.len();
        let points: Box<dyn Iterator<Item = &(f32, f32)>> = if pass == 0 {
            Box::new(p.iter())
        } else {
            Box::new(p.iter().rev())
        };
        for &q in points {
            while hull.len() >= start + 2
                && cross(hull[hull.len() - 2], hull[hull.len() - 1], q) <= 0.0
            {
                hull.pop();
            }
            hull.push(q);
        }
        hull.pop();
    }
    hull
}

fn inside(hull: &[(f32, f32)], x: f32, y: f32) -> bool {
    if hull.len() < 3 {
        return false;
    }
    (0..hull.len()).all(|i| cross(hull[i], hull[(i + 1) % hull.len()], (x, y)) >= 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roi(rotation: f32) -> Roi {
        Roi {
            cx: 50.0,
            cy: 40.0,
            side: 20.0,
            rotation,
        }
    }

    #[test]
    fn projection_turns_and_scales_around_the_centre() {
        // The crop's centre is the square's centre; its top middle is
        // half a side above it, or to the right when turned a quarter.
        let raw = [112.0, 112.0, 0.0, 112.0, 0.0, 0.0];
        let p = roi(0.0).project(&raw, 224, 3);
        assert_eq!(p, vec![(50.0, 40.0), (50.0, 30.0)]);
        let p = roi(std::f32::consts::FRAC_PI_2).project(&raw, 224, 3);
        assert!((p[1].0 - 60.0).abs() < 1e-4 && (p[1].1 - 40.0).abs() < 1e-4);
    }

    #[test]
    fn the_crop_samples_the_square() {
        // Left half black, right half white: an upright crop is black then
        // white; turned a half, white then black.
        let (w, h) = (100u32, 80u32);
        let data = (0..h)
            .flat_map(|_| (0..w).flat_map(|x| [if x < 50 { 0u8 } else { 255 }; 3]))
            .collect();
        let image = RgbImage::from_raw(w, h, data).unwrap();
        let left = |t: &[f32]| t[3 * (112 * 224 + 10)];
        let right = |t: &[f32]| t[3 * (112 * 224 + 213)];
        let upright = roi(0.0).crop(&image, 224);
        assert_eq!((left(&upright), right(&upright)), (0.0, 1.0));
        let turned = roi(std::f32::consts::PI).crop(&image, 224);
        assert_eq!((left(&turned), right(&turned)), (1.0, 0.0));
    }

    #[test]
    fn the_mask_covers_the_hull_and_a_margin() {
        let points = [
            (10.0, 10.0),
            (40.0, 10.0),
            (40.0, 30.0),
            (10.0, 30.0),
            (25.0, 20.0),
        ];
        let m = hull_mask(&points, 0.1, 60, 50);
        let on = |x: u32, y: u32| m.as_raw()[(y * 60 + x) as usize] > 0;
        assert!(on(25, 20) && on(11, 11) && on(39, 29));
        assert!(on(8, 20), "3 px margin (30 px / 10)");
        assert!(!on(4, 20) && !on(55, 45));
        assert_eq!(
            convex_hull(&points).len(),
            4,
            "the inner point is not on the hull"
        );
    }

    #[test]
    fn bounds_of_a_turned_square() {
        let (x0, y0, x1, y1) = roi(std::f32::consts::FRAC_PI_4).bounds();
        let half = 10.0 * std::f32::consts::SQRT_2;
        assert!((x1 - x0 - 2.0 * half).abs() < 1e-4 && (y1 - y0 - 2.0 * half).abs() < 1e-4);
        assert!(roi(0.3).contains(50.0, 40.0) && !roi(0.0).contains(61.0, 40.0));
    }
}
