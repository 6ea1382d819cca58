//! LoRA for a Stable Diffusion pipeline: the files in the configured
//! folder, each checked against this model's graphs at load (`Loras`); a
//! request's set of LoRAs and weights (`LoraSet`); the merged variants of
//! the text encoder and the UNet, built on first use and cached
//! (`variants`).

pub mod file;
pub mod merge;
pub mod tags;
pub mod variants;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use inpaint_onnx::weights::{self, ModuleWeight};

use file::Part;
use merge::{GraphModules, TEXT_ROOTS, UNET_ROOTS};

/// One loaded LoRA file, as it fits this model.
#[derive(Debug, Clone)]
pub struct LoraInfo {
    pub name: String,
    pub path: PathBuf,
    pub parts: BTreeSet<Part>,
    pub matched: usize,
    /// Keys that match nothing in the graphs, or that are not read.
    pub unmatched: Vec<String>,
    /// Why this model cannot take it (another base model).
    pub refused: Option<String>,
}

/// The LoRA files of one model.
#[derive(Debug, Default)]
pub struct Loras {
    pub entries: BTreeMap<String, LoraInfo>,
    /// Files not loaded, each with the reason.
    pub skipped: Vec<String>,
    text: GraphModules,
    unet: GraphModules,
}

fn roots(part: Part) -> &'static [&'static str] {
    match part {
        Part::TextEncoder => TEXT_ROOTS,
        Part::Unet => UNET_ROOTS,
    }
}

impl Loras {
    /// Reads every `.safetensors` in `dir` and checks it against the text
    /// encoder's and the UNet's graphs (`text_model`, `unet_model`: their
    /// ONNX bytes).
    pub fn load(dir: &Path, text_model: &[u8], unet_model: &[u8]) -> Result<Self, String> {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
            .collect();
        paths.sort();
        let mut loras = Self {
            text: GraphModules::new(weights::index(text_model)?, TEXT_ROOTS),
            unet: GraphModules::new(weights::index(unet_model)?, UNET_ROOTS),
            ..Self::default()
        };
        for path in paths {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            match file::read(&path) {
                Ok(f) => {
                    let info = loras.check(&name, &path, &f);
                    if let Some(why) = &info.refused {
                        tracing::warn!(lora = %name, %why, "LoRA refused for this model");
                    } else if !info.unmatched.is_empty() {
                        tracing::warn!(lora = %name, unmatched = info.unmatched.len(), first = %info.unmatched[0], "LoRA keys match nothing in the graphs");
                    }
                    loras.entries.insert(name, info);
                }
                Err(why) => {
                    tracing::warn!(lora = %name, %why, "LoRA skipped");
                    loras.skipped.push(format!("{name}: {why}"));
                }
            }
        }
        Ok(loras)
    }

    fn modules(&self, part: Part) -> &GraphModules {
        match part {
            Part::TextEncoder => &self.text,
            Part::Unet => &self.unet,
        }
    }

    fn check(&self, name: &str, path: &Path, f: &file::LoraFile) -> LoraInfo {
        let mut info = LoraInfo {
            name: name.to_string(),
            path: path.to_path_buf(),
            parts: BTreeSet::new(),
            matched: 0,
            unmatched: f.unsupported.clone(),
            refused: f.other_base.clone(),
        };
        for m in &f.modules {
            match self.modules(m.part).find(&m.target, roots(m.part)) {
                Some(w) => match merge::fits(m, w) {
                    Ok(()) => {
                        info.matched += 1;
                        info.parts.insert(m.part);
                    }
                    Err(why) => {
                        info.refused.get_or_insert(why);
                    }
                },
                None => info.unmatched.push(m.key.clone()),
            }
        }
        if info.refused.is_none() && info.matched == 0 {
            info.refused = Some("none of its keys names a module of this model".into());
        }
        info
    }

    pub fn names(&self) -> Vec<&str> {
        self.entries.keys().map(String::as_str).collect()
    }

    /// Notes for ListModels.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = vec![];
        for info in self.entries.values() {
            notes.push(match &info.refused {
                Some(why) => format!("LoRA {} refused: {why}", info.name),
                None => format!(
                    "LoRA {}: {} modules merged, {} keys unmatched",
                    info.name,
                    info.matched,
                    info.unmatched.len()
                ),
            });
        }
        notes.extend(self.skipped.iter().map(|s| format!("LoRA skipped: {s}")));
        notes
    }

    /// A request's uses resolved against the loaded files: the same LoRA
    /// (and dyn) used twice adds its multipliers; unknown or refused names
    /// are errors naming what is loaded.
    pub fn resolve(&self, uses: &[tags::LoraUse]) -> Result<LoraSet, String> {
        let mut sum: BTreeMap<(String, Option<usize>), (f32, f32)> = BTreeMap::new();
        for u in uses {
            let Some(info) = self.entries.get(&u.name) else {
                let known = self.names();
                return Err(format!(
                    "unknown LoRA {:?}; loaded: {}",
                    u.name,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ));
            };
            if let Some(why) = &info.refused {
                return Err(format!("LoRA {:?} does not fit this model: {why}", u.name));
            }
            let e = sum.entry((u.name.clone(), u.dyn_dim)).or_default();
            e.0 += u.te;
            e.1 += u.unet;
        }
        let entry = |part: Part| -> Vec<SetEntry> {
            sum.iter()
                .filter_map(|((name, dyn_dim), (te, unet))| {
                    let w = if part == Part::TextEncoder {
                        *te
                    } else {
                        *unet
                    };
                    (w != 0.0 && self.entries[name].parts.contains(&part)).then(|| SetEntry {
                        name: name.clone(),
                        weight: w,
                        dyn_dim: *dyn_dim,
                    })
                })
                .collect()
        };
        Ok(LoraSet {
            text: entry(Part::TextEncoder),
            unet: entry(Part::Unet),
            report: sum
                .iter()
                .map(|((name, _), (te, unet))| format!("{name}:{te}:{unet}"))
                .collect(),
        })
    }

    /// Merged values of the weights `set` changes in one part's graph
    /// (`model`: its ONNX bytes, `folder`: its external data), in each
    /// weight's own type.
    pub fn merged_values(
        &self,
        part: Part,
        set: &[SetEntry],
        model: &[u8],
        folder: &Path,
    ) -> Result<HashMap<String, Vec<u8>>, String> {
        let modules = self.modules(part);
        let mut pairs: Vec<(file::LoraModule, ModuleWeight, f32, usize)> = vec![];
        for e in set {
            let info = &self.entries[&e.name];
            let f = file::read(&info.path).map_err(|why| format!("LoRA {}: {why}", e.name))?;
            for m in f.modules.into_iter().filter(|m| m.part == part) {
                let Some(w) = modules.find(&m.target, roots(part)).cloned() else {
                    continue;
                };
                merge::fits(&m, &w).map_err(|why| format!("LoRA {}: {why}", e.name))?;
                let factor = e.weight * merge::scale(&m);
                let rank = e.dyn_dim.unwrap_or(m.rank);
                pairs.push((m, w, factor, rank));
            }
        }
        let names: HashSet<&str> = pairs.iter().map(|p| p.1.initializer.as_str()).collect();
        let base = weights::read(model, folder, &names)?;
        let mut values: HashMap<String, Vec<f32>> = HashMap::new();
        for (m, w, factor, rank) in &pairs {
            let v = values
                .entry(w.initializer.clone())
                .or_insert_with(|| w.kind.decode(&base[&w.initializer]));
            merge::add_delta(v, w, m, *factor, *rank);
        }
        let kinds: HashMap<&str, _> = pairs
            .iter()
            .map(|p| (p.1.initializer.as_str(), p.1.kind))
            .collect();
        Ok(values
            .into_iter()
            .map(|(name, v)| {
                let bytes = kinds[name.as_str()].encode(&v);
                (name, bytes)
            })
            .collect())
    }

    /// The model bytes of one part with `set` merged in, and the external
    /// data file (`location`) they point into.
    pub fn merge(
        &self,
        part: Part,
        set: &[SetEntry],
        model: &[u8],
        folder: &Path,
    ) -> Result<(Vec<u8>, inpaint_onnx::MemoryFile, Duration), String> {
        const LOCATION: &str = "lora-merged.bin";
        let started = Instant::now();
        let values = self.merged_values(part, set, model, folder)?;
        let (bytes, data) = weights::replace(model, &values, LOCATION)?;
        Ok((
            bytes,
            (LOCATION.to_string(), data.into()),
            started.elapsed(),
        ))
    }
}

/// One LoRA of a set, for one part.
#[derive(Debug, Clone, PartialEq)]
pub struct SetEntry {
    pub name: String,
    pub weight: f32,
    pub dyn_dim: Option<usize>,
}

/// A request's LoRAs, per part (sorted by name, zero weights dropped).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoraSet {
    pub text: Vec<SetEntry>,
    pub unet: Vec<SetEntry>,
    /// `NAME:TE:UNET` per LoRA, for the response.
    pub report: Vec<String>,
}
