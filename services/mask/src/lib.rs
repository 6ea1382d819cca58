//! Mask service: mask operators, crop planning and compositing over gRPC.

pub mod config;
pub mod error;
pub mod ops;
pub mod service;

use std::future::Future;

use inpaint_common::ServeError;
use inpaint_common::health::not_serving_yet;
use inpaint_proto::v1::mask_server::MaskServer;
use tokio::net::TcpListener;
use tonic::service::RoutesBuilder;

pub use config::Config;

/// Serves the mask service on `listener` until `shutdown` resolves.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let limit = config.service.max_message_bytes();
    // Nothing to load: ready at once.
    let (startup, health) = not_serving_yet::<MaskServer<service::MaskService>>().await;
    startup.ready().await;
    let service = MaskServer::new(
        service::MaskService::new(config.service.max_image_pixels)
            .with_max_inflight(config.max_inflight),
    )
    .max_decoding_message_size(limit)
    .max_encoding_message_size(limit);
    let mut routes = RoutesBuilder::default();
    routes.add_service(health).add_service(service);
    inpaint_common::serve(
        listener,
        routes,
        &[inpaint_proto::v1::mask_server::SERVICE_NAME],
        &config.service,
        shutdown,
    )
    .await
}
