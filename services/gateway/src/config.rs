//! Gateway configuration.

use std::time::Duration;

use clap::Parser;
use std::path::PathBuf;

use inpaint_common::ServiceArgs;
use inpaint_common::tls::{ClientTls, ClientTlsFiles, TlsError};

/// inpaint-gateway: the public Inpainting API.
#[derive(Debug, Clone, Parser)]
#[command(version)]
pub struct Config {
    #[command(flatten)]
    pub service: ServiceArgs,

    /// Segmentation service URL.
    #[arg(
        long,
        env = "INPAINT_SEGMENTATION_URL",
        default_value = "http://127.0.0.1:50052"
    )]
    pub segmentation_url: String,

    /// Mask service URL.
    #[arg(
        long,
        env = "INPAINT_MASK_URL",
        default_value = "http://127.0.0.1:50053"
    )]
    pub mask_url: String,

    /// Inpaint worker URL.
    #[arg(
        long,
        env = "INPAINT_WORKER_URL",
        default_value = "http://127.0.0.1:50054"
    )]
    pub worker_url: String,

    /// Largest request accepted (encoded image plus mask), in bytes.
    #[arg(long, env = "INPAINT_MAX_UPLOAD_BYTES", default_value_t = 64 << 20)]
    pub max_upload_bytes: usize,

    /// Longest a single stage call may take, in seconds.
    #[arg(long, env = "INPAINT_STAGE_TIMEOUT_SECS", default_value_t = 120)]
    pub stage_timeout_secs: u64,

    /// How often stage host names are resolved again, in seconds (new and
    /// departed pods behind a headless Service).
    #[arg(long, env = "INPAINT_RESOLVE_EVERY_SECS", default_value_t = 5)]
    pub resolve_every_secs: u64,

    /// Redis URL for job state shared by every gateway replica (e.g.
    /// redis://redis:6379). Without it jobs live in this process only.
    #[arg(long, env = "INPAINT_REDIS_URL")]
    pub redis_url: Option<String>,

    /// Prefix of every Redis key this cluster uses.
    #[arg(long, env = "INPAINT_REDIS_PREFIX", default_value = "inpaint")]
    pub redis_prefix: String,

    /// How long job records, inputs and results are kept, in seconds.
    #[arg(long, env = "INPAINT_JOB_TTL_SECS", default_value_t = 86_400)]
    pub job_ttl_secs: u64,

    /// Jobs this replica runs at once (0: it only accepts jobs).
    #[arg(long, env = "INPAINT_JOB_RUNNERS", default_value_t = 4)]
    pub job_runners: usize,

    /// A job claimed by a replica that shows no progress for this long is
    /// taken over by another, in seconds.
    #[arg(long, env = "INPAINT_JOB_RECLAIM_SECS", default_value_t = 30)]
    pub job_reclaim_secs: u64,

    /// Requests this gateway process works on at once (synchronous calls
    /// and job runs); synchronous calls beyond it get RESOURCE_EXHAUSTED.
    #[arg(long, env = "INPAINT_MAX_INFLIGHT_REQUESTS", default_value_t = 32)]
    pub max_inflight_requests: u64,

    /// Pixels (from the headers) of the requests this process works on at
    /// once; synchronous calls beyond it get RESOURCE_EXHAUSTED (one larger
    /// request still runs alone). About 15 MB of memory per megapixel in
    /// flight was measured, so the default keeps a 2 GiB pod well inside.
    #[arg(
        long,
        env = "INPAINT_MAX_INFLIGHT_PIXELS",
        default_value_t = 48_000_000
    )]
    pub max_inflight_pixels: u64,

    /// Jobs queued or running (all replicas) beyond which submissions get
    /// RESOURCE_EXHAUSTED.
    #[arg(long, env = "INPAINT_MAX_QUEUED_JOBS", default_value_t = 10_000)]
    pub max_queued_jobs: u64,

    /// Pixels of queued or running jobs beyond which submissions get
    /// RESOURCE_EXHAUSTED.
    #[arg(
        long,
        env = "INPAINT_MAX_QUEUED_PIXELS",
        default_value_t = 20_000_000_000
    )]
    pub max_queued_pixels: u64,

    /// Largest blob a job keeps in the store, in bytes: a larger request is
    /// refused at submission, a larger result fails the job.
    #[arg(long, env = "INPAINT_MAX_JOB_BLOB_BYTES", default_value_t = 64 << 20)]
    pub max_job_blob_bytes: usize,

    /// This replica's name in the job queue (default: host name and pid).
    #[arg(long, env = "INPAINT_REPLICA")]
    pub replica: Option<String>,

    /// API keys file (TOML: each key's SHA-256 and tenant, each tenant's
    /// limits; read again when it changes). Unset: no authentication.
    #[arg(long, env = "INPAINT_API_KEYS")]
    pub api_keys: Option<std::path::PathBuf>,

    /// PEM CA the stages' certificates must chain to, for https:// stage
    /// URLs (unset: the system's roots).
    #[arg(long, env = "INPAINT_STAGE_TLS_CA")]
    pub stage_tls_ca: Option<PathBuf>,

    /// PEM client certificate this gateway presents to the stages (mTLS),
    /// with --stage-tls-key. Both read again when they change.
    #[arg(long, env = "INPAINT_STAGE_TLS_CERT")]
    pub stage_tls_cert: Option<PathBuf>,

    #[arg(long, env = "INPAINT_STAGE_TLS_KEY")]
    pub stage_tls_key: Option<PathBuf>,

    /// PEM CA of the Redis server's certificate, for rediss:// URLs
    /// (unset: the system's roots).
    #[arg(long, env = "INPAINT_REDIS_TLS_CA")]
    pub redis_tls_ca: Option<PathBuf>,

    /// Redis password (AUTH), kept out of the URL so that it can come from
    /// a Secret; overrides one in the URL.
    #[arg(long, env = "INPAINT_REDIS_PASSWORD", hide_env_values = true)]
    pub redis_password: Option<String>,

    /// HTTP port for browsers: the page to try the cluster and the public
    /// API over gRPC-Web (off when unset). Plain HTTP: put it behind a
    /// TLS-terminating ingress when it leaves the machine.
    #[arg(long, env = "INPAINT_WEB_LISTEN")]
    pub web_listen: Option<std::net::SocketAddr>,

    /// Other origins whose pages may call the gRPC-Web API (CORS), e.g.
    /// `https://tools.example.com`, comma-separated; the page served on
    /// the web port is same-origin and needs none.
    #[arg(long, env = "INPAINT_WEB_ALLOW_ORIGINS", value_delimiter = ',')]
    pub web_allow_origins: Vec<String>,
}

impl Config {
    pub fn local(
        listen: std::net::SocketAddr,
        segmentation: String,
        mask: String,
        worker: String,
    ) -> Self {
        Self {
            service: ServiceArgs::local(listen),
            segmentation_url: segmentation,
            mask_url: mask,
            worker_url: worker,
            max_upload_bytes: 64 << 20,
            stage_timeout_secs: 120,
            resolve_every_secs: 5,
            redis_url: None,
            redis_prefix: "inpaint".into(),
            job_ttl_secs: 86_400,
            job_runners: 4,
            job_reclaim_secs: 30,
            max_inflight_requests: 32,
            max_inflight_pixels: 48_000_000,
            max_queued_jobs: 10_000,
            max_queued_pixels: 20_000_000_000,
            max_job_blob_bytes: 64 << 20,
            replica: None,
            api_keys: None,
            stage_tls_ca: None,
            stage_tls_cert: None,
            stage_tls_key: None,
            redis_tls_ca: None,
            redis_password: None,
            web_listen: None,
            web_allow_origins: vec![],
        }
    }

    /// The TLS the gateway's stage connections use (for https:// URLs).
    pub fn stage_tls(&self) -> Result<ClientTls, TlsError> {
        ClientTls::load(ClientTlsFiles {
            ca: self.stage_tls_ca.clone(),
            cert: self.stage_tls_cert.clone(),
            key: self.stage_tls_key.clone(),
        })
    }

    /// Largest public request message: the uploads plus protobuf framing.
    pub fn max_request_bytes(&self) -> usize {
        self.max_upload_bytes.saturating_add(1 << 20)
    }

    pub fn replica_name(&self) -> String {
        self.replica.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            format!("{}-{}", host.trim(), std::process::id())
        })
    }

    pub fn stage_timeout(&self) -> Duration {
        Duration::from_secs(self.stage_timeout_secs)
    }
}
