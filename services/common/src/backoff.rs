//! How long to wait before trying again after a run of failures: 250 ms,
//! doubling with each failure, at most 5 s. The gateway's job claims and
//! the CLI's calls both pace their retries with it.

use std::time::Duration;

/// The pause after the `failures`-th failure in a row (1 = the first).
pub fn delay(failures: u32) -> Duration {
    let ms = 250u64 << failures.clamp(1, 6).saturating_sub(1);
    Duration::from_millis(ms.min(5000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_then_stays_at_five_seconds() {
        let pauses: Vec<u128> = (1..=7).map(|f| delay(f).as_millis()).collect();
        assert_eq!(pauses, [250, 500, 1000, 2000, 4000, 5000, 5000]);
    }
}
