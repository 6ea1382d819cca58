//! `inpaint`: repaint parts of a photo, through a remote gateway or an
//! embedded cluster started in this process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use inpaint_cli::client;
use inpaint_cli::embedded::{Cluster, ClusterConfig};
use inpaint_proto::v1::{
    FaceTarget, InpaintArea, InpaintParams, InpaintRequest, inpaint_request::Target,
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
    /// Run all four services in this process until Ctrl+C / SIGTERM.
    Serve(ServeArgs),
}

#[derive(Args)]
struct RunArgs {
    /// The photo (PNG, JPEG or WebP).
    photo: PathBuf,

    /// Repaint where this mask is white (or transparent, if it has alpha).
    #[arg(long, conflicts_with = "faces", required_unless_present = "faces")]
    mask: Option<PathBuf>,

    /// Repaint every detected face.
    #[arg(long)]
    faces: bool,

    /// Minimum face score in 0..1 (0 = the service default).
    #[arg(long, env = "INPAINT_MIN_CONFIDENCE", default_value_t = 0.0)]
    min_confidence: f32,

    /// Output PNG (default: out/<photo>-inpainted.png).
    #[arg(short, long)]
    output: Option<PathBuf>,

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

    #[command(flatten)]
    models: ModelArgs,
}

/// What the embedded segmentation service loads.
#[derive(Args)]
struct ModelArgs {
    /// ONNX Runtime library.
    #[arg(
        long,
        env = "ORT_DYLIB_PATH",
        default_value = "models/cache/onnxruntime/libonnxruntime.so"
    )]
    ort_dylib: PathBuf,

    /// YuNet face model.
    #[arg(
        long,
        env = "INPAINT_FACE_MODEL",
        default_value = "models/cache/yunet/face_detection_yunet_2023mar.onnx"
    )]
    face_model: PathBuf,
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run(args) => run(args).await,
        Command::Serve(args) => serve(args).await,
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let image = std::fs::read(&args.photo)
        .with_context(|| format!("cannot read {}", args.photo.display()))?;
    let target = match &args.mask {
        Some(path) => Target::Mask(
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
        ),
        None => Target::Faces(FaceTarget {
            min_confidence: args.min_confidence,
        }),
    };
    let (work_width, work_height) = args.work_size.unwrap_or((0, 0));
    let request = InpaintRequest {
        image,
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
            seed: 0,
        }),
    };

    let response = match &args.gateway {
        Some(url) => client::inpaint(url, request).await?,
        None => {
            inpaint_common::telemetry::init(inpaint_common::LogFormat::Pretty);
            if args.faces {
                require_file(&args.models.ort_dylib)?;
                require_file(&args.models.face_model)?;
            }
            let cluster = Cluster::start(ClusterConfig {
                ort_dylib: args.models.ort_dylib.clone(),
                face_model: args.models.face_model.clone(),
                ..ClusterConfig::default()
            })
            .await?;
            cluster
                .wait_ready(args.faces, Duration::from_secs(120))
                .await?;
            let result = client::inpaint(&cluster.gateway_url(), request).await;
            cluster.shutdown().await?;
            result?
        }
    };

    let output = args
        .output
        .clone()
        .unwrap_or_else(|| default_output(&args.photo));
    if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&output, &response.image)
        .with_context(|| format!("cannot write {}", output.display()))?;
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
        println!(
            "crop box={},{} {}x{} work={}x{}",
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
        ort_dylib: args.models.ort_dylib,
        face_model: args.models.face_model,
        ..ClusterConfig::default()
    })
    .await?;
    tracing::info!(gateway = %cluster.gateway, "embedded cluster running; Ctrl+C to stop");
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
