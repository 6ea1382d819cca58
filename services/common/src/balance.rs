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

/// A channel to `url` (`http://host:port`) balanced over every address
/// `host` resolves to, refreshed every `settings.refresh`. Must be called
/// inside a tokio runtime; the refresh task ends when the channel is dropped.
pub fn dns_balanced(url: &str, settings: EndpointSettings) -> Result<Channel, BalanceError> {
    let bad = |reason: &str| BalanceError::Url {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let uri: Uri = url.parse().map_err(|_| bad("not a URI"))?;
    let host = uri
        .host()
        .ok_or_else(|| bad("no host"))?
        .trim_matches(['[', ']'])
        .to_string();
    let port = uri.port_u16().ok_or_else(|| bad("no port"))?;
    let scheme = uri.scheme_str().unwrap_or("http").to_string();

    let (channel, changes) = Channel::balance_channel::<SocketAddr>(64);
    tokio::spawn(async move {
        let mut current: HashSet<SocketAddr> = HashSet::new();
        loop {
            match tokio::net::lookup_host((host.as_str(), port)).await {
                Ok(found) => {
                    let found: HashSet<SocketAddr> = found.collect();
                    for gone in current.difference(&found) {
                        tracing::info!(%host, addr = %gone, "endpoint removed");
                        if changes.send(Change::Remove(*gone)).await.is_err() {
                            return;
                        }
                    }
                    for new in found.difference(&current) {
                        let endpoint = crate::serve::endpoint(&format!("{scheme}://{new}"))
                            .expect("socket address makes a valid URI")
                            .timeout(settings.request_timeout)
                            .connect_timeout(settings.connect_timeout);
                        tracing::debug!(%host, addr = %new, "endpoint added");
                        if changes.send(Change::Insert(*new, endpoint)).await.is_err() {
                            return;
                        }
                    }
                    current = found;
                }
                // Keep what we have; a DNS hiccup must not drop healthy pods.
                Err(err) => tracing::warn!(%host, %err, "cannot resolve"),
            }
            tokio::select! {
                _ = tokio::time::sleep(settings.refresh) => {}
                _ = changes.closed() => return,
            }
        }
    });
    Ok(channel)
}
