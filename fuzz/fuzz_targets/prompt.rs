//! The WebUI prompt syntax: attention brackets, weights, escapes, BREAK,
//! then 75-token chunks. Every chunk is 77 ids with a weight each, starts
//! with BOS and ends with EOS, whatever the text.
#![no_main]

use inpaint_worker::sd::prompt::{Chunk, SpecialIds, chunks, parse_attention};
use libfuzzer_sys::fuzz_target;

const IDS: SpecialIds = SpecialIds {
    bos: 49406,
    eos: 49407,
    pad: 49407,
    comma: Some(267),
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let pieces = parse_attention(text);
    for (_, weight) in &pieces {
        assert!(!weight.is_nan());
    }
    // A stand-in tokenizer: one id per character (a comma is the comma id),
    // and an "embedding" wherever id 1000 + 'E' starts, three slots wide.
    let tokenize = |piece: &str| -> Result<Vec<u32>, String> {
        Ok(piece
            .chars()
            .map(|c| {
                if c == ',' {
                    267
                } else {
                    1000 + (c as u32 % 40_000)
                }
            })
            .collect())
    };
    let embedding = |tokens: &[u32], at: usize| {
        (tokens[at] == 1000 + 'E' as u32).then_some((50_000..50_003, 1))
    };
    let made: Vec<Chunk> = chunks(&pieces, IDS, tokenize, embedding).expect("chunks");
    for chunk in &made {
        assert_eq!(chunk.ids.len(), 77);
        assert_eq!(chunk.weights.len(), 77);
        assert_eq!(chunk.ids[0], IDS.bos);
        assert_eq!(chunk.ids[76], IDS.eos);
    }
});
