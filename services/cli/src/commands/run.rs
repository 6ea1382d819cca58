//! `inpaint run`: one photo through the gateway (or an embedded cluster),
//! the result written and what the cluster did printed.

use std::path::{Path, PathBuf};

use anyhow::Context;
use inpaint_cli::client;
use inpaint_proto::v1::{
    DetectTarget, DetectionFilter, FaceShape, FaceTarget, InpaintArea, InpaintParams,
    InpaintRequest, InpaintResponse, MaskedContent, OutputFormat, Point, PromptTarget, RegionMode,
    RegionOrder, inpaint_request::Target,
};

use crate::args::RunArgs;

/// Repaints the photo and writes the result (and the mask, if asked).
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| default_output(&args.photo));
    let request = request(&args, &output)?;

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
    report(&response, &output);
    Ok(())
}

/// The request: the files read, in the order their errors should surface
/// (photo, target, sketch, then the output's format).
fn request(args: &RunArgs, output: &Path) -> anyhow::Result<InpaintRequest> {
    let image = std::fs::read(&args.photo)
        .with_context(|| format!("cannot read {}", args.photo.display()))?;
    let target = run_target(args)?;
    let sketch = match &args.sketch {
        Some(path) => {
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?
        }
        None => vec![],
    };
    let output_format = inpaint_cli::batch::format_for_extension(output)?;
    Ok(InpaintRequest {
        image,
        sketch,
        target: Some(target),
        params: Some(params(args, output_format)),
    })
}

/// The inpaint settings the flags give.
fn params(args: &RunArgs, output_format: OutputFormat) -> InpaintParams {
    let (work_width, work_height) = args.work_size.unwrap_or((0, 0));
    InpaintParams {
        invert: args.invert,
        grow: args.grow,
        mask_blur: args.mask_blur,
        area: args
            .area
            .map_or(InpaintArea::Unspecified, InpaintArea::from) as i32,
        padding: args.padding,
        work_width,
        work_height,
        engine: args.engine.clone(),
        radius: args.radius,
        seed: args.seed,
        model: args.model.clone(),
        strength: args.strength,
        masked_content: MaskedContent::from(args.fill) as i32,
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
    }
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
        order: RegionOrder::from(args.order) as i32,
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
            shape: FaceShape::from(args.face_shape) as i32,
        })
    } else if let Some(phrase) = &args.detect {
        Target::Detect(DetectTarget {
            prompt: phrase.clone(),
            min_confidence: args.min_confidence,
            filter: Some(filter),
            face_shape: FaceShape::from(args.face_shape) as i32,
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

/// Prints the notes, regions, crops and timings, then the file written.
fn report(response: &InpaintResponse, output: &Path) {
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
}

/// Where the result goes without `-o`, as `run --help` says.
fn default_output(photo: &Path) -> PathBuf {
    let stem = photo
        .file_stem()
        .map_or("image".into(), |s| s.to_string_lossy().into_owned());
    PathBuf::from("out").join(format!("{stem}-inpainted.png"))
}
