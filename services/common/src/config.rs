//! Configuration every service shares.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::tls::{ServerTls, ServerTlsFiles, TlsError};

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Settings common to all four services.
#[derive(Debug, Clone, Args)]
pub struct ServiceArgs {
    /// Address to listen on.
    #[arg(long, env = "INPAINT_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: std::net::SocketAddr,

    /// Log format.
    #[arg(long, env = "INPAINT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,

    /// Largest image accepted, in pixels (width x height). Message size
    /// limits are derived from it.
    #[arg(long, env = "INPAINT_MAX_IMAGE_PIXELS", default_value_t = DEFAULT_MAX_IMAGE_PIXELS)]
    pub max_image_pixels: u64,

    /// Address for Prometheus metrics (`GET /metrics`, text format); unset
    /// or empty: no metrics endpoint.
    #[arg(long, env = "INPAINT_METRICS_LISTEN", default_value = "", value_parser = OptionalAddr::parse)]
    pub metrics_listen: OptionalAddr,

    /// PEM certificate chain this port presents: TLS on it when set (with
    /// --tls-key). Read again when the file changes.
    #[arg(long, env = "INPAINT_TLS_CERT", value_parser = non_empty_path)]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "INPAINT_TLS_KEY", value_parser = non_empty_path)]
    pub tls_key: Option<PathBuf>,

    /// PEM CA that callers' client certificates must chain to: with it,
    /// a caller without such a certificate is refused at the handshake
    /// (mTLS, for the stages behind the gateway).
    #[arg(long, env = "INPAINT_TLS_CLIENT_CA", value_parser = non_empty_path)]
    pub tls_client_ca: Option<PathBuf>,

    /// OpenTelemetry collector for traces (OTLP over gRPC, e.g.
    /// http://otel-collector:4317); unset: no trace export.
    #[arg(long, env = "INPAINT_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

/// A path, where an empty value (an unset variable in a manifest) is an
/// error rather than the current folder.
fn non_empty_path(s: &str) -> Result<PathBuf, String> {
    if s.trim().is_empty() {
        return Err("empty path".into());
    }
    Ok(PathBuf::from(s))
}

/// An address that may be left empty (off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OptionalAddr(pub Option<std::net::SocketAddr>);

impl OptionalAddr {
    fn parse(s: &str) -> Result<Self, String> {
        if s.trim().is_empty() {
            return Ok(Self(None));
        }
        s.trim()
            .parse()
            .map(|a| Self(Some(a)))
            .map_err(|e| format!("{e}"))
    }
}

/// 50 megapixels: the 48 and 50 MP photos of current phones (8160x6120
/// is 49.9 MP).
pub const DEFAULT_MAX_IMAGE_PIXELS: u64 = 50_000_000;

/// The largest gRPC message a service must carry for images up to
/// `max_image_pixels`: an RGB image, its masks and crops, a few times over,
/// plus room for the rest of the message.
pub fn max_message_bytes(max_image_pixels: u64) -> usize {
    let bytes = max_image_pixels.saturating_mul(8).saturating_add(16 << 20);
    usize::try_from(bytes).unwrap_or(usize::MAX)
}

impl ServiceArgs {
    pub fn max_message_bytes(&self) -> usize {
        max_message_bytes(self.max_image_pixels)
    }

    /// Defaults with the given address; for embedding and tests.
    pub fn local(listen: std::net::SocketAddr) -> Self {
        Self {
            listen,
            log_format: LogFormat::Pretty,
            max_image_pixels: DEFAULT_MAX_IMAGE_PIXELS,
            metrics_listen: OptionalAddr(None),
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            otlp_endpoint: None,
        }
    }

    /// The port's TLS, when a certificate is configured.
    pub fn server_tls(&self) -> Result<Option<ServerTls>, TlsError> {
        match (&self.tls_cert, &self.tls_key) {
            (None, None) if self.tls_client_ca.is_some() => Err(TlsError::Settings(
                "INPAINT_TLS_CLIENT_CA needs INPAINT_TLS_CERT and INPAINT_TLS_KEY".into(),
            )),
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => ServerTls::load(ServerTlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: self.tls_client_ca.clone(),
            })
            .map(Some),
            _ => Err(TlsError::Settings(
                "INPAINT_TLS_CERT and INPAINT_TLS_KEY go together".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        service: super::ServiceArgs,
    }

    #[test]
    fn metrics_address_is_optional() {
        let none = Cli::try_parse_from(["x"]).unwrap();
        assert_eq!(none.service.metrics_listen.0, None);
        let empty = Cli::try_parse_from(["x", "--metrics-listen", ""]).unwrap();
        assert_eq!(empty.service.metrics_listen.0, None);
        let some = Cli::try_parse_from(["x", "--metrics-listen", "127.0.0.1:9100"]).unwrap();
        assert_eq!(
            some.service.metrics_listen.0,
            Some("127.0.0.1:9100".parse().unwrap())
        );
        assert!(Cli::try_parse_from(["x", "--metrics-listen", "nope"]).is_err());
    }
}
