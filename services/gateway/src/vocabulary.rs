//! The words a `detect` prompt may use: only what our detectors really
//! find (faces, hands, text, the opt-in subject, and the 80 COCO object
//! classes with their plurals and everyday synonyms). There is no
//! open-vocabulary segmentation behind this; an unknown word is refused
//! with the list of supported ones.

/// A detector a word maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detector {
    Faces,
    Hands,
    Text,
    Subject,
    /// A COCO object class (`inpaint_common::coco::LABELS`).
    Object(u32),
}

/// Each phrase and the detector behind it. "watermark" and "caption" find
/// text: a watermark that is a logo without letters is not found.
const WORDS: &[(&str, Detector)] = &[
    ("face", Detector::Faces),
    ("faces", Detector::Faces),
    ("hand", Detector::Hands),
    ("hands", Detector::Hands),
    ("text", Detector::Text),
    ("texts", Detector::Text),
    ("writing", Detector::Text),
    ("words", Detector::Text),
    ("letters", Detector::Text),
    ("caption", Detector::Text),
    ("captions", Detector::Text),
    ("subtitle", Detector::Text),
    ("subtitles", Detector::Text),
    ("watermark", Detector::Text),
    ("watermarks", Detector::Text),
    ("subject", Detector::Subject),
    ("main subject", Detector::Subject),
    ("foreground", Detector::Subject),
];

/// Words that only say "all of them".
const QUANTIFIERS: &[&str] = &["all", "every", "each", "any", "the"];

/// Every phrase a prompt may use: ours, then the COCO classes.
pub fn words() -> Vec<String> {
    WORDS
        .iter()
        .map(|(w, _)| *w)
        .chain(inpaint_common::coco::LABELS)
        .map(String::from)
        .collect()
}

pub fn supported() -> String {
    let words = WORDS.iter().map(|(w, _)| *w).collect::<Vec<_>>().join(", ");
    format!(
        "{words}; objects: {} (and their plurals, people, man, woman, girl, boy, child, ...)",
        inpaint_common::coco::names()
    )
}

/// The detectors a prompt such as "all faces and the text" names, in the
/// order first named, without repeats. Err carries the reason.
pub fn parse(prompt: &str) -> Result<Vec<Detector>, String> {
    let lowered = prompt.to_lowercase();
    let mut found = Vec::new();
    for phrase in lowered
        .split([',', ';', '+', '&'])
        .flat_map(|part| part.split(" and "))
    {
        let mut words: Vec<&str> = phrase.split_whitespace().collect();
        while words.first().is_some_and(|w| QUANTIFIERS.contains(w)) {
            words.remove(0);
        }
        if words.is_empty() {
            continue;
        }
        let phrase = words.join(" ");
        let named = WORDS
            .iter()
            .find(|(w, _)| *w == phrase)
            .map(|&(_, d)| d)
            .or_else(|| inpaint_common::coco::class_of(&phrase).map(Detector::Object));
        let Some(detector) = named else {
            return Err(format!(
                "{phrase:?} is not something our detectors find; supported: {}",
                supported()
            ));
        };
        if !found.contains(&detector) {
            found.push(detector);
        }
    }
    if found.is_empty() {
        return Err(format!("is empty; supported: {}", supported()));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_map_to_detectors() {
        assert_eq!(parse("faces"), Ok(vec![Detector::Faces]));
        assert_eq!(
            parse("All Faces and the text"),
            Ok(vec![Detector::Faces, Detector::Text])
        );
        assert_eq!(
            parse("watermark, text, every face"),
            Ok(vec![Detector::Text, Detector::Faces])
        );
        assert_eq!(parse("main subject"), Ok(vec![Detector::Subject]));
        assert_eq!(parse("the girl"), Ok(vec![Detector::Object(0)]));
        assert_eq!(
            parse("the cats and all dogs"),
            Ok(vec![Detector::Object(15), Detector::Object(16)])
        );
    }

    #[test]
    fn unknown_words_list_what_is_supported() {
        let err = parse("faces and unicorns").unwrap_err();
        assert!(
            err.contains("\"unicorns\"") && err.contains("watermark") && err.contains("teddy bear"),
            "{err}"
        );
        assert!(parse("  , and ").is_err());
        assert!(parse("").is_err());
    }
}
