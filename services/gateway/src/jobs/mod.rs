//! Asynchronous jobs: one store trait with an in-memory implementation (the
//! embedded default) and a Redis one (shared by gateway replicas), a runner
//! that executes queued jobs stage by stage, and admission control.

pub mod admission;
pub mod health;
pub mod memory;
pub mod redis;
pub mod runner;

use std::future::Future;
use std::time::Duration;

use inpaint_proto::v1::{Job, JobEvent, JobState};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("job store: {0}")]
    Backend(String),
    #[error("job store: stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<::redis::RedisError> for StoreError {
    fn from(e: ::redis::RedisError) -> Self {
        StoreError::Backend(e.to_string())
    }
}

/// A job to create.
pub struct NewJob {
    /// The encoded `InpaintRequest`.
    pub input: Vec<u8>,
    /// Its tenant ("" without auth): the job's id is scoped by it
    /// (`auth::scoped`).
    pub tenant: String,
    /// Already scoped by the tenant.
    pub idempotency_key: Option<String>,
    /// Pixels of its image, for admission accounting.
    pub pixels: u64,
    /// The submitter's trace context (`traceparent`; "" without one), so
    /// the runner's spans join the submitter's trace.
    pub traceparent: String,
}

/// One delivery of a queued job to a runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub job_id: String,
    /// Backend handle for acknowledging it (a stream entry id in Redis).
    pub delivery: String,
}

/// How much is queued or running, across every replica sharing the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    pub jobs: u64,
    pub pixels: u64,
}

/// The work queue as runners see it, across every replica.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepths {
    /// Queued, not yet claimed by any runner.
    pub waiting: u64,
    /// Claimed by a runner and not yet done with (acknowledged).
    pub claimed: u64,
}

/// Job records, blobs, progress events and the work queue. Every method is
/// safe to call from any replica at any time.
pub trait JobStore: Send + Sync + 'static {
    /// Creates and enqueues a job, or returns the existing one for a known
    /// idempotency key (then `Job.existing` is set).
    fn create(&self, job: NewJob) -> impl Future<Output = Result<Job, StoreError>> + Send;
    fn get(&self, id: &str) -> impl Future<Output = Result<Option<Job>, StoreError>> + Send;
    fn input(&self, id: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;
    /// The trace context the job was submitted under ("" when none).
    fn traceparent(&self, id: &str) -> impl Future<Output = Result<String, StoreError>> + Send;
    /// Records a progress event (sequence numbers are assigned here) and
    /// moves the job's state and stage with it. Events after the job ended
    /// are dropped and false is returned.
    fn progress(
        &self,
        id: &str,
        event: JobEvent,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Events with sequence > `after`, waiting up to `wait` for the first.
    fn events_after(
        &self,
        id: &str,
        after: u64,
        wait: Duration,
    ) -> impl Future<Output = Result<Vec<JobEvent>, StoreError>> + Send;
    /// Stores the result and ends the job as SUCCEEDED, once: true for the
    /// caller that did it, false if the job had already ended.
    fn succeed(
        &self,
        id: &str,
        result: Vec<u8>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    fn result(&self, id: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;
    /// Flags the job for cancellation; a queued job ends CANCELLED at once.
    fn cancel(&self, id: &str) -> impl Future<Output = Result<Option<Job>, StoreError>> + Send;
    /// Takes the next queued job for `consumer`, waiting up to `wait`.
    fn claim(
        &self,
        consumer: &str,
        wait: Duration,
    ) -> impl Future<Output = Result<Option<Claim>, StoreError>> + Send;
    /// Takes over jobs claimed by others that made no progress for `idle`
    /// (their replica died).
    fn reclaim(
        &self,
        consumer: &str,
        idle: Duration,
    ) -> impl Future<Output = Result<Vec<Claim>, StoreError>> + Send;
    /// The job is done with (ended, or not ours to run): forget the delivery.
    fn ack(&self, claim: &Claim) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Keeps a claim alive while a long stage runs.
    fn touch(
        &self,
        claim: &Claim,
        consumer: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn backlog(&self) -> impl Future<Output = Result<Backlog, StoreError>> + Send;
    fn queue_depths(&self) -> impl Future<Output = Result<QueueDepths, StoreError>> + Send;
    /// Whether the store answers (health follows it).
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Ended jobs do not change any more.
pub fn is_final(state: JobState) -> bool {
    matches!(
        state,
        JobState::Succeeded | JobState::Failed | JobState::Cancelled
    )
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A new random job id (128 bits, hex).
pub fn new_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the OS per instance; two of them give 128
    // unpredictable bits without another dependency.
    let mut bits = [0u64; 2];
    for (i, b) in bits.iter_mut().enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(now_ms() as u64 ^ i as u64);
        h.write_u32(std::process::id());
        *b = h.finish();
    }
    format!("{:016x}{:016x}", bits[0], bits[1])
}

/// The event that moves a job to `state` at `stage`.
pub fn event(id: &str, state: JobState, stage: &str) -> JobEvent {
    JobEvent {
        job_id: id.to_string(),
        state: state as i32,
        stage: stage.to_string(),
        unix_ms: now_ms(),
        ..Default::default()
    }
}

/// Applies an event to a job record.
pub fn apply(job: &mut Job, e: &JobEvent) {
    job.state = e.state;
    job.stage = e.stage.clone();
    if e.regions_total > 0 {
        job.regions_done = e.regions_done;
        job.regions_total = e.regions_total;
    }
    if !e.error.is_empty() {
        job.error = e.error.clone();
    }
    job.updated_unix_ms = e.unix_ms;
}
