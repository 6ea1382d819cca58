//! CLIP's byte-level BPE tokenizer, built from the `tokenizer/` folder of a
//! model export (`vocab.json` + `merges.txt`, or a `tokenizer.json`), with
//! the same normaliser and pre-tokeniser transformers' (fast, tokenizers
//! backed) CLIPTokenizer uses: NFC, runs of whitespace to one space,
//! lower case; split into contractions, letter runs, single digits and
//! other-symbol runs; byte-level symbols; words end in `</w>`. Text that
//! ftfy would rewrite (curly quotes) is taken as it is, as the fast
//! tokenizer does.

use std::path::Path;

use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::replace::ReplacePattern;
use tokenizers::normalizers::{Lowercase, NFC, Replace, Sequence as Normalizers};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence as PreTokenizers;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

/// Tokens per text-encoder window, BOS and EOS included.
pub const WINDOW: usize = 77;

pub struct ClipTokenizer {
    inner: Tokenizer,
    pub bos: u32,
    pub eos: u32,
    pub pad: u32,
    /// `,` at the end of a word: where long prompts prefer to be cut.
    pub comma: Option<u32>,
}

const PIECES: &str = r"'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+";

impl ClipTokenizer {
    /// Loads `dir`: `tokenizer.json` when there is one, else `vocab.json` +
    /// `merges.txt`; the padding token comes from `tokenizer_config.json`
    /// or `special_tokens_map.json` (SD 1.x pads with `<|endoftext|>`,
    /// SD 2.x with `!`).
    pub fn load(dir: &Path) -> Result<Self, String> {
        let json = dir.join("tokenizer.json");
        let inner = if json.is_file() {
            let mut t =
                Tokenizer::from_file(&json).map_err(|e| format!("{}: {e}", json.display()))?;
            // Special tokens and padding are added here, not by the file's
            // post-processor.
            t.with_post_processor(None::<tokenizers::PostProcessorWrapper>);
            t.with_padding(None);
            t.with_truncation(None).map_err(|e| e.to_string())?;
            t
        } else {
            let mut t = Self::from_vocab(dir)?;
            // Written in a prompt, the markers are the special tokens
            // themselves, as transformers reads them.
            t.add_special_tokens(&[
                AddedToken::from("<|startoftext|>", true),
                AddedToken::from("<|endoftext|>", true),
            ]);
            t
        };
        let id = |token: &str| {
            inner
                .token_to_id(token)
                .ok_or_else(|| format!("{}: the vocabulary has no {token:?}", dir.display()))
        };
        let bos = id("<|startoftext|>")?;
        let eos = id("<|endoftext|>")?;
        let pad = match configured_pad(dir) {
            Some(token) => id(&token)?,
            None => eos,
        };
        let comma = inner.token_to_id(",</w>");
        Ok(Self {
            inner,
            bos,
            eos,
            pad,
            comma,
        })
    }

    fn from_vocab(dir: &Path) -> Result<Tokenizer, String> {
        let (vocab, merges) = (dir.join("vocab.json"), dir.join("merges.txt"));
        for file in [&vocab, &merges] {
            if !file.is_file() {
                return Err(format!("missing {}", file.display()));
            }
        }
        let bpe = BPE::from_file(&vocab.to_string_lossy(), &merges.to_string_lossy())
            .end_of_word_suffix("</w>".into())
            .unk_token("<|endoftext|>".into())
            .build()
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut t = Tokenizer::new(bpe);
        let spaces =
            Replace::new(ReplacePattern::Regex(r"\s+".into()), " ").map_err(|e| e.to_string())?;
        t.with_normalizer(Some(Normalizers::new(vec![
            NFC.into(),
            spaces.into(),
            Lowercase.into(),
        ])));
        let split = Split::new(
            SplitPattern::Regex(PIECES.into()),
            SplitDelimiterBehavior::Removed,
            true,
        )
        .map_err(|e| e.to_string())?;
        t.with_pre_tokenizer(Some(PreTokenizers::new(vec![
            split.into(),
            ByteLevel::new(false, true, true).into(),
        ])));
        Ok(t)
    }

    /// The prompt's tokens, without BOS/EOS, however many there are.
    pub fn tokens(&self, text: &str) -> Result<Vec<u32>, String> {
        let encoding = self.inner.encode(text, false).map_err(|e| e.to_string())?;
        Ok(encoding.get_ids().to_vec())
    }

    /// One text-encoder window: BOS, up to 75 tokens, EOS, padding.
    pub fn window(&self, tokens: &[u32]) -> Vec<u32> {
        let mut ids = Vec::with_capacity(WINDOW);
        ids.push(self.bos);
        ids.extend(tokens.iter().take(WINDOW - 2));
        ids.push(self.eos);
        ids.resize(WINDOW, self.pad);
        ids
    }
}

/// The `pad_token` a tokenizer folder names, if any.
fn configured_pad(dir: &Path) -> Option<String> {
    for file in ["tokenizer_config.json", "special_tokens_map.json"] {
        let Ok(text) = std::fs::read_to_string(dir.join(file)) else {
            continue;
        };
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        match json.get("pad_token") {
            Some(serde_json::Value::String(s)) => return Some(s.clone()),
            Some(serde_json::Value::Object(o)) => {
                if let Some(serde_json::Value::String(s)) = o.get("content") {
                    return Some(s.clone());
                }
            }
            _ => {}
        }
    }
    None
}
