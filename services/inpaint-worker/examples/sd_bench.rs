//! Times our Stable Diffusion pipeline on an export folder: text encoding,
//! VAE encode, the sampling loop, VAE decode, end to end. Driven by
//! bench/sd_bench.py, which runs the Python reference on the same graphs,
//! inputs and noise and prints both side by side.
//!
//! sd_bench MODEL_DIR IMAGE.rgb MASK.gray SIZE SAMPLER SCHEDULE STEPS REPEATS OUT_DIR [cuda]
//! writes OUT_DIR/noise.f32 (the seed's initial noise) and OUT_DIR/ours.rgb,
//! and prints `ours_ms=.. per_step_ms=.. steps_per_s=.. outside_unet_share=..
//! steps_run=.. device=.. sampler=.. schedule=..` (per-step figures from the
//! sampling loop alone; the share is the loop's time outside the UNet's
//! session runs). SAMPLER and SCHEDULE may be comma-separated lists of one
//! length: one line per pair, on one loaded model (ours.rgb is the last).

use std::sync::Arc;
use std::time::Instant;

use inpaint_worker::onnx_engine::RuntimeOptions;
use inpaint_worker::sd::img2img::{LatentFill, SamplingPlan};
use inpaint_worker::sd::model::SdModel;
use inpaint_worker::sd::noise::TorchRng;
use inpaint_worker::sd::pipeline::{self, Pixels, SdRequest};
use inpaint_worker::sd::sampler::SamplerKind;
use inpaint_worker::sd::schedule::Schedule;

const SEED: u64 = 1234;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 10 {
        eprintln!(
            "usage: sd_bench MODEL_DIR IMAGE.rgb MASK.gray SIZE SAMPLER SCHEDULE STEPS REPEATS OUT_DIR [cuda]"
        );
        std::process::exit(2);
    }
    let size: usize = args[4].parse().expect("size");
    let steps: u32 = args[7].parse().expect("steps");
    let repeats: usize = args[8].parse().expect("repeats");
    let out = std::path::PathBuf::from(&args[9]);
    let device = match args.get(10).map(String::as_str) {
        Some("cuda") => inpaint_onnx::Device::Cuda,
        _ => inpaint_onnx::Device::Cpu,
    };
    let runtime = RuntimeOptions::for_tools(device);
    let model =
        Arc::new(SdModel::load("bench", std::path::Path::new(&args[1]), &runtime).expect("model"));
    let image = std::fs::read(&args[2]).expect("image");
    let mask = std::fs::read(&args[3]).expect("mask");
    let samplers: Vec<&str> = args[5].split(',').collect();
    let schedules: Vec<&str> = args[6].split(',').collect();
    assert_eq!(samplers.len(), schedules.len(), "one schedule per sampler");
    let latent = (size / model.io.vae_factor).pow(2) * model.io.latent_channels;
    let noise = TorchRng::new(SEED).randn(latent);
    std::fs::create_dir_all(&out).expect("out dir");
    let bytes: Vec<u8> = noise.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(out.join("noise.f32"), bytes).expect("noise");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    for (sampler, schedule) in samplers.iter().zip(&schedules) {
        let request = SdRequest {
            prompt: "a photo of a cat".into(),
            negative_prompt: String::new(),
            plan: SamplingPlan {
                sampler: SamplerKind::parse(sampler).expect("sampler"),
                schedule: Schedule::parse(schedule).expect("schedule"),
                steps,
                denoising_strength: 1.0,
            },
            cfg_scale: 7.0,
            seed: SEED,
            fill: LatentFill::Encoded,
            mask_weight: 1.0,
        };
        let line = time_case(&rt, &model, &request, &image, &mask, size, repeats, &out);
        println!(
            "{line} sampler={} schedule={schedule}",
            sampler.replace(' ', "_")
        );
    }
}

/// Times `repeats` runs after a warm-up; the figures as key=value pairs.
#[allow(clippy::too_many_arguments)]
fn time_case(
    rt: &tokio::runtime::Runtime,
    model: &Arc<SdModel>,
    request: &SdRequest,
    image: &[u8],
    mask: &[u8],
    size: usize,
    repeats: usize,
    out: &std::path::Path,
) -> String {
    let mut times = vec![];
    let mut outside = vec![];
    let mut result = None;
    for _ in 0..repeats + 1 {
        let start = Instant::now();
        let r = rt
            .block_on(pipeline::inpaint(
                model.clone(),
                inpaint_worker::sd::networks::Graphs::base(model),
                Pixels::from_rgb8(image, size, size),
                mask.to_vec(),
                request,
                &mut |_, _| {},
            ))
            .expect("run");
        times.push(start.elapsed().as_secs_f64() * 1e3);
        outside.push(1.0 - r.unet.as_secs_f64() / r.sampling.as_secs_f64());
        result = Some(r);
    }
    times.remove(0); // warm-up
    outside.remove(0);
    times.sort_by(f64::total_cmp);
    outside.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let r = result.expect("a run");
    std::fs::write(out.join("ours.rgb"), r.image.to_rgb8()).expect("result");
    let step_ms = r.sampling.as_secs_f64() * 1e3 / r.steps_run as f64;
    format!(
        "ours_ms={median:.2} per_step_ms={step_ms:.3} steps_per_s={:.2} outside_unet_share={:.4} steps_run={} device={}",
        1e3 / step_ms,
        outside[outside.len() / 2],
        r.steps_run,
        model.device().name()
    )
}
