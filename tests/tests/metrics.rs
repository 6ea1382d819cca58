//! Prometheus metrics over HTTP: a scrape before and after a few requests
//! shows exactly those requests in the gRPC counters (by method and status)
//! and latency histograms, the gateway's stage histogram, the worker's
//! calls and model batch sizes, a job's end, and the process's memory.

mod support;

use std::collections::HashMap;

use inpaint_proto::v1::InpaintParams;
use support::*;

/// `metric{labels}` -> value, from Prometheus' text format.
fn parse(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            // Labels in a canonical (sorted) order, whatever the exporter's.
            let key = match key.split_once('{') {
                Some((name, labels)) => {
                    let mut pairs: Vec<&str> = labels.trim_end_matches('}').split(',').collect();
                    pairs.sort();
                    format!("{name}{{{}}}", pairs.join(","))
                }
                None => key.to_string(),
            };
            Some((key, value.parse().ok()?))
        })
        .collect()
}

async fn scrape(addr: std::net::SocketAddr) -> HashMap<String, f64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).await.unwrap();
    assert!(
        body.starts_with("HTTP/1.1 200"),
        "{}",
        &body[..body.len().min(200)]
    );
    parse(body.split_once("\r\n\r\n").unwrap().1)
}

fn delta(before: &HashMap<String, f64>, after: &HashMap<String, f64>, key: &str) -> f64 {
    after.get(key).copied().unwrap_or(0.0) - before.get(key).copied().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_counts_what_was_asked() {
    let cluster = start_cluster(None).await;
    let metrics_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let gateway = start_gateway(
        format!("http://{}", cluster.segmentation),
        format!("http://{}", cluster.mask),
        format!("http://{}", cluster.worker),
        |c| c.service.metrics_listen.0 = Some(metrics_addr),
    )
    .await;
    let mut before = None;
    for _ in 0..100 {
        if let Ok(s) = tokio::net::TcpStream::connect(metrics_addr).await {
            drop(s);
            before = Some(scrape(metrics_addr).await);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let before = before.expect("metrics endpoint up");

    for engine in ["telea", "telea", "onnx"] {
        inpaint_cli::client::inpaint(&gateway.url, small_job_request(engine))
            .await
            .unwrap();
    }
    let mut bad = small_job_request("telea");
    bad.params = Some(InpaintParams {
        engine: "nope".into(),
        ..Default::default()
    });
    inpaint_cli::client::inpaint(&gateway.url, bad)
        .await
        .unwrap_err();
    assert_eq!(
        run_job(&gateway.url, small_job_request("telea")).await,
        inpaint_proto::v1::JobState::Succeeded
    );

    let after = scrape(metrics_addr).await;
    let d = |key: &str| delta(&before, &after, key);
    assert_eq!(
        d(
            r#"inpaint_grpc_requests_total{code="0",method="Inpaint",service="inpaint.v1.Inpainting"}"#
        ),
        3.0
    );
    assert_eq!(
        d(
            r#"inpaint_grpc_requests_total{code="3",method="Inpaint",service="inpaint.v1.Inpainting"}"#
        ),
        1.0,
        "the INVALID_ARGUMENT"
    );
    assert_eq!(
        d(
            r#"inpaint_grpc_request_seconds_count{method="Inpaint",service="inpaint.v1.Inpainting"}"#
        ),
        4.0
    );
    // Three requests and the job reached the inpaint stage.
    assert_eq!(
        d(r#"inpaint_gateway_stage_seconds_count{stage="inpaint"}"#),
        4.0
    );
    assert_eq!(
        d(
            r#"inpaint_grpc_requests_total{code="0",method="InpaintCropsStream",service="inpaint.v1.InpaintWorker"}"#
        ),
        4.0
    );
    assert_eq!(
        d(r#"inpaint_model_batch_size_count{model="pushpull"}"#),
        1.0
    );
    // The crop went through the model's queue and left it.
    assert_eq!(
        after.get(r#"inpaint_model_queue_depth{model="pushpull"}"#),
        Some(&0.0)
    );
    assert_eq!(d(r#"inpaint_jobs_ended_total{state="succeeded"}"#), 1.0);
    assert!(after["inpaint_process_resident_bytes"] > 1e6);
    gateway.stop().await;
    cluster.shutdown().await.expect("clean shutdown");
}
