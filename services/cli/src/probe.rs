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
    /// The name the server's certificate must carry, when it is not the
    /// URL's host (a probe dials 127.0.0.1; the certificate names the
    /// Service).
    #[arg(long)]
    pub server_name: Option<String>,
    /// Check health without checking who answers: any certificate is
    /// taken (the handshake's signatures still are checked). For probing
    /// one's own pod on loopback, where the public certificate's name and
    /// CA are the clients' business.
    #[arg(long, conflicts_with_all = ["ca", "cert", "server_name"])]
    pub no_verify: bool,
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
    let host = endpoint.uri().host().unwrap_or_default().to_string();
    let channel = if args.no_verify {
        let port = endpoint.uri().port_u16().unwrap_or(443);
        let plain = inpaint_common::endpoint(&format!("http://{host}:{port}"))?
            .connect_timeout(timeout)
            .timeout(timeout);
        plain
            .connect_with_connector(unverified::connector(host, port))
            .await?
    } else {
        if args.url.starts_with("https://") {
            let tls = ClientTls::load(ClientTlsFiles {
                ca: args.ca.clone(),
                cert: args.cert.clone(),
                key: args.key.clone(),
            })?;
            let name = args.server_name.as_deref().unwrap_or(&host);
            endpoint = endpoint.tls_config(tls.config(name).0)?;
        }
        endpoint.connect().await?
    };
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: args.service.clone(),
        })
        .await?;
    Ok(answer.into_inner().status())
}

/// TLS that takes any server certificate, for `--no-verify` alone.
mod unverified {
    use std::sync::Arc;

    use hyper_util::rt::TokioIo;
    use tokio::net::TcpStream;
    use tokio_rustls::TlsConnector;
    use tokio_rustls::rustls::client::danger::{
        HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
    };
    use tokio_rustls::rustls::crypto::{self, CryptoProvider};
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use tokio_rustls::rustls::{ClientConfig, DigitallySignedStruct, Error, SignatureScheme};

    /// Any certificate passes; the handshake's signatures are still
    /// checked against the certificate shown.
    #[derive(Debug)]
    struct AnyCertificate(Arc<CryptoProvider>);

    impl ServerCertVerifier for AnyCertificate {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    /// Dials host:port and speaks TLS over it, whatever URI tonic asks for.
    pub fn connector(
        host: String,
        port: u16,
    ) -> impl tower::Service<
        http::Uri,
        Response = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>,
        Error = std::io::Error,
        Future = impl Future<
            Output = std::io::Result<TokioIo<tokio_rustls::client::TlsStream<TcpStream>>>,
        > + Send,
    > + Send
    + 'static {
        let provider = Arc::new(crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let tls = TlsConnector::from(Arc::new(config));
        tower::service_fn(move |_: http::Uri| {
            let (tls, host) = (tls.clone(), host.clone());
            async move {
                let tcp = TcpStream::connect((host.as_str(), port)).await?;
                let name = ServerName::try_from(host)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
                Ok(TokioIo::new(tls.connect(name, tcp).await?))
            }
        })
    }
}
