//! Plumbing shared by every service: configuration pieces, telemetry,
//! shutdown, `serve()` with health and reflection, gRPC errors, and
//! conversions between wire tensors and pixel buffers.

pub mod backoff;
pub mod balance;
pub mod coco;
pub mod config;
pub mod limits;
pub mod memory;
pub mod metrics;
pub mod sd_params;
pub mod seed;
pub mod serve;
pub mod shutdown;
pub mod status;
pub mod telemetry;
pub mod tensor;
pub mod tls;
pub mod trace;

pub use config::{LogFormat, ServiceArgs};
pub use serve::{ServeError, WINDOW, endpoint, serve};
pub use shutdown::shutdown_signal;

/// gRPC health (re-exported so services share one tonic-health version).
pub mod health {
    pub use tonic_health::ServingStatus;
    pub use tonic_health::server::{HealthReporter, health_reporter};
}
