//! Gateway: the public `inpaint.v1.Inpainting` API. Validates and decodes
//! requests at the edge, then drives segmentation, mask and worker over gRPC;
//! queues and runs asynchronous jobs.

pub mod auth;
pub mod colour;
pub mod config;
pub mod decode;
pub mod error;
pub mod exif;
pub mod inflight;
pub mod jobs;
pub mod metrics;
pub mod pipeline;
pub mod preview;
pub mod refusal;
pub mod regions;
pub mod service;
pub mod stages;
pub mod targets;
pub mod trim;
pub mod vocabulary;
pub mod web;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use inpaint_common::ServeError;
use inpaint_common::health::not_serving_yet;
use inpaint_proto::v1::inpainting_server::InpaintingServer;
use jobs::JobStore;
use tokio::net::TcpListener;
use tonic::service::RoutesBuilder;

pub use config::Config;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Stages(#[from] stages::StagesError),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Store(#[from] jobs::StoreError),
    #[error("{0}")]
    Keys(String),
    #[error(transparent)]
    Web(#[from] web::WebError),
}

/// Serves the public API on `listener` until `shutdown` resolves, with jobs
/// in Redis when `redis_url` is set and in memory otherwise. Runners stop
/// claiming at shutdown and finish the job they hold.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RunError> {
    let web = match config.web_listen {
        Some(addr) => Some(TcpListener::bind(addr).await.map_err(web::WebError::Io)?),
        None => None,
    };
    run_with_web(config, listener, web, shutdown).await
}

/// As `run`, with the web port (the page and gRPC-Web) on `web` when given
/// (`config.web_listen` is not read).
pub async fn run_with_web(
    config: Config,
    listener: TcpListener,
    web: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RunError> {
    let ttl = Duration::from_secs(config.job_ttl_secs.max(1));
    match config.redis_url.clone() {
        Some(url) => {
            let client = jobs::redis::client(
                &url,
                config.redis_password.as_deref(),
                config.redis_tls_ca.as_deref(),
            )?;
            let store =
                jobs::redis::RedisStore::connect_client(client, &config.redis_prefix, ttl).await?;
            tracing::info!(redis = %without_password(&url), "job store: Redis");
            serve_with(config, Arc::new(store), listener, web, shutdown).await
        }
        None => {
            serve_with(
                config,
                Arc::new(jobs::memory::MemoryStore::new(ttl)),
                listener,
                web,
                shutdown,
            )
            .await
        }
    }
}

async fn serve_with<S: JobStore>(
    config: Config,
    store: Arc<S>,
    listener: TcpListener,
    web: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RunError> {
    let stages = stages::Stages::connect(&config)?;
    let pipeline = Arc::new(pipeline::Pipeline {
        stages,
        max_image_pixels: config.service.max_image_pixels,
        stage_timeout: config.stage_timeout(),
        inflight: inflight::InFlight::new(inflight::Limits {
            max_requests: config.max_inflight_requests,
            max_pixels: config.max_inflight_pixels,
        }),
        engine_names: pipeline::EngineNames::default(),
    });
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let runner_config = jobs::runner::RunnerConfig {
        concurrency: config.job_runners,
        reclaim_idle: Duration::from_secs(config.job_reclaim_secs.max(1)),
        consumer: config.replica_name(),
        max_result_bytes: config.max_job_blob_bytes,
    };
    // If this future is dropped, the runners go with their JoinSet.
    let mut runners = tokio::task::JoinSet::new();
    jobs::runner::spawn(
        &mut runners,
        store.clone(),
        pipeline.clone(),
        runner_config,
        stopped,
    );
    let budget = jobs::admission::Budget {
        max_jobs: config.max_queued_jobs,
        max_pixels: config.max_queued_pixels,
    };
    let store_for_health = store.clone();
    let service = service::InpaintingService::new(
        pipeline,
        store,
        budget,
        config.service.max_image_pixels,
        config.max_job_blob_bytes,
    );
    // Serving from the start; `follow_store` says when the store is not.
    let (startup, health) =
        not_serving_yet::<InpaintingServer<service::InpaintingService<S>>>().await;
    startup.ready().await;
    let reporter = startup.reporter().clone();
    let server = InpaintingServer::new(service)
        .max_decoding_message_size(config.max_request_bytes())
        .max_encoding_message_size(config.service.max_message_bytes());
    // With a keys file, every call names its tenant by its key.
    let keys = match &config.api_keys {
        Some(path) => Some(Arc::new(auth::Keys::load(path).map_err(RunError::Keys)?)),
        None => None,
    };
    let server =
        tonic::service::interceptor::InterceptedService::new(server, move |request| match &keys {
            Some(keys) => keys.check(request),
            None => Ok(request),
        });
    runners.spawn(jobs::health::follow_store(
        store_for_health,
        reporter.clone(),
        vec![
            <InpaintingServer<service::InpaintingService<S>> as tonic::server::NamedService>::NAME,
        ],
        stop.subscribe(),
    ));
    // The web port stops with the gRPC port.
    let web_task = match web {
        Some(listener) => {
            let router = web::router(server.clone(), &config.web_allow_origins)?;
            let mut stopping = stop.subscribe();
            let stopped = async move {
                let _ = stopping.wait_for(|stop| *stop).await;
            };
            Some(tokio::spawn(web::serve(listener, router, stopped)))
        }
        None => None,
    };
    let mut routes = RoutesBuilder::default();
    routes.add_service(health).add_service(server);
    let served = inpaint_common::serve(
        listener,
        routes,
        &[inpaint_proto::v1::inpainting_server::SERVICE_NAME],
        &config.service,
        shutdown,
    )
    .await;
    let _ = stop.send(true);
    if let Some(task) = web_task {
        match task.await {
            Ok(Err(err)) => tracing::warn!(%err, "web port"),
            Err(err) => tracing::warn!(%err, "web port task"),
            Ok(Ok(())) => {}
        }
    }
    while runners.join_next().await.is_some() {}
    Ok(served?)
}

/// A Redis URL fit for a log: the password (`redis://:PASSWORD@host`)
/// replaced by `***`.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::without_password;

    #[test]
    fn redis_passwords_stay_out_of_logs() {
        assert_eq!(
            without_password("rediss://:s3cr@t@redis:6380/0"),
            "rediss://:***@redis:6380/0"
        );
        assert_eq!(
            without_password("redis://app:pw@redis:6379"),
            "redis://app:***@redis:6379"
        );
        assert_eq!(without_password("redis://redis:6379"), "redis://redis:6379");
    }
}
