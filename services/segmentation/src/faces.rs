//! Faces with YuNet on its own model thread.

use std::sync::Arc;

use inpaint_imaging::RgbImage;
use inpaint_onnx::Device;
use ort::session::Session;
use ort::value::TensorRef;

use crate::config::Config;
use crate::error::Error;
use crate::model_thread::{ModelThread, Runtime};
use crate::yunet::{self, Face, StrideOutput};

pub struct FaceDetector {
    thread: ModelThread<(Arc<RgbImage>, f32), Vec<Face>>,
    default_min_score: f32,
}

impl FaceDetector {
    pub const MODEL: &'static str = "yunet-2023mar";

    /// Loads the model (blocking) and starts its thread.
    pub fn load(runtime: Runtime, config: &Config) -> Result<Self, Error> {
        let outputs: Vec<String> = yunet::STRIDES
            .iter()
            .flat_map(|s| ["cls", "obj", "bbox"].map(|k| format!("{k}_{s}")))
            .collect();
        let outputs: Vec<&str> = outputs.iter().map(String::as_str).collect();
        let (mut session, device) = runtime.open(
            &config.face_model,
            "INPAINT_FACE_MODEL",
            &[yunet::INPUT_NAME],
            &outputs,
        )?;
        let thread = ModelThread::spawn(
            "yunet",
            device,
            config.model_queue,
            move |(image, min): (Arc<RgbImage>, f32)| run_model(&mut session, &image, min),
        )?;
        Ok(Self {
            thread,
            default_min_score: config.face_min_confidence,
        })
    }

    pub fn device(&self) -> Device {
        self.thread.device()
    }

    /// Faces in `image` scoring at least `min_score` (0 = configured default).
    pub async fn detect(&self, image: Arc<RgbImage>, min_score: f32) -> Result<Vec<Face>, Error> {
        let min_score = if min_score > 0.0 {
            min_score
        } else {
            self.default_min_score
        };
        self.thread.call((image, min_score)).await
    }
}

fn run_model(session: &mut Session, image: &RgbImage, min_score: f32) -> Result<Vec<Face>, Error> {
    let (tensor, scale) = yunet::preprocess(image);
    let side = yunet::INPUT_SIDE;
    let input = TensorRef::from_array_view(([1usize, 3, side, side], tensor.as_slice()))?;
    let outputs = session.run(ort::inputs![yunet::INPUT_NAME => input])?;
    let mut strides = Vec::with_capacity(yunet::STRIDES.len());
    for stride in yunet::STRIDES {
        let get = |kind: &str| -> Result<&[f32], Error> {
            let (_, data) =
                outputs[format!("{kind}_{stride}").as_str()].try_extract_tensor::<f32>()?;
            Ok(data)
        };
        let cells = (side / stride) * (side / stride);
        let (cls, obj, bbox) = (get("cls")?, get("obj")?, get("bbox")?);
        if cls.len() != cells || obj.len() != cells || bbox.len() != cells * 4 {
            return Err(Error::Inference(format!(
                "unexpected output sizes at stride {stride}"
            )));
        }
        strides.push(StrideOutput {
            stride,
            cls,
            obj,
            bbox,
        });
    }
    Ok(yunet::decode(
        &strides,
        min_score,
        scale,
        image.width(),
        image.height(),
    ))
}
