//! Pure pixel kernels for the inpainting cluster: mask operators, resizing,
//! crop planning, compositing and the Telea inpainting engine.
//!
//! No I/O and no async: every function takes buffers and returns buffers, so
//! the services stay thin and the kernels can be tested and benchmarked alone.

pub mod bits;
pub mod blur;
pub mod buffer;
pub mod color;
pub mod components;
pub mod composite;
pub mod crop;
pub mod distance;
pub mod mask;
pub mod metrics;
pub mod patchmatch;
pub mod poisson;
pub mod pushpull;
pub mod resize;
pub mod telea;

pub use buffer::{BufferError, GrayImage, PixelBox, RgbImage};
