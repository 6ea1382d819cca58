//! `make bench-jobs`: the job API under load, and what the cluster costs.
//!
//! Starts segmentation, mask and worker in this process and the gateway as
//! its own process (target/release/inpaint-gateway, in-memory jobs), so its
//! peak memory (VmHWM) can be read. Prints key=value lines:
//!   bench=jobs size=512|1024 concurrency=1|8|32 jobs=.. jobs_per_s=.. p50_ms=.. max_ms=..
//! (16 to 128 jobs per line: too few for a p99, so the slowest is printed as
//! what it is)
//!   bench=gateway_memory peak_rss_mb=..
//!   bench=overhead size=1024 ours_ms=(through all services) ref_ms=(in process) ratio=.. overhead_pct=.. same_pixels=true|false
//!   bench=overhead_stages / bench=in_process_stages: where each side's time went

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use inpaint_cli::embedded::{Cluster, ClusterConfig, JobSettings};
use inpaint_imaging::composite::{Corrections, Repainted, composite};
use inpaint_imaging::{GrayImage, PixelBox, RgbImage, mask, telea};
#[path = "shared/load.rs"]
mod load;
use load::{inputs, one_job, percentile, png_rgb, repo, request, run_jobs};

/// The same work in this process: decode, mask ops, Telea, paste, encode.
fn in_process(image: &[u8], mask_png: &[u8]) -> f64 {
    in_process_stages(image, mask_png).0
}

/// `in_process` with the time of each part (decode, mask, telea,
/// composite, encode).
fn in_process_stages(image: &[u8], mask_png: &[u8]) -> (f64, [f64; 5]) {
    let (ms, laps, _) = in_process_result(image, mask_png);
    (ms, laps)
}

/// The in-process work: its time, its parts' times and its PNG.
fn in_process_result(image: &[u8], mask_png: &[u8]) -> (f64, [f64; 5], Vec<u8>) {
    let start = Instant::now();
    let mut laps = [0.0; 5];
    let mut last = start;
    let mut lap = |k: usize| {
        let now = Instant::now();
        laps[k] = (now - last).as_secs_f64() * 1e3;
        last = now;
    };
    let rgb = image::load_from_memory(image).expect("decode").into_rgb8();
    let (w, h) = rgb.dimensions();
    let img = RgbImage::from_raw(w, h, rgb.into_raw()).expect("rgb");
    let m = image::load_from_memory(mask_png)
        .expect("decode")
        .into_luma8();
    let m = GrayImage::from_raw(w, h, m.into_raw()).expect("gray");
    lap(0);
    let alpha = mask::feather(&mask::threshold(&m, 128), 4);
    let hole = mask::threshold(&alpha, 1);
    lap(1);
    let filled = telea::inpaint(&img, &hole, 0);
    lap(2);
    let out = composite(
        &img,
        &[Repainted {
            area: PixelBox::new(0, 0, w, h),
            image: filled,
            alpha,
        }],
        Corrections::default(),
    );
    lap(3);
    let encoded = png_rgb(&image::RgbImage::from_raw(w, h, out.into_raw()).expect("rgb"));
    lap(4);
    (start.elapsed().as_secs_f64() * 1e3, laps, encoded)
}

fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn peak_rss_mb(child: &Child) -> f64 {
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

#[tokio::main]
async fn main() {
    // Backend services here; the gateway in its own process.
    let cluster = Cluster::start(ClusterConfig {
        ort_dylib: repo().join("models/cache/onnxruntime/libonnxruntime.so"),
        models_dir: repo().join("models/cache"),
        jobs: JobSettings {
            runners: 0,
            ..JobSettings::default()
        },
        ..ClusterConfig::default()
    })
    .await
    .expect("services start");
    cluster
        .wait_ready(false, Duration::from_secs(60))
        .await
        .expect("ready");
    let addr = free_port();
    let mut gateway = Command::new(repo().join("target/release/inpaint-gateway"))
        .args(["--listen", &addr.to_string()])
        .args([
            "--segmentation-url",
            &format!("http://{}", cluster.segmentation),
        ])
        .args(["--mask-url", &format!("http://{}", cluster.mask)])
        .args(["--worker-url", &format!("http://{}", cluster.worker)])
        .args(["--job-runners", "32", "--max-queued-jobs", "100000"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("build it: cargo build --release -p inpaint-gateway");
    let url = format!("http://{addr}");
    let client = loop {
        if let Ok(c) = inpaint_cli::client::connect(&url).await {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    for size in [512u32, 1024] {
        let (image, mask_png, _) = inputs(size);
        for concurrency in [1usize, 8, 32] {
            let jobs = (concurrency * 4).max(16);
            let _ = one_job(client.clone(), request(&image, &mask_png), None).await; // warm-up
            let (latencies, secs) = run_jobs(
                std::slice::from_ref(&client),
                (&image, &mask_png),
                None,
                concurrency,
                jobs,
            )
            .await;
            println!(
                "bench=jobs size={size} concurrency={concurrency} jobs={jobs} jobs_per_s={:.2} p50_ms={:.1} max_ms={:.1}",
                jobs as f64 / secs,
                percentile(&latencies, 0.5),
                latencies[latencies.len() - 1]
            );
        }
    }
    println!(
        "bench=gateway_memory peak_rss_mb={:.1}",
        peak_rss_mb(&gateway)
    );

    // Overhead: the synchronous call through every service vs the same work
    // in this process, one at a time, best of several.
    for size in [512u32, 1024] {
        let (image, mask_png, _) = inputs(size);
        let mut through = f64::INFINITY;
        let mut local = f64::INFINITY;
        let mut stages = String::new();
        let mut answer_png = Vec::new();
        // Best of 16: on two cores one call in several meets a busy moment.
        for _ in 0..16 {
            let start = Instant::now();
            let answer = client
                .clone()
                .inpaint(request(&image, &mask_png))
                .await
                .expect("inpaint")
                .into_inner();
            let took = start.elapsed().as_secs_f64() * 1e3;
            if took < through {
                through = took;
                answer_png = answer.image.clone();
                stages = answer
                    .timings
                    .iter()
                    .map(|t| format!("{}_ms={:.2}", t.stage, t.millis))
                    .collect::<Vec<_>>()
                    .join(" ");
            }
            local = local.min(in_process(&image, &mask_png));
        }
        // Where the fastest call's time went, as the gateway timed it, and
        // the same parts in this process.
        println!("bench=overhead_stages size={size} {stages}");
        let parts = (0..8)
            .map(|_| in_process_stages(&image, &mask_png))
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .expect("runs")
            .1;
        println!(
            "bench=in_process_stages size={size} decode_ms={:.2} mask_ms={:.2} telea_ms={:.2} composite_ms={:.2} encode_ms={:.2}",
            parts[0], parts[1], parts[2], parts[3], parts[4]
        );
        // Both sides' pixels, compared.
        let (_, _, reference_png) = in_process_result(&image, &mask_png);
        let pixels = |png: &[u8]| image::load_from_memory(png).expect("png").into_rgb8();
        let same = pixels(&answer_png) == pixels(&reference_png);
        println!(
            "bench=overhead size={size} ours_ms={through:.2} ref_ms={local:.2} ratio={:.3} overhead_pct={:.1} same_pixels={same}",
            through / local,
            (through / local - 1.0) * 100.0
        );
    }
    let _ = gateway.kill();
    let _ = gateway.wait();
    cluster.shutdown().await.expect("shutdown");
}
