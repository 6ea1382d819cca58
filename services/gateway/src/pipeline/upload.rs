//! The decode stage: the photo (upright unless asked otherwise), what its
//! result carries back (profile, EXIF, alpha and depth), and the sketch.

use image::DynamicImage;
use inpaint_imaging::{GrayImage, RgbImage};

use super::validate::Checked;
use crate::decode::{Carried, Decoding, decode_photo, decode_sketch};
use crate::error::Error;

/// The decoded upload.
pub(super) struct Upload {
    pub image: RgbImage,
    pub carried: Kept,
    /// What the response says about the photo's colour model.
    pub notes: Vec<String>,
    /// The sketch's colours and the pixels it paints, at the photo's size.
    pub sketch: Option<(RgbImage, GrayImage)>,
}

/// What the result takes back from the upload besides its pixels.
pub(super) struct Kept {
    icc: Option<Vec<u8>>,
    exif: Option<Vec<u8>>,
    deep: Option<DynamicImage>,
}

impl Kept {
    pub fn carried(&self) -> Carried<'_> {
        Carried {
            icc: self.icc.as_deref(),
            exif: self.exif.as_deref(),
            deep: self.deep.as_ref(),
        }
    }
}

pub(super) fn decode(req: &Checked, decoding: Decoding) -> Result<Upload, Error> {
    let params = &req.params;
    let photo = decode_photo(&req.image, "image", decoding)?;
    let exif = photo
        .exif
        .filter(|_| params.keep_metadata)
        .map(|e| crate::exif::carried(e, photo.turned, params.keep_gps));
    let sketch = if req.sketch.is_empty() {
        None
    } else {
        Some(decode_sketch(&req.sketch, &photo.image, decoding)?)
    };
    Ok(Upload {
        image: photo.image,
        carried: Kept {
            icc: photo.icc,
            exif,
            deep: photo.deep,
        },
        notes: photo.notes,
        sketch,
    })
}
