//! Segmentation is NOT_SERVING until its model loaded; a model that cannot
//! load is a clear error, not a crash.

mod support;

use std::time::Duration;

use inpaint_proto::v1::segmentation_client::SegmentationClient;
use inpaint_proto::v1::{FaceDetection, RegionSource, SegmentRequest, region_source::Source};
use support::*;
use tonic::Code;

fn config_with_missing_model(
    addr: std::net::SocketAddr,
    require: bool,
) -> inpaint_segmentation::Config {
    let mut config = inpaint_segmentation::Config::local(addr);
    config.ort_dylib = fetched("onnxruntime/libonnxruntime.so");
    config.face_model = repo_root().join("models/cache/does-not-exist.onnx");
    config.require_models = require;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_model_keeps_not_serving_and_explains() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(inpaint_segmentation::run(
        config_with_missing_model(addr, false),
        listener,
        async {
            let _ = stopped.await;
        },
    ));

    let mut client = None;
    for _ in 0..100 {
        if let Ok(c) = SegmentationClient::connect(format!("http://{addr}")).await {
            client = Some(
                c.max_decoding_message_size(64 << 20)
                    .max_encoding_message_size(64 << 20),
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut client = client.expect("segmentation reachable");
    let image = inpaint_common::tensor::from_rgb(&decode_rgb(&photo_bytes("astronaut.png")));
    let request = || SegmentRequest {
        image: Some(image.clone()),
        sources: vec![RegionSource {
            source: Some(Source::Faces(FaceDetection {
                min_confidence: 0.0,
                ..Default::default()
            })),
            ..Default::default()
        }],
    };
    // Until the loader gives up the answer is UNAVAILABLE (loading); then
    // FAILED_PRECONDITION with the reason.
    let mut status = client.segment(request()).await.unwrap_err();
    for _ in 0..100 {
        if status.code() != Code::Unavailable {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        status = client.segment(request()).await.unwrap_err();
    }
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(
        status.message().contains("does-not-exist.onnx"),
        "{}",
        status.message()
    );
    assert!(
        status.message().contains("make models"),
        "{}",
        status.message()
    );
    assert!(
        !inpaint_cli::embedded::serving(addr).await,
        "must not report SERVING without its model"
    );

    stop.send(()).unwrap();
    server.await.unwrap().expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_model_stops_the_service_when_models_are_required() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let outcome = tokio::time::timeout(
        Duration::from_secs(30),
        inpaint_segmentation::run(
            config_with_missing_model(addr, true),
            listener,
            std::future::pending(),
        ),
    )
    .await
    .expect("stops by itself");
    let err = outcome.expect_err("must fail");
    assert!(err.to_string().contains("does-not-exist.onnx"), "{err}");
}
