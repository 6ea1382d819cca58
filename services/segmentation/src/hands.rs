//! Hands: MediaPipe's palm detector finds each palm, its hand landmark
//! model (mediapipe/modules/hand_landmark/hand_landmark_cpu.pbtxt: the
//! hand square cut out upright at 224x224, RGB 0..1, 21 landmarks)
//! outlines the hand around it; one model thread runs both.

use std::sync::Arc;

use inpaint_imaging::{GrayImage, RgbImage};
use inpaint_onnx::Device;
use ort::session::Session;
use ort::value::TensorRef;

use crate::config::Config;
use crate::error::Error;
use crate::model_thread::{ModelThread, Runtime};
use crate::palm::{self, Hand};
use crate::roi;

/// The hand landmark model's input side.
const LANDMARK_SIDE: usize = 224;
/// The hull of the 21 landmarks is grown by this share of its size:
/// landmarks sit on the joints' centres, and a finger is wider than a point.
const HAND_MARGIN: f32 = 0.1;

/// A hand found: its mask and the palm detector's score.
pub struct FoundHand {
    pub mask: GrayImage,
    pub score: f32,
}

/// Most palms looked at per image (the strongest).
const MAX_HANDS: usize = 16;
/// The landmark model's own hand presence below which a palm is dropped.
const MIN_PRESENCE: f32 = 0.5;

pub struct HandDetector {
    thread: ModelThread<(Arc<RgbImage>, f32), Vec<FoundHand>>,
    default_min_score: f32,
}

impl HandDetector {
    pub const MODEL: &'static str = "mediapipe-palm-full+hand-landmark-full";

    pub fn load(runtime: Runtime, config: &Config) -> Result<Self, Error> {
        let (mut palms, device) = runtime.open(
            &config.hand_model,
            "INPAINT_HAND_MODEL",
            &["input_1"],
            &["Identity", "Identity_1"],
        )?;
        let (mut landmarks, _) = runtime.open(
            &config.hand_landmark_model,
            "INPAINT_HAND_LANDMARK_MODEL",
            &["input_1"],
            &["Identity", "Identity_1"],
        )?;
        let thread = ModelThread::spawn(
            "hands",
            device,
            config.model_queue,
            move |(image, min): (Arc<RgbImage>, f32)| find(&mut palms, &mut landmarks, &image, min),
        )?;
        Ok(Self {
            thread,
            default_min_score: config.hand_min_confidence,
        })
    }

    pub fn device(&self) -> Device {
        self.thread.device()
    }

    /// Hands whose palm scores at least `min_score` (0 = the configured
    /// default), strongest first.
    pub async fn detect(
        &self,
        image: Arc<RgbImage>,
        min_score: f32,
    ) -> Result<Vec<FoundHand>, Error> {
        let min_score = crate::filter::min_score(min_score, self.default_min_score);
        self.thread.call((image, min_score)).await
    }
}

fn find(
    palms: &mut Session,
    landmarks: &mut Session,
    image: &RgbImage,
    min_score: f32,
) -> Result<Vec<FoundHand>, Error> {
    let (tensor, letterbox) = palm::preprocess(image);
    let side = palm::INPUT_SIDE;
    let input = TensorRef::from_array_view(([1usize, side, side, 3], tensor.as_slice()))?;
    let outputs = palms.run(ort::inputs!["input_1" => input])?;
    let (_, boxes) = outputs["Identity"].try_extract_tensor::<f32>()?;
    let (_, logits) = outputs["Identity_1"].try_extract_tensor::<f32>()?;
    if boxes.len() != palm::ANCHORS * palm::VALUES || logits.len() != palm::ANCHORS {
        return Err(Error::Inference(
            "unexpected palm detector output sizes".into(),
        ));
    }
    let found = palm::decode(boxes, logits, letterbox, min_score);
    drop(outputs);
    let (w, h) = (image.width(), image.height());
    let mut hands = vec![];
    for p in found.iter().take(MAX_HANDS) {
        let hand = Hand::from_palm(p, w, h);
        let crop = hand.roi.crop(image, LANDMARK_SIDE);
        let side = LANDMARK_SIDE;
        let input = TensorRef::from_array_view(([1usize, side, side, 3], crop.as_slice()))?;
        let out = landmarks.run(ort::inputs!["input_1" => input])?;
        let (_, points) = out["Identity"].try_extract_tensor::<f32>()?;
        let (_, presence) = out["Identity_1"].try_extract_tensor::<f32>()?;
        if presence.first().copied().unwrap_or(0.0) < MIN_PRESENCE {
            continue;
        }
        let points = hand.roi.project(points, LANDMARK_SIDE, 3);
        hands.push(FoundHand {
            mask: roi::hull_mask(&points, HAND_MARGIN, w, h),
            score: hand.score,
        });
    }
    Ok(hands)
}
