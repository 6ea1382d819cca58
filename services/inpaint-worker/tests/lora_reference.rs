//! LoRA merged into the tiny pipeline's graphs against what diffusers makes
//! of the same files (models/build/tiny_lora.py: load_lora_weights +
//! fuse_lora with peft, the torch models run directly): kohya, peft and
//! LoCon files at weights 1, 0.5 and -0.7 on the UNet only, the text
//! encoder only and both; the plain export, ONNX Runtime's fused fp32 and
//! fp16 UNets and a UNet with external weights; whole WebUI-rule runs;
//! variants kept apart under concurrency; bad input refused.

mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use inpaint_proto::v1::{InpaintCropsRequest, LoraWeight, MaskedContent, SdParams};
use inpaint_worker::engine::Engine;
use inpaint_worker::error::Error;
use inpaint_worker::sd::engine::SdEngine;
use inpaint_worker::sd::graph::{FloatType, TypedFloats};
use inpaint_worker::sd::img2img::{LatentFill, SamplingPlan};
use inpaint_worker::sd::lora::{LoraSet, tags};
use inpaint_worker::sd::model::SdModel;
use inpaint_worker::sd::networks::{self, Graphs};
use inpaint_worker::sd::pipeline::{self, Pixels, SdRequest};
use inpaint_worker::sd::runs::{UnetShape, encode_window};
use inpaint_worker::sd::sampler::SamplerKind;
use inpaint_worker::sd::schedule::Schedule;
use serde_json::Value;
use support::*;

fn reference() -> &'static Value {
    static REF: OnceLock<Value> = OnceLock::new();
    REF.get_or_init(|| read_json("models/fixtures/tiny-lora/reference.json"))
}

fn loras_dir() -> PathBuf {
    repo("models/fixtures/tiny-lora/loras")
}

/// The tiny pipeline (its UNet swapped for `unet` when given) with the
/// fixture's LoRA folder.
fn load(tag: &str, unet: Option<&Path>) -> Arc<SdModel> {
    let dir = copy_pipeline(&format!("lora-{tag}"));
    if let Some(unet) = unet {
        std::fs::remove_dir_all(dir.join("unet")).unwrap();
        copy_dir(unet, &dir.join("unet"));
        std::fs::copy(
            repo("models/fixtures/tiny-sd/inpaint/unet/config.json"),
            dir.join("unet/config.json"),
        )
        .unwrap();
    }
    let mut rt = runtime();
    rt.sd_loras = Some(loras_dir());
    Arc::new(SdModel::load(tag, &dir, &rt).unwrap())
}

/// The set a tag spells.
fn set_of(model: &SdModel, tag: &str) -> LoraSet {
    let (_, uses) = tags::extract(tag).unwrap();
    model.loras.resolve(&uses).unwrap()
}

fn tag(v: &Value) -> String {
    format!(
        "<lora:{}:{}:{}>",
        v["file"].as_str().unwrap(),
        v["te_weight"],
        v["unet_weight"]
    )
}

/// The probe's UNet output and text-encoder hidden states on `graphs`.
async fn probe(model: &SdModel, graphs: &Graphs) -> (Vec<f32>, Vec<f32>) {
    let p = &reference()["probe"];
    let shape = floats(&p["sample_shape"]);
    let hidden_shape = floats(&p["hidden_shape"]);
    let n = shape[0] as usize;
    let hidden = Arc::new(TypedFloats::new(model.io.unet_float, &floats(&p["hidden"])));
    let eps = graphs
        .unet
        .eval(
            floats(&p["sample"]),
            hidden,
            n,
            UnetShape {
                channels: shape[1] as usize,
                height: shape[2] as usize,
                width: shape[3] as usize,
                tokens: hidden_shape[1] as usize,
            },
            floats(&p["timestep"])[0],
        )
        .await
        .unwrap();
    let ids: Vec<u32> = p["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    let te = encode_window(&graphs.text_encoder, &model.io, &ids).unwrap();
    (eps, te)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_graphs_give_what_diffusers_fuses() {
    let model = load("plain", None);
    let base = probe(&model, &Graphs::base(&model)).await;
    assert!(max_diff(&base.0, &floats(&reference()["probe"]["base_eps"])) <= 1e-4);
    assert!(max_diff(&base.1, &floats(&reference()["probe"]["base_te"])) <= 1e-4);
    for v in reference()["variants"].as_array().unwrap() {
        let label = format!("{} {} {}", tag(v), v["part"], v["file"]);
        let (graphs, _) = networks::for_set(&model, &set_of(&model, &tag(v)))
            .await
            .unwrap();
        let (eps, te) = probe(&model, &graphs).await;
        let (de, dt) = (
            max_diff(&eps, &floats(&v["eps"])),
            max_diff(&te, &floats(&v["te"])),
        );
        println!(
            "variant={label:?} eps_max_abs_diff={de:.2e} te_max_abs_diff={dt:.2e} eps_change={} te_change={}",
            v["eps_change"], v["te_change"]
        );
        assert!(de <= 1e-4, "{label}: UNet output differs by {de}");
        assert!(dt <= 1e-4, "{label}: hidden states differ by {dt}");
    }
}

/// The same merge on the UNet as ONNX Runtime's optimizer fuses it (q, k,
/// v packed into one Attention weight; fp32 and fp16) and as saved with
/// external weights.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fused_and_external_unets_merge_alike() {
    for (variant, folder, limit) in [
        ("fp32", "tiny-sd/ort-optimized/unet-fp32", 1e-4),
        ("fp16", "tiny-sd/ort-optimized/unet-fp16", 0.05),
        ("external", "tiny-lora/unet-external", 1e-4),
    ] {
        let model = load(variant, Some(&repo(&format!("models/fixtures/{folder}"))));
        if variant == "fp16" {
            assert_eq!(model.io.unet_float, FloatType::F16);
        }
        let unet_cases = reference()["variants"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["part"] == "unet");
        for v in unet_cases {
            let (graphs, _) = networks::for_set(&model, &set_of(&model, &tag(v)))
                .await
                .unwrap();
            let (eps, _) = probe(&model, &graphs).await;
            let d = max_diff(&eps, &floats(&v["eps"]));
            println!("unet={variant} lora={:?} eps_max_abs_diff={d:.2e}", tag(v));
            assert!(
                d <= limit,
                "{variant} {}: UNet output differs by {d}",
                tag(v)
            );
        }
    }
}

fn request(prompt: &str, seed: u64) -> SdRequest {
    SdRequest {
        prompt: prompt.into(),
        negative_prompt: "blurry".into(),
        plan: SamplingPlan {
            sampler: SamplerKind::Euler,
            schedule: Schedule::Normal,
            steps: 8,
            denoising_strength: 0.75,
        },
        cfg_scale: 7.0,
        seed,
        fill: LatentFill::Encoded,
        mask_weight: 1.0,
    }
}

fn inputs() -> (usize, Vec<u8>, Vec<u8>) {
    let r = read_json("models/fixtures/tiny-sd/reference.json");
    let p = &r["pipeline"];
    (
        p["size"].as_u64().unwrap() as usize,
        bytes(&p["image"]),
        bytes(&p["mask"]),
    )
}

/// A whole run with the tag in the prompt, as the engine reads it.
async fn run(model: &Arc<SdModel>, prompt: &str, seed: u64) -> (Vec<f32>, Vec<u8>) {
    let (size, image, mask) = inputs();
    let (clean, uses) = tags::extract(prompt).unwrap();
    let set = model.loras.resolve(&uses).unwrap();
    let (graphs, _) = networks::for_set(model, &set).await.unwrap();
    let out = pipeline::inpaint(
        model.clone(),
        graphs,
        Pixels::from_rgb8(&image, size, size),
        mask,
        &request(&clean, seed),
        &mut |_, _| {},
    )
    .await
    .unwrap();
    (out.latent, out.image.to_rgb8())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_runs_with_loras_equal_the_reference() {
    let model = load("runs", None);
    for case in reference()["pipeline"].as_array().unwrap() {
        assert_eq!(case["sampler"], "Euler");
        // The tag leaves no text behind: the prompt the reference encoded.
        let prompt = format!("{}{}", case["prompt"].as_str().unwrap(), tag(case));
        let (latent, image) = run(&model, &prompt, case["seed"].as_u64().unwrap()).await;
        let d = max_diff(&latent, &floats(&case["final_latent"]));
        let p = psnr(&image, &bytes(&case["decoded"]));
        println!(
            "run={:?} latent_max_abs_diff={d:.2e} image_psnr_db={p:.1}",
            tag(case)
        );
        assert!(d <= 1e-3, "{}: final latent differs by {d}", tag(case));
        assert!(p >= 40.0, "{}: PSNR {p:.1} dB", tag(case));
    }
}

/// Two LoRA sets and none, at once: each request gets its own variant, and
/// the same bytes as when it runs alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sets_keep_to_their_own_variants() {
    let model = load("concurrent", None);
    let prompts = [
        "a red apple <lora:kohya:1>",
        "a red apple <lora:peft:0.5> <lora:locon:-0.7>",
        "a red apple",
    ];
    let mut alone = vec![];
    for p in prompts {
        alone.push(run(&model, p, 5).await.0);
    }
    let together: Vec<_> = prompts
        .iter()
        .map(|p| {
            let (m, p) = (model.clone(), p.to_string());
            tokio::spawn(async move { run(&m, &p, 5).await.0 })
        })
        .collect();
    for (k, t) in together.into_iter().enumerate() {
        assert_eq!(t.await.unwrap(), alone[k], "{}", prompts[k]);
    }
    assert_ne!(alone[0], alone[2]);
    assert_ne!(alone[1], alone[0]);
    // kohya's UNet + text variants, and peft+locon's: four held.
    assert_eq!(model.variants.held().0, 4);
}

fn crops_request(prompt: &str, loras: Vec<LoraWeight>) -> InpaintCropsRequest {
    InpaintCropsRequest {
        sd: Some(SdParams {
            prompt: prompt.into(),
            loras,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn refusal(engine: &SdEngine, req: &InpaintCropsRequest) -> (String, String) {
    match engine.start(req, MaskedContent::Original) {
        Err(Error::Invalid(f)) => (f.field.clone(), f.reason.clone()),
        Err(other) => panic!("expected INVALID_ARGUMENT, got {other}"),
        Ok(_) => panic!("accepted {req:?}"),
    }
}

fn write_safetensors(path: &Path, tensors: &[(&str, Vec<usize>)]) {
    let data: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(k, shape)| {
            let n: usize = shape.iter().product();
            (k.to_string(), vec![0u8; n * 4], shape.clone())
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = data
        .iter()
        .map(|(k, b, s)| {
            (
                k.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .unwrap(),
            )
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

#[test]
fn bad_loras_and_tags_are_refused_clearly() {
    let dir = std::env::temp_dir().join(format!("lora-bad-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        loras_dir().join("kohya.safetensors"),
        dir.join("kohya.safetensors"),
    )
    .unwrap();
    let whole = std::fs::read(loras_dir().join("peft.safetensors")).unwrap();
    std::fs::write(dir.join("truncated.safetensors"), &whole[..whole.len() / 2]).unwrap();
    std::fs::write(dir.join("text.safetensors"), b"not a tensor file").unwrap();
    let q = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q";
    write_safetensors(
        &dir.join("wider.safetensors"),
        &[
            (&format!("{q}.lora_down.weight"), vec![4, 640]),
            (&format!("{q}.lora_up.weight"), vec![640, 4]),
        ],
    );
    write_safetensors(
        &dir.join("sdxl.safetensors"),
        &[
            (
                "lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight",
                vec![4, 32],
            ),
            (
                "lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_up.weight",
                vec![37, 4],
            ),
        ],
    );
    let mut rt = runtime();
    rt.sd_loras = Some(dir.clone());
    let model = SdModel::load("bad", &repo("models/fixtures/tiny-sd/inpaint"), &rt).unwrap();
    let loras = &model.loras;
    assert_eq!(loras.names(), ["kohya", "sdxl", "wider"]);
    assert_eq!(loras.skipped.len(), 2, "{:?}", loras.skipped);
    assert!(loras.skipped.iter().any(|s| s.starts_with("truncated:")));
    assert!(
        loras.entries["sdxl"]
            .refused
            .as_ref()
            .unwrap()
            .contains("SDXL")
    );
    assert!(
        loras.entries["wider"]
            .refused
            .as_ref()
            .unwrap()
            .contains("does not fit")
    );
    let notes = loras.notes();
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("LoRA kohya:") && n.contains("0 keys unmatched"))
    );
    let engine = SdEngine {
        models: vec![Arc::new(model)],
    };

    let (field, reason) = refusal(&engine, &crops_request("x <lora:nope:1>", vec![]));
    assert_eq!(field, "sd.prompt");
    assert!(
        reason.contains("\"nope\"") && reason.contains("kohya"),
        "{reason}"
    );
    let (field, reason) = refusal(&engine, &crops_request("x <lora:kohya:abc>", vec![]));
    assert_eq!(field, "sd.prompt");
    assert!(reason.contains("<lora:kohya:abc>"), "{reason}");
    let (_, reason) = refusal(&engine, &crops_request("<lora:wider>", vec![]));
    assert!(reason.contains("does not fit"), "{reason}");
    let by_field = vec![LoraWeight {
        name: "missing".into(),
        ..Default::default()
    }];
    let (field, _) = refusal(&engine, &crops_request("x", by_field));
    assert_eq!(field, "sd.loras[0].name");
    assert!(
        engine
            .start(
                &crops_request("a <lora:kohya:0.5>", vec![]),
                MaskedContent::Original
            )
            .is_ok()
    );
    std::fs::remove_dir_all(&dir).ok();
}
