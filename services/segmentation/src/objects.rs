//! Objects of the 80 COCO classes with NanoDet-m on its own model thread.

use std::sync::Arc;

use inpaint_imaging::RgbImage;
use inpaint_onnx::Device;
use ort::session::Session;
use ort::value::TensorRef;

use crate::config::Config;
use crate::error::Error;
use crate::model_thread::{ModelThread, Runtime};
use crate::nanodet::{self, Head, Object};

type Job = (Arc<RgbImage>, Vec<u32>, f32);

pub struct ObjectDetector {
    thread: ModelThread<Job, Vec<Object>>,
    default_min_score: f32,
}

impl ObjectDetector {
    pub const MODEL: &'static str = "nanodet-m-416";

    pub fn load(runtime: Runtime, config: &Config) -> Result<Self, Error> {
        let (mut session, device) = runtime.open(
            &config.object_model,
            "INPAINT_OBJECT_MODEL",
            &["input_1:0"],
            &[],
        )?;
        let thread = ModelThread::spawn(
            "nanodet",
            device,
            config.model_queue,
            move |(image, classes, min): Job| run_model(&mut session, &image, &classes, min),
        )?;
        Ok(Self {
            thread,
            default_min_score: config.object_min_confidence,
        })
    }

    pub fn device(&self) -> Device {
        self.thread.device()
    }

    /// Objects of `classes` scoring at least `min_score` (0 = the
    /// configured default), strongest first.
    pub async fn detect(
        &self,
        image: Arc<RgbImage>,
        classes: Vec<u32>,
        min_score: f32,
    ) -> Result<Vec<Object>, Error> {
        let min_score = crate::filter::min_score(min_score, self.default_min_score);
        self.thread.call((image, classes, min_score)).await
    }
}

fn run_model(
    session: &mut Session,
    image: &RgbImage,
    classes: &[u32],
    min_score: f32,
) -> Result<Vec<Object>, Error> {
    let (tensor, scale) = nanodet::preprocess(image);
    let side = nanodet::INPUT_SIDE;
    let input = TensorRef::from_array_view(([1usize, 3, side, side], tensor.as_slice()))?;
    let outputs = session.run(ort::inputs!["input_1:0" => input])?;
    // The outputs' names say nothing; their shapes say which head and kind.
    let names: Vec<String> = outputs.keys().map(|k| k.to_string()).collect();
    let mut by_shape = vec![];
    for name in &names {
        let (shape, data) = outputs[name.as_str()].try_extract_tensor::<f32>()?;
        by_shape.push((shape.to_vec(), data));
    }
    let find = |cells: usize, width: i64| {
        by_shape
            .iter()
            .find(|(s, _)| s.len() == 3 && s[1] == (cells * cells) as i64 && s[2] == width)
            .map(|(_, d)| *d)
            .ok_or_else(|| Error::Inference(format!("no {cells}x{cells} output of width {width}")))
    };
    let mut heads = Vec::with_capacity(nanodet::HEADS.len());
    for (cells, stride) in nanodet::HEADS {
        heads.push(Head {
            cells,
            stride,
            scores: find(cells, nanodet::CLASSES as i64)?,
            distances: find(cells, 44)?,
        });
    }
    Ok(nanodet::decode(
        &heads,
        classes,
        min_score,
        scale,
        image.width(),
        image.height(),
    ))
}
