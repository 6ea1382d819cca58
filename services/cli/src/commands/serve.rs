//! `inpaint serve`: the whole cluster in this process until a stop signal.

use inpaint_cli::embedded::{Cluster, ClusterConfig};

use crate::args::ServeArgs;

/// Starts the four services (and the web page) and runs until stopped.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    inpaint_common::telemetry::init(args.log_format);
    let cluster = Cluster::start(ClusterConfig {
        gateway: args.gateway,
        segmentation: args.segmentation,
        mask: args.mask,
        worker: args.worker,
        worker_models: args.models.usable_worker_models(),
        ort_dylib: args.models.ort_dylib()?,
        models_dir: args.models.models_dir()?,
        sd_models: args.models.sd_models.clone(),
        sd_embeddings: args.models.sd_embeddings.clone(),
        sd_loras: args.models.sd_loras.clone(),
        subject_model: args.models.subject_model,
        web: (!args.no_web).then_some(args.web),
        ..ClusterConfig::default()
    })
    .await?;
    tracing::info!(gateway = %cluster.gateway, "embedded cluster running; Ctrl+C to stop");
    if let Some(web) = cluster.web {
        tracing::info!("try it in a browser: http://{web}/");
    }
    inpaint_common::shutdown_signal().await;
    cluster.shutdown().await
}
