//! YuNet (2023mar) face detector: pre-processing and output decoding.
//!
//! Input `input` f32 [1,3,640,640], BGR, 0..255, no normalisation. Per stride
//! s in 8/16/32 the outputs `cls_s`, `obj_s` [1,N,1] and `bbox_s` [1,N,4] hold
//! one anchor-free prediction per grid cell (N = (640/s)^2): score =
//! sqrt(cls * obj), centre = (col + dx, row + dy) * s, size = exp(dw, dh) * s.

use inpaint_imaging::RgbImage;
use inpaint_imaging::resize::resize_rgb;

pub const INPUT_NAME: &str = "input";
pub const INPUT_SIDE: usize = 640;
pub const STRIDES: [usize; 3] = [8, 16, 32];
/// Overlap above which the weaker of two detections is dropped.
pub const NMS_IOU: f32 = 0.3;

/// A face in image coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Face {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
    pub score: f32,
    /// The right and left eye (the person's; the right one is on the
    /// image's left for a face towards the camera), in image pixels.
    pub eyes: [(f32, f32); 2],
}

/// The image scaled so its longer side is 640 and padded right/bottom with
/// black, as a planar BGR tensor; and the scale used.
pub fn preprocess(image: &RgbImage) -> (Vec<f32>, f32) {
    let longest = image.width().max(image.height()) as f32;
    let scale = INPUT_SIDE as f32 / longest;
    let w = ((image.width() as f32 * scale).round() as u32).clamp(1, INPUT_SIDE as u32);
    let h = ((image.height() as f32 * scale).round() as u32).clamp(1, INPUT_SIDE as u32);
    let resized = resize_rgb(image, w, h);
    let plane = INPUT_SIDE * INPUT_SIDE;
    let mut tensor = vec![0f32; 3 * plane];
    let (b, rest) = tensor.split_at_mut(plane);
    let (g, r) = rest.split_at_mut(plane);
    for (y, row) in resized.as_raw().chunks_exact(w as usize * 3).enumerate() {
        let at = y * INPUT_SIDE;
        let (b, g, r) = (&mut b[at..], &mut g[at..], &mut r[at..]);
        // BGR order.
        for (x, px) in row.chunks_exact(3).enumerate() {
            b[x] = px[2] as f32;
            g[x] = px[1] as f32;
            r[x] = px[0] as f32;
        }
    }
    (tensor, scale)
}

/// The raw outputs for one stride.
pub struct StrideOutput<'a> {
    pub stride: usize,
    pub cls: &'a [f32],
    pub obj: &'a [f32],
    pub bbox: &'a [f32],
    /// Five keypoints (x, y) per cell: eyes, nose tip, mouth corners.
    pub kps: &'a [f32],
}

/// Decodes every stride, keeps scores >= `min_score`, maps boxes back to the
/// image (dividing by `scale`, clamping to `width` x `height`) and suppresses
/// overlaps. Strongest first.
pub fn decode(
    outputs: &[StrideOutput<'_>],
    min_score: f32,
    scale: f32,
    width: u32,
    height: u32,
) -> Vec<Face> {
    let mut faces = Vec::new();
    for out in outputs {
        let cols = INPUT_SIDE / out.stride;
        let s = out.stride as f32;
        for (idx, (&cls, &obj)) in out.cls.iter().zip(out.obj).enumerate() {
            let score = (cls.clamp(0.0, 1.0) * obj.clamp(0.0, 1.0)).sqrt();
            if score < min_score {
                continue;
            }
            let (col, row) = ((idx % cols) as f32, (idx / cols) as f32);
            let b = &out.bbox[idx * 4..idx * 4 + 4];
            let (cx, cy) = ((col + b[0]) * s, (row + b[1]) * s);
            let (bw, bh) = (b[2].exp() * s, b[3].exp() * s);
            let x0 = ((cx - bw / 2.0) / scale).clamp(0.0, width as f32);
            let y0 = ((cy - bh / 2.0) / scale).clamp(0.0, height as f32);
            let x1 = ((cx + bw / 2.0) / scale).clamp(0.0, width as f32);
            let y1 = ((cy + bh / 2.0) / scale).clamp(0.0, height as f32);
            let k = &out.kps[idx * 10..idx * 10 + 4];
            let eye = |dx: f32, dy: f32| ((col + dx) * s / scale, (row + dy) * s / scale);
            if x1 - x0 >= 1.0 && y1 - y0 >= 1.0 {
                faces.push(Face {
                    x: x0,
                    y: y0,
                    width: x1 - x0,
                    height: y1 - y0,
                    score,
                    eyes: [eye(k[0], k[1]), eye(k[2], k[3])],
                });
            }
        }
    }
    non_max_suppression(faces, NMS_IOU)
}

/// Greedy NMS: strongest first, dropping any face overlapping a kept one by
/// more than `max_iou`.
pub fn non_max_suppression(mut faces: Vec<Face>, max_iou: f32) -> Vec<Face> {
    faces.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Face> = Vec::new();
    for f in faces {
        if kept.iter().all(|k| iou(k, &f) <= max_iou) {
            kept.push(f);
        }
    }
    kept
}

fn iou(a: &Face, b: &Face) -> f32 {
    let corners = |f: &Face| [f.x, f.y, f.x + f.width, f.y + f.height];
    crate::filter::box_iou(corners(a), corners(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preprocess_letterboxes_in_bgr() {
        let img = RgbImage::from_raw(2, 1, vec![10, 20, 30, 10, 20, 30]).unwrap();
        let (t, scale) = preprocess(&img);
        assert_eq!(scale, 320.0);
        let plane = INPUT_SIDE * INPUT_SIDE;
        assert_eq!((t[0], t[plane], t[2 * plane]), (30.0, 20.0, 10.0));
        // Bottom half is padding.
        assert_eq!(t[639 * INPUT_SIDE], 0.0);
    }

    #[test]
    fn decode_one_cell() {
        // Stride 32: 20x20 cells; one confident cell at col 3, row 2.
        let n = 400;
        let mut cls = vec![0.0; n];
        let mut obj = vec![0.0; n];
        let mut bbox = vec![0.0; n * 4];
        let mut kps = vec![0.0; n * 10];
        let idx = 2 * 20 + 3;
        kps[idx * 10..idx * 10 + 4].copy_from_slice(&[0.25, 0.5, 0.75, 0.5]);
        cls[idx] = 0.9;
        obj[idx] = 0.9;
        bbox[idx * 4..idx * 4 + 4].copy_from_slice(&[0.5, 0.5, 0.0, 0.0]);
        let out = [StrideOutput {
            stride: 32,
            cls: &cls,
            obj: &obj,
            bbox: &bbox,
            kps: &kps,
        }];
        let faces = decode(&out, 0.5, 2.0, 1000, 1000);
        assert_eq!(faces.len(), 1);
        let f = faces[0];
        // centre (3.5*32, 2.5*32) = (112, 80), size 32, then / scale 2.
        assert_eq!((f.x, f.y, f.width, f.height), (48.0, 32.0, 16.0, 16.0));
        assert!((f.score - 0.9).abs() < 1e-6);
        // Eyes at (3.25*32, 2.5*32) and (3.75*32, 2.5*32), then / 2.
        assert_eq!(f.eyes, [(52.0, 40.0), (60.0, 40.0)]);
    }

    #[test]
    fn nms_drops_overlaps() {
        let a = Face {
            x: 0.0,
            y: 0.0,
            width: 10.0,
            height: 10.0,
            score: 0.9,
            eyes: [(0.0, 0.0); 2],
        };
        let b = Face {
            x: 1.0,
            y: 1.0,
            width: 10.0,
            height: 10.0,
            score: 0.8,
            eyes: [(0.0, 0.0); 2],
        };
        let c = Face {
            x: 50.0,
            y: 50.0,
            width: 10.0,
            height: 10.0,
            score: 0.7,
            eyes: [(0.0, 0.0); 2],
        };
        assert_eq!(non_max_suppression(vec![b, c, a], 0.3), vec![a, c]);
    }
}
