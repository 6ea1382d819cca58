//! What a page needs before a repaint: the gateway's capabilities, and the
//! mask a target selects (PreviewMask) without repainting it.

use inpaint_common::sd_params::{sampler_names, schedule_names};
use inpaint_imaging::GrayImage;
use inpaint_proto::v1::{
    EngineCapability, GetCapabilitiesResponse, InpaintRequest, ListModelsRequest, ModelCapability,
    PreviewMaskResponse,
};

use crate::decode::{Decoding, decode_photo, encode_gray_png};
use crate::error::Error;
use crate::pipeline::{Pipeline, Regions};

/// Mask values at or above this are inside a region (as uploads are read).
const INSIDE: u8 = 128;

impl Pipeline {
    /// The worker's engines and models, the SD samplers and schedules, and
    /// the detect vocabulary.
    pub async fn capabilities(&self) -> Result<GetCapabilitiesResponse, Error> {
        let engines = self.list_engines().await?;
        let models = self
            .call(
                "worker",
                self.stages.worker.clone().list_models(ListModelsRequest {}),
            )
            .await?;
        Ok(GetCapabilitiesResponse {
            engines: engines
                .engines
                .into_iter()
                .map(|e| EngineCapability {
                    name: e.name,
                    description: e.description,
                })
                .collect(),
            default_engine: engines.default_engine,
            models: models
                .models
                .into_iter()
                .map(|m| ModelCapability {
                    engine: if m.kind == "sd" { "sd" } else { "onnx" }.into(),
                    inpainting_checkpoint: m.kind == "sd" && m.unet_channels == 9,
                    name: m.name,
                })
                .collect(),
            samplers: sampler_names(),
            schedules: schedule_names(),
            detect_words: crate::vocabulary::words(),
        })
    }

    /// Decodes the image, finds the target's regions and answers their
    /// union at the image's (upright) size.
    pub async fn preview_mask(&self, req: InpaintRequest) -> Result<PreviewMaskResponse, Error> {
        let params = req.params.unwrap_or_default();
        let target = crate::pipeline::validate::target(req.target)?;
        let decoding = Decoding {
            max_pixels: self.max_image_pixels,
            upright: !params.keep_stored_orientation,
        };
        let image = decode_photo(&req.image, "image", decoding)?.image;
        let (width, height) = (image.width(), image.height());
        let mut union = GrayImage::filled(width, height, 0);
        let (regions, notes) = match self.find_regions(&target, &image, decoding).await? {
            Regions::Found { masks, regions } => {
                for (area, mask) in masks {
                    paint_inside(&mut union, area.x, area.y, &mask);
                }
                (regions, vec![])
            }
            Regions::None { note } => (vec![], vec![note]),
        };
        Ok(PreviewMaskResponse {
            mask: encode_gray_png(&union)?,
            width,
            height,
            regions,
            notes,
        })
    }
}

/// Sets to 255 the pixels of `union` that `mask` (placed at x, y, inside
/// `union`) covers.
fn paint_inside(union: &mut GrayImage, x: u32, y: u32, mask: &GrayImage) {
    let stride = union.width() as usize;
    let width = mask.width() as usize;
    let out = union.as_raw_mut();
    for (row, values) in mask.as_raw().chunks_exact(width.max(1)).enumerate() {
        let start = (y as usize + row) * stride + x as usize;
        for (o, &v) in out[start..start + width].iter_mut().zip(values) {
            if v >= INSIDE {
                *o = 255;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_painted_where_they_lie() {
        let mut union = GrayImage::filled(6, 4, 0);
        let mask = GrayImage::from_raw(2, 2, vec![100, 0, 0, 200]).unwrap();
        paint_inside(&mut union, 3, 2, &mask);
        let set: Vec<usize> = (0..24).filter(|&i| union.as_raw()[i] == 255).collect();
        assert_eq!(set, [6 * 3 + 4]);
    }
}
