//! The public `inpaint.v1.Inpainting` gRPC service.

use inpaint_proto::v1::inpainting_server::Inpainting;
use inpaint_proto::v1::{InpaintRequest, InpaintResponse};
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::config::Config;
use crate::pipeline::Pipeline;
use crate::stages::Stages;

pub struct InpaintingService {
    pipeline: Pipeline,
}

impl InpaintingService {
    pub fn new(stages: Stages, config: &Config) -> Self {
        Self {
            pipeline: Pipeline {
                stages,
                max_image_pixels: config.service.max_image_pixels,
                stage_timeout: config.stage_timeout(),
            },
        }
    }
}

#[tonic::async_trait]
impl Inpainting for InpaintingService {
    #[instrument(skip_all, fields(image_bytes = request.get_ref().image.len()))]
    async fn inpaint(
        &self,
        request: Request<InpaintRequest>,
    ) -> Result<Response<InpaintResponse>, Status> {
        match self.pipeline.inpaint(request.into_inner()).await {
            Ok(response) => {
                tracing::info!(
                    unchanged = response.unchanged,
                    regions = response.regions.len(),
                    crops = response.crops.len(),
                    "inpainted"
                );
                Ok(Response::new(response))
            }
            Err(err) => {
                tracing::warn!(%err, "request failed");
                Err(err.into())
            }
        }
    }
}
