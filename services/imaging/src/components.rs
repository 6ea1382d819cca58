//! Connected components of a mask (8-connected, pixels > 0), labelled on
//! horizontal runs: runs touching across rows are joined with union-find,
//! so the work grows with the number of runs, not of pixels.

use crate::buffer::{GrayImage, PixelBox};

/// Bounding box and pixel count of one connected component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Component {
    pub bounds: PixelBox,
    pub pixels: u64,
}

/// A horizontal run of mask pixels `x0..x1` (exclusive) on row `y`.
#[derive(Debug, Clone, Copy)]
struct Run {
    y: u32,
    x0: u32,
    x1: u32,
}

/// Every component of a mask, and which component each run belongs to.
pub struct Labeling {
    width: u32,
    height: u32,
    runs: Vec<Run>,
    /// Component index of each run.
    run_component: Vec<u32>,
    pub components: Vec<Component>,
}

/// Every 8-connected component of pixels above zero, in scan order of their
/// first pixel.
pub fn components(mask: &GrayImage) -> Vec<Component> {
    label(mask).components
}

pub fn label(mask: &GrayImage) -> Labeling {
    let (w, h) = (mask.width() as usize, mask.height() as usize);
    let mut runs: Vec<Run> = Vec::new();
    let mut parent: Vec<u32> = Vec::new();
    let mut prev_start = 0usize;
    for (y, row) in mask.as_raw().chunks_exact(w.max(1)).enumerate().take(h) {
        let row_start = runs.len();
        let mut x = 0;
        while let Some(x0) = next_where(row, x, true) {
            let x1 = next_where(row, x0, false).unwrap_or(w);
            let id = runs.len() as u32;
            runs.push(Run {
                y: y as u32,
                x0: x0 as u32,
                x1: x1 as u32,
            });
            parent.push(id);
            x = x1;
        }
        // Join with runs of the previous row that touch (8-connectivity).
        let mut p = prev_start;
        for cur in row_start..runs.len() {
            let c = runs[cur];
            while p < row_start && runs[p].x1 < c.x0 {
                p += 1;
            }
            let mut q = p;
            while q < row_start && runs[q].x0 <= c.x1 {
                union(&mut parent, cur as u32, q as u32);
                q += 1;
            }
        }
        prev_start = row_start;
    }

    let mut root_component = vec![u32::MAX; runs.len()];
    let mut run_component = Vec::with_capacity(runs.len());
    let mut found: Vec<Component> = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let root = find(&mut parent, i as u32) as usize;
        if root_component[root] == u32::MAX {
            root_component[root] = found.len() as u32;
            found.push(Component {
                bounds: PixelBox::new(run.x0, run.y, run.x1 - run.x0, 1),
                pixels: 0,
            });
        }
        let c = root_component[root];
        run_component.push(c);
        let comp = &mut found[c as usize];
        let piece = PixelBox::new(run.x0, run.y, run.x1 - run.x0, 1);
        comp.bounds = comp.bounds.union(&piece);
        comp.pixels += (run.x1 - run.x0) as u64;
    }
    Labeling {
        width: mask.width(),
        height: mask.height(),
        runs,
        run_component,
        components: found,
    }
}

impl Labeling {
    /// Calls `visit(component, y, x0, x1)` for every run `x0..x1` on row `y`.
    pub fn for_each_run(&self, mut visit: impl FnMut(usize, u32, u32, u32)) {
        for (run, &c) in self.runs.iter().zip(&self.run_component) {
            visit(c as usize, run.y, run.x0, run.x1);
        }
    }

    /// A mask (255/0) of the components for which `keep(index)` holds.
    pub fn render(&self, keep: impl Fn(usize) -> bool) -> GrayImage {
        let mut out = GrayImage::filled(self.width, self.height, 0);
        let w = self.width as usize;
        let data = out.as_raw_mut();
        for (run, &c) in self.runs.iter().zip(&self.run_component) {
            if keep(c as usize) {
                let row = run.y as usize * w;
                data[row + run.x0 as usize..row + run.x1 as usize].fill(255);
            }
        }
        out
    }
}

/// First index >= `from` whose pixel is on (`on`) or off (`!on`); checks
/// eight pixels at a time across long uniform stretches.
fn next_where(row: &[u8], mut from: usize, on: bool) -> Option<usize> {
    while from + 8 <= row.len() {
        let v = u64::from_le_bytes(row[from..from + 8].try_into().expect("8 bytes"));
        let uniform = if on { v == 0 } else { !has_zero_byte(v) };
        if !uniform {
            break;
        }
        from += 8;
    }
    row[from..]
        .iter()
        .position(|&v| (v > 0) == on)
        .map(|i| from + i)
}

fn has_zero_byte(v: u64) -> bool {
    (v.wrapping_sub(0x0101_0101_0101_0101) & !v & 0x8080_8080_8080_8080) != 0
}

fn find(parent: &mut [u32], mut i: u32) -> u32 {
    while parent[i as usize] != i {
        let grand = parent[parent[i as usize] as usize];
        parent[i as usize] = grand;
        i = grand;
    }
    i
}

fn union(parent: &mut [u32], a: u32, b: u32) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    if ra != rb {
        // Keep the older run as root, so roots follow scan order.
        let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
        parent[hi as usize] = lo;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::{from_box, union as mask_union};

    #[test]
    fn two_boxes_and_a_diagonal_touch() {
        let a = from_box(20, 20, PixelBox::new(1, 1, 3, 3));
        let b = from_box(20, 20, PixelBox::new(10, 10, 4, 2));
        // Touches `a` only at a corner: still one component with 8-connectivity.
        let c = from_box(20, 20, PixelBox::new(4, 4, 1, 1));
        let m = mask_union(&[&a, &b, &c]).unwrap();
        let found = components(&m);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].bounds, PixelBox::new(1, 1, 4, 4));
        assert_eq!(found[0].pixels, 10);
        assert_eq!(found[1].bounds, PixelBox::new(10, 10, 4, 2));
    }

    #[test]
    fn u_shape_merges_late() {
        // Two arms joined only at the bottom row.
        let mut m = GrayImage::filled(12, 6, 0);
        for y in 0..6 {
            m.as_raw_mut()[y * 12 + 1] = 255;
            m.as_raw_mut()[y * 12 + 9] = 255;
        }
        for x in 1..10 {
            m.as_raw_mut()[5 * 12 + x] = 255;
        }
        let l = label(&m);
        assert_eq!(l.components.len(), 1);
        assert_eq!(l.components[0].pixels, 6 + 6 + 7);
        assert_eq!(l.render(|_| true), m);
        assert_eq!(l.render(|_| false), GrayImage::filled(12, 6, 0));
    }

    #[test]
    fn empty_mask_has_none() {
        assert!(components(&GrayImage::filled(5, 5, 0)).is_empty());
    }
}
