//! Faults against the multi-process cluster (deploy/local/cluster.sh: each
//! service its own process, 2 gateways sharing a redis-server with AOF, 2
//! workers): 300 jobs through both gateways while, in turn, a worker is
//! SIGKILLed, a gateway is SIGKILLed holding claims, and redis-server is
//! killed and started again from its AOF. Every job must end SUCCEEDED
//! exactly once, with the result the same request gets alone, and nothing
//! may stay pending in the queue. Uses the debug binaries `make test`
//! builds (cargo build --bins). tests/tests/containers.rs runs the same
//! against the cluster as containers.

mod support;

use support::faults::{Script, survive_faults};
use support::*;

use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_survive_a_dead_worker_a_dead_gateway_and_a_redis_restart() {
    for bin in [
        "inpaint-gateway",
        "inpaint-segmentation",
        "inpaint-mask",
        "inpaint-worker",
    ] {
        let path = repo_root().join("target/debug").join(bin);
        assert!(
            path.exists(),
            "{} is missing: `make test` builds it (cargo build --workspace --bins)",
            path.display()
        );
    }
    fetched("pushpull/pushpull_lama.onnx");
    let script = Script::new(
        "deploy/local/cluster.sh",
        vec![("CLUSTER_BIN", "target/debug")],
    );
    // A killed process's sockets are reset at once.
    survive_faults(&script, "processes", Duration::from_secs(15)).await;
}
