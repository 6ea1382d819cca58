//! A Stable Diffusion export in the diffusers/optimum ONNX layout, checked
//! and opened: four graphs whose inputs and outputs are read from the
//! sessions (names, element types, ranks), never assumed.
//!
//! ```text
//! model_index.json
//! tokenizer/        vocab.json + merges.txt, or tokenizer.json
//! text_encoder/     model.onnx
//! unet/             model.onnx (+ weights.pb / model.onnx_data)
//! vae_encoder/      model.onnx   output latent_parameters or latent_sample
//! vae_decoder/      model.onnx
//! scheduler/        scheduler_config.json
//! */config.json     optional (VAE scaling_factor, default 0.18215)
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use inpaint_onnx::Device;
use inpaint_onnx::ort::value::TensorElementType;

use super::batcher::UnetBatcher;
use super::embeddings::{self, Embeddings};
use super::graph::{
    EncoderOutput, Graph, Io, TimestepInput, float_tensor, float_type, named_or_first,
};
use super::lora::Loras;
use super::lora::variants::Variants;
use super::schedule::BetaConfig;
use super::tokenizer::ClipTokenizer;
use crate::onnx_engine::RuntimeOptions;

/// The files of a model folder, checked to exist.
#[derive(Debug, Clone)]
pub struct Folder {
    pub root: PathBuf,
    pub tokenizer: PathBuf,
    pub text_encoder: PathBuf,
    pub unet: PathBuf,
    pub vae_encoder: PathBuf,
    pub vae_decoder: PathBuf,
    pub betas: BetaConfig,
    pub scaling_factor: f32,
}

impl Folder {
    /// Checks the layout; every problem names the file.
    pub fn check(root: &Path) -> Result<Self, String> {
        if !root.is_dir() {
            return Err(format!("{} is not a folder", root.display()));
        }
        let need = |rel: &str| -> Result<PathBuf, String> {
            let p = root.join(rel);
            if p.is_file() {
                Ok(p)
            } else {
                Err(format!("missing {}", p.display()))
            }
        };
        let tokenizer = root.join("tokenizer");
        if !tokenizer.join("tokenizer.json").is_file() {
            need("tokenizer/vocab.json")?;
            need("tokenizer/merges.txt")?;
        }
        let scheduler = need("scheduler/scheduler_config.json")?;
        let betas = read_betas(&scheduler)?;
        let scaling_factor = [
            "vae_decoder/config.json",
            "vae_encoder/config.json",
            "vae/config.json",
        ]
        .iter()
        .map(|rel| root.join(rel))
        .filter(|p| p.is_file())
        .map(|p| read_json(&p).map(|j| j.get("scaling_factor").and_then(|v| v.as_f64())))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .next()
        .unwrap_or(0.18215) as f32;
        Ok(Self {
            root: root.to_path_buf(),
            tokenizer,
            text_encoder: need("text_encoder/model.onnx")?,
            unet: need("unet/model.onnx")?,
            vae_encoder: need("vae_encoder/model.onnx")?,
            vae_decoder: need("vae_decoder/model.onnx")?,
            betas,
            scaling_factor,
        })
    }
}

fn read_json(path: &Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn read_betas(path: &Path) -> Result<BetaConfig, String> {
    let json = read_json(path)?;
    let d = BetaConfig::default();
    let num = |key: &str, default: f64| json.get(key).and_then(|v| v.as_f64()).unwrap_or(default);
    let prediction = json
        .get("prediction_type")
        .and_then(|v| v.as_str())
        .unwrap_or("epsilon");
    if prediction != "epsilon" {
        return Err(format!(
            "{}: prediction_type {prediction:?} is not supported (epsilon models only)",
            path.display()
        ));
    }
    Ok(BetaConfig {
        beta_start: num("beta_start", d.beta_start),
        beta_end: num("beta_end", d.beta_end),
        beta_schedule: json
            .get("beta_schedule")
            .and_then(|v| v.as_str())
            .unwrap_or(&d.beta_schedule)
            .to_string(),
        train_timesteps: num("num_train_timesteps", d.train_timesteps as f64) as usize,
    })
}

/// Why a pipeline could not be opened; the reason names the file at
/// fault.
#[derive(Debug, Clone, thiserror::Error)]
#[error("model {model} cannot be loaded: {reason}")]
pub struct LoadError {
    pub model: String,
    pub reason: String,
}

impl From<LoadError> for crate::error::Error {
    fn from(e: LoadError) -> Self {
        Self::ModelLoad {
            model: e.model,
            reason: e.reason,
        }
    }
}

/// A merged LoRA variant of one graph.
pub enum Variant {
    Text(Arc<Graph>),
    /// A UNet with its own batching thread: only its requests share calls.
    Unet(Arc<UnetBatcher>),
}

/// The opened export, with what its graphs expect.
pub struct SdModel {
    pub name: String,
    pub folder: Folder,
    pub tokenizer: ClipTokenizer,
    pub text_encoder: Arc<Graph>,
    /// The text encoder's bytes when edited in memory (embeddings), the
    /// base LoRA merges start from.
    pub text_encoder_bytes: Option<Arc<Vec<u8>>>,
    /// Textual-inversion embeddings the text encoder knows.
    pub embeddings: Embeddings,
    pub unet: Arc<Graph>,
    /// The thread that runs the UNet for every request, step by step.
    pub unet_batcher: Arc<UnetBatcher>,
    /// LoRA files checked against this model's graphs.
    pub loras: Loras,
    /// Merged LoRA variants, cached.
    pub variants: Variants<Variant>,
    /// Bytes of the text encoder's and the UNet's weights (files on disk),
    /// what one variant of each costs.
    pub graph_bytes: (u64, u64),
    /// How graphs are opened (for the variants).
    pub runtime: RuntimeOptions,
    pub vae_encoder: Graph,
    pub vae_decoder: Graph,
    pub io: Io,
    /// Width of the text encoder's hidden states (768 for SD 1.x).
    pub text_width: usize,
}

impl SdModel {
    /// Opens and checks every graph. Errors name the file at fault.
    pub fn load(name: &str, root: &Path, runtime: &RuntimeOptions) -> Result<Self, LoadError> {
        Self::open(name, root, runtime).map_err(|reason| LoadError {
            model: name.to_string(),
            reason,
        })
    }

    fn open(name: &str, root: &Path, runtime: &RuntimeOptions) -> Result<Self, String> {
        let folder = Folder::check(root)?;
        let tokenizer = ClipTokenizer::load(&folder.tokenizer)?;
        let mut text_encoder = Graph::open(&folder.text_encoder, runtime)?;
        let mut text_encoder_bytes = None;
        let unet = Arc::new(Graph::open(&folder.unet, runtime)?);
        let vae_encoder = Graph::open(&folder.vae_encoder, runtime)?;
        let vae_decoder = Graph::open(&folder.vae_decoder, runtime)?;

        let mut io = read_io(&folder, &text_encoder, &unet, &vae_encoder, &vae_decoder)?;
        measure_vae(&mut io, &vae_encoder, &folder)?;
        let embeddings = match &runtime.sd_embeddings {
            Some(dir) => {
                let (graph, embeddings) = with_embeddings(
                    &folder.text_encoder,
                    &io.ids_input,
                    dir,
                    &tokenizer,
                    runtime,
                )?;
                if let Some((graph, bytes)) = graph {
                    text_encoder = graph;
                    text_encoder_bytes = Some(Arc::new(bytes));
                }
                embeddings
            }
            None => Embeddings::default(),
        };
        // The hidden width, measured on the empty prompt.
        let empty = tokenizer.window(&[]);
        let hidden = super::runs::encode_window(&text_encoder, &io, &empty)?;
        let text_width = hidden.len() / super::tokenizer::WINDOW;
        // 0 = by device: on a GPU steps share calls; on the CPU (compute
        // bound, measured slower batched: make bench-sd-batch) they do not.
        let max_requests = match (runtime.sd_max_batch, unet.device) {
            (0, Device::Cuda) => 8,
            (0, Device::Cpu) => 1,
            (n, _) => n,
        };
        let loras = match &runtime.sd_loras {
            Some(dir) => {
                let text_bytes = match &text_encoder_bytes {
                    Some(b) => b.clone(),
                    None => Arc::new(read_file(&folder.text_encoder)?),
                };
                Loras::load(dir, &text_bytes, &read_file(&folder.unet)?)?
            }
            None => Loras::default(),
        };
        let unet_batcher = UnetBatcher::start(
            name.to_string(),
            unet.clone(),
            io.clone(),
            text_width,
            max_requests * 2,
            runtime.max_wait,
        );
        Ok(Self {
            name: name.to_string(),
            graph_bytes: (
                folder_bytes(&folder.text_encoder),
                folder_bytes(&folder.unet),
            ),
            folder,
            tokenizer,
            text_encoder: Arc::new(text_encoder),
            text_encoder_bytes,
            embeddings,
            unet,
            unet_batcher: Arc::new(unet_batcher),
            loras,
            variants: Variants::new(runtime.sd_lora_cache_bytes),
            runtime: runtime.clone(),
            vae_encoder,
            vae_decoder,
            io,
            text_width,
        })
    }

    pub fn is_inpainting(&self) -> bool {
        self.io.unet_channels == 2 * self.io.latent_channels + 1
    }

    pub fn device(&self) -> Device {
        self.unet.device
    }
}

/// The names and types of the four graphs' inputs and outputs (the VAE's
/// factor and latent channels are measured after, by `measure_vae`).
fn read_io(
    folder: &Folder,
    text_encoder: &Graph,
    unet: &Graph,
    vae_encoder: &Graph,
    vae_decoder: &Graph,
) -> Result<Io, String> {
    let te_in = text_encoder.inputs();
    let ids = named_or_first(
        &te_in,
        &["input_ids"],
        &folder.text_encoder,
        "input_ids input",
    )?;
    if !matches!(ids.1, TensorElementType::Int32 | TensorElementType::Int64) {
        return Err(format!(
            "{}: input_ids is {:?}; expected int32 or int64",
            folder.text_encoder.display(),
            ids.1
        ));
    }
    let te_out = text_encoder.outputs();
    let hidden = named_or_first(
        &te_out,
        &["last_hidden_state"],
        &folder.text_encoder,
        "last_hidden_state output",
    )?;

    let u_in = unet.inputs();
    let sample = named_or_first(&u_in, &["sample"], &folder.unet, "sample input")?;
    let timestep = named_or_first(&u_in, &["timestep"], &folder.unet, "timestep input")?;
    let u_hidden = named_or_first(
        &u_in,
        &["encoder_hidden_states"],
        &folder.unet,
        "encoder_hidden_states input",
    )?;
    let u_out = unet.outputs();
    let u_output = named_or_first(&u_out, &["out_sample"], &folder.unet, "out_sample output")?;
    let unet_float = float_type(
        sample.1,
        &format!("{}: input sample", folder.unet.display()),
    )?;
    let unet_channels = match sample.2.get(1) {
        Some(&c) if c > 0 => c as usize,
        _ => read_json(&folder.root.join("unet/config.json"))
            .ok()
            .and_then(|j| j.get("in_channels").and_then(|v| v.as_u64()))
            .ok_or_else(|| {
                format!(
                    "{}: the sample input's channels are dynamic and unet/config.json names no in_channels",
                    folder.unet.display()
                )
            })? as usize,
    };
    if !matches!(
        timestep.1,
        TensorElementType::Float32
            | TensorElementType::Float16
            | TensorElementType::Int64
            | TensorElementType::Int32
    ) {
        return Err(format!(
            "{}: timestep is {:?}",
            folder.unet.display(),
            timestep.1
        ));
    }
    let timestep_input = TimestepInput {
        ty: timestep.1,
        batched: !timestep.2.is_empty(),
    };

    let e_in = vae_encoder.inputs();
    let e_sample = named_or_first(&e_in, &["sample"], &folder.vae_encoder, "sample input")?;
    let e_out = vae_encoder.outputs();
    let (encoder_output, encoder_kind) = match e_out.iter().find(|(n, ..)| n == "latent_parameters")
    {
        Some(o) => (o.0.clone(), EncoderOutput::Parameters),
        None => {
            let o = named_or_first(
                &e_out,
                &["latent_sample"],
                &folder.vae_encoder,
                "latent_parameters or latent_sample output",
            )?;
            (o.0.clone(), EncoderOutput::Sample)
        }
    };
    let encoder_float = float_type(
        e_sample.1,
        &format!("{}: input sample", folder.vae_encoder.display()),
    )?;
    let d_in = vae_decoder.inputs();
    let d_latent = named_or_first(
        &d_in,
        &["latent_sample"],
        &folder.vae_decoder,
        "latent_sample input",
    )?;
    let d_out = vae_decoder.outputs();
    let d_sample = named_or_first(&d_out, &["sample"], &folder.vae_decoder, "sample output")?;
    let decoder_float = float_type(
        d_latent.1,
        &format!("{}: input latent_sample", folder.vae_decoder.display()),
    )?;

    Ok(Io {
        ids_input: ids.0.clone(),
        ids_type: ids.1,
        hidden_output: hidden.0.clone(),
        unet_sample: sample.0.clone(),
        unet_timestep: timestep.0.clone(),
        unet_hidden: u_hidden.0.clone(),
        unet_output: u_output.0.clone(),
        unet_float,
        timestep: timestep_input,
        unet_channels,
        latent_channels: 4,
        encoder_input: e_sample.0.clone(),
        encoder_output,
        encoder_kind,
        encoder_float,
        decoder_input: d_latent.0.clone(),
        decoder_output: d_sample.0.clone(),
        decoder_float,
        vae_factor: 8,
    })
}

/// The VAE's downsampling factor and latent channels, measured, and the
/// UNet's input channels checked against them.
fn measure_vae(io: &mut Io, vae_encoder: &Graph, folder: &Folder) -> Result<(), String> {
    // The downsampling factor and latent channels, measured: encode a
    // small grey square.
    let probe = 64usize;
    let input = float_tensor(
        io.encoder_float,
        vec![1, 3, probe as i64, probe as i64],
        &vec![0.0; 3 * probe * probe],
    )?;
    let (shape, _) =
        vae_encoder.run(vec![(io.encoder_input.clone(), input)], &io.encoder_output)?;
    let (channels, h) = match shape.as_slice() {
        [1, c, h, w] if *h > 0 && *h == *w && probe.is_multiple_of(*h as usize) => {
            (*c as usize, *h as usize)
        }
        other => {
            return Err(format!(
                "{}: a 64x64 image encodes to {other:?}, expected [1, C, h, h]",
                folder.vae_encoder.display()
            ));
        }
    };
    io.vae_factor = probe / h;
    io.latent_channels = match io.encoder_kind {
        EncoderOutput::Parameters if channels % 2 == 0 => channels / 2,
        EncoderOutput::Parameters => {
            return Err(format!(
                "{}: latent_parameters has {channels} channels, expected mean and log-variance",
                folder.vae_encoder.display()
            ));
        }
        EncoderOutput::Sample => channels,
    };
    let (regular, inpainting) = (io.latent_channels, 2 * io.latent_channels + 1);
    let unet_channels = io.unet_channels;
    if unet_channels != regular && unet_channels != inpainting {
        return Err(format!(
            "{}: {unet_channels} input channels fit neither a regular ({regular}) nor an inpainting ({inpainting}) UNet for this VAE",
            folder.unet.display(),
        ));
    }
    Ok(())
}

pub fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Bytes of a graph's folder (the model and its external data): what a
/// merged copy of it holds, near enough.
fn folder_bytes(model: &Path) -> u64 {
    let folder = model.parent().unwrap_or(Path::new("."));
    std::fs::read_dir(folder)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// A graph opened from bytes edited in memory, with those bytes.
type EditedGraph = (Graph, Vec<u8>);

/// The embeddings in `dir` that fit this text encoder, and the encoder
/// reopened with a token table grown by their vectors, with its bytes
/// (None when there are none to add).
fn with_embeddings(
    file: &Path,
    ids_input: &str,
    dir: &Path,
    tokenizer: &ClipTokenizer,
    runtime: &RuntimeOptions,
) -> Result<(Option<EditedGraph>, Embeddings), String> {
    use inpaint_onnx::token_table;
    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let folder = file.parent().unwrap_or(Path::new("."));
    let table = token_table::read(&bytes, folder, ids_input)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let (files, skipped) = embeddings::read_dir(dir, table.width)?;
    for s in &skipped {
        tracing::warn!(embedding = %s, dir = %dir.display(), "embedding skipped");
    }
    if files.is_empty() {
        return Ok((
            None,
            Embeddings::new(&[], 0, skipped, |t| tokenizer.tokens(t))?,
        ));
    }
    let extra: Vec<f32> = files
        .iter()
        .flat_map(|f| f.vectors.iter().copied())
        .collect();
    let (edited, first_id) = token_table::append_rows(&bytes, folder, ids_input, &extra)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    drop(bytes);
    let graph = Graph::open_bytes(&edited, file, runtime)?;
    let embeddings = Embeddings::new(&files, first_id as u32, skipped, |t| tokenizer.tokens(t))?;
    tracing::info!(file = %file.display(), names = ?embeddings.names(), "textual-inversion embeddings loaded");
    Ok((Some((graph, edited)), embeddings))
}
