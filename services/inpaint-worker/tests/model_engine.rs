//! The ONNX engine on the project's own push-pull models (built by
//! `make models`), through the real ONNX Runtime library.

use std::path::PathBuf;
use std::time::Duration;

use inpaint_imaging::mask::from_box;
use inpaint_imaging::metrics::psnr_in_mask;
use inpaint_imaging::{PixelBox, RgbImage};
use inpaint_worker::models::{self, ModelSpec};
use inpaint_worker::onnx_engine::{ModelEngine, RuntimeOptions};

fn cache(path: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../models/cache")
        .join(path);
    assert!(p.exists(), "{} is missing: run `make models`", p.display());
    p
}

fn options() -> RuntimeOptions {
    RuntimeOptions {
        ort_dylib: cache("onnxruntime/libonnxruntime.so"),
        device: inpaint_onnx::Device::Cpu,
        require_gpu: false,
        threads: 1,
        max_wait: Duration::from_millis(20),
        always_wait: false,
        queue: 8,
        sd_max_batch: 8,
        sd_embeddings: None,
        sd_loras: None,
        sd_lora_cache_bytes: 1 << 30,
    }
}

fn specs() -> Vec<ModelSpec> {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/worker-models.toml");
    models::load(&file).expect("model config")
}

fn photo() -> RgbImage {
    let img = image::open(cache("photos/astronaut.png"))
        .unwrap()
        .into_rgb8();
    let (w, h) = img.dimensions();
    RgbImage::from_raw(w, h, img.into_raw()).unwrap()
}

#[tokio::test]
async fn both_conventions_fill_a_smooth_hole_and_agree() {
    let full = photo();
    // A 100x70 crop of the backdrop: dynamic sides get padded to 128x96.
    let crop = full.crop(PixelBox::new(300, 0, 100, 70));
    let hole = from_box(100, 70, PixelBox::new(30, 20, 24, 24));
    let mut results = Vec::new();
    for spec in specs() {
        let engine = ModelEngine::load(spec.clone(), &options()).expect("model loads");
        let out = engine.inpaint(&crop, &hole).await.expect("runs");
        let psnr = psnr_in_mask(&crop, &out, &hole).unwrap();
        assert!(psnr > 30.0, "{}: PSNR {psnr:.2}", spec.name);
        for i in 0..100 * 70 {
            if hole.as_raw()[i] == 0 {
                assert_eq!(
                    out.as_raw()[i * 3..i * 3 + 3],
                    crop.as_raw()[i * 3..i * 3 + 3]
                );
            }
        }
        results.push(out);
    }
    let worst = results[0]
        .as_raw()
        .iter()
        .zip(results[1].as_raw())
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap();
    assert!(worst <= 1, "the f32 and u8 conventions differ by {worst}");
}

#[tokio::test]
async fn a_hole_wider_than_the_pyramid_is_not_left_black() {
    let full = photo();
    let hole = from_box(512, 512, PixelBox::new(100, 60, 300, 360));
    let engine = ModelEngine::load(specs().remove(0), &options()).expect("model loads");
    let out = engine.inpaint(&full, &hole).await.expect("runs");
    let (mut sum, mut n) = (0u64, 0u64);
    for i in 0..512 * 512 {
        if hole.as_raw()[i] > 0 {
            sum += out.as_raw()[i * 3..i * 3 + 3]
                .iter()
                .map(|&v| v as u64)
                .sum::<u64>();
            n += 3;
        }
    }
    let mean = sum as f64 / n as f64;
    assert!(
        mean > 60.0,
        "mean value in the hole {mean:.1}: the fill went dark"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_crops_are_batched_up_to_the_limit() {
    let mut spec = specs().remove(0);
    spec.max_batch = 3;
    let engine = std::sync::Arc::new(ModelEngine::load(spec, &options()).expect("model loads"));
    // A large crop keeps the model's thread busy while seven small ones
    // queue behind it; freed, the thread batches them three at a time.
    let full = photo();
    let big = tokio::spawn({
        let (engine, full) = (engine.clone(), full.clone());
        let hole = from_box(512, 512, PixelBox::new(100, 100, 300, 300));
        async move { engine.inpaint(&full, &hole).await }
    });
    // Synchronise on what the engine shows: its thread has taken the big
    // crop as a batch of its own (the counter moves as a batch starts), so
    // it is busy for the tens of milliseconds the small ones take to queue.
    let started = std::time::Instant::now();
    while engine
        .stats
        .batches
        .load(std::sync::atomic::Ordering::SeqCst)
        == 0
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the big crop never started"
        );
        tokio::task::yield_now().await;
    }
    let crop = full.crop(PixelBox::new(0, 0, 64, 64));
    let hole = from_box(64, 64, PixelBox::new(20, 20, 10, 10));
    let runs: Vec<_> = (0..7)
        .map(|_| {
            let (engine, crop, hole) = (engine.clone(), crop.clone(), hole.clone());
            tokio::spawn(async move { engine.inpaint(&crop, &hole).await })
        })
        .collect();
    let mut outputs = Vec::new();
    for run in runs {
        outputs.push(run.await.unwrap().expect("runs"));
    }
    big.await.unwrap().expect("runs");
    assert!(
        outputs.windows(2).all(|w| w[0] == w[1]),
        "same input, same output, whatever the batch"
    );
    let stats = &engine.stats;
    let (batches, crops, largest) = (
        stats.batches.load(std::sync::atomic::Ordering::Relaxed),
        stats.crops.load(std::sync::atomic::Ordering::Relaxed),
        stats.largest.load(std::sync::atomic::Ordering::Relaxed),
    );
    println!("batches={batches} crops={crops} largest={largest}");
    assert_eq!(crops, 8);
    assert_eq!(largest, 3, "batches fill up to max_batch and no further");
    assert!(batches <= 5, "{batches} batches for 8 crops");
}
