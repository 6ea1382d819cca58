//! Client-side balancing across every address a name resolves to.
//!
//! Kubernetes Services balance connections, not gRPC calls: one HTTP/2
//! connection to a ClusterIP carries every call to one pod. With a headless
//! Service the name resolves to every ready pod; this channel re-resolves it
//! periodically and spreads calls over all of them (tower's power-of-two
//! choices), adding and dropping pods as they come and go.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tonic::transport::channel::Change;
use tonic::transport::{Channel, Uri};

use crate::tls::{ClientTls, ClientTlsFiles};

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
///
/// `https://` URLs connect with `tls` (the system's roots when None), each
/// address verified against its host name; when the TLS files change, every
/// endpoint is replaced, so new connections use the new files.
pub fn dns_balanced(
    url: &str,
    settings: EndpointSettings,
    tls: Option<Arc<ClientTls>>,
) -> Result<Channel, BalanceError> {
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
    if targets.iter().any(|(scheme, ..)| scheme != &targets[0].0) {
        return Err(bad("mixes http:// and https://"));
    }
    let tls = match (targets[0].0.as_str(), tls) {
        ("https", Some(tls)) => Some(tls),
        ("https", None) => Some(Arc::new(
            ClientTls::load(ClientTlsFiles::default()).map_err(|e| bad(&e.to_string()))?,
        )),
        _ => None,
    };

    let (channel, changes) = Channel::balance_channel::<SocketAddr>(64);
    tokio::spawn(async move {
        // Each address and the host name it was found under.
        let mut current: HashMap<SocketAddr, String> = HashMap::new();
        let mut tls_generation = tls.as_ref().map(|t| t.generation());
        loop {
            let mut found = HashMap::new();
            let mut resolved_all = true;
            for (_, host, port) in &targets {
                match tokio::net::lookup_host((host.as_str(), *port)).await {
                    Ok(addrs) => found.extend(addrs.map(|a| (a, host.clone()))),
                    Err(err) => {
                        // Keep what we have; a DNS hiccup must not drop
                        // healthy pods.
                        tracing::warn!(%host, %err, "cannot resolve");
                        resolved_all = false;
                    }
                }
            }
            if resolved_all {
                for gone in current.keys().filter(|a| !found.contains_key(a)) {
                    tracing::info!(addr = %gone, "endpoint removed");
                    if changes.send(Change::Remove(*gone)).await.is_err() {
                        return;
                    }
                }
            }
            // New TLS files: every endpoint again (an insert under a known
            // address replaces it), so new connections present them.
            let generation = tls.as_ref().map(|t| t.generation());
            let renew = generation != tls_generation;
            tls_generation = generation;
            for (addr, host) in &found {
                if current.contains_key(addr) && !renew {
                    continue;
                }
                let scheme = &targets[0].0;
                let mut endpoint = crate::serve::endpoint(&format!("{scheme}://{addr}"))
                    .expect("socket address makes a valid URI")
                    .timeout(settings.request_timeout)
                    .connect_timeout(settings.connect_timeout);
                if let Some(tls) = &tls {
                    endpoint = match endpoint.tls_config(tls.config(host).0) {
                        Ok(endpoint) => endpoint,
                        Err(err) => {
                            tracing::error!(%addr, %err, "TLS settings refused; endpoint left out");
                            continue;
                        }
                    };
                }
                tracing::debug!(%addr, "endpoint added");
                if changes.send(Change::Insert(*addr, endpoint)).await.is_err() {
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
    use std::collections::HashSet;
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
        let mut client = HealthClient::new(dns_balanced(&url, settings, None).unwrap());
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
        assert!(dns_balanced("http://127.0.0.1:1,nonsense", settings, None).is_err());
    }
}
