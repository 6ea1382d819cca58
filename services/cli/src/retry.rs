//! Riding out a gateway or job store that is briefly away: calls that fail
//! with UNAVAILABLE (which is also how a refused or broken connection shows)
//! are tried again with backoff, honouring the server's `retry-after`, for
//! a bounded time; a job's events are followed again from the last sequence
//! seen.

use std::time::Duration;

use anyhow::bail;
use inpaint_gateway::jobs::is_final;
use inpaint_proto::v1::inpainting_client::InpaintingClient;
use inpaint_proto::v1::{JobEvent, WatchJobRequest};
use tokio::time::Instant;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// How long `inpaint batch` and `inpaint job watch` keep retrying by default.
pub const DEFAULT_PATIENCE: Duration = Duration::from_secs(120);

/// The seconds a status asks the client to wait (`retry-after` metadata).
pub fn retry_after(status: &Status) -> Option<Duration> {
    status
        .metadata()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .map(Duration::from_secs)
}

/// Failures that go away by themselves: the gateway or its store is
/// restarting, or the connection broke (tonic reports a refused connection
/// as UNAVAILABLE, but a connection cut under a stream as UNKNOWN with a
/// transport or h2 message).
pub fn is_transient(status: &Status) -> bool {
    match status.code() {
        Code::Unavailable => true,
        Code::Unknown => {
            let m = status.message();
            m.contains("transport") || m.contains("h2 protocol") || m.contains("connection")
        }
        _ => false,
    }
}

/// Counts one outage: the time since the first failure is bounded by the
/// patience; a success in between starts a new outage.
#[derive(Debug)]
pub struct Retrier {
    gateway: String,
    patience: Duration,
    outage_since: Option<Instant>,
    failures: u32,
}

impl Retrier {
    pub fn new(gateway: &str, patience: Duration) -> Self {
        Self {
            gateway: gateway.to_string(),
            patience,
            outage_since: None,
            failures: 0,
        }
    }

    /// The last call worked.
    pub fn succeeded(&mut self) {
        self.outage_since = None;
        self.failures = 0;
    }

    /// The pause before the next try after `status`: the server's
    /// retry-after when it gave one, else 250 ms doubling up to 5 s.
    /// Fails, naming the gateway, once the outage outlasted the patience.
    pub fn pause(&mut self, status: &Status) -> anyhow::Result<Duration> {
        let since = *self.outage_since.get_or_insert_with(Instant::now);
        self.failures += 1;
        let waited = since.elapsed();
        if waited >= self.patience {
            bail!(
                "the gateway at {} has been unavailable for {}s (giving up after {}s): {}",
                self.gateway,
                waited.as_secs(),
                self.patience.as_secs(),
                status.message()
            );
        }
        let pause = retry_after(status).unwrap_or(inpaint_common::backoff::delay(self.failures));
        Ok(pause.min(self.patience.saturating_sub(waited)))
    }

    /// Waits as `pause` says, or fails.
    pub async fn wait(&mut self, status: &Status) -> anyhow::Result<()> {
        let pause = self.pause(status)?;
        tokio::time::sleep(pause).await;
        Ok(())
    }
}

/// Follows a job's events until it ends, calling `on_event` for each one
/// once, and returns the final event. A dropped stream (the gateway went
/// away) is resumed from the last sequence seen, on whichever replica the
/// channel reaches next.
pub async fn follow_job(
    client: &mut InpaintingClient<Channel>,
    retrier: &mut Retrier,
    id: &str,
    mut on_event: impl FnMut(&JobEvent),
) -> anyhow::Result<JobEvent> {
    let mut after = 0u64;
    loop {
        let request = WatchJobRequest {
            id: id.to_string(),
            after_sequence: after,
        };
        let mut events = match client.watch_job(crate::client::authed(request)).await {
            Ok(stream) => stream.into_inner(),
            Err(status) if is_transient(&status) => {
                retrier.wait(&status).await?;
                continue;
            }
            Err(status) => bail!("cannot watch job {id}: {}", status.message()),
        };
        loop {
            match events.message().await {
                Ok(Some(e)) => {
                    retrier.succeeded();
                    after = after.max(e.sequence);
                    on_event(&e);
                    if is_final(e.state()) {
                        return Ok(e);
                    }
                }
                // The stream ended before the job did: its gateway stopped.
                Ok(None) => {
                    retrier
                        .wait(&Status::unavailable("the event stream ended early"))
                        .await?;
                    break;
                }
                Err(status) if is_transient(&status) => {
                    retrier.wait(&status).await?;
                    break;
                }
                Err(status) => bail!("watching job {id}: {}", status.message()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_honours_retry_after() {
        let mut r = Retrier::new("http://g", Duration::from_secs(60));
        let plain = Status::unavailable("down");
        let pauses: Vec<u128> = (0..7)
            .map(|_| r.pause(&plain).unwrap().as_millis())
            .collect();
        assert_eq!(pauses, [250, 500, 1000, 2000, 4000, 5000, 5000]);
        let told = inpaint_common::status::unavailable("store down", 3);
        assert_eq!(r.pause(&told).unwrap(), Duration::from_secs(3));
        r.succeeded();
        assert_eq!(r.pause(&plain).unwrap(), Duration::from_millis(250));
    }

    #[test]
    fn gives_up_after_the_patience_naming_the_gateway() {
        let mut r = Retrier::new("http://gw:1", Duration::ZERO);
        let err = r.pause(&Status::unavailable("refused")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("http://gw:1"), "{text}");
        assert!(text.contains("refused"), "{text}");
    }

    #[test]
    fn only_unavailable_is_transient() {
        assert!(is_transient(&Status::unavailable("x")));
        assert!(!is_transient(&Status::invalid_argument("x")));
        assert!(!is_transient(&Status::not_found("x")));
        assert!(is_transient(&Status::unknown("transport error")));
        assert!(!is_transient(&Status::unknown("the model crashed")));
    }
}
