//! TLS on every port and on the gateway's connections to its stages, from
//! PEM files that are read again when they change (a renewed certificate,
//! a rotated Kubernetes Secret), without a restart.
//!
//! Servers: a certificate chain and key, and optionally a CA whose client
//! certificates are then required (mTLS). Each new connection gets the
//! configuration as of the files now; connections already open keep
//! theirs. Clients (the gateway to its stages): a CA to trust and
//! optionally a client certificate; a change makes the balancer reconnect
//! with the new files (see `balance`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

/// How often the files' modification times are looked at, at most.
const RECHECK: Duration = Duration::from_secs(1);

/// A handshake that takes longer is dropped (a slow or idle peer must not
/// hold a connection slot).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Pem { path: PathBuf, reason: String },
    #[error("TLS settings: {0}")]
    Settings(String),
}

/// The files of a server's TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA(s) that client certificates must chain to; None: no client
    /// certificate asked for.
    pub client_ca: Option<PathBuf>,
}

impl ServerTlsFiles {
    fn paths(&self) -> Vec<&Path> {
        let mut paths = vec![self.cert.as_path(), self.key.as_path()];
        paths.extend(self.client_ca.as_deref());
        paths
    }
}

/// A server's TLS configuration, re-read when its files change.
pub struct ServerTls {
    files: ServerTlsFiles,
    current: Mutex<Loaded<Arc<ServerConfig>>>,
}

/// What the files gave when they had these modification times.
struct Loaded<T> {
    value: T,
    stamps: Vec<Option<SystemTime>>,
    checked: Instant,
    generation: u64,
}

impl<T: Clone> Loaded<T> {
    fn new(value: T, paths: &[&Path]) -> Self {
        Self {
            value,
            stamps: stamps(paths),
            checked: Instant::now(),
            generation: 0,
        }
    }

    /// The value, read again with `load` when a file changed since the last
    /// look (at most once per RECHECK). A failed read keeps the old value:
    /// a renewal caught half-written must not take the port down.
    fn refreshed(&mut self, paths: &[&Path], load: impl FnOnce() -> Result<T, TlsError>) -> T {
        if self.checked.elapsed() >= RECHECK {
            self.checked = Instant::now();
            let now = stamps(paths);
            if now != self.stamps {
                match load() {
                    Ok(value) => {
                        self.value = value;
                        self.stamps = now;
                        self.generation += 1;
                        tracing::info!(files = ?paths, "TLS files changed: reloaded");
                    }
                    Err(err) => {
                        tracing::warn!(%err, "TLS files changed but do not load; kept the previous ones")
                    }
                }
            }
        }
        self.value.clone()
    }
}

fn stamps(paths: &[&Path]) -> Vec<Option<SystemTime>> {
    paths
        .iter()
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

impl ServerTls {
    pub fn load(files: ServerTlsFiles) -> Result<Self, TlsError> {
        let config = Arc::new(server_config(&files)?);
        let current = Mutex::new(Loaded::new(config, &files.paths()));
        Ok(Self { files, current })
    }

    /// The configuration for a new connection.
    pub fn config(&self) -> Arc<ServerConfig> {
        let mut current = self.current.lock().expect("tls lock");
        current.refreshed(&self.files.paths(), || {
            server_config(&self.files).map(Arc::new)
        })
    }
}

fn server_config(files: &ServerTlsFiles) -> Result<ServerConfig, TlsError> {
    let chain = certificates(&files.cert)?;
    let key = private_key(&files.key)?;
    let builder = ServerConfig::builder();
    let builder = match &files.client_ca {
        Some(ca) => {
            let verifier = WebPkiClientVerifier::builder(Arc::new(roots(ca)?))
                .build()
                .map_err(|e| pem_error(ca, e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| pem_error(&files.key, format!("does not match the certificate: {e}")))?;
    // gRPC is HTTP/2 only; clients that negotiate ALPN (grpc-go, grpcio,
    // browsers) require it.
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

fn pem_error(path: &Path, reason: impl std::fmt::Display) -> TlsError {
    TlsError::Pem {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if chain.is_empty() {
        return Err(pem_error(path, "no PEM certificate in it"));
    }
    Ok(chain)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(&read(path)?).map_err(|e| pem_error(path, e))
}

fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for cert in certificates(path)? {
        store.add(cert).map_err(|e| pem_error(path, e))?;
    }
    Ok(store)
}

/// Accepted TLS connections on `listener`, for tonic's
/// `serve_with_incoming`. Handshakes run concurrently (one slow peer holds
/// up no one) with a timeout; failed ones are logged and dropped. The accept
/// loop ends when the stream is dropped.
pub fn incoming(
    listener: TcpListener,
    tls: Arc<ServerTls>,
) -> ReceiverStream<Result<TlsStream<TcpStream>, std::io::Error>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = tx.closed() => return,
            };
            let (tcp, peer) = match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // Out of file descriptors and the like: pause, go on.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = TlsAcceptor::from(tls.config());
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(Ok(stream)).await;
                    }
                    Ok(Err(err)) => tracing::debug!(%peer, %err, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

/// The files of a client's TLS; all None: the system's roots, no client
/// certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTlsFiles {
    /// PEM CA(s) the server's certificate must chain to.
    pub ca: Option<PathBuf>,
    /// PEM client certificate chain and key, for servers that require one.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl ClientTlsFiles {
    fn paths(&self) -> Vec<&Path> {
        [&self.ca, &self.cert, &self.key]
            .into_iter()
            .filter_map(|p| p.as_deref())
            .collect()
    }
}

/// The PEM contents a client's connections are made with.
#[derive(Clone)]
struct ClientPems {
    ca: Option<Vec<u8>>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
}

/// A client's TLS settings, re-read when their files change.
pub struct ClientTls {
    files: ClientTlsFiles,
    current: Mutex<Loaded<ClientPems>>,
}

impl ClientTls {
    pub fn load(files: ClientTlsFiles) -> Result<Self, TlsError> {
        if files.cert.is_some() != files.key.is_some() {
            return Err(TlsError::Settings(
                "a client certificate needs its key, and a key its certificate".into(),
            ));
        }
        let pems = client_pems(&files)?;
        let current = Mutex::new(Loaded::new(pems, &files.paths()));
        Ok(Self { files, current })
    }

    /// tonic's configuration for a connection to `host` (the name its
    /// certificate must carry), with the files as they are now, and the
    /// generation of those files (it grows when they change).
    pub fn config(&self, host: &str) -> (ClientTlsConfig, u64) {
        let pems = self.pems();
        let mut config = ClientTlsConfig::new().domain_name(host);
        config = match pems.0.ca {
            Some(ca) => config.ca_certificate(Certificate::from_pem(ca)),
            None => config.with_native_roots(),
        };
        if let Some((cert, key)) = pems.0.identity {
            config = config.identity(Identity::from_pem(cert, key));
        }
        (config, pems.1)
    }

    /// The generation of the files now (read again if they changed).
    pub fn generation(&self) -> u64 {
        self.pems().1
    }

    fn pems(&self) -> (ClientPems, u64) {
        let mut current = self.current.lock().expect("tls lock");
        let pems = current.refreshed(&self.files.paths(), || client_pems(&self.files));
        (pems, current.generation)
    }
}

fn client_pems(files: &ClientTlsFiles) -> Result<ClientPems, TlsError> {
    // Parsed here so a bad file is an error at start (or a kept old one on
    // reload), not a failure at each connection.
    let ca = match &files.ca {
        Some(path) => {
            roots(path)?;
            Some(read(path)?)
        }
        None => None,
    };
    let identity = match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => {
            certificates(cert)?;
            private_key(key)?;
            Some((read(cert)?, read(key)?))
        }
        _ => None,
    };
    Ok(ClientPems { ca, identity })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for 127.0.0.1 and its key, as PEM.
    fn self_signed() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
    }

    fn scratch(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("inpaint-tlsunit-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn changed_files_are_read_again_and_a_bad_change_is_kept_out() {
        let dir = scratch("reload");
        let (ca, _) = self_signed();
        let ca_path = dir.join("ca.pem");
        std::fs::write(&ca_path, &ca).unwrap();
        let client = ClientTls::load(ClientTlsFiles {
            ca: Some(ca_path.clone()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(client.generation(), 0);
        std::thread::sleep(RECHECK + Duration::from_millis(100));
        std::fs::write(&ca_path, self_signed().0).unwrap();
        assert_eq!(client.generation(), 1, "a new CA file is read again");
        std::thread::sleep(RECHECK + Duration::from_millis(100));
        std::fs::write(&ca_path, "not a certificate").unwrap();
        assert_eq!(
            client.generation(),
            1,
            "a broken file keeps the last good one"
        );

        let (cert, key) = self_signed();
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_path, &cert).unwrap();
        std::fs::write(&key_path, &key).unwrap();
        let server = ServerTls::load(ServerTlsFiles {
            cert: cert_path.clone(),
            key: key_path.clone(),
            client_ca: None,
        })
        .unwrap();
        let before = server.config();
        assert!(
            Arc::ptr_eq(&before, &server.config()),
            "unchanged: the same"
        );
        std::thread::sleep(RECHECK + Duration::from_millis(100));
        let (cert, key) = self_signed();
        std::fs::write(&key_path, key).unwrap();
        std::fs::write(&cert_path, cert).unwrap();
        assert!(
            !Arc::ptr_eq(&before, &server.config()),
            "changed: read again"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn settings_that_cannot_work_are_refused_at_start() {
        let dir = scratch("refuse");
        let (cert, _) = self_signed();
        let (_, other_key) = self_signed();
        let cert_path = dir.join("cert.pem");
        let key_path = dir.join("key.pem");
        std::fs::write(&cert_path, cert).unwrap();
        std::fs::write(&key_path, other_key).unwrap();
        let mismatched = ServerTls::load(ServerTlsFiles {
            cert: cert_path.clone(),
            key: key_path.clone(),
            client_ca: None,
        });
        assert!(matches!(mismatched, Err(TlsError::Pem { .. })));
        let missing = ServerTls::load(ServerTlsFiles {
            cert: dir.join("absent.pem"),
            key: key_path.clone(),
            client_ca: None,
        });
        assert!(matches!(missing, Err(TlsError::Read { .. })));
        let half = ClientTls::load(ClientTlsFiles {
            cert: Some(cert_path),
            ..Default::default()
        });
        assert!(matches!(half, Err(TlsError::Settings(_))));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
