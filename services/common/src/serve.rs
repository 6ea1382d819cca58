//! One way to serve a gRPC service: health, reflection, graceful shutdown.

use std::future::Future;

use tokio::net::TcpListener;
use tonic::service::RoutesBuilder;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves `routes` (the service's own gRPC services and its health service)
/// plus reflection on `listener` until `shutdown` resolves, then lets
/// in-flight calls finish.
pub async fn serve(
    listener: TcpListener,
    mut routes: RoutesBuilder,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(inpaint_proto::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    routes.add_service(reflection);
    let addr = listener.local_addr().ok();
    tracing::info!(?addr, "serving");
    Server::builder()
        .add_routes(routes.routes())
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
        .await?;
    tracing::info!(?addr, "stopped");
    Ok(())
}
