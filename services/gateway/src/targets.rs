//! Public targets (faces, prompt, detect) as segmentation sources, and the
//! segmentation service's field names mapped back to the public ones.

use inpaint_proto::v1::{
    FaceDetection, HandDetection, ObjectDetection, PromptSegmentation, RegionSource,
    SubjectDetection, TextDetection, inpaint_request::Target, region_source::Source,
};

use crate::error::Error;
use crate::vocabulary::{self, Detector};

/// The sources a detection target asks for, and the target's public name.
/// None for an uploaded mask.
pub fn sources(target: &Target) -> Result<Option<(Vec<RegionSource>, &'static str)>, Error> {
    let found = match target {
        Target::Mask(_) => return Ok(None),
        Target::Faces(f) => (
            vec![RegionSource {
                source: Some(Source::Faces(FaceDetection {
                    min_confidence: f.min_confidence,
                    shape: f.shape,
                })),
                filter: f.filter,
            }],
            "target.faces",
        ),
        Target::Prompt(p) => (
            vec![RegionSource {
                source: Some(Source::Prompt(PromptSegmentation {
                    points: p.points.clone(),
                    r#box: p.r#box,
                })),
                filter: None,
            }],
            "target.prompt",
        ),
        Target::Detect(d) => {
            let detectors = vocabulary::parse(&d.prompt)
                .map_err(|why| Error::invalid("target.detect.prompt", why))?;
            let min_confidence = d.min_confidence;
            // Every object class named shares one detector run, placed
            // where the first was named.
            let classes: Vec<u32> = detectors
                .iter()
                .filter_map(|detector| match detector {
                    Detector::Object(class) => Some(*class),
                    _ => None,
                })
                .collect();
            let first_object = detectors
                .iter()
                .position(|detector| matches!(detector, Detector::Object(_)));
            let sources = detectors
                .into_iter()
                .enumerate()
                .filter_map(|(i, detector)| {
                    let source = match detector {
                        Detector::Faces => Source::Faces(FaceDetection {
                            min_confidence,
                            shape: d.face_shape,
                        }),
                        Detector::Hands => Source::Hands(HandDetection { min_confidence }),
                        Detector::Text => Source::Text(TextDetection { min_confidence }),
                        Detector::Subject => Source::Subject(SubjectDetection::default()),
                        Detector::Object(_) if Some(i) == first_object => {
                            Source::Objects(ObjectDetection {
                                classes: classes.clone(),
                                min_confidence,
                            })
                        }
                        Detector::Object(_) => return None,
                    };
                    Some(RegionSource {
                        source: Some(source),
                        filter: d.filter,
                    })
                })
                .collect();
            (sources, "target.detect")
        }
    };
    Ok(Some(found))
}

/// What a target's regions are called in notes ("no faces found").
pub fn describe(target: &Target) -> &'static str {
    match target {
        Target::Mask(_) => "mask",
        Target::Faces(_) => "faces",
        Target::Prompt(_) => "object",
        Target::Detect(_) => "regions",
    }
}

/// Segmentation names fields `sources[i].<kind>.rest` or
/// `sources[i].filter.rest`; the public API calls them `<target>.rest` and
/// `<target>.filter.rest`. Other errors pass through as stage errors.
pub fn public_field(err: Error, target: &'static str) -> Error {
    err.rename_stage_field(|field| {
        let (_, rest) = field.split_once("].")?;
        Some(match rest.split_once('.') {
            Some(("filter", _)) => format!("{target}.{rest}"),
            Some((_kind, inner)) => format!("{target}.{inner}"),
            None if rest == "filter" => format!("{target}.filter"),
            None => target.to_string(),
        })
    })
}
