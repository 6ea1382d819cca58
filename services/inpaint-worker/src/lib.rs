//! Inpaint worker: repaints crops with the engines it hosts.

pub mod config;
pub mod engine;
pub mod engines;
pub mod error;
pub mod metrics;
pub mod models;
pub mod onnx_engine;
pub mod prefill;
pub mod sd;
pub mod service;

use std::future::Future;
use std::sync::Arc;

use inpaint_common::ServeError;
use inpaint_common::health::{ServingStatus, not_serving_yet};
use inpaint_proto::v1::inpaint_worker_server::InpaintWorkerServer;
use tokio::net::TcpListener;
use tonic::service::RoutesBuilder;

pub use config::Config;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] models::ConfigError),
    #[error(transparent)]
    Model(#[from] error::Error),
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// Loads the configured models (refusing to start when one cannot load, or
/// runs off the GPU while the GPU is required), then serves the worker on
/// `listener` until `shutdown` resolves.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RunError> {
    let limit = config.service.max_message_bytes();
    type Server = InpaintWorkerServer<service::WorkerService>;
    let (startup, health) = not_serving_yet::<Server>().await;
    let reporter = startup.reporter();

    let (models, sd_models) = load_models(&config).await?;
    for model in &models {
        // One health entry per model names the device it really runs on.
        let entry = format!(
            "inpaint.v1.InpaintWorker/model/{}/{}",
            model.spec.name,
            model.device.name()
        );
        reporter
            .set_service_status(entry, ServingStatus::Serving)
            .await;
    }
    for model in &sd_models {
        let entry = format!(
            "inpaint.v1.InpaintWorker/model/{}/{}",
            model.name,
            model.device().name()
        );
        reporter
            .set_service_status(entry, ServingStatus::Serving)
            .await;
    }
    let engines = Arc::new(engines::Registry::new(
        config.effective_parallelism(),
        models.clone(),
        sd_models.clone(),
    ));
    let service = service::WorkerService::new(engines, models, sd_models, &config);
    startup.ready().await;
    let server = InpaintWorkerServer::new(service)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    let mut routes = RoutesBuilder::default();
    routes.add_service(health).add_service(server);
    Ok(inpaint_common::serve(
        listener,
        routes,
        &[inpaint_proto::v1::inpaint_worker_server::SERVICE_NAME],
        &config.service,
        shutdown,
    )
    .await?)
}

type Loaded = (
    Vec<Arc<onnx_engine::ModelEngine>>,
    Vec<Arc<sd::model::SdModel>>,
);

async fn load_models(config: &Config) -> Result<Loaded, RunError> {
    let (specs, mut sd_specs) = match &config.models {
        Some(file) => models::load_all(file)?,
        None => (vec![], vec![]),
    };
    for folder in &config.sd_models {
        let name = folder
            .file_name()
            .map_or_else(|| "sd".into(), |n| n.to_string_lossy().into_owned());
        if sd_specs.iter().any(|s| s.name == name) {
            return Err(models::ConfigError {
                file: folder.display().to_string(),
                reason: format!("a Stable Diffusion model named {name:?} is already configured"),
            }
            .into());
        }
        sd_specs.push(models::SdSpec {
            name,
            path: folder.clone(),
        });
    }
    let runtime = config.runtime();
    let loaded = tokio::task::spawn_blocking(move || {
        let models = specs
            .into_iter()
            .map(|spec| onnx_engine::ModelEngine::load(spec, &runtime).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let sd_models = sd_specs
            .into_iter()
            .map(|spec| sd::model::SdModel::load(&spec.name, &spec.path, &runtime).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok::<_, error::Error>((models, sd_models))
    })
    .await
    .map_err(|e| error::Error::Task(e.to_string()))??;
    Ok(loaded)
}
