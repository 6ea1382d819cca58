//! Calling the public API.

use inpaint_common::config::{DEFAULT_MAX_IMAGE_PIXELS, max_message_bytes};
use inpaint_proto::v1::inpainting_client::InpaintingClient;
use inpaint_proto::v1::{InpaintRequest, InpaintResponse};
use tonic::transport::Channel;

/// A client for the gateway at `url`, with message limits that fit the
/// largest images the cluster accepts by default. An `https://` URL speaks
/// TLS, trusting the PEM CA in `INPAINT_GATEWAY_CA` when set, else the
/// system's roots.
pub async fn connect(url: &str) -> anyhow::Result<InpaintingClient<Channel>> {
    let mut endpoint = inpaint_common::endpoint(url)?;
    if url.starts_with("https://") {
        let ca = std::env::var_os("INPAINT_GATEWAY_CA").map(std::path::PathBuf::from);
        let tls = inpaint_common::tls::ClientTls::load(inpaint_common::tls::ClientTlsFiles {
            ca,
            ..Default::default()
        })?;
        let host = endpoint.uri().host().unwrap_or_default().to_string();
        endpoint = endpoint.tls_config(tls.config(&host).0)?;
    }
    let channel = endpoint.connect().await?;
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
    Ok(client.inpaint(authed(request)).await?.into_inner())
}

/// `message` as a call carrying the API key in `INPAINT_API_KEY`, when
/// that is set (`authorization: Bearer KEY`).
pub fn authed<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Ok(key) = std::env::var("INPAINT_API_KEY")
        && let Ok(value) = format!("Bearer {}", key.trim()).parse()
    {
        request.metadata_mut().insert("authorization", value);
    }
    request
}
