//! `inpaint batch`: a folder of photos through the job API, a few at a time,
//! with a progress bar. Outputs already there are skipped, so an interrupted
//! batch resumes where it stopped; each submission carries an idempotency key
//! made from its inputs, so a resubmitted photo finds its earlier job.
//! While the gateway or its job store is away, calls are retried with
//! backoff and watching resumes from the last event seen, for a bounded time.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use inpaint_proto::v1::inpainting_client::InpaintingClient;
use inpaint_proto::v1::{
    DetectTarget, FaceTarget, GetResultRequest, InpaintParams, InpaintRequest, JobState,
    OutputFormat, SubmitJobRequest, inpaint_request::Target,
};
use prost::Message;
use tokio::sync::Semaphore;
use tonic::Code;
use tonic::transport::Channel;

use crate::retry::{Retrier, follow_job, is_transient, retry_after};

/// What to repaint in every photo.
#[derive(Debug, Clone)]
pub enum BatchTarget {
    Faces {
        min_confidence: f32,
    },
    /// What a phrase names (the gateway's detection vocabulary).
    Detect(String),
    /// A mask per photo: the file in this folder with the photo's stem.
    MaskDir(PathBuf),
}

#[derive(Debug, Clone)]
pub struct BatchOptions {
    pub input: PathBuf,
    pub output: PathBuf,
    pub target: BatchTarget,
    pub params: InpaintParams,
    pub concurrency: usize,
    pub progress_bar: bool,
    /// How long to keep retrying while the gateway or its job store is
    /// unavailable, per outage.
    pub patience: Duration,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub done: usize,
    pub skipped: usize,
    pub failed: Vec<(PathBuf, String)>,
}

const EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "webp"];

/// Photos in `dir`, sorted.
fn photos(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    found.sort();
    Ok(found)
}

fn output_for(options: &BatchOptions, photo: &Path) -> PathBuf {
    let stem = photo
        .file_stem()
        .map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned());
    let extension = match OutputFormat::try_from(options.params.output_format) {
        Ok(OutputFormat::Jpeg) => "jpg",
        Ok(OutputFormat::Webp) => "webp",
        Ok(OutputFormat::SameAsInput) => {
            match photo
                .extension()
                .map(|e| e.to_string_lossy().to_ascii_lowercase())
            {
                Some(e) if e == "jpg" || e == "jpeg" => "jpg",
                Some(e) if e == "webp" => "webp",
                _ => "png",
            }
        }
        _ => "png",
    };
    options.output.join(format!("{stem}.{extension}"))
}

/// The format an output file's extension names (`.png`, `.jpg`/`.jpeg`,
/// `.webp`), for `inpaint run -o`.
pub fn format_for_extension(path: &Path) -> anyhow::Result<OutputFormat> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    Ok(match ext.as_str() {
        "png" => OutputFormat::Png,
        "jpg" | "jpeg" => OutputFormat::Jpeg,
        "webp" => OutputFormat::Webp,
        other => anyhow::bail!(
            "{}: cannot tell the format from {other:?}; end the name in .png, .jpg or .webp",
            path.display()
        ),
    })
}

fn mask_for(dir: &Path, photo: &Path) -> anyhow::Result<Vec<u8>> {
    let stem = photo.file_stem().context("photo without a name")?;
    for ext in EXTENSIONS {
        let path = dir.join(stem).with_extension(ext);
        if path.is_file() {
            return std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()));
        }
    }
    bail!(
        "no mask named {} in {}",
        stem.to_string_lossy(),
        dir.display()
    )
}

/// Runs the batch against the gateway at `url`.
pub async fn run(url: &str, options: BatchOptions) -> anyhow::Result<Summary> {
    std::fs::create_dir_all(&options.output)
        .with_context(|| format!("cannot create {}", options.output.display()))?;
    let all = photos(&options.input)?;
    let (todo, skipped): (Vec<PathBuf>, Vec<PathBuf>) = all
        .into_iter()
        .partition(|p| !output_for(&options, p).exists());
    let bar = if options.progress_bar {
        ProgressBar::new(todo.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} photos  {elapsed} elapsed, {eta} left  {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    if !skipped.is_empty() {
        bar.println(format!("{} already done, skipped", skipped.len()));
    }
    let client = crate::client::connect(url).await?;
    let slots = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let options = Arc::new(options);
    let mut tasks = tokio::task::JoinSet::new();
    for photo in todo {
        let (client, options, slots, bar) =
            (client.clone(), options.clone(), slots.clone(), bar.clone());
        let url = url.to_string();
        tasks.spawn(async move {
            let _slot = slots.acquire_owned().await;
            let outcome = one(client, &url, &options, &photo).await;
            bar.inc(1);
            if let Err(err) = &outcome {
                bar.println(format!("failed: {}: {err:#}", photo.display()));
            }
            (photo, outcome)
        });
    }
    let mut summary = Summary {
        skipped: skipped.len(),
        ..Summary::default()
    };
    while let Some(joined) = tasks.join_next().await {
        let (photo, outcome) = joined?;
        match outcome {
            Ok(()) => summary.done += 1,
            Err(err) => summary.failed.push((photo, format!("{err:#}"))),
        }
    }
    bar.finish_with_message(format!(
        "{} done, {} skipped, {} failed",
        summary.done,
        summary.skipped,
        summary.failed.len()
    ));
    summary.failed.sort();
    Ok(summary)
}

/// Submits one photo (retrying while the cluster is busy), follows its job
/// and writes the result.
async fn one(
    mut client: InpaintingClient<Channel>,
    url: &str,
    options: &BatchOptions,
    photo: &Path,
) -> anyhow::Result<()> {
    let image = std::fs::read(photo).with_context(|| format!("cannot read {}", photo.display()))?;
    let target = match &options.target {
        BatchTarget::Faces { min_confidence } => Target::Faces(FaceTarget {
            min_confidence: *min_confidence,
            ..Default::default()
        }),
        BatchTarget::Detect(phrase) => Target::Detect(DetectTarget {
            prompt: phrase.clone(),
            ..Default::default()
        }),
        BatchTarget::MaskDir(dir) => Target::Mask(mask_for(dir, photo)?),
    };
    let request = InpaintRequest {
        image,
        target: Some(target),
        params: Some(options.params.clone()),
        sketch: vec![],
    };
    let mut hasher = DefaultHasher::new();
    request.encode_to_vec().hash(&mut hasher);
    let submit = SubmitJobRequest {
        request: Some(request),
        idempotency_key: format!("batch-{:016x}", hasher.finish()),
    };
    let mut retrier = Retrier::new(url, options.patience);
    let job = loop {
        match client
            .submit_job(crate::client::authed(submit.clone()))
            .await
        {
            Ok(job) => break job.into_inner(),
            // Busy: the cluster is up and says when to come back; no limit.
            Err(status) if status.code() == Code::ResourceExhausted => {
                let wait = retry_after(&status).unwrap_or(Duration::from_secs(1));
                tokio::time::sleep(wait).await;
            }
            // The idempotency key makes a resubmission find the same job.
            Err(status) if is_transient(&status) => retrier.wait(&status).await?,
            Err(status) => bail!("refused: {}", status.message()),
        }
    };
    retrier.succeeded();
    let last = follow_job(&mut client, &mut retrier, &job.id, |_| {}).await?;
    if last.state() != JobState::Succeeded {
        bail!("job {} ended {:?}: {}", job.id, last.state(), last.error);
    }
    let result = loop {
        match client
            .get_result(crate::client::authed(GetResultRequest {
                id: job.id.clone(),
            }))
            .await
        {
            Ok(result) => break result.into_inner(),
            Err(status) if is_transient(&status) => retrier.wait(&status).await?,
            Err(status) => bail!("cannot fetch job {}'s result: {}", job.id, status.message()),
        }
    };
    let out = output_for(options, photo);
    let partial = out.with_extension("png.partial");
    std::fs::write(&partial, &result.image)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, &out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(format: OutputFormat) -> BatchOptions {
        BatchOptions {
            input: "in".into(),
            output: "out".into(),
            target: BatchTarget::Faces {
                min_confidence: 0.0,
            },
            params: InpaintParams {
                output_format: format as i32,
                ..Default::default()
            },
            concurrency: 1,
            progress_bar: false,
            patience: Duration::from_secs(1),
        }
    }

    #[test]
    fn output_names_follow_the_format() {
        let photo = Path::new("in/cat.JPEG");
        for (format, name) in [
            (OutputFormat::Unspecified, "out/cat.png"),
            (OutputFormat::Jpeg, "out/cat.jpg"),
            (OutputFormat::Webp, "out/cat.webp"),
            (OutputFormat::SameAsInput, "out/cat.jpg"),
        ] {
            assert_eq!(output_for(&options(format), photo), Path::new(name));
        }
        assert_eq!(
            format_for_extension(Path::new("a/b.JPG")).unwrap(),
            OutputFormat::Jpeg
        );
        let err = format_for_extension(Path::new("b.gif")).unwrap_err();
        assert!(err.to_string().contains(".png, .jpg or .webp"), "{err}");
    }
}
