//! Mask service configuration.

use clap::Parser;
use inpaint_common::ServiceArgs;

/// inpaint-mask: mask operators, crop planning and compositing.
#[derive(Debug, Clone, Parser)]
#[command(version)]
pub struct Config {
    #[command(flatten)]
    pub service: ServiceArgs,

    /// Prepare and Composite calls worked on at once; beyond it a call gets
    /// RESOURCE_EXHAUSTED with retry-after at once (0 = 64, above what one
    /// gateway sends at its defaults).
    #[arg(long, env = "INPAINT_MASK_MAX_INFLIGHT", default_value_t = 0)]
    pub max_inflight: usize,
}

impl Config {
    pub fn local(listen: std::net::SocketAddr) -> Self {
        Self {
            service: ServiceArgs::local(listen),
            max_inflight: 0,
        }
    }
}
