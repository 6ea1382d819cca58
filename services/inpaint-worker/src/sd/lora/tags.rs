//! `<lora:NAME:WEIGHT>` in prompts, as the WebUI reads them
//! (modules/extra_networks.py: `<(\w+):([^>]+)>`, the arguments split at
//! `:`, `key=value` items named; extensions-builtin/Lora/
//! extra_networks_lora.py: positional `NAME:TE:UNET:DYN`, named `te=`,
//! `unet=`, `dyn=`; the UNet multiplier defaults to the text encoder's,
//! that to 1). The tag is replaced by nothing; the text around it stays as
//! written. `lyco` is the same network as `lora`.
//!
//! Where we differ, on purpose: a malformed weight is refused (the WebUI
//! shows an error and runs with no LoRA at all); another network type
//! (`<hypernet:...>`) is refused; tags in the negative prompt are read too
//! (the WebUI sends them to CLIP as text).

/// One use of a LoRA.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraUse {
    pub name: String,
    pub te: f32,
    pub unet: f32,
    /// The WebUI's `dyn`: only the first `dyn` ranks are used.
    pub dyn_dim: Option<usize>,
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The text with its tags removed, and the LoRAs they name in order.
pub fn extract(text: &str) -> Result<(String, Vec<LoraUse>), String> {
    let mut out = String::with_capacity(text.len());
    let mut uses = vec![];
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let kind_len = after.find(|c: char| !is_word(c)).unwrap_or(after.len());
        let (kind, tail) = after.split_at(kind_len);
        let args_end = tail.strip_prefix(':').and_then(|t| t.find('>'));
        let (Some(end), false) = (args_end, kind.is_empty()) else {
            // Not a tag: `<` stays as text.
            out.push_str(&rest[..open + 1]);
            rest = after;
            continue;
        };
        let args = &tail[1..1 + end];
        let tag = &rest[open..open + 1 + kind_len + 2 + end];
        out.push_str(&rest[..open]);
        rest = &tail[2 + end..];
        match kind {
            "lora" | "lyco" => {
                uses.push(parse_args(args).map_err(|why| format!("{tag:?}: {why}"))?)
            }
            other => {
                return Err(format!(
                    "{tag:?}: extra network type {other:?} is not supported (only lora)"
                ));
            }
        }
    }
    out.push_str(rest);
    Ok((out, uses))
}

fn parse_args(args: &str) -> Result<LoraUse, String> {
    let mut positional = vec![];
    let mut named = vec![];
    for item in args.split(':') {
        match item.split_once('=') {
            Some((k, v)) if !v.contains('=') => named.push((k, v)),
            _ => positional.push(item),
        }
    }
    let number = |what: &str, v: &str| -> Result<f32, String> {
        v.trim()
            .parse::<f32>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| format!("{what} {v:?} is not a number"))
    };
    let get = |key: &str| named.iter().rev().find(|(k, _)| *k == key).map(|(_, v)| *v);
    let name = positional.first().copied().unwrap_or("");
    if name.is_empty() {
        return Err("no LoRA name".into());
    }
    let mut te = match positional.get(1) {
        Some(v) => number("weight", v)?,
        None => 1.0,
    };
    if let Some(v) = get("te") {
        te = number("te", v)?;
    }
    let mut unet = match positional.get(2) {
        Some(v) => number("unet weight", v)?,
        None => te,
    };
    if let Some(v) = get("unet") {
        unet = number("unet", v)?;
    }
    let dyn_text = get("dyn").or(positional.get(3).copied());
    let dyn_dim = match dyn_text {
        Some(v) => Some(
            v.trim()
                .parse::<usize>()
                .map_err(|_| format!("dyn {v:?} is not a whole number"))?,
        ),
        None => None,
    };
    Ok(LoraUse {
        name: name.to_string(),
        te,
        unet,
        dyn_dim,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(name: &str, te: f32, unet: f32) -> LoraUse {
        LoraUse {
            name: name.into(),
            te,
            unet,
            dyn_dim: None,
        }
    }

    #[test]
    fn tags_are_removed_and_read_as_the_webui_does() {
        let (text, uses) = extract("a helmet, <lora:helmet:0.8>, <lyco:style> red").unwrap();
        assert_eq!(text, "a helmet, ,  red");
        assert_eq!(uses, [one("helmet", 0.8, 0.8), one("style", 1.0, 1.0)]);
        let (_, uses) = extract("<lora:x:0.5:0.25> <lora:y:te=0.3:unet=2:dyn=8>").unwrap();
        assert_eq!(uses[0], one("x", 0.5, 0.25));
        assert_eq!(
            uses[1],
            LoraUse {
                dyn_dim: Some(8),
                ..one("y", 0.3, 2.0)
            }
        );
        // Not tags: kept as text.
        let plain = "i <3 cats, a<b, <:x>, <lora>";
        assert_eq!(extract(plain).unwrap(), (plain.to_string(), vec![]));
    }

    #[test]
    fn malformed_tags_are_refused_quoting_them() {
        let err = extract("x <lora:x:abc> y").unwrap_err();
        assert!(
            err.contains("\"<lora:x:abc>\"") && err.contains("abc"),
            "{err}"
        );
        assert!(extract("<lora::1>").unwrap_err().contains("no LoRA name"));
        assert!(extract("<hypernet:h:1>").unwrap_err().contains("hypernet"));
        assert!(extract("<lora:x:1:1:big>").unwrap_err().contains("dyn"));
    }
}
