//! Gateway configuration.

use std::time::Duration;

use clap::Parser;
use inpaint_common::ServiceArgs;

/// inpaint-gateway: the public Inpainting API.
#[derive(Debug, Clone, Parser)]
#[command(version)]
pub struct Config {
    #[command(flatten)]
    pub service: ServiceArgs,

    /// Segmentation service URL.
    #[arg(
        long,
        env = "INPAINT_SEGMENTATION_URL",
        default_value = "http://127.0.0.1:50052"
    )]
    pub segmentation_url: String,

    /// Mask service URL.
    #[arg(
        long,
        env = "INPAINT_MASK_URL",
        default_value = "http://127.0.0.1:50053"
    )]
    pub mask_url: String,

    /// Inpaint worker URL.
    #[arg(
        long,
        env = "INPAINT_WORKER_URL",
        default_value = "http://127.0.0.1:50054"
    )]
    pub worker_url: String,

    /// Largest request accepted (encoded image plus mask), in bytes.
    #[arg(long, env = "INPAINT_MAX_UPLOAD_BYTES", default_value_t = 64 << 20)]
    pub max_upload_bytes: usize,

    /// Longest a single stage call may take, in seconds.
    #[arg(long, env = "INPAINT_STAGE_TIMEOUT_SECS", default_value_t = 120)]
    pub stage_timeout_secs: u64,

    /// How often stage host names are resolved again, in seconds (new and
    /// departed pods behind a headless Service).
    #[arg(long, env = "INPAINT_RESOLVE_EVERY_SECS", default_value_t = 5)]
    pub resolve_every_secs: u64,
}

impl Config {
    pub fn local(
        listen: std::net::SocketAddr,
        segmentation: String,
        mask: String,
        worker: String,
    ) -> Self {
        Self {
            service: ServiceArgs::local(listen),
            segmentation_url: segmentation,
            mask_url: mask,
            worker_url: worker,
            max_upload_bytes: 64 << 20,
            stage_timeout_secs: 120,
            resolve_every_secs: 5,
        }
    }

    /// Largest public request message: the uploads plus protobuf framing.
    pub fn max_request_bytes(&self) -> usize {
        self.max_upload_bytes.saturating_add(1 << 20)
    }

    pub fn stage_timeout(&self) -> Duration {
        Duration::from_secs(self.stage_timeout_secs)
    }
}
