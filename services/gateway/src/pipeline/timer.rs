//! Per-stage timings, for the response and the stage histogram.

use std::time::Instant;

use inpaint_proto::v1::StageTiming;

/// Accumulates per-stage timings for the response.
pub struct Timer {
    pub timings: Vec<StageTiming>,
    started: Instant,
}

impl Timer {
    pub fn new() -> Self {
        Self {
            timings: Vec::new(),
            started: Instant::now(),
        }
    }

    pub fn lap(&mut self, stage: &str) {
        let now = Instant::now();
        crate::metrics::stage_seconds()
            .with_label_values(&[stage])
            .observe((now - self.started).as_secs_f64());
        self.timings.push(StageTiming {
            stage: stage.into(),
            millis: (now - self.started).as_secs_f64() * 1e3,
        });
        self.started = now;
    }
}
