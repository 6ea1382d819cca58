//! The page the gateway serves on its web port, driven in Debian's headless
//! Chromium: a person opens a photo, paints a stroke, repaints it as a job,
//! downloads the result (which must be byte for byte what the Rust client
//! gets for the same request), selects an object by clicking it, and sees a
//! refused setting explained beside its field. Screenshots of each state go
//! to out/web-test/.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use inpaint_proto::v1::inpaint_request::Target;
use inpaint_proto::v1::inpainting_client::InpaintingClient;
use inpaint_proto::v1::{
    DetectTarget, GetCapabilitiesRequest, InpaintParams, InpaintRequest, SdParams,
};
use serde_json::json;
use support::webdriver::Browser;

/// The astronaut photo's side, in pixels.
const SIDE: f64 = 512.0;

/// A cluster with its web port on (and the tiny SD pipeline when `sd`),
/// the photo the tests open, and where screenshots go.
struct Page {
    cluster: inpaint_cli::embedded::Cluster,
    web: SocketAddr,
    photo: PathBuf,
    shots: PathBuf,
}

impl Page {
    async fn start(sd: bool) -> Page {
        let mut config = support::cluster_config();
        config.web = Some("127.0.0.1:0".parse().unwrap());
        if sd {
            config.sd_models = vec![support::repo_root().join("models/fixtures/tiny-sd/inpaint")];
        }
        let cluster = support::start_cluster_with(config).await;
        let web = cluster.web.expect("the web port is on");
        // Chromium uploads only from canonical paths.
        let photo = support::fetched("photos/astronaut.png")
            .canonicalize()
            .unwrap();
        let shots = support::repo_root().join("out/web-test");
        std::fs::create_dir_all(&shots).unwrap();
        Page {
            cluster,
            web,
            photo,
            shots,
        }
    }
}

/// What the browser downloaded.
struct Downloads {
    mask: Vec<u8>,
    result: Vec<u8>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_repaints_a_photo_in_the_browser() {
    let Page {
        cluster,
        web,
        photo,
        shots,
    } = Page::start(false).await;
    let downloads = download_folder("brush");

    let browsed = {
        let (photo, downloads) = (photo.clone(), downloads.clone());
        tokio::task::spawn_blocking(move || browse(web, &photo, &downloads, &shots))
            .await
            .expect("the browser session ran")
    };
    let _ = std::fs::remove_dir_all(&downloads);

    // The same request through the Rust client, with the settings the page
    // sent (its defaults: mask blur 4, the gateway's default engine).
    let mut client = InpaintingClient::connect(cluster.gateway_url())
        .await
        .unwrap()
        .max_decoding_message_size(64 << 20);
    let engine = client
        .get_capabilities(GetCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner()
        .default_engine;
    let direct = client
        .inpaint(InpaintRequest {
            image: std::fs::read(&photo).unwrap(),
            target: Some(Target::Mask(browsed.mask.clone())),
            params: Some(InpaintParams {
                mask_blur: 4,
                engine,
                ..Default::default()
            }),
            sketch: vec![],
        })
        .await
        .expect("the Rust client's request")
        .into_inner();
    assert!(!direct.unchanged, "the painted mask repaints something");
    assert!(
        direct.image == browsed.result,
        "the page's download ({} bytes) differs from the Rust client's result ({} bytes)",
        browsed.result.len(),
        direct.image.len()
    );
    cluster.shutdown().await.unwrap();
}

/// The whole session in the browser; answers what it downloaded.
fn browse(web: SocketAddr, photo: &Path, downloads: &Path, shots: &Path) -> Downloads {
    let b = Browser::start(1280, 800, downloads);
    b.open(&format!("http://{web}/"));
    b.wait_text("#server", Duration::from_secs(20), |t| {
        t.contains("engines")
    });
    b.type_into(&b.find("#photo-file"), &photo.display().to_string());
    b.wait_text("#status", Duration::from_secs(20), |t| {
        t.contains("512×512")
    });

    // A stroke across the left of the photo, image pixels (60, 180) to
    // (160, 200), in the viewport's CSS pixels: the photo is shown scaled
    // to its column, and scrolled to the middle of the window.
    let shown = b.script(
        "const r = document.getElementById('overlay-canvas');\
         r.scrollIntoView({block: 'center'});\
         const b = r.getBoundingClientRect(); return [b.left, b.top, b.width];",
        json!([]),
    );
    let number = |i: usize| shown[i].as_f64().expect("the canvas's place");
    let (left, top, scale) = (number(0), number(1), number(2) / SIDE);
    let on_screen = |(x, y): (f64, f64)| ((left + x * scale) as i32, (top + y * scale) as i32);
    let stroke: Vec<(i32, i32)> = [(60.0, 180.0), (110.0, 190.0), (160.0, 200.0)]
        .into_iter()
        .map(on_screen)
        .collect();
    b.drag(&stroke);
    b.screenshot(&shots.join("1-brush.png"));

    b.click(&b.find("#submit"));
    let status = b.wait_text("#status", Duration::from_secs(120), |t| {
        t == "done" || t.starts_with("failed") || t == "refused"
    });
    assert_eq!(status, "done", "error: {}", b.text("#err-general"));
    let progress = b.script(
        "return document.getElementById('progress').value",
        json!([]),
    );
    assert_eq!(progress.as_f64(), Some(100.0));
    b.script(
        "const s = document.getElementById('compare-slider'); s.value = 20; s.dispatchEvent(new Event('input'));",
        json!([]),
    );
    b.screenshot(&shots.join("2-result.png"));
    b.click(&b.find("#download-result"));
    b.click(&b.find("#download-mask"));
    let result = downloaded(&downloads.join("astronaut-inpainted.png"));
    let mask = downloaded(&downloads.join("astronaut-mask.png"));

    // The mask is white along the stroke and black away from it.
    let grey = support::decode_gray(&mask);
    let at = |(x, y): (f64, f64)| grey.as_raw()[y as usize * grey.width() as usize + x as usize];
    assert_eq!((grey.width(), grey.height()), (512, 512));
    assert_eq!(at((110.0, 190.0)), 255, "on the stroke");
    assert_eq!(at((400.0, 60.0)), 0, "away from the stroke");

    // Click on the astronaut's face and look at the selection first.
    b.click(&b.find("#back-to-edit"));
    b.click(&b.find("#mode-points"));
    b.script(
        "document.getElementById('overlay-canvas').scrollIntoView({block: 'center'})",
        json!([]),
    );
    b.drag(&[on_screen((230.0, 130.0))]);
    b.wait_text("#preview-status", Duration::from_secs(5), |t| {
        t == "1 point"
    });
    b.click(&b.find("#preview"));
    let selected = b.wait_text("#preview-status", Duration::from_secs(60), |t| {
        t.contains("selected") || t.contains("nothing") || !b.text("#err-points").is_empty()
    });
    assert_eq!(selected, "1 region selected");
    b.screenshot(&shots.join("3-points.png"));

    // A setting the server refuses, explained beside its field.
    b.click(&b.find("#mode-brush"));
    let grow = b.find("#grow");
    b.clear(&grow);
    b.type_into(&grow, "100000");
    b.click(&b.find("#submit"));
    let error = b.wait_text("#err-grow", Duration::from_secs(60), |t| !t.is_empty());
    assert!(error.starts_with("params.grow: "), "{error}");
    assert_eq!(b.text("#err-general"), "");
    b.screenshot(&shots.join("4-error.png"));

    // A phone-sized window: the page fits its width.
    b.set_window(390, 844);
    let fits = b.script(
        "return document.documentElement.scrollWidth <= window.innerWidth",
        json!([]),
    );
    assert_eq!(fits, json!(true), "the page is wider than a phone");
    b.screenshot(&shots.join("5-phone.png"));
    Downloads { mask, result }
}

/// Opens the page, waits for the gateway's capabilities, and loads `photo`.
fn open_photo(b: &Browser, web: SocketAddr, photo: &Path) {
    b.open(&format!("http://{web}/"));
    b.wait_text("#server", Duration::from_secs(20), |t| {
        t.contains("engines")
    });
    b.type_into(&b.find("#photo-file"), &photo.display().to_string());
    b.wait_text("#status", Duration::from_secs(20), |t| {
        t.contains("512×512")
    });
}

/// A fresh folder for downloads.
fn download_folder(tag: &str) -> PathBuf {
    let folder = std::env::temp_dir().join(format!("inpaint-web-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).unwrap();
    folder
}

/// The bytes of a finished download.
fn downloaded(path: &Path) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let partial = PathBuf::from(format!("{}.crdownload", path.display()));
    loop {
        if path.is_file() && !partial.exists() {
            return std::fs::read(path).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "{} was not downloaded",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The settings a WebUI user sets for a face: engine "sd" with the tiny
/// random-weight pipeline (models/fixtures/tiny-sd), its prompt and
/// sampler, the face found by a phrase. Each sampling step shows on the
/// progress line, and the result is byte for byte the Rust client's for
/// the same request (same seed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_face_repainted_with_a_prompt_in_the_browser() {
    let Page {
        cluster,
        web,
        photo,
        shots,
    } = Page::start(true).await;
    let downloads = download_folder("sd");
    let (result, statuses) = {
        let (photo, downloads) = (photo.clone(), downloads.clone());
        tokio::task::spawn_blocking(move || {
            let b = Browser::start(1280, 800, &downloads);
            open_photo(&b, web, &photo);
            b.click(&b.find("#mode-phrase"));
            b.click(&b.find("#engine option[value='sd']"));
            let shown = b.script(
                "return [document.getElementById('sd-settings').hidden, document.getElementById('model').value]",
                json!([]),
            );
            assert_eq!(shown, json!([false, "inpaint"]), "SD settings and the model");
            for (field, value) in [
                ("#sd-prompt", "closed eyes, smiling"),
                ("#sd-steps", "8"),
                ("#work-width", "64"),
                ("#work-height", "64"),
                ("#seed", "1"),
            ] {
                let element = b.find(field);
                b.clear(&element);
                b.type_into(&element, value);
            }
            b.click(&b.find("#sd-sampler option[value='Euler a']"));
            // Every line the progress shows, as it changes.
            b.script(
                "const s = document.getElementById('status'); window.seen = [];\
                 new MutationObserver(() => window.seen.push(s.textContent))\
                   .observe(s, {childList: true, characterData: true, subtree: true});",
                json!([]),
            );
            b.click(&b.find("#submit"));
            let status = b.wait_text("#status", Duration::from_secs(180), |t| {
                t == "done" || t.starts_with("failed") || t == "refused"
            });
            assert_eq!(status, "done", "error: {}", b.text("#err-general"));
            b.script("window.scrollTo(0, 0)", json!([]));
            b.screenshot(&shots.join("6-sd.png"));
            let seen = b.script("return window.seen", json!([]));
            b.click(&b.find("#download-result"));
            (downloaded(&downloads.join("astronaut-inpainted.png")), seen)
        })
        .await
        .expect("the browser session ran")
    };
    let _ = std::fs::remove_dir_all(&downloads);
    let steps: Vec<&str> = statuses
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s.as_str())
        .filter(|s| s.starts_with("sampling region 1 of 1: step "))
        .collect();
    assert!(!steps.is_empty(), "no sampling step shown: {statuses}");

    let direct = inpaint_cli::client::inpaint(
        &cluster.gateway_url(),
        InpaintRequest {
            image: std::fs::read(&photo).unwrap(),
            target: Some(Target::Detect(DetectTarget {
                prompt: "faces".into(),
                ..Default::default()
            })),
            params: Some(InpaintParams {
                mask_blur: 4,
                work_width: 64,
                work_height: 64,
                engine: "sd".into(),
                model: "inpaint".into(),
                seed: 1,
                sd: Some(SdParams {
                    prompt: "closed eyes, smiling".into(),
                    steps: Some(8),
                    cfg_scale: Some(7.0),
                    sampler: "Euler a".into(),
                    denoising_strength: Some(0.75),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            sketch: vec![],
        },
    )
    .await
    .expect("the Rust client's request");
    assert_eq!(direct.engine, "sd");
    assert!(
        direct.image == result,
        "the page's SD result differs from the Rust client's"
    );
    cluster.shutdown().await.unwrap();
}

/// A long job (engine "sd", 150 steps at 128 px on the tiny pipeline, whose
/// attention runs at full resolution) is cancelled from the page while it
/// samples: the progress line says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_job_is_cancelled_from_the_page() {
    let Page {
        cluster,
        web,
        photo,
        shots,
    } = Page::start(true).await;
    let downloads = download_folder("cancel");
    {
        let downloads = downloads.clone();
        tokio::task::spawn_blocking(move || {
            let b = Browser::start(1280, 800, &downloads);
            open_photo(&b, web, &photo);
            b.click(&b.find("#mode-phrase"));
            b.click(&b.find("#engine option[value='sd']"));
            for (field, value) in [
                ("#sd-steps", "150"),
                ("#work-width", "128"),
                ("#work-height", "128"),
            ] {
                let element = b.find(field);
                b.clear(&element);
                b.type_into(&element, value);
            }
            b.click(&b.find("#submit"));
            b.wait_text("#status", Duration::from_secs(120), |t| {
                t.starts_with("sampling region 1 of 1: step ")
            });
            b.click(&b.find("#cancel"));
            let status = b.wait_text("#status", Duration::from_secs(60), |t| {
                t == "cancelled" || t == "done" || t.starts_with("failed")
            });
            assert_eq!(status, "cancelled");
            b.screenshot(&shots.join("7-cancelled.png"));
        })
        .await
        .expect("the browser session ran");
    }
    let _ = std::fs::remove_dir_all(&downloads);
    cluster.shutdown().await.unwrap();
}

// Multi-threaded: the raw HTTP exchanges block their thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_answers_only_the_origins_allowed() {
    let mut config = support::cluster_config();
    config.web = Some("127.0.0.1:0".parse().unwrap());
    config.web_allow_origins = vec!["https://tools.example.com".into()];
    let cluster = support::start_cluster_with(config).await;
    let web = cluster.web.unwrap();
    let preflight = |origin: &str| {
        http(
            web,
            &format!(
                "OPTIONS /inpaint.v1.Inpainting/GetCapabilities HTTP/1.1\r\nHost: {web}\r\nOrigin: {origin}\r\n\
                 Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type,x-grpc-web\r\n\
                 \r\n"
            ),
        )
    };
    let allowed = preflight("https://tools.example.com").to_ascii_lowercase();
    assert!(
        allowed.contains("access-control-allow-origin: https://tools.example.com"),
        "{allowed}"
    );
    assert!(allowed.contains("x-grpc-web"), "{allowed}");
    let other = preflight("https://evil.example.com").to_ascii_lowercase();
    assert!(!other.contains("access-control-allow-origin"), "{other}");

    // A gRPC-Web call (an empty GetCapabilitiesRequest: one frame, flag 0,
    // length 0) is answered with grpc-status 0 in the trailer frame.
    let call = http(
        web,
        &format!(
            "POST /inpaint.v1.Inpainting/GetCapabilities HTTP/1.1\r\nHost: {web}\r\n\
             Content-Type: application/grpc-web+proto\r\nX-Grpc-Web: 1\r\nContent-Length: 5\r\n\
             \r\n\0\0\0\0\0"
        ),
    );
    assert!(call.starts_with("HTTP/1.1 200"), "{call}");
    assert!(call.contains("grpc-status:0"), "{call}");
    assert!(call.contains("telea"), "{call}");
    // The page itself, with its content policy.
    let page = http(web, &format!("GET / HTTP/1.1\r\nHost: {web}\r\n\r\n"));
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(
        page.to_ascii_lowercase()
            .contains("content-security-policy: default-src 'none'")
    );
    cluster.shutdown().await.unwrap();
}

/// One raw HTTP/1.1 exchange: the head and the body as text (binary
/// bytes lossy).
fn http(addr: SocketAddr, request: &str) -> String {
    let (head, body) = support::webdriver::exchange(addr, request.as_bytes()).unwrap();
    format!("{head}\r\n\r\n{}", String::from_utf8_lossy(&body))
}
