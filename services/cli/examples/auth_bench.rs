//! `make bench-auth`: what API keys cost on the gateway. One embedded
//! cluster without keys and one with a keys file (every call carries its
//! key), the same work on each, five rounds in alternating order (medians):
//! synchronous Inpaint one at a time (p50) and jobs at concurrency 32
//! (jobs/s), 512x512 Telea. Prints key=value lines:
//!   bench=auth size=512 auth=off|on c1_p50_ms=.. c32_jobs_per_s=..
//!   bench=auth_cost size=512 c1_p50_pct=.. c32_jobs_per_s_pct=.. same_result_bytes=..

use std::time::{Duration, Instant};

use inpaint_cli::embedded::{Cluster, ClusterConfig, JobSettings};

#[path = "shared/load.rs"]
mod load;
use load::{inputs, one_job, percentile, repo, request, with_key};

const KEY: &str = "bench-key";

async fn start(api_keys: Option<std::path::PathBuf>) -> Cluster {
    let cluster = Cluster::start(ClusterConfig {
        ort_dylib: repo().join("models/cache/onnxruntime/libonnxruntime.so"),
        models_dir: repo().join("models/cache"),
        jobs: JobSettings {
            runners: 32,
            api_keys,
            ..JobSettings::default()
        },
        ..ClusterConfig::default()
    })
    .await
    .expect("cluster starts");
    cluster
        .wait_ready(false, Duration::from_secs(60))
        .await
        .expect("ready");
    cluster
}

/// (p50 ms of 30 synchronous calls one at a time, jobs/s of 96 jobs 32 at
/// a time, the result image of the first call).
async fn measure(url: &str, key: Option<&str>, image: &[u8], mask: &[u8]) -> (f64, f64, Vec<u8>) {
    let client = inpaint_cli::client::connect(url).await.expect("gateway");
    let mut latencies = vec![];
    let mut result = vec![];
    for i in 0..31 {
        let start = Instant::now();
        let answer = client
            .clone()
            .inpaint(with_key(key, request(image, mask)))
            .await
            .expect("inpaint");
        if i == 0 {
            result = answer.into_inner().image;
        }
        if i > 0 {
            latencies.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    latencies.sort_by(f64::total_cmp);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(32));
    for _ in 0..96 {
        let (client, req, slots) = (client.clone(), request(image, mask), slots.clone());
        let key = key.map(str::to_string);
        tasks.spawn(async move {
            let _slot = slots.acquire_owned().await;
            one_job(client, req, key.as_deref()).await
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("job");
    }
    (
        percentile(&latencies, 0.5),
        96.0 / start.elapsed().as_secs_f64(),
        result,
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let dir = std::env::temp_dir().join(format!("inpaint-auth-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let keys = dir.join("keys.toml");
    let hash = inpaint_gateway::auth::hash_key(KEY);
    std::fs::write(
        &keys,
        format!("[[keys]]\ntenant = \"bench\"\nsha256 = \"{hash}\"\n"),
    )
    .expect("keys file");
    let open = start(None).await;
    let guarded = start(Some(keys)).await;
    let (image, mask, _) = inputs(512);
    let (mut off, mut on) = ((vec![], vec![]), (vec![], vec![]));
    // Both sides must give the same bytes: keys change who may ask, not
    // what is answered.
    let mut results = (vec![], vec![]);
    // Five rounds, the order swapped every round (the machine warms up).
    for round in 0..5 {
        for guarded_first in [round % 2 == 1, round % 2 == 0] {
            if guarded_first {
                let (p50, rate, result) =
                    measure(&guarded.gateway_url(), Some(KEY), &image, &mask).await;
                on.0.push(p50);
                on.1.push(rate);
                results.1 = result;
            } else {
                let (p50, rate, result) = measure(&open.gateway_url(), None, &image, &mask).await;
                off.0.push(p50);
                off.1.push(rate);
                results.0 = result;
            }
        }
    }
    let (off, on) = ((median(off.0), median(off.1)), (median(on.0), median(on.1)));
    for (mode, (p50, rate)) in [("off", off), ("on", on)] {
        println!("bench=auth size=512 auth={mode} c1_p50_ms={p50:.2} c32_jobs_per_s={rate:.2}");
    }
    println!(
        "bench=auth_cost size=512 c1_p50_pct={:.1} c32_jobs_per_s_pct={:.1} same_result_bytes={}",
        (on.0 / off.0 - 1.0) * 100.0,
        (1.0 - on.1 / off.1) * 100.0,
        results.0 == results.1 && !results.0.is_empty()
    );
    open.shutdown().await.expect("shutdown");
    guarded.shutdown().await.expect("shutdown");
    let _ = std::fs::remove_dir_all(dir);
}
