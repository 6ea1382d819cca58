//! Inpainting engines behind one trait, and the registry the worker serves.

use std::collections::BTreeMap;
use std::sync::Arc;

use inpaint_imaging::{GrayImage, RgbImage, telea};

/// Per-request engine settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct EngineParams {
    /// Neighbourhood radius (telea); 0 = the engine's default.
    pub radius: u32,
    pub seed: u64,
}

/// Repaints the pixels where `hole` > 0; every other pixel is returned as is.
pub trait Engine: Send + Sync {
    fn name(&self) -> &'static str;
    fn description(&self) -> &'static str;
    fn device(&self) -> &'static str;
    fn inpaint(&self, image: &RgbImage, hole: &GrayImage, params: &EngineParams) -> RgbImage;
}

/// Telea's fast marching method (as OpenCV's INPAINT_TELEA), native Rust.
pub struct Telea;

impl Engine for Telea {
    fn name(&self) -> &'static str {
        "telea"
    }
    fn description(&self) -> &'static str {
        "fast marching inpainting (Telea 2004); smooth fills for small holes"
    }
    fn device(&self) -> &'static str {
        "cpu"
    }
    fn inpaint(&self, image: &RgbImage, hole: &GrayImage, params: &EngineParams) -> RgbImage {
        telea::inpaint(image, hole, params.radius)
    }
}

/// Engines by name, with a default.
pub struct Registry {
    engines: BTreeMap<&'static str, Arc<dyn Engine>>,
    default: &'static str,
}

impl Registry {
    /// The engines that need no model files.
    pub fn native() -> Self {
        let telea: Arc<dyn Engine> = Arc::new(Telea);
        Self {
            default: telea.name(),
            engines: BTreeMap::from([(telea.name(), telea)]),
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
