//! The public `inpaint.v1.Inpainting` gRPC service: the synchronous call and
//! the job API.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use inpaint_proto::v1::inpainting_server::Inpainting;
use inpaint_proto::v1::{
    CancelJobRequest, GetCapabilitiesRequest, GetCapabilitiesResponse, GetJobRequest,
    GetResultRequest, InpaintRequest, InpaintResponse, Job, JobEvent, JobState, PreviewMaskRequest,
    PreviewMaskResponse, SubmitJobOutcome, SubmitJobRequest, SubmitJobsRequest, SubmitJobsResponse,
    WatchJobRequest,
};
use prost::Message;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::auth::{Caller, public, scoped};
use crate::decode::image_pixels;
use crate::error::Error;
use crate::inflight::Permit;
use crate::jobs::admission::Budget;
use crate::jobs::{JobStore, NewJob, is_final};
use crate::pipeline::{Pipeline, Silent, validate};

/// Most jobs one SubmitJobs call may carry.
pub const MAX_BATCH_SUBMIT: usize = 1000;

pub struct InpaintingService<S> {
    pipeline: Arc<Pipeline>,
    store: Arc<S>,
    budget: Budget,
    max_image_pixels: u64,
    max_blob_bytes: usize,
}

impl<S: JobStore> InpaintingService<S> {
    pub fn new(
        pipeline: Arc<Pipeline>,
        store: Arc<S>,
        budget: Budget,
        max_image_pixels: u64,
        max_blob_bytes: usize,
    ) -> Self {
        Self {
            pipeline,
            store,
            budget,
            max_image_pixels,
            max_blob_bytes,
        }
    }

    /// Checks the request as `Inpaint` would (every rule that needs no
    /// pixels: the image header, the target, the parameters), applies the
    /// budget, and queues the checked request.
    async fn submit(&self, caller: &Caller, submit: SubmitJobRequest) -> Result<Job, Error> {
        limit_rate(caller)?;
        let request = submit
            .request
            .ok_or_else(|| Error::invalid("request", "is required"))?;
        let checked =
            validate::request(request, self.max_image_pixels).map_err(|e| e.within("request"))?;
        let pixels = checked.pixels;
        let key = (!submit.idempotency_key.is_empty()).then_some(submit.idempotency_key);
        if key.as_ref().is_some_and(|k| k.len() > 256) {
            return Err(Error::invalid("idempotency_key", "at most 256 bytes"));
        }
        // One tenant's key never finds another's job.
        let key = key.map(|k| scoped(caller.tenant(), &k));
        let backlog = self
            .store
            .backlog()
            .await
            .map_err(|e| Error::Store(e.to_string()))?;
        crate::metrics::backlog()
            .with_label_values(&["jobs"])
            .set(backlog.jobs as f64);
        crate::metrics::backlog()
            .with_label_values(&["pixels"])
            .set(backlog.pixels as f64);
        if let Err(refused) = self.budget.admit(backlog, pixels) {
            crate::metrics::admission_refusals()
                .with_label_values(&["jobs"])
                .inc();
            return Err(Error::Busy {
                reason: refused.reason,
                retry_after_secs: refused.retry_after.as_secs(),
            });
        }
        let input = checked.into_wire().encode_to_vec();
        if input.len() > self.max_blob_bytes {
            return Err(Error::invalid(
                "request",
                format!(
                    "is {} bytes encoded; jobs keep at most {} bytes",
                    input.len(),
                    self.max_blob_bytes
                ),
            ));
        }
        let new = NewJob {
            input,
            tenant: caller.tenant().to_string(),
            idempotency_key: key,
            pixels,
            traceparent: inpaint_common::trace::current_traceparent(),
        };
        self.store
            .create(new)
            .await
            .map(public_job)
            .map_err(|e| Error::Store(e.to_string()))
    }

    /// Admits a synchronous call of `pixels` into the tenant's own
    /// in-flight budget first, then the process's; the permits hold them
    /// until dropped.
    fn admit(&self, caller: &Caller, pixels: u64) -> Result<(Option<Permit>, Permit), Error> {
        let tenant = match &caller.0.inflight {
            Some(budget) => Some(budget.try_admit(pixels).map_err(busy("tenant"))?),
            None => None,
        };
        let process = self
            .pipeline
            .inflight
            .try_admit(pixels)
            .map_err(busy("inpaint"))?;
        Ok((tenant, process))
    }

    /// The caller's job `id` (public) as stored; another tenant's job is
    /// not found, as an unknown one.
    async fn job(&self, caller: &Caller, id: &str) -> Result<Job, Error> {
        self.store
            .get(&scoped(caller.tenant(), id))
            .await
            .map_err(|e| Error::Store(e.to_string()))?
            .ok_or_else(|| Error::NotFound(format!("no job {id:?} (never submitted, or expired)")))
    }
}

/// Spends one of the tenant's requests, or RESOURCE_EXHAUSTED with when
/// to come back.
fn limit_rate(caller: &Caller) -> Result<(), Error> {
    match caller.0.rate.as_ref().map(|rate| rate.take(1.0)) {
        Some(Err(wait)) => {
            crate::metrics::admission_refusals()
                .with_label_values(&["tenant_rate"])
                .inc();
            Err(Error::Busy {
                reason: format!("tenant {} is over its requests per second", caller.tenant()),
                retry_after_secs: wait.as_secs_f64().ceil() as u64,
            })
        }
        _ => Ok(()),
    }
}

/// RESOURCE_EXHAUSTED for a refusal by the in-flight budget `what`.
fn busy(what: &'static str) -> impl Fn(crate::refusal::Refusal) -> Error {
    move |refused| {
        crate::metrics::admission_refusals()
            .with_label_values(&[what])
            .inc();
        Error::Busy {
            reason: refused.reason,
            retry_after_secs: refused.retry_after.as_secs(),
        }
    }
}

/// A stored job as its tenant sees it (its public id).
fn public_job(mut job: Job) -> Job {
    job.id = public(&job.id).to_string();
    job
}

type EventStream = Pin<Box<dyn Stream<Item = Result<JobEvent, Status>> + Send>>;

#[tonic::async_trait]
impl<S: JobStore> Inpainting for InpaintingService<S> {
    #[instrument(skip_all, fields(image_bytes = request.get_ref().image.len()))]
    async fn inpaint(
        &self,
        request: Request<InpaintRequest>,
    ) -> Result<Response<InpaintResponse>, Status> {
        let caller = Caller::of(&request);
        let request = validate::request(request.into_inner(), self.max_image_pixels)
            .inspect_err(|err| tracing::warn!(%err, "request refused"))?;
        limit_rate(&caller)?;
        let _held = self.admit(&caller, request.pixels)?;
        match self.pipeline.inpaint(request, &Silent).await {
            Ok(response) => {
                tracing::info!(
                    unchanged = response.unchanged,
                    regions = response.regions.len(),
                    crops = response.crops.len(),
                    "inpainted"
                );
                Ok(Response::new(response))
            }
            Err(err) => {
                tracing::warn!(%err, "request failed");
                Err(err.into())
            }
        }
    }

    #[instrument(skip_all)]
    async fn submit_job(
        &self,
        request: Request<SubmitJobRequest>,
    ) -> Result<Response<Job>, Status> {
        let caller = Caller::of(&request);
        let job = self.submit(&caller, request.into_inner()).await?;
        tracing::info!(job = %job.id, existing = job.existing, "job submitted");
        Ok(Response::new(job))
    }

    #[instrument(skip_all, fields(jobs = request.get_ref().jobs.len()))]
    async fn submit_jobs(
        &self,
        request: Request<SubmitJobsRequest>,
    ) -> Result<Response<SubmitJobsResponse>, Status> {
        let caller = Caller::of(&request);
        let jobs = request.into_inner().jobs;
        if jobs.len() > MAX_BATCH_SUBMIT {
            return Err(
                Error::invalid("jobs", format!("at most {MAX_BATCH_SUBMIT} per call")).into(),
            );
        }
        let mut outcomes = Vec::with_capacity(jobs.len());
        for submit in jobs {
            outcomes.push(match self.submit(&caller, submit).await {
                Ok(job) => SubmitJobOutcome {
                    job: Some(job),
                    ..Default::default()
                },
                Err(err) => {
                    let status: Status = err.into();
                    SubmitJobOutcome {
                        job: None,
                        error_code: status.code() as i32,
                        error_message: status.message().to_string(),
                    }
                }
            });
        }
        Ok(Response::new(SubmitJobsResponse { outcomes }))
    }

    async fn get_job(&self, request: Request<GetJobRequest>) -> Result<Response<Job>, Status> {
        let caller = Caller::of(&request);
        let job = self.job(&caller, &request.into_inner().id).await?;
        Ok(Response::new(public_job(job)))
    }

    type WatchJobStream = EventStream;

    async fn watch_job(
        &self,
        request: Request<WatchJobRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        self.job(&caller, &req.id).await?;
        let id = scoped(caller.tenant(), &req.id);
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let store = self.store.clone();
        tokio::spawn(async move {
            let mut after = req.after_sequence;
            loop {
                let events = match store
                    .events_after(&id, after, Duration::from_secs(10))
                    .await
                {
                    Ok(events) => events,
                    Err(err) => {
                        let _ = tx.send(Err(Error::Store(err.to_string()).into())).await;
                        return;
                    }
                };
                if events.is_empty() && store.get(&id).await.ok().flatten().is_none() {
                    let expired = Error::NotFound("the job expired".into());
                    let _ = tx.send(Err(expired.into())).await;
                    return;
                }
                for mut e in events {
                    after = e.sequence;
                    e.job_id = req.id.clone();
                    let ended = is_final(e.state());
                    if tx.send(Ok(e)).await.is_err() || ended {
                        return; // the watcher left, or the job ended
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn cancel_job(
        &self,
        request: Request<CancelJobRequest>,
    ) -> Result<Response<Job>, Status> {
        let caller = Caller::of(&request);
        let id = request.into_inner().id;
        let job = self
            .store
            .cancel(&scoped(caller.tenant(), &id))
            .await
            .map_err(|e| Error::Store(e.to_string()))?
            .ok_or_else(|| {
                Error::NotFound(format!("no job {id:?} (never submitted, or expired)"))
            })?;
        tracing::info!(job = %id, state = ?job.state(), "cancel requested");
        Ok(Response::new(public_job(job)))
    }

    async fn get_result(
        &self,
        request: Request<GetResultRequest>,
    ) -> Result<Response<InpaintResponse>, Status> {
        let caller = Caller::of(&request);
        let id = request.into_inner().id;
        let job = self.job(&caller, &id).await?;
        if job.state() != JobState::Succeeded {
            let why = if job.error.is_empty() {
                String::new()
            } else {
                format!(": {}", job.error)
            };
            let state = job.state();
            return Err(Error::NotReady(format!("job {id} is {state:?}{why}")).into());
        }
        let bytes = self
            .store
            .result(&scoped(caller.tenant(), &id))
            .await
            .map_err(|e| Error::Store(e.to_string()))?
            .ok_or_else(|| Error::NotFound(format!("the result of job {id} expired")))?;
        let response = InpaintResponse::decode(bytes.as_slice())
            .map_err(|e| Error::Internal(format!("stored result is corrupt: {e}")))?;
        Ok(Response::new(response))
    }

    async fn get_capabilities(
        &self,
        _request: Request<GetCapabilitiesRequest>,
    ) -> Result<Response<GetCapabilitiesResponse>, Status> {
        Ok(Response::new(self.pipeline.capabilities().await?))
    }

    #[instrument(skip_all)]
    async fn preview_mask(
        &self,
        request: Request<PreviewMaskRequest>,
    ) -> Result<Response<PreviewMaskResponse>, Status> {
        let caller = Caller::of(&request);
        let request = request
            .into_inner()
            .request
            .ok_or_else(|| Error::invalid("request", "is required"))?;
        let pixels = image_pixels(&request.image, "request.image", self.max_image_pixels)?;
        limit_rate(&caller)?;
        // A preview holds the image and runs a detector: it counts against
        // the same in-flight budgets as a repaint.
        let _held = self.admit(&caller, pixels)?;
        // The fields are the inner request's.
        let preview = self
            .pipeline
            .preview_mask(request)
            .await
            .map_err(|err| err.within("request"))?;
        Ok(Response::new(preview))
    }
}
