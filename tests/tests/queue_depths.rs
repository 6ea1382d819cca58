//! The job queue's depths as runners see them (`inpaint_jobs_backlog`
//! waiting and claimed), from both stores: the in-memory one and a real
//! redis-server (its consumer group's lag and pending entries).

mod support;

use std::time::Duration;

use inpaint_gateway::jobs::memory::MemoryStore;
use inpaint_gateway::jobs::redis::RedisStore;
use inpaint_gateway::jobs::{JobStore, NewJob, QueueDepths};
use support::*;

async fn depths_follow_claims<S: JobStore>(store: &S) {
    assert_eq!(store.queue_depths().await.unwrap(), QueueDepths::default());
    for _ in 0..3 {
        let new = NewJob {
            traceparent: String::new(),
            input: vec![1, 2, 3],
            tenant: String::new(),
            idempotency_key: None,
            pixels: 100,
        };
        store.create(new).await.unwrap();
    }
    let waiting = |w, c| QueueDepths {
        waiting: w,
        claimed: c,
    };
    assert_eq!(store.queue_depths().await.unwrap(), waiting(3, 0));
    let claim = store
        .claim("runner-1", Duration::from_secs(1))
        .await
        .unwrap()
        .expect("a queued job");
    assert_eq!(store.queue_depths().await.unwrap(), waiting(2, 1));
    store.ack(&claim).await.unwrap();
    assert_eq!(store.queue_depths().await.unwrap(), waiting(2, 0));
}

#[tokio::test]
async fn in_memory() {
    depths_follow_claims(&MemoryStore::new(Duration::from_secs(60))).await;
}

#[tokio::test]
async fn in_redis() {
    let redis = start_redis();
    let store = RedisStore::connect(&redis.url, "depths", Duration::from_secs(60))
        .await
        .expect("redis store");
    depths_follow_claims(&store).await;
}
