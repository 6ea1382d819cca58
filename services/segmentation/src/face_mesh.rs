//! Face-shaped masks from MediaPipe's face landmark model (face_landmark,
//! 468 points), as MediaPipe's face mesh graphs feed it
//! (mediapipe/modules/face_landmark/face_detection_front_detection_to_roi
//! and face_landmark_cpu.pbtxt): the face square 1.5 times the detector's
//! box, turned so the eyes are level, cut out upright at 192x192 (RGB
//! 0..1); a face-presence logit; points in the crop's pixels.

use inpaint_imaging::{GrayImage, mask};
use inpaint_proto::v1::FaceShape;

use crate::roi::{self, Roi};
use crate::yunet::Face;

pub const INPUT_SIDE: usize = 192;
pub const POINTS: usize = 468;
/// The face square's side, in detector boxes.
const ROI_SCALE: f32 = 1.5;

/// Mesh points around each eye and the lips (MediaPipe's own
/// FACEMESH_RIGHT_EYE, FACEMESH_LEFT_EYE and FACEMESH_LIPS sets).
pub const RIGHT_EYE: [usize; 16] = [
    7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246,
];
pub const LEFT_EYE: [usize; 16] = [
    249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466,
];
pub const LIPS: [usize; 40] = [
    0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191,
    267, 269, 270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415,
];

/// Margins around each part, in shares of the part's own size: the mesh
/// outline sits on the face's edge; an eye mask takes in the lids and
/// lashes; a mouth mask the lips' edges.
const MESH_MARGIN: f32 = 0.02;
const EYE_MARGIN: f32 = 0.3;
const MOUTH_MARGIN: f32 = 0.15;

/// The square the landmark model sees for a detected face.
pub fn face_roi(face: &Face) -> Roi {
    let [(x0, y0), (x1, y1)] = face.eyes;
    Roi {
        cx: face.x + face.width / 2.0,
        cy: face.y + face.height / 2.0,
        side: face.width.max(face.height) * ROI_SCALE,
        // Level eyes: the right eye (image left) to the left eye points
        // right.
        rotation: -(-(y1 - y0)).atan2(x1 - x0),
    }
}

/// The mask `shape` asks for, from the face's 468 points, in a
/// `width` x `height` image.
pub fn shape_mask(points: &[(f32, f32)], shape: FaceShape, width: u32, height: u32) -> GrayImage {
    let part = |indices: &[usize], margin: f32| {
        let pts: Vec<(f32, f32)> = indices.iter().map(|&i| points[i]).collect();
        roi::hull_mask(&pts, margin, width, height)
    };
    let eyes = || {
        mask::union(&[&part(&RIGHT_EYE, EYE_MARGIN), &part(&LEFT_EYE, EYE_MARGIN)])
            .expect("two masks")
    };
    match shape {
        FaceShape::Eyes => eyes(),
        FaceShape::Mouth => part(&LIPS, MOUTH_MARGIN),
        FaceShape::EyesAndMouth => {
            mask::union(&[&eyes(), &part(&LIPS, MOUTH_MARGIN)]).expect("two masks")
        }
        _ => roi::hull_mask(points, MESH_MARGIN, width, height),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(eyes: [(f32, f32); 2]) -> Face {
        Face {
            x: 100.0,
            y: 50.0,
            width: 40.0,
            height: 60.0,
            score: 0.9,
            eyes,
        }
    }

    #[test]
    fn the_square_is_centred_and_levels_the_eyes() {
        let level = face_roi(&face([(110.0, 70.0), (130.0, 70.0)]));
        assert_eq!((level.cx, level.cy, level.side), (120.0, 80.0, 90.0));
        assert_eq!(level.rotation, 0.0);
        // The left eye lower on screen: the face leans clockwise.
        let leaning = face_roi(&face([(110.0, 70.0), (130.0, 90.0)]));
        assert!((leaning.rotation - std::f32::consts::FRAC_PI_4).abs() < 1e-6);
    }

    #[test]
    fn the_part_sets_are_distinct_mesh_points() {
        let all: Vec<usize> = RIGHT_EYE
            .iter()
            .chain(&LEFT_EYE)
            .chain(&LIPS)
            .copied()
            .collect();
        let mut unique = all.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), all.len());
        assert!(all.iter().all(|&i| i < POINTS));
    }

    #[test]
    fn parts_are_masked_apart() {
        // A toy face: every point at the centre except the eyes' and lips'.
        let mut points = vec![(50.0, 50.0); POINTS];
        for (k, &i) in RIGHT_EYE.iter().enumerate() {
            points[i] = (30.0 + (k % 4) as f32 * 3.0, 30.0 + (k / 4) as f32);
        }
        for (k, &i) in LEFT_EYE.iter().enumerate() {
            points[i] = (60.0 + (k % 4) as f32 * 3.0, 30.0 + (k / 4) as f32);
        }
        for (k, &i) in LIPS.iter().enumerate() {
            points[i] = (40.0 + (k % 10) as f32 * 2.0, 70.0 + (k / 10) as f32);
        }
        let on = |m: &GrayImage, x: u32, y: u32| m.as_raw()[(y * 100 + x) as usize] > 0;
        let eyes = shape_mask(&points, FaceShape::Eyes, 100, 100);
        assert!(on(&eyes, 34, 31) && on(&eyes, 64, 31) && !on(&eyes, 48, 71));
        let mouth = shape_mask(&points, FaceShape::Mouth, 100, 100);
        assert!(on(&mouth, 48, 71) && !on(&mouth, 34, 31));
        let both = shape_mask(&points, FaceShape::EyesAndMouth, 100, 100);
        assert!(on(&both, 34, 31) && on(&both, 48, 71) && !on(&both, 50, 50));
        let mesh = shape_mask(&points, FaceShape::Mesh, 100, 100);
        assert!(on(&mesh, 50, 50) && on(&mesh, 34, 31) && !on(&mesh, 5, 5));
    }
}
