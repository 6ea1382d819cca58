//! What the load benchmarks share: the astronaut photo and a hole at a
//! size, the Telea request, one job from submission to result.

use std::path::PathBuf;
use std::time::Instant;

use inpaint_imaging::PixelBox;
use inpaint_proto::v1::inpainting_client::InpaintingClient;
use inpaint_proto::v1::{
    GetResultRequest, InpaintArea, InpaintParams, InpaintRequest, JobState, SubmitJobRequest,
    WatchJobRequest, inpaint_request::Target,
};
use tonic::transport::Channel;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn png_rgb(img: &image::RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("png");
    out.into_inner()
}

/// The astronaut photo at `size` (upscaled for 1024) and a hole mask
/// covering 1/16 of its area over the backdrop and rocket.
pub fn inputs(size: u32) -> (Vec<u8>, Vec<u8>, PixelBox) {
    let photo = image::open(repo().join("models/cache/photos/astronaut.png"))
        .expect("run make models")
        .into_rgb8();
    let photo = image::imageops::resize(&photo, size, size, image::imageops::FilterType::Lanczos3);
    let hole = PixelBox::new(size * 5 / 8, size / 16, size / 4, size / 4);
    let mut m = image::GrayImage::new(size, size);
    for y in hole.y..hole.bottom() {
        for x in hole.x..hole.right() {
            m.put_pixel(x, y, image::Luma([255]));
        }
    }
    let mut mask_png = std::io::Cursor::new(Vec::new());
    m.write_to(&mut mask_png, image::ImageFormat::Png)
        .expect("png");
    (png_rgb(&photo), mask_png.into_inner(), hole)
}

pub fn request(image: &[u8], mask: &[u8]) -> InpaintRequest {
    InpaintRequest {
        image: image.to_vec(),
        target: Some(Target::Mask(mask.to_vec())),
        params: Some(InpaintParams {
            engine: "telea".into(),
            mask_blur: 4,
            area: InpaintArea::Whole as i32,
            ..Default::default()
        }),
        sketch: vec![],
    }
}

/// One job from submission to its result, in milliseconds.
/// With `key`, every call carries it (`authorization: Bearer`).
pub async fn one_job(
    mut client: InpaintingClient<Channel>,
    req: InpaintRequest,
    key: Option<&str>,
) -> f64 {
    let start = Instant::now();
    let job = client
        .submit_job(with_key(
            key,
            SubmitJobRequest {
                request: Some(req),
                idempotency_key: String::new(),
            },
        ))
        .await
        .expect("submit")
        .into_inner();
    let mut events = client
        .watch_job(with_key(
            key,
            WatchJobRequest {
                id: job.id.clone(),
                after_sequence: 0,
            },
        ))
        .await
        .expect("watch")
        .into_inner();
    let mut last = None;
    while let Some(e) = events.message().await.expect("events") {
        last = Some(e.state());
    }
    assert_eq!(last, Some(JobState::Succeeded));
    client
        .get_result(with_key(key, GetResultRequest { id: job.id }))
        .await
        .expect("result");
    start.elapsed().as_secs_f64() * 1e3
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// `message` as a call, carrying `key` when there is one.
pub fn with_key<T>(key: Option<&str>, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(key) = key {
        let value = format!("Bearer {key}").parse().expect("header value");
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// `jobs` jobs, `concurrency` at a time, spread over `clients` in turn
/// (each call carrying `key` when given): each one's milliseconds from
/// submission to result (sorted) and the seconds the whole batch took.
pub async fn run_jobs(
    clients: &[InpaintingClient<Channel>],
    (image, mask): (&[u8], &[u8]),
    key: Option<&str>,
    concurrency: usize,
    jobs: usize,
) -> (Vec<f64>, f64) {
    let start = Instant::now();
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..jobs {
        let (client, req, slots) = (
            clients[i % clients.len()].clone(),
            request(image, mask),
            slots.clone(),
        );
        let key = key.map(str::to_string);
        tasks.spawn(async move {
            let _slot = slots.acquire_owned().await;
            one_job(client, req, key.as_deref()).await
        });
    }
    let mut latencies = Vec::with_capacity(jobs);
    while let Some(ms) = tasks.join_next().await {
        latencies.push(ms.expect("job"));
    }
    latencies.sort_by(f64::total_cmp);
    (latencies, start.elapsed().as_secs_f64())
}
