//! The salient subject with IS-Net (imgly "small"). Opt-in only: its
//! weights are AGPL-3.0, so it is never fetched or enabled by default.
//!
//! Input `input` f32 [1,3,1024,1024], RGB (x - 128) / 256, the image
//! stretched to the square (aspect not kept); output `output` [1,1,1024,1024]
//! alpha in 0..1, sampled back to the image bilinearly.

use std::sync::Arc;

use inpaint_imaging::resize::resize_rgb;
use inpaint_imaging::{GrayImage, RgbImage};
use inpaint_onnx::Device;
use ort::session::Session;
use ort::value::TensorRef;

use crate::error::Error;
use crate::model_thread::{ModelThread, Runtime};

const SIDE: usize = 1024;

pub struct SubjectMask {
    pub mask: GrayImage,
    /// Mean alpha inside the mask.
    pub score: f32,
}

pub struct SubjectSegmenter {
    thread: ModelThread<(Arc<RgbImage>, f32), SubjectMask>,
}

impl SubjectSegmenter {
    pub const MODEL: &'static str = "isnet-imgly-small";

    pub fn load(runtime: Runtime, path: &std::path::Path, queue: usize) -> Result<Self, Error> {
        let (mut session, device) =
            runtime.open(path, "INPAINT_SUBJECT_MODEL", &["input"], &["output"])?;
        let thread = ModelThread::spawn(
            "isnet",
            device,
            queue,
            move |(image, level): (Arc<RgbImage>, f32)| segment(&mut session, &image, level),
        )?;
        Ok(Self { thread })
    }

    pub fn device(&self) -> Device {
        self.thread.device()
    }

    /// Pixels whose alpha is above `threshold` (0 = 0.5).
    pub async fn segment(
        &self,
        image: Arc<RgbImage>,
        threshold: f32,
    ) -> Result<SubjectMask, Error> {
        let level = if threshold > 0.0 { threshold } else { 0.5 };
        self.thread.call((image, level)).await
    }
}

fn segment(session: &mut Session, image: &RgbImage, level: f32) -> Result<SubjectMask, Error> {
    let square = resize_rgb(image, SIDE as u32, SIDE as u32);
    let plane = SIDE * SIDE;
    let mut tensor = vec![0f32; 3 * plane];
    for (i, px) in square.as_raw().chunks_exact(3).enumerate() {
        for c in 0..3 {
            tensor[c * plane + i] = (px[c] as f32 - 128.0) / 256.0;
        }
    }
    let input = TensorRef::from_array_view(([1usize, 3, SIDE, SIDE], &tensor[..]))?;
    let outputs = session.run(ort::inputs!["input" => input])?;
    let (_, alpha) = outputs["output"].try_extract_tensor::<f32>()?;
    if alpha.len() != plane {
        return Err(Error::Inference(format!(
            "subject alpha has {} values, expected {plane}",
            alpha.len()
        )));
    }
    let (w, h) = (image.width(), image.height());
    let mut mask = GrayImage::filled(w, h, 0);
    let (mut sum, mut count) = (0f64, 0u64);
    for y in 0..h {
        for x in 0..w {
            let a = sample(
                alpha,
                (x as f32 + 0.5) * SIDE as f32 / w as f32,
                (y as f32 + 0.5) * SIDE as f32 / h as f32,
            );
            if a > level {
                mask.as_raw_mut()[(y * w + x) as usize] = 255;
                sum += a as f64;
                count += 1;
            }
        }
    }
    let score = if count > 0 {
        (sum / count as f64) as f32
    } else {
        0.0
    };
    Ok(SubjectMask { mask, score })
}

/// Bilinear sample of the square map at pixel-centre coordinates.
fn sample(map: &[f32], x: f32, y: f32) -> f32 {
    let fx = (x - 0.5).clamp(0.0, (SIDE - 1) as f32);
    let fy = (y - 0.5).clamp(0.0, (SIDE - 1) as f32);
    let (x0, y0) = (fx as usize, fy as usize);
    let (x1, y1) = ((x0 + 1).min(SIDE - 1), (y0 + 1).min(SIDE - 1));
    let (tx, ty) = (fx - x0 as f32, fy - y0 as f32);
    let at = |x: usize, y: usize| map[y * SIDE + x];
    let top = at(x0, y0) * (1.0 - tx) + at(x1, y0) * tx;
    let bottom = at(x0, y1) * (1.0 - tx) + at(x1, y1) * tx;
    top * (1.0 - ty) + bottom * ty
}
