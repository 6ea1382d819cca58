//! Where the command finds its models when none is named: the same places
//! from any folder, so an installed `inpaint` works outside the repository.
//!
//! In order: `$INPAINT_HOME/models`; `models/cache` under the current
//! folder (a checkout, as `make models` lays it out); the user's data
//! folder, `$XDG_DATA_HOME/inpaint/models` or
//! `~/.local/share/inpaint/models` (which `make models` links to its
//! cache). A folder counts when it holds the ONNX Runtime library.

use std::path::{Path, PathBuf};

/// The library inside a models folder.
pub const ORT_LIBRARY: &str = "onnxruntime/libonnxruntime.so";

/// The places looked at, in order, for these environment values.
pub fn candidates(
    inpaint_home: Option<PathBuf>,
    xdg_data_home: Option<PathBuf>,
    home: Option<PathBuf>,
) -> Vec<PathBuf> {
    let mut places = vec![];
    places.extend(inpaint_home.map(|h| h.join("models")));
    places.push(PathBuf::from("models/cache"));
    let data = xdg_data_home
        .filter(|p| p.is_absolute())
        .or_else(|| home.map(|h| h.join(".local/share")));
    places.extend(data.map(|d| d.join("inpaint/models")));
    places
}

/// The first candidate holding the ONNX Runtime library, or an error
/// naming every place looked at.
pub fn find(places: &[PathBuf]) -> Result<PathBuf, String> {
    places
        .iter()
        .find(|p| p.join(ORT_LIBRARY).is_file())
        .cloned()
        .ok_or_else(|| {
            let looked: Vec<String> = places
                .iter()
                .map(|p| p.join(ORT_LIBRARY).display().to_string())
                .collect();
            format!(
                "no models found; looked for {} (run `make models` in a checkout, or set INPAINT_HOME or INPAINT_MODELS_DIR)",
                looked.join(", ")
            )
        })
}

/// The models folder: the one named, or the first found.
pub fn models_dir(named: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(dir) = named {
        return Ok(dir.to_path_buf());
    }
    let env = |k: &str| std::env::var_os(k).map(PathBuf::from);
    find(&candidates(
        env("INPAINT_HOME"),
        env("XDG_DATA_HOME"),
        env("HOME"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_in_order_and_names_every_place_on_a_miss() {
        let places = candidates(Some("/opt/inpaint".into()), None, Some("/home/ann".into()));
        assert_eq!(
            places,
            [
                PathBuf::from("/opt/inpaint/models"),
                PathBuf::from("models/cache"),
                PathBuf::from("/home/ann/.local/share/inpaint/models"),
            ]
        );
        // A relative XDG_DATA_HOME is ignored, as the spec says.
        let places = candidates(None, Some("rel".into()), Some("/h".into()));
        assert_eq!(places[1], PathBuf::from("/h/.local/share/inpaint/models"));

        let missing = vec![PathBuf::from("/nowhere/a"), PathBuf::from("/nowhere/b")];
        let err = find(&missing).unwrap_err();
        assert!(
            err.contains("/nowhere/a/onnxruntime") && err.contains("/nowhere/b/onnxruntime"),
            "{err}"
        );

        let dir = std::env::temp_dir().join(format!("inpaint-home-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("onnxruntime")).unwrap();
        std::fs::write(dir.join(ORT_LIBRARY), b"").unwrap();
        let places = vec![PathBuf::from("/nowhere"), dir.clone()];
        assert_eq!(find(&places).unwrap(), dir);
        std::fs::remove_dir_all(&dir).ok();
    }
}
