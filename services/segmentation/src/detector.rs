//! The face detector: one ONNX session owned by a dedicated thread, fed
//! through a bounded channel (ort's `Session::run` needs `&mut self`, and
//! model runs must stay off the async threads).

use std::path::Path;

use inpaint_imaging::RgbImage;
use ort::session::Session;
use ort::value::TensorRef;
use tokio::sync::{mpsc, oneshot};

use crate::config::Config;
use crate::error::Error;
use crate::yunet::{self, Face, StrideOutput};

struct Job {
    image: RgbImage,
    min_score: f32,
    span: tracing::Span,
    reply: oneshot::Sender<Result<Vec<Face>, Error>>,
}

/// Handle to the detector thread; cheap to share.
pub struct FaceDetector {
    jobs: mpsc::Sender<Job>,
    model_name: String,
    default_min_score: f32,
}

impl FaceDetector {
    /// Loads the model (blocking) and starts its thread.
    pub fn load(config: &Config) -> Result<Self, Error> {
        let env =
            inpaint_onnx::environment(&config.ort_dylib).map_err(|e| Error::Load(e.to_string()))?;
        let session = open_session(env, &config.face_model, config.ort_threads)?;
        let (jobs, queue) = mpsc::channel(config.face_queue.max(1));
        std::thread::Builder::new()
            .name("yunet".into())
            .spawn(move || serve_jobs(session, queue))
            .map_err(|e| Error::Load(format!("cannot start detector thread: {e}")))?;
        Ok(Self {
            jobs,
            model_name: "yunet-2023mar".into(),
            default_min_score: config.face_min_confidence,
        })
    }

    pub fn model_name(&self) -> &str {
        &self.model_name
    }

    /// Faces in `image` scoring at least `min_score` (0 = configured default).
    pub async fn detect(&self, image: RgbImage, min_score: f32) -> Result<Vec<Face>, Error> {
        let min_score = if min_score > 0.0 {
            min_score
        } else {
            self.default_min_score
        };
        let (reply, answer) = oneshot::channel();
        let job = Job {
            image,
            min_score,
            span: tracing::Span::current(),
            reply,
        };
        self.jobs.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Error::Busy,
            mpsc::error::TrySendError::Closed(_) => {
                Error::Unavailable("detector thread stopped".into())
            }
        })?;
        answer
            .await
            .map_err(|_| Error::Unavailable("detector thread dropped the request".into()))?
    }
}

fn open_session(
    env: &ort::environment::Environment,
    model: &Path,
    threads: usize,
) -> Result<Session, Error> {
    if !model.is_file() {
        return Err(Error::Load(format!(
            "face model not found at {} (run `make models`, or set INPAINT_FACE_MODEL)",
            model.display()
        )));
    }
    let load = |e: ort::Error| Error::Load(format!("{}: {e}", model.display()));
    let mut builder = Session::builder(env).map_err(load)?;
    if threads > 0 {
        builder = builder
            .with_intra_threads(threads)
            .map_err(|e| load(e.into()))?;
    }
    let session = builder.commit_from_file(model).map_err(load)?;
    let has_input = session
        .inputs()
        .iter()
        .any(|i| i.name() == yunet::INPUT_NAME);
    let outputs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
    let missing: Vec<String> = yunet::STRIDES
        .iter()
        .flat_map(|s| ["cls", "obj", "bbox"].map(|k| format!("{k}_{s}")))
        .filter(|name| !outputs.contains(&name.as_str()))
        .collect();
    if !has_input || !missing.is_empty() {
        return Err(Error::Load(format!(
            "{} is not a YuNet 2023mar model (input `{}` present: {has_input}; missing outputs: {missing:?})",
            model.display(),
            yunet::INPUT_NAME
        )));
    }
    Ok(session)
}

fn serve_jobs(mut session: Session, mut queue: mpsc::Receiver<Job>) {
    while let Some(job) = queue.blocking_recv() {
        let _entered = job.span.enter();
        let result = run_model(&mut session, &job.image, job.min_score);
        let _ = job.reply.send(result);
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
