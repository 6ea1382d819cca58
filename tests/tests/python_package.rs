//! The Python package in clients/python as a user gets it: a wheel built
//! from the folder and installed in a fresh venv, then used from a folder
//! outside the repository against a running cluster (sync and asyncio
//! calls, a watch stream cut mid-way, a rate-limited tenant's retry-after,
//! and the `inpaint-client` command).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use inpaint_cli::embedded::JobSettings;
use inpaint_gateway::auth::hash_key;
use inpaint_imaging::PixelBox;
use inpaint_proto::v1::{InpaintParams, InpaintRequest, inpaint_request::Target};
use support::*;

/// A fresh venv (made once per run) with the package installed from a
/// wheel built from clients/python.
fn venv() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("python-client");
        let _ = std::fs::remove_dir_all(&dir);
        let venv = dir.join("venv");
        let dist = dir.join("dist");
        ran(Command::new("python3").args(["-m", "venv"]).arg(&venv));
        let pip = venv.join("bin/pip");
        ran(Command::new(&pip)
            .args(["wheel", "--quiet", "--no-deps", "--wheel-dir"])
            .arg(&dist)
            .arg(repo_root().join("clients/python")));
        let wheel = std::fs::read_dir(&dist)
            .expect("wheel folder")
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "whl"))
            .expect("a wheel was built");
        ran(Command::new(&pip).args(["install", "--quiet"]).arg(wheel));
        venv
    })
}

fn ran(command: &mut Command) -> Output {
    let output = command.output().expect("command starts");
    assert!(
        output.status.success(),
        "{command:?} failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A scratch folder outside the repository.
fn outside(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("inpaint-pyclient-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const HOLE: PixelBox = PixelBox {
    x: 50,
    y: 50,
    width: 30,
    height: 30,
};

/// The astronaut and a box mask, as files, and the request they make.
fn photo_and_mask(dir: &Path) -> (PathBuf, PathBuf, InpaintRequest) {
    let image = photo_bytes("astronaut.png");
    let rgb = decode_rgb(&image);
    let mask = box_mask_png(rgb.width(), rgb.height(), HOLE);
    let (image_path, mask_path) = (dir.join("astronaut.png"), dir.join("mask.png"));
    std::fs::write(&image_path, &image).unwrap();
    std::fs::write(&mask_path, &mask).unwrap();
    let request = InpaintRequest {
        image,
        target: Some(Target::Mask(mask)),
        params: Some(InpaintParams {
            mask_blur: 4,
            ..Default::default()
        }),
        ..Default::default()
    };
    (image_path, mask_path, request)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installed_package_sync_async_resume_and_retry() {
    let dir = outside("checks");
    let keys = dir.join("keys.toml");
    std::fs::write(
        &keys,
        format!(
            "[[keys]]\ntenant = \"acme\"\nsha256 = \"{}\"\n\
             [[keys]]\ntenant = \"slow\"\nsha256 = \"{}\"\n\
             [tenants.slow]\nrequests_per_second = 0.5\n",
            hash_key("acme-key"),
            hash_key("slow-key"),
        ),
    )
    .unwrap();
    let mut config = cluster_config();
    config.jobs = JobSettings {
        api_keys: Some(keys),
        ..JobSettings::default()
    };
    let cluster = start_cluster_with(config).await;
    // A second gateway on the same stages that never runs its jobs: they
    // stay queued until cancelled.
    let idle = start_gateway(
        cluster.segmentation.to_string(),
        cluster.mask.to_string(),
        cluster.worker.to_string(),
        |c| c.job_runners = 0,
    )
    .await;
    let (image, mask, request) = photo_and_mask(&dir);
    let script = dir.join("against_cluster.py");
    std::fs::copy(
        repo_root().join("clients/python/tests/against_cluster.py"),
        &script,
    )
    .unwrap();
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();

    let python = venv_python().await;
    let mut command = Command::new(python);
    command
        .current_dir(&dir)
        .arg(&script)
        .args(["--gateway", &cluster.gateway.to_string()])
        .args(["--key", "acme-key", "--slow-key", "slow-key"])
        .args(["--idle-gateway", &idle.addr.to_string()])
        .arg("--image")
        .arg(&image)
        .arg("--mask")
        .arg(&mask)
        .arg("--repo")
        .arg(repo_root())
        .arg("--out")
        .arg(&out);
    let output = tokio::task::spawn_blocking(move || ran(&mut command))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(stdout.contains("all ok"), "{stdout}");

    // Every result the package fetched is the Rust client's, byte for byte.
    let mut rust = inpaint_cli::client::connect(&cluster.gateway_url())
        .await
        .unwrap();
    let mut call = tonic::Request::new(request);
    call.metadata_mut()
        .insert("authorization", "Bearer acme-key".parse().unwrap());
    let expected = rust.inpaint(call).await.unwrap().into_inner().image;
    for name in ["sync_inpaint", "sync_job", "async_inpaint", "async_job"] {
        let got = std::fs::read(out.join(format!("{name}.png"))).unwrap();
        assert!(got == expected, "{name}: not the Rust client's bytes");
    }
    idle.stop().await;
    cluster.shutdown().await.expect("clean shutdown");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_line_submits_a_folder_and_watches() {
    let cluster = start_cluster(None).await;
    let dir = outside("folder");
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
            box_mask_png(img.width(), img.height(), HOLE),
        )
        .unwrap();
    }
    let program = venv_python().await.with_file_name("inpaint-client");
    let mut command = Command::new(program);
    command
        .current_dir(&dir)
        .args(["--gateway", &cluster.gateway.to_string(), "submit-folder"])
        .arg("--input")
        .arg(&input)
        .arg("--mask-dir")
        .arg(&masks)
        .arg("--output")
        .arg(&output);
    let run = tokio::task::spawn_blocking(move || ran(&mut command))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains("submitted=2 succeeded=2 failed=0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("stage=inpainting") && stdout.contains("state=JOB_STATE_SUCCEEDED"),
        "{stdout}"
    );
    // Each output is its photo repainted in the mask's box and
    // byte-identical beyond the 4-pixel feathered seam.
    for photo in ["astronaut.png", "coffee.png"] {
        let out = decode_rgb(&std::fs::read(output.join(photo)).unwrap());
        let original = decode_rgb(&photo_bytes(photo));
        assert_identical_outside(&original, &out, HOLE, 4);
        assert!(
            changed_in(&original, &out, HOLE) > 0,
            "{photo}: not repainted"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    cluster.shutdown().await.expect("clean shutdown");
}

async fn venv_python() -> PathBuf {
    tokio::task::spawn_blocking(|| venv().join("bin/python"))
        .await
        .unwrap()
}
