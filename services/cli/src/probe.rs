//! `inpaint health`: a service's gRPC health from the command line, for
//! Kubernetes exec probes on ports that speak TLS (the kubelet's own gRPC
//! probe has no TLS) and for people checking a deployment by hand.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use inpaint_common::tls::{ClientTls, ClientTlsFiles};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

#[derive(Args)]
pub struct HealthArgs {
    /// The service, e.g. https://127.0.0.1:50053 (https: TLS).
    pub url: String,
    /// The health service name to ask about ("" = the whole server).
    #[arg(long, default_value = "")]
    pub service: String,
    /// PEM CA the server's certificate chains to (default: system roots).
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// PEM client certificate and key, for ports that require one (mTLS).
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 5)]
    pub timeout_secs: u64,
}

/// The server's answer; an error when it cannot be reached or asked.
pub async fn check(args: &HealthArgs) -> anyhow::Result<ServingStatus> {
    let timeout = Duration::from_secs(args.timeout_secs.max(1));
    let mut endpoint = inpaint_common::endpoint(&args.url)?
        .connect_timeout(timeout)
        .timeout(timeout);
    if args.url.starts_with("https://") {
        let tls = ClientTls::load(ClientTlsFiles {
            ca: args.ca.clone(),
            cert: args.cert.clone(),
            key: args.key.clone(),
        })?;
        let host = endpoint.uri().host().unwrap_or_default().to_string();
        endpoint = endpoint.tls_config(tls.config(&host).0)?;
    }
    let channel = endpoint.connect().await?;
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: args.service.clone(),
        })
        .await?;
    Ok(answer.into_inner().status())
}
