//! Bad requests get INVALID_ARGUMENT naming the field, and the cluster stays
//! healthy and useful afterwards.

mod support;

use inpaint_common::status::violated_field;
use inpaint_imaging::PixelBox;
use inpaint_proto::v1::{InpaintParams, InpaintRequest, inpaint_request::Target};
use support::*;
use tonic::Code;

fn request(image: Vec<u8>, target: Option<Target>, params: InpaintParams) -> InpaintRequest {
    InpaintRequest {
        sketch: vec![],
        image,
        target,
        params: Some(params),
    }
}

/// A PNG whose IHDR declares `width` x `height` followed by an empty IDAT:
/// the header is valid, the pixels never come.
fn header_only_png(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, no interlace
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(b"IHDR", ihdr), (b"IDAT", vec![]), (b"IEND", vec![])] {
        let mut body = kind.to_vec();
        body.extend_from_slice(&data);
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        png.extend_from_slice(&body);
        png.extend_from_slice(&crc32(&body).to_be_bytes());
    }
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_invalid_argument_naming_the_field() {
    let cluster = start_cluster(None).await;
    let url = cluster.gateway_url();
    let photo = photo_bytes("astronaut.png");
    let (w, h) = (512, 512);
    let good_mask = || {
        Some(Target::Mask(box_mask_png(
            w,
            h,
            PixelBox::new(330, 20, 24, 24),
        )))
    };
    let truncated = photo[..photo.len() / 3].to_vec();
    let other_aspect = box_mask_png(300, 200, PixelBox::new(10, 10, 5, 5));

    let cases: Vec<(&str, InpaintRequest, &str)> = vec![
        (
            "bytes that are not an image",
            request(
                b"definitely not an image".to_vec(),
                good_mask(),
                InpaintParams::default(),
            ),
            "image",
        ),
        (
            "a truncated PNG",
            request(truncated, good_mask(), InpaintParams::default()),
            "image",
        ),
        (
            "a mask of another size and aspect ratio",
            request(
                photo.clone(),
                Some(Target::Mask(other_aspect)),
                InpaintParams::default(),
            ),
            "mask",
        ),
        (
            "a header declaring more pixels than the limit",
            request(
                header_only_png(50_000, 50_000),
                good_mask(),
                InpaintParams::default(),
            ),
            "image",
        ),
        (
            "negative grow beyond the image",
            request(
                photo.clone(),
                good_mask(),
                InpaintParams {
                    grow: -100_000,
                    ..Default::default()
                },
            ),
            "params.grow",
        ),
        (
            "an unknown engine",
            request(
                photo.clone(),
                good_mask(),
                InpaintParams {
                    engine: "stable-diffusion-99".into(),
                    ..Default::default()
                },
            ),
            "params.engine",
        ),
        (
            "no target",
            request(photo.clone(), None, InpaintParams::default()),
            "target",
        ),
        (
            "a mask that is not an image",
            request(
                photo.clone(),
                Some(Target::Mask(b"GIF89a".to_vec())),
                InpaintParams::default(),
            ),
            "mask",
        ),
        (
            "a working width over the limit",
            request(
                photo.clone(),
                good_mask(),
                InpaintParams {
                    work_width: 5000,
                    ..Default::default()
                },
            ),
            "params.work_width",
        ),
        (
            "a working height under the limit",
            request(
                photo.clone(),
                good_mask(),
                InpaintParams {
                    work_height: 3,
                    ..Default::default()
                },
            ),
            "params.work_height",
        ),
        (
            "a Telea radius over the limit",
            request(
                photo.clone(),
                good_mask(),
                InpaintParams {
                    radius: 1000,
                    ..Default::default()
                },
            ),
            "params.radius",
        ),
    ];
    for (what, req, field) in cases {
        let status = inpaint_cli::client::inpaint(&url, req)
            .await
            .expect_err(&format!("{what} must be refused"));
        assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
        assert_eq!(
            violated_field(&status).as_deref(),
            Some(field),
            "{what}: {status:?}"
        );
        assert!(
            status.message().starts_with(field),
            "{what}: message {:?}",
            status.message()
        );
    }

    // The header-only image was refused for its size, not for missing data.
    let status = inpaint_cli::client::inpaint(
        &url,
        request(
            header_only_png(50_000, 50_000),
            good_mask(),
            InpaintParams::default(),
        ),
    )
    .await
    .unwrap_err();
    assert!(
        status.message().contains("over the limit"),
        "{}",
        status.message()
    );

    // An empty mask: the image comes back unchanged, and the answer says so.
    let empty = box_mask_png(w, h, PixelBox::new(0, 0, 0, 0));
    let response = inpaint_cli::client::inpaint(
        &url,
        request(
            photo.clone(),
            Some(Target::Mask(empty)),
            InpaintParams::default(),
        ),
    )
    .await
    .expect("empty mask is not an error");
    assert!(response.unchanged);
    assert_eq!(
        response.image, photo,
        "the input bytes are returned as given"
    );
    assert!(
        response.notes.iter().any(|n| n.contains("empty")),
        "{:?}",
        response.notes
    );

    // Jobs: the same parameters are refused at submission, under
    // `request.`, before anything is queued.
    let mut jobs = inpaint_cli::client::connect(&url).await.unwrap();
    let submit =
        |params: InpaintParams, target: Option<Target>| inpaint_proto::v1::SubmitJobRequest {
            request: Some(request(photo.clone(), target, params)),
            idempotency_key: String::new(),
        };
    for (params, field) in [
        (
            InpaintParams {
                work_width: 5000,
                ..Default::default()
            },
            "request.params.work_width",
        ),
        (
            InpaintParams {
                radius: 1000,
                ..Default::default()
            },
            "request.params.radius",
        ),
        (
            InpaintParams {
                strength: Some(2.0),
                ..Default::default()
            },
            "request.params.strength",
        ),
    ] {
        let status = jobs
            .submit_job(submit(params, good_mask()))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert_eq!(
            violated_field(&status).as_deref(),
            Some(field),
            "{status:?}"
        );
    }
    let status = jobs
        .submit_job(submit(InpaintParams::default(), None))
        .await
        .unwrap_err();
    for target in ["mask", "faces", "prompt", "detect"] {
        assert!(status.message().contains(target), "{}", status.message());
    }

    // Still healthy, and still doing real work.
    assert_all_serving(&cluster, "bad input").await;
    let ok = inpaint_cli::client::inpaint(
        &url,
        request(photo.clone(), good_mask(), InpaintParams::default()),
    )
    .await
    .expect("a good request still works");
    assert!(!ok.unchanged);
    cluster.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_pixel_limit_is_enforced() {
    // A real photo over a small configured limit.
    let cluster = start_cluster(Some(100_000)).await;
    let photo = photo_bytes("astronaut.png");
    let status = inpaint_cli::client::inpaint(
        &cluster.gateway_url(),
        request(
            photo,
            Some(Target::Mask(box_mask_png(
                512,
                512,
                PixelBox::new(1, 1, 5, 5),
            ))),
            InpaintParams::default(),
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_field(&status).as_deref(), Some("image"));
    assert!(status.message().contains("512x512"), "{}", status.message());
    cluster.shutdown().await.expect("clean shutdown");
}
