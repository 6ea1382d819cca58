//! Stable Diffusion inpainting with the WebUI's semantics: the model folder
//! and its graphs (`model`), the CLIP tokenizer (`tokenizer`), noise as
//! torch draws it (`noise`), schedules and samplers as pure functions
//! (`schedule`, `sampler`), the WebUI's img2img rules and sampling loop
//! (`img2img`), and the pipeline that runs them on the graphs (`pipeline`).

pub mod batcher;
pub mod embeddings;
pub mod engine;
pub mod graph;
pub mod img2img;
pub mod latent_mask;
pub mod lora;
pub mod model;
pub mod networks;
pub mod noise;
pub mod pipeline;
pub mod prompt;
pub mod runs;
pub mod sampler;
pub mod schedule;
pub mod tokenizer;
