//! The encode stage: the response, with the result in the format asked
//! for, or the upload as it came when there was nothing to repaint.

use inpaint_common::tensor::to_gray;
use inpaint_imaging::RgbImage;
use inpaint_proto::v1::{self as pb, InpaintResponse, OutputFormat};

use super::validate::Checked;
use crate::decode::{Carried, encode_gray_png, encode_result};
use crate::error::Error;

/// What the response says besides its image.
pub(super) struct Said {
    pub notes: Vec<String>,
    pub regions: Vec<pb::Region>,
    pub crops: Vec<pb::Crop>,
    pub timings: Vec<pb::StageTiming>,
    pub engine: String,
}

/// The repainted photo and the mask used, encoded.
pub(super) struct Encoded {
    image: Vec<u8>,
    mime_type: &'static str,
    /// PNG; empty unless the request asked for the mask.
    mask: Vec<u8>,
}

/// The repainted photo, encoded, with the mask used when asked for.
pub(super) fn repainted(
    req: &Checked,
    result: &RgbImage,
    carried: Carried<'_>,
    mask: Option<pb::Tensor>,
) -> Result<Encoded, Error> {
    let (encoded, mime_type) = encode_result(result, req.format, req.quality, &req.image, carried)?;
    let used_mask = match mask {
        Some(m) => {
            let m = to_gray(Some(m), "mask").map_err(|status| Error::stage("mask", status))?;
            encode_gray_png(&m)?
        }
        None => vec![],
    };
    Ok(Encoded {
        image: encoded,
        mime_type,
        mask: used_mask,
    })
}

/// The response for a repainted photo.
pub(super) fn response(result: &RgbImage, encoded: Encoded, said: Said) -> InpaintResponse {
    InpaintResponse {
        image: encoded.image,
        mime_type: encoded.mime_type.into(),
        width: result.width(),
        height: result.height(),
        unchanged: false,
        notes: said.notes,
        regions: said.regions,
        crops: said.crops,
        timings: said.timings,
        engine: said.engine,
        mask: encoded.mask,
    }
}

/// Nothing to repaint: the upload as it came, unless another format (or
/// an upright copy of a turned photo) was asked for.
pub(super) fn unchanged(
    req: Checked,
    image: &RgbImage,
    carried: Carried<'_>,
    said: Said,
) -> Result<InpaintResponse, Error> {
    let sent = sniff_mime(&req.image);
    let wanted = match req.format {
        OutputFormat::Unspecified | OutputFormat::SameAsInput => sent,
        OutputFormat::Png => "image/png",
        OutputFormat::Jpeg => "image/jpeg",
        OutputFormat::Webp => "image/webp",
    };
    let (bytes, mime_type) = if wanted == sent {
        (req.image, sent)
    } else {
        encode_result(image, req.format, req.quality, &req.image, carried)?
    };
    Ok(InpaintResponse {
        mime_type: mime_type.into(),
        image: bytes,
        width: image.width(),
        height: image.height(),
        unchanged: true,
        notes: said.notes,
        regions: said.regions,
        crops: vec![],
        timings: said.timings,
        engine: String::new(),
        mask: vec![],
    })
}

fn sniff_mime(bytes: &[u8]) -> &'static str {
    match image::guess_format(bytes) {
        Ok(image::ImageFormat::Jpeg) => "image/jpeg",
        Ok(image::ImageFormat::WebP) => "image/webp",
        _ => "image/png",
    }
}
