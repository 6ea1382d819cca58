//! `inpaint run`: one photo, its target and the inpaint settings.

use std::path::PathBuf;

use clap::Args;
use inpaint_cli::mask_ops;
use inpaint_proto::v1::{Box, MaskOp};

use super::enums::{Area, Content, FaceShapeArg, Order};
use super::model::ModelArgs;
use super::parse::{parse_box, parse_point, parse_size};
use super::sd::SdArgs;

#[derive(Args)]
pub struct RunArgs {
    /// The photo (PNG, JPEG or WebP).
    pub photo: PathBuf,

    /// Repaint where this mask is white (or transparent, if it has alpha).
    #[arg(long)]
    pub mask: Option<PathBuf>,

    /// Repaint every detected face.
    #[arg(long)]
    pub faces: bool,

    /// Repaint what a phrase names, e.g. "text", "faces and text",
    /// "watermark" (only what our detectors know; others are refused).
    #[arg(long, value_name = "PHRASE")]
    pub detect: Option<String>,

    /// A click on the object to repaint (repeatable), in pixels.
    #[arg(long, value_name = "X,Y", value_parser = parse_point)]
    pub point: Vec<(f32, f32)>,

    /// A click off the object (repeatable), to refine a --point or --box.
    #[arg(long, value_name = "X,Y", value_parser = parse_point)]
    pub background_point: Vec<(f32, f32)>,

    /// A box around the object to repaint.
    #[arg(long = "box", value_name = "X,Y,W,H", value_parser = parse_box)]
    pub frame: Option<Box>,

    /// Minimum detector score in 0..1 (0 = the service default).
    #[arg(long, env = "INPAINT_MIN_CONFIDENCE", default_value_t = 0.0)]
    pub min_confidence: f32,

    /// Keep only the K largest detections.
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub max_count: u32,

    /// Order of the detections (region indices in the response).
    #[arg(long, value_enum, default_value_t = Order::LeftToRight)]
    pub order: Order,

    /// Join all detections into one mask instead of repainting each region
    /// on its own.
    #[arg(long)]
    pub merge_regions: bool,

    /// The mask each face gets (--faces, or faces in --detect): its box,
    /// its outline (mesh), or only its eyes and/or mouth.
    #[arg(long, value_enum, default_value_t = FaceShapeArg::Box)]
    pub face_shape: FaceShapeArg,

    /// Output file; its extension picks the format (.png, .jpg, .webp;
    /// default: out/<photo>-inpainted.png).
    #[arg(short, long)]
    pub output: Option<PathBuf>,

    /// JPEG quality, 1..100 (default 90).
    #[arg(long)]
    pub quality: Option<u32>,

    /// Gateway URL; without it an embedded cluster is started here.
    #[arg(long, env = "INPAINT_GATEWAY")]
    pub gateway: Option<String>,

    /// Repaint everything but the mask.
    #[arg(long)]
    pub invert: bool,

    /// Grow (>0) or shrink (<0) the mask, in pixels.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    pub grow: i32,

    /// Feathered seam width in pixels.
    #[arg(long, default_value_t = 4)]
    pub mask_blur: u32,

    /// Inpaint area (default: only-masked for faces, whole for masks).
    #[arg(long, value_enum)]
    pub area: Option<Area>,

    /// Padding around the mask's box for only-masked.
    #[arg(long)]
    pub padding: Option<u32>,

    /// Working size for only-masked, e.g. 512x512.
    #[arg(long, value_parser = parse_size)]
    pub work_size: Option<(u32, u32)>,

    /// Engine name (default: the worker's default, telea).
    #[arg(long, default_value = "")]
    pub engine: String,

    /// Telea neighbourhood radius (0 = default).
    #[arg(long, default_value_t = 0)]
    pub radius: u32,

    /// Engines "onnx" and "sd": which loaded model (default: the first).
    #[arg(long, default_value = "")]
    pub model: String,

    /// Seed for engines with randomness (noise fill, patchmatch, sd: the
    /// WebUI's CPU noise for the same seed; crops count up from it).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// How far the result may move from the original inside the mask, 0..1.
    #[arg(long)]
    pub strength: Option<f32>,

    /// Take the photo as stored, ignoring its EXIF orientation (by default
    /// it is turned upright, as viewers show it, and the mask with it).
    #[arg(long)]
    pub keep_stored_orientation: bool,

    /// Carry the photo's EXIF block (camera, date, ...) into the result,
    /// its GPS position scrubbed unless --keep-gps.
    #[arg(long)]
    pub keep_metadata: bool,

    /// With --keep-metadata: keep the GPS position too.
    #[arg(long, requires = "keep_metadata")]
    pub keep_gps: bool,

    /// What the engine sees in the hole.
    #[arg(long, value_enum, default_value_t = Content::Fill)]
    pub fill: Content,

    /// Colours painted into the masked area (same size as the photo) that
    /// guide the fill: transparent-background PNG, or the photo painted over.
    #[arg(long)]
    pub sketch: Option<PathBuf>,

    /// A mask operation (repeatable, applied in order) instead of
    /// invert/grow/mask-blur, e.g. `--op grow=16 --op feather=8`; see
    /// `inpaint mask --help` for the operations.
    #[arg(long = "op", value_name = "NAME[=VALUE]", value_parser = mask_ops::parse_spec)]
    pub ops: Vec<MaskOp>,

    /// Match each repaint's colours to its surroundings.
    #[arg(long)]
    pub color_correction: bool,

    /// Poisson-blend each repaint into the photo.
    #[arg(long)]
    pub seamless: bool,

    /// Keep overlapping regions in separate crops.
    #[arg(long)]
    pub keep_crops_apart: bool,

    /// Also write the processed mask that was used to this PNG.
    #[arg(long)]
    pub save_mask: Option<PathBuf>,

    #[command(flatten)]
    pub sd: SdArgs,

    #[command(flatten)]
    pub models: ModelArgs,
}
