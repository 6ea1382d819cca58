//! The four services on port 0 over real sockets, driven through the public
//! Inpaint call with real photos and the real face model.

mod support;

use inpaint_imaging::metrics::psnr_in_mask;
use inpaint_imaging::{PixelBox, mask};
use inpaint_proto::v1::{
    FaceTarget, InpaintArea, InpaintParams, InpaintRequest, inpaint_request::Target,
};
use support::*;

/// A 24x24 patch of the astronaut photo's plain studio backdrop (left of the
/// rocket): smooth, so a good fill is measurably close to what was there.
const SMOOTH_HOLE: PixelBox = PixelBox {
    x: 330,
    y: 20,
    width: 24,
    height: 24,
};

/// Known face box on the astronaut photo (from MODELS.md: YuNet 2023mar on
/// scikit-image's astronaut, score 0.93).
const ASTRONAUT_FACE: PixelBox = PixelBox {
    x: 178,
    y: 63,
    width: 90,
    height: 113,
};

/// The hole's pixels are wrecked before sending (an engine that returns its
/// input fails), and the fill must beat, in PSNR against the undamaged
/// photo, a flat fill with the mean colour of the 4 pixels around the hole
/// (37.0 dB here, measured by the test itself): Telea reaches about 38 dB.
const RING_MEAN_MARGIN_DB: f64 = 0.3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploaded_mask_and_faces_through_all_services() {
    let cluster = start_cluster(None).await;
    let url = cluster.gateway_url();
    let photo = photo_bytes("astronaut.png");
    let original = decode_rgb(&photo);
    let (w, h) = (original.width(), original.height());
    let damaged = damaged_png(&photo, SMOOTH_HOLE);
    let wrecked = decode_rgb(&damaged);
    // (a) An uploaded mask over a smooth area, whole-picture mode. No seam
    // here: with a 4-pixel feathered seam Telea repaints 32x32 and scores
    // 31.3 dB in the inner 24x24, below the 36.6 dB of a flat ring-mean fill
    // (Telea's large-hole debt, tracked with the performance issue); seams
    // are covered by the faces below and tests/seam.rs.
    let blur = 0;
    let floor = ring_mean_fill_psnr(&original, SMOOTH_HOLE, 4) + RING_MEAN_MARGIN_DB;
    let response = inpaint_cli::client::inpaint(
        &url,
        InpaintRequest {
            sketch: vec![],
            image: damaged.clone(),
            target: Some(Target::Mask(box_mask_png(w, h, SMOOTH_HOLE))),
            params: Some(InpaintParams {
                mask_blur: blur,
                area: InpaintArea::Whole as i32,
                ..Default::default()
            }),
        },
    )
    .await
    .expect("mask request succeeds");
    assert!(!response.unchanged);
    assert_eq!(response.mime_type, "image/png");
    let result = decode_rgb(&response.image);
    assert_eq!((result.width(), result.height()), (w, h));
    assert_eq!((response.width, response.height), (w, h));
    assert_identical_outside(&original, &result, SMOOTH_HOLE, blur);
    let area = SMOOTH_HOLE.width * SMOOTH_HOLE.height;
    assert_eq!(changed_in(&wrecked, &result, SMOOTH_HOLE) as u32, area);
    let hole = mask::from_box(w, h, SMOOTH_HOLE);
    let psnr = psnr_in_mask(&original, &result, &hole).unwrap();
    assert!(
        psnr > floor,
        "PSNR in the hole {psnr:.2} dB, floor {floor:.2}"
    );
    let stages: Vec<&str> = response.timings.iter().map(|t| t.stage.as_str()).collect();
    assert_eq!(
        stages,
        [
            "decode",
            "segment",
            "prepare",
            "inpaint",
            "composite",
            "encode"
        ]
    );
    assert_eq!(response.engine, "telea");

    // The same mask in only-masked mode: a crop around the hole at 512x512.
    let response = inpaint_cli::client::inpaint(
        &url,
        InpaintRequest {
            sketch: vec![],
            image: damaged.clone(),
            target: Some(Target::Mask(box_mask_png(w, h, SMOOTH_HOLE))),
            params: Some(InpaintParams {
                mask_blur: blur,
                area: InpaintArea::OnlyMasked as i32,
                padding: Some(16),
                // Telea through an 8x upscaled crop scores 33.3 dB here, below
                // the flat ring-mean fill (37.0): its large-hole debt,
                // tracked with the performance issue. The push-pull model
                // shows what the only-masked path itself preserves.
                engine: "onnx".into(),
                ..Default::default()
            }),
        },
    )
    .await
    .expect("only-masked request succeeds");
    let crop = response.crops[0].r#box.unwrap();
    assert_eq!(response.crops.len(), 1);
    assert_eq!(
        (response.crops[0].work_width, response.crops[0].work_height),
        (512, 512)
    );
    assert!(crop.x <= SMOOTH_HOLE.x && crop.x + crop.width >= SMOOTH_HOLE.right());
    let result = decode_rgb(&response.image);
    assert_identical_outside(&original, &result, SMOOTH_HOLE, blur);
    assert_eq!(changed_in(&wrecked, &result, SMOOTH_HOLE) as u32, area);
    let psnr = psnr_in_mask(&original, &result, &hole).unwrap();
    println!("whole and only-masked fills beat the ring-mean floor {floor:.2} dB: {psnr:.2}");
    assert!(
        psnr > floor,
        "only-masked PSNR in the hole {psnr:.2} dB, floor {floor:.2}"
    );

    // (b) Every face.
    let response = inpaint_cli::client::inpaint(
        &url,
        InpaintRequest {
            sketch: vec![],
            image: photo.clone(),
            target: Some(Target::Faces(FaceTarget::default())),
            params: Some(InpaintParams {
                mask_blur: 4,
                ..Default::default()
            }),
        },
    )
    .await
    .expect("faces request succeeds");
    assert_eq!(response.regions.len(), 1, "one face on the astronaut photo");
    let face = &response.regions[0];
    assert_eq!(face.label, "face");
    let b = face.r#box.unwrap();
    let found = PixelBox::new(b.x, b.y, b.width, b.height);
    let iou = found.iou(&ASTRONAUT_FACE);
    assert!(
        iou > 0.7,
        "face box {found:?} IoU {iou:.3} with the known box"
    );
    assert!(face.score > 0.8, "score {}", face.score);
    let result = decode_rgb(&response.image);
    assert_eq!((result.width(), result.height()), (w, h));
    assert_identical_outside(&original, &result, found, 4);
    let face_mask = mask::from_box(w, h, found);
    let changed = psnr_in_mask(&original, &result, &face_mask).unwrap();
    assert!(
        changed < 25.0,
        "the face was repainted (PSNR vs original {changed:.1} dB)"
    );

    cluster.shutdown().await.expect("clean shutdown");
}
