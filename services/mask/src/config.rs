//! Mask service configuration.

use clap::Parser;
use inpaint_common::ServiceArgs;

/// inpaint-mask: mask operators, crop planning and compositing.
#[derive(Debug, Clone, Parser)]
#[command(version)]
pub struct Config {
    #[command(flatten)]
    pub service: ServiceArgs,
}

impl Config {
    pub fn local(listen: std::net::SocketAddr) -> Self {
        Self {
            service: ServiceArgs::local(listen),
        }
    }
}
