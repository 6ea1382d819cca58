//! A flood against one process (bounded, loopback): 256 synchronous
//! 1024x1024 requests at once. Those over the in-flight budget are refused
//! at once with RESOURCE_EXHAUSTED and a retry-after, the admitted ones
//! all succeed, the process's peak memory stays under 3 GiB, and after the
//! burst its resident memory comes back within 20% of the idle figure (the
//! services give freed memory back once their calls have ended,
//! `inpaint_common::memory`; they run in this test's process).

mod support;

use std::time::{Duration, Instant};

use inpaint_imaging::PixelBox;
use inpaint_proto::v1::{InpaintArea, InpaintParams, InpaintRequest, inpaint_request::Target};
use support::*;
use tonic::Code;

fn mib(kib: f64) -> f64 {
    kib / 1024.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_refused_cleanly_and_memory_comes_back() {
    let cluster = start_cluster(None).await;
    let url = cluster.gateway_url();
    let photo = decode_rgb(&photo_bytes("astronaut.png"));
    let photo = image::RgbImage::from_raw(512, 512, photo.as_raw().to_vec()).unwrap();
    let big = image::imageops::resize(&photo, 1024, 1024, image::imageops::FilterType::Triangle);
    let request = InpaintRequest {
        image: png(image::DynamicImage::ImageRgb8(big)),
        target: Some(Target::Mask(box_mask_png(
            1024,
            1024,
            PixelBox::new(660, 40, 64, 64),
        ))),
        params: Some(InpaintParams {
            engine: "telea".into(),
            area: InpaintArea::OnlyMasked as i32,
            ..Default::default()
        }),
        sketch: vec![],
    };
    // Warm up, then the idle figure.
    for _ in 0..3 {
        inpaint_cli::client::inpaint(&url, request.clone())
            .await
            .expect("warm-up");
    }
    // Idle: after the services have given back what the warm-up freed.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let idle = self_status_kib("VmRSS:");

    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..256 {
        let (url, request) = (url.clone(), request.clone());
        calls.spawn(async move {
            let started = Instant::now();
            let answer = inpaint_cli::client::inpaint(&url, request).await;
            (answer, started.elapsed())
        });
    }
    let (mut admitted, mut refused) = (vec![], 0);
    while let Some(done) = calls.join_next().await {
        let (answer, took) = done.expect("call task");
        match answer {
            Ok(_) => admitted.push(took.as_secs_f64()),
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                let retry = status.metadata().get("retry-after").expect("retry-after");
                assert!(retry.to_str().unwrap().parse::<u64>().unwrap() >= 1);
                refused += 1;
            }
        }
    }
    admitted.sort_by(f64::total_cmp);
    let p99 = admitted[(admitted.len() - 1) * 99 / 100];
    let peak = self_status_kib("VmHWM:");
    // The services give freed memory back within a few seconds of the
    // last call ending.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let after = self_status_kib("VmRSS:");
    println!(
        "flood requests=256 admitted={} refused={refused} admitted_p99_s={p99:.2} idle_rss_mib={:.0} peak_rss_mib={:.0} after_rss_mib={:.0}",
        admitted.len(),
        mib(idle),
        mib(peak),
        mib(after)
    );
    assert!(refused > 0 && !admitted.is_empty());
    assert!(mib(peak) < 3072.0, "peak {:.0} MiB", mib(peak));
    assert!(
        after <= idle * 1.2,
        "after the burst {:.0} MiB, idle {:.0} MiB",
        mib(after),
        mib(idle)
    );
    cluster.shutdown().await.expect("clean shutdown");
}
