//! Clients for the three internal services.

use inpaint_proto::v1::inpaint_worker_client::InpaintWorkerClient;
use inpaint_proto::v1::mask_client::MaskClient;
use inpaint_proto::v1::segmentation_client::SegmentationClient;
use std::sync::Arc;
use std::time::Duration;

use inpaint_common::balance::{BalanceError, EndpointSettings, dns_balanced};
use inpaint_common::trace::{self, TracedChannel};
use tonic::service::interceptor::InterceptedService;

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum StagesError {
    #[error(transparent)]
    Url(#[from] BalanceError),
    #[error("stage TLS: {0}")]
    Tls(#[from] inpaint_common::tls::TlsError),
}

/// One balanced channel per stage (every address the stage's name resolves
/// to, re-resolved every few seconds); tonic clients are cheap clones.
/// Every call carries the caller's trace context.
#[derive(Clone)]
pub struct Stages {
    pub segmentation: SegmentationClient<TracedChannel>,
    pub mask: MaskClient<TracedChannel>,
    pub worker: InpaintWorkerClient<TracedChannel>,
}

impl Stages {
    pub fn connect(config: &Config) -> Result<Self, StagesError> {
        let limit = config.service.max_message_bytes();
        let settings = EndpointSettings {
            // A backstop a second behind the pipeline's own stage timeout,
            // which must fire first: it answers UNAVAILABLE naming the
            // stage, where the transport's would surface as INTERNAL.
            request_timeout: config.stage_timeout() + Duration::from_secs(1),
            connect_timeout: Duration::from_secs(5),
            refresh: Duration::from_secs(config.resolve_every_secs.max(1)),
        };
        let tls = Arc::new(config.stage_tls()?);
        let channel = |url: &str| {
            dns_balanced(url, settings, Some(tls.clone()))
                .map(|c| InterceptedService::new(c, trace::inject as trace::Inject))
        };
        Ok(Self {
            segmentation: SegmentationClient::new(channel(&config.segmentation_url)?)
                .max_decoding_message_size(limit)
                .max_encoding_message_size(limit),
            mask: MaskClient::new(channel(&config.mask_url)?)
                .max_decoding_message_size(limit)
                .max_encoding_message_size(limit),
            worker: InpaintWorkerClient::new(channel(&config.worker_url)?)
                .max_decoding_message_size(limit)
                .max_encoding_message_size(limit),
        })
    }
}
