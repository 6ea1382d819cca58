//! Seeds for the crops of one request: the gateway seeds each crop it
//! sends, the worker each crop of a call, with the same rule.

/// Crop `i`'s seed: the WebUI's batch rule (seed + index) for Stable
/// Diffusion, so a WebUI user's seed gives the same noise; well-spread
/// seeds for the other engines.
pub fn crop_seed(engine: &str, seed: u64, i: usize) -> u64 {
    if engine == "sd" {
        seed.wrapping_add(i as u64)
    } else {
        seed.wrapping_add((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }
}
