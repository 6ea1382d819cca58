//! The `inpaint` command as a library: the embedded cluster (all four
//! services in one process on loopback) and the client calls, so that tests
//! drive exactly what users run.

pub mod batch;
pub mod client;
pub mod embedded;
pub mod home;
pub mod mask_ops;
pub mod probe;
pub mod retry;
