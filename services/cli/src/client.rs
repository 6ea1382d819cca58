//! Calling the public API.

use inpaint_common::config::{DEFAULT_MAX_IMAGE_PIXELS, max_message_bytes};
use inpaint_proto::v1::inpainting_client::InpaintingClient;
use inpaint_proto::v1::{InpaintRequest, InpaintResponse};
use tonic::transport::Channel;

/// A client for the gateway at `url`, with message limits that fit the
/// largest images the cluster accepts by default.
pub async fn connect(url: &str) -> anyhow::Result<InpaintingClient<Channel>> {
    let channel = inpaint_common::endpoint(url)?.connect().await?;
    let limit = max_message_bytes(DEFAULT_MAX_IMAGE_PIXELS);
    Ok(InpaintingClient::new(channel)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit))
}

/// Sends one Inpaint request.
pub async fn inpaint(url: &str, request: InpaintRequest) -> Result<InpaintResponse, tonic::Status> {
    let mut client = connect(url).await.map_err(|e| {
        tonic::Status::unavailable(format!("cannot reach the gateway at {url}: {e}"))
    })?;
    Ok(client.inpaint(request).await?.into_inner())
}
