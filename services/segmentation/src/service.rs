//! The `inpaint.v1.Segmentation` gRPC service.

use std::sync::Arc;
use std::time::Instant;

use inpaint_common::tensor::{into_gray_tensor, mask_window, to_rgb, wire_box};
use inpaint_imaging::{PixelBox, RgbImage, mask};
use inpaint_proto::v1::segmentation_server::Segmentation;
use inpaint_proto::v1::{
    FaceShape, PromptSegmentation, Region, RegionSource, SegmentRequest, SegmentResponse,
    SourceReport, region_source::Source,
};
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::error::Error;
use crate::faces::FaceDetector;
use crate::filter::{self, Found};
use crate::hands::HandDetector;
use crate::models::Models;
use crate::objects::ObjectDetector;
use crate::sam::{Click, Prompt, PromptSegmenter};
use crate::subject::SubjectSegmenter;
use crate::text::TextDetector;

pub struct SegmentationService {
    models: Arc<Models>,
    max_image_pixels: u64,
}

/// What one source produced.
struct Outcome {
    found: Vec<Found>,
    model: &'static str,
    device: &'static str,
    embedding_cache_hit: bool,
}

impl SegmentationService {
    pub fn new(max_image_pixels: u64) -> Self {
        Self {
            models: Arc::default(),
            max_image_pixels,
        }
    }

    pub fn models(&self) -> Arc<Models> {
        self.models.clone()
    }

    /// `image` is shared with the model threads, never copied.
    async fn run_source(&self, source: &Source, image: &Arc<RgbImage>) -> Result<Outcome, Error> {
        let (w, h) = (image.width(), image.height());
        let mut embedding_cache_hit = false;
        let (found, model, device) = match source {
            Source::Faces(faces) => {
                let model = self.models.faces.get()?;
                let shape = FaceShape::try_from(faces.shape).unwrap_or_default();
                let found = model
                    .detect(image.clone(), faces.min_confidence, shape)
                    .await?
                    .into_iter()
                    .filter_map(|found| {
                        let f = found.face;
                        let mask = found.shaped.unwrap_or_else(|| {
                            mask::from_box(w, h, snap(f.x, f.y, f.width, f.height, w, h))
                        });
                        Found::new("face", f.score, mask)
                    })
                    .collect();
                (found, FaceDetector::MODEL, model.device())
            }
            Source::Hands(hands) => {
                let model = self.models.hands.get()?;
                let found = model
                    .detect(image.clone(), hands.min_confidence)
                    .await?
                    .into_iter()
                    .filter_map(|hand| Found::new("hand", hand.score, hand.mask))
                    .collect();
                (found, HandDetector::MODEL, model.device())
            }
            Source::Objects(request) => {
                let model = self.models.objects.get()?;
                let objects = model
                    .detect(
                        image.clone(),
                        request.classes.clone(),
                        request.min_confidence,
                    )
                    .await?;
                // Each box becomes the object's own mask when the prompt
                // segmenter is there (the Grounded-SAM flow on a closed
                // vocabulary); its box otherwise.
                let sam = self.models.prompts.get().ok();
                let mut found = Vec::with_capacity(objects.len());
                for o in objects {
                    let frame = [o.x0, o.y0, o.x1, o.y1];
                    let mask = match &sam {
                        Some(sam) => {
                            let prompt = Prompt {
                                clicks: vec![],
                                frame: Some(frame),
                            };
                            sam.segment(image, prompt).await?.mask
                        }
                        None => {
                            mask::from_box(w, h, snap(o.x0, o.y0, o.x1 - o.x0, o.y1 - o.y0, w, h))
                        }
                    };
                    let label = inpaint_common::coco::LABELS[o.class as usize];
                    found.extend(Found::new(label, o.score, mask));
                }
                (found, ObjectDetector::MODEL, model.device())
            }
            Source::Text(text) => {
                let model = self.models.text.get()?;
                let lines = model.detect(image.clone(), text.min_confidence).await?;
                let found = lines
                    .into_iter()
                    .filter_map(|line| Found::new("text", line.score, line.mask))
                    .collect();
                (found, TextDetector::MODEL, model.device())
            }
            Source::Subject(subject) => {
                let model = self.models.subject.get()?;
                let s = model.segment(image.clone(), subject.threshold).await?;
                let found = Found::new("subject", s.score, s.mask).into_iter().collect();
                (found, SubjectSegmenter::MODEL, model.device())
            }
            Source::Prompt(prompt) => {
                let model = self.models.prompts.get()?;
                let m = model.segment(image, to_prompt(prompt)).await?;
                embedding_cache_hit = m.embedding_cache_hit;
                let found = Found::new("object", m.score, m.mask).into_iter().collect();
                (found, PromptSegmenter::MODEL, model.device())
            }
        };
        Ok(Outcome {
            found,
            model,
            device: device.name(),
            embedding_cache_hit,
        })
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
        let image = Arc::new(to_rgb(req.image, "image")?);
        if image.pixel_count() as u64 > self.max_image_pixels {
            return Err(Error::invalid("image", "is over the pixel limit").into());
        }
        if req.sources.is_empty() {
            return Err(Error::invalid("sources", "at least one source is required").into());
        }
        // Every source is checked before any model runs.
        let mut sources = Vec::with_capacity(req.sources.len());
        for (i, source) in req.sources.iter().enumerate() {
            sources.push(validate(source, i, &image)?);
        }
        let mut response = SegmentResponse::default();
        for (source, request) in sources.into_iter().zip(&req.sources) {
            let started = Instant::now();
            let outcome = self.run_source(source, &image).await?;
            let found = outcome.found.len() as u32;
            let filter = request.filter.unwrap_or_default();
            let kept = filter::apply(outcome.found, &filter, image.pixel_count() as u64);
            response.reports.push(SourceReport {
                model: outcome.model.into(),
                found,
                kept: kept.len() as u32,
                embedding_cache_hit: outcome.embedding_cache_hit,
                millis: started.elapsed().as_secs_f64() * 1e3,
                device: outcome.device.into(),
            });
            response.models.push(outcome.model.into());
            response.regions.extend(kept.into_iter().map(|f| {
                // Only the mask's box travels.
                let (area, window) = mask_window(&f.mask);
                Region {
                    r#box: Some(wire_box(f.bounds)),
                    score: f.score,
                    label: f.label.into(),
                    mask: Some(into_gray_tensor(window)),
                    mask_box: Some(wire_box(area)),
                }
            }));
        }
        tracing::Span::current().record("regions", response.regions.len());
        Ok(Response::new(response))
    }
}

/// Checks one source's fields against the image; returns what to run.
fn validate<'a>(source: &'a RegionSource, i: usize, image: &RgbImage) -> Result<&'a Source, Error> {
    let field = |name: &str| format!("sources[{i}].{name}");
    let unit = |value: f32, name: &str| {
        if (0.0..=1.0).contains(&value) {
            Ok(())
        } else {
            Err(Error::invalid(field(name), "must be in 0..=1"))
        }
    };
    if let Some(f) = &source.filter {
        filter::validate(f, &field("filter"))?;
    }
    let source = source
        .source
        .as_ref()
        .ok_or_else(|| Error::invalid(format!("sources[{i}]"), "source is not set"))?;
    match source {
        Source::Faces(f) => {
            unit(f.min_confidence, "faces.min_confidence")?;
            if FaceShape::try_from(f.shape).is_err() {
                return Err(Error::invalid(field("faces.shape"), "unknown face shape"));
            }
        }
        Source::Hands(f) => unit(f.min_confidence, "hands.min_confidence")?,
        Source::Objects(o) => {
            unit(o.min_confidence, "objects.min_confidence")?;
            if o.classes.is_empty() {
                return Err(Error::invalid(
                    field("objects.classes"),
                    "name at least one class",
                ));
            }
            if let Some(c) = o
                .classes
                .iter()
                .find(|&&c| c as usize >= inpaint_common::coco::LABELS.len())
            {
                return Err(Error::invalid(
                    field("objects.classes"),
                    format!("{c} is not a COCO class index (0..=79)"),
                ));
            }
        }
        Source::Text(t) => unit(t.min_confidence, "text.min_confidence")?,
        Source::Subject(s) => unit(s.threshold, "subject.threshold")?,
        Source::Prompt(p) => validate_prompt(p, &field("prompt"), image)?,
    }
    Ok(source)
}

fn validate_prompt(p: &PromptSegmentation, field: &str, image: &RgbImage) -> Result<(), Error> {
    let (w, h) = (image.width() as f32, image.height() as f32);
    if p.points.is_empty() && p.r#box.is_none() {
        return Err(Error::invalid(field, "needs at least one point or a box"));
    }
    for (j, point) in p.points.iter().enumerate() {
        let inside = (0.0..w).contains(&point.x) && (0.0..h).contains(&point.y);
        if !inside {
            return Err(Error::invalid(
                format!("{field}.points[{j}]"),
                format!("({}, {}) is outside the {w}x{h} image", point.x, point.y),
            ));
        }
    }
    if let Some(b) = &p.r#box {
        if b.width == 0 || b.height == 0 {
            return Err(Error::invalid(format!("{field}.box"), "is empty"));
        }
        let right = b.x as u64 + b.width as u64;
        let bottom = b.y as u64 + b.height as u64;
        if right > image.width() as u64 || bottom > image.height() as u64 {
            return Err(Error::invalid(
                format!("{field}.box"),
                format!("reaches past the {w}x{h} image"),
            ));
        }
    }
    if p.points.iter().all(|pt| pt.background) && p.r#box.is_none() {
        return Err(Error::invalid(
            format!("{field}.points"),
            "only background points: mark at least one point on the object, or give a box",
        ));
    }
    Ok(())
}

fn to_prompt(p: &PromptSegmentation) -> Prompt {
    Prompt {
        clicks: p
            .points
            .iter()
            .map(|pt| Click {
                x: pt.x,
                y: pt.y,
                background: pt.background,
            })
            .collect(),
        frame: p.r#box.map(|b| {
            [
                b.x as f32,
                b.y as f32,
                (b.x + b.width) as f32,
                (b.y + b.height) as f32,
            ]
        }),
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
