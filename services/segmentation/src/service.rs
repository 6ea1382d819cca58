//! The `inpaint.v1.Segmentation` gRPC service.

use std::sync::{Arc, OnceLock};

use inpaint_common::tensor::{into_gray_tensor, to_rgb};
use inpaint_imaging::{PixelBox, mask};
use inpaint_proto::v1::segmentation_server::Segmentation;
use inpaint_proto::v1::{
    Box as WireBox, Region, SegmentRequest, SegmentResponse, region_source::Source,
};
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::detector::FaceDetector;
use crate::error::Error;

/// Where the face detector lands once loaded, or why it could not load.
pub type DetectorSlot = Arc<OnceLock<Result<Arc<FaceDetector>, String>>>;

pub struct SegmentationService {
    faces: DetectorSlot,
    max_image_pixels: u64,
}

impl SegmentationService {
    pub fn new(max_image_pixels: u64) -> Self {
        Self {
            faces: Arc::default(),
            max_image_pixels,
        }
    }

    pub fn detector_slot(&self) -> DetectorSlot {
        self.faces.clone()
    }

    fn face_detector(&self) -> Result<Arc<FaceDetector>, Error> {
        match self.faces.get() {
            None => Err(Error::Loading),
            Some(Ok(d)) => Ok(d.clone()),
            Some(Err(why)) => Err(Error::Unavailable(why.clone())),
        }
    }
}

#[tonic::async_trait]
impl Segmentation for SegmentationService {
    #[instrument(skip_all, fields(sources = request.get_ref().sources.len(), regions))]
    async fn segment(
        &self,
        request: Request<SegmentRequest>,
    ) -> Result<Response<SegmentResponse>, Status> {
        let req = request.into_inner();
        let image = to_rgb(req.image, "image")?;
        if image.pixel_count() as u64 > self.max_image_pixels {
            return Err(Error::invalid("image", "is over the pixel limit").into());
        }
        if req.sources.is_empty() {
            return Err(Error::invalid("sources", "at least one source is required").into());
        }
        let mut regions = Vec::new();
        let mut models = Vec::new();
        for (i, source) in req.sources.iter().enumerate() {
            match &source.source {
                None => {
                    return Err(Error::invalid(format!("sources[{i}]"), "source is not set").into());
                }
                Some(Source::Faces(faces)) => {
                    let min = faces.min_confidence;
                    if !(0.0..=1.0).contains(&min) {
                        return Err(Error::invalid(
                            format!("sources[{i}].faces.min_confidence"),
                            "must be in 0..=1",
                        )
                        .into());
                    }
                    let detector = self.face_detector()?;
                    let found = detector.detect(image.clone(), min).await?;
                    models.push(detector.model_name().to_string());
                    for face in found {
                        let area = snap(
                            face.x,
                            face.y,
                            face.width,
                            face.height,
                            image.width(),
                            image.height(),
                        );
                        regions.push(Region {
                            r#box: Some(WireBox {
                                x: area.x,
                                y: area.y,
                                width: area.width,
                                height: area.height,
                            }),
                            score: face.score,
                            label: "face".into(),
                            mask: Some(into_gray_tensor(mask::from_box(
                                image.width(),
                                image.height(),
                                area,
                            ))),
                        });
                    }
                }
            }
        }
        tracing::Span::current().record("regions", regions.len());
        Ok(Response::new(SegmentResponse { regions, models }))
    }
}

/// Float box to whole pixels covering it, inside the image.
fn snap(x: f32, y: f32, w: f32, h: f32, width: u32, height: u32) -> PixelBox {
    let x0 = (x.floor().max(0.0) as u32).min(width - 1);
    let y0 = (y.floor().max(0.0) as u32).min(height - 1);
    let x1 = ((x + w).ceil() as u32).clamp(x0 + 1, width);
    let y1 = ((y + h).ceil() as u32).clamp(y0 + 1, height);
    PixelBox::new(x0, y0, x1 - x0, y1 - y0)
}
