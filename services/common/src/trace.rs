//! Traces across every hop: the W3C trace context (`traceparent`) read from
//! each call's metadata into a span per call, and written into the calls
//! the gateway makes to its stages, so one request's spans in all four
//! services (and, through the job record, a job's runner) share one trace.
//! Spans reach an OTLP collector when `telemetry::init` was given one; with
//! no OpenTelemetry layer installed the spans stay plain `tracing` spans.

use std::task::{Context as TaskContext, Poll};

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Reads the trace context from HTTP/2 headers.
struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Writes the trace context into gRPC metadata.
struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            value.parse(),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// A single `traceparent` value, for storing with a job.
struct One(Option<String>);

impl Injector for One {
    fn set(&mut self, key: &str, value: String) {
        if key == "traceparent" {
            self.0 = Some(value);
        }
    }
}

impl Extractor for One {
    fn get(&self, key: &str) -> Option<&str> {
        (key == "traceparent")
            .then_some(self.0.as_deref())
            .flatten()
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent"]
    }
}

/// The current span's trace context as a `traceparent` value; empty when
/// there is none (no OpenTelemetry layer, or no span).
pub fn current_traceparent() -> String {
    let mut one = One(None);
    TraceContextPropagator::new().inject_context(&tracing::Span::current().context(), &mut one);
    one.0.unwrap_or_default()
}

/// Makes `span` a child of the trace a stored `traceparent` names.
pub fn continue_trace(span: &tracing::Span, traceparent: &str) {
    if traceparent.is_empty() {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&One(Some(traceparent.to_string())));
    let _ = span.set_parent(parent);
}

/// The trace id of `span` as 32 hex digits (all zeros without a trace).
pub fn trace_id(span: &tracing::Span) -> String {
    span.context().span().span_context().trace_id().to_string()
}

/// A tonic interceptor for outgoing calls: writes the current span's trace
/// context into the call's metadata.
pub fn inject(mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
    TraceContextPropagator::new().inject_context(
        &tracing::Span::current().context(),
        &mut MetadataInjector(request.metadata_mut()),
    );
    Ok(request)
}

/// The interceptor's type, for naming traced clients.
pub type Inject = fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>;

/// A traced channel: every call carries the caller's trace context.
pub type TracedChannel =
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Inject>;

/// Wraps every served call in a span named after its RPC
/// (`/package.Service/Method`), continuing the caller's trace when its
/// metadata carries one; log lines inside carry the trace id.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerTraceLayer;

impl<S> tower::Layer<S> for ServerTraceLayer {
    type Service = ServerTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServerTrace { inner }
    }
}

#[derive(Debug, Clone)]
pub struct ServerTrace<S> {
    inner: S,
}

impl<S, B> tower::Service<http::Request<B>> for ServerTrace<S>
where
    S: tower::Service<http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<S::Response, S::Error>> + Send + 'static>,
    >;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_string();
        let span = tracing::info_span!(
            "grpc",
            otel.name = %path,
            otel.kind = "server",
            rpc = %path,
            trace_id = tracing::field::Empty,
        );
        let parent = TraceContextPropagator::new().extract(&HeaderExtractor(request.headers()));
        let _ = span.set_parent(parent);
        let id = trace_id(&span);
        if id.bytes().any(|b| b != b'0') {
            span.record("trace_id", id.as_str());
        }
        Box::pin(self.inner.call(request).instrument(span))
    }
}
