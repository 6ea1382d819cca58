//! Limits of the public parameters that more than one service checks: the
//! gateway refuses a request that breaks one before any stage runs, and the
//! stage that uses the value checks it again for its own callers.

/// Longest side of the only-masked working size.
pub const MAX_WORK_SIDE: u32 = 4096;
/// Shortest nonzero side of the working size.
pub const MIN_WORK_SIDE: u32 = 8;
/// Largest Telea neighbourhood radius.
pub const MAX_RADIUS: u32 = 64;
