//! Worker configuration.

use clap::Parser;
use inpaint_common::ServiceArgs;

/// inpaint-worker: repaints crops with native and model engines.
#[derive(Debug, Clone, Parser)]
#[command(version)]
pub struct Config {
    #[command(flatten)]
    pub service: ServiceArgs,

    /// Crops repainted at once (CPU threads used for engines); 0 = one per core.
    #[arg(long, env = "INPAINT_WORKER_PARALLELISM", default_value_t = 0)]
    pub parallelism: usize,
}

impl Config {
    pub fn local(listen: std::net::SocketAddr) -> Self {
        Self {
            service: ServiceArgs::local(listen),
            parallelism: 0,
        }
    }

    pub fn effective_parallelism(&self) -> usize {
        match self.parallelism {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}
