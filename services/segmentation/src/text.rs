//! Text lines with the PP-OCR DBNet detector.
//!
//! Input `x` f32 [1,3,H,W] (sides multiples of 32), BGR / 255 normalised with
//! the ImageNet mean and std; output [1,1,H,W] text probability. DBNet is
//! trained on text polygons shrunk towards their centre line, so each line
//! found is grown back ("unclipped") by area * 1.5 / perimeter, then by a
//! margin, so the mask covers the strokes fully, line ends included.

use std::sync::Arc;

use inpaint_imaging::components::label;
use inpaint_imaging::mask::{Shape, grow_in_place};
use inpaint_imaging::resize::resize_rgb;
use inpaint_imaging::{GrayImage, PixelBox, RgbImage};
use inpaint_onnx::Device;
use ort::session::Session;
use ort::value::TensorRef;

use crate::config::Config;
use crate::error::Error;
use crate::model_thread::{ModelThread, Runtime};

const INPUT: &str = "x";
const OUTPUT: &str = "sigmoid_0.tmp_0";
const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];
/// DBNet's unclip ratio (PaddleOCR's default).
const UNCLIP_RATIO: f32 = 1.5;
/// Lines shorter than this on either side (model pixels) are noise.
const MIN_SIDE: u32 = 3;
/// Mean probability a line needs when the request gives none.
pub const DEFAULT_MIN_LINE_SCORE: f32 = 0.5;

/// One text line in image coordinates, with its full-image mask.
pub struct TextLine {
    pub bounds: PixelBox,
    pub score: f32,
    pub mask: GrayImage,
}

struct Settings {
    pixel_threshold: f32,
    max_side: u32,
}

pub struct TextDetector {
    thread: ModelThread<(Arc<RgbImage>, f32), Vec<TextLine>>,
}

impl TextDetector {
    pub const MODEL: &'static str = "ppocr-v4-det";

    pub fn load(runtime: Runtime, config: &Config) -> Result<Self, Error> {
        let (mut session, device) = runtime.open(
            &config.text_model,
            "INPAINT_TEXT_MODEL",
            &[INPUT],
            &[OUTPUT],
        )?;
        let settings = Settings {
            pixel_threshold: config.text_threshold,
            max_side: (config.text_max_side / 32).max(1) * 32,
        };
        let thread = ModelThread::spawn(
            "ppocr-det",
            device,
            config.model_queue,
            move |(image, min): (Arc<RgbImage>, f32)| detect(&mut session, &settings, &image, min),
        )?;
        Ok(Self { thread })
    }

    pub fn device(&self) -> Device {
        self.thread.device()
    }

    /// Lines whose mean probability is at least `min_score` (0 = default).
    pub async fn detect(
        &self,
        image: Arc<RgbImage>,
        min_score: f32,
    ) -> Result<Vec<TextLine>, Error> {
        let min = crate::filter::min_score(min_score, DEFAULT_MIN_LINE_SCORE);
        self.thread.call((image, min)).await
    }
}

/// Model input size: scaled down so the longer side fits `max_side`, each
/// side rounded to a multiple of 32.
fn input_size(width: u32, height: u32, max_side: u32) -> (u32, u32) {
    let scale = (max_side as f32 / width.max(height) as f32).min(1.0);
    let side = |s: u32| (((s as f32 * scale) / 32.0).round() as u32).max(1) * 32;
    (side(width), side(height))
}

fn preprocess(image: &RgbImage, w: u32, h: u32) -> Vec<f32> {
    let resized = resize_rgb(image, w, h);
    let plane = (w * h) as usize;
    let mut tensor = vec![0f32; 3 * plane];
    for (i, px) in resized.as_raw().chunks_exact(3).enumerate() {
        // BGR order, each channel with its own mean and std.
        for (c, &value) in [px[2], px[1], px[0]].iter().enumerate() {
            tensor[c * plane + i] = (value as f32 / 255.0 - MEAN[c]) / STD[c];
        }
    }
    tensor
}

fn detect(
    session: &mut Session,
    settings: &Settings,
    image: &RgbImage,
    min_score: f32,
) -> Result<Vec<TextLine>, Error> {
    let (w, h) = input_size(image.width(), image.height(), settings.max_side);
    let tensor = preprocess(image, w, h);
    let input = TensorRef::from_array_view(([1usize, 3, h as usize, w as usize], &tensor[..]))?;
    let outputs = session.run(ort::inputs![INPUT => input])?;
    let (_, probability) = outputs[OUTPUT].try_extract_tensor::<f32>()?;
    if probability.len() != (w * h) as usize {
        return Err(Error::Inference(format!(
            "text map has {} values, expected {w}x{h}",
            probability.len()
        )));
    }
    Ok(lines(
        probability,
        (w, h),
        (image.width(), image.height()),
        settings.pixel_threshold,
        min_score,
    ))
}

/// Connected text pixels of the probability map (a line's shrunk core),
/// as lines in image space.
fn lines(
    probability: &[f32],
    (w, h): (u32, u32),
    (width, height): (u32, u32),
    pixel_threshold: f32,
    min_score: f32,
) -> Vec<TextLine> {
    let binary: Vec<u8> = probability
        .iter()
        .map(|&p| if p > pixel_threshold { 255 } else { 0 })
        .collect();
    let binary = GrayImage::from_raw(w, h, binary).expect("size checked by the caller");
    let labels = label(&binary);
    let mut sums = vec![0f64; labels.components.len()];
    labels.for_each_run(|c, y, x0, x1| {
        let row = &probability[(y * w) as usize..][x0 as usize..x1 as usize];
        sums[c] += row.iter().map(|&p| p as f64).sum::<f64>();
    });
    let scale = (width as f32 / w as f32, height as f32 / h as f32);
    let mut found = Vec::new();
    for (c, component) in labels.components.iter().enumerate() {
        let core = component.bounds;
        let score = (sums[c] / component.pixels as f64) as f32;
        if core.width.min(core.height) < MIN_SIDE || score < min_score {
            continue;
        }
        let grow = growth(core, component.pixels, scale);
        found.push(render_line(core, grow, scale, (width, height), score));
    }
    found
}

/// How far a line's core box is grown, in image pixels, across the line and
/// along it: DBNet's unclip distance (area * 1.5 / perimeter of the core,
/// its area counted in pixels so that a thin curved band is not taken for
/// a thick line), then a margin of a fifth of the unclipped line's
/// thickness for anti-aliased edges; along the line a further half
/// thickness, because the map fades early at a line's ends (a last "T"
/// loses its crossbar's tip).
fn growth(core: PixelBox, pixels: u64, (sx, sy): (f32, f32)) -> (u32, u32) {
    let (cw, ch) = (core.width as f32, core.height as f32);
    let area = pixels as f32;
    let unclip = area * UNCLIP_RATIO / (2.0 * (cw + ch));
    let horizontal = cw >= ch;
    let (along_scale, across_scale) = if horizontal { (sx, sy) } else { (sy, sx) };
    let core_thickness = area / cw.max(ch);
    let thickness = (core_thickness + 2.0 * unclip) * across_scale;
    let across = unclip * across_scale + (thickness * 0.2).max(2.0);
    let along = unclip * along_scale + (thickness * 0.2).max(2.0) + thickness * 0.5;
    let (across, along) = (across.ceil() as u32, along.ceil() as u32);
    if horizontal {
        (along, across)
    } else {
        (across, along)
    }
}

/// One line's core box scaled to the image and grown by (gx, gy),
/// with round corners, inside a full-image mask. Like DBNet's own
/// post-processing it unclips the core's rectangle: the probability dips
/// between letters and at their tops, the rectangle does not. (A tilted
/// line gets its axis-aligned box: more than its strokes, never less.)
fn render_line(
    core: PixelBox,
    (gx, gy): (u32, u32),
    (sx, sy): (f32, f32),
    (width, height): (u32, u32),
    score: f32,
) -> TextLine {
    // Rectangle grown by all but the rounding radius, which the disc adds.
    let round = gx.min(gy);
    let x0 = ((core.x as f32 * sx).round() as u32).saturating_sub(gx - round);
    let y0 = ((core.y as f32 * sy).round() as u32).saturating_sub(gy - round);
    let x1 = ((core.right() as f32 * sx).round() as u32 + gx - round).min(width);
    let y1 = ((core.bottom() as f32 * sy).round() as u32 + gy - round).min(height);
    let (wx, wy) = (x0.saturating_sub(round), y0.saturating_sub(round));
    let window = PixelBox::new(
        wx,
        wy,
        (x1 + round).min(width) - wx,
        (y1 + round).min(height) - wy,
    );
    let mut local = GrayImage::filled(window.width, window.height, 0);
    let lw = window.width as usize;
    for y in y0..y1 {
        let row = (y - wy) as usize * lw;
        local.as_raw_mut()[row + (x0 - wx) as usize..row + (x1 - wx) as usize].fill(255);
    }
    grow_in_place(&mut local, round as i32, Shape::Ellipse);
    let mut mask = GrayImage::filled(width, height, 0);
    paste(&mut mask, &local, window);
    let bounds = inpaint_imaging::mask::bounding_box(&mask).unwrap_or(window);
    TextLine {
        bounds,
        score,
        mask,
    }
}

fn paste(into: &mut GrayImage, local: &GrayImage, at: PixelBox) {
    let (w, lw) = (into.width() as usize, at.width as usize);
    for y in 0..at.height as usize {
        let src = &local.as_raw()[y * lw..(y + 1) * lw];
        let start = (at.y as usize + y) * w + at.x as usize;
        into.as_raw_mut()[start..start + lw].copy_from_slice(src);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_sides_are_multiples_of_32_and_fit() {
        assert_eq!(input_size(512, 512, 960), (512, 512));
        assert_eq!(input_size(1920, 1080, 960), (960, 544));
        assert_eq!(input_size(10, 700, 960), (32, 704));
    }

    #[test]
    fn a_line_is_grown_past_its_shrunk_core() {
        // A 20x4 core on a 64x32 map, image twice the size.
        let (w, h) = (64u32, 32u32);
        let mut p = vec![0f32; (w * h) as usize];
        for y in 10..14 {
            for x in 20..40 {
                p[(y * w + x) as usize] = 0.9;
            }
        }
        let found = lines(&p, (w, h), (128, 64), 0.3, 0.5);
        assert_eq!(found.len(), 1);
        let b = found[0].bounds;
        // Core in image space: x 40..80, y 20..28; unclip 80*1.5/48 = 2.5
        // model px = 5 image px, plus a margin of 2.
        assert!(
            b.x < 40 && b.right() > 80 && b.y < 20 && b.bottom() > 28,
            "{b:?}"
        );
        assert!((found[0].score - 0.9).abs() < 1e-4);
        // A weak line is dropped.
        assert!(lines(&p, (w, h), (128, 64), 0.3, 0.95).is_empty());
    }
}
