//! `inpaint batch`: a folder of photos through the job API.

use std::path::PathBuf;

use clap::Args;

use super::enums::Format;
use super::job::DEFAULT_RETRY_SECS;
use super::model::ModelArgs;
use super::sd::SdArgs;

#[derive(Args)]
#[command(group(clap::ArgGroup::new("batch_target").required(true)))]
pub struct BatchArgs {
    /// Folder of photos (PNG, JPEG, WebP).
    pub input: PathBuf,

    /// Folder for the results (one per photo, same stem, extension by
    /// --format).
    #[arg(short, long)]
    pub output: PathBuf,

    /// Format of the results.
    #[arg(long, value_enum, default_value_t = Format::Png)]
    pub format: Format,

    /// JPEG quality, 1..100 (default 90).
    #[arg(long)]
    pub quality: Option<u32>,

    /// Repaint every face.
    #[arg(long, group = "batch_target")]
    pub faces: bool,

    /// Repaint what a phrase names on every photo, e.g. "text" or
    /// "watermark" (see `run --detect`).
    #[arg(long, value_name = "PHRASE", group = "batch_target")]
    pub detect: Option<String>,

    /// Folder of masks, one per photo with the same stem.
    #[arg(long, group = "batch_target")]
    pub mask_dir: Option<PathBuf>,

    /// Jobs in flight at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,

    /// Gateway URL; without it an embedded cluster is started here.
    #[arg(long, env = "INPAINT_GATEWAY")]
    pub gateway: Option<String>,

    /// Engine name.
    #[arg(long, default_value = "")]
    pub engine: String,

    /// Engines "onnx" and "sd": which loaded model (default: the first).
    #[arg(long, default_value = "")]
    pub model: String,

    /// Seed for engines with randomness (each photo's crops count up from
    /// it with engine "sd", as the WebUI's batch seeds).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Feathered seam width in pixels.
    #[arg(long, default_value_t = 4)]
    pub mask_blur: u32,

    /// Grow (>0) or shrink (<0) the mask, in pixels.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    pub grow: i32,

    /// No progress bar (for logs).
    #[arg(long)]
    pub quiet: bool,

    /// Seconds to keep retrying while the gateway or its job store is
    /// unavailable (per outage) before a photo fails.
    #[arg(long, env = "INPAINT_RETRY_SECS", default_value_t = DEFAULT_RETRY_SECS)]
    pub retry_secs: u64,

    #[command(flatten)]
    pub sd: SdArgs,

    #[command(flatten)]
    pub models: ModelArgs,
}
