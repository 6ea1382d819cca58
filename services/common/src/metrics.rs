//! Prometheus metrics: every service counts its gRPC calls by method and
//! status, times them, and gauges what is in flight (one tower layer in
//! `serve`); services add their own (stages, batches, jobs) through the
//! helpers here. The text exposition is served on its own HTTP port when
//! `--metrics-listen` is set (`GET /metrics`). One registry per process: in
//! the embedded cluster the four services share it, told apart by their
//! gRPC service names.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Instant;

use prometheus::{
    CounterVec, Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, Opts, TextEncoder,
};
use tokio::net::TcpListener;

/// Latency buckets in seconds: 1 ms to 2 minutes.
pub const SECONDS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0, 120.0,
];

/// A counter family registered once in the process registry.
pub fn counter_vec(name: &str, help: &str, labels: &[&str]) -> CounterVec {
    let c = CounterVec::new(Opts::new(name, help), labels).expect("valid counter");
    prometheus::register(Box::new(c.clone())).expect("registered once");
    c
}

/// A histogram family registered once in the process registry.
pub fn histogram_vec(name: &str, help: &str, labels: &[&str], buckets: &[f64]) -> HistogramVec {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        labels,
    )
    .expect("valid histogram");
    prometheus::register(Box::new(h.clone())).expect("registered once");
    h
}

/// A gauge family registered once in the process registry.
pub fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let g = GaugeVec::new(Opts::new(name, help), labels).expect("valid gauge");
    prometheus::register(Box::new(g.clone())).expect("registered once");
    g
}

/// Work waiting in a model thread's queue, per model (segmentation and
/// worker models, the Stable Diffusion UNet): raised when a job is queued,
/// lowered when the thread takes it.
pub fn model_queue_depth() -> &'static GaugeVec {
    static M: OnceLock<GaugeVec> = OnceLock::new();
    M.get_or_init(|| {
        gauge_vec(
            "inpaint_model_queue_depth",
            "Jobs waiting in a model thread's queue",
            &["model"],
        )
    })
}

struct Grpc {
    requests: CounterVec,
    seconds: HistogramVec,
    in_flight: GaugeVec,
    resident: Gauge,
}

fn grpc() -> &'static Grpc {
    static GRPC: OnceLock<Grpc> = OnceLock::new();
    GRPC.get_or_init(|| {
        let resident = Gauge::new(
            "inpaint_process_resident_bytes",
            "Resident memory of this process (read at each scrape)",
        )
        .expect("valid gauge");
        prometheus::register(Box::new(resident.clone())).expect("registered once");
        Grpc {
            requests: counter_vec(
                "inpaint_grpc_requests_total",
                "gRPC calls by service, method and status code",
                &["service", "method", "code"],
            ),
            seconds: histogram_vec(
                "inpaint_grpc_request_seconds",
                "gRPC call latency until the response starts (a stream's first message)",
                &["service", "method"],
                &SECONDS,
            ),
            in_flight: gauge_vec(
                "inpaint_grpc_in_flight",
                "gRPC calls being served",
                &["service"],
            ),
            resident,
        }
    })
}

/// The tower layer `serve` puts in front of every service.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcMetricsLayer;

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics { inner }
    }
}

#[derive(Debug, Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
}

impl<S, B, R> tower::Service<http::Request<B>> for GrpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // "/inpaint.v1.Inpainting/Inpaint" -> ("inpaint.v1.Inpainting", "Inpaint")
        let path = request.uri().path().trim_start_matches('/');
        let (service, method) = path.split_once('/').unwrap_or((path, ""));
        let (service, method) = (service.to_string(), method.to_string());
        let m = grpc();
        m.in_flight.with_label_values(&[service.as_str()]).inc();
        crate::memory::call_started();
        let started = Instant::now();
        let call = self.inner.call(request);
        Box::pin(async move {
            let answer = call.await;
            m.in_flight.with_label_values(&[service.as_str()]).dec();
            crate::memory::call_ended();
            // An error status comes in the headers; a success in the
            // trailers, which only the body reaches: no header means OK.
            let code = match &answer {
                Ok(r) => r
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("0")
                    .to_string(),
                Err(_) => "transport".to_string(),
            };
            m.requests
                .with_label_values(&[service.as_str(), method.as_str(), code.as_str()])
                .inc();
            m.seconds
                .with_label_values(&[service.as_str(), method.as_str()])
                .observe(started.elapsed().as_secs_f64());
            answer
        })
    }
}

/// This process's resident memory, from /proc (0 where there is none).
fn resident_bytes() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb * 1024.0)
}

/// The registry in Prometheus' text format.
pub fn render() -> String {
    grpc().resident.set(resident_bytes());
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&prometheus::gather(), &mut out)
        .expect("text encoding");
    String::from_utf8(out).unwrap_or_default()
}

/// Serves `GET /metrics` on `listener` until the task is dropped.
pub async fn serve_metrics(listener: TcpListener) -> std::io::Result<()> {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            (
                [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                render(),
            )
        }),
    );
    axum::serve(listener, app).await
}
