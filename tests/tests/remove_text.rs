//! "Remove all text" through the public API: the text is gone, everything
//! outside the used mask is byte-identical; per-region overrides and the
//! merged alternative; bad detection requests are clear errors.

mod support;

use inpaint_common::status::violated_field;
use inpaint_proto::v1::{
    DetectTarget, InpaintParams, InpaintRequest, InpaintResponse, Point, PromptTarget, RegionMode,
    RegionOverride, inpaint_request::Target,
};
use support::*;
use tonic::Code;

fn detect(prompt: &str) -> Target {
    Target::Detect(DetectTarget {
        prompt: prompt.into(),
        ..Default::default()
    })
}

fn request(image: &image::RgbImage, target: Target, params: InpaintParams) -> InpaintRequest {
    InpaintRequest {
        image: png(image::DynamicImage::ImageRgb8(image.clone())),
        target: Some(target),
        params: Some(params),
        sketch: vec![],
    }
}

fn decode(response: &InpaintResponse) -> (image::RgbImage, image::GrayImage) {
    let result = image::load_from_memory(&response.image)
        .unwrap()
        .into_rgb8();
    let mask = image::load_from_memory(&response.mask)
        .unwrap()
        .into_luma8();
    (result, mask)
}

/// Mean absolute channel difference over `pixels`.
fn mean_diff(a: &image::RgbImage, b: &image::RgbImage, pixels: &[(u32, u32)]) -> f64 {
    let total: u64 = pixels
        .iter()
        .map(|&(x, y)| {
            let (p, q) = (a.get_pixel(x, y).0, b.get_pixel(x, y).0);
            (0..3).map(|c| p[c].abs_diff(q[c]) as u64).sum::<u64>()
        })
        .sum();
    total as f64 / (pixels.len() * 3) as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_all_text_leaves_the_rest_byte_identical() {
    let cluster = start_cluster(None).await;
    let url = cluster.gateway_url();
    let (clean, lettered, inked) = lettering::lettered_coffee();
    let params = InpaintParams {
        return_mask: true,
        ..Default::default()
    };
    let response =
        inpaint_cli::client::inpaint(&url, request(&lettered, detect("all text"), params.clone()))
            .await
            .expect("inpaint");
    let (result, used) = decode(&response);
    // Each line repainted on its own crop.
    assert!(response.regions.len() >= 2, "{:?}", response.regions);
    assert_eq!(response.crops.len(), response.regions.len());
    assert!(response.regions.iter().all(|r| r.label == "text"));
    // Outside the used mask nothing moved.
    for (x, y, m) in used.enumerate_pixels() {
        if m.0[0] == 0 {
            assert_eq!(
                result.get_pixel(x, y),
                lettered.get_pixel(x, y),
                "({x},{y})"
            );
        }
    }
    // Every text pixel was repainted, and now looks like the clean photo.
    assert!(inked.iter().all(|&(x, y)| used.get_pixel(x, y).0[0] > 0));
    let before = mean_diff(&lettered, &clean, &inked);
    let after = mean_diff(&result, &clean, &inked);
    assert!(
        after < 35.0 && after * 3.0 < before,
        "text pixels vs clean photo: {before:.1} before, {after:.1} after"
    );

    // Overrides: region 0 kept as it was (strength 0), the others
    // repainted; the merged alternative makes one crop.
    let kept_first = InpaintParams {
        region_overrides: vec![RegionOverride {
            region: 0,
            strength: Some(0.0),
            ..Default::default()
        }],
        ..params.clone()
    };
    let response =
        inpaint_cli::client::inpaint(&url, request(&lettered, detect("text"), kept_first))
            .await
            .expect("inpaint with overrides");
    let (result, _) = decode(&response);
    // Text pixels of region 0 that no other region's box reaches.
    let boxes: Vec<_> = response.regions.iter().map(|r| r.r#box.unwrap()).collect();
    let inside = |b: &inpaint_proto::v1::Box, (x, y): (u32, u32)| {
        x >= b.x && x < b.x + b.width && y >= b.y && y < b.y + b.height
    };
    let only_first: Vec<(u32, u32)> = inked
        .iter()
        .copied()
        .filter(|&p| inside(&boxes[0], p) && !boxes[1..].iter().any(|b| inside(b, p)))
        .collect();
    // ...and those of the last line, away from region 0 (whose kept text
    // borders region 1 and colours its fill).
    let last = boxes.last().unwrap();
    let elsewhere: Vec<(u32, u32)> = inked
        .iter()
        .copied()
        .filter(|&p| inside(last, p) && !inside(&boxes[0], p))
        .collect();
    assert!(!only_first.is_empty() && !elsewhere.is_empty());
    // Strength 0 keeps the text: near the lettered photo (only resampled
    // through the working size), far from the clean one.
    let (kept, gone) = (
        mean_diff(&result, &lettered, &only_first),
        mean_diff(&result, &clean, &only_first),
    );
    assert!(
        kept * 4.0 < gone,
        "region 0: {kept:.1} from lettered, {gone:.1} from clean"
    );
    assert!(
        mean_diff(&result, &clean, &elsewhere) < 35.0,
        "other regions repainted"
    );

    // Engine and grow for the last line only: its text pixels change (a
    // different engine), its used mask grows, the first line stays as the
    // plain request left it.
    let plain =
        inpaint_cli::client::inpaint(&url, request(&lettered, detect("text"), params.clone()))
            .await
            .expect("plain");
    let last_index = plain.regions.len() as u32 - 1;
    let own = InpaintParams {
        region_overrides: vec![RegionOverride {
            region: last_index,
            engine: Some("patchmatch".into()),
            seed: Some(7),
            grow: Some(6),
            ..Default::default()
        }],
        ..params.clone()
    };
    let tuned = inpaint_cli::client::inpaint(&url, request(&lettered, detect("text"), own))
        .await
        .expect("override engine and grow");
    let ((plain_image, plain_mask), (tuned_image, tuned_mask)) = (decode(&plain), decode(&tuned));
    let last_box = plain.regions.last().unwrap().r#box.unwrap();
    let in_last: Vec<(u32, u32)> = inked
        .iter()
        .copied()
        .filter(|&p| inside(&last_box, p))
        .collect();
    assert!(
        mean_diff(&plain_image, &tuned_image, &in_last) > 1.0,
        "last line repainted by patchmatch"
    );
    assert_eq!(
        mean_diff(&plain_image, &tuned_image, &only_first),
        0.0,
        "first line untouched"
    );
    let area = |m: &image::GrayImage| m.pixels().filter(|p| p.0[0] > 0).count();
    assert!(
        area(&tuned_mask) > area(&plain_mask),
        "the last region's mask grew"
    );

    let merged = InpaintParams {
        region_mode: RegionMode::Merged as i32,
        ..params
    };
    let response = inpaint_cli::client::inpaint(&url, request(&lettered, detect("text"), merged))
        .await
        .expect("inpaint merged");
    assert_eq!(response.crops.len(), 1);
    cluster.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_detection_requests_are_clear_errors() {
    let cluster = start_cluster(None).await;
    let url = cluster.gateway_url();
    let (_, lettered, _) = lettering::lettered_coffee();
    let merged_with_override = InpaintParams {
        region_mode: RegionMode::Merged as i32,
        region_overrides: vec![RegionOverride::default()],
        ..Default::default()
    };
    let unknown_engine = InpaintParams {
        region_overrides: vec![RegionOverride {
            engine: Some("dall-e".into()),
            ..Default::default()
        }],
        ..Default::default()
    };
    let outside = Target::Prompt(PromptTarget {
        points: vec![Point {
            x: 10.0,
            y: 400.0,
            background: false,
        }],
        r#box: None,
    });
    let cases = [
        (
            detect("unicorns and dragons"),
            InpaintParams::default(),
            Code::InvalidArgument,
            Some("target.detect.prompt"),
            "watermark",
        ),
        (
            detect("the feet"),
            InpaintParams::default(),
            Code::InvalidArgument,
            Some("target.detect.prompt"),
            "hands",
        ),
        (
            detect("subject"),
            InpaintParams::default(),
            Code::FailedPrecondition,
            None,
            "AGPL",
        ),
        (
            outside,
            InpaintParams::default(),
            Code::InvalidArgument,
            Some("target.prompt.points[0]"),
            "outside",
        ),
        (
            detect("text"),
            merged_with_override,
            Code::InvalidArgument,
            Some("params.region_overrides"),
            "MERGED",
        ),
        (
            detect("text"),
            unknown_engine,
            Code::InvalidArgument,
            Some("params.region_overrides[0].engine"),
            "dall-e",
        ),
    ];
    for (target, params, code, field, needle) in cases {
        let err = inpaint_cli::client::inpaint(&url, request(&lettered, target, params))
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{needle}: {err:?}");
        assert_eq!(violated_field(&err).as_deref(), field, "{err:?}");
        assert!(
            err.message().contains(needle),
            "{needle}: {}",
            err.message()
        );
    }
    cluster.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrides_apply_to_an_uploaded_mask_as_region_zero() {
    let cluster = start_cluster(None).await;
    let url = cluster.gateway_url();
    let (_, lettered, _) = lettering::lettered_coffee();
    let mask = box_mask_png(
        lettered.width(),
        lettered.height(),
        inpaint_imaging::PixelBox::new(30, 10, 280, 50),
    );
    let upload = |params| InpaintRequest {
        image: png(image::DynamicImage::ImageRgb8(lettered.clone())),
        target: Some(Target::Mask(mask.clone())),
        params: Some(params),
        sketch: vec![],
    };
    let kept = InpaintParams {
        region_overrides: vec![
            RegionOverride {
                region: 0,
                strength: Some(0.0),
                ..Default::default()
            },
            RegionOverride {
                region: 3,
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let response = inpaint_cli::client::inpaint(&url, upload(kept))
        .await
        .unwrap();
    // WHOLE area, strength 0: nothing moves, and the unknown region is a note.
    let result = image::load_from_memory(&response.image)
        .unwrap()
        .into_rgb8();
    assert_eq!(result, lettered);
    assert!(
        response
            .notes
            .iter()
            .any(|n| n.contains("region 3 not found")),
        "{:?}",
        response.notes
    );
    let repainted = inpaint_cli::client::inpaint(&url, upload(InpaintParams::default()))
        .await
        .unwrap();
    let result = image::load_from_memory(&repainted.image)
        .unwrap()
        .into_rgb8();
    assert_ne!(result, lettered);
    cluster.shutdown().await.unwrap();
}
