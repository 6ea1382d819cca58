//! The work one gateway process holds at once: requests and their pixels
//! (from the header, before decoding). Synchronous `Inpaint` calls are
//! admitted only within the budget and refused beyond it at once
//! (RESOURCE_EXHAUSTED with a retry-after hint), never queued; the job
//! runners' work is counted in the same budget (already admitted by the
//! job budget, it is never refused here), so a burst of synchronous calls
//! cannot pile on top of running jobs until the pod runs out of memory.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::refusal::Refusal;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_requests: u64,
    pub max_pixels: u64,
}

#[derive(Debug)]
pub struct InFlight {
    limits: Limits,
    held: Mutex<Held>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Held {
    requests: u64,
    pixels: u64,
}

/// Work counted until dropped.
#[derive(Debug)]
pub struct Permit {
    owner: Arc<InFlight>,
    pixels: u64,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut held = self.owner.held.lock().expect("in-flight lock");
        held.requests -= 1;
        held.pixels -= self.pixels;
    }
}

impl InFlight {
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            held: Mutex::new(Held::default()),
        })
    }

    /// Admits a request of `pixels`, or says why not. A request larger
    /// than the whole pixel budget still runs when nothing else does.
    pub fn try_admit(self: &Arc<Self>, pixels: u64) -> Result<Permit, Refusal> {
        let mut held = self.held.lock().expect("in-flight lock");
        let over_requests = held.requests + 1 > self.limits.max_requests;
        let over_pixels = held.pixels + pixels > self.limits.max_pixels && held.requests > 0;
        if over_requests || over_pixels {
            let load = (held.requests as f64 / self.limits.max_requests.max(1) as f64)
                .max(held.pixels as f64 / self.limits.max_pixels.max(1) as f64);
            return Err(Refusal {
                reason: if over_requests {
                    format!(
                        "{} requests in flight on this gateway, the limit is {}",
                        held.requests, self.limits.max_requests
                    )
                } else {
                    format!(
                        "{} pixels in flight on this gateway, the limit is {}",
                        held.pixels, self.limits.max_pixels
                    )
                },
                retry_after: Duration::from_secs(load.ceil().clamp(1.0, 30.0) as u64),
            });
        }
        held.requests += 1;
        held.pixels += pixels;
        Ok(self.permit(pixels))
    }

    /// Counts work admitted elsewhere (a job run), without refusing it.
    pub fn count(self: &Arc<Self>, pixels: u64) -> Permit {
        let mut held = self.held.lock().expect("in-flight lock");
        held.requests += 1;
        held.pixels += pixels;
        self.permit(pixels)
    }

    fn permit(self: &Arc<Self>, pixels: u64) -> Permit {
        Permit {
            owner: self.clone(),
            pixels,
        }
    }

    /// Requests and pixels held now.
    pub fn held(&self) -> (u64, u64) {
        let held = self.held.lock().expect("in-flight lock");
        (held.requests, held.pixels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_pixels_are_bounded_and_given_back() {
        let gate = InFlight::new(Limits {
            max_requests: 2,
            max_pixels: 1000,
        });
        let big = gate.try_admit(5000).expect("alone, a large request runs");
        assert!(gate.try_admit(1).is_err(), "over the pixels");
        drop(big);
        let a = gate.try_admit(400).unwrap();
        let _b = gate.try_admit(400).unwrap();
        let refused = gate.try_admit(1).unwrap_err();
        assert!(refused.reason.contains("2 requests"), "{}", refused.reason);
        assert!(refused.retry_after >= Duration::from_secs(1));
        // Job runs count without being refused, and hold the budget.
        let job = gate.count(700);
        assert_eq!(gate.held(), (3, 1500));
        drop(a);
        assert!(gate.try_admit(1).is_err(), "the job still holds it");
        drop(job);
        assert!(gate.try_admit(100).is_ok());
        assert_eq!(gate.held(), (1, 400), "permits given back on drop");
    }
}
