//! Only the part of a crop the paste-back reads travels back from the
//! worker and on to Composite (services/gateway/src/trim.rs). The result
//! must be the very pixels of the whole-crop path: checked against the
//! same work done in this process with the imaging kernels (no hops, no
//! trimming), and, at the worker, the answered part against the same part
//! of the whole answer.

mod support;

use inpaint_imaging::composite::{Corrections, Repainted, composite};
use inpaint_imaging::{PixelBox, mask, telea};
use inpaint_proto::v1::inpaint_request::Target;
use inpaint_proto::v1::inpaint_worker_client::InpaintWorkerClient;
use inpaint_proto::v1::{
    CropInput, InpaintArea, InpaintCropsRequest, InpaintParams, InpaintRequest,
};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_image_crop_comes_back_as_the_same_pixels() {
    let cluster = start_cluster(None).await;
    let photo = photo_bytes("astronaut.png");
    let hole = PixelBox::new(320, 32, 128, 128);
    let answer = inpaint_cli::client::inpaint(
        &cluster.gateway_url(),
        InpaintRequest {
            image: photo.clone(),
            target: Some(Target::Mask(box_mask_png(512, 512, hole))),
            params: Some(InpaintParams {
                engine: "telea".into(),
                mask_blur: 4,
                area: InpaintArea::Whole as i32,
                ..Default::default()
            }),
            sketch: vec![],
        },
    )
    .await
    .unwrap();
    // The crop reported is still the whole image.
    let crop = answer.crops[0].r#box.unwrap();
    assert_eq!((crop.x, crop.y, crop.width, crop.height), (0, 0, 512, 512));

    // The same work here: threshold, feather 4, Telea on what the feather
    // touches, paste back with the feather as alpha.
    let original = decode_rgb(&photo);
    let painted = mask::from_box(512, 512, hole);
    let alpha = mask::feather(&mask::threshold(&painted, 128), 4);
    let filled = telea::inpaint(&original, &mask::threshold(&alpha, 1), 0);
    let expected = composite(
        &original,
        &[Repainted {
            area: PixelBox::new(0, 0, 512, 512),
            image: filled,
            alpha,
        }],
        Corrections::default(),
    );
    let got = decode_rgb(&answer.image);
    let differing = got
        .as_raw()
        .iter()
        .zip(expected.as_raw())
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(differing, 0, "bytes differ from the in-process result");
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_worker_answers_with_the_part_asked_for() {
    let cluster = start_cluster(None).await;
    let mut worker = InpaintWorkerClient::connect(format!("http://{}", cluster.worker))
        .await
        .unwrap()
        .max_decoding_message_size(64 << 20);
    let photo = decode_rgb(&photo_bytes("astronaut.png"));
    let hole = mask::from_box(512, 512, PixelBox::new(200, 150, 60, 40));
    let part = PixelBox::new(190, 140, 80, 60);
    let ask = |answer: Option<PixelBox>| InpaintCropsRequest {
        engine: "telea".into(),
        crops: vec![CropInput {
            image: Some(inpaint_common::tensor::into_rgb_tensor(photo.clone())),
            hole: Some(inpaint_common::tensor::into_gray_tensor(hole.clone())),
            sketch: None,
            sketch_mask: None,
            answer: answer.map(inpaint_common::tensor::wire_box),
        }],
        ..Default::default()
    };
    let whole = worker.inpaint_crops(ask(None)).await.unwrap().into_inner();
    let whole = inpaint_common::tensor::to_rgb(whole.images.into_iter().next(), "image").unwrap();
    let partial = worker
        .inpaint_crops(ask(Some(part)))
        .await
        .unwrap()
        .into_inner();
    let partial =
        inpaint_common::tensor::to_rgb(partial.images.into_iter().next(), "image").unwrap();
    assert_eq!((partial.width(), partial.height()), (80, 60));
    assert!(partial.as_raw() == whole.crop(part).as_raw());

    // A part outside the crop is refused, naming the field.
    let status = worker
        .inpaint_crops(ask(Some(PixelBox::new(500, 500, 20, 20))))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().starts_with("crops[0].answer"),
        "{}",
        status.message()
    );
    cluster.shutdown().await.unwrap();
}
