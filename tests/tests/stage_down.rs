//! A stage that cannot be reached turns into UNAVAILABLE within the stage
//! timeout: no hang, and the gateway stays up.

mod support;

use std::time::{Duration, Instant};

use inpaint_imaging::PixelBox;
use inpaint_proto::v1::{InpaintParams, InpaintRequest, inpaint_request::Target};
use support::*;
use tonic::Code;

/// A loopback address where nothing listens.
async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_stage_is_unavailable_not_a_hang() {
    let gateway = start_gateway(
        closed_port_url().await,
        closed_port_url().await,
        closed_port_url().await,
        |c| c.stage_timeout_secs = 2,
    )
    .await;
    let addr = gateway.addr;

    let photo = photo_bytes("astronaut.png");
    let started = Instant::now();
    let status = inpaint_cli::client::inpaint(
        &format!("http://{addr}"),
        InpaintRequest {
            sketch: vec![],
            image: photo,
            target: Some(Target::Mask(box_mask_png(
                512,
                512,
                PixelBox::new(10, 10, 8, 8),
            ))),
            params: Some(InpaintParams::default()),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("mask stage"),
        "{}",
        status.message()
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        inpaint_cli::embedded::serving(addr).await,
        "gateway still serving"
    );

    gateway.stop().await;
}

/// A loopback address that accepts connections and never answers on them
/// (a hung stage, unlike a closed port, which refuses at once).
async fn silent_stage_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_that_never_answers_times_out() {
    let gateway = start_gateway(
        silent_stage_url().await,
        silent_stage_url().await,
        silent_stage_url().await,
        |c| c.stage_timeout_secs = 2,
    )
    .await;
    let addr = gateway.addr;

    let started = Instant::now();
    let url = format!("http://{addr}");
    let call = inpaint_cli::client::inpaint(
        &url,
        InpaintRequest {
            sketch: vec![],
            image: photo_bytes("astronaut.png"),
            target: Some(Target::Mask(box_mask_png(
                512,
                512,
                PixelBox::new(10, 10, 8, 8),
            ))),
            params: Some(InpaintParams::default()),
        },
    );
    // Without the gateway's stage timeout this would hang: fail instead.
    let status = tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .expect("the gateway answered (its stage timeout works)")
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("mask stage"),
        "{}",
        status.message()
    );
    // Bounded by the stage timeout (2 s), not by the hung peer.
    assert!(
        took >= Duration::from_secs(2),
        "answered before the timeout: {took:?}"
    );
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(
        inpaint_cli::embedded::serving(addr).await,
        "gateway still serving"
    );
    gateway.stop().await;
}
