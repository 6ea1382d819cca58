//! What LoRA costs (make bench-lora): the merge of each fixture LoRA into
//! the tiny pipeline's graphs, the same delta code timed on SD 1.5-sized
//! layers and scaled to SD 1.5's LoRA targets, and a whole tiny request's
//! latency on a fresh set (merge included), on the cached set and with no
//! LoRA. key=value lines.
//!
//! lora_bench [REPEATS]   (run from the repository root, after make models)

use std::sync::Arc;
use std::time::{Duration, Instant};

use inpaint_onnx::tensor::FloatKind;
use inpaint_onnx::weights::{Layout, ModuleWeight};
use inpaint_worker::onnx_engine::RuntimeOptions;
use inpaint_worker::sd::img2img::{LatentFill, SamplingPlan};
use inpaint_worker::sd::lora::file::{LoraModule, Part, Target};
use inpaint_worker::sd::lora::{merge, tags};
use inpaint_worker::sd::model::SdModel;
use inpaint_worker::sd::networks;
use inpaint_worker::sd::pipeline::{self, Pixels, SdRequest};
use inpaint_worker::sd::sampler::SamplerKind;
use inpaint_worker::sd::schedule::Schedule;

/// SD 1.5's LoRA targets (kohya's defaults): per transformer block at
/// width C, attention q/k/v/out twice (cross-attention k, v from 768),
/// GEGLU 2 x 4C, ff out 4C -> C, proj_in/out; 5 blocks at 320, 5 at 640,
/// 6 at 1280. Text encoder: 12 layers of q/k/v/out (768) and fc1/fc2 (3072).
fn sd15_targets() -> Vec<(usize, usize)> {
    let mut t = vec![];
    for (c, blocks) in [(320, 5), (640, 5), (1280, 6)] {
        for _ in 0..blocks {
            t.extend([(c, c); 4]); // attn1
            t.extend([(c, c), (c, 768), (c, 768), (c, c)]); // attn2
            t.extend([(8 * c, c), (c, 4 * c), (c, c), (c, c)]); // ff, proj_in/out
        }
    }
    for _ in 0..12 {
        t.extend([(768, 768); 4]);
        t.extend([(3072, 768), (768, 3072)]);
    }
    t
}

fn pair(out: usize, inner: usize, rank: usize) -> LoraModule {
    LoraModule {
        part: Part::Unet,
        key: "bench".into(),
        target: Target::Dotted("bench".into()),
        up: (0..out * rank).map(|i| (i % 7) as f32 * 0.01).collect(),
        down: (0..rank * inner).map(|i| (i % 5) as f32 * 0.01).collect(),
        out,
        rank,
        inner,
        in_channels: inner,
        alpha: Some(rank as f32),
    }
}

/// Seconds our delta code takes per (element x rank), measured on the
/// largest and smallest SD 1.5 layer shapes in their ONNX layout.
fn delta_rate(rank: usize) -> f64 {
    let mut total = (0.0, 0.0);
    for (out, inner) in [(10240, 1280), (320, 320)] {
        let m = pair(out, inner, rank);
        let w = ModuleWeight {
            module: "bench".into(),
            initializer: "w".into(),
            layout: Layout::InOut,
            dims: vec![inner, out],
            kind: FloatKind::F16,
            out,
            inner,
        };
        let mut values = vec![0f32; out * inner];
        let started = Instant::now();
        merge::add_delta(&mut values, &w, &m, 1.0, rank);
        let _ = FloatKind::F16.encode(&values);
        total.0 += started.elapsed().as_secs_f64();
        total.1 += (out * inner * rank) as f64;
    }
    total.0 / total.1
}

fn request(prompt: &str) -> SdRequest {
    SdRequest {
        prompt: prompt.into(),
        negative_prompt: String::new(),
        plan: SamplingPlan {
            sampler: SamplerKind::Euler,
            schedule: Schedule::Normal,
            steps: 8,
            denoising_strength: 0.75,
        },
        cfg_scale: 7.0,
        seed: 1,
        fill: LatentFill::Encoded,
        mask_weight: 1.0,
    }
}

async fn timed_request(model: &Arc<SdModel>, prompt: &str) -> (Duration, Duration) {
    let started = Instant::now();
    let (clean, uses) = tags::extract(prompt).unwrap();
    let set = model.loras.resolve(&uses).unwrap();
    let (graphs, merging) = networks::for_set(model, &set).await.unwrap();
    let size = 64;
    let image = Pixels::from_rgb8(&vec![128u8; size * size * 3], size, size);
    let mut mask = vec![0u8; size * size];
    mask[size * 16..size * 48].fill(255);
    pipeline::inpaint(
        model.clone(),
        graphs,
        image,
        mask,
        &request(&clean),
        &mut |_, _| {},
    )
    .await
    .unwrap();
    (started.elapsed(), merging)
}

fn main() {
    let repeats: usize = std::env::args()
        .nth(1)
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let mut runtime = RuntimeOptions::for_tools(inpaint_onnx::Device::Cpu);
    runtime.sd_loras = Some("models/fixtures/tiny-lora/loras".into());
    let model = Arc::new(
        SdModel::load("tiny", "models/fixtures/tiny-sd/inpaint".as_ref(), &runtime)
            .expect("the tiny pipeline (make models)"),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    for name in model.loras.names() {
        let set = model
            .loras
            .resolve(&tags::extract(&format!("<lora:{name}:1>")).unwrap().1)
            .unwrap();
        for (part, entries, file) in [
            (Part::TextEncoder, &set.text, &model.folder.text_encoder),
            (Part::Unet, &set.unet, &model.folder.unet),
        ] {
            let bytes = std::fs::read(file).unwrap();
            let folder = file.parent().unwrap();
            let mut best = f64::MAX;
            for _ in 0..repeats {
                let (_, _, took) = model.loras.merge(part, entries, &bytes, folder).unwrap();
                best = best.min(took.as_secs_f64());
            }
            println!(
                "lora={name} part={part:?} modules={} merge_ms={:.2}",
                model.loras.entries[name].matched,
                best * 1e3
            );
        }
    }
    let targets = sd15_targets();
    let elements: usize = targets.iter().map(|(o, i)| o * i).sum();
    for rank in [8, 32, 128] {
        let rate = delta_rate(rank);
        println!(
            "sd15_targets={} sd15_target_elements={elements} rank={rank} sd15_fp16_target_bytes={} sd15_merge_estimate_s={:.2}",
            targets.len(),
            elements * 2,
            rate * (elements * rank) as f64
        );
    }
    rt.block_on(async {
        let (base, _) = timed_request(&model, "a cat").await;
        let (first, merging) = timed_request(&model, "a cat <lora:locon:0.8>").await;
        let (cached, again) = timed_request(&model, "a cat <lora:locon:0.8>").await;
        assert_eq!(again, Duration::ZERO);
        println!(
            "tiny_request_ms_no_lora={:.1} tiny_request_ms_first_use={:.1} merge_ms={:.1} tiny_request_ms_cached={:.1} first_over_cached={:.2}",
            base.as_secs_f64() * 1e3,
            first.as_secs_f64() * 1e3,
            merging.as_secs_f64() * 1e3,
            cached.as_secs_f64() * 1e3,
            first.as_secs_f64() / cached.as_secs_f64()
        );
    });
}
