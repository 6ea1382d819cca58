//! Connected components of a mask (8-connected, pixels > 0).

use crate::buffer::{GrayImage, PixelBox};

/// Bounding box and pixel count of one connected component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Component {
    pub bounds: PixelBox,
    pub pixels: u64,
}

/// Every 8-connected component of pixels above zero, in scan order of their
/// first pixel.
pub fn components(mask: &GrayImage) -> Vec<Component> {
    let (w, h) = (mask.width() as usize, mask.height() as usize);
    let data = mask.as_raw();
    let mut seen = vec![false; w * h];
    let mut stack = Vec::new();
    let mut found = Vec::new();
    for start in 0..w * h {
        if data[start] == 0 || seen[start] {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
        let mut pixels = 0u64;
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            pixels += 1;
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
            for ny in y.saturating_sub(1)..(y + 2).min(h) {
                for nx in x.saturating_sub(1)..(x + 2).min(w) {
                    let n = ny * w + nx;
                    if data[n] > 0 && !seen[n] {
                        seen[n] = true;
                        stack.push(n);
                    }
                }
            }
        }
        found.push(Component {
            bounds: PixelBox::new(
                x0 as u32,
                y0 as u32,
                (x1 - x0 + 1) as u32,
                (y1 - y0 + 1) as u32,
            ),
            pixels,
        });
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::{from_box, union};

    #[test]
    fn two_boxes_and_a_diagonal_touch() {
        let a = from_box(20, 20, PixelBox::new(1, 1, 3, 3));
        let b = from_box(20, 20, PixelBox::new(10, 10, 4, 2));
        // Touches `a` only at a corner: still one component with 8-connectivity.
        let c = from_box(20, 20, PixelBox::new(4, 4, 1, 1));
        let m = union(&[&a, &b, &c]).unwrap();
        let found = components(&m);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].bounds, PixelBox::new(1, 1, 4, 4));
        assert_eq!(found[0].pixels, 10);
        assert_eq!(found[1].bounds, PixelBox::new(10, 10, 4, 2));
    }

    #[test]
    fn empty_mask_has_none() {
        assert!(components(&GrayImage::filled(5, 5, 0)).is_empty());
    }
}
