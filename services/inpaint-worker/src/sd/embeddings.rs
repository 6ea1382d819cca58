//! Textual-inversion embeddings, as the WebUI uses them
//! (modules/textual_inversion/textual_inversion.py): each `.safetensors`
//! file in the configured folder is an embedding named by its file stem;
//! wherever a prompt's tokens spell that name, the embedding's vectors take
//! the name's place, one token slot per vector.
//!
//! How the vectors reach the text encoder: the export's token-embedding
//! table is grown by one row per vector (`inpaint_onnx::token_table`, an
//! edited copy of the graph held in memory), so each vector has a token id
//! of its own past the vocabulary, and a prompt names it by that id.
//! ComfyUI's explicit `embedding:NAME` is read too; there an unknown name
//! is an error rather than plain text.

use std::ops::Range;
use std::path::Path;

use safetensors::SafeTensors;

/// Vectors read from one file.
#[derive(Debug, Clone)]
pub struct EmbeddingFile {
    pub name: String,
    /// Row-major, `width` values per vector.
    pub vectors: Vec<f32>,
    pub count: usize,
}

/// Reads the embeddings in `dir` whose vectors are `width` wide (the text
/// encoder's). Files that are not usable are listed with the reason, as
/// the WebUI's "skipped" embeddings are, and do not stop the others.
pub fn read_dir(dir: &Path, width: usize) -> Result<(Vec<EmbeddingFile>, Vec<String>), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    files.sort();
    let (mut found, mut skipped) = (vec![], vec![]);
    for path in files {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        match read_file(&path, width) {
            Ok((vectors, count)) => found.push(EmbeddingFile {
                name,
                vectors,
                count,
            }),
            Err(why) => skipped.push(format!("{name}: {why}")),
        }
    }
    Ok((found, skipped))
}

/// Most vectors one embedding may have: it must fit in one 75-token chunk.
pub const MAX_VECTORS: usize = super::prompt::CHUNK;

fn read_file(path: &Path, width: usize) -> Result<(Vec<f32>, usize), String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| e.to_string())?;
    let names = st.names();
    // One tensor, whatever its key (the WebUI's rule; diffusers names it
    // after the token, the WebUI `emb_params`). Two text encoders' vectors
    // (`clip_l` + `clip_g`) are an SDXL embedding.
    let key = match names.as_slice() {
        [one] => one.to_string(),
        many if many.contains(&"clip_g") => {
            return Err("an SDXL embedding (clip_l + clip_g)".into());
        }
        many if many.contains(&"emb_params") => "emb_params".into(),
        many => return Err(format!("{} tensors and none is emb_params", many.len())),
    };
    let t = st.tensor(&key).map_err(|e| e.to_string())?;
    let values = super::lora::file::floats(&t).map_err(|e| format!("{key} is {e}"))?;
    let shape = t.shape();
    let count = match shape {
        [w] if *w == width => 1,
        [n, w] if *w == width && *n > 0 => *n,
        _ => {
            return Err(format!(
                "{key} has shape {shape:?}; this model's vectors are {width} wide"
            ));
        }
    };
    if count > MAX_VECTORS {
        return Err(format!("{count} vectors; at most {MAX_VECTORS}"));
    }
    if values.iter().any(|v| !v.is_finite()) {
        return Err(format!("{key} holds values that are not finite"));
    }
    Ok((values, count))
}

/// One embedding as a prompt finds it.
#[derive(Debug, Clone)]
struct Entry {
    name: String,
    /// The tokens its name becomes.
    name_ids: Vec<u32>,
    /// Its vectors' token ids.
    slots: Range<u32>,
}

/// The embeddings of one model, looked up by the tokens of their names.
#[derive(Debug, Clone, Default)]
pub struct Embeddings {
    entries: Vec<Entry>,
    /// Files not loaded, each with the reason.
    pub skipped: Vec<String>,
}

impl Embeddings {
    /// Registers `files`, whose vectors got consecutive ids from
    /// `first_id`, in file order; `tokenize` spells each name.
    pub fn new(
        files: &[EmbeddingFile],
        first_id: u32,
        skipped: Vec<String>,
        mut tokenize: impl FnMut(&str) -> Result<Vec<u32>, String>,
    ) -> Result<Self, String> {
        let mut entries = vec![];
        let mut next = first_id;
        for f in files {
            let name_ids = tokenize(&f.name)?;
            if name_ids.is_empty() {
                return Err(format!("embedding {:?}: its name has no tokens", f.name));
            }
            let slots = next..next + f.count as u32;
            next = slots.end;
            entries.push(Entry {
                name: f.name.clone(),
                name_ids,
                slots,
            });
        }
        // Longest names first, so "bad-hands-5" wins over "bad".
        entries.sort_by_key(|e| std::cmp::Reverse(e.name_ids.len()));
        Ok(Self { entries, skipped })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut n: Vec<&str> = self.entries.iter().map(|e| e.name.as_str()).collect();
        n.sort_unstable();
        n
    }

    /// The embedding whose name's tokens start at `tokens[at]`: its slot
    /// ids and how many prompt tokens the name took (the WebUI's
    /// `find_embedding_at_position`).
    pub fn find_at(&self, tokens: &[u32], at: usize) -> Option<(Range<u32>, usize)> {
        self.entries
            .iter()
            .find(|e| tokens[at..].starts_with(&e.name_ids))
            .map(|e| (e.slots.clone(), e.name_ids.len()))
    }

    /// ComfyUI's `embedding:NAME` (an extension after NAME allowed) becomes
    /// NAME; a NAME that is not loaded is an error listing those that are.
    pub fn resolve_explicit(&self, prompt: &str) -> Result<String, String> {
        const MARK: &str = "embedding:";
        let mut out = String::with_capacity(prompt.len());
        let mut rest = prompt;
        while let Some(at) = rest.find(MARK) {
            out.push_str(&rest[..at]);
            let after = &rest[at + MARK.len()..];
            let len = after
                .find(|c: char| !(c.is_alphanumeric() || "_-.".contains(c)))
                .unwrap_or(after.len());
            let written = &after[..len];
            let name = [".safetensors", ".pt", ".bin"]
                .iter()
                .find_map(|x| written.strip_suffix(x))
                .unwrap_or(written);
            if !self.entries.iter().any(|e| e.name == name) {
                let known = self.names();
                return Err(format!(
                    "unknown embedding {name:?}; loaded: {}",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ));
            }
            out.push_str(name);
            rest = &after[len..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Result<Vec<u32>, String> {
        // One token per character: enough to tell names apart.
        Ok(text.chars().map(|c| c as u32).collect())
    }

    fn file(name: &str, count: usize) -> EmbeddingFile {
        EmbeddingFile {
            name: name.into(),
            vectors: vec![0.0; count * 4],
            count,
        }
    }

    #[test]
    fn names_find_their_slots_longest_first() {
        let e = Embeddings::new(&[file("ab", 2), file("abc", 3)], 1000, vec![], words).unwrap();
        let tokens = words("xabcy").unwrap();
        assert_eq!(e.find_at(&tokens, 1), Some((1002..1005, 3)));
        assert_eq!(e.find_at(&tokens, 0), None);
        let tokens = words("abx").unwrap();
        assert_eq!(e.find_at(&tokens, 0), Some((1000..1002, 2)));
    }

    #[test]
    fn explicit_references_resolve_or_list_what_is_loaded() {
        let e = Embeddings::new(&[file("bad-hands", 1)], 10, vec![], words).unwrap();
        assert_eq!(
            e.resolve_explicit("ugly, embedding:bad-hands.safetensors, blurry")
                .unwrap(),
            "ugly, bad-hands, blurry"
        );
        let err = e.resolve_explicit("embedding:nope").unwrap_err();
        assert!(
            err.contains("\"nope\"") && err.contains("bad-hands"),
            "{err}"
        );
        assert_eq!(e.resolve_explicit("plain").unwrap(), "plain");
    }
}
