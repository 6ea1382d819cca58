//! Inpaint worker: repaints crops with the engines it hosts.

pub mod config;
pub mod engine;
pub mod error;
pub mod service;

use std::future::Future;
use std::sync::Arc;

use inpaint_common::ServeError;
use inpaint_common::health::health_reporter;
use inpaint_proto::v1::inpaint_worker_server::InpaintWorkerServer;
use tokio::net::TcpListener;
use tonic::service::RoutesBuilder;

pub use config::Config;

/// Serves the worker on `listener` until `shutdown` resolves.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let limit = config.service.max_message_bytes();
    let engines = Arc::new(engine::Registry::native());
    let (reporter, health) = health_reporter();
    let service = service::WorkerService::new(engines, &config);
    reporter
        .set_serving::<InpaintWorkerServer<service::WorkerService>>()
        .await;
    let server = InpaintWorkerServer::new(service)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    let mut routes = RoutesBuilder::default();
    routes.add_service(health).add_service(server);
    inpaint_common::serve(listener, routes, shutdown).await
}
