//! The engines the worker serves, by name, with a default.

mod native;
mod onnx;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::engine::Engine;
use crate::onnx_engine::ModelEngine;
use crate::sd::engine::SdEngine;
use crate::sd::model::SdModel;

pub use native::Native;
pub use onnx::Onnx;

/// Engines by name, with a default.
pub struct Registry {
    engines: BTreeMap<&'static str, Arc<dyn Engine>>,
    default: &'static str,
}

impl Registry {
    /// The native engines, "onnx" when models are loaded, and "sd" (which
    /// answers FAILED_PRECONDITION when no pipeline is configured).
    pub fn new(
        parallelism: usize,
        models: Vec<Arc<ModelEngine>>,
        sd_models: Vec<Arc<SdModel>>,
    ) -> Self {
        let mut engines: Vec<Arc<dyn Engine>> = Native::all(parallelism)
            .into_iter()
            .map(|e| Arc::new(e) as Arc<dyn Engine>)
            .collect();
        if !models.is_empty() {
            engines.push(Arc::new(Onnx { models }));
        }
        engines.push(Arc::new(SdEngine { models: sd_models }));
        Self {
            default: "telea",
            engines: engines.into_iter().map(|e| (e.name(), e)).collect(),
        }
    }

    /// The engine called `name`, or the default for an empty name.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Engine>> {
        let name = if name.is_empty() { self.default } else { name };
        self.engines.get(name).cloned()
    }

    pub fn default_name(&self) -> &'static str {
        self.default
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn Engine>> {
        self.engines.values()
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.engines.keys().copied().collect()
    }
}
