//! `make bench-cluster`: the multi-process cluster (deploy/local/cluster.sh:
//! release binaries, 2 gateways sharing a redis-server with AOF, 2 workers)
//! under job load, plain and instrumented (metrics endpoints on, every
//! service's traces exported over OTLP to a sink in this process), three
//! rounds each in alternating order. 1024x1024 Telea jobs spread over both
//! gateways at concurrency 8 and 32. Prints key=value lines:
//!   bench=cluster size=1024 mode=plain|instrumented concurrency=8|32 jobs=.. jobs_per_s=.. p50_ms=.. p99_ms=..
//!   bench=instrumentation_cost concurrency=8|32 jobs_per_s_pct=.. p50_pct=.. spans_exported=.. same_result_bytes=..

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use inpaint_proto::v1::GetResultRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};

#[path = "shared/load.rs"]
mod load;
use load::{inputs, percentile, repo, request, run_jobs};

const PORT: u16 = 51350;

/// jobs/s, p50 ms, p99 ms of one load run.
type Figures = (f64, f64, f64);
const SIZE: u32 = 1024;
const ROUNDS: usize = 3;

/// Counts the spans every service exports.
#[derive(Default, Clone)]
struct Sink(Arc<AtomicU64>);

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans: usize = request
            .into_inner()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.0.fetch_add(spans as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn cluster(command: &str, otlp: Option<&str>) {
    let mut script = Command::new(repo().join("deploy/local/cluster.sh"));
    script
        .arg(command)
        .current_dir(repo())
        .env("CLUSTER_PORT", PORT.to_string())
        .env("RUST_LOG", "warn");
    match otlp {
        Some(url) => script.env("CLUSTER_OTLP", url).env("CLUSTER_METRICS", "1"),
        None => script.env("CLUSTER_METRICS", "0"),
    };
    let status = script.status().expect("cluster.sh runs");
    assert!(status.success(), "cluster.sh {command} failed");
}

/// (jobs/s, p50 ms, p99 ms) of `jobs` jobs, `concurrency` at a time, over
/// both gateways in turn.
async fn load(
    clients: &[inpaint_proto::v1::inpainting_client::InpaintingClient<tonic::transport::Channel>],
    image: &[u8],
    mask: &[u8],
    concurrency: usize,
    jobs: usize,
) -> Figures {
    let (latencies, secs) = run_jobs(clients, (image, mask), None, concurrency, jobs).await;
    (
        jobs as f64 / secs,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    )
}

/// One job's result bytes through the first gateway.
async fn sample_result(
    client: &inpaint_proto::v1::inpainting_client::InpaintingClient<tonic::transport::Channel>,
    image: &[u8],
    mask: &[u8],
) -> Vec<u8> {
    let mut client = client.clone();
    let job = client
        .submit_job(inpaint_proto::v1::SubmitJobRequest {
            request: Some(request(image, mask)),
            idempotency_key: String::new(),
        })
        .await
        .expect("submit")
        .into_inner();
    loop {
        match client
            .get_result(GetResultRequest { id: job.id.clone() })
            .await
        {
            Ok(result) => return result.into_inner().image,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

#[tokio::main]
async fn main() {
    let sink = Sink::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(sink.clone()))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let (image, mask, _) = inputs(SIZE);
    let levels = [(8usize, 48usize), (32, 96)];
    let mut figures: std::collections::BTreeMap<(&str, usize), Vec<Figures>> = Default::default();
    let mut results: std::collections::BTreeMap<&str, Vec<u8>> = Default::default();
    for round in 0..ROUNDS {
        let order = if round % 2 == 0 {
            ["plain", "instrumented"]
        } else {
            ["instrumented", "plain"]
        };
        for mode in order {
            let endpoint = (mode == "instrumented").then_some(otlp.as_str());
            cluster("start", endpoint);
            let mut clients = vec![];
            for port in [PORT + 5, PORT + 6] {
                let url = format!("http://127.0.0.1:{port}");
                clients.push(inpaint_cli::client::connect(&url).await.expect("gateway"));
            }
            results.insert(mode, sample_result(&clients[0], &image, &mask).await);
            for (concurrency, jobs) in levels {
                let measured = load(&clients, &image, &mask, concurrency, jobs).await;
                figures
                    .entry((mode, concurrency))
                    .or_default()
                    .push(measured);
            }
            drop(clients);
            cluster("stop", None);
        }
    }
    let mean = |v: &[Figures]| {
        let n = v.len() as f64;
        v.iter().fold((0.0, 0.0, 0.0), |a, x| {
            (a.0 + x.0 / n, a.1 + x.1 / n, a.2 + x.2 / n)
        })
    };
    for ((mode, concurrency), v) in &figures {
        let (rate, p50, p99) = mean(v);
        let jobs = levels.iter().find(|l| l.0 == *concurrency).unwrap().1;
        println!(
            "bench=cluster size={SIZE} mode={mode} concurrency={concurrency} jobs={jobs} jobs_per_s={rate:.2} p50_ms={p50:.1} p99_ms={p99:.1}"
        );
    }
    let same = results.get("plain") == results.get("instrumented");
    for (concurrency, _) in levels {
        let plain = mean(&figures[&("plain", concurrency)]);
        let instrumented = mean(&figures[&("instrumented", concurrency)]);
        println!(
            "bench=instrumentation_cost concurrency={concurrency} jobs_per_s_pct={:.1} p50_pct={:.1} spans_exported={} same_result_bytes={same}",
            (1.0 - instrumented.0 / plain.0) * 100.0,
            (instrumented.1 / plain.1 - 1.0) * 100.0,
            sink.0.load(Ordering::Relaxed)
        );
    }
}
