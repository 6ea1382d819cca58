//! Times the worker's engines for `bench/worker_bench.py`.
//!
//!   worker_bench quality CASE_DIR REPEATS CASE...
//!       telea and patchmatch on CASE_DIR/CASE.{image,mask}.png; writes
//!       CASE.telea.png / CASE.patchmatch.png; prints engine=.. case=.. ms=..
//!   worker_bench onnx MODELS_TOML MODEL IMAGE.png MASK.png REPEATS OUT.png
//!       the ONNX engine (pre-processing, session, post-processing) on one
//!       crop; prints bench=onnx ms=..
//!   worker_bench throughput MODELS_TOML MODEL IMAGE.png MASK.png CROPS BATCH...
//!       CROPS concurrent crops through the batching queue with max_batch =
//!       BATCH; prints bench=throughput batch=.. crops_per_s=..

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use inpaint_imaging::{GrayImage, RgbImage, patchmatch, pushpull, telea};
use inpaint_worker::models;
use inpaint_worker::onnx_engine::{ModelEngine, RuntimeOptions};

fn load_rgb(path: &Path) -> RgbImage {
    let img = image::open(path).expect("image").into_rgb8();
    let (w, h) = img.dimensions();
    RgbImage::from_raw(w, h, img.into_raw()).expect("rgb")
}

fn load_gray(path: &Path) -> GrayImage {
    let img = image::open(path).expect("mask").into_luma8();
    let (w, h) = img.dimensions();
    GrayImage::from_raw(w, h, img.into_raw()).expect("gray")
}

fn save(img: &RgbImage, path: &Path) {
    image::RgbImage::from_raw(img.width(), img.height(), img.as_raw().to_vec())
        .expect("rgb")
        .save(path)
        .expect("write");
}

fn best_ms<T>(repeats: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut out = f(); // warm-up
    let mut best = f64::INFINITY;
    for _ in 0..repeats {
        let start = Instant::now();
        out = f();
        best = best.min(start.elapsed().as_secs_f64() * 1e3);
    }
    (best, out)
}

/// CPU unless DEVICE=cuda (then the GPU is required, so a figure is never
/// a silent CPU fallback); ORT_DYLIB_PATH overrides the fetched library.
fn options(models_toml: &Path) -> RuntimeOptions {
    let root = models_toml.parent().expect("models folder");
    let cuda = std::env::var("DEVICE").is_ok_and(|d| d == "cuda");
    RuntimeOptions {
        ort_dylib: std::env::var_os("ORT_DYLIB_PATH")
            .map(Into::into)
            .unwrap_or_else(|| root.join("cache/onnxruntime/libonnxruntime.so")),
        device: if cuda {
            inpaint_onnx::Device::Cuda
        } else {
            inpaint_onnx::Device::Cpu
        },
        require_gpu: cuda,
        threads: 0,
        max_wait: Duration::from_millis(5),
        always_wait: false,
        queue: 256,
        sd_max_batch: 8,
        sd_embeddings: None,
        sd_loras: None,
        sd_lora_cache_bytes: 1 << 30,
    }
}

fn model(models_toml: &Path, name: &str, max_batch: Option<usize>) -> ModelEngine {
    let mut spec = models::load(models_toml)
        .expect("model config")
        .into_iter()
        .find(|s| s.name == name)
        .expect("model in config");
    if let Some(b) = max_batch {
        spec.max_batch = b;
    }
    ModelEngine::load(spec, &options(models_toml)).expect("model loads")
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("quality") => {
            let dir = Path::new(&args[2]);
            let repeats: usize = args[3].parse().expect("repeats");
            for case in &args[4..] {
                let image = load_rgb(&dir.join(format!("{case}.image.png")));
                let hole = load_gray(&dir.join(format!("{case}.mask.png")));
                let (ms, out) = best_ms(repeats, || telea::inpaint(&image, &hole, 5));
                save(&out, &dir.join(format!("{case}.telea.png")));
                println!("engine=telea case={case} ms={ms:.3}");
                // As the worker runs it: the hole prefilled (the default FILL).
                let (ms, out) = best_ms(repeats, || {
                    patchmatch::inpaint(&pushpull::fill(&image, &hole), &hole, 0)
                });
                save(&out, &dir.join(format!("{case}.patchmatch.png")));
                println!("engine=patchmatch case={case} ms={ms:.3}");
            }
        }
        Some("onnx") => {
            let engine = model(Path::new(&args[2]), &args[3], None);
            let image = load_rgb(Path::new(&args[4]));
            let hole = load_gray(Path::new(&args[5]));
            let repeats: usize = args[6].parse().expect("repeats");
            let mut best = f64::INFINITY;
            let mut out = engine.inpaint(&image, &hole).await.expect("runs");
            for _ in 0..repeats {
                let start = Instant::now();
                out = engine.inpaint(&image, &hole).await.expect("runs");
                best = best.min(start.elapsed().as_secs_f64() * 1e3);
            }
            save(&out, Path::new(&args[7]));
            println!("bench=onnx ms={best:.3}");
        }
        Some("throughput") => {
            let image = load_rgb(Path::new(&args[4]));
            let hole = load_gray(Path::new(&args[5]));
            let crops: usize = args[6].parse().expect("crops");
            for batch in &args[7..] {
                let batch: usize = batch.parse().expect("batch");
                let engine = Arc::new(model(Path::new(&args[2]), &args[3], Some(batch)));
                // Warm-up with a full batch (a GPU tunes kernels per shape).
                let warm: Vec<_> = (0..batch)
                    .map(|_| {
                        let (engine, image, hole) = (engine.clone(), image.clone(), hole.clone());
                        tokio::spawn(async move { engine.inpaint(&image, &hole).await })
                    })
                    .collect();
                for w in warm {
                    let _ = w.await;
                }
                let warm_batches = engine
                    .stats
                    .batches
                    .load(std::sync::atomic::Ordering::Relaxed);
                let start = Instant::now();
                let runs: Vec<_> = (0..crops)
                    .map(|_| {
                        let (engine, image, hole) = (engine.clone(), image.clone(), hole.clone());
                        tokio::spawn(
                            async move { engine.inpaint(&image, &hole).await.expect("runs") },
                        )
                    })
                    .collect();
                for run in runs {
                    run.await.expect("join");
                }
                let secs = start.elapsed().as_secs_f64();
                let stats = &engine.stats;
                let batches =
                    stats.batches.load(std::sync::atomic::Ordering::Relaxed) - warm_batches;
                println!(
                    "bench=throughput batch={batch} crops={crops} batches_run={batches} crops_per_s={:.2}",
                    crops as f64 / secs
                );
            }
        }
        _ => {
            eprintln!("usage: see the top of examples/worker_bench.rs");
            std::process::exit(2);
        }
    }
}
