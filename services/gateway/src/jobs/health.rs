//! The gateway's health follows its job store: while Redis does not answer,
//! the job API cannot work, so health says NOT_SERVING (a Kubernetes
//! readiness probe then takes the pod out of rotation) until it answers
//! again.

use std::sync::Arc;
use std::time::Duration;

use inpaint_common::health::{HealthReporter, ServingStatus};
use tokio::sync::watch;

use super::JobStore;

/// How often the store is pinged, and how long a ping may take.
pub const PING_EVERY: Duration = Duration::from_secs(1);
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// Pings the store until `stop` turns true, setting `services` (and the
/// server's overall status, "") SERVING or NOT_SERVING with it.
pub async fn follow_store<S: JobStore>(
    store: Arc<S>,
    reporter: HealthReporter,
    services: Vec<&'static str>,
    mut stop: watch::Receiver<bool>,
) {
    let mut up = true;
    loop {
        let answered = matches!(
            tokio::time::timeout(PING_TIMEOUT, store.ping()).await,
            Ok(Ok(()))
        );
        if answered != up {
            up = answered;
            if up {
                tracing::info!("job store reachable again: SERVING");
            } else {
                tracing::warn!("job store unreachable: NOT_SERVING until it answers");
            }
            let status = if up {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            for name in std::iter::once("").chain(services.iter().copied()) {
                reporter.set_service_status(name, status).await;
            }
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(PING_EVERY) => {}
        }
    }
}
