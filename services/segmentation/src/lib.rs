//! Segmentation service: turns images and prompts into regions to repaint.

pub mod config;
pub mod error;
pub mod face_mesh;
pub mod faces;
pub mod filter;
pub mod hands;
pub mod model_thread;
pub mod models;
pub mod nanodet;
pub mod objects;
pub mod palm;
pub mod roi;
pub mod sam;
pub mod service;
pub mod subject;
pub mod text;
pub mod yunet;

use std::future::Future;

use inpaint_common::ServeError;
use inpaint_common::health::not_serving_yet;
use inpaint_proto::v1::segmentation_server::SegmentationServer;
use tokio::net::TcpListener;
use tonic::service::RoutesBuilder;

pub use config::Config;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error("models failed to load: {0}")]
    ModelLoad(String),
}

/// Serves segmentation on `listener` until `shutdown` resolves.
///
/// Health is NOT_SERVING until the models have loaded (in the background).
/// If one cannot load and `require_models` is set, the service stops with
/// that error; otherwise it keeps serving and requests for that model are
/// answered FAILED_PRECONDITION with the reason.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RunError> {
    let limit = config.service.max_message_bytes();
    let service = service::SegmentationService::new(config.service.max_image_pixels);
    let models = service.models();
    type Server = SegmentationServer<service::SegmentationService>;
    let (startup, health) = not_serving_yet::<Server>().await;

    let (failed_tx, failed_rx) = tokio::sync::oneshot::channel();
    let loader_config = config.clone();
    tokio::spawn(async move {
        let failures = tokio::task::spawn_blocking(move || models.load(&loader_config))
            .await
            .unwrap_or_else(|e| vec![format!("model loader panicked: {e}")]);
        if failures.is_empty() {
            tracing::info!("models loaded");
            startup.ready().await;
        } else {
            // Stays NOT_SERVING; without `require_models` the loaded models
            // still answer and the failed one says why.
            for why in &failures {
                tracing::error!(%why, "model failed to load");
            }
            let _ = failed_tx.send(failures.join("; "));
        }
    });

    let server = SegmentationServer::new(service)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    let mut routes = RoutesBuilder::default();
    routes.add_service(health).add_service(server);
    let require = config.require_models;
    let fatal = async move {
        match failed_rx.await {
            Ok(err) if require => Some(err),
            _ => std::future::pending().await,
        }
    };
    tokio::pin!(fatal);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = inpaint_common::serve(
        listener,
        routes,
        &[inpaint_proto::v1::segmentation_server::SERVICE_NAME],
        &config.service,
        async move {
            tokio::select! {
                _ = shutdown => {}
                _ = stop_rx => {}
            }
        },
    );
    tokio::pin!(serving);
    tokio::select! {
        result = &mut serving => Ok(result?),
        Some(err) = &mut fatal => {
            let _ = stop_tx.send(());
            serving.await?;
            Err(RunError::ModelLoad(err))
        }
    }
}
