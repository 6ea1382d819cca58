//! Every mask operator is reachable through the public API, the mask that
//! was used comes back when asked, and bad operations are INVALID_ARGUMENT
//! naming the operation's index and field.

mod support;

use inpaint_common::status::violated_field;
use inpaint_imaging::{PixelBox, mask};
use inpaint_proto::v1::{
    self as pb, InpaintArea, InpaintParams, InpaintRequest, MaskOp, inpaint_request::Target,
    mask_op::Op,
};
use support::*;
use tonic::Code;

fn op(op: Op) -> MaskOp {
    MaskOp { op: Some(op) }
}

fn two_boxes_png() -> Vec<u8> {
    let a = mask::from_box(512, 512, PixelBox::new(330, 20, 30, 24));
    let b = mask::from_box(512, 512, PixelBox::new(40, 300, 10, 10));
    let both = mask::union(&[&a, &b]).unwrap();
    png(image::DynamicImage::ImageLuma8(
        image::GrayImage::from_raw(512, 512, both.into_raw()).unwrap(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_through_the_public_api() {
    let cluster = start_cluster(None).await;
    let url = cluster.gateway_url();
    let photo = photo_bytes("astronaut.png");
    let original = decode_rgb(&photo);
    let upload = two_boxes_png();

    let ops = vec![
        op(Op::Threshold(pb::Threshold { level: 128 })),
        op(Op::Offset(pb::Offset { x: 5, y: 3 })),
        op(Op::KeepLargest(pb::KeepLargest { count: 1 })),
        op(Op::Grow(pb::Grow {
            pixels: 4,
            shape: pb::Shape::Square as i32,
        })),
        op(Op::FillHoles(pb::FillHoles {})),
        op(Op::AreaFilter(pb::AreaFilter {
            min_ratio: 0.001,
            max_ratio: 0.5,
        })),
        op(Op::Feather(pb::Feather {
            radius: 3,
            kind: pb::FeatherKind::Outward as i32,
            sigma: 0.0,
        })),
    ];
    let response = inpaint_cli::client::inpaint(
        &url,
        InpaintRequest {
            sketch: vec![],
            image: photo.clone(),
            target: Some(Target::Mask(upload.clone())),
            params: Some(InpaintParams {
                mask_ops: ops.clone(),
                area: InpaintArea::OnlyMasked as i32,
                return_mask: true,
                color_correction: true,
                seamless: true,
                ..Default::default()
            }),
        },
    )
    .await
    .expect("request with operators succeeds");

    // The mask that was used, against what the operations mean, worked out
    // by hand: the larger box (330,20 30x24) moved by (5, 3), grown by a
    // 4-pixel square: 331,19 38x32 fully set; the outward feather falls
    // from 255 to 0 over 3 pixels (Euclidean) outside it, never rising
    // with distance; nothing of the small box is left.
    let used = image::load_from_memory(&response.mask)
        .expect("mask PNG")
        .into_luma8();
    let grown = PixelBox::new(331, 19, 38, 32);
    let mut by_distance: Vec<(u64, u8)> = vec![];
    for y in 0..512u32 {
        for x in 0..512u32 {
            let v = used.get_pixel(x, y).0[0];
            let d2 = distance_sq_to_box(x, y, grown);
            match d2 {
                0 => assert_eq!(v, 255, "({x},{y}) inside the grown box"),
                d if d >= 9 => assert_eq!(v, 0, "({x},{y}) beyond the feather"),
                _ => {
                    assert!(v < 255, "({x},{y}) at distance^2 {d2} is still full");
                    by_distance.push((d2, v));
                }
            }
        }
    }
    by_distance.sort();
    assert!(
        by_distance
            .windows(2)
            .all(|w| w[0].0 == w[1].0 || w[0].1 >= w[1].1),
        "the feather rises with distance"
    );
    assert!(
        by_distance.iter().any(|&(d, v)| d == 1 && v > 0),
        "no feather at all"
    );
    let local = inpaint_imaging::GrayImage::from_raw(512, 512, used.into_raw()).unwrap();
    // Only the larger box survived keep_largest, moved by (5, 3) and grown.
    assert_eq!(
        mask::bounding_box(&local),
        Some(PixelBox::new(
            335 - 4 - 2,
            23 - 4 - 2,
            30 + 8 + 4,
            24 + 8 + 4
        ))
    );
    assert_eq!(response.crops.len(), 1);

    // Outside the used mask, the photo is byte-identical.
    let result = decode_rgb(&response.image);
    for i in 0..512 * 512 {
        if local.as_raw()[i] == 0 {
            assert_eq!(
                result.as_raw()[i * 3..i * 3 + 3],
                original.as_raw()[i * 3..i * 3 + 3]
            );
        }
    }
    cluster.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_operations_name_index_and_field() {
    let cluster = start_cluster(None).await;
    let url = cluster.gateway_url();
    let photo = photo_bytes("astronaut.png");
    let invert = || op(Op::Invert(pb::Invert {}));
    let cases: Vec<(Vec<MaskOp>, &str)> = vec![
        (vec![invert(), MaskOp { op: None }], "params.mask_ops[1]"),
        (vec![invert(); 33], "params.mask_ops"),
        (
            vec![
                invert(),
                op(Op::Grow(pb::Grow {
                    pixels: 9999,
                    shape: 0,
                })),
            ],
            "params.mask_ops[1].grow.pixels",
        ),
        (
            vec![op(Op::AreaFilter(pb::AreaFilter {
                min_ratio: 2.0,
                max_ratio: 0.0,
            }))],
            "params.mask_ops[0].area_filter.min_ratio",
        ),
        (
            vec![op(Op::Feather(pb::Feather {
                radius: 0,
                kind: pb::FeatherKind::Gaussian as i32,
                sigma: f32::NAN,
            }))],
            "params.mask_ops[0].feather.sigma",
        ),
        (
            vec![
                invert(),
                invert(),
                op(Op::Combine(pb::Combine { mode: 42 })),
            ],
            "params.mask_ops[2].combine.mode",
        ),
    ];
    for (ops, field) in cases {
        let status = inpaint_cli::client::inpaint(
            &url,
            InpaintRequest {
                sketch: vec![],
                image: photo.clone(),
                target: Some(Target::Mask(two_boxes_png())),
                params: Some(InpaintParams {
                    mask_ops: ops,
                    ..Default::default()
                }),
            },
        )
        .await
        .expect_err(field);
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert_eq!(
            violated_field(&status).as_deref(),
            Some(field),
            "{status:?}"
        );
        assert!(status.message().starts_with(field), "{}", status.message());
    }
    assert!(inpaint_cli::embedded::serving(cluster.mask).await);
    cluster.shutdown().await.expect("clean shutdown");
}
