//! Client-side balancing across every address a name resolves to.
//!
//! Kubernetes Services balance connections, not gRPC calls: one HTTP/2
//! connection to a ClusterIP carries every call to one pod. With a headless
//! Service the name resolves to every ready pod; this channel re-resolves it
//! periodically and spreads calls over all of them (tower's power-of-two
//! choices), adding and dropping pods as they come and go.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use tonic::transport::channel::Change;
use tonic::transport::{Channel, Uri};

/// Settings for every endpoint behind a balanced channel.
#[derive(Debug, Clone, Copy)]
pub struct EndpointSettings {
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    pub refresh: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum BalanceError {
    #[error("invalid service URL {url:?}: {reason}")]
    Url { url: String, reason: String },
}

/// A channel to `url` (`http://host:port`, or several separated by commas)
/// balanced over every address each host resolves to, refreshed every
/// `settings.refresh`: one name on Kubernetes (a headless Service), or a
/// list of replicas on one machine (`make cluster`). Must be called inside
/// a tokio runtime; the refresh task ends when the channel is dropped.
pub fn dns_balanced(url: &str, settings: EndpointSettings) -> Result<Channel, BalanceError> {
    let bad = |reason: &str| BalanceError::Url {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let mut targets = Vec::new();
    for one in url.split(',').map(str::trim) {
        let uri: Uri = one.parse().map_err(|_| bad("not a URI"))?;
        let host = uri
            .host()
            .ok_or_else(|| bad("no host"))?
            .trim_matches(['[', ']'])
            .to_string();
        let port = uri.port_u16().ok_or_else(|| bad("no port"))?;
        let scheme = uri.scheme_str().unwrap_or("http").to_string();
        targets.push((scheme, host, port));
    }

    let (channel, changes) = Channel::balance_channel::<SocketAddr>(64);
    tokio::spawn(async move {
        let mut current: HashSet<SocketAddr> = HashSet::new();
        loop {
            let mut found = HashSet::new();
            let mut resolved_all = true;
            for (_, host, port) in &targets {
                match tokio::net::lookup_host((host.as_str(), *port)).await {
                    Ok(addrs) => found.extend(addrs),
                    Err(err) => {
                        // Keep what we have; a DNS hiccup must not drop
                        // healthy pods.
                        tracing::warn!(%host, %err, "cannot resolve");
                        resolved_all = false;
                    }
                }
            }
            if resolved_all {
                for gone in current.difference(&found) {
                    tracing::info!(addr = %gone, "endpoint removed");
                    if changes.send(Change::Remove(*gone)).await.is_err() {
                        return;
                    }
                }
            }
            for new in found.difference(&current) {
                let scheme = &targets[0].0;
                let endpoint = crate::serve::endpoint(&format!("{scheme}://{new}"))
                    .expect("socket address makes a valid URI")
                    .timeout(settings.request_timeout)
                    .connect_timeout(settings.connect_timeout);
                tracing::debug!(addr = %new, "endpoint added");
                if changes.send(Change::Insert(*new, endpoint)).await.is_err() {
                    return;
                }
            }
            if resolved_all {
                current = found;
            } else {
                current.extend(found);
            }
            tokio::select! {
                _ = tokio::time::sleep(settings.refresh) => {}
                _ = changes.closed() => return,
            }
        }
    });
    Ok(channel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_health::ServingStatus;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    /// A health server whose service "x" reports `status`; its port.
    async fn server(status: ServingStatus) -> u16 {
        let (reporter, service) = tonic_health::server::health_reporter();
        reporter.set_service_status("x", status).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        port
    }

    /// Two replicas listed in one URL both answer calls.
    #[tokio::test]
    async fn calls_spread_over_every_listed_replica() {
        let (a, b) = (
            server(ServingStatus::Serving).await,
            server(ServingStatus::NotServing).await,
        );
        let settings = EndpointSettings {
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            refresh: Duration::from_secs(60),
        };
        let url = format!("http://127.0.0.1:{a}, http://127.0.0.1:{b}");
        let mut client = HealthClient::new(dns_balanced(&url, settings).unwrap());
        let mut seen = HashSet::new();
        for _ in 0..40 {
            let request = HealthCheckRequest {
                service: "x".into(),
            };
            match client.check(request).await {
                Ok(answer) => {
                    seen.insert(answer.into_inner().status);
                }
                // Before the refresh task has added the endpoints.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        assert_eq!(
            seen.len(),
            2,
            "answers came from one replica only: {seen:?}"
        );
        assert!(dns_balanced("http://127.0.0.1:1,nonsense", settings).is_err());
    }
}
