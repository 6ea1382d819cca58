//! Exact squared Euclidean distance transform (Felzenszwalb & Huttenlocher,
//! "Distance Transforms of Sampled Functions", 2012): two 1-D lower-envelope
//! passes, linear in the pixel count whatever the distances are. Grow, shrink
//! and feather are built on it, so their cost does not depend on the radius.

/// Stands for "no feature pixel anywhere"; larger than any real squared distance.
const FAR: f32 = 1e20;

/// For every pixel, the squared distance to the nearest pixel for which
/// `is_feature` holds (0 on feature pixels, `f32::INFINITY`-like 1e20 when
/// there is none).
pub fn squared_distance_to(
    width: usize,
    height: usize,
    is_feature: impl Fn(usize) -> bool,
) -> Vec<f32> {
    let mut dist: Vec<f32> = (0..width * height)
        .map(|i| if is_feature(i) { 0.0 } else { FAR })
        .collect();
    let longest = width.max(height);
    let mut scratch = Envelope::with_capacity(longest);
    let mut line = vec![0f32; longest];

    // Columns first, then rows over the column results.
    for x in 0..width {
        for y in 0..height {
            line[y] = dist[y * width + x];
        }
        scratch.transform(&line[..height]);
        for y in 0..height {
            dist[y * width + x] = scratch.out[y];
        }
    }
    for y in 0..height {
        let row = &mut dist[y * width..(y + 1) * width];
        scratch.transform(row);
        row.copy_from_slice(&scratch.out[..width]);
    }
    dist
}

/// Scratch space for the 1-D transform, reused across lines.
struct Envelope {
    /// Positions of the parabolas in the lower envelope.
    vertex: Vec<usize>,
    /// Boundaries between consecutive parabolas.
    bound: Vec<f32>,
    out: Vec<f32>,
}

impl Envelope {
    fn with_capacity(n: usize) -> Self {
        Self {
            vertex: vec![0; n],
            bound: vec![0.0; n + 1],
            out: vec![0.0; n],
        }
    }

    fn transform(&mut self, f: &[f32]) {
        let n = f.len();
        if n == 0 {
            return;
        }
        // Only finite samples start parabolas; skip leading FAR ones.
        let Some(first) = f.iter().position(|&v| v < FAR) else {
            self.out[..n].fill(FAR);
            return;
        };
        let mut k = 0usize;
        self.vertex[0] = first;
        self.bound[0] = f32::NEG_INFINITY;
        self.bound[1] = f32::INFINITY;
        for q in first + 1..n {
            if f[q] >= FAR {
                continue;
            }
            let fq = f[q] + (q * q) as f32;
            loop {
                let v = self.vertex[k];
                let s = (fq - (f[v] + (v * v) as f32)) / (2.0 * (q as f32 - v as f32));
                // bound[0] is -inf, so this never steps below the first parabola.
                if s <= self.bound[k] {
                    k -= 1;
                    continue;
                }
                k += 1;
                self.vertex[k] = q;
                self.bound[k] = s;
                self.bound[k + 1] = f32::INFINITY;
                break;
            }
        }
        let mut k = 0usize;
        for q in 0..n {
            while self.bound[k + 1] < q as f32 {
                k += 1;
            }
            let v = self.vertex[k];
            let d = q as f32 - v as f32;
            self.out[q] = d * d + f[v];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(width: usize, height: usize, on: &[bool]) -> Vec<f32> {
        (0..width * height)
            .map(|i| {
                let (x, y) = ((i % width) as f32, (i / width) as f32);
                on.iter()
                    .enumerate()
                    .filter(|(_, b)| **b)
                    .map(|(j, _)| {
                        let (a, b) = ((j % width) as f32, (j / width) as f32);
                        (x - a) * (x - a) + (y - b) * (y - b)
                    })
                    .fold(FAR, f32::min)
            })
            .collect()
    }

    #[test]
    fn matches_brute_force_on_scattered_points() {
        let (w, h) = (23, 17);
        // A deterministic scatter of feature pixels.
        let on: Vec<bool> = (0..w * h).map(|i| (i * 7919) % 53 == 0).collect();
        let got = squared_distance_to(w, h, |i| on[i]);
        assert_eq!(got, brute(w, h, &on));
    }

    #[test]
    fn no_feature_means_far_everywhere() {
        let got = squared_distance_to(4, 3, |_| false);
        assert!(got.iter().all(|&d| d >= FAR));
    }

    #[test]
    fn single_pixel_gives_squared_radius() {
        let got = squared_distance_to(5, 5, |i| i == 12);
        assert_eq!(got[12], 0.0);
        assert_eq!(got[0], 8.0);
        assert_eq!(got[14], 4.0);
    }
}
