//! The text encoder and UNet a request runs on: the model's own, or the
//! cached variants with its LoRA set merged in (built here on first use,
//! on the blocking pool).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::batcher::UnetBatcher;
use super::graph::Graph;
use super::lora::file::Part;
use super::lora::{LoraSet, SetEntry, variants};
use super::model::{SdModel, Variant, read_file};

/// The graphs one request runs on.
#[derive(Clone)]
pub struct Graphs {
    pub text_encoder: Arc<Graph>,
    pub unet: Arc<UnetBatcher>,
}

impl Graphs {
    pub fn base(model: &SdModel) -> Self {
        Self {
            text_encoder: model.text_encoder.clone(),
            unet: model.unet_batcher.clone(),
        }
    }
}

/// The graphs for `set`, and the time this call spent merging (zero when
/// every variant was cached or being built by another request).
pub async fn for_set(model: &Arc<SdModel>, set: &LoraSet) -> Result<(Graphs, Duration), String> {
    let mut graphs = Graphs::base(model);
    let mut merging = Duration::ZERO;
    for (part, entries) in [(Part::TextEncoder, &set.text), (Part::Unet, &set.unet)] {
        if entries.is_empty() {
            continue;
        }
        let bytes = match part {
            Part::TextEncoder => model.graph_bytes.0,
            Part::Unet => model.graph_bytes.1,
        };
        let m = model.clone();
        let e = entries.clone();
        let build = move || async move {
            tokio::task::spawn_blocking(move || build(&m, part, &e))
                .await
                .map_err(|e| format!("task: {e}"))?
        };
        let (variant, took) = model
            .variants
            .get(variants::key(part, entries), bytes, build)
            .await?;
        merging += took.unwrap_or_default();
        match &*variant {
            Variant::Text(g) => graphs.text_encoder = g.clone(),
            Variant::Unet(u) => graphs.unet = u.clone(),
        }
    }
    Ok((graphs, merging))
}

/// Merges `set` into one part's graph and opens it.
fn build(model: &SdModel, part: Part, set: &[SetEntry]) -> Result<(Variant, Duration), String> {
    let file = match part {
        Part::TextEncoder => &model.folder.text_encoder,
        Part::Unet => &model.folder.unet,
    };
    let base = match (part, &model.text_encoder_bytes) {
        (Part::TextEncoder, Some(edited)) => edited.clone(),
        _ => Arc::new(read_file(file)?),
    };
    let folder = file.parent().unwrap_or(Path::new("."));
    let (merged, data, took) = model.loras.merge(part, set, &base, folder)?;
    drop(base);
    // ONNX Runtime looks every external file up in memory once one is
    // given there: the export's own go too.
    let mut files = vec![data];
    for location in inpaint_onnx::weights::external_files(&merged)? {
        if location != files[0].0 {
            let bytes = read_file(&folder.join(&location))?;
            files.push((location, bytes.into()));
        }
    }
    let graph = Graph::open_with_files(&merged, file, files, &model.runtime)?;
    let names: Vec<String> = set
        .iter()
        .map(|e| format!("{}:{}", e.name, e.weight))
        .collect();
    tracing::info!(model = %model.name, ?part, loras = ?names, ms = took.as_millis() as u64, "LoRA variant merged");
    Ok((
        match part {
            Part::TextEncoder => Variant::Text(Arc::new(graph)),
            Part::Unet => Variant::Unet(Arc::new(UnetBatcher::start(
                // One metrics label for every variant: sets are unbounded.
                format!("{}+lora", model.name),
                Arc::new(graph),
                model.io.clone(),
                model.text_width,
                model.unet_batcher.max_samples(),
                model.runtime.max_wait,
            ))),
        },
        took,
    ))
}
