//! The Redis job store, shared by every gateway replica.
//!
//! Keys (all under a prefix, all expiring after the job's time to live):
//! `job:ID` hash (the record), `input:ID` and `result:ID` blobs, `events:ID`
//! stream (entry ids `0-SEQ`, so a watcher resumes from a sequence number),
//! `key:KEY` idempotency key -> id. The work queue is one stream, `queue`,
//! read by the consumer group `runners`; a job claimed by a replica that
//! died is taken over by another through XAUTOCLAIM. State changes run as
//! Lua scripts, so a job ends exactly once whoever races to end it.
//!
//! Blocking reads use their own connection per consumer with a response
//! timeout above the BLOCK time (a ConnectionManager gives up after 500 ms,
//! which would abandon the read and strand its entry).
//!
//! Recovery from a Redis restart: the ConnectionManager reconnects by
//! itself, but a plain connection never does, so a blocking connection is
//! dropped after any error and rebuilt on the next claim. A Redis that came
//! back without persistence has lost the consumer group: a NOGROUP answer
//! recreates it and the read is tried again.

use std::collections::HashMap;
use std::time::Duration;

use inpaint_proto::v1::{Job, JobEvent, JobState};
use redis::IntoConnectionInfo;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Client, Script, Value};
use tokio::sync::Mutex;

use super::{Backlog, Claim, JobStore, NewJob, QueueDepths, StoreError, event, new_id, now_ms};

const GROUP: &str = "runners";

pub struct RedisStore {
    client: Client,
    conn: ConnectionManager,
    prefix: String,
    ttl: Duration,
    blocking: Mutex<HashMap<String, MultiplexedConnection>>,
    progress: Script,
    cancel: Script,
}

/// Moves a job by an event unless it already ended. KEYS: job, events,
/// backlog jobs, backlog pixels, input (deleted once the job ends). ARGV: state, stage, done, total, error,
/// unix ms, ttl ms, result key ('' for none), result bytes, region, step, steps. Returns the new
/// sequence number, or 0 when the job had ended or is gone. Every attempt to
/// end a job as SUCCEEDED is counted in its record (`success_attempts`), the
/// refused ones too, so a job run twice shows.
const PROGRESS: &str = r#"
local state = tonumber(redis.call('HGET', KEYS[1], 'state') or '0')
if state ~= 0 and tonumber(ARGV[1]) == 3 then redis.call('HINCRBY', KEYS[1], 'success_attempts', 1) end
if state == 0 or state >= 3 then return 0 end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'stage', ARGV[2], 'updated', ARGV[6])
if tonumber(ARGV[4]) > 0 then redis.call('HSET', KEYS[1], 'done', ARGV[3], 'total', ARGV[4]) end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[5]) end
redis.call('XADD', KEYS[2], '0-' .. seq, 'state', ARGV[1], 'stage', ARGV[2], 'done', ARGV[3], 'total', ARGV[4], 'error', ARGV[5], 'ms', ARGV[6], 'region', ARGV[10], 'step', ARGV[11], 'steps', ARGV[12])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
if ARGV[8] ~= '' then redis.call('SET', ARGV[8], ARGV[9], 'PX', ARGV[7]) end
if tonumber(ARGV[1]) >= 3 then
  redis.call('DEL', KEYS[5])
  redis.call('DECRBY', KEYS[3], 1)
  redis.call('DECRBY', KEYS[4], tonumber(redis.call('HGET', KEYS[1], 'pixels') or '0'))
end
return seq
"#;

/// Flags a job for cancellation, unless it has ended (states 3 to 5:
/// succeeded, failed, cancelled). KEYS: job. Returns its state.
const CANCEL: &str = r#"
local state = tonumber(redis.call('HGET', KEYS[1], 'state') or '0')
if state == 0 then return 0 end
if state < 3 then redis.call('HSET', KEYS[1], 'cancel', 1) end
return state
"#;

/// A Redis client for `url`, with `password` when given (it overrides one
/// in the URL, so the URL can sit in plain configuration and the password
/// in a Secret), and for `rediss://` a server certificate that chains to
/// the PEM CA at `ca` (None: the system's roots).
pub fn client(
    url: &str,
    password: Option<&str>,
    ca: Option<&std::path::Path>,
) -> Result<Client, StoreError> {
    let mut info = url.into_connection_info()?;
    if let Some(password) = password {
        let settings = info.redis_settings().clone().set_password(password);
        info = info.set_redis_settings(settings);
    }
    if !url.starts_with("rediss://") {
        return Ok(Client::open(info)?);
    }
    let root_cert = match ca {
        Some(path) => Some(std::fs::read(path).map_err(|e| {
            StoreError::Backend(format!("cannot read the Redis CA {}: {e}", path.display()))
        })?),
        None => None,
    };
    let certificates = redis::TlsCertificates {
        client_tls: None,
        root_cert,
    };
    Ok(Client::build_with_tls(info, certificates)?)
}

impl RedisStore {
    pub async fn connect(url: &str, prefix: &str, ttl: Duration) -> Result<Self, StoreError> {
        Self::connect_client(Client::open(url)?, prefix, ttl).await
    }

    /// As `connect`, with a client made by `client`.
    pub async fn connect_client(
        client: Client,
        prefix: &str,
        ttl: Duration,
    ) -> Result<Self, StoreError> {
        let config =
            ConnectionManagerConfig::new().set_response_timeout(Some(Duration::from_secs(10)));
        let mut conn = client.get_connection_manager_with_config(config).await?;
        create_group(&mut conn, &format!("{prefix}:queue")).await?;
        Ok(Self {
            client,
            conn,
            prefix: prefix.to_string(),
            ttl,
            blocking: Mutex::new(HashMap::new()),
            progress: Script::new(PROGRESS),
            cancel: Script::new(CANCEL),
        })
    }

    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}:{kind}:{id}", self.prefix)
    }

    fn queue(&self) -> String {
        format!("{}:queue", self.prefix)
    }

    fn ttl_ms(&self) -> u64 {
        self.ttl.as_millis() as u64
    }

    async fn blocking_conn(
        &self,
        consumer: &str,
        wait: Duration,
    ) -> Result<MultiplexedConnection, redis::RedisError> {
        let mut conns = self.blocking.lock().await;
        if let Some(c) = conns.get(consumer) {
            return Ok(c.clone());
        }
        let config =
            AsyncConnectionConfig::new().set_response_timeout(Some(wait + Duration::from_secs(5)));
        let conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        conns.insert(consumer.to_string(), conn.clone());
        Ok(conn)
    }

    /// Forgets a consumer's blocking connection, so the next claim opens a
    /// fresh one (a plain connection stays broken after Redis restarts).
    async fn drop_blocking_conn(&self, consumer: &str) {
        self.blocking.lock().await.remove(consumer);
    }

    /// Recreates the consumer group after a NOGROUP answer (Redis restarted
    /// without its data).
    async fn recreate_group(&self) -> Result<(), StoreError> {
        tracing::warn!("the job queue's consumer group is gone (Redis restarted?): recreating it");
        let mut conn = self.conn.clone();
        create_group(&mut conn, &self.queue()).await
    }

    async fn read_group(&self, consumer: &str, wait: Duration) -> Result<Value, redis::RedisError> {
        let mut conn = self.blocking_conn(consumer, wait).await?;
        let read = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(wait.as_millis() as u64)
            .arg("STREAMS")
            .arg(self.queue())
            .arg(">")
            .query_async(&mut conn)
            .await;
        if read.is_err() {
            self.drop_blocking_conn(consumer).await;
        }
        read
    }

    async fn run_progress(
        &self,
        id: &str,
        e: &JobEvent,
        result: Option<&[u8]>,
    ) -> Result<u64, StoreError> {
        let mut conn = self.conn.clone();
        let result_key = if result.is_some() {
            self.key("result", id)
        } else {
            String::new()
        };
        let seq: u64 = self
            .progress
            .key(self.key("job", id))
            .key(self.key("events", id))
            .key(format!("{}:backlog:jobs", self.prefix))
            .key(format!("{}:backlog:pixels", self.prefix))
            .key(self.key("input", id))
            .arg(e.state)
            .arg(&e.stage)
            .arg(e.regions_done)
            .arg(e.regions_total)
            .arg(&e.error)
            .arg(e.unix_ms)
            .arg(self.ttl_ms())
            .arg(result_key)
            .arg(result.unwrap_or_default())
            .arg(e.region)
            .arg(e.step)
            .arg(e.steps)
            .invoke_async(&mut conn)
            .await?;
        Ok(seq)
    }
}

/// Creates the queue stream and its consumer group unless they exist.
async fn create_group(conn: &mut ConnectionManager, queue: &str) -> Result<(), StoreError> {
    let created: Result<(), redis::RedisError> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(queue)
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match created {
        Ok(()) => Ok(()),
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn is_nogroup(e: &redis::RedisError) -> bool {
    e.code() == Some("NOGROUP")
}

fn field(map: &HashMap<String, Value>, name: &str) -> String {
    match map.get(name) {
        Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(Value::SimpleString(s)) => s.clone(),
        Some(Value::Int(i)) => i.to_string(),
        _ => String::new(),
    }
}

fn number<T: std::str::FromStr + Default>(map: &HashMap<String, Value>, name: &str) -> T {
    field(map, name).parse().unwrap_or_default()
}

fn job_from(id: &str, map: &HashMap<String, Value>) -> Job {
    Job {
        id: id.to_string(),
        state: number(map, "state"),
        stage: field(map, "stage"),
        regions_done: number(map, "done"),
        regions_total: number(map, "total"),
        error: field(map, "error"),
        cancel_requested: field(map, "cancel") == "1",
        created_unix_ms: number(map, "created"),
        updated_unix_ms: number(map, "updated"),
        existing: false,
    }
}

/// Stream entries as (id, fields).
fn entries(value: Value) -> Vec<(String, HashMap<String, Value>)> {
    let Value::Array(items) = value else {
        return vec![];
    };
    items
        .into_iter()
        .filter_map(|item| {
            let Value::Array(mut parts) = item else {
                return None;
            };
            if parts.len() != 2 {
                return None;
            }
            let fields = parts.pop()?;
            let id = match parts.pop()? {
                Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
                Value::SimpleString(s) => s,
                _ => return None,
            };
            let Value::Array(flat) = fields else {
                return Some((id, HashMap::new()));
            };
            let mut map = HashMap::new();
            for pair in flat.chunks(2) {
                if let [Value::BulkString(k), v] = pair {
                    map.insert(String::from_utf8_lossy(k).into_owned(), v.clone());
                }
            }
            Some((id, map))
        })
        .collect()
}

impl JobStore for RedisStore {
    async fn create(&self, new: NewJob) -> Result<Job, StoreError> {
        let mut conn = self.conn.clone();
        let id = crate::auth::scoped(&new.tenant, &new_id());
        if let Some(key) = &new.idempotency_key {
            let fresh: Option<String> = redis::cmd("SET")
                .arg(self.key("key", key))
                .arg(&id)
                .arg("NX")
                .arg("GET")
                .arg("PX")
                .arg(self.ttl_ms())
                .query_async(&mut conn)
                .await?;
            if let Some(existing) = fresh {
                if let Some(mut job) = self.get(&existing).await? {
                    job.existing = true;
                    return Ok(job);
                }
                // The key outlived its job: take it over.
                redis::cmd("SET")
                    .arg(self.key("key", key))
                    .arg(&id)
                    .arg("PX")
                    .arg(self.ttl_ms())
                    .query_async::<()>(&mut conn)
                    .await?;
            }
        }
        let first = event(&id, JobState::Queued, "queued");
        let now = now_ms();
        let ttl = self.ttl_ms();
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HSET")
            .arg(self.key("job", &id))
            .arg(&[
                ("state", (JobState::Queued as i32).to_string()),
                ("stage", "queued".into()),
                ("seq", "1".into()),
            ])
            .arg(&[
                ("created", now.to_string()),
                ("updated", now.to_string()),
                ("pixels", new.pixels.to_string()),
                ("trace", new.traceparent.clone()),
            ])
            .ignore()
            .cmd("PEXPIRE")
            .arg(self.key("job", &id))
            .arg(ttl)
            .ignore()
            .cmd("SET")
            .arg(self.key("input", &id))
            .arg(&new.input)
            .arg("PX")
            .arg(ttl)
            .ignore()
            .cmd("XADD")
            .arg(self.key("events", &id))
            .arg("0-1")
            .arg(&[
                ("state", first.state.to_string()),
                ("stage", first.stage.clone()),
                ("done", "0".into()),
            ])
            .arg(&[
                ("total", "0".to_string()),
                ("error", String::new()),
                ("ms", first.unix_ms.to_string()),
            ])
            .ignore()
            .cmd("PEXPIRE")
            .arg(self.key("events", &id))
            .arg(ttl)
            .ignore()
            .cmd("INCRBY")
            .arg(format!("{}:backlog:jobs", self.prefix))
            .arg(1)
            .ignore()
            .cmd("INCRBY")
            .arg(format!("{}:backlog:pixels", self.prefix))
            .arg(new.pixels)
            .ignore()
            .cmd("XADD")
            .arg(self.queue())
            .arg("*")
            .arg("id")
            .arg(&id)
            .ignore();
        pipe.query_async::<()>(&mut conn).await?;
        Ok(Job {
            id,
            state: JobState::Queued as i32,
            stage: "queued".into(),
            created_unix_ms: now,
            updated_unix_ms: now,
            ..Default::default()
        })
    }

    async fn get(&self, id: &str) -> Result<Option<Job>, StoreError> {
        let mut conn = self.conn.clone();
        let map: HashMap<String, Value> = redis::cmd("HGETALL")
            .arg(self.key("job", id))
            .query_async(&mut conn)
            .await?;
        Ok((!map.is_empty()).then(|| job_from(id, &map)))
    }

    async fn traceparent(&self, id: &str) -> Result<String, StoreError> {
        let mut conn = self.conn.clone();
        let found: Option<String> = redis::cmd("HGET")
            .arg(self.key("job", id))
            .arg("trace")
            .query_async(&mut conn)
            .await?;
        Ok(found.unwrap_or_default())
    }

    async fn input(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("GET")
            .arg(self.key("input", id))
            .query_async(&mut conn)
            .await?)
    }

    async fn progress(&self, id: &str, e: JobEvent) -> Result<bool, StoreError> {
        Ok(self.run_progress(id, &e, None).await? > 0)
    }

    async fn events_after(
        &self,
        id: &str,
        after: u64,
        wait: Duration,
    ) -> Result<Vec<JobEvent>, StoreError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let mut conn = self.conn.clone();
            let raw: Value = redis::cmd("XRANGE")
                .arg(self.key("events", id))
                .arg(format!("0-{}", after + 1))
                .arg("+")
                .query_async(&mut conn)
                .await?;
            let events: Vec<JobEvent> = entries(raw)
                .into_iter()
                .map(|(entry, f)| JobEvent {
                    job_id: id.to_string(),
                    sequence: entry
                        .strip_prefix("0-")
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0),
                    state: number(&f, "state"),
                    stage: field(&f, "stage"),
                    regions_done: number(&f, "done"),
                    region: number(&f, "region"),
                    step: number(&f, "step"),
                    steps: number(&f, "steps"),
                    regions_total: number(&f, "total"),
                    error: field(&f, "error"),
                    unix_ms: number(&f, "ms"),
                })
                .collect();
            if !events.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(events);
            }
            // Watchers poll; blocking reads would each need a connection.
            tokio::time::sleep(
                Duration::from_millis(100).min(deadline - tokio::time::Instant::now()),
            )
            .await;
        }
    }

    async fn succeed(&self, id: &str, result: Vec<u8>) -> Result<bool, StoreError> {
        let e = event(id, JobState::Succeeded, "done");
        Ok(self.run_progress(id, &e, Some(&result)).await? > 0)
    }

    async fn result(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("GET")
            .arg(self.key("result", id))
            .query_async(&mut conn)
            .await?)
    }

    async fn cancel(&self, id: &str) -> Result<Option<Job>, StoreError> {
        let mut conn = self.conn.clone();
        let state: i32 = self
            .cancel
            .key(self.key("job", id))
            .invoke_async(&mut conn)
            .await?;
        if state == 0 {
            return Ok(None);
        }
        if state == JobState::Queued as i32 {
            // Not started: it ends now; the runner that later claims it skips it.
            self.progress(id, event(id, JobState::Cancelled, "cancelled"))
                .await?;
        }
        self.get(id).await
    }

    async fn claim(&self, consumer: &str, wait: Duration) -> Result<Option<Claim>, StoreError> {
        let raw = match self.read_group(consumer, wait).await {
            Ok(raw) => raw,
            Err(e) if is_nogroup(&e) => {
                self.recreate_group().await?;
                self.read_group(consumer, wait).await?
            }
            Err(e) => return Err(e.into()),
        };
        // [[queue, [[entry, [id, JOB]]]]] or nil.
        let Value::Array(streams) = raw else {
            return Ok(None);
        };
        let Some(Value::Array(stream)) = streams.into_iter().next() else {
            return Ok(None);
        };
        let Some(items) = stream.into_iter().nth(1) else {
            return Ok(None);
        };
        Ok(entries(items)
            .into_iter()
            .next()
            .map(|(delivery, f)| Claim {
                job_id: field(&f, "id"),
                delivery,
            }))
    }

    async fn reclaim(&self, consumer: &str, idle: Duration) -> Result<Vec<Claim>, StoreError> {
        let autoclaim = || {
            let mut conn = self.conn.clone();
            async move {
                redis::cmd("XAUTOCLAIM")
                    .arg(self.queue())
                    .arg(GROUP)
                    .arg(consumer)
                    .arg(idle.as_millis() as u64)
                    .arg("0-0")
                    .arg("COUNT")
                    .arg(16)
                    .query_async::<Value>(&mut conn)
                    .await
            }
        };
        let raw = match autoclaim().await {
            Ok(raw) => raw,
            Err(e) if is_nogroup(&e) => {
                self.recreate_group().await?;
                autoclaim().await?
            }
            Err(e) => return Err(e.into()),
        };
        // [next-cursor, [[entry, [id, JOB]]...], [deleted...]]
        let Value::Array(parts) = raw else {
            return Ok(vec![]);
        };
        let Some(claimed) = parts.into_iter().nth(1) else {
            return Ok(vec![]);
        };
        Ok(entries(claimed)
            .into_iter()
            .map(|(delivery, f)| Claim {
                job_id: field(&f, "id"),
                delivery,
            })
            .collect())
    }

    async fn ack(&self, claim: &Claim) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        redis::pipe()
            .cmd("XACK")
            .arg(self.queue())
            .arg(GROUP)
            .arg(&claim.delivery)
            .ignore()
            .cmd("XDEL")
            .arg(self.queue())
            .arg(&claim.delivery)
            .ignore()
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    async fn touch(&self, claim: &Claim, consumer: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        redis::cmd("XCLAIM")
            .arg(self.queue())
            .arg(GROUP)
            .arg(consumer)
            .arg(0)
            .arg(&claim.delivery)
            .arg("JUSTID")
            .query_async::<Value>(&mut conn)
            .await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        redis::cmd("PING").query_async::<()>(&mut conn).await?;
        Ok(())
    }

    async fn backlog(&self) -> Result<Backlog, StoreError> {
        let mut conn = self.conn.clone();
        let (jobs, pixels): (Option<i64>, Option<i64>) = redis::pipe()
            .cmd("GET")
            .arg(format!("{}:backlog:jobs", self.prefix))
            .cmd("GET")
            .arg(format!("{}:backlog:pixels", self.prefix))
            .query_async(&mut conn)
            .await?;
        Ok(Backlog {
            jobs: jobs.unwrap_or(0).max(0) as u64,
            pixels: pixels.unwrap_or(0).max(0) as u64,
        })
    }

    /// From the consumer group: `lag` (entries never delivered) and
    /// `pending` (delivered, not acknowledged).
    async fn queue_depths(&self) -> Result<QueueDepths, StoreError> {
        let mut conn = self.conn.clone();
        let groups: Vec<HashMap<String, redis::Value>> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(self.queue())
            .query_async(&mut conn)
            .await?;
        let number = |v: Option<&redis::Value>| match v {
            Some(redis::Value::Int(n)) => (*n).max(0) as u64,
            _ => 0,
        };
        let group = groups.iter().find(
            |g| matches!(g.get("name"), Some(redis::Value::BulkString(n)) if n == GROUP.as_bytes()),
        );
        Ok(group.map_or_else(QueueDepths::default, |g| QueueDepths {
            waiting: number(g.get("lag")),
            claimed: number(g.get("pending")),
        }))
    }
}
