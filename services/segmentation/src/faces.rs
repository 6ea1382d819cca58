//! Faces with YuNet on its own model thread, and (for face-shaped masks)
//! MediaPipe's face landmark model on the same thread.

use std::sync::Arc;

use inpaint_imaging::{GrayImage, RgbImage};
use inpaint_onnx::Device;
use inpaint_proto::v1::FaceShape;
use ort::session::Session;
use ort::value::TensorRef;

use crate::config::Config;
use crate::error::Error;
use crate::face_mesh;
use crate::model_thread::{ModelThread, Runtime};
use crate::yunet::{self, Face, StrideOutput};

/// A face and, for shapes other than its box, its mask (None when the
/// landmark model does not take it for a face: it keeps its box).
pub struct FoundFace {
    pub face: Face,
    pub shaped: Option<GrayImage>,
}

type Job = (Arc<RgbImage>, f32, FaceShape);

pub struct FaceDetector {
    thread: ModelThread<Job, Vec<FoundFace>>,
    default_min_score: f32,
    /// Why face shapes cannot be had, when the landmark model did not load.
    no_shapes: Option<String>,
}

impl FaceDetector {
    pub const MODEL: &'static str = "yunet-2023mar";

    /// Loads the model (blocking) and starts its thread.
    pub fn load(runtime: Runtime, config: &Config) -> Result<Self, Error> {
        let outputs: Vec<String> = yunet::STRIDES
            .iter()
            .flat_map(|s| ["cls", "obj", "bbox", "kps"].map(|k| format!("{k}_{s}")))
            .collect();
        let outputs: Vec<&str> = outputs.iter().map(String::as_str).collect();
        let (mut session, device) = runtime.open(
            &config.face_model,
            "INPAINT_FACE_MODEL",
            &[yunet::INPUT_NAME],
            &outputs,
        )?;
        // Face shapes are an extra: without their model, boxes still work.
        let (mut mesh, no_shapes) = if config.face_landmark_model.as_os_str().is_empty() {
            (
                None,
                Some("face shapes are disabled (INPAINT_FACE_LANDMARK_MODEL is empty)".into()),
            )
        } else {
            match runtime.open(
                &config.face_landmark_model,
                "INPAINT_FACE_LANDMARK_MODEL",
                &["input_1"],
                &[MESH_POINTS, MESH_FACE],
            ) {
                Ok((session, _)) => (Some(session), None),
                Err(e) => {
                    tracing::warn!(%e, "face landmark model not loaded: face shapes unavailable");
                    (None, Some(format!("face shapes are unavailable: {e}")))
                }
            }
        };
        let thread = ModelThread::spawn(
            "yunet",
            device,
            config.model_queue,
            move |(image, min, shape): Job| {
                let faces = run_model(&mut session, &image, min)?;
                shape_faces(mesh.as_mut(), &image, faces, shape)
            },
        )?;
        Ok(Self {
            thread,
            default_min_score: config.face_min_confidence,
            no_shapes,
        })
    }

    pub fn device(&self) -> Device {
        self.thread.device()
    }

    /// Faces in `image` scoring at least `min_score` (0 = configured
    /// default), each with the mask `shape` asks for.
    pub async fn detect(
        &self,
        image: Arc<RgbImage>,
        min_score: f32,
        shape: FaceShape,
    ) -> Result<Vec<FoundFace>, Error> {
        if !is_box(shape)
            && let Some(why) = &self.no_shapes
        {
            return Err(Error::Unavailable(why.clone()));
        }
        let min_score = crate::filter::min_score(min_score, self.default_min_score);
        self.thread.call((image, min_score, shape)).await
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
        let kps = get("kps")?;
        if kps.len() != cells * 10 {
            return Err(Error::Inference(format!(
                "unexpected keypoint output size at stride {stride}"
            )));
        }
        strides.push(StrideOutput {
            stride,
            cls,
            obj,
            bbox,
            kps,
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

const MESH_POINTS: &str = "conv2d_21";
const MESH_FACE: &str = "conv2d_31";

fn is_box(shape: FaceShape) -> bool {
    matches!(shape, FaceShape::Unspecified | FaceShape::Box)
}

/// Each face's mask for `shape`, from the landmark model around it.
fn shape_faces(
    mesh: Option<&mut Session>,
    image: &RgbImage,
    faces: Vec<Face>,
    shape: FaceShape,
) -> Result<Vec<FoundFace>, Error> {
    let mesh = match mesh {
        Some(m) if !is_box(shape) => m,
        _ => {
            return Ok(faces
                .into_iter()
                .map(|face| FoundFace { face, shaped: None })
                .collect());
        }
    };
    let side = face_mesh::INPUT_SIDE;
    let mut out = Vec::with_capacity(faces.len());
    for face in faces {
        let roi = face_mesh::face_roi(&face);
        let crop = roi.crop(image, side);
        let input = TensorRef::from_array_view(([1usize, side, side, 3], crop.as_slice()))?;
        let result = mesh.run(ort::inputs!["input_1" => input])?;
        let (_, raw) = result[MESH_POINTS].try_extract_tensor::<f32>()?;
        let (_, logit) = result[MESH_FACE].try_extract_tensor::<f32>()?;
        if raw.len() != face_mesh::POINTS * 3 {
            return Err(Error::Inference(
                "unexpected face landmark output size".into(),
            ));
        }
        // A logit: below 0 the model does not see a face there.
        let shaped = (logit.first().copied().unwrap_or(-1.0) > 0.0).then(|| {
            let points = roi.project(raw, side, 3);
            face_mesh::shape_mask(&points, shape, image.width(), image.height())
        });
        out.push(FoundFace { face, shaped });
    }
    Ok(out)
}
