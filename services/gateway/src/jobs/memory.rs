//! The in-memory job store: the embedded default (one process, nothing to
//! install). Same behaviour as the Redis store, minus surviving a restart.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use inpaint_proto::v1::{Job, JobEvent, JobState};
use tokio::sync::Notify;

use super::{
    Backlog, Claim, JobStore, NewJob, QueueDepths, StoreError, apply, event, is_final, new_id,
    now_ms,
};

struct Entry {
    job: Job,
    input: Vec<u8>,
    traceparent: String,
    result: Option<Vec<u8>>,
    events: Vec<JobEvent>,
    pixels: u64,
    expires: Instant,
    key: Option<String>,
}

#[derive(Default)]
struct State {
    jobs: HashMap<String, Entry>,
    by_key: HashMap<String, String>,
    queue: VecDeque<String>,
    /// Claimed jobs: consumer and when it last showed progress.
    claims: HashMap<String, (String, Instant)>,
    backlog: Backlog,
}

pub struct MemoryStore {
    state: Mutex<State>,
    ttl: Duration,
    queued: Notify,
    events: Notify,
}

impl MemoryStore {
    pub fn new(ttl: Duration) -> Self {
        Self {
            state: Mutex::new(State::default()),
            ttl,
            queued: Notify::new(),
            events: Notify::new(),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        expire(&mut state, Instant::now());
        f(&mut state)
    }
}

/// Drops jobs past their time to live.
fn expire(state: &mut State, now: Instant) {
    let gone: Vec<String> = state
        .jobs
        .iter()
        .filter(|(_, e)| e.expires <= now)
        .map(|(id, _)| id.clone())
        .collect();
    for id in gone {
        if let Some(entry) = state.jobs.remove(&id) {
            if let Some(key) = entry.key {
                state.by_key.remove(&key);
            }
            if !is_final(entry.job.state()) {
                state.backlog.jobs = state.backlog.jobs.saturating_sub(1);
                state.backlog.pixels = state.backlog.pixels.saturating_sub(entry.pixels);
            }
        }
        state.queue.retain(|q| *q != id);
        state.claims.remove(&id);
    }
}

/// Moves an entry by an event; returns false if the job had already ended.
fn record(state: &mut State, id: &str, mut e: JobEvent, ttl: Duration) -> bool {
    let Some(entry) = state.jobs.get_mut(id) else {
        return false;
    };
    if is_final(entry.job.state()) {
        return false;
    }
    e.sequence = entry.events.len() as u64 + 1;
    apply(&mut entry.job, &e);
    entry.events.push(e);
    entry.expires = Instant::now() + ttl;
    if is_final(entry.job.state()) {
        // The input is not needed any more; only the record and result stay.
        entry.input = Vec::new();
        let pixels = entry.pixels;
        state.backlog.jobs = state.backlog.jobs.saturating_sub(1);
        state.backlog.pixels = state.backlog.pixels.saturating_sub(pixels);
    }
    true
}

impl JobStore for MemoryStore {
    async fn create(&self, new: NewJob) -> Result<Job, StoreError> {
        let job = self.with(|state| {
            let known = new
                .idempotency_key
                .as_ref()
                .and_then(|k| state.by_key.get(k));
            if let Some(entry) = known.and_then(|id| state.jobs.get(id)) {
                let mut job = entry.job.clone();
                job.existing = true;
                return job;
            }
            let id = crate::auth::scoped(&new.tenant, &new_id());
            let now = now_ms();
            let mut job = Job {
                id: id.clone(),
                created_unix_ms: now,
                ..Default::default()
            };
            let first = event(&id, JobState::Queued, "queued");
            apply(&mut job, &first);
            let mut first = first;
            first.sequence = 1;
            if let Some(key) = &new.idempotency_key {
                state.by_key.insert(key.clone(), id.clone());
            }
            state.jobs.insert(
                id.clone(),
                Entry {
                    job: job.clone(),
                    input: new.input,
                    traceparent: new.traceparent,
                    result: None,
                    events: vec![first],
                    pixels: new.pixels,
                    expires: Instant::now() + self.ttl,
                    key: new.idempotency_key,
                },
            );
            state.backlog.jobs += 1;
            state.backlog.pixels += new.pixels;
            state.queue.push_back(id);
            job
        });
        self.queued.notify_one();
        self.events.notify_waiters();
        Ok(job)
    }

    async fn get(&self, id: &str) -> Result<Option<Job>, StoreError> {
        Ok(self.with(|s| s.jobs.get(id).map(|e| e.job.clone())))
    }

    async fn input(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.with(|s| s.jobs.get(id).map(|e| e.input.clone())))
    }

    async fn traceparent(&self, id: &str) -> Result<String, StoreError> {
        Ok(self.with(|s| {
            s.jobs
                .get(id)
                .map(|e| e.traceparent.clone())
                .unwrap_or_default()
        }))
    }

    async fn progress(&self, id: &str, e: JobEvent) -> Result<bool, StoreError> {
        let moved = self.with(|s| {
            if let Some((_, touched)) = s.claims.get_mut(id) {
                *touched = Instant::now();
            }
            record(s, id, e, self.ttl)
        });
        self.events.notify_waiters();
        Ok(moved)
    }

    async fn events_after(
        &self,
        id: &str,
        after: u64,
        wait: Duration,
    ) -> Result<Vec<JobEvent>, StoreError> {
        let deadline = Instant::now() + wait;
        loop {
            // Register before looking, so an event in between still wakes us.
            let woken = self.events.notified();
            let found = self.with(|s| {
                s.jobs.get(id).map(|e| {
                    e.events
                        .iter()
                        .filter(|ev| ev.sequence > after)
                        .cloned()
                        .collect::<Vec<_>>()
                })
            });
            match found {
                None => return Ok(vec![]),
                Some(events) if !events.is_empty() => return Ok(events),
                Some(_) => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, woken).await.is_err() {
                return Ok(vec![]);
            }
        }
    }

    async fn succeed(&self, id: &str, result: Vec<u8>) -> Result<bool, StoreError> {
        let done = self.with(|s| {
            let ended = s.jobs.get(id).is_none_or(|e| is_final(e.job.state()));
            if ended {
                return false;
            }
            if let Some(entry) = s.jobs.get_mut(id) {
                entry.result = Some(result);
            }
            record(s, id, event(id, JobState::Succeeded, "done"), self.ttl)
        });
        self.events.notify_waiters();
        Ok(done)
    }

    async fn result(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.with(|s| s.jobs.get(id).and_then(|e| e.result.clone())))
    }

    async fn cancel(&self, id: &str) -> Result<Option<Job>, StoreError> {
        let job = self.with(|s| {
            let queued = s.queue.iter().any(|q| q == id);
            let entry = s.jobs.get_mut(id)?;
            // An ended job stays as it ended.
            if is_final(entry.job.state()) {
                return Some(entry.job.clone());
            }
            entry.job.cancel_requested = true;
            if queued {
                s.queue.retain(|q| q != id);
                record(s, id, event(id, JobState::Cancelled, "cancelled"), self.ttl);
            }
            s.jobs.get(id).map(|e| e.job.clone())
        });
        self.events.notify_waiters();
        Ok(job)
    }

    async fn claim(&self, consumer: &str, wait: Duration) -> Result<Option<Claim>, StoreError> {
        let deadline = Instant::now() + wait;
        loop {
            let woken = self.queued.notified();
            let claimed = self.with(|s| {
                let id = s.queue.pop_front()?;
                s.claims
                    .insert(id.clone(), (consumer.to_string(), Instant::now()));
                Some(Claim {
                    delivery: id.clone(),
                    job_id: id,
                })
            });
            if claimed.is_some() {
                return Ok(claimed);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, woken).await.is_err() {
                return Ok(None);
            }
        }
    }

    async fn reclaim(&self, consumer: &str, idle: Duration) -> Result<Vec<Claim>, StoreError> {
        Ok(self.with(|s| {
            let now = Instant::now();
            let stale: Vec<String> = s
                .claims
                .iter()
                .filter(|(_, (owner, touched))| {
                    owner != consumer && now.duration_since(*touched) >= idle
                })
                .map(|(id, _)| id.clone())
                .collect();
            stale
                .into_iter()
                .map(|id| {
                    s.claims.insert(id.clone(), (consumer.to_string(), now));
                    Claim {
                        delivery: id.clone(),
                        job_id: id,
                    }
                })
                .collect()
        }))
    }

    async fn ack(&self, claim: &Claim) -> Result<(), StoreError> {
        self.with(|s| s.claims.remove(&claim.delivery));
        Ok(())
    }

    async fn touch(&self, claim: &Claim, consumer: &str) -> Result<(), StoreError> {
        self.with(|s| {
            s.claims.insert(
                claim.delivery.clone(),
                (consumer.to_string(), Instant::now()),
            )
        });
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn backlog(&self) -> Result<Backlog, StoreError> {
        Ok(self.with(|s| s.backlog))
    }

    async fn queue_depths(&self) -> Result<QueueDepths, StoreError> {
        Ok(self.with(|s| QueueDepths {
            waiting: s.queue.len() as u64,
            claimed: s.claims.len() as u64,
        }))
    }
}
