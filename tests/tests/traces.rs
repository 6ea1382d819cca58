//! Traces across every hop: one request's spans from all four services
//! share one trace id, a client's `traceparent` is continued, and a job's
//! run joins the trace it was submitted under (through the job record).
//! The spans are collected in memory by the process's tracer provider.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use inpaint_proto::v1::{
    FaceTarget, InpaintParams, InpaintRequest, JobState, SubmitJobRequest, inpaint_request::Target,
};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use support::*;

/// Every ended span, kept.
#[derive(Debug, Clone, Default)]
struct Collected(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Collected {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        self.0.lock().unwrap().extend(batch);
        async { Ok(()) }
    }
}

impl Collected {
    /// Names of the spans of `trace_id`.
    fn names(&self, trace_id: &str) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.span_context.trace_id().to_string() == trace_id)
            .map(|s| s.name.to_string())
            .collect()
    }

    /// Waits until the trace has every one of `wanted` (server spans end
    /// just after their answer is sent).
    async fn wait_for(&self, trace_id: &str, wanted: &[&str]) -> Vec<String> {
        for _ in 0..100 {
            let names = self.names(trace_id);
            if wanted.iter().all(|w| names.iter().any(|n| n == w)) {
                return names;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.names(trace_id)
    }

    /// The trace id of the newest span named `name`.
    fn trace_of(&self, name: &str) -> Option<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|s| s.name == name)
            .map(|s| s.span_context.trace_id().to_string())
    }
}

fn faces_request() -> InpaintRequest {
    InpaintRequest {
        image: photo_bytes("astronaut.png"),
        target: Some(Target::Faces(FaceTarget::default())),
        params: Some(InpaintParams {
            engine: "pixelate".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn with_traceparent<T>(message: T, trace_id: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let value = format!("00-{trace_id}-00f067aa0ba902b7-01");
    request
        .metadata_mut()
        .insert("traceparent", value.parse().unwrap());
    request
}

/// Every service's server span for a faces request.
const ALL_FOUR: [&str; 5] = [
    "/inpaint.v1.Inpainting/Inpaint",
    "/inpaint.v1.Segmentation/Segment",
    "/inpaint.v1.Mask/Prepare",
    "/inpaint.v1.InpaintWorker/InpaintCropsStream",
    "/inpaint.v1.Mask/Composite",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_across_four_services_a_client_and_a_job() {
    let spans = Collected::default();
    let _provider = inpaint_common::telemetry::init_with_exporter(
        inpaint_common::LogFormat::Json,
        spans.clone(),
    );
    let cluster = start_cluster(None).await;
    let mut client = inpaint_cli::client::connect(&cluster.gateway_url())
        .await
        .unwrap();

    // A client's trace is continued through the gateway and every stage.
    let client_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    client
        .inpaint(with_traceparent(faces_request(), client_trace))
        .await
        .expect("inpaints");
    let names = spans.wait_for(client_trace, &ALL_FOUR).await;
    for wanted in ALL_FOUR {
        assert!(
            names.iter().any(|n| n == wanted),
            "{wanted} not in the client's trace: {names:?}"
        );
    }
    assert!(names.iter().any(|n| n == "inpaint"), "{names:?}");

    // Without one, the gateway starts a trace and the stages join it.
    client.inpaint(faces_request()).await.expect("inpaints");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = spans
        .trace_of("/inpaint.v1.Inpainting/Inpaint")
        .expect("the gateway's span");
    assert_ne!(started, client_trace);
    let names = spans.wait_for(&started, &ALL_FOUR).await;
    for wanted in ALL_FOUR {
        assert!(
            names.iter().any(|n| n == wanted),
            "{wanted} not in the gateway's trace: {names:?}"
        );
    }

    // A job: the runner, on another task and after a trip through the job
    // store, continues the submitter's trace.
    let job_trace = "0af7651916cd43dd8448eb211c80319c";
    let job = client
        .submit_job(with_traceparent(
            SubmitJobRequest {
                request: Some(faces_request()),
                idempotency_key: String::new(),
            },
            job_trace,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        last_state(&mut client, &job.id).await,
        Some(JobState::Succeeded)
    );
    let wanted = [
        "/inpaint.v1.Inpainting/SubmitJob",
        "job",
        "/inpaint.v1.Mask/Prepare",
    ];
    let names = spans.wait_for(job_trace, &wanted).await;
    for wanted in wanted {
        assert!(
            names.iter().any(|n| n == wanted),
            "{wanted} not in the job's trace: {names:?}"
        );
    }
    cluster.shutdown().await.expect("clean shutdown");
}
