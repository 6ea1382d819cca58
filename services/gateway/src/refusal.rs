//! A budget's "no": why a call or a job was refused, and when to try
//! again. Shared by the in-flight budget and the job budget.

use std::time::Duration;

/// Why a call or a submission was refused, and when to try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: String,
    pub retry_after: Duration,
}
