//! The command from any folder: run from a temporary folder outside the
//! repository, it finds its models in the standard places, and a miss
//! names every place it looked.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
        .canonicalize()
        .unwrap_or_else(|e| panic!("{path}: {e} (run `make models`)"))
}

fn temp(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("inpaint-anywhere-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `inpaint` in `cwd` with only `env` set among the variables that name
/// model places.
fn inpaint(cwd: &Path, env: &[(&str, &Path)], args: &[&str]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_inpaint"));
    command.current_dir(cwd).args(args);
    for key in [
        "INPAINT_HOME",
        "INPAINT_MODELS_DIR",
        "ORT_DYLIB_PATH",
        "XDG_DATA_HOME",
        "INPAINT_WORKER_MODELS",
    ] {
        command.env_remove(key);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("inpaint runs")
}

#[test]
fn runs_from_any_folder_and_names_where_it_looked() {
    let cache = repo("models/cache");
    let photo = repo("models/cache/photos/astronaut.png");
    // A user's data folder holding the models, as `make models` links it.
    let home = temp("home");
    let data = home.join(".local/share/inpaint");
    std::fs::create_dir_all(&data).unwrap();
    std::os::unix::fs::symlink(&cache, data.join("models")).unwrap();
    let elsewhere = temp("cwd");
    let mask = elsewhere.join("mask.png");
    let mut m = image::GrayImage::new(512, 512);
    for y in 20..44 {
        for x in 330..354 {
            m.put_pixel(x, y, image::Luma([255]));
        }
    }
    m.save(&mask).unwrap();
    let out = inpaint(
        &elsewhere,
        &[("HOME", &home)],
        &[
            "run",
            photo.to_str().unwrap(),
            "--mask",
            "mask.png",
            "-o",
            "restored.png",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(elsewhere.join("restored.png").is_file());

    // INPAINT_HOME is looked at first.
    let inpaint_home = temp("inpaint-home");
    std::os::unix::fs::symlink(&cache, inpaint_home.join("models")).unwrap();
    let empty_home = temp("empty-home");
    let out = inpaint(
        &elsewhere,
        &[("HOME", &empty_home), ("INPAINT_HOME", &inpaint_home)],
        &[
            "run",
            photo.to_str().unwrap(),
            "--mask",
            "mask.png",
            "-o",
            "again.png",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Nowhere: every place is named.
    let out = inpaint(
        &elsewhere,
        &[("HOME", &empty_home)],
        &[
            "run",
            photo.to_str().unwrap(),
            "--mask",
            "mask.png",
            "-o",
            "never.png",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("models/cache/onnxruntime/libonnxruntime.so")
            && err.contains(".local/share/inpaint/models/onnxruntime/libonnxruntime.so"),
        "{err}"
    );
    for dir in [home, elsewhere, inpaint_home, empty_home] {
        std::fs::remove_dir_all(dir).ok();
    }
}
