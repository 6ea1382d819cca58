//! Runs queued jobs: claims one, runs the pipeline with progress events and
//! cancellation checks at each stage boundary, stores the result, ends the
//! job once, acknowledges it. A reclaim loop takes over jobs whose replica
//! stopped.

use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

use inpaint_proto::v1::{InpaintRequest, JobEvent, JobState};
use prost::Message;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::{Claim, JobStore, event};
use crate::error::Error;
use crate::pipeline::{Checked, Pipeline, Progress, Stage, validate};

#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Jobs this replica runs at once.
    pub concurrency: usize,
    /// How long a claim may show no progress before another replica takes it.
    pub reclaim_idle: Duration,
    /// Unique per replica (and stable across its runner tasks).
    pub consumer: String,
    /// A larger result fails the job instead of being stored.
    pub max_result_bytes: usize,
}

/// Starts the runner tasks in `tasks`; they stop when `stop` turns true, and
/// die with the set when it is dropped (an abrupt stop: their claims stay
/// pending for another replica to take over).
pub fn spawn<S: JobStore>(
    tasks: &mut JoinSet<()>,
    store: Arc<S>,
    pipeline: Arc<Pipeline>,
    config: RunnerConfig,
    stop: watch::Receiver<bool>,
) {
    // Claims are refreshed this often while a job runs, so a long stage is
    // not mistaken for a dead replica.
    let heartbeat = config.reclaim_idle / 3;
    let max_result = config.max_result_bytes;
    for n in 0..config.concurrency {
        let (store, pipeline, mut stop) = (store.clone(), pipeline.clone(), stop.clone());
        let consumer = format!("{}-{n}", config.consumer);
        tasks.spawn(async move {
            let mut backoff = Backoff::default();
            loop {
                let claim = tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    claim = store.claim(&consumer, Duration::from_secs(2)) => claim,
                };
                match claim {
                    Ok(claim) => {
                        if backoff.failures > 0 {
                            tracing::info!(consumer, "claiming jobs again");
                        }
                        backoff = Backoff::default();
                        if let Some(claim) = claim {
                            run_one(&*store, &pipeline, &claim, &consumer, heartbeat, max_result)
                                .await
                        }
                    }
                    Err(err) => {
                        let pause = backoff.next();
                        // One warning per outage and then every tenth, not one a second.
                        if backoff.failures % 10 == 1 {
                            tracing::warn!(%err, failures = backoff.failures, "cannot claim a job; retrying");
                        }
                        tokio::select! {
                            _ = stop.wait_for(|s| *s) => return,
                            _ = tokio::time::sleep(pause) => {}
                        }
                    }
                }
            }
        });
    }
    if config.concurrency > 0 {
        let (store, pipeline, mut stop) = (store.clone(), pipeline.clone(), stop.clone());
        let consumer = format!("{}-reclaim", config.consumer);
        let idle = config.reclaim_idle;
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    _ = tokio::time::sleep(idle / 2) => {}
                }
                refresh_backlog(&*store).await;
                match store.reclaim(&consumer, idle).await {
                    Ok(claims) => {
                        crate::metrics::jobs_reclaimed()
                            .with_label_values::<&str>(&[])
                            .inc_by(claims.len() as f64);
                        for claim in claims {
                            tracing::info!(job = %claim.job_id, "took over a job from a stopped replica");
                            run_one(&*store, &pipeline, &claim, &consumer, heartbeat, max_result).await;
                        }
                    }
                    Err(err) => tracing::warn!(%err, "reclaim failed"),
                }
            }
        });
    }
}

/// Counts failed claims in a row, to pace the retries.
#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    fn next(&mut self) -> Duration {
        self.failures += 1;
        inpaint_common::backoff::delay(self.failures)
    }
}

/// Reports stages as job events; a cancel request stops the run at the next
/// stage boundary.
struct JobProgress<'a, S> {
    store: &'a S,
    claim: &'a Claim,
    consumer: &'a str,
}

impl<S: JobStore> Progress for JobProgress<'_, S> {
    async fn report(&self, stage: Stage) -> Result<(), Error> {
        let id = &self.claim.job_id;
        let job = self.store.get(id).await.map_err(store_error)?;
        if job.as_ref().is_none_or(|j| j.cancel_requested) {
            return Err(Error::Cancelled);
        }
        let (name, done, total) = stage.describe();
        let (region, step, steps) = stage.step().unwrap_or_default();
        let e = JobEvent {
            regions_done: done,
            regions_total: total,
            region,
            step,
            steps,
            ..event(id, JobState::Running, name)
        };
        self.store.progress(id, e).await.map_err(store_error)?;
        self.store
            .touch(self.claim, self.consumer)
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

/// Refreshes the backlog gauges from the store: jobs and pixels queued or
/// running, and the queue as runners see it (waiting, claimed).
async fn refresh_backlog<S: JobStore>(store: &S) {
    if let Ok(b) = store.backlog().await {
        crate::metrics::backlog()
            .with_label_values(&["jobs"])
            .set(b.jobs as f64);
        crate::metrics::backlog()
            .with_label_values(&["pixels"])
            .set(b.pixels as f64);
    }
    if let Ok(q) = store.queue_depths().await {
        crate::metrics::backlog()
            .with_label_values(&["waiting"])
            .set(q.waiting as f64);
        crate::metrics::backlog()
            .with_label_values(&["claimed"])
            .set(q.claimed as f64);
    }
}

fn store_error(e: super::StoreError) -> Error {
    Error::Store(e.to_string())
}

/// How long a job run keeps retrying a stage that is busy or unreachable.
const STAGE_RETRY_FOR: Duration = Duration::from_secs(120);

/// Runs the pipeline, again after a stage's RESOURCE_EXHAUSTED or
/// UNAVAILABLE (a full model queue, a busy mask service, a worker replica
/// going away): a job is work someone is waiting for, not a call to fail
/// back to its client. Waits what the stage's retry-after says (1 s when
/// it says nothing, at most 10 s), for up to two minutes in all.
async fn inpaint_retrying(
    pipeline: &Pipeline,
    request: Checked,
    progress: &JobProgress<'_, impl JobStore>,
) -> Result<inpaint_proto::v1::InpaintResponse, Error> {
    let give_up = tokio::time::Instant::now() + STAGE_RETRY_FOR;
    loop {
        match pipeline.inpaint(request.clone(), progress).await {
            Err(Error::Stage { stage, status })
                if matches!(
                    status.code(),
                    tonic::Code::ResourceExhausted | tonic::Code::Unavailable
                ) && tokio::time::Instant::now() < give_up =>
            {
                let wait = status
                    .metadata()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(1)
                    .clamp(1, 10);
                tracing::info!(stage, code = ?status.code(), wait, "stage busy; the job retries");
                tokio::time::sleep(Duration::from_secs(wait)).await;
            }
            outcome => return outcome,
        }
    }
}

#[tracing::instrument(skip_all, fields(job = %claim.job_id))]
async fn run_one<S: JobStore>(
    store: &S,
    pipeline: &Pipeline,
    claim: &Claim,
    consumer: &str,
    heartbeat: Duration,
    max_result: usize,
) {
    let id = &claim.job_id;
    // The run joins the trace the job was submitted under.
    let span = tracing::info_span!("job", otel.name = "job", job = %id);
    if let Ok(traceparent) = store.traceparent(id).await {
        inpaint_common::trace::continue_trace(&span, &traceparent);
    }
    let outcome = async {
        let Some(job) = store.get(id).await.map_err(store_error)? else {
            return Ok::<(), Error>(()); // expired
        };
        if super::is_final(job.state()) {
            return Ok(()); // cancelled while queued, or finished by another replica
        }
        let input = store
            .input(id)
            .await
            .map_err(store_error)?
            .ok_or(Error::Store("input expired".into()))?;
        let request = InpaintRequest::decode(input.as_slice())
            .map_err(|e| Error::Store(format!("corrupt input: {e}")))?;
        // Checked at submission; held to this replica's rules (another
        // version's may have stored it) as it is rebuilt. A request they
        // refuse fails the job with the field named.
        let request = validate::request(request, pipeline.max_image_pixels);
        // Admitted by the job budget; counted so synchronous calls see it.
        let pixels = request.as_ref().map_or(0, |r| r.pixels);
        let _held = pipeline.inflight.count(pixels);
        let progress = JobProgress {
            store,
            claim,
            consumer,
        };
        let beating = async {
            loop {
                tokio::time::sleep(heartbeat).await;
                if let Err(err) = store.touch(claim, consumer).await {
                    tracing::warn!(%err, "cannot refresh the job's claim");
                }
            }
        };
        let outcome = tokio::select! {
            outcome = async {
                inpaint_retrying(pipeline, request?, &progress).await
            } => outcome,
            never = beating => never,
        };
        // Whichever way it ends, it ends once: counted when this run ended it.
        let (state, ended) = match outcome {
            Ok(response) if response.encoded_len() > max_result => {
                let e = JobEvent {
                    error: format!(
                        "the result is {} bytes; jobs keep at most {max_result}",
                        response.encoded_len()
                    ),
                    ..event(id, JobState::Failed, "failed")
                };
                ("failed", store.progress(id, e).await.map_err(store_error)?)
            }
            Ok(response) => {
                let ended = store
                    .succeed(id, response.encode_to_vec())
                    .await
                    .map_err(store_error)?;
                if !ended {
                    tracing::info!("job had already ended; result dropped");
                }
                ("succeeded", ended)
            }
            // The store failed under the run (a progress report, a cancel
            // check): the job did not fail, so it is not marked failed even
            // if the store is back by now; left claimed, it is taken over
            // and run again.
            Err(Error::Store(reason)) => return Err(Error::Store(reason)),
            Err(Error::Cancelled) => {
                let e = event(id, JobState::Cancelled, "cancelled");
                (
                    "cancelled",
                    store.progress(id, e).await.map_err(store_error)?,
                )
            }
            Err(err) => {
                let status: tonic::Status = err.into();
                let e = JobEvent {
                    error: format!("{:?}: {}", status.code(), status.message()),
                    ..event(id, JobState::Failed, "failed")
                };
                ("failed", store.progress(id, e).await.map_err(store_error)?)
            }
        };
        if ended {
            crate::metrics::jobs_ended()
                .with_label_values(&[state])
                .inc();
        }
        Ok(())
    }
    .instrument(span)
    .await;
    if let Err(err) = outcome {
        // Store trouble: leave the claim unacknowledged so a reclaim retries.
        tracing::warn!(%err, "job not finished; it will be retried");
        return;
    }
    if let Err(err) = store.ack(claim).await {
        tracing::warn!(%err, "cannot acknowledge the job");
    }
}
