//! Clients for the three internal services.

use inpaint_proto::v1::inpaint_worker_client::InpaintWorkerClient;
use inpaint_proto::v1::mask_client::MaskClient;
use inpaint_proto::v1::segmentation_client::SegmentationClient;
use tonic::transport::{Channel, Endpoint};

use crate::config::Config;

/// One lazily connected channel per stage; tonic clients are cheap clones of
/// these.
#[derive(Clone)]
pub struct Stages {
    pub segmentation: SegmentationClient<Channel>,
    pub mask: MaskClient<Channel>,
    pub worker: InpaintWorkerClient<Channel>,
}

impl Stages {
    pub fn connect(config: &Config) -> Result<Self, tonic::transport::Error> {
        let limit = config.service.max_message_bytes();
        let channel = |url: &str| -> Result<Channel, tonic::transport::Error> {
            Ok(Endpoint::from_shared(url.to_string())?
                .timeout(config.stage_timeout())
                .tcp_nodelay(true)
                .connect_lazy())
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
