//! The job API: lifecycle and progress, idempotency, cancellation, expiry,
//! admission control, and two gateway replicas sharing a real Redis where one
//! stops abruptly mid-batch.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use inpaint_cli::embedded::JobSettings;
use inpaint_proto::v1::inpainting_client::InpaintingClient;
use inpaint_proto::v1::{
    CancelJobRequest, GetJobRequest, GetResultRequest, JobState, SubmitJobRequest,
    SubmitJobsRequest, WatchJobRequest,
};
use support::*;
use tonic::Code;
use tonic::transport::Channel;

async fn client(url: &str) -> InpaintingClient<Channel> {
    inpaint_cli::client::connect(url)
        .await
        .expect("gateway reachable")
}

fn submit(idempotency_key: &str) -> SubmitJobRequest {
    SubmitJobRequest {
        request: Some(small_job_request("telea")),
        idempotency_key: idempotency_key.into(),
    }
}

/// A job on the full astronaut photo: long enough (tens of milliseconds)
/// that a replica stopped mid-batch is caught holding jobs.
fn photo_job(idempotency_key: &str) -> SubmitJobRequest {
    let photo = photo_bytes("astronaut.png");
    let request = inpaint_proto::v1::InpaintRequest {
        target: Some(inpaint_proto::v1::inpaint_request::Target::Mask(
            box_mask_png(512, 512, inpaint_imaging::PixelBox::new(330, 20, 40, 40)),
        )),
        image: photo,
        params: Some(inpaint_proto::v1::InpaintParams {
            mask_blur: 4,
            ..Default::default()
        }),
        sketch: vec![],
    };
    SubmitJobRequest {
        request: Some(request),
        idempotency_key: idempotency_key.into(),
    }
}

/// Every event of a job until it ends.
async fn watch_all(
    c: &mut InpaintingClient<Channel>,
    id: &str,
) -> Vec<inpaint_proto::v1::JobEvent> {
    let mut stream = c
        .watch_job(WatchJobRequest {
            id: id.into(),
            after_sequence: 0,
        })
        .await
        .expect("watch")
        .into_inner();
    let mut events = Vec::new();
    while let Some(e) = tokio::time::timeout(Duration::from_secs(60), stream.message())
        .await
        .expect("events keep coming")
        .expect("stream")
    {
        events.push(e);
    }
    events
}

async fn lifecycle(url: &str) {
    let mut c = client(url).await;
    let job = c.submit_job(submit("")).await.unwrap().into_inner();
    assert_eq!(job.state(), JobState::Queued);
    let events = watch_all(&mut c, &job.id).await;
    let stages: Vec<String> = events
        .iter()
        .map(|e| format!("{}:{}/{}", e.stage, e.regions_done, e.regions_total))
        .collect();
    assert_eq!(
        stages,
        [
            "queued:0/0",
            "segmenting:0/0",
            "masks_ready:0/1",
            "inpainting:0/1",
            "inpainting:1/1",
            "compositing:0/0",
            "done:0/0"
        ],
        "progress events in order"
    );
    assert!(
        events
            .windows(2)
            .all(|w| w[1].sequence == w[0].sequence + 1)
    );
    assert_eq!(events.last().unwrap().state(), JobState::Succeeded);
    // The result is the input repainted in the mask's box (30,20 16x12)
    // and byte-identical beyond it.
    let result = c
        .get_result(GetResultRequest { id: job.id.clone() })
        .await
        .unwrap()
        .into_inner();
    let input = decode_rgb(&small_job_request("telea").image);
    let output = decode_rgb(&result.image);
    let hole = inpaint_imaging::PixelBox::new(30, 20, 16, 12);
    assert_identical_outside(&input, &output, hole, 0);
    assert!(
        changed_in(&input, &output, hole) > 0,
        "the hole was not repainted"
    );
    // A watcher joining late gets the rest from where it asks.
    let mut late = c
        .watch_job(WatchJobRequest {
            id: job.id.clone(),
            after_sequence: 5,
        })
        .await
        .unwrap()
        .into_inner();
    let next = late.message().await.unwrap().unwrap();
    assert_eq!(next.sequence, 6);
    // Cancelling a job that has ended changes nothing: still SUCCEEDED,
    // not marked for cancellation, its result still there.
    let after = c
        .cancel_job(CancelJobRequest { id: job.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (after.state(), after.cancel_requested),
        (JobState::Succeeded, false)
    );
    assert!(
        c.get_result(GetResultRequest { id: job.id.clone() })
            .await
            .is_ok()
    );

    // Idempotency: the same key gives the same job.
    let first = c.submit_job(submit("photo-17")).await.unwrap().into_inner();
    let again = c.submit_job(submit("photo-17")).await.unwrap().into_inner();
    assert_eq!(first.id, again.id);
    assert!(again.existing && !first.existing);
    let other = c.submit_job(submit("photo-18")).await.unwrap().into_inner();
    assert_ne!(first.id, other.id);

    // Unknown ids.
    let missing = c
        .get_job(GetJobRequest { id: "nope".into() })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_in_memory() {
    let cluster = start_cluster(None).await;
    lifecycle(&cluster.gateway_url()).await;
    cluster.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_in_redis_and_expiry() {
    let redis = start_redis();
    let mut config = cluster_config();
    config.jobs = JobSettings {
        redis_url: Some(redis.url.clone()),
        ..JobSettings::default()
    };
    let cluster = start_cluster_with(config).await;
    lifecycle(&cluster.gateway_url()).await;

    // An ended job keeps its record and result; its input is dropped.
    let mut c = client(&cluster.gateway_url()).await;
    let job = c.submit_job(submit("")).await.unwrap().into_inner();
    watch_all(&mut c, &job.id).await;
    let mut conn = redis::Client::open(redis.url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let (input, result): (i64, i64) = redis::pipe()
        .cmd("EXISTS")
        .arg(format!("inpaint:input:{}", job.id))
        .cmd("EXISTS")
        .arg(format!("inpaint:result:{}", job.id))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!((input, result), (0, 1));

    // A replica whose jobs live 2 s: everything about a job goes after that.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let mut short = inpaint_gateway::Config::local(
        listener.local_addr().unwrap(),
        format!("http://{}", cluster.segmentation),
        format!("http://{}", cluster.mask),
        format!("http://{}", cluster.worker),
    );
    short.redis_url = Some(redis.url.clone());
    short.redis_prefix = "short".into();
    short.job_ttl_secs = 2;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let replica = tokio::spawn(inpaint_gateway::run(short, listener, async {
        let _ = stopped.await;
    }));
    let mut c = client(&url).await;
    let job = c.submit_job(submit("")).await.unwrap().into_inner();
    let events = watch_all(&mut c, &job.id).await;
    assert_eq!(events.last().unwrap().state(), JobState::Succeeded);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let gone = c
        .get_job(GetJobRequest { id: job.id.clone() })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    let gone = c
        .get_result(GetResultRequest { id: job.id })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    stop.send(()).unwrap();
    replica.await.unwrap().expect("replica stops cleanly");
    cluster.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_and_admission_control() {
    let redis = start_redis();
    let mut config = cluster_config();
    // No runners: jobs stay queued until cancelled.
    config.jobs = JobSettings {
        redis_url: Some(redis.url.clone()),
        runners: 0,
        max_queued_jobs: 5,
        ..JobSettings::default()
    };
    let cluster = start_cluster_with(config).await;
    let mut c = client(&cluster.gateway_url()).await;

    let job = c.submit_job(submit("")).await.unwrap().into_inner();
    let cancelled = c
        .cancel_job(CancelJobRequest { id: job.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.state(), JobState::Cancelled);
    assert!(cancelled.cancel_requested);
    let not_done = c
        .get_result(GetResultRequest { id: job.id.clone() })
        .await
        .unwrap_err();
    assert_eq!(not_done.code(), Code::FailedPrecondition);
    // Cancelling one job leaves the others alone.
    let other = c.submit_job(submit("")).await.unwrap().into_inner();
    assert_eq!(
        c.get_job(GetJobRequest { id: other.id })
            .await
            .unwrap()
            .into_inner()
            .state(),
        JobState::Queued
    );

    // A flood: the budget is 5 queued jobs; one is queued already.
    let flood = SubmitJobsRequest {
        jobs: (0..8).map(|_| submit("")).collect(),
    };
    let outcomes = c.submit_jobs(flood).await.unwrap().into_inner().outcomes;
    let accepted = outcomes.iter().filter(|o| o.job.is_some()).count();
    let refused: Vec<_> = outcomes.iter().filter(|o| o.job.is_none()).collect();
    assert_eq!(accepted, 4);
    assert_eq!(refused.len(), 4);
    assert!(
        refused
            .iter()
            .all(|o| o.error_code == Code::ResourceExhausted as i32),
        "{refused:?}"
    );
    let single = c.submit_job(submit("")).await.unwrap_err();
    assert_eq!(single.code(), Code::ResourceExhausted);
    // Blobs over the store's cap are refused before they are queued.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let capped_url = format!("http://{}", listener.local_addr().unwrap());
    let mut capped = inpaint_gateway::Config::local(
        listener.local_addr().unwrap(),
        format!("http://{}", cluster.segmentation),
        format!("http://{}", cluster.mask),
        format!("http://{}", cluster.worker),
    );
    capped.max_job_blob_bytes = 1000;
    capped.job_runners = 0;
    let (stop_capped, capped_stopped) = tokio::sync::oneshot::channel::<()>();
    let capped_task = tokio::spawn(inpaint_gateway::run(capped, listener, async {
        let _ = capped_stopped.await;
    }));
    let too_big = client(&capped_url)
        .await
        .submit_job(submit(""))
        .await
        .unwrap_err();
    assert_eq!(too_big.code(), Code::InvalidArgument);
    assert!(
        too_big.message().starts_with("request:"),
        "{}",
        too_big.message()
    );
    stop_capped.send(()).unwrap();
    capped_task.await.unwrap().expect("stops cleanly");
    assert!(
        single.metadata().get("retry-after").is_some(),
        "retry-after hint"
    );

    // A replica with runners on the same Redis finishes what was admitted.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut runner = inpaint_gateway::Config::local(
        listener.local_addr().unwrap(),
        format!("http://{}", cluster.segmentation),
        format!("http://{}", cluster.mask),
        format!("http://{}", cluster.worker),
    );
    runner.redis_url = Some(redis.url.clone());
    runner.replica = Some("runner".into());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let replica = tokio::spawn(inpaint_gateway::run(runner, listener, async {
        let _ = stopped.await;
    }));
    let ids: Vec<String> = outcomes
        .iter()
        .filter_map(|o| o.job.as_ref().map(|j| j.id.clone()))
        .collect();
    for id in &ids {
        let events = watch_all(&mut c, id).await;
        assert_eq!(
            events.last().unwrap().state(),
            JobState::Succeeded,
            "admitted job {id} finished"
        );
    }
    stop.send(()).unwrap();
    replica.await.unwrap().expect("replica stops cleanly");
    cluster.shutdown().await.expect("clean shutdown");
}

/// Entries claimed but not acknowledged by consumers whose name starts so.
async fn pending_of(conn: &mut redis::aio::MultiplexedConnection, consumer_prefix: &str) -> u64 {
    // XPENDING key group -> [count, first, last, [[consumer, count]...]]
    let reply: redis::Value = redis::cmd("XPENDING")
        .arg("inpaint:queue")
        .arg("runners")
        .query_async(conn)
        .await
        .unwrap();
    let redis::Value::Array(parts) = reply else {
        return 0;
    };
    let Some(redis::Value::Array(consumers)) = parts.get(3) else {
        return 0;
    };
    consumers
        .iter()
        .filter_map(|c| match c {
            redis::Value::Array(pair) => match (&pair[0], &pair[1]) {
                (redis::Value::BulkString(name), redis::Value::BulkString(n))
                    if name.starts_with(consumer_prefix.as_bytes()) =>
                {
                    String::from_utf8_lossy(n).parse::<u64>().ok()
                }
                _ => None,
            },
            _ => None,
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_dies_mid_batch_and_the_other_finishes_every_job_once() {
    let redis = start_redis();
    let mut config = cluster_config();
    config.jobs = JobSettings {
        redis_url: Some(redis.url.clone()),
        runners: 0,
        ..JobSettings::default()
    };
    let cluster = start_cluster_with(config).await;
    let replica = |name: &str, listener: &tokio::net::TcpListener| {
        let mut c = inpaint_gateway::Config::local(
            listener.local_addr().unwrap(),
            format!("http://{}", cluster.segmentation),
            format!("http://{}", cluster.mask),
            format!("http://{}", cluster.worker),
        );
        c.redis_url = Some(redis.url.clone());
        c.replica = Some(name.into());
        c.job_runners = 2;
        c.job_reclaim_secs = 2;
        c
    };
    let redis_client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut conn = redis_client
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let listener_a = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url_a = format!("http://{}", listener_a.local_addr().unwrap());
    let mut a = tokio::spawn(inpaint_gateway::run(
        replica("a-0", &listener_a),
        listener_a,
        std::future::pending(),
    ));

    // 200 jobs through replica A, 25 per call (a call carries every photo,
    // so it stays under the upload limit).
    let mut c = client(&url_a).await;
    let mut ids: Vec<String> = Vec::new();
    for chunk in 0..8 {
        let outcomes = c
            .submit_jobs(SubmitJobsRequest {
                jobs: (0..25)
                    .map(|i| photo_job(&format!("job-{}", chunk * 25 + i)))
                    .collect(),
            })
            .await
            .unwrap()
            .into_inner()
            .outcomes;
        ids.extend(
            outcomes
                .iter()
                .map(|o| o.job.as_ref().expect("admitted").id.clone()),
        );
    }

    // Stop A abruptly while its runners hold jobs (claimed, not acknowledged:
    // pending in the consumer group). Should it happen to be between jobs,
    // a fresh A takes the queue up and the stop is tried again.
    let mut held = 0;
    for attempt in 1..=5 {
        let started = Instant::now();
        while pending_of(&mut conn, "a-").await == 0
            || started.elapsed() < Duration::from_millis(300)
        {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "replica A never claimed a job"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        a.abort();
        let _ = a.await;
        held = pending_of(&mut conn, "a-").await;
        println!("attempt={attempt} held_by_dead_replica={held}");
        if held > 0 {
            break;
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        a = tokio::spawn(inpaint_gateway::run(
            replica(&format!("a-{attempt}"), &listener),
            listener,
            std::future::pending(),
        ));
    }
    assert!(held > 0, "A was never caught holding a job");

    // Replica B takes over the queue and the jobs A held.
    let listener_b = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url_b = format!("http://{}", listener_b.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let b = tokio::spawn(inpaint_gateway::run(
        replica("b", &listener_b),
        listener_b,
        async {
            let _ = stopped.await;
        },
    ));
    let mut c = client(&url_b).await;
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut finished: HashMap<String, usize> = HashMap::new();
    for id in &ids {
        let events = loop {
            let events = watch_all(&mut c, id).await;
            if events
                .last()
                .is_some_and(|e| e.state() == JobState::Succeeded)
                || Instant::now() > deadline
            {
                break events;
            }
        };
        let successes = events
            .iter()
            .filter(|e| e.state() == JobState::Succeeded)
            .count();
        finished.insert(id.clone(), successes);
        let result = c
            .get_result(GetResultRequest { id: id.clone() })
            .await
            .expect("result retrievable")
            .into_inner();
        assert!(!result.image.is_empty());
    }
    assert_eq!(finished.len(), 200);
    // Exactly once: one SUCCEEDED event per job, and one attempt to end it
    // as SUCCEEDED in its record (which counts refused attempts too, so a
    // job run by two replicas shows even though its second ending is
    // dropped).
    for (id, successes) in &finished {
        assert_eq!(*successes, 1, "job {id}: {successes} SUCCEEDED events");
        let attempts: Option<u32> = redis::cmd("HGET")
            .arg(format!("inpaint:job:{id}"))
            .arg("success_attempts")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            attempts,
            Some(1),
            "job {id} was run to success {attempts:?} times"
        );
    }
    // What A held was taken over.
    assert_eq!(
        pending_of(&mut conn, "a-").await,
        0,
        "jobs still stranded with the dead replica"
    );
    stop.send(()).unwrap();
    b.await.unwrap().expect("replica B stops cleanly");
    cluster.shutdown().await.expect("clean shutdown");
}

/// A job whose stage is busy (RESOURCE_EXHAUSTED with retry-after) waits and
/// tries again instead of failing: twelve jobs through four runners on a
/// mask service that takes one call at a time all succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_wait_out_a_busy_stage() {
    let mut config = cluster_config();
    config.mask_max_inflight = 1;
    let cluster = start_cluster_with(config).await;
    let url = cluster.gateway_url();
    let mut c = client(&url).await;
    let mut ids = vec![];
    for _ in 0..12 {
        ids.push(c.submit_job(photo_job("")).await.unwrap().into_inner().id);
    }
    for id in ids {
        let events = watch_all(&mut c, &id).await;
        let last = events.last().expect("events");
        assert_eq!(last.state(), JobState::Succeeded, "{}", last.error);
    }
    cluster.shutdown().await.expect("clean shutdown");
}
