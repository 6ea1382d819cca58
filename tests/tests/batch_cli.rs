//! `inpaint batch`: a folder through the job API, resumed after a stop.

mod support;

use std::time::Duration;

use inpaint_cli::batch::{BatchOptions, BatchTarget, run};
use inpaint_imaging::PixelBox;
use inpaint_proto::v1::InpaintParams;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_processes_a_folder_and_resumes() {
    let cluster = start_cluster(None).await;
    let (dir, input, masks, output) = photo_folder(
        "batch",
        &[
            ("a", "astronaut.png"),
            ("b", "chelsea.png"),
            ("c", "coffee.png"),
        ],
    );
    // A photo without a mask fails alone.
    std::fs::write(input.join("d.png"), photo_bytes("camera.png")).unwrap();
    let options = BatchOptions {
        input: input.clone(),
        output: output.clone(),
        target: BatchTarget::MaskDir(masks.clone()),
        params: InpaintParams::default(),
        concurrency: 2,
        progress_bar: false,
        patience: Duration::from_secs(30),
    };

    let first = run(&cluster.gateway_url(), options.clone()).await.unwrap();
    assert_eq!((first.done, first.skipped, first.failed.len()), (3, 0, 1));
    assert!(
        first.failed[0].1.contains("no mask named d"),
        "{:?}",
        first.failed
    );
    // Each output is its photo repainted in its mask's box and
    // byte-identical beyond it.
    let hole = PixelBox::new(40, 40, 20, 20);
    for name in ["a", "b", "c"] {
        let out = decode_rgb(&std::fs::read(output.join(format!("{name}.png"))).unwrap());
        let original = decode_rgb(&std::fs::read(input.join(format!("{name}.png"))).unwrap());
        assert_identical_outside(&original, &out, hole, 0);
        assert!(
            changed_in(&original, &out, hole) > 0,
            "{name}: not repainted"
        );
    }

    // Resumption: done outputs are skipped; a removed one is made again.
    std::fs::remove_file(output.join("b.png")).unwrap();
    let second = run(&cluster.gateway_url(), options).await.unwrap();
    assert_eq!((second.done, second.skipped), (1, 2));
    assert!(output.join("b.png").is_file());
    let _ = std::fs::remove_dir_all(&dir);
    cluster.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_removes_text_from_every_photo() {
    let cluster = start_cluster(None).await;
    let dir = std::env::temp_dir().join(format!("inpaint-batch-text-{}", std::process::id()));
    let (input, output) = (dir.join("in"), dir.join("out"));
    std::fs::create_dir_all(&input).unwrap();
    let (_, lettered, inked) = lettering::lettered_coffee();
    let lettered_png = png(image::DynamicImage::ImageRgb8(lettered.clone()));
    std::fs::write(input.join("lettered.png"), &lettered_png).unwrap();
    // A photo without text comes back unchanged, not as a failure.
    std::fs::write(input.join("plain.png"), photo_bytes("chelsea.png")).unwrap();
    let options = BatchOptions {
        input,
        output: output.clone(),
        target: BatchTarget::Detect("all text".into()),
        params: InpaintParams::default(),
        concurrency: 2,
        progress_bar: false,
        patience: Duration::from_secs(30),
    };
    let summary = run(&cluster.gateway_url(), options).await.unwrap();
    assert_eq!(
        (summary.done, summary.failed.len()),
        (2, 0),
        "{:?}",
        summary.failed
    );
    let out = image::load_from_memory(&std::fs::read(output.join("lettered.png")).unwrap())
        .unwrap()
        .into_rgb8();
    let changed = inked
        .iter()
        .filter(|&&(x, y)| out.get_pixel(x, y) != lettered.get_pixel(x, y))
        .count();
    assert!(
        changed * 10 > inked.len() * 9,
        "{changed} of {} text pixels repainted",
        inked.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
    cluster.shutdown().await.expect("clean shutdown");
}
