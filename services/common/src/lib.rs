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

pub mod health;
