//! `inpaint batch`: the flags turned into batch options, the summary
//! printed, and a failure exit when any photo failed.

use std::time::Duration;

use anyhow::bail;
use inpaint_cli::batch::{BatchOptions, BatchTarget};
use inpaint_proto::v1::{InpaintParams, OutputFormat};

use crate::args::BatchArgs;

/// Repaints the folder, on the gateway named or an embedded cluster.
pub async fn batch(args: BatchArgs) -> anyhow::Result<()> {
    let options = BatchOptions {
        input: args.input.clone(),
        output: args.output.clone(),
        target: match (&args.mask_dir, &args.detect) {
            (Some(dir), _) => BatchTarget::MaskDir(dir.clone()),
            (None, Some(phrase)) => BatchTarget::Detect(phrase.clone()),
            (None, None) => BatchTarget::Faces {
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
            output_format: OutputFormat::from(args.format) as i32,
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
