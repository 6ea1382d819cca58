//! The gateway's own metrics (the gRPC ones come from `inpaint_common`).

use std::sync::OnceLock;

use inpaint_common::metrics::{SECONDS, counter_vec, gauge_vec, histogram_vec};
use prometheus::{CounterVec, GaugeVec, HistogramVec};

/// Time per request stage (decode, segment, prepare, inpaint, composite,
/// encode).
pub fn stage_seconds() -> &'static HistogramVec {
    static M: OnceLock<HistogramVec> = OnceLock::new();
    M.get_or_init(|| {
        histogram_vec(
            "inpaint_gateway_stage_seconds",
            "Time per request stage",
            &["stage"],
            &SECONDS,
        )
    })
}

/// Jobs that ended, by how.
pub fn jobs_ended() -> &'static CounterVec {
    static M: OnceLock<CounterVec> = OnceLock::new();
    M.get_or_init(|| {
        counter_vec(
            "inpaint_jobs_ended_total",
            "Jobs this replica ended, by final state",
            &["state"],
        )
    })
}

/// Submissions refused by the admission budget.
pub fn admission_refusals() -> &'static CounterVec {
    static M: OnceLock<CounterVec> = OnceLock::new();
    M.get_or_init(|| {
        counter_vec(
            "inpaint_admission_refusals_total",
            "Requests refused by an admission budget (api: jobs, or inpaint for synchronous calls)",
            &["api"],
        )
    })
}

/// The shared backlog (queued or running, all replicas) as last read.
pub fn backlog() -> &'static GaugeVec {
    static M: OnceLock<GaugeVec> = OnceLock::new();
    M.get_or_init(|| {
        gauge_vec(
            "inpaint_jobs_backlog",
            "Jobs and pixels queued or running, all replicas",
            &["kind"],
        )
    })
}

/// Jobs a replica took over from one that stopped (their claims idle).
pub fn jobs_reclaimed() -> &'static CounterVec {
    static M: OnceLock<CounterVec> = OnceLock::new();
    M.get_or_init(|| {
        counter_vec(
            "inpaint_jobs_reclaimed_total",
            "Jobs taken over from a replica that stopped",
            &[],
        )
    })
}
