//! The WebUI's prompt syntax (modules/prompt_parser.py
//! `parse_prompt_attention`) and its 75-token chunks
//! (modules/sd_hijack_clip.py `tokenize_line`):
//!
//! - `(text)` multiplies attention by 1.1, `[text]` divides it by 1.1,
//!   `(text:1.3)` multiplies it by 1.3; brackets nest and multiply;
//!   unclosed ones apply to the rest of the prompt; `\(` `\)` `\[` `\]`
//!   `\\` are literal characters;
//! - `BREAK` (a whole word, outside brackets) ends the current chunk;
//! - tokens fill chunks of 75; when a chunk fills up and a comma came within
//!   its last 20 tokens, what follows the comma moves to the next chunk;
//!   each chunk becomes BOS + 75 tokens (padded) + EOS, weight 1 on those.

/// A piece of prompt text and its attention weight. BREAK is
/// `("BREAK", -1.0)`, as the WebUI marks it (a BREAK inside brackets gets
/// its weight multiplied and is then read as plain text, as in the WebUI).
pub type Weighted = (String, f64);

const ROUND: f64 = 1.1;

enum Piece {
    Text(String),
    Open,
    OpenSquare,
    Weight(f64),
    Close,
    CloseSquare,
}

/// Splits a prompt into the WebUI's attention tokens (its `re_attention`).
fn lex(text: &str) -> Vec<Piece> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = vec![];
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => match chars.get(i + 1) {
                Some(&n) if "()[]\\".contains(n) => {
                    out.push(Piece::Text(n.to_string()));
                    i += 2;
                }
                // A lone backslash stands for nothing.
                _ => {
                    out.push(Piece::Text(String::new()));
                    i += 1;
                }
            },
            '(' => {
                out.push(Piece::Open);
                i += 1;
            }
            '[' => {
                out.push(Piece::OpenSquare);
                i += 1;
            }
            ')' => {
                out.push(Piece::Close);
                i += 1;
            }
            ']' => {
                out.push(Piece::CloseSquare);
                i += 1;
            }
            ':' => {
                // `:NUMBER)` is a weight; any other colon is text.
                let mut j = i + 1;
                if matches!(chars.get(j), Some('+' | '-')) {
                    j += 1;
                }
                let digits = j;
                while chars
                    .get(j)
                    .is_some_and(|c| c.is_ascii_digit() || *c == '.')
                {
                    j += 1;
                }
                let number: String = chars[i + 1..j].iter().collect();
                match (j > digits, chars.get(j), number.parse::<f64>()) {
                    (true, Some(')'), Ok(w)) => {
                        out.push(Piece::Weight(w));
                        i = j + 1;
                    }
                    _ => {
                        out.push(Piece::Text(":".into()));
                        i += 1;
                    }
                }
            }
            _ => {
                let start = i;
                while i < chars.len() && !"\\()[]:".contains(chars[i]) {
                    i += 1;
                }
                out.push(Piece::Text(chars[start..i].iter().collect()));
            }
        }
    }
    out
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Splits text at `\s*\bBREAK\b\s*`.
fn split_breaks(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut parts = vec![];
    let mut current = String::new();
    let mut i = 0;
    while i < chars.len() {
        let whole_word = chars[i..].starts_with(&['B', 'R', 'E', 'A', 'K'])
            && (i == 0 || !is_word(chars[i - 1]))
            && chars.get(i + 5).is_none_or(|&c| !is_word(c));
        if whole_word {
            while current.ends_with(char::is_whitespace) {
                current.pop();
            }
            parts.push(std::mem::take(&mut current));
            i += 5;
            while chars.get(i).is_some_and(|c| c.is_whitespace()) {
                i += 1;
            }
        } else {
            current.push(chars[i]);
            i += 1;
        }
    }
    parts.push(current);
    parts
}

/// The WebUI's `parse_prompt_attention`.
pub fn parse_attention(text: &str) -> Vec<Weighted> {
    let mut res: Vec<Weighted> = vec![];
    let mut round: Vec<usize> = vec![];
    let mut square: Vec<usize> = vec![];
    let multiply = |res: &mut Vec<Weighted>, from: usize, by: f64| {
        for piece in &mut res[from..] {
            piece.1 *= by;
        }
    };
    for piece in lex(text) {
        match piece {
            Piece::Open => round.push(res.len()),
            Piece::OpenSquare => square.push(res.len()),
            Piece::Weight(w) if !round.is_empty() => {
                let from = round.pop().expect("checked");
                multiply(&mut res, from, w);
            }
            Piece::Close if !round.is_empty() => {
                let from = round.pop().expect("checked");
                multiply(&mut res, from, ROUND);
            }
            Piece::CloseSquare if !square.is_empty() => {
                let from = square.pop().expect("checked");
                multiply(&mut res, from, 1.0 / ROUND);
            }
            other => {
                let text = match other {
                    Piece::Text(t) => t,
                    Piece::Weight(w) => format!(":{w})"),
                    Piece::Close => ")".into(),
                    Piece::CloseSquare => "]".into(),
                    Piece::Open | Piece::OpenSquare => unreachable!("handled above"),
                };
                for (i, part) in split_breaks(&text).into_iter().enumerate() {
                    if i > 0 {
                        res.push(("BREAK".into(), -1.0));
                    }
                    res.push((part, 1.0));
                }
            }
        }
    }
    for from in round {
        multiply(&mut res, from, ROUND);
    }
    for from in square {
        multiply(&mut res, from, 1.0 / ROUND);
    }
    if res.is_empty() {
        res.push((String::new(), 1.0));
    }
    // Merge runs of identical weights.
    let mut i = 0;
    while i + 1 < res.len() {
        if res[i].1 == res[i + 1].1 {
            let next = res.remove(i + 1);
            res[i].0.push_str(&next.0);
        } else {
            i += 1;
        }
    }
    res
}

/// One text-encoder window: 77 ids and the weight of each.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub ids: Vec<u32>,
    pub weights: Vec<f32>,
}

/// Tokens per chunk, BOS and EOS excluded.
pub const CHUNK: usize = 75;
/// How far back a comma may be for the rest of a full chunk to move on
/// (the WebUI's `comma_padding_backtrack` default).
pub const COMMA_BACKTRACK: usize = 20;

/// The ids the chunker needs from the tokenizer.
#[derive(Debug, Clone, Copy)]
pub struct SpecialIds {
    pub bos: u32,
    pub eos: u32,
    pub pad: u32,
    pub comma: Option<u32>,
}

/// Chunks of (ids, weights) for weighted pieces, each piece tokenized on
/// its own by `tokenize`, as the WebUI's `tokenize_line` does.
/// `find_embedding(tokens, at)` names the embedding whose name starts at
/// `tokens[at]`: its slot ids, which replace the name's tokens, and how
/// many tokens the name took. An embedding that does not fit in what is
/// left of a chunk starts the next one. (When a comma cut moves tokens on,
/// embedding slots move with them; in the WebUI, whose vectors are patched
/// in by offset, they stay behind.)
pub fn chunks(
    pieces: &[Weighted],
    ids: SpecialIds,
    mut tokenize: impl FnMut(&str) -> Result<Vec<u32>, String>,
    find_embedding: impl Fn(&[u32], usize) -> Option<(std::ops::Range<u32>, usize)>,
) -> Result<Vec<Chunk>, String> {
    let mut out: Vec<Chunk> = vec![];
    let mut tokens: Vec<u32> = vec![];
    let mut weights: Vec<f32> = vec![];
    let mut last_comma: Option<usize> = None;
    let close = |out: &mut Vec<Chunk>, mut t: Vec<u32>, mut w: Vec<f32>| {
        // Padded with EOS, then (as the WebUI's process_tokens does) every
        // id after the first EOS becomes the padding id.
        t.resize(CHUNK, ids.eos);
        w.resize(CHUNK, 1.0);
        let mut window = Vec::with_capacity(CHUNK + 2);
        window.push(ids.bos);
        window.extend(t);
        window.push(ids.eos);
        if let Some(first_eos) = window.iter().position(|&t| t == ids.eos) {
            for t in &mut window[first_eos + 1..] {
                *t = ids.pad;
            }
        }
        let mut weight_row = Vec::with_capacity(CHUNK + 2);
        weight_row.push(1.0);
        weight_row.extend(w);
        weight_row.push(1.0);
        out.push(Chunk {
            ids: window,
            weights: weight_row,
        });
    };
    for (text, weight) in pieces {
        if text == "BREAK" && *weight == -1.0 {
            close(
                &mut out,
                std::mem::take(&mut tokens),
                std::mem::take(&mut weights),
            );
            last_comma = None;
            continue;
        }
        let piece = tokenize(text)?;
        let mut at = 0;
        while at < piece.len() {
            let token = piece[at];
            if Some(token) == ids.comma {
                last_comma = Some(tokens.len());
            } else if tokens.len() == CHUNK
                && let Some(at) = last_comma.filter(|&at| tokens.len() - at <= COMMA_BACKTRACK)
            {
                let moved_tokens = tokens.split_off(at + 1);
                let moved_weights = weights.split_off(at + 1);
                close(
                    &mut out,
                    std::mem::take(&mut tokens),
                    std::mem::take(&mut weights),
                );
                tokens = moved_tokens;
                weights = moved_weights;
                last_comma = None;
            }
            if tokens.len() == CHUNK {
                close(
                    &mut out,
                    std::mem::take(&mut tokens),
                    std::mem::take(&mut weights),
                );
                last_comma = None;
            }
            match find_embedding(&piece, at) {
                None => {
                    tokens.push(token);
                    weights.push(*weight as f32);
                    at += 1;
                }
                Some((slots, name_tokens)) => {
                    // An embedding is never split across chunks.
                    if tokens.len() + slots.len() > CHUNK {
                        close(
                            &mut out,
                            std::mem::take(&mut tokens),
                            std::mem::take(&mut weights),
                        );
                        last_comma = None;
                    }
                    for slot in slots {
                        tokens.push(slot);
                        weights.push(*weight as f32);
                    }
                    at += name_tokens.max(1);
                }
            }
        }
    }
    if !tokens.is_empty() || out.is_empty() {
        close(&mut out, tokens, weights);
    }
    Ok(out)
}

/// Applies a chunk's weights to its hidden states (`[77, width]`) and
/// restores their mean, as the WebUI's "Original" emphasis does.
pub fn apply_weights(hidden: &mut [f32], weights: &[f32]) {
    let width = hidden.len() / weights.len();
    let mean = |h: &[f32]| h.iter().map(|&v| v as f64).sum::<f64>() / h.len() as f64;
    let before = mean(hidden);
    for (row, w) in hidden.chunks_mut(width).zip(weights) {
        for v in row {
            *v *= w;
        }
    }
    let after = mean(hidden);
    if after != 0.0 {
        let scale = (before / after) as f32;
        for v in hidden.iter_mut() {
            *v *= scale;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, f64)]) -> Vec<Weighted> {
        v.iter().map(|(t, w)| (t.to_string(), *w)).collect()
    }

    /// The examples in the WebUI's own docstring of parse_prompt_attention.
    #[test]
    fn the_webuis_docstring_examples() {
        assert_eq!(
            parse_attention("normal text"),
            pairs(&[("normal text", 1.0)])
        );
        assert_eq!(
            parse_attention("an (important) word"),
            pairs(&[("an ", 1.0), ("important", 1.1), (" word", 1.0)])
        );
        assert_eq!(
            parse_attention("(unbalanced"),
            pairs(&[("unbalanced", 1.1)])
        );
        assert_eq!(
            parse_attention(r"\(literal\]"),
            pairs(&[("(literal]", 1.0)])
        );
        assert_eq!(
            parse_attention("(unnecessary)(parens)"),
            pairs(&[("unnecessaryparens", 1.1)])
        );
        assert_eq!(
            parse_attention("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky)))."),
            pairs(&[
                ("a ", 1.0),
                ("house", 1.5730000000000004),
                (" ", 1.1),
                ("on", 1.0),
                (" a ", 1.1),
                ("hill", 0.55),
                (", sun, ", 1.1),
                ("sky", 1.4641000000000006),
                (".", 1.1),
            ])
        );
    }

    #[test]
    fn breaks_colons_and_stray_brackets() {
        assert_eq!(
            parse_attention("a cat BREAK a dog"),
            pairs(&[("a cat", 1.0), ("BREAK", -1.0), ("a dog", 1.0)])
        );
        // Not a whole word: plain text.
        assert_eq!(parse_attention("BREAKFAST"), pairs(&[("BREAKFAST", 1.0)]));
        // A colon without a closing weight, and a weight with no bracket open.
        assert_eq!(parse_attention("time: 5pm"), pairs(&[("time: 5pm", 1.0)]));
        assert_eq!(parse_attention("x:1.5)"), pairs(&[("x:1.5)", 1.0)]));
        assert_eq!(
            parse_attention("[a] b]"),
            pairs(&[("a", 1.0 / 1.1), (" b]", 1.0)])
        );
        assert_eq!(parse_attention(""), pairs(&[("", 1.0)]));
        assert_eq!(parse_attention(r"a\\b"), pairs(&[(r"a\b", 1.0)]));
    }

    fn fake_tokens(text: &str) -> Result<Vec<u32>, String> {
        // One token per word; "," is token 9.
        Ok(text
            .split_inclusive(',')
            .flat_map(|part| {
                let comma = part.ends_with(',');
                let words = part.trim_end_matches(',').split_whitespace().count();
                std::iter::repeat_n(100, words).chain(comma.then_some(9))
            })
            .collect())
    }

    fn no_embedding(_: &[u32], _: usize) -> Option<(std::ops::Range<u32>, usize)> {
        None
    }

    const IDS: SpecialIds = SpecialIds {
        bos: 1,
        eos: 2,
        pad: 2,
        comma: Some(9),
    };

    #[test]
    fn long_prompts_split_at_the_last_comma_in_reach() {
        // 70 words, a comma, then 10 more: the 76th token would overflow
        // the first chunk, and the comma (token 71) is within 20 tokens of
        // its end, so the words after it move on.
        let prompt = format!("{}, {}", ["w"; 70].join(" "), ["v"; 10].join(" "));
        let c = chunks(&[(prompt, 1.0)], IDS, fake_tokens, no_embedding).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].ids.len(), 77);
        assert_eq!(&c[0].ids[70..73], &[100, 9, 2], "cut right after the comma");
        assert_eq!(c[1].ids[1..11], [100; 10]);
        assert_eq!(c[1].ids[11], 2);
        // No comma: cut at 75.
        let plain = ["w"; 80].join(" ");
        let c = chunks(&[(plain, 1.0)], IDS, fake_tokens, no_embedding).unwrap();
        assert_eq!((c[0].ids[75], c[0].ids[76], c[1].ids[5]), (100, 2, 100));
        // BREAK starts a new chunk; weights follow their tokens.
        let c = chunks(
            &parse_attention("a (b) BREAK c"),
            IDS,
            fake_tokens,
            no_embedding,
        )
        .unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(&c[0].weights[..4], &[1.0, 1.0, 1.1, 1.0]);
        // Nothing at all is still one chunk.
        assert_eq!(
            chunks(&parse_attention(""), IDS, fake_tokens, no_embedding)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn embeddings_take_their_names_place_and_never_split() {
        let tokenize = |text: &str| -> Result<Vec<u32>, String> {
            Ok(text
                .split_whitespace()
                .map(|w| if w == "emb" { 7 } else { 100 })
                .collect())
        };
        let find = |t: &[u32], at: usize| (t[at] == 7).then_some((5000..5003, 1));
        let c = chunks(&parse_attention("a (emb) b"), IDS, tokenize, find).unwrap();
        assert_eq!(&c[0].ids[..7], &[1, 100, 5000, 5001, 5002, 100, 2]);
        assert_eq!(&c[0].weights[1..6], &[1.0, 1.1, 1.1, 1.1, 1.0]);
        // 73 words leave 2 slots: the 3-vector embedding starts chunk 2.
        let text = format!("{} emb", ["w"; 73].join(" "));
        let c = chunks(&[(text, 1.0)], IDS, tokenize, find).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].ids[73], c[0].ids[74]), (100, 2));
        assert_eq!(&c[1].ids[..5], &[1, 5000, 5001, 5002, 2]);
    }

    #[test]
    fn weighting_keeps_the_mean() {
        let mut hidden = vec![1.0, 2.0, 3.0, 4.0, -1.0, 0.5];
        let before: f32 = hidden.iter().sum();
        apply_weights(&mut hidden, &[1.0, 2.0, 0.5]);
        let after: f32 = hidden.iter().sum();
        assert!((before - after).abs() < 1e-5);
        // Rows scale relative to each other by their weights.
        let ratio = hidden[2] / hidden[0];
        assert!((ratio - 3.0 * 2.0).abs() < 1e-5, "{ratio}");
    }
}
