//! Validation at the door: a wire `InpaintRequest` in, a `Checked` request
//! or one `Error` naming the public field out. Every rule lives here, and
//! every way in uses it: the synchronous `Inpaint`, `SubmitJob` (which
//! names the fields under `request.`), and a job's run, which rebuilds its
//! checked request from the one stored (the store is shared by gateway
//! replicas, of other versions too during a rolling upgrade, so what comes
//! out of it is held to this replica's rules). The stages take only
//! `Checked`: none of them checks a parameter again.

use inpaint_common::limits::{MAX_RADIUS, MAX_WORK_SIDE, MIN_WORK_SIDE};
use inpaint_proto::v1::{
    self as pb, InpaintArea, InpaintParams, InpaintRequest, OutputFormat, RegionMode,
    inpaint_request::Target,
};

use crate::decode::{DEFAULT_QUALITY, image_size};
use crate::error::Error;
use crate::regions;

/// Padding around the mask's box in ONLY_MASKED mode when not given.
pub const DEFAULT_PADDING: u32 = 32;
/// Most region overrides one request may carry (each unmatched one comes
/// back as a note, so the list must not be unbounded).
pub const MAX_REGION_OVERRIDES: usize = 256;

/// A request every rule has passed, with its enumerations resolved.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The photo as uploaded (its header is known to be good and within
    /// the pixel limit; its pixels are decoded by the first stage).
    pub image: Vec<u8>,
    /// The optional colour sketch (empty: none).
    pub sketch: Vec<u8>,
    pub target: Target,
    pub params: InpaintParams,
    pub mode: RegionMode,
    /// The area to repaint: the request's, or the default for its target.
    pub area: InpaintArea,
    pub format: OutputFormat,
    /// JPEG and WebP quality.
    pub quality: u8,
    /// Pixels the photo's header declares.
    pub pixels: u64,
}

impl Checked {
    /// Regions are repainted one by one (detections at the working size)
    /// unless asked to merge them.
    pub fn separate(&self) -> bool {
        self.mode != RegionMode::Merged
    }

    pub fn padding(&self) -> u32 {
        self.params.padding.unwrap_or(DEFAULT_PADDING)
    }

    /// The engines asked for, each with the public field that names it
    /// (empty: the worker's default).
    pub fn engines(&self) -> Vec<(String, String)> {
        let mut engines = vec![(self.params.engine.clone(), "params.engine".to_string())];
        engines.extend(
            regions::engines(&self.params)
                .enumerate()
                .map(|(k, engine)| {
                    let field = format!("params.region_overrides[{k}].engine");
                    (engine.to_string(), field)
                }),
        );
        engines
    }

    /// The request as a job stores it.
    pub fn into_wire(self) -> InpaintRequest {
        InpaintRequest {
            image: self.image,
            sketch: self.sketch,
            target: Some(self.target),
            params: Some(self.params),
        }
    }
}

/// Checks everything that can be checked before any pixel is decoded:
/// the photo's header (refused over `max_pixels`), the target, and every
/// parameter, those bounded by the photo's size included (its longer side
/// is the same before and after an EXIF turn).
pub fn request(req: InpaintRequest, max_pixels: u64) -> Result<Checked, Error> {
    let (width, height) = image_size(&req.image, "image", max_pixels)?;
    let target = target(req.target)?;
    let params = req.params.unwrap_or_default();
    let upload = matches!(target, Target::Mask(_));
    let resolved = settings(&params, upload, width.max(height))?;
    Ok(Checked {
        image: req.image,
        sketch: req.sketch,
        target,
        params,
        mode: resolved.mode,
        area: resolved.area,
        format: resolved.format,
        quality: resolved.quality,
        pixels: width as u64 * height as u64,
    })
}

/// What the parameters resolve to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub mode: RegionMode,
    pub area: InpaintArea,
    pub format: OutputFormat,
    pub quality: u8,
}

/// Checks every parameter, for an `upload`ed mask or a detection, on a
/// photo whose longer side is `longest`.
pub fn settings(params: &InpaintParams, upload: bool, longest: u32) -> Result<Settings, Error> {
    wire_params(params)?;
    within_image(params, longest)?;
    let mode = region_mode(params, longest)?;
    let area = match InpaintArea::try_from(params.area) {
        // An upload is a single region, repainted in place.
        Ok(InpaintArea::Unspecified) if upload => InpaintArea::Whole,
        Ok(InpaintArea::Unspecified) => InpaintArea::OnlyMasked,
        Ok(area) => area,
        Err(_) => return Err(Error::invalid("params.area", "unknown inpaint area")),
    };
    let format = OutputFormat::try_from(params.output_format)
        .map_err(|_| Error::invalid("params.output_format", "unknown output format"))?;
    let quality = params.quality.map_or(DEFAULT_QUALITY, |q| q as u8);
    Ok(Settings {
        mode,
        area,
        format,
        quality,
    })
}

/// The request's target, which must be set.
pub fn target(target: Option<Target>) -> Result<Target, Error> {
    target.ok_or_else(|| Error::invalid("target", "set `mask`, `faces`, `prompt` or `detect`"))
}

/// The checks on single values.
fn wire_params(params: &InpaintParams) -> Result<(), Error> {
    sd(params)?;
    if let Some(s) = params.strength.filter(|s| !(0.0..=1.0).contains(s)) {
        return Err(Error::invalid(
            "params.strength",
            format!("{s} is not in 0..=1"),
        ));
    }
    if let Some(q) = params.quality.filter(|q| !(1..=100).contains(q)) {
        return Err(Error::invalid(
            "params.quality",
            format!("{q} is not in 1..=100"),
        ));
    }
    if pb::MaskedContent::try_from(params.masked_content).is_err() {
        return Err(Error::invalid(
            "params.masked_content",
            "unknown masked content",
        ));
    }
    for (field, side) in [
        ("params.work_width", params.work_width),
        ("params.work_height", params.work_height),
    ] {
        if side != 0 && !(MIN_WORK_SIDE..=MAX_WORK_SIDE).contains(&side) {
            return Err(Error::invalid(
                field,
                format!("{side} must be 0 (default) or in {MIN_WORK_SIDE}..={MAX_WORK_SIDE}"),
            ));
        }
    }
    if params.radius > MAX_RADIUS {
        return Err(Error::invalid(
            "params.radius",
            format!("{} is over {MAX_RADIUS}", params.radius),
        ));
    }
    Ok(())
}

/// Stable Diffusion settings, checked when the request (or a region
/// override) uses engine "sd" or carries them.
fn sd(params: &InpaintParams) -> Result<(), Error> {
    let uses_sd = params.engine == "sd" || regions::engines(params).any(|e| e == "sd");
    let any_sd = params.sd.is_some() || params.region_overrides.iter().any(|o| o.sd.is_some());
    if !uses_sd && !any_sd {
        return Ok(());
    }
    let sd = params.sd.clone().unwrap_or_default();
    let resolve = |sd: &pb::SdParams, prefix: &str| {
        inpaint_common::sd_params::resolve(sd, prefix)
            .map(|_| ())
            .map_err(|(field, reason)| Error::invalid(field, reason))
    };
    resolve(&sd, "params.sd.")?;
    for (k, o) in params.region_overrides.iter().enumerate() {
        if let Some(own) = &o.sd {
            let merged = regions::merge_sd(params.sd.as_ref(), own);
            resolve(&merged, &format!("params.region_overrides[{k}].sd."))?;
        }
    }
    Ok(())
}

/// Distances bounded by the photo's longer side.
fn within_image(params: &InpaintParams, longest: u32) -> Result<(), Error> {
    if params.grow.unsigned_abs() > longest {
        return Err(Error::invalid(
            "params.grow",
            format!(
                "|{}| is beyond the image's longer side ({longest})",
                params.grow
            ),
        ));
    }
    if params.mask_blur > longest {
        return Err(Error::invalid(
            "params.mask_blur",
            format!(
                "{} is beyond the image's longer side ({longest})",
                params.mask_blur
            ),
        ));
    }
    Ok(())
}

/// `region_mode` and `region_overrides`.
fn region_mode(params: &InpaintParams, longest_side: u32) -> Result<RegionMode, Error> {
    let mode = RegionMode::try_from(params.region_mode)
        .map_err(|_| Error::invalid("params.region_mode", "unknown region mode"))?;
    if mode == RegionMode::Merged && !params.region_overrides.is_empty() {
        return Err(Error::invalid(
            "params.region_overrides",
            "apply to separate regions, but region_mode is MERGED",
        ));
    }
    if params.region_overrides.len() > MAX_REGION_OVERRIDES {
        return Err(Error::invalid(
            "params.region_overrides",
            format!(
                "{} given, at most {MAX_REGION_OVERRIDES}",
                params.region_overrides.len()
            ),
        ));
    }
    let mut seen = Vec::new();
    for (k, o) in params.region_overrides.iter().enumerate() {
        let field = |name: &str| format!("params.region_overrides[{k}].{name}");
        if seen.contains(&o.region) {
            return Err(Error::invalid(field("region"), "is overridden twice"));
        }
        seen.push(o.region);
        if let Some(s) = o.strength.filter(|s| !(0.0..=1.0).contains(s)) {
            return Err(Error::invalid(
                field("strength"),
                format!("{s} is not in 0..=1"),
            ));
        }
        if o.grow.is_some_and(|g| g.unsigned_abs() > longest_side) {
            return Err(Error::invalid(
                field("grow"),
                "is beyond the image's longer side",
            ));
        }
        if o.feather.is_some_and(|f| f > longest_side) {
            return Err(Error::invalid(
                field("feather"),
                "is beyond the image's longer side",
            ));
        }
        let reshapes = o.grow.is_some() || o.feather.is_some();
        if reshapes && (params.invert || !params.mask_ops.is_empty()) {
            return Err(Error::invalid(
                field(if o.grow.is_some() { "grow" } else { "feather" }),
                "cannot be combined with invert or mask_ops (they act on all regions)",
            ));
        }
    }
    Ok(mode)
}

#[cfg(test)]
mod tests {
    use inpaint_proto::v1::{FaceTarget, RegionOverride};

    use super::*;

    /// A 40 x 30 PNG.
    fn photo() -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        image::RgbImage::new(40, 30)
            .write_to(&mut out, image::ImageFormat::Png)
            .unwrap();
        out.into_inner()
    }

    fn with(target: Target, params: InpaintParams) -> InpaintRequest {
        InpaintRequest {
            image: photo(),
            sketch: vec![],
            target: Some(target),
            params: Some(params),
        }
    }

    fn field_of(req: InpaintRequest) -> String {
        match request(req, u64::MAX) {
            Err(Error::Invalid(e)) => e.field,
            other => panic!("expected a refused field, got {other:?}"),
        }
    }

    #[test]
    fn the_area_defaults_by_target() {
        let upload = request(
            with(Target::Mask(photo()), InpaintParams::default()),
            u64::MAX,
        );
        assert_eq!(upload.unwrap().area, InpaintArea::Whole);
        let faces = Target::Faces(FaceTarget::default());
        let faces = request(with(faces, InpaintParams::default()), u64::MAX).unwrap();
        assert_eq!(faces.area, InpaintArea::OnlyMasked);
        assert_eq!((faces.pixels, faces.quality), (1200, DEFAULT_QUALITY));
    }

    #[test]
    fn every_rule_names_its_public_field() {
        let mask = || Target::Mask(photo());
        let bad = |params: InpaintParams| field_of(with(mask(), params));
        // Bounded by the photo's longer side (40), known from its header.
        assert_eq!(
            bad(InpaintParams {
                grow: -41,
                ..Default::default()
            }),
            "params.grow"
        );
        assert_eq!(
            bad(InpaintParams {
                region_overrides: vec![RegionOverride {
                    feather: Some(41),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            "params.region_overrides[0].feather"
        );
        assert_eq!(
            bad(InpaintParams {
                area: 99,
                ..Default::default()
            }),
            "params.area"
        );
        assert_eq!(
            bad(InpaintParams {
                engine: "sd".into(),
                sd: Some(pb::SdParams {
                    sampler: "Heun".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            "params.sd.sampler"
        );
        let no_target = InpaintRequest {
            target: None,
            ..with(mask(), InpaintParams::default())
        };
        assert_eq!(field_of(no_target), "target");
        let too_big = request(with(mask(), InpaintParams::default()), 1199);
        assert!(matches!(too_big, Err(Error::Invalid(e)) if e.field == "image"));
    }
}
