//! A Redis restart (a crash, then an empty server on the same address):
//! the gateway says NOT_SERVING and answers UNAVAILABLE with retry-after
//! while it is away, then claims and runs jobs again by itself; a batch that
//! was waiting on it finishes.

mod support;

use std::time::{Duration, Instant};

use inpaint_cli::batch::{BatchOptions, BatchTarget};
use inpaint_cli::embedded::JobSettings;
use inpaint_proto::v1::{InpaintParams, JobState, SubmitJobRequest};
use support::*;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const JOB_SERVICE: &str = "inpaint.v1.Inpainting";

async fn health(url: &str, service: &str) -> ServingStatus {
    let channel = inpaint_common::endpoint(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let reply = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap()
        .into_inner();
    reply.status()
}

async fn wait_health(url: &str, want: ServingStatus, within: Duration) {
    let start = Instant::now();
    loop {
        let overall = health(url, "").await;
        let jobs = health(url, JOB_SERVICE).await;
        if overall == want && jobs == want {
            return;
        }
        assert!(
            start.elapsed() < within,
            "health stayed {overall:?}/{jobs:?}, wanted {want:?} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_recovers_after_redis_restarts() {
    let mut redis = start_redis();
    let mut config = cluster_config();
    config.jobs = JobSettings {
        redis_url: Some(redis.url.clone()),
        ..JobSettings::default()
    };
    let cluster = start_cluster_with(config).await;
    let url = cluster.gateway_url();
    assert_eq!(
        run_job(&url, small_job_request("telea")).await,
        JobState::Succeeded
    );

    redis.stop();
    wait_health(&url, ServingStatus::NotServing, Duration::from_secs(10)).await;
    let mut c = inpaint_cli::client::connect(&url).await.unwrap();
    let refused = c
        .submit_job(SubmitJobRequest {
            request: Some(small_job_request("telea")),
            idempotency_key: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(
        refused.metadata().get("retry-after").is_some(),
        "{refused:?}"
    );

    // A batch started while Redis is down waits for it instead of failing.
    let (dir, input, masks, output) = photo_folder(
        "redis-restart",
        &[("a", "chelsea.png"), ("b", "coffee.png")],
    );
    let options = BatchOptions {
        input,
        output: output.clone(),
        target: BatchTarget::MaskDir(masks),
        params: InpaintParams::default(),
        concurrency: 2,
        progress_bar: false,
        patience: Duration::from_secs(60),
    };
    let batch_url = url.clone();
    let batch = tokio::spawn(async move { inpaint_cli::batch::run(&batch_url, options).await });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !batch.is_finished(),
        "the batch gave up while Redis was down"
    );

    // Back, empty: the consumer group is gone and every old connection broken.
    redis.start();
    wait_health(&url, ServingStatus::Serving, Duration::from_secs(15)).await;
    let ran = tokio::time::timeout(
        Duration::from_secs(30),
        run_job(&url, small_job_request("telea")),
    )
    .await
    .expect("a job submitted after the restart runs");
    assert_eq!(ran, JobState::Succeeded);
    let summary = tokio::time::timeout(Duration::from_secs(60), batch)
        .await
        .expect("the batch finishes after the restart")
        .unwrap()
        .unwrap();
    assert_eq!((summary.done, summary.failed.len()), (2, 0), "{summary:?}");
    assert!(output.join("a.png").is_file() && output.join("b.png").is_file());
    let _ = std::fs::remove_dir_all(&dir);
    cluster.shutdown().await.expect("clean shutdown");
}
