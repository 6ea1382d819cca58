//! The `inpaint.v1.InpaintWorker` gRPC service.

use std::sync::Arc;

use inpaint_common::tensor::{into_rgb_tensor, to_gray, to_rgb};
use inpaint_proto::v1::inpaint_worker_server::InpaintWorker;
use inpaint_proto::v1::{
    EngineInfo, InpaintCropsRequest, InpaintCropsResponse, ListEnginesRequest, ListEnginesResponse,
};
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::config::Config;
use crate::engine::{EngineParams, Registry};
use crate::error::Error;

/// Largest neighbourhood radius accepted.
pub const MAX_RADIUS: u32 = 64;

pub struct WorkerService {
    engines: Arc<Registry>,
    /// Engine runs happen on the blocking pool, at most this many at once, so
    /// a burst of crops queues here instead of oversubscribing the cores.
    slots: Arc<Semaphore>,
    max_image_pixels: u64,
}

impl WorkerService {
    pub fn new(engines: Arc<Registry>, config: &Config) -> Self {
        Self {
            engines,
            slots: Arc::new(Semaphore::new(config.effective_parallelism())),
            max_image_pixels: config.service.max_image_pixels,
        }
    }
}

#[tonic::async_trait]
impl InpaintWorker for WorkerService {
    #[instrument(skip_all, fields(engine = %request.get_ref().engine, crops = request.get_ref().crops.len()))]
    async fn inpaint_crops(
        &self,
        request: Request<InpaintCropsRequest>,
    ) -> Result<Response<InpaintCropsResponse>, Status> {
        let req = request.into_inner();
        let engine = self
            .engines
            .get(&req.engine)
            .ok_or_else(|| Error::UnknownEngine {
                name: req.engine.clone(),
                available: self.engines.names().join(", "),
            })?;
        if req.radius > MAX_RADIUS {
            return Err(invalid("radius", format!("must be at most {MAX_RADIUS}")).into());
        }
        let params = EngineParams {
            radius: req.radius,
            seed: req.seed,
        };
        let mut inputs = Vec::with_capacity(req.crops.len());
        for (i, crop) in req.crops.into_iter().enumerate() {
            let image = to_rgb(crop.image, &format!("crops[{i}].image"))?;
            let hole = to_gray(crop.hole, &format!("crops[{i}].hole"))?;
            if (hole.width(), hole.height()) != (image.width(), image.height()) {
                return Err(invalid(format!("crops[{i}].hole"), "must be the image's size").into());
            }
            if image.pixel_count() as u64 > self.max_image_pixels {
                return Err(invalid(format!("crops[{i}].image"), "is over the pixel limit").into());
            }
            inputs.push((image, hole));
        }

        let runs = inputs.into_iter().map(|(image, hole)| {
            let (engine, slots) = (engine.clone(), self.slots.clone());
            async move {
                let _slot = slots
                    .acquire_owned()
                    .await
                    .map_err(|e| Error::Task(e.to_string()))?;
                tokio::task::spawn_blocking(move || engine.inpaint(&image, &hole, &params))
                    .await
                    .map_err(|e| Error::Task(e.to_string()))
            }
        });
        let mut images = Vec::new();
        for run in runs.map(tokio::spawn).collect::<Vec<_>>() {
            let image = run.await.map_err(|e| Error::Task(e.to_string()))??;
            images.push(into_rgb_tensor(image));
        }
        Ok(Response::new(InpaintCropsResponse {
            images,
            engine: engine.name().to_string(),
        }))
    }

    async fn list_engines(
        &self,
        _request: Request<ListEnginesRequest>,
    ) -> Result<Response<ListEnginesResponse>, Status> {
        let engines = self
            .engines
            .all()
            .map(|e| EngineInfo {
                name: e.name().into(),
                description: e.description().into(),
                device: e.device().into(),
            })
            .collect();
        Ok(Response::new(ListEnginesResponse {
            engines,
            default_engine: self.engines.default_name().into(),
        }))
    }
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::InvalidField {
        field: field.into(),
        reason: reason.into(),
    }
}
