//! One way to serve a gRPC service: health, reflection, graceful shutdown.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tonic::service::RoutesBuilder;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::config::ServiceArgs;
use crate::tls::TlsError;

/// HTTP/2 stream window for servers and clients (16 MiB).
pub const WINDOW: u32 = 16 << 20;

/// Largest HTTP/2 frame either side sends (1 MiB; the protocol's default,
/// 16 KiB, splits a 48-megapixel image into 9,000 frames).
pub const FRAME: u32 = 1 << 20;

/// An endpoint to `url` with the windows and settings every client here uses.
pub fn endpoint(url: &str) -> Result<tonic::transport::Endpoint, tonic::transport::Error> {
    Ok(tonic::transport::Endpoint::from_shared(url.to_string())?
        .initial_stream_window_size(WINDOW)
        .initial_connection_window_size(2 * WINDOW)
        .max_frame_size(FRAME)
        .tcp_nodelay(true))
}

/// Served on every port beside the service's own.
const HEALTH_SERVICE: &str = "grpc.health.v1.Health";
const REFLECTION_SERVICE: &str = "grpc.reflection.v1.ServerReflection";

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("cannot listen for metrics: {0}")]
    Metrics(std::io::Error),
}

/// Serves `routes` (the service's own gRPC services, named in `served` by
/// their full names, and its health service) plus reflection on `listener`
/// until `shutdown` resolves, then lets in-flight calls finish. Reflection
/// lists only what this port serves: every service's descriptors are known
/// (the gateway's messages import the stages'), but listing a stage's
/// service on the gateway's port would invite calls that answer
/// UNIMPLEMENTED. With a certificate in `settings`, the port speaks only
/// TLS. Every call is counted and timed; with a metrics address,
/// the Prometheus text is served there while the service runs.
pub async fn serve(
    listener: TcpListener,
    mut routes: RoutesBuilder,
    served: &[&str],
    settings: &ServiceArgs,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let tls = settings.server_tls()?;
    let metrics = settings.metrics_listen.0;
    let metrics_task = match metrics {
        Some(addr) => {
            let listener = TcpListener::bind(addr).await.map_err(ServeError::Metrics)?;
            tracing::info!(addr = ?listener.local_addr().ok(), "metrics");
            Some(AbortOnDrop(tokio::spawn(crate::metrics::serve_metrics(
                listener,
            ))))
        }
        None => None,
    };
    let reflection = served
        .iter()
        .copied()
        .chain([HEALTH_SERVICE, REFLECTION_SERVICE])
        .fold(tonic_reflection::server::Builder::configure(), |b, name| {
            b.with_service_name(name)
        })
        .register_encoded_file_descriptor_set(inpaint_proto::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    routes.add_service(reflection);
    let addr = listener.local_addr().ok();
    let kernels = inpaint_imaging::cpu::Isa::best().name();
    tracing::info!(?addr, kernels, "serving");
    crate::memory::trim_after_bursts();
    // Images travel as multi-megabyte messages: HTTP/2 windows sized for
    // them avoid a round trip per 64 KiB, and no-delay keeps small stream
    // messages (progress events) from waiting on Nagle.
    let router = Server::builder()
        .layer(crate::metrics::GrpcMetricsLayer)
        .layer(crate::trace::ServerTraceLayer)
        .initial_stream_window_size(WINDOW)
        .initial_connection_window_size(2 * WINDOW)
        .max_frame_size(FRAME)
        .add_routes(routes.routes());
    match tls {
        Some(tls) => {
            let incoming = crate::tls::incoming(listener, Arc::new(tls));
            router
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await?
        }
        None => {
            let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
            router
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await?
        }
    }
    tracing::info!(?addr, "stopped");
    drop(metrics_task);
    Ok(())
}

/// Stops the metrics endpoint with the service.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
