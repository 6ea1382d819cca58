//! The anonymisation engines (pixelate, blur, fill) through all four
//! services: the region hidden for good, nothing outside it touched.

mod support;

use std::collections::HashSet;

use inpaint_imaging::{PixelBox, RgbImage};
use inpaint_proto::v1::{InpaintArea, InpaintParams, InpaintRequest, inpaint_request::Target};
use support::*;
use tonic::Code;

/// The astronaut's face (YuNet's box, as in inpaint_e2e.rs).
const FACE: PixelBox = PixelBox {
    x: 178,
    y: 63,
    width: 90,
    height: 113,
};

fn request(photo: &[u8], engine: &str, area: InpaintArea) -> InpaintRequest {
    let original = decode_rgb(photo);
    InpaintRequest {
        image: photo.to_vec(),
        target: Some(Target::Mask(box_mask_png(
            original.width(),
            original.height(),
            FACE,
        ))),
        params: Some(InpaintParams {
            engine: engine.into(),
            mask_blur: 0,
            area: area as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Colours inside `area`, and how many pixels there kept their value.
fn inside(original: &RgbImage, result: &RgbImage) -> (HashSet<[u8; 3]>, usize) {
    let (mut colours, mut kept) = (HashSet::new(), 0);
    for y in FACE.y..FACE.bottom() {
        for x in FACE.x..FACE.right() {
            let i = 3 * (y * original.width() + x) as usize;
            let (a, b) = (&original.as_raw()[i..i + 3], &result.as_raw()[i..i + 3]);
            colours.insert([b[0], b[1], b[2]]);
            kept += usize::from(a == b);
        }
    }
    (colours, kept)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faces_hidden_for_good_and_nothing_else_touched() {
    let cluster = start_cluster(None).await;
    let url = cluster.gateway_url();
    let photo = photo_bytes("astronaut.png");
    let original = decode_rgb(&photo);
    let pixels = (FACE.width * FACE.height) as usize;
    for engine in ["pixelate", "blur", "fill"] {
        for area in [InpaintArea::Whole, InpaintArea::OnlyMasked] {
            let response = inpaint_cli::client::inpaint(&url, request(&photo, engine, area))
                .await
                .unwrap_or_else(|e| panic!("{engine} {area:?}: {e}"));
            assert_eq!(response.engine, engine);
            let result = decode_rgb(&response.image);
            assert_identical_outside(&original, &result, FACE, 0);
            let (colours, kept) = inside(&original, &result);
            println!(
                "engine={engine} area={area:?} colours_in_face={} pixels_kept={kept}/{pixels}",
                colours.len()
            );
            // A leak keeps most pixels; a block mean equals a pixel's own
            // value only by chance.
            assert!(
                kept * 50 < pixels,
                "{engine} {area:?}: {kept} of {pixels} kept"
            );
            if area == InpaintArea::Whole {
                // Measured by hand: blocks of ceil(113 / 8) = 15 px make
                // 6 x 8 = 48 over the 90 x 113 face; fill is one colour.
                let most = match engine {
                    "pixelate" => 48,
                    "fill" => 1,
                    _ => pixels,
                };
                assert!(colours.len() <= most, "{engine}: {} colours", colours.len());
            }
        }
    }
    // Blending the original back would undo the hiding: refused.
    let mut half = request(&photo, "pixelate", InpaintArea::Whole);
    half.params.as_mut().unwrap().strength = Some(0.5);
    let status = inpaint_cli::client::inpaint(&url, half).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("strength"),
        "{}",
        status.message()
    );
    cluster.shutdown().await.expect("clean shutdown");
}
