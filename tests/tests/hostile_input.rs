//! The bad-input corpus beyond `bad_input.rs`, through the gateway over a
//! socket: corrupt JPEG and WebP, decompression bombs (a header claiming
//! 60000x60000, a tiny PNG that inflates to 48 MB), NaN and infinite
//! floats, unknown enum values, points and boxes outside the image, 10,000
//! region overrides, a 1,000-operation mask pipeline, a 200 MB message,
//! and connections that open and never finish a request. Each gets a clear
//! status (naming the field where one is to blame); the cluster stays
//! healthy and useful; the test process's peak memory stays under 1.5 GiB
//! (the cluster with its models loaded is about 0.3 GiB of it).

mod support;

use std::io::Write;

use inpaint_common::status::violated_field;
use inpaint_imaging::PixelBox;
use inpaint_proto::v1::{
    Box as WireBox, FaceTarget, InpaintParams, InpaintRequest, MaskOp, Point, PromptTarget,
    RegionOverride, Threshold, inpaint_request::Target, mask_op::Op,
};
use support::*;
use tonic::Code;

fn request(image: Vec<u8>, target: Target, params: InpaintParams) -> InpaintRequest {
    InpaintRequest {
        sketch: vec![],
        image,
        target: Some(target),
        params: Some(params),
    }
}

/// A baseline JPEG of `photo` with the bytes after its headers scrambled.
fn corrupt_jpeg(photo: &image::RgbImage) -> Vec<u8> {
    let mut jpeg = vec![];
    image::codecs::jpeg::JpegEncoder::new(&mut jpeg)
        .encode_image(photo)
        .unwrap();
    let (body, end) = (jpeg.len() / 2, jpeg.len() - 2);
    for (i, b) in jpeg[body..end].iter_mut().enumerate() {
        *b = (i * 131 % 251) as u8;
    }
    jpeg
}

/// A JPEG whose frame header claims `side` x `side` and holds no scan.
fn jpeg_header_claiming(side: u16) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8];
    // SOF0: length 11, 8 bits, height, width, one component.
    out.extend([0xFF, 0xC0, 0x00, 0x0B, 0x08]);
    out.extend(side.to_be_bytes());
    out.extend(side.to_be_bytes());
    out.extend([0x01, 0x01, 0x11, 0x00]);
    out.extend([0xFF, 0xD9]);
    out
}

/// A 4000x4000 black PNG: about 240 KB that inflates to 48 MB.
fn small_bomb() -> Vec<u8> {
    let black = image::RgbImage::new(4000, 4000);
    png(image::DynamicImage::ImageRgb8(black))
}

fn peak_rss_mib() -> f64 {
    self_status_kib("VmHWM:") / 1024.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_gets_clear_statuses_and_the_cluster_stays_up() {
    let cluster = start_cluster(None).await;
    let url = cluster.gateway_url();
    let photo = photo_bytes("astronaut.png");
    let rgb = decode_rgb(&photo);
    let image_crate_rgb = image::RgbImage::from_raw(512, 512, rgb.as_raw().to_vec()).unwrap();
    let mask = || Target::Mask(box_mask_png(512, 512, PixelBox::new(330, 20, 24, 24)));
    let webp = {
        let mut out = std::io::Cursor::new(vec![]);
        image::DynamicImage::ImageRgb8(image_crate_rgb.clone())
            .write_to(&mut out, image::ImageFormat::WebP)
            .unwrap();
        let mut bytes = out.into_inner();
        bytes.truncate(bytes.len() / 2);
        bytes
    };
    let point = |x: f32, y: f32| Point {
        x,
        y,
        background: false,
    };
    let ops = |n: usize| {
        (0..n)
            .map(|_| MaskOp {
                op: Some(Op::Threshold(Threshold { level: 128 })),
            })
            .collect::<Vec<_>>()
    };
    // Damaged files: decoders may render what is there (as browsers do,
    // a JPEG's damaged scan comes out as garbage pixels) or refuse the
    // file naming `image`; never anything else.
    for (what, bytes) in [
        (
            "a JPEG whose scan is garbage",
            corrupt_jpeg(&image_crate_rgb),
        ),
        ("a JPEG cut after a third", {
            let jpeg = corrupt_jpeg(&image_crate_rgb);
            jpeg[..jpeg.len() / 3].to_vec()
        }),
        ("a WebP cut in half", webp),
    ] {
        let req = request(bytes, mask(), InpaintParams::default());
        match inpaint_cli::client::inpaint(&url, req).await {
            Ok(response) => assert_eq!((response.width, response.height), (512, 512), "{what}"),
            Err(status) => {
                assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
                assert_eq!(violated_field(&status).as_deref(), Some("image"), "{what}");
            }
        }
    }
    let invalid: Vec<(&str, InpaintRequest, &str)> = vec![
        (
            "a JPEG header claiming 60000x60000",
            request(
                jpeg_header_claiming(60_000),
                mask(),
                InpaintParams::default(),
            ),
            "image",
        ),
        (
            "strength NaN",
            request(
                photo.clone(),
                mask(),
                InpaintParams {
                    strength: Some(f32::NAN),
                    ..Default::default()
                },
            ),
            "params.strength",
        ),
        (
            "strength infinite",
            request(
                photo.clone(),
                mask(),
                InpaintParams {
                    strength: Some(f32::INFINITY),
                    ..Default::default()
                },
            ),
            "params.strength",
        ),
        (
            "a face confidence of NaN",
            request(
                photo.clone(),
                Target::Faces(FaceTarget {
                    min_confidence: f32::NAN,
                    ..Default::default()
                }),
                InpaintParams::default(),
            ),
            "target.faces.min_confidence",
        ),
        (
            "an unknown area",
            request(
                photo.clone(),
                mask(),
                InpaintParams {
                    area: 99,
                    ..Default::default()
                },
            ),
            "params.area",
        ),
        (
            "an unknown output format",
            request(
                photo.clone(),
                mask(),
                InpaintParams {
                    output_format: 99,
                    ..Default::default()
                },
            ),
            "params.output_format",
        ),
        (
            "an unknown masked content",
            request(
                photo.clone(),
                mask(),
                InpaintParams {
                    masked_content: 99,
                    ..Default::default()
                },
            ),
            "params.masked_content",
        ),
        (
            "a click outside the image",
            request(
                photo.clone(),
                Target::Prompt(PromptTarget {
                    points: vec![point(9000.0, 10.0)],
                    r#box: None,
                }),
                InpaintParams::default(),
            ),
            "target.prompt.points[0]",
        ),
        (
            "a click at NaN",
            request(
                photo.clone(),
                Target::Prompt(PromptTarget {
                    points: vec![point(f32::NAN, 10.0)],
                    r#box: None,
                }),
                InpaintParams::default(),
            ),
            "target.prompt.points[0]",
        ),
        (
            "a box past the image",
            request(
                photo.clone(),
                Target::Prompt(PromptTarget {
                    points: vec![],
                    r#box: Some(WireBox {
                        x: 500,
                        y: 500,
                        width: 100,
                        height: 100,
                    }),
                }),
                InpaintParams::default(),
            ),
            "target.prompt.box",
        ),
        (
            "10,000 region overrides",
            request(
                photo.clone(),
                mask(),
                InpaintParams {
                    region_overrides: (0..10_000)
                        .map(|i| RegionOverride {
                            region: i,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                },
            ),
            "params.region_overrides",
        ),
        (
            "a 1,000-operation mask pipeline",
            request(
                photo.clone(),
                mask(),
                InpaintParams {
                    mask_ops: ops(1000),
                    ..Default::default()
                },
            ),
            "params.mask_ops",
        ),
    ];
    for (what, req, field) in invalid {
        let Err(status) = inpaint_cli::client::inpaint(&url, req).await else {
            panic!("{what} must be refused");
        };
        assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
        assert_eq!(
            violated_field(&status).as_deref(),
            Some(field),
            "{what}: {status:?}"
        );
    }

    // A tiny file that inflates to 48 MB is a real 16-megapixel image: it
    // is repainted, within the memory bound below.
    let bomb = request(
        small_bomb(),
        Target::Mask(box_mask_png(4000, 4000, PixelBox::new(100, 100, 50, 50))),
        InpaintParams::default(),
    );
    assert!(bomb.image.len() < 300_000, "{} bytes", bomb.image.len());
    let response = inpaint_cli::client::inpaint(&url, bomb)
        .await
        .expect("a real image");
    assert_eq!((response.width, response.height), (4000, 4000));

    // A 200 MB message is refused by size before it is read in full.
    let huge = request(vec![7u8; 200 << 20], mask(), InpaintParams::default());
    let status = inpaint_cli::client::inpaint(&url, huge).await.unwrap_err();
    assert!(
        matches!(
            status.code(),
            Code::ResourceExhausted | Code::OutOfRange | Code::InvalidArgument
        ),
        "{status:?}"
    );

    // Connections that open, send a few bytes and never finish a request do
    // not stop anyone else.
    let gateway = cluster.gateway;
    let stalled: Vec<std::net::TcpStream> = (0..64)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(gateway).unwrap();
            let _ = s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
            s
        })
        .collect();

    // Still healthy, and still doing real work.
    assert_all_serving(&cluster, "hostile input").await;
    let ok = inpaint_cli::client::inpaint(
        &url,
        request(photo.clone(), mask(), InpaintParams::default()),
    )
    .await
    .expect("a good request still works");
    assert!(!ok.unchanged);
    drop(stalled);
    let peak = peak_rss_mib();
    println!("peak_rss_mib={peak:.0}");
    assert!(peak < 1536.0, "peak RSS {peak:.0} MiB");
    cluster.shutdown().await.expect("clean shutdown");
}
