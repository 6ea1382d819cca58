//! Admission control: a budget of queued-or-running jobs and pixels, checked
//! against the backlog every replica shares. Beyond it a submission is
//! refused with RESOURCE_EXHAUSTED and a retry-after hint, never queued.

use std::time::Duration;

use super::Backlog;
pub use crate::refusal::Refusal;

#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub max_jobs: u64,
    pub max_pixels: u64,
}

impl Budget {
    /// Admits a job of `pixels` on top of `backlog`, or says why not. The
    /// hint grows with how far over the budget the backlog is.
    pub fn admit(&self, backlog: Backlog, pixels: u64) -> Result<(), Refusal> {
        let over_jobs = backlog.jobs + 1 > self.max_jobs;
        let over_pixels = backlog.pixels + pixels > self.max_pixels && backlog.jobs > 0;
        if !over_jobs && !over_pixels {
            return Ok(());
        }
        let load = (backlog.jobs as f64 / self.max_jobs.max(1) as f64)
            .max(backlog.pixels as f64 / self.max_pixels.max(1) as f64);
        let retry_after = Duration::from_secs((load * 2.0).ceil().clamp(1.0, 60.0) as u64);
        let reason = if over_jobs {
            format!(
                "{} jobs queued or running, the budget is {}",
                backlog.jobs, self.max_jobs
            )
        } else {
            format!(
                "{} pixels queued or running, the budget is {}",
                backlog.pixels, self.max_pixels
            )
        };
        Err(Refusal {
            reason,
            retry_after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_counts_jobs_and_pixels() {
        let b = Budget {
            max_jobs: 2,
            max_pixels: 1000,
        };
        assert!(
            b.admit(
                Backlog {
                    jobs: 1,
                    pixels: 100
                },
                500
            )
            .is_ok()
        );
        assert!(
            b.admit(
                Backlog {
                    jobs: 2,
                    pixels: 100
                },
                1
            )
            .is_err()
        );
        let r = b
            .admit(
                Backlog {
                    jobs: 1,
                    pixels: 900,
                },
                500,
            )
            .unwrap_err();
        assert!(r.reason.contains("pixels") && r.retry_after >= Duration::from_secs(1));
        // One job larger than the whole budget still runs when nothing else does.
        assert!(b.admit(Backlog::default(), 5000).is_ok());
    }
}
