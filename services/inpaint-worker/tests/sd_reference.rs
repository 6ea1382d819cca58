//! The Stable Diffusion engine against independent numbers recorded by
//! models/build/tiny_sd.py (torch, k-diffusion, transformers, and a
//! WebUI-rule reference loop over the same ONNX graphs in Python
//! onnxruntime): noise, schedules, samplers, tokenizer, and whole runs on
//! the tiny 9- and 4-channel pipelines.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use inpaint_worker::onnx_engine::RuntimeOptions;
use inpaint_worker::sd::img2img::{LatentFill, SamplingPlan};
use inpaint_worker::sd::model::SdModel;
use inpaint_worker::sd::noise::TorchRng;
use inpaint_worker::sd::pipeline::{self, Pixels, SdRequest};
use inpaint_worker::sd::sampler::{KSampler, SamplerKind};
use inpaint_worker::sd::schedule::{BetaConfig, ModelSchedule, Schedule};
use inpaint_worker::sd::tokenizer::ClipTokenizer;
use serde_json::Value;

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn reference() -> &'static Value {
    static REF: OnceLock<Value> = OnceLock::new();
    REF.get_or_init(|| {
        let text = std::fs::read_to_string(repo("models/fixtures/tiny-sd/reference.json"))
            .expect("reference.json (models/build/tiny_sd.py)");
        serde_json::from_str(&text).unwrap()
    })
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn noise_equals_torch_randn() {
    let r = &reference()["randn"];
    for case in r["cases"].as_array().unwrap() {
        let seed = case["seed"].as_u64().unwrap();
        let n: usize = case["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .product();
        let ours = TorchRng::new(seed).randn(n);
        let diff = max_diff(&ours, &floats(&case["values"]));
        assert!(diff <= 1e-5, "seed {seed} n {n}: max difference {diff}");
    }
    let stream = &r["stream"];
    let mut rng = TorchRng::new(stream["seed"].as_u64().unwrap());
    assert!(max_diff(&rng.randn(256), &floats(&stream["first"])) <= 1e-5);
    assert!(max_diff(&rng.randn(256), &floats(&stream["second"])) <= 1e-5);
}

#[test]
fn schedules_equal_k_diffusion() {
    let r = &reference()["schedules"];
    let m = ModelSchedule::new(&BetaConfig::default()).unwrap();
    for (name, schedule) in [("normal", Schedule::Normal), ("karras", Schedule::Karras)] {
        for (steps, want) in r[name].as_object().unwrap() {
            let ours = m.sigmas(schedule, steps.parse().unwrap());
            let want = floats(want);
            for (a, b) in ours.iter().zip(&want) {
                assert!(
                    (a - b).abs() <= 1e-5 * b.max(1.0),
                    "{name} {steps}: {ours:?} vs {want:?}"
                );
            }
            assert_eq!(ours.len(), want.len());
        }
    }
    for pair in r["sigma_to_t"].as_array().unwrap() {
        let (s, t) = (
            pair[0].as_f64().unwrap() as f32,
            pair[1].as_f64().unwrap() as f32,
        );
        assert!(
            (m.sigma_to_t(s) - t).abs() < 2e-3,
            "sigma {s}: {} vs {t}",
            m.sigma_to_t(s)
        );
    }
}

/// The fixture's closed-form stand-in for the guided UNet.
fn toy_denoised(x: &[f32], sigma: f32) -> Vec<f32> {
    x.iter()
        .map(|v| (v * 0.7).tanh() * (1.0 / (1.0 + 0.3 * sigma)) + 0.05 * sigma)
        .collect()
}

#[test]
fn samplers_step_as_k_diffusion_does() {
    for case in reference()["samplers"].as_array().unwrap() {
        let kind = SamplerKind::parse(case["sampler"].as_str().unwrap()).unwrap();
        let sigmas = floats(&case["sigmas"]);
        let mut noises = case["noises"].as_array().unwrap().iter().map(floats);
        let mut x = floats(&case["x0"]);
        let mut s = KSampler::new(kind, sigmas.clone());
        for (i, want) in case["steps"].as_array().unwrap().iter().enumerate() {
            let denoised = toy_denoised(&x, sigmas[i]);
            s.step(i, &mut x, &denoised, &mut || noises.next().unwrap());
            let diff = max_diff(&x, &floats(want));
            assert!(
                diff <= 1e-4,
                "{} {}: step {i} differs by {diff}",
                case["sampler"],
                case["schedule"]
            );
        }
    }
}

#[test]
fn tokenizer_equals_transformers() {
    let tok = ClipTokenizer::load(&repo("models/fixtures/tiny-sd/inpaint/tokenizer")).unwrap();
    let cases = reference()["tokenizer"]["cases"].as_array().unwrap();
    assert!(cases.len() >= 200);
    let mut wrong = vec![];
    for case in cases {
        let prompt = case["prompt"].as_str().unwrap();
        let ids = |v: &Value| {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect::<Vec<_>>()
        };
        let tokens = tok.tokens(prompt).unwrap();
        if tokens != ids(&case["raw"]) || tok.window(&tokens) != ids(&case["ids"]) {
            wrong.push(prompt.to_string());
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} prompts differ: {wrong:?}",
        wrong.len(),
        cases.len()
    );
}

fn runtime() -> RuntimeOptions {
    let dylib = repo("models/cache/onnxruntime/libonnxruntime.so");
    assert!(
        dylib.exists(),
        "run `make models` for the ONNX Runtime library"
    );
    RuntimeOptions {
        ort_dylib: dylib,
        device: inpaint_onnx::Device::Cpu,
        require_gpu: false,
        threads: 1,
        max_wait: Duration::from_millis(1),
        always_wait: false,
        queue: 4,
        sd_max_batch: 8,
        sd_embeddings: None,
        sd_loras: None,
        sd_lora_cache_bytes: 1 << 30,
    }
}

/// A copy of the tiny pipeline's folder under a fresh temporary folder
/// named `tag`.
fn copy_pipeline(tag: &str) -> PathBuf {
    let src = repo("models/fixtures/tiny-sd/inpaint");
    let dir = std::env::temp_dir().join(format!("tiny-sd-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for sub in [
        "tokenizer",
        "text_encoder",
        "vae_encoder",
        "vae_decoder",
        "scheduler",
        "unet",
    ] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        for entry in std::fs::read_dir(src.join(sub)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.join(sub).join(entry.file_name())).unwrap();
        }
    }
    std::fs::copy(src.join("model_index.json"), dir.join("model_index.json")).unwrap();
    dir
}

/// The tiny 4-channel pipeline: the 9-channel folder with the other UNet.
fn four_channel_folder() -> PathBuf {
    let dir = copy_pipeline("unet4");
    std::fs::remove_file(dir.join("unet/config.json")).unwrap();
    std::fs::copy(
        repo("models/fixtures/tiny-sd/unet4/model.onnx"),
        dir.join("unet/model.onnx"),
    )
    .unwrap();
    dir
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let mse = a
        .iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }
}

/// The reference runs' photo and mask (RGB8 and 8-bit, square).
fn reference_inputs() -> (usize, Vec<u8>, Vec<u8>) {
    let r = &reference()["pipeline"];
    let bytes = |key: &str| -> Vec<u8> {
        r[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u8)
            .collect()
    };
    (
        r["size"].as_u64().unwrap() as usize,
        bytes("image"),
        bytes("mask"),
    )
}

/// One of reference.json's whole runs on `model`: its label, the largest
/// difference of the final latent from the reference's, and the decoded
/// image's PSNR against the reference's.
async fn reference_run(model: Arc<SdModel>, case: &Value) -> (String, f32, f64) {
    let (size, image, mask) = reference_inputs();
    let mask_weight = case["mask_weight"].as_f64().unwrap_or(1.0) as f32;
    let label = format!(
        "{} {} {} mask weight {mask_weight}",
        case["sampler"], case["fill"], case["unet"]
    );
    let sampler = SamplerKind::parse(case["sampler"].as_str().unwrap()).unwrap();
    let request = SdRequest {
        prompt: case["prompt"].as_str().unwrap().into(),
        negative_prompt: case["negative_prompt"].as_str().unwrap().into(),
        plan: SamplingPlan {
            sampler,
            schedule: Schedule::parse(case["schedule"].as_str().unwrap()).unwrap(),
            steps: case["steps"].as_u64().unwrap() as u32,
            denoising_strength: case["strength"].as_f64().unwrap() as f32,
        },
        cfg_scale: case["cfg"].as_f64().unwrap() as f32,
        seed: case["seed"].as_u64().unwrap(),
        fill: match case["fill"].as_str().unwrap() {
            "latent noise" => LatentFill::Noise,
            "latent nothing" => LatentFill::Zeros,
            _ => LatentFill::Encoded,
        },
        mask_weight,
    };
    let mut steps_seen = 0;
    let out = pipeline::inpaint(
        model.clone(),
        inpaint_worker::sd::networks::Graphs::base(&model),
        Pixels::from_rgb8(&image, size, size),
        mask,
        &request,
        &mut |done, _| steps_seen = done,
    )
    .await
    .unwrap();
    assert_eq!(
        out.steps_run as u64,
        case["steps_run"].as_u64().unwrap(),
        "{label}"
    );
    assert_eq!(steps_seen, out.steps_run, "{label}");
    let latent_diff = max_diff(&out.latent, &floats(&case["final_latent"]));
    let decoded: Vec<u8> = case["decoded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u8)
        .collect();
    let p = psnr(&out.image.to_rgb8(), &decoded);
    println!("case={label:?} latent_max_abs_diff={latent_diff:.2e} image_psnr_db={p:.1}");
    (label, latent_diff, p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_runs_equal_the_webui_rules_reference() {
    let nine = Arc::new(
        SdModel::load("tiny", &repo("models/fixtures/tiny-sd/inpaint"), &runtime()).unwrap(),
    );
    let four = Arc::new(SdModel::load("tiny4", &four_channel_folder(), &runtime()).unwrap());
    assert!(nine.is_inpainting() && !four.is_inpainting());
    assert_eq!((nine.io.vae_factor, nine.io.latent_channels), (2, 4));
    for case in reference()["pipeline"]["cases"].as_array().unwrap() {
        let model = if case["unet"].as_u64() == Some(9) {
            nine.clone()
        } else {
            four.clone()
        };
        let (label, latent_diff, p) = reference_run(model, case).await;
        assert!(
            latent_diff <= 1e-3,
            "{label}: final latent differs by {latent_diff}"
        );
        assert!(p >= 40.0, "{label}: decoded image PSNR {p:.1} dB");
    }
}

/// What operators run on ONNX Runtime: the same UNet exported with the
/// classic attention and fused by ONNX Runtime's optimizer (Attention,
/// MultiHeadAttention and SkipLayerNormalization of the com.microsoft
/// domain), in fp32 and converted to fp16 with fp16 inputs and outputs.
/// Same weights, so the runs must be the reference's: to float rounding in
/// fp32 (measured: latents within 2.2e-4), to fp16's precision in fp16,
/// whose rounding grows over the steps (measured: latents within 0.15 of
/// latents up to 14.6 at the first sigma, images at 60.8-64.2 dB; feeding
/// the UNet inputs 1% too small moves the latents by 0.51).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unets_fused_by_onnx_runtimes_optimizer_give_the_reference_runs() {
    for (variant, latent_limit, psnr_limit) in [("fp32", 1e-3, 40.0), ("fp16", 0.25, 50.0)] {
        let dir = copy_pipeline(&format!("ort-{variant}"));
        std::fs::copy(
            repo(&format!(
                "models/fixtures/tiny-sd/ort-optimized/unet-{variant}/model.onnx"
            )),
            dir.join("unet/model.onnx"),
        )
        .unwrap();
        let model = Arc::new(SdModel::load("fused", &dir, &runtime()).unwrap());
        assert!(model.is_inpainting(), "{variant}");
        let nine = reference()["pipeline"]["cases"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|case| case["unet"].as_u64() == Some(9));
        for case in nine {
            let (label, latent_diff, p) = reference_run(model.clone(), case).await;
            assert!(
                latent_diff <= latent_limit,
                "{variant} {label}: final latent differs by {latent_diff}"
            );
            assert!(
                p >= psnr_limit,
                "{variant} {label}: decoded image PSNR {p:.1} dB"
            );
        }
    }
}

/// A copy of the tiny pipeline with `edit` applied, loaded.
fn load_edited(tag: &str, edit: impl FnOnce(&std::path::Path)) -> Result<SdModel, String> {
    let dir = copy_pipeline(tag);
    edit(&dir);
    SdModel::load("edited", &dir, &runtime()).map_err(|e| e.reason)
}

#[test]
fn broken_folders_are_refused_naming_the_file() {
    let missing = load_edited("missing", |d| {
        std::fs::remove_file(d.join("unet/model.onnx")).unwrap()
    })
    .err()
    .unwrap();
    assert!(missing.contains("unet/model.onnx"), "{missing}");
    let swapped = load_edited("swapped", |d| {
        std::fs::copy(
            d.join("text_encoder/model.onnx"),
            d.join("vae_encoder/model.onnx"),
        )
        .unwrap();
    })
    .err()
    .unwrap();
    assert!(swapped.contains("vae_encoder/model.onnx"), "{swapped}");
    let v_model = load_edited("vpred", |d| {
        let p = d.join("scheduler/scheduler_config.json");
        let text = std::fs::read_to_string(&p)
            .unwrap()
            .replace("\"epsilon\"", "\"v_prediction\"");
        std::fs::write(p, text).unwrap();
    })
    .err()
    .unwrap();
    assert!(
        v_model.contains("scheduler_config.json") && v_model.contains("v_prediction"),
        "{v_model}"
    );
    let no_vocab = load_edited("vocab", |d| {
        std::fs::remove_file(d.join("tokenizer/merges.txt")).unwrap()
    })
    .err()
    .unwrap();
    assert!(no_vocab.contains("tokenizer/merges.txt"), "{no_vocab}");
}

/// Four concurrent requests (different seeds, prompts, step counts, so they
/// join and leave at different steps) on a model that batches their steps
/// and on one that runs them one at a time: the same latents to the bit
/// on the CPU, and the batching really happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_batching_changes_nothing_but_the_calls() {
    let (size, image, mask) = reference_inputs();
    let root = repo("models/fixtures/tiny-sd/inpaint");
    let mut alone = runtime();
    alone.sd_max_batch = 1;
    let mut together = runtime();
    together.max_wait = Duration::from_millis(50);
    let models = [
        Arc::new(SdModel::load("alone", &root, &alone).unwrap()),
        Arc::new(SdModel::load("together", &root, &together).unwrap()),
    ];
    let mut latents = vec![];
    for model in &models {
        let runs = (0..4u32).map(|k| {
            let request = SdRequest {
                prompt: ["a red apple", "a cat", "(blue sky:1.2)", "a house"][k as usize].into(),
                negative_prompt: "blurry".into(),
                plan: SamplingPlan {
                    sampler: [
                        SamplerKind::Euler,
                        SamplerKind::DpmPp2M,
                        SamplerKind::EulerAncestral,
                        SamplerKind::Euler,
                    ][k as usize],
                    schedule: Schedule::Normal,
                    steps: 6 + 2 * k,
                    denoising_strength: 1.0,
                },
                cfg_scale: 7.0,
                seed: 100 + k as u64,
                fill: LatentFill::Encoded,
                mask_weight: 1.0,
            };
            let (model, image, mask) = (model.clone(), image.clone(), mask.clone());
            tokio::spawn(async move {
                pipeline::inpaint(
                    model.clone(),
                    inpaint_worker::sd::networks::Graphs::base(&model),
                    Pixels::from_rgb8(&image, size, size),
                    mask,
                    &request,
                    &mut |_, _| {},
                )
                .await
                .unwrap()
                .latent
            })
        });
        let mut out = vec![];
        for run in runs.collect::<Vec<_>>() {
            out.push(run.await.unwrap());
        }
        latents.push(out);
    }
    for k in 0..4 {
        let diff = max_diff(&latents[0][k], &latents[1][k]);
        assert_eq!(diff, 0.0, "request {k}: batched and alone differ by {diff}");
    }
    let stats = |m: &SdModel| {
        let s = &m.unet_batcher.stats;
        (
            s.calls.load(std::sync::atomic::Ordering::Relaxed),
            s.largest.load(std::sync::atomic::Ordering::Relaxed),
        )
    };
    let (alone_calls, alone_largest) = stats(&models[0]);
    let (calls, largest) = stats(&models[1]);
    println!(
        "alone calls={alone_calls} largest={alone_largest}; batched calls={calls} largest={largest}"
    );
    assert_eq!(alone_largest, 2, "one request's pair at a time");
    assert!(largest >= 4, "no two requests shared a call");
    assert!(calls < alone_calls);
}

/// Writes embedding `name` (`rows` f32 vectors under `key`) into `dir`.
fn write_embedding(dir: &std::path::Path, name: &str, key: &str, rows: &[Vec<f32>]) {
    use safetensors::{Dtype, tensor::TensorView};
    let data: Vec<u8> = rows
        .iter()
        .flatten()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let view = TensorView::new(Dtype::F32, vec![rows.len(), rows[0].len()], &data).unwrap();
    safetensors::serialize_to_file(
        [(key, view)],
        None,
        &dir.join(format!("{name}.safetensors")),
    )
    .unwrap();
}

/// Textual inversion: vectors copied from the table rows of "a photo"
/// give exactly the condition of "a photo"; another embedding takes its
/// slots and leaves the tokens before it alone; an unfit file is skipped;
/// an unknown `embedding:NAME` is refused listing what is loaded.
#[test]
fn embeddings_take_their_slots_in_the_condition() {
    let folder = repo("models/fixtures/tiny-sd/inpaint");
    let te = folder.join("text_encoder/model.onnx");
    let table = inpaint_onnx::token_table::read(
        &std::fs::read(&te).unwrap(),
        te.parent().unwrap(),
        "input_ids",
    )
    .unwrap();
    let tokenizer = ClipTokenizer::load(&folder.join("tokenizer")).unwrap();
    let a_photo = tokenizer.tokens("a photo").unwrap();
    assert_eq!(a_photo.len(), 2);

    let dir = std::env::temp_dir().join(format!("tiny-sd-embeddings-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let rows: Vec<Vec<f32>> = a_photo
        .iter()
        .map(|&id| table.row(id as usize).unwrap())
        .collect();
    write_embedding(&dir, "kittycat", "emb_params", &rows);
    let mut rng = TorchRng::new(5);
    let noisy: Vec<Vec<f32>> = (0..3).map(|_| rng.randn(table.width)).collect();
    write_embedding(&dir, "noisy", "<noisy>", &noisy);
    write_embedding(
        &dir,
        "too-wide",
        "emb_params",
        &[vec![0.0; table.width + 1]],
    );

    let plain = SdModel::load("plain", &folder, &runtime()).unwrap();
    let with = SdModel::load(
        "with",
        &folder,
        &RuntimeOptions {
            sd_embeddings: Some(dir.clone()),
            sd_loras: None,
            sd_lora_cache_bytes: 1 << 30,
            ..runtime()
        },
    )
    .unwrap();
    assert_eq!(with.embeddings.names(), ["kittycat", "noisy"]);
    assert_eq!(with.embeddings.skipped.len(), 1);
    assert!(with.embeddings.skipped[0].starts_with("too-wide:"));

    let encode = |m: &SdModel, text: &str| pipeline::encode_prompt(m, text).unwrap();
    let expect = encode(&plain, "a photo of a dog");
    for written in ["kittycat of a dog", "embedding:kittycat of a dog"] {
        let d = max_diff(&encode(&with, written), &expect);
        assert!(d < 1e-5, "{written}: {d}");
    }
    assert!(
        max_diff(&encode(&plain, "kittycat of a dog"), &expect) > 1e-3,
        "without the embedding the name is plain text"
    );

    // "noisy" fills 3 slots after "one", with the ids past the vocabulary.
    let chunk = &pipeline::prompt_chunks(&with, "one noisy").unwrap()[0];
    let first = table.rows as u32 + 2;
    assert_eq!(
        &chunk.ids[2..6],
        &[first, first + 1, first + 2, tokenizer.eos]
    );
    let width = with.text_width;
    let (a, b) = (encode(&with, "one noisy"), encode(&plain, "one noisy"));
    assert_eq!(
        max_diff(&a[..2 * width], &b[..2 * width]),
        0.0,
        "BOS and \"one\" come before the slots"
    );
    assert!(max_diff(&a[2 * width..3 * width], &b[2 * width..3 * width]) > 1e-3);

    let err = pipeline::encode_prompt(&with, "embedding:nope").unwrap_err();
    assert!(
        err.contains("\"nope\"") && err.contains("kittycat, noisy"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
