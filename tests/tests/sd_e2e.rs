//! Engine "sd" through the gateway over real sockets, on the tiny
//! random-weight inpainting pipeline (models/fixtures/tiny-sd): every face
//! repainted with a prompt, the crop's sampling reported, pixels outside
//! the feathered mask byte-identical, seeds and prompts that matter, and
//! bad settings answered with the field they name.

mod support;

use inpaint_imaging::PixelBox;
use inpaint_proto::v1::inpaint_request::Target;
use inpaint_proto::v1::{FaceTarget, InpaintParams, InpaintRequest, InpaintResponse, SdParams};
use support::*;
use tonic::Code;

fn tiny_sd() -> std::path::PathBuf {
    repo_root().join("models/fixtures/tiny-sd/inpaint")
}

fn face_request(sd: SdParams, seed: u64) -> InpaintRequest {
    InpaintRequest {
        image: photo_bytes("astronaut.png"),
        target: Some(Target::Faces(FaceTarget::default())),
        params: Some(InpaintParams {
            engine: "sd".into(),
            // The tiny pipeline's native size (its attention runs at full
            // resolution; 512x512 is for real exports).
            work_width: 64,
            work_height: 64,
            mask_blur: 4,
            seed,
            sd: Some(sd),
            ..Default::default()
        }),
        sketch: vec![],
    }
}

fn settings(prompt: &str) -> SdParams {
    SdParams {
        prompt: prompt.into(),
        negative_prompt: "blurry".into(),
        steps: Some(8),
        sampler: "Euler a".into(),
        denoising_strength: Some(0.75),
        ..Default::default()
    }
}

/// The cluster with the tiny pipeline as its SD model.
async fn sd_cluster() -> inpaint_cli::embedded::Cluster {
    let mut config = cluster_config();
    config.sd_models = vec![tiny_sd()];
    start_cluster_with(config).await
}

async fn run(url: &str, request: InpaintRequest) -> Result<InpaintResponse, tonic::Status> {
    inpaint_cli::client::inpaint(url, request).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faces_repainted_with_a_prompt() {
    let cluster = sd_cluster().await;
    let url = cluster.gateway_url();

    let original = decode_rgb(&photo_bytes("astronaut.png"));
    let first = run(&url, face_request(settings("closed eyes, smiling"), 1))
        .await
        .unwrap();
    assert_eq!(first.engine, "sd");
    assert_eq!(first.crops.len(), 1);
    let crop = &first.crops[0];
    let report = crop.sd.as_ref().expect("the crop says how it was sampled");
    assert_eq!(report.sampler, "Euler a");
    assert_eq!(report.schedule, "normal");
    // The WebUI's rule: int(0.75 * 8) + 1 = 7 (diffusers would run 6).
    assert_eq!(report.steps_run, 7);
    assert_eq!(report.seed, 1);
    assert_eq!(report.model, "inpaint");

    // The face changed; everything beyond the crop's feathered edge did not.
    let out = decode_rgb(&first.image);
    let b = crop.r#box.unwrap();
    let area = PixelBox::new(b.x, b.y, b.width, b.height);
    assert_identical_outside(&original, &out, area, 0);
    let face = first.regions[0].r#box.unwrap();
    let changed = (face.y..face.y + face.height)
        .flat_map(|y| (face.x..face.x + face.width).map(move |x| (x, y)))
        .filter(|&(x, y)| {
            let i = ((y * original.width() + x) * 3) as usize;
            original.as_raw()[i..i + 3] != out.as_raw()[i..i + 3]
        })
        .count();
    assert!(
        changed * 2 > (face.width * face.height) as usize,
        "only {changed} face pixels changed"
    );

    // Same request, same bytes; another seed, prompt or negative prompt,
    // other bytes.
    let again = run(&url, face_request(settings("closed eyes, smiling"), 1))
        .await
        .unwrap();
    assert_eq!(again.image, first.image);
    let other_seed = run(&url, face_request(settings("closed eyes, smiling"), 2))
        .await
        .unwrap();
    assert_ne!(other_seed.image, first.image);
    let other_prompt = run(&url, face_request(settings("a red apple"), 1))
        .await
        .unwrap();
    assert_ne!(other_prompt.image, first.image);
    let mut negative = settings("closed eyes, smiling");
    negative.negative_prompt = "sunglasses".into();
    let other_negative = run(&url, face_request(negative, 1)).await.unwrap();
    assert_ne!(other_negative.image, first.image);

    // The WebUI's prompt syntax: a weight of 1 is no weight, emphasis
    // changes the result, and a prompt past 75 tokens runs (two chunks)
    // and differs from its first 75 tokens alone.
    let plain = run(&url, face_request(settings("closed eyes, smiling"), 1))
        .await
        .unwrap();
    let unit = run(
        &url,
        face_request(settings("(closed eyes:1.0), smiling"), 1),
    )
    .await
    .unwrap();
    assert_eq!(unit.image, plain.image);
    let emphasis = run(&url, face_request(settings("((closed eyes)), smiling"), 1))
        .await
        .unwrap();
    assert_ne!(emphasis.image, plain.image);
    // ("a red house, " is 4 tokens: 25 of them are 100, 18 are 72.)
    let long = run(&url, face_request(settings(&"a red house, ".repeat(25)), 1))
        .await
        .unwrap();
    let cut = run(&url, face_request(settings(&"a red house, ".repeat(18)), 1))
        .await
        .unwrap();
    assert_ne!(long.image, cut.image);

    // Bad settings: the public field, and the service answers after.
    let cases: Vec<(&str, SdParams)> = vec![
        (
            "params.sd.sampler",
            SdParams {
                sampler: "Heun".into(),
                ..settings("x")
            },
        ),
        (
            "params.sd.schedule",
            SdParams {
                schedule: "exponential".into(),
                ..settings("x")
            },
        ),
        (
            "params.sd.steps",
            SdParams {
                steps: Some(0),
                ..settings("x")
            },
        ),
        (
            "params.sd.steps",
            SdParams {
                steps: Some(151),
                ..settings("x")
            },
        ),
        (
            "params.sd.cfg_scale",
            SdParams {
                cfg_scale: Some(f32::NAN),
                ..settings("x")
            },
        ),
        (
            "params.sd.cfg_scale",
            SdParams {
                cfg_scale: Some(-1.0),
                ..settings("x")
            },
        ),
        (
            "params.sd.denoising_strength",
            SdParams {
                denoising_strength: Some(f32::NAN),
                ..settings("x")
            },
        ),
        (
            "params.sd.denoising_strength",
            SdParams {
                denoising_strength: Some(1.5),
                ..settings("x")
            },
        ),
        ("params.sd.prompt", settings(&"word ".repeat(700))),
        (
            "params.sd.negative_prompt",
            SdParams {
                negative_prompt: "embedding:easynegative".into(),
                ..settings("x")
            },
        ),
        (
            "params.sd.negative_prompt",
            SdParams {
                negative_prompt: "x".repeat(5000),
                ..settings("x")
            },
        ),
    ];
    for (field, sd) in cases {
        let status = run(&url, face_request(sd, 1)).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert!(
            status.message().starts_with(field),
            "{field}: {}",
            status.message()
        );
    }
    let unknown = InpaintRequest {
        params: Some(InpaintParams {
            model: "nope".into(),
            ..face_request(settings("x"), 1).params.unwrap()
        }),
        ..face_request(settings("x"), 1)
    };
    assert_eq!(run(&url, unknown).await.unwrap_err().code(), Code::NotFound);
    let after = run(&url, face_request(settings("closed eyes, smiling"), 1))
        .await
        .unwrap();
    assert_eq!(after.image, first.image);
    cluster.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_sd_without_a_pipeline_is_a_failed_precondition() {
    let cluster = start_cluster(None).await;
    let status = run(&cluster.gateway_url(), face_request(settings("x"), 1))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(
        status.message().contains("kind = \"sd\""),
        "{}",
        status.message()
    );
    cluster.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_face_its_own_prompt() {
    use inpaint_proto::v1::RegionOverride;

    let cluster = sd_cluster().await;
    let url = cluster.gateway_url();
    // Four faces, four crops.
    let photo = four_astronauts();
    let request = |overrides: Vec<RegionOverride>| {
        let mut r = face_request(settings("closed eyes, smiling"), 7);
        r.image = photo.clone();
        r.params.as_mut().unwrap().region_overrides = overrides;
        r
    };
    let base = run(&url, request(vec![])).await.unwrap();
    assert_eq!(base.crops.len(), 4);
    let seeds: Vec<u64> = base
        .crops
        .iter()
        .map(|c| c.sd.as_ref().unwrap().seed)
        .collect();
    assert_eq!(
        seeds,
        [7, 8, 9, 10],
        "crops seeded as the WebUI seeds a batch"
    );
    let own = run(
        &url,
        request(vec![RegionOverride {
            region: 1,
            sd: Some(SdParams {
                prompt: "a red apple".into(),
                denoising_strength: Some(0.9),
                ..Default::default()
            }),
            ..Default::default()
        }]),
    )
    .await
    .unwrap();
    assert_eq!(
        own.crops[1].sd.as_ref().unwrap().steps_run,
        8,
        "int(0.9 * 8) + 1"
    );
    assert_eq!(own.crops[0].sd.as_ref().unwrap().steps_run, 7);
    let (a, b) = (decode_rgb(&base.image), decode_rgb(&own.image));
    for (i, crop) in base.crops.iter().enumerate() {
        let r = crop.r#box.unwrap();
        let changed = changed_in(&a, &b, PixelBox::new(r.x, r.y, r.width, r.height));
        if i == 1 {
            assert!(changed > 0, "face 1 kept the request's prompt");
        } else {
            assert_eq!(changed, 0, "face {i} changed with face 1's prompt");
        }
    }
    // A bad override names its field.
    let bad = run(
        &url,
        request(vec![RegionOverride {
            region: 0,
            sd: Some(SdParams {
                steps: Some(0),
                ..Default::default()
            }),
            ..Default::default()
        }]),
    )
    .await
    .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(
        bad.message()
            .starts_with("params.region_overrides[0].sd.steps"),
        "{}",
        bad.message()
    );
    cluster.shutdown().await.expect("clean shutdown");
}

/// Every event of a job until it ends; cancels it after `cancel_after`
/// sampling steps when asked.
async fn watch_job(
    url: &str,
    id: &str,
    cancel_after: Option<u32>,
) -> Vec<inpaint_proto::v1::JobEvent> {
    let mut c = inpaint_cli::client::connect(url).await.unwrap();
    let mut stream = c
        .watch_job(inpaint_proto::v1::WatchJobRequest {
            id: id.into(),
            after_sequence: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut events = vec![];
    let mut cancelled = false;
    while let Some(e) = stream.message().await.unwrap() {
        let sampled = e.stage == "sampling";
        events.push(e);
        let steps_seen = events.iter().filter(|e| e.stage == "sampling").count() as u32;
        if sampled && !cancelled && cancel_after.is_some_and(|n| steps_seen >= n) {
            cancelled = true;
            c.cancel_job(inpaint_proto::v1::CancelJobRequest { id: id.into() })
                .await
                .unwrap();
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_steps_are_job_events_and_a_cancel_stops_within_steps() {
    use inpaint_proto::v1::{JobState, SubmitJobRequest};

    let cluster = sd_cluster().await;
    let url = cluster.gateway_url();
    let c = inpaint_cli::client::connect(&url).await.unwrap();
    let mut long = settings("closed eyes, smiling");
    long.steps = Some(40);
    long.denoising_strength = Some(1.0);
    let submit = || {
        let request = face_request(long.clone(), 3);
        let mut c = c.clone();
        async move {
            c.submit_job(SubmitJobRequest {
                request: Some(request),
                idempotency_key: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .id
        }
    };
    let (kept, dropped) = (submit().await, submit().await);
    let (a, b) = tokio::join!(
        watch_job(&url, &kept, None),
        watch_job(&url, &dropped, Some(3))
    );

    // The finished job reported its 40 steps in order, then composited.
    let steps: Vec<(u32, u32)> = a
        .iter()
        .filter(|e| e.stage == "sampling")
        .map(|e| (e.step, e.steps))
        .collect();
    assert_eq!(steps, (1..=40).map(|k| (k, 40)).collect::<Vec<_>>());
    assert_eq!(a.last().unwrap().state(), JobState::Succeeded);

    // The cancelled one stopped while sampling: a few steps after the
    // cancel at most, never the rest of its 40, never compositing.
    let sampled = b.iter().filter(|e| e.stage == "sampling").count();
    println!("cancelled_job_steps={sampled} of 40");
    assert_eq!(b.last().unwrap().state(), JobState::Cancelled);
    assert!(sampled < 10, "{sampled} steps ran after a cancel at step 3");
    assert!(!b.iter().any(|e| e.stage == "compositing"));
    cluster.shutdown().await.expect("clean shutdown");
}
