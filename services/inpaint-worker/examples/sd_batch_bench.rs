//! Step-level batching under load: N concurrent requests on one Stable
//! Diffusion model, batched (their steps share UNet calls) against one at
//! a time (each request's steps alone), on the same graphs in one run.
//!
//! sd_batch_bench [MODEL_DIR] [SIZE] [STEPS] [cuda|cpu] [N,N,..]
//! prints per N and mode: `bench=sd_batch n=.. mode=batched|alone
//! req_per_s=.. p50_ms=.. max_ms=.. calls=.. largest_samples=.. device=..`
//! and the throughput ratio with how far the two modes' final latents
//! agree (largest difference). (max, not p99: N is at most 16 requests.)

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use inpaint_worker::onnx_engine::RuntimeOptions;
use inpaint_worker::sd::img2img::{LatentFill, SamplingPlan};
use inpaint_worker::sd::model::SdModel;
use inpaint_worker::sd::pipeline::{self, Pixels, SdRequest};
use inpaint_worker::sd::sampler::SamplerKind;
use inpaint_worker::sd::schedule::Schedule;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "models/fixtures/tiny-sd/inpaint".into());
    let size: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(64);
    let steps: u32 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(10);
    let device = match args.get(4).map(String::as_str) {
        Some("cuda") => inpaint_onnx::Device::Cuda,
        _ => inpaint_onnx::Device::Cpu,
    };
    let runtime = |max_batch: usize| RuntimeOptions {
        max_wait: Duration::from_millis(5),
        sd_max_batch: max_batch,
        ..RuntimeOptions::for_tools(device)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let image: Vec<u8> = (0..size * size * 3)
        .map(|i| ((i * 37) % 251) as u8)
        .collect();
    let mut mask = vec![0u8; size * size];
    for y in size / 4..size * 3 / 4 {
        for x in size / 4..size * 3 / 4 {
            mask[y * size + x] = 255;
        }
    }
    // Each model is loaded once and warmed up (on CUDA, the first call of
    // each batch size picks its kernels), then timed at each N.
    let models: Vec<(&str, Arc<SdModel>)> = [("alone", 1usize), ("batched", 16)]
        .into_iter()
        .map(|(mode, max_batch)| {
            let model = SdModel::load(mode, std::path::Path::new(&dir), &runtime(max_batch))
                .expect("model");
            (mode, Arc::new(model))
        })
        .collect();
    let job = Job {
        size,
        steps,
        image,
        mask,
    };
    for (mode, model) in &models {
        let warm = if *mode == "batched" { 16 } else { 1 };
        job.run(&rt, model, warm);
    }
    let counts: Vec<usize> = args
        .get(5)
        .map(|s| s.split(',').map(|n| n.parse().expect("N")).collect())
        .unwrap_or(vec![1, 4, 16]);
    for n in counts {
        let mut throughput = [0.0f64; 2];
        // Each request's final latent, per mode, to say how far they agree.
        let mut latents: [Vec<Vec<f32>>; 2] = [vec![], vec![]];
        for (slot, (mode, model)) in models.iter().enumerate() {
            let stats = &model.unet_batcher.stats;
            let calls_before = stats.calls.load(Ordering::Relaxed);
            stats.largest.store(0, Ordering::Relaxed);
            let started = Instant::now();
            let runs = job.run(&rt, model, n);
            let wall = started.elapsed().as_secs_f64();
            let (latencies, finals): (Vec<f64>, Vec<Vec<f32>>) = runs.into_iter().unzip();
            latents[slot] = finals;
            let mut sorted = latencies.clone();
            sorted.sort_by(f64::total_cmp);
            throughput[slot] = n as f64 / wall;
            println!(
                "bench=sd_batch n={n} mode={mode} size={size} steps={steps} req_per_s={:.2} p50_ms={:.1} max_ms={:.1} calls={} largest_samples={} device={}",
                throughput[slot],
                sorted[sorted.len() / 2],
                sorted[sorted.len() - 1],
                stats.calls.load(Ordering::Relaxed) - calls_before,
                stats.largest.load(Ordering::Relaxed),
                model.device().name()
            );
        }
        let max_diff = latents[0]
            .iter()
            .zip(&latents[1])
            .flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y).abs()))
            .fold(0.0f32, f32::max);
        println!(
            "bench=sd_batch n={n} batched_over_alone={:.2} agree_latent_max_diff={max_diff:e}",
            throughput[1] / throughput[0]
        );
    }
}

/// The benchmark's request: one photo and mask, Euler at `steps`.
struct Job {
    size: usize,
    steps: u32,
    image: Vec<u8>,
    mask: Vec<u8>,
}

impl Job {
    /// Runs `n` requests at once; each one's latency (ms) and final latent.
    fn run(
        &self,
        rt: &tokio::runtime::Runtime,
        model: &Arc<SdModel>,
        n: usize,
    ) -> Vec<(f64, Vec<f32>)> {
        let size = self.size;
        rt.block_on(async {
            let runs: Vec<_> = (0..n)
                .map(|k| {
                    let request = SdRequest {
                        prompt: "a photo of a cat".into(),
                        negative_prompt: String::new(),
                        plan: SamplingPlan {
                            sampler: SamplerKind::Euler,
                            schedule: Schedule::Normal,
                            steps: self.steps,
                            denoising_strength: 1.0,
                        },
                        cfg_scale: 7.0,
                        seed: k as u64,
                        fill: LatentFill::Encoded,
                        mask_weight: 1.0,
                    };
                    let (model, image, mask) =
                        (model.clone(), self.image.clone(), self.mask.clone());
                    tokio::spawn(async move {
                        let t = Instant::now();
                        let result = pipeline::inpaint(
                            model.clone(),
                            inpaint_worker::sd::networks::Graphs::base(&model),
                            Pixels::from_rgb8(&image, size, size),
                            mask,
                            &request,
                            &mut |_, _| {},
                        )
                        .await
                        .expect("run");
                        (t.elapsed().as_secs_f64() * 1e3, result.latent)
                    })
                })
                .collect();
            let mut out = vec![];
            for run in runs {
                out.push(run.await.expect("task"));
            }
            out
        })
    }
}
