//! The process-wide ONNX Runtime environment (ort allows one per process).

use std::path::Path;
use std::sync::OnceLock;

use ort::environment::Environment;

use crate::error::Error;

static ENVIRONMENT: OnceLock<Result<Environment, String>> = OnceLock::new();

/// Loads the ONNX Runtime library at `dylib` once per process and returns the
/// environment. A missing library is a clear error, not ort's panic.
pub fn environment(dylib: &Path) -> Result<&'static Environment, Error> {
    let env = ENVIRONMENT.get_or_init(|| {
        if !dylib.is_file() {
            return Err(format!(
                "ONNX Runtime library not found at {} (run `make models`, or set ORT_DYLIB_PATH)",
                dylib.display()
            ));
        }
        let builder =
            ort::init_from(dylib).map_err(|e| format!("cannot load {}: {e}", dylib.display()))?;
        builder
            .with_name("inpaint")
            .build()
            .map_err(|e| e.to_string())
    });
    env.as_ref().map_err(|e| Error::Load(e.clone()))
}
