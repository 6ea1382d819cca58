//! The composite stage: the mask service pastes each repaint back, given
//! only the windows of the photo the crops touch, and the windows that come
//! back are pasted into the photo here.

use inpaint_common::tensor::{into_rgb_tensor, to_rgb, wire_box};
use inpaint_imaging::{PixelBox, RgbImage};
use inpaint_proto::v1::{self as pb, CompositeRequest, CropResult};

use super::base::Pipeline;
use super::repaint::{Plan, crop_area};
use super::validate::Checked;
use crate::error::Error;

impl Pipeline {
    /// The photo with every crop's repaint `images` pasted back as `plan`
    /// says (its alphas travel to the mask service, so they are taken).
    pub(super) async fn composite(
        &self,
        req: &Checked,
        image: RgbImage,
        plan: &mut Plan,
        images: Vec<pb::Tensor>,
    ) -> Result<RgbImage, Error> {
        let alphas = std::mem::take(&mut plan.alphas);
        // What is pasted: each crop, or the part of it the worker answered
        // with.
        let (pasted, alphas): (Vec<pb::Crop>, Vec<Option<pb::Tensor>>) = plan
            .crops
            .iter()
            .zip(alphas)
            .zip(&plan.answers)
            .map(|((crop, alpha), answer)| match answer {
                Some(part) => crate::trim::narrow(crop, alpha, *part),
                None => (crop.clone(), alpha),
            })
            .unzip();
        // Only the parts the crops touch travel, there and back: the
        // boxes of each group of overlapping crops.
        let boxes = pasted
            .iter()
            .map(|crop| crop_area(crop, &image))
            .collect::<Result<Vec<_>, _>>()?;
        let windows = PixelBox::merge_overlapping(&boxes);
        let composited = self
            .call(
                "mask",
                self.stages.mask.clone().composite(CompositeRequest {
                    image: None,
                    windows: windows
                        .iter()
                        .map(|w| pb::Window {
                            r#box: Some(wire_box(*w)),
                            image: Some(into_rgb_tensor(image.crop(*w))),
                        })
                        .collect(),
                    results: pasted
                        .into_iter()
                        .zip(images)
                        .zip(alphas)
                        .map(|((crop, image), alpha)| CropResult {
                            crop: Some(crop),
                            image: Some(image),
                            alpha,
                        })
                        .collect(),
                    color_correction: req.params.color_correction,
                    seamless: req.params.seamless,
                }),
            )
            .await?;
        if composited.windows.len() != windows.len() {
            let wrong = format!(
                "{} windows back for {}",
                composited.windows.len(),
                windows.len()
            );
            return Err(Error::stage_fault("mask", wrong));
        }
        let mut result = image;
        for (w, back) in windows.iter().zip(composited.windows) {
            let back =
                to_rgb(Some(back), "window").map_err(|status| Error::stage("mask", status))?;
            if (back.width(), back.height()) != (w.width, w.height) {
                let wrong = format!("a window came back {}x{}", back.width(), back.height());
                return Err(Error::stage_fault("mask", wrong));
            }
            result.paste(&back, w.x, w.y);
        }
        Ok(result)
    }
}
