//! MediaPipe's palm detector (palm_detection_full, converted to ONNX):
//! pre-processing, anchors, output decoding and the hand region a palm
//! stands for, as MediaPipe's own graphs define them
//! (mediapipe/modules/palm_detection/palm_detection_cpu.pbtxt and
//! hand_landmark/palm_detection_detection_to_roi.pbtxt):
//!
//! - input [1,192,192,3] RGB in 0..1, the image letterboxed (centred, black
//!   bars);
//! - 2016 SSD anchors: stride 8 (24x24 cells, 2 anchors each) and stride 16
//!   (12x12 cells, 6 each: three layers of that stride merged), centres at
//!   cell centres, fixed size 1;
//! - per anchor 18 regressed values (box centre offset and size, then 7
//!   keypoints), scaled by 1/192 around the anchor centre, and one logit;
//! - weighted non-maximum suppression at IoU 0.3;
//! - the hand: a square around the palm rotated so the wrist-to-middle-
//!   finger direction points up, 2.6 times the palm's longer side, shifted
//!   half a palm towards the fingers.

use inpaint_imaging::RgbImage;
use inpaint_imaging::resize::resize_rgb;

use crate::roi::Roi;

pub const INPUT_SIDE: usize = 192;
pub const ANCHORS: usize = 2016;
pub const VALUES: usize = 18;
/// Overlap above which detections are merged.
pub const NMS_IOU: f32 = 0.3;
const KEYPOINT_WRIST: usize = 0;
const KEYPOINT_MIDDLE_FINGER: usize = 2;
const HAND_SCALE: f32 = 2.6;
const HAND_SHIFT_Y: f32 = -0.5;

/// The image letterboxed into the model's square: the tensor (NHWC, RGB,
/// 0..1) and how the square maps back.
pub fn preprocess(image: &RgbImage) -> (Vec<f32>, Letterbox) {
    let (w, h) = (image.width() as f32, image.height() as f32);
    let scale = INPUT_SIDE as f32 / w.max(h);
    let rw = ((w * scale).round() as usize).clamp(1, INPUT_SIDE);
    let rh = ((h * scale).round() as usize).clamp(1, INPUT_SIDE);
    let resized = resize_rgb(image, rw as u32, rh as u32);
    let (left, top) = ((INPUT_SIDE - rw) / 2, (INPUT_SIDE - rh) / 2);
    let mut tensor = vec![0f32; INPUT_SIDE * INPUT_SIDE * 3];
    for (y, row) in resized.as_raw().chunks_exact(rw * 3).enumerate() {
        let at = ((top + y) * INPUT_SIDE + left) * 3;
        for (t, &v) in tensor[at..at + rw * 3].iter_mut().zip(row) {
            *t = v as f32 / 255.0;
        }
    }
    let side = INPUT_SIDE as f32;
    (
        tensor,
        Letterbox {
            left: left as f32 / side,
            top: top as f32 / side,
            width: rw as f32 / side,
            height: rh as f32 / side,
        },
    )
}

/// Where the image lies in the model's square, as fractions of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    pub left: f32,
    pub top: f32,
    pub width: f32,
    pub height: f32,
}

impl Letterbox {
    /// A point of the square (0..1) as a fraction of the image.
    fn unbox(&self, x: f32, y: f32) -> (f32, f32) {
        ((x - self.left) / self.width, (y - self.top) / self.height)
    }
}

/// Anchor centres, in the square's fractions, in the model's output order.
pub fn anchors() -> Vec<(f32, f32)> {
    let mut out = Vec::with_capacity(ANCHORS);
    for (stride, per_cell) in [(8usize, 2usize), (16, 6)] {
        let cells = INPUT_SIDE / stride;
        for row in 0..cells {
            for col in 0..cells {
                let centre = (
                    (col as f32 + 0.5) / cells as f32,
                    (row as f32 + 0.5) / cells as f32,
                );
                out.extend(std::iter::repeat_n(centre, per_cell));
            }
        }
    }
    out
}

/// A palm, in the image's fractions (0..1).
#[derive(Debug, Clone, PartialEq)]
pub struct Palm {
    pub cx: f32,
    pub cy: f32,
    pub width: f32,
    pub height: f32,
    pub keypoints: [(f32, f32); 7],
    pub score: f32,
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x.clamp(-100.0, 100.0)).exp())
}

/// Decodes the raw outputs (`boxes` [2016 x 18], `logits` [2016]) into
/// palms scoring at least `min_score`, merged by weighted NMS, strongest
/// first.
pub fn decode(boxes: &[f32], logits: &[f32], letterbox: Letterbox, min_score: f32) -> Vec<Palm> {
    let side = INPUT_SIDE as f32;
    let mut found: Vec<Palm> = anchors()
        .iter()
        .enumerate()
        .filter_map(|(i, &(ax, ay))| {
            let score = sigmoid(logits[i]);
            if score < min_score {
                return None;
            }
            let v = &boxes[i * VALUES..(i + 1) * VALUES];
            let mut keypoints = [(0.0, 0.0); 7];
            for (k, point) in keypoints.iter_mut().enumerate() {
                *point = (ax + v[4 + 2 * k] / side, ay + v[5 + 2 * k] / side);
            }
            Some(Palm {
                cx: ax + v[0] / side,
                cy: ay + v[1] / side,
                width: v[2] / side,
                height: v[3] / side,
                keypoints,
                score,
            })
        })
        .collect();
    found.sort_by(|a, b| b.score.total_cmp(&a.score));
    // Merged in the square's frame, as MediaPipe does, then unboxed.
    weighted_nms(found)
        .into_iter()
        .map(|p| {
            let (cx, cy) = letterbox.unbox(p.cx, p.cy);
            Palm {
                cx,
                cy,
                width: p.width / letterbox.width,
                height: p.height / letterbox.height,
                keypoints: p.keypoints.map(|(x, y)| letterbox.unbox(x, y)),
                score: p.score,
            }
        })
        .collect()
}

fn iou(a: &Palm, b: &Palm) -> f32 {
    let corners = |p: &Palm| {
        let (hw, hh) = (p.width / 2.0, p.height / 2.0);
        [p.cx - hw, p.cy - hh, p.cx + hw, p.cy + hh]
    };
    crate::filter::box_iou(corners(a), corners(b))
}

/// MediaPipe's weighted NMS: each strongest remaining palm takes the ones
/// overlapping it, and its box and keypoints become their score-weighted
/// mean (its score stays its own).
fn weighted_nms(mut sorted: Vec<Palm>) -> Vec<Palm> {
    let mut out = vec![];
    while !sorted.is_empty() {
        let top = sorted[0].clone();
        let (group, rest): (Vec<Palm>, Vec<Palm>) =
            sorted.into_iter().partition(|p| iou(&top, p) > NMS_IOU);
        sorted = rest;
        let total: f32 = group.iter().map(|p| p.score).sum();
        let mean =
            |f: &dyn Fn(&Palm) -> f32| group.iter().map(|p| f(p) * p.score).sum::<f32>() / total;
        let mut merged = Palm {
            cx: mean(&|p| p.cx),
            cy: mean(&|p| p.cy),
            width: mean(&|p| p.width),
            height: mean(&|p| p.height),
            keypoints: top.keypoints,
            score: top.score,
        };
        for k in 0..7 {
            merged.keypoints[k] = (mean(&|p| p.keypoints[k].0), mean(&|p| p.keypoints[k].1));
        }
        out.push(merged);
    }
    out
}

/// A hand: the square around it, and its palm's score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hand {
    pub roi: Roi,
    pub score: f32,
}

impl Hand {
    /// The palm's hand region in a `width` x `height` image.
    pub fn from_palm(palm: &Palm, width: u32, height: u32) -> Self {
        let (w, h) = (width as f32, height as f32);
        let (x0, y0) = palm.keypoints[KEYPOINT_WRIST];
        let (x1, y1) = palm.keypoints[KEYPOINT_MIDDLE_FINGER];
        let angle = std::f32::consts::FRAC_PI_2 - (-(y1 - y0) * h).atan2((x1 - x0) * w);
        let rotation = normalize(angle);
        // Shift half a palm towards the fingers, along the rotated axis.
        let (pw, ph) = (palm.width * w, palm.height * h);
        Self {
            roi: Roi {
                cx: palm.cx * w - ph * HAND_SHIFT_Y * rotation.sin(),
                cy: palm.cy * h + ph * HAND_SHIFT_Y * rotation.cos(),
                side: pw.max(ph) * HAND_SCALE,
                rotation,
            },
            score: palm.score,
        }
    }
}

fn normalize(angle: f32) -> f32 {
    use std::f32::consts::PI;
    angle - 2.0 * PI * ((angle + PI) / (2.0 * PI)).floor()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_follow_mediapipes_layout() {
        let a = anchors();
        assert_eq!(a.len(), ANCHORS);
        // First cell of stride 8, twice; first of stride 16 six times.
        assert_eq!(a[0], (0.5 / 24.0, 0.5 / 24.0));
        assert_eq!(a[1], a[0]);
        assert_eq!(a[2], (1.5 / 24.0, 0.5 / 24.0));
        assert_eq!(a[1152], (0.5 / 12.0, 0.5 / 12.0));
        assert_eq!(a[1157], a[1152]);
        assert_eq!(a[2015], (11.5 / 12.0, 11.5 / 12.0));
    }

    /// One anchor fired: its box decoded by hand (offsets of 19.2 px are a
    /// tenth of the square), the letterbox of a 2:1 image undone.
    #[test]
    fn decodes_boxes_and_undoes_the_letterbox() {
        let mut boxes = vec![0.0; ANCHORS * VALUES];
        let mut logits = vec![-10.0; ANCHORS];
        let i = 1152 + 6 * (12 * 6 + 6); // stride 16, row 6, col 6: centre (6.5/12, 6.5/12)
        logits[i] = 2.0;
        boxes[i * VALUES..i * VALUES + 4].copy_from_slice(&[19.2, 0.0, 38.4, 19.2]);
        // A 384x192 image fills the square's width and half its height.
        let letterbox = Letterbox {
            left: 0.0,
            top: 0.25,
            width: 1.0,
            height: 0.5,
        };
        let palms = decode(&boxes, &logits, letterbox, 0.5);
        assert_eq!(palms.len(), 1);
        let p = &palms[0];
        assert!((p.cx - (6.5 / 12.0 + 0.1)).abs() < 1e-5);
        assert!((p.cy - (6.5 / 12.0 - 0.25) / 0.5).abs() < 1e-5);
        assert!((p.width - 0.2).abs() < 1e-5 && (p.height - 0.2).abs() < 1e-5);
        assert!((p.score - 1.0 / (1.0 + (-2.0f32).exp())).abs() < 1e-6);
    }

    #[test]
    fn overlapping_palms_merge_weighted_by_score() {
        let palm = |cx: f32, score: f32| Palm {
            cx,
            cy: 0.5,
            width: 0.2,
            height: 0.2,
            keypoints: [(cx, 0.5); 7],
            score,
        };
        let merged = weighted_nms(vec![palm(0.5, 0.9), palm(0.52, 0.3), palm(0.9, 0.8)]);
        assert_eq!(merged.len(), 2);
        let expect = (0.5 * 0.9 + 0.52 * 0.3) / 1.2;
        assert!((merged[0].cx - expect).abs() < 1e-6);
        assert_eq!(merged[0].score, 0.9);
        assert_eq!(merged[1].cx, 0.9);
    }

    /// An upright hand (middle finger straight above the wrist): no
    /// rotation, the square 2.6 palms wide, moved half a palm up; a hand
    /// pointing right is turned a quarter clockwise and moved right.
    #[test]
    fn the_hand_square_grows_towards_the_fingers() {
        let mut palm = Palm {
            cx: 0.5,
            cy: 0.5,
            width: 0.1,
            height: 0.1,
            keypoints: [(0.5, 0.5); 7],
            score: 0.9,
        };
        palm.keypoints[KEYPOINT_WRIST] = (0.5, 0.55);
        palm.keypoints[KEYPOINT_MIDDLE_FINGER] = (0.5, 0.45);
        let hand = Hand::from_palm(&palm, 200, 200).roi;
        assert!(hand.rotation.abs() < 1e-6);
        assert!((hand.side - 52.0).abs() < 1e-4);
        assert!((hand.cx - 100.0).abs() < 1e-4 && (hand.cy - 90.0).abs() < 1e-4);
        assert!(hand.contains(100.0, 65.0) && !hand.contains(100.0, 120.0));

        palm.keypoints[KEYPOINT_WRIST] = (0.45, 0.5);
        palm.keypoints[KEYPOINT_MIDDLE_FINGER] = (0.55, 0.5);
        let hand = Hand::from_palm(&palm, 200, 200).roi;
        assert!((hand.rotation - std::f32::consts::FRAC_PI_2).abs() < 1e-6);
        assert!((hand.cx - 110.0).abs() < 1e-4 && (hand.cy - 100.0).abs() < 1e-4);
        let (x0, _, x1, _) = hand.bounds();
        assert!((x1 - x0 - 52.0).abs() < 1e-3);
    }
}
