//! The fault scenario of tests/tests/faults.rs, for any cluster script
//! that starts, kills and restarts the services by name (processes or
//! containers).

use std::process::Command;
use std::time::{Duration, Instant};

use inpaint_proto::v1::inpainting_client::InpaintingClient;
use inpaint_proto::v1::{
    GetJobRequest, GetResultRequest, JobState, SubmitJobRequest, SubmitJobsRequest, WatchJobRequest,
};
use tonic::transport::Channel;

use super::*;

const JOBS: usize = 300;

/// A 384 px crop of the astronaut with a 96 px hole: enough Telea each
/// that the faults land while jobs run.
fn job_request() -> inpaint_proto::v1::InpaintRequest {
    let full = image::load_from_memory(&photo_bytes("astronaut.png"))
        .unwrap()
        .into_rgb8();
    let crop = image::imageops::crop_imm(&full, 100, 100, 384, 384).to_image();
    inpaint_proto::v1::InpaintRequest {
        image: png(image::DynamicImage::ImageRgb8(crop)),
        target: Some(inpaint_proto::v1::inpaint_request::Target::Mask(
            box_mask_png(384, 384, inpaint_imaging::PixelBox::new(140, 140, 96, 96)),
        )),
        params: Some(inpaint_proto::v1::InpaintParams {
            engine: "telea".into(),
            ..Default::default()
        }),
        sketch: vec![],
    }
}

/// A cluster script (deploy/local/cluster.sh for processes,
/// deploy/podman/cluster.sh for containers: the same commands and ports)
/// with this test's ports.
pub struct Script {
    /// Relative to the repository.
    pub path: &'static str,
    pub port: u16,
    /// More environment for the script.
    pub env: Vec<(&'static str, &'static str)>,
}

impl Script {
    pub fn new(path: &'static str, env: Vec<(&'static str, &'static str)>) -> Script {
        Script {
            path,
            port: free_base(),
            env,
        }
    }

    pub fn run(&self, args: &[&str]) {
        let out = Command::new(repo_root().join(self.path))
            .args(args)
            .current_dir(repo_root())
            .env("CLUSTER_PORT", self.port.to_string())
            .env("CLUSTER_METRICS", "1")
            .env("RUST_LOG", "warn")
            // A dead gateway's claims are taken over after 3 s idle.
            .env("INPAINT_JOB_RECLAIM_SECS", "3")
            .envs(self.env.iter().copied())
            .output()
            .expect("the cluster script runs");
        assert!(
            out.status.success(),
            "{} {args:?}: {}{}",
            self.path,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn gateway(&self, k: u16) -> String {
        format!("http://127.0.0.1:{}", self.port + 5 + k)
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        self.run(&["stop"]);
    }
}

/// Seven consecutive free ports (redis, segmentation, mask, 2 workers, 2
/// gateways), below the ephemeral range other tests' sockets take theirs
/// from (32768 and up on Linux).
fn free_base() -> u16 {
    let start = 20_000 + (std::process::id() % 1_000) as u16 * 8;
    (start..start + 4_000)
        .step_by(8)
        .find(|&p| (p..p + 7).all(|q| std::net::TcpListener::bind(("127.0.0.1", q)).is_ok()))
        .expect("free ports")
}

pub async fn connect(url: &str) -> InpaintingClient<Channel> {
    for _ in 0..100 {
        if let Ok(client) = inpaint_cli::client::connect(url).await {
            return client;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no gateway at {url}");
}

/// The job, asking whichever gateway answers.
async fn job(
    clients: &mut [InpaintingClient<Channel>],
    id: &str,
) -> Option<inpaint_proto::v1::Job> {
    for client in clients.iter_mut() {
        if let Ok(job) = client.get_job(GetJobRequest { id: id.into() }).await {
            return Some(job.into_inner());
        }
    }
    None
}

/// 300 jobs through both gateways of `script`'s cluster while, in turn, a
/// gateway holding claims, a worker and Redis are killed (Redis started
/// again from its AOF): every job must end SUCCEEDED exactly once, with the
/// result the same request gets alone, nothing left pending, and the dead
/// gateway's claims taken over. While Redis is down, a job call must answer
/// UNAVAILABLE within `unavailable_within`. `what` names the cluster in the
/// summary.
pub async fn survive_faults(script: &Script, what: &str, unavailable_within: Duration) {
    script.run(&["start"]);
    let mut clients = vec![
        connect(&script.gateway(0)).await,
        connect(&script.gateway(1)).await,
    ];

    // What the request gives alone, before any fault.
    let reference = clients[0]
        .inpaint(job_request())
        .await
        .expect("inpaints")
        .into_inner()
        .image;

    let started = Instant::now();
    // All queued at once (three SubmitJobs calls, half through each
    // gateway), so the faults find every runner busy.
    let mut ids = Vec::with_capacity(JOBS);
    for (batch, client) in (0..3).zip([0, 1, 0]) {
        let jobs = (0..JOBS / 3)
            .map(|i| SubmitJobRequest {
                request: Some(job_request()),
                idempotency_key: format!("fault-{batch}-{i}"),
            })
            .collect();
        let outcomes = clients[client]
            .submit_jobs(SubmitJobsRequest { jobs })
            .await
            .expect("submitted")
            .into_inner()
            .outcomes;
        ids.extend(outcomes.into_iter().map(|o| o.job.expect("accepted").id));
    }

    // The faults, in turn, while the jobs run: a gateway holding claims
    // (every runner is busy by now), a worker mid-crop, then Redis.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let dead_gateway = format!("gateway-{}", script.port + 5);
    script.run(&["kill", &dead_gateway]);
    clients.remove(0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let worker = format!("worker-{}", script.port + 3);
    script.run(&["kill", &worker]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    script.run(&["kill", "redis"]);
    // While Redis is down, job calls answer at once, UNAVAILABLE.
    let asked = Instant::now();
    let refused = clients[0]
        .get_job(GetJobRequest { id: ids[0].clone() })
        .await
        .expect_err("Redis is down");
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused}");
    let unavailable_after = asked.elapsed();
    assert!(
        unavailable_after < unavailable_within,
        "UNAVAILABLE only after {unavailable_after:?}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    script.run(&["restart", "redis"]);

    // Every job ends, SUCCEEDED, within a bound.
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut pending: Vec<String> = ids.clone();
    while !pending.is_empty() {
        assert!(
            Instant::now() < deadline,
            "{} jobs still not done, e.g. {}",
            pending.len(),
            pending[0]
        );
        let mut still = vec![];
        for id in pending {
            match job(&mut clients, &id).await {
                Some(j) if j.state() == JobState::Succeeded => {}
                Some(j) if j.state() == JobState::Failed || j.state() == JobState::Cancelled => {
                    panic!("job {id} did not succeed: {j:?}")
                }
                _ => still.push(id),
            }
        }
        pending = still;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let took = started.elapsed();

    // Exactly once: one terminal event per job, and the result it gets alone.
    let mut client = clients[0].clone();
    for id in &ids {
        let mut events = client
            .watch_job(WatchJobRequest {
                id: id.clone(),
                after_sequence: 0,
            })
            .await
            .expect("watch")
            .into_inner();
        let mut ends = 0;
        while let Some(event) = events.message().await.expect("events") {
            if matches!(
                event.state(),
                JobState::Succeeded | JobState::Failed | JobState::Cancelled
            ) {
                ends += 1;
            }
        }
        assert_eq!(ends, 1, "job {id} ended {ends} times");
        let result = client
            .get_result(GetResultRequest { id: id.clone() })
            .await
            .expect("result")
            .into_inner()
            .image;
        assert!(
            result == reference,
            "job {id}: not the result it gets alone"
        );
    }
    // Nothing left claimed or waiting in the queue.
    let redis = redis::Client::open(format!("redis://127.0.0.1:{}", script.port)).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let pending: redis::Value = redis::cmd("XPENDING")
        .arg("inpaint:queue")
        .arg("runners")
        .query_async(&mut conn)
        .await
        .unwrap();
    let claimed = match &pending {
        redis::Value::Array(items) => match items.first() {
            Some(redis::Value::Int(n)) => *n,
            _ => -1,
        },
        _ => -1,
    };
    assert_eq!(claimed, 0, "left pending: {pending:?}");
    // The dead gateway held claims, and the other took them over.
    let metrics_port = script.port + 6 + 100;
    let scrape = scrape_metrics(metrics_port).await;
    let reclaimed: f64 = scrape
        .lines()
        .find(|l| l.starts_with("inpaint_jobs_reclaimed_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(reclaimed > 0.0, "no claim was taken over:\n{scrape}");
    println!(
        "faults: cluster={what} jobs={JOBS} succeeded={JOBS} reclaimed={reclaimed} took_s={:.1} unavailable_after_s={:.1} (a worker and a gateway SIGKILLed, redis restarted from its AOF)",
        took.as_secs_f64(),
        unavailable_after.as_secs_f64()
    );
}

/// GET /metrics on 127.0.0.1:`port`, over a plain socket (HTTP/1.0).
async fn scrape_metrics(port: u16) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("metrics port");
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).await.unwrap();
    body
}
