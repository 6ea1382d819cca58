//! API keys and tenants through the gateway over a socket: calls without a
//! key or with a wrong one are UNAUTHENTICATED, health stays open, one
//! tenant cannot see, watch, cancel or fetch another's job nor reach it
//! through an idempotency key, a tenant's rate limit and in-flight budget
//! refuse with RESOURCE_EXHAUSTED and a retry-after, and a changed keys
//! file is read again without a restart.

mod support;

use std::time::Duration;

use inpaint_cli::embedded::JobSettings;
use inpaint_gateway::auth::hash_key;
use inpaint_proto::v1::inpainting_client::InpaintingClient;
use inpaint_proto::v1::{
    CancelJobRequest, GetJobRequest, GetResultRequest, JobState, SubmitJobRequest, WatchJobRequest,
};
use support::*;
use tonic::transport::Channel;
use tonic::{Code, Request};

fn as_key<T>(key: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    let value = format!("Bearer {key}").parse().expect("header value");
    request.metadata_mut().insert("authorization", value);
    request
}

/// A fresh folder for one test's keys file.
fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("inpaint-auth-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn keys_file(dir: &std::path::Path, body: &str) -> std::path::PathBuf {
    let path = dir.join("keys.toml");
    std::fs::write(&path, body).expect("keys file");
    path
}

fn submit(key: &str) -> SubmitJobRequest {
    SubmitJobRequest {
        request: Some(small_job_request("telea")),
        idempotency_key: key.into(),
    }
}

async fn client(url: &str) -> InpaintingClient<Channel> {
    inpaint_cli::client::connect(url)
        .await
        .expect("gateway reachable")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_tenants_guard_the_public_api() {
    let dir = temp_dir("tenants");
    let keys = keys_file(
        &dir,
        &format!(
            "[[keys]]\ntenant = \"acme\"\nsha256 = \"{}\"\n\
             [[keys]]\ntenant = \"globex\"\nsha256 = \"{}\"\n\
             [[keys]]\ntenant = \"slow\"\nsha256 = \"{}\"\n\
             [tenants.slow]\nrequests_per_second = 0.5\nmax_inflight_requests = 1\n",
            hash_key("acme-key"),
            hash_key("globex-key"),
            hash_key("slow-key"),
        ),
    );
    let mut config = cluster_config();
    config.jobs = JobSettings {
        api_keys: Some(keys.clone()),
        ..JobSettings::default()
    };
    let cluster = start_cluster_with(config).await;
    let url = cluster.gateway_url();
    let mut c = client(&url).await;

    // No key, a malformed header, a wrong key.
    let none = c.submit_job(submit("")).await.unwrap_err();
    assert_eq!(none.code(), Code::Unauthenticated, "{}", none.message());
    let mut basic = Request::new(submit(""));
    basic
        .metadata_mut()
        .insert("authorization", "Basic eDp5".parse().unwrap());
    assert_eq!(
        c.submit_job(basic).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let wrong = c.submit_job(as_key("guess", submit(""))).await.unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    assert!(
        wrong.message().contains("unknown API key"),
        "{}",
        wrong.message()
    );
    // Health stays open.
    let channel = inpaint_common::endpoint(&url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let health = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health answers without a key");
    assert_eq!(health.into_inner().status, 1, "SERVING");

    // Acme's job, with an idempotency key.
    let job = c
        .submit_job(as_key("acme-key", submit("same-key")))
        .await
        .unwrap()
        .into_inner();
    assert!(
        !job.id.contains('~'),
        "the public id does not show the tenant: {}",
        job.id
    );
    // Acme sees it; the same key again finds it.
    let again = c
        .submit_job(as_key("acme-key", submit("same-key")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((again.id.as_str(), again.existing), (job.id.as_str(), true));
    let mut events = c
        .watch_job(as_key(
            "acme-key",
            WatchJobRequest {
                id: job.id.clone(),
                after_sequence: 0,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let mut last = None;
    while let Some(e) = events.message().await.unwrap() {
        assert_eq!(e.job_id, job.id);
        last = Some(e.state());
    }
    assert_eq!(last, Some(JobState::Succeeded));

    // Globex cannot see, watch, cancel or fetch it: NOT_FOUND, as an
    // unknown id; its own use of the same idempotency key makes its own job.
    let id = || job.id.clone();
    let get = c
        .get_job(as_key("globex-key", GetJobRequest { id: id() }))
        .await;
    assert_eq!(get.unwrap_err().code(), Code::NotFound);
    let watch = c
        .watch_job(as_key(
            "globex-key",
            WatchJobRequest {
                id: id(),
                after_sequence: 0,
            },
        ))
        .await;
    assert_eq!(watch.err().map(|s| s.code()), Some(Code::NotFound));
    let cancel = c
        .cancel_job(as_key("globex-key", CancelJobRequest { id: id() }))
        .await;
    assert_eq!(cancel.unwrap_err().code(), Code::NotFound);
    let result = c
        .get_result(as_key("globex-key", GetResultRequest { id: id() }))
        .await;
    assert_eq!(result.unwrap_err().code(), Code::NotFound);
    let theirs = c
        .submit_job(as_key("globex-key", submit("same-key")))
        .await
        .unwrap()
        .into_inner();
    assert!(
        !theirs.existing && theirs.id != job.id,
        "globex got acme's job"
    );
    // Acme still fetches its result.
    let fetched = c
        .get_result(as_key("acme-key", GetResultRequest { id: id() }))
        .await;
    assert!(fetched.is_ok(), "{:?}", fetched.err());

    // The slow tenant: half a request a second (a bucket of one).
    c.submit_job(as_key("slow-key", submit("")))
        .await
        .expect("first is admitted");
    let refused = c
        .submit_job(as_key("slow-key", submit("")))
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Code::ResourceExhausted,
        "{}",
        refused.message()
    );
    let retry = refused.metadata().get("retry-after").expect("retry-after");
    assert!(retry.to_str().unwrap().parse::<u64>().unwrap() >= 1);
    // Other tenants are not held back by it.
    c.submit_job(as_key("globex-key", submit("")))
        .await
        .expect("globex admitted");

    // A new key, added while the gateway runs, works within seconds.
    let body = std::fs::read_to_string(&keys).unwrap()
        + &format!(
            "[[keys]]\ntenant = \"initech\"\nsha256 = \"{}\"\n",
            hash_key("initech-key")
        );
    std::fs::write(&keys, body).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match c
            .get_job(as_key("initech-key", GetJobRequest { id: id() }))
            .await
        {
            // Known key now: the job is acme's, so not found.
            Err(s) if s.code() == Code::NotFound => break,
            Err(s) if s.code() == Code::Unauthenticated && std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            other => panic!("the new key was not taken up: {other:?}"),
        }
    }
    cluster.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keys_file_that_cannot_be_read_stops_the_gateway() {
    let dir = temp_dir("bad");
    let bad = keys_file(&dir, "[[keys]]\ntenant = \"a b\"\nsha256 = \"00\"\n");
    let mut config = cluster_config();
    config.jobs = JobSettings {
        api_keys: Some(bad),
        ..JobSettings::default()
    };
    let started = inpaint_cli::embedded::Cluster::start(config).await;
    let failed = match started {
        Err(e) => e.to_string(),
        Ok(cluster) => {
            // The gateway stops at start; its error comes out at shutdown.
            let ready = cluster.wait_ready(true, Duration::from_secs(5)).await;
            assert!(ready.is_err(), "the gateway served with a bad keys file");
            format!("{:?}", cluster.shutdown().await)
        }
    };
    assert!(failed.contains("keys.toml"), "{failed}");
}
