//! A client outside Rust: Python grpcio with stubs generated from our .proto
//! at test time (tests/python/outside_client.py) drives the gateway.

mod support;

use std::process::Command;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpcio_client_calls_health_and_inpaint() {
    let cluster = start_cluster(None).await;
    let script = repo_root().join("tests/python/outside_client.py");
    let photo = fetched("photos/astronaut.png");
    let addr = cluster.gateway.to_string();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .arg(addr)
            .arg(photo)
            .output()
    })
    .await
    .expect("join")
    .expect("python3 runs (install tests/python/requirements.txt)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "outside client failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for check in ["check=health", "check=inpaint", "check=invalid_argument"] {
        assert!(stdout.contains(check), "missing {check} in:\n{stdout}");
    }
    cluster.shutdown().await.expect("clean shutdown");
}
