//! Helpers the SD tests share: paths, reference numbers, comparisons, the
//! CPU runtime.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use inpaint_worker::onnx_engine::RuntimeOptions;
use serde_json::Value;

pub fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

pub fn read_json(path: &str) -> Value {
    let text = std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

pub fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

pub fn bytes(v: &Value) -> Vec<u8> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u8)
        .collect()
}

pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

pub fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let mse = a
        .iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }
}

/// One thread on the CPU, the library `make models` fetched.
pub fn runtime() -> RuntimeOptions {
    let dylib = repo("models/cache/onnxruntime/libonnxruntime.so");
    assert!(
        dylib.exists(),
        "run `make models` for the ONNX Runtime library"
    );
    RuntimeOptions {
        ort_dylib: dylib,
        device: inpaint_onnx::Device::Cpu,
        require_gpu: false,
        threads: 1,
        max_wait: Duration::from_millis(1),
        always_wait: false,
        queue: 4,
        sd_max_batch: 8,
        sd_embeddings: None,
        sd_loras: None,
        sd_lora_cache_bytes: 1 << 30,
    }
}

/// A copy of the tiny pipeline's folder under a fresh temporary folder
/// named `tag`.
pub fn copy_pipeline(tag: &str) -> PathBuf {
    let src = repo("models/fixtures/tiny-sd/inpaint");
    let dir = std::env::temp_dir().join(format!("tiny-sd-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&src, &dir);
    dir
}

pub fn copy_dir(src: &std::path::Path, dst: &std::path::Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), to).unwrap();
        }
    }
}
