//! The target stage: an uploaded mask as it is, or the regions the
//! segmentation service finds for faces, a prompt or detectors.

use inpaint_common::tensor::{box_inside, from_rgb, mask_window, to_gray, wire_box};
use inpaint_imaging::{GrayImage, PixelBox, RgbImage, mask};
use inpaint_proto::v1::{self as pb, SegmentRequest, inpaint_request::Target};

use super::base::Pipeline;
use crate::decode::{Decoding, decode_mask};
use crate::error::Error;
use crate::targets;

/// Uploaded masks are binarised at this level before the user's operators.
pub(super) const MASK_LEVEL: u32 = 128;

/// What to repaint, once decoded.
pub(crate) enum Regions {
    Found {
        /// Each region's mask as it travels: its box and the pixels in it.
        masks: Vec<(PixelBox, GrayImage)>,
        regions: Vec<pb::Region>,
    },
    None {
        note: String,
    },
}

impl Pipeline {
    pub(crate) async fn find_regions(
        &self,
        target: &Target,
        image: &RgbImage,
        decoding: Decoding,
    ) -> Result<Regions, Error> {
        match target {
            Target::Mask(bytes) => uploaded(bytes, image, decoding),
            detection => self.detect(detection, image).await,
        }
    }

    async fn detect(&self, detection: &Target, image: &RgbImage) -> Result<Regions, Error> {
        let (sources, public) = targets::sources(detection)?.expect("an upload is not a detection");
        let found = self
            .call(
                "segmentation",
                self.stages.segmentation.clone().segment(SegmentRequest {
                    image: Some(from_rgb(image)),
                    sources,
                }),
            )
            .await
            .map_err(|err| targets::public_field(err, public))?;
        if found.regions.is_empty() {
            let what = targets::describe(detection);
            return Ok(Regions::None {
                note: format!("no {what} found: nothing to repaint"),
            });
        }
        let mut masks = Vec::with_capacity(found.regions.len());
        let mut regions = Vec::with_capacity(found.regions.len());
        let (w, h) = (image.width(), image.height());
        for mut region in found.regions {
            let m = to_gray(region.mask.take(), "regions.mask")
                .map_err(|status| Error::stage("segmentation", status))?;
            // A mask of the image's size when no box comes with it.
            let area = region
                .mask_box
                .take()
                .unwrap_or(wire_box(PixelBox::new(0, 0, w, h)));
            let fits =
                box_inside(&area, w, h) && (m.width(), m.height()) == (area.width, area.height);
            if !fits {
                return Err(Error::stage_fault(
                    "segmentation",
                    "a region mask that does not fit its box in the image",
                ));
            }
            masks.push((PixelBox::new(area.x, area.y, area.width, area.height), m));
            regions.push(region);
        }
        Ok(Regions::Found { masks, regions })
    }
}

/// An uploaded mask: one region, its box the mask's.
fn uploaded(bytes: &[u8], image: &RgbImage, decoding: Decoding) -> Result<Regions, Error> {
    let m = decode_mask(bytes, image.width(), image.height(), decoding)?;
    let window = mask_window(&m);
    let Some(area) = mask::bounding_box(&mask::threshold(&m, MASK_LEVEL as u8)) else {
        // Still goes through the operators: an inverted empty mask is full.
        return Ok(Regions::Found {
            masks: vec![window],
            regions: vec![],
        });
    };
    let region = pb::Region {
        r#box: Some(wire_box(area)),
        score: 1.0,
        label: "upload".into(),
        mask: None,
        mask_box: None,
    };
    Ok(Regions::Found {
        masks: vec![window],
        regions: vec![region],
    })
}
