//! gRPC health as every service starts it: NOT_SERVING, for the service
//! and for the server as a whole (""), until the service says it is ready
//! (its models loaded, say). Re-exported so services share one
//! tonic-health version.

use tonic::server::NamedService;
pub use tonic_health::ServingStatus;
use tonic_health::pb::health_server::HealthServer;
pub use tonic_health::server::{HealthReporter, HealthService};

/// A server's health while it starts (see `not_serving_yet`).
#[derive(Clone)]
pub struct Startup {
    reporter: HealthReporter,
    service: &'static str,
}

/// The health service to add to a server of `S`, answering NOT_SERVING
/// until `Startup::ready`.
pub async fn not_serving_yet<S: NamedService>() -> (Startup, HealthServer<HealthService>) {
    let reporter = HealthReporter::new();
    let health = HealthServer::new(HealthService::from_health_reporter(reporter.clone()));
    reporter.set_not_serving::<S>().await;
    reporter
        .set_service_status("", ServingStatus::NotServing)
        .await;
    let startup = Startup {
        reporter,
        service: S::NAME,
    };
    (startup, health)
}

impl Startup {
    /// The service and the server are SERVING.
    pub async fn ready(&self) {
        for name in [self.service, ""] {
            self.reporter
                .set_service_status(name, ServingStatus::Serving)
                .await;
        }
    }

    /// For entries of their own (a model's, a store's).
    pub fn reporter(&self) -> &HealthReporter {
        &self.reporter
    }
}

#[cfg(test)]
mod tests {
    use tonic::Request;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_server::Health;

    use super::*;

    /// A named service, as a server of it would be.
    struct Named;
    impl NamedService for Named {
        const NAME: &'static str = "test.v1.Named";
    }

    async fn status(startup: &Startup, service: &str) -> i32 {
        let health = HealthService::from_health_reporter(startup.reporter().clone());
        let request = Request::new(HealthCheckRequest {
            service: service.into(),
        });
        health.check(request).await.unwrap().into_inner().status
    }

    #[tokio::test]
    async fn not_serving_until_ready() {
        let (startup, _server) = not_serving_yet::<Named>().await;
        for name in [Named::NAME, ""] {
            assert_eq!(
                status(&startup, name).await,
                ServingStatus::NotServing as i32
            );
        }
        startup.ready().await;
        for name in [Named::NAME, ""] {
            assert_eq!(status(&startup, name).await, ServingStatus::Serving as i32);
        }
    }
}
