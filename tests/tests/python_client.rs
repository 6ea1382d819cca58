//! The Python client in clients/python: its example submits a folder as jobs
//! and watches their progress against a running cluster.

mod support;

use std::process::Command;

use inpaint_imaging::PixelBox;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_example_submits_a_folder_and_watches() {
    let cluster = start_cluster(None).await;
    let dir = std::env::temp_dir().join(format!("inpaint-pyclient-{}", std::process::id()));
    let (input, masks, output) = (dir.join("in"), dir.join("masks"), dir.join("out"));
    for d in [&input, &masks] {
        std::fs::create_dir_all(d).unwrap();
    }
    for photo in ["astronaut.png", "coffee.png"] {
        let bytes = photo_bytes(photo);
        let img = decode_rgb(&bytes);
        std::fs::write(input.join(photo), &bytes).unwrap();
        std::fs::write(
            masks.join(photo),
            box_mask_png(img.width(), img.height(), PixelBox::new(50, 50, 30, 30)),
        )
        .unwrap();
    }
    let script = repo_root().join("clients/python/submit_folder.py");
    let gateway = cluster.gateway.to_string();
    let args = (input.clone(), masks.clone(), output.clone());
    let run = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .args(["--gateway", &gateway])
            .arg("--input")
            .arg(&args.0)
            .arg("--mask-dir")
            .arg(&args.1)
            .arg("--output")
            .arg(&args.2)
            .output()
    })
    .await
    .unwrap()
    .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "example failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("submitted=2 succeeded=2 failed=0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("stage=inpainting") && stdout.contains("state=JOB_STATE_SUCCEEDED"),
        "{stdout}"
    );
    // Each output is its photo repainted in the mask's box and
    // byte-identical beyond the example's 4-pixel feathered seam.
    let hole = PixelBox::new(50, 50, 30, 30);
    for photo in ["astronaut.png", "coffee.png"] {
        let out = decode_rgb(&std::fs::read(output.join(photo)).unwrap());
        let original = decode_rgb(&photo_bytes(photo));
        assert_identical_outside(&original, &out, hole, 4);
        assert!(
            changed_in(&original, &out, hole) > 0,
            "{photo}: not repainted"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    cluster.shutdown().await.expect("clean shutdown");
}
