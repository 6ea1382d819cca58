//! `inpaint serve`: the listen addresses of the four services and the web
//! page.

use std::net::SocketAddr;

use clap::Args;

use super::model::ModelArgs;

#[derive(Args)]
pub struct ServeArgs {
    /// Gateway (public API) address.
    #[arg(
        long,
        env = "INPAINT_GATEWAY_LISTEN",
        default_value = "127.0.0.1:50051"
    )]
    pub gateway: SocketAddr,
    /// Segmentation service address.
    #[arg(
        long,
        env = "INPAINT_SEGMENTATION_LISTEN",
        default_value = "127.0.0.1:50052"
    )]
    pub segmentation: SocketAddr,
    /// Mask service address.
    #[arg(long, env = "INPAINT_MASK_LISTEN", default_value = "127.0.0.1:50053")]
    pub mask: SocketAddr,
    /// Inpaint worker address.
    #[arg(long, env = "INPAINT_WORKER_LISTEN", default_value = "127.0.0.1:50054")]
    pub worker: SocketAddr,
    /// The page to try the cluster in a browser (and gRPC-Web).
    #[arg(long, env = "INPAINT_WEB_LISTEN", default_value = "127.0.0.1:8080")]
    pub web: SocketAddr,
    /// No web page.
    #[arg(long)]
    pub no_web: bool,
    #[command(flatten)]
    pub models: ModelArgs,
    /// Log format.
    #[arg(long, env = "INPAINT_LOG_FORMAT", value_enum, default_value_t = inpaint_common::LogFormat::Pretty)]
    pub log_format: inpaint_common::LogFormat,
}
