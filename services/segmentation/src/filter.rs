//! Which detections to keep and in what order (ADetailer's filters):
//! confidence, area ratio, the k largest, then ordering, so that "the
//! second face" means the same face on every run.

use inpaint_imaging::{GrayImage, PixelBox};
use inpaint_proto::v1::{DetectionFilter, RegionOrder};

use crate::error::Error;

/// A region found by a source, before filtering.
pub struct Found {
    pub bounds: PixelBox,
    pub score: f32,
    pub label: &'static str,
    /// Full-image GRAY8, 255 inside.
    pub mask: GrayImage,
    /// Pixels inside the mask.
    pub area: u64,
}

impl Found {
    pub fn new(label: &'static str, score: f32, mask: GrayImage) -> Option<Self> {
        let bounds = inpaint_imaging::mask::bounding_box(&mask)?;
        let area = mask.as_raw().iter().filter(|&&v| v > 0).count() as u64;
        Some(Self {
            bounds,
            score,
            label,
            mask,
            area,
        })
    }
}

/// Checks the filter's fields; `field` is its path in the request.
pub fn validate(filter: &DetectionFilter, field: &str) -> Result<(), Error> {
    let unit = |value: f32, name: &str| {
        if (0.0..=1.0).contains(&value) {
            Ok(())
        } else {
            Err(Error::invalid(
                format!("{field}.{name}"),
                "must be in 0..=1",
            ))
        }
    };
    unit(filter.min_confidence, "min_confidence")?;
    unit(filter.min_area_ratio, "min_area_ratio")?;
    unit(filter.max_area_ratio, "max_area_ratio")?;
    if filter.max_area_ratio > 0.0 && filter.max_area_ratio < filter.min_area_ratio {
        return Err(Error::invalid(
            format!("{field}.max_area_ratio"),
            "is below min_area_ratio",
        ));
    }
    if RegionOrder::try_from(filter.order).is_err() {
        return Err(Error::invalid(format!("{field}.order"), "unknown order"));
    }
    Ok(())
}

/// Applies a validated filter to `found` for an image of `image_pixels`.
pub fn apply(mut found: Vec<Found>, filter: &DetectionFilter, image_pixels: u64) -> Vec<Found> {
    let ratio = |f: &Found| f.area as f64 / image_pixels.max(1) as f64;
    found.retain(|f| {
        f.score >= filter.min_confidence
            && ratio(f) >= filter.min_area_ratio as f64
            && (filter.max_area_ratio <= 0.0 || ratio(f) <= filter.max_area_ratio as f64)
    });
    if filter.max_count > 0 && found.len() > filter.max_count as usize {
        // Stable: equal areas keep the detector's order.
        found.sort_by_key(|f| std::cmp::Reverse(f.area));
        found.truncate(filter.max_count as usize);
    }
    match RegionOrder::try_from(filter.order).unwrap_or_default() {
        RegionOrder::Unspecified | RegionOrder::LeftToRight => {
            found.sort_by_key(|f| (f.bounds.x, f.bounds.y))
        }
        RegionOrder::LargestFirst => found.sort_by_key(|f| std::cmp::Reverse(f.area)),
        RegionOrder::MostConfidentFirst => found.sort_by(|a, b| b.score.total_cmp(&a.score)),
    }
    found
}

/// Intersection over union of two boxes given as (x0, y0, x1, y1).
pub fn box_iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let w = a[2].min(b[2]) - a[0].max(b[0]);
    let h = a[3].min(b[3]) - a[1].max(b[1]);
    if w <= 0.0 || h <= 0.0 {
        return 0.0;
    }
    let inter = w * h;
    inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
}

/// The score a detection must reach: the request's, or the detector's
/// default where the request says 0.
pub fn min_score(requested: f32, default: f32) -> f32 {
    if requested > 0.0 { requested } else { default }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(x: u32, side: u32, score: f32) -> Found {
        let area = PixelBox::new(x, 0, side, side);
        Found::new(
            "face",
            score,
            inpaint_imaging::mask::from_box(100, 100, area),
        )
        .unwrap()
    }

    fn xs(found: &[Found]) -> Vec<u32> {
        found.iter().map(|f| f.bounds.x).collect()
    }

    #[test]
    fn filters_then_orders() {
        let all = || vec![found(50, 10, 0.9), found(0, 20, 0.7), found(80, 5, 0.95)];
        let mut f = DetectionFilter::default();
        assert_eq!(xs(&apply(all(), &f, 10_000)), vec![0, 50, 80]);
        f.order = RegionOrder::LargestFirst as i32;
        assert_eq!(xs(&apply(all(), &f, 10_000)), vec![0, 50, 80]);
        f.order = RegionOrder::MostConfidentFirst as i32;
        assert_eq!(xs(&apply(all(), &f, 10_000)), vec![80, 50, 0]);
        f.min_confidence = 0.8;
        assert_eq!(xs(&apply(all(), &f, 10_000)), vec![80, 50]);
        let k = DetectionFilter {
            max_count: 2,
            ..Default::default()
        };
        assert_eq!(xs(&apply(all(), &k, 10_000)), vec![0, 50]);
        // 100 px of 10 000 = 0.01; 400 = 0.04; 25 = 0.0025.
        let sized = DetectionFilter {
            min_area_ratio: 0.005,
            max_area_ratio: 0.02,
            ..Default::default()
        };
        assert_eq!(xs(&apply(all(), &sized, 10_000)), vec![50]);
    }

    #[test]
    fn bad_filters_name_their_field() {
        let f = DetectionFilter {
            min_area_ratio: 0.5,
            max_area_ratio: 0.1,
            ..Default::default()
        };
        let err = validate(&f, "sources[0].filter").unwrap_err().to_string();
        assert!(err.contains("sources[0].filter.max_area_ratio"), "{err}");
        let f = DetectionFilter {
            min_confidence: 2.0,
            ..Default::default()
        };
        assert!(validate(&f, "f").is_err());
    }
}
