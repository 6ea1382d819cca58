//! Gateway: the public `inpaint.v1.Inpainting` API. Validates and decodes
//! requests at the edge, then drives segmentation, mask and worker over gRPC.

pub mod config;
pub mod decode;
pub mod error;
pub mod pipeline;
pub mod service;
pub mod stages;

use std::future::Future;

use inpaint_common::ServeError;
use inpaint_common::balance::BalanceError;
use inpaint_common::health::health_reporter;
use inpaint_proto::v1::inpainting_server::InpaintingServer;
use tokio::net::TcpListener;
use tonic::service::RoutesBuilder;

pub use config::Config;

/// Serves the public API on `listener` until `shutdown` resolves.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RunError> {
    let stages = stages::Stages::connect(&config)?;
    let service = service::InpaintingService::new(stages, &config);
    let (reporter, health) = health_reporter();
    reporter
        .set_serving::<InpaintingServer<service::InpaintingService>>()
        .await;
    let server = InpaintingServer::new(service)
        .max_decoding_message_size(config.max_request_bytes())
        .max_encoding_message_size(config.service.max_message_bytes());
    let mut routes = RoutesBuilder::default();
    routes.add_service(health).add_service(server);
    Ok(inpaint_common::serve(listener, routes, shutdown).await?)
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Stages(#[from] BalanceError),
    #[error(transparent)]
    Serve(#[from] ServeError),
}
