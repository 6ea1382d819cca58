//! Pure pixel kernels for the inpainting cluster: mask operators, resizing,
//! crop planning, compositing and the Telea inpainting engine.
//!
//! No I/O and no async: every function takes buffers and returns buffers, so
//! the services stay thin and the kernels can be tested and benchmarked alone.
//! The hottest kernels pick their instruction set at run time ([`cpu`]).

pub mod anonymise;
pub mod bits;
pub mod blur;
pub mod buffer;
pub mod color;
pub mod components;
pub mod composite;
pub mod cpu;
pub mod crop;
pub mod distance;
pub mod mask;
pub mod metrics;
pub mod patchmatch;
pub mod poisson;
pub mod pushpull;
pub mod resize;
pub mod telea;
mod transpose;

pub use buffer::{BufferError, GrayImage, PixelBox, RgbImage};

/// A channel value to a byte: rounded half up, saturated to 0..=255, NaN to
/// 0. The same bytes as `v.round().clamp(0.0, 255.0) as u8` (up to the last
/// bit below a half), without `f32::round`, which is a library call on
/// baseline x86-64 and dominated the hot loops that convert whole images.
#[inline]
pub fn to_byte(v: f32) -> u8 {
    (v + 0.5) as u8
}

#[cfg(test)]
mod tests {
    #[test]
    fn to_byte_rounds_and_saturates() {
        for v in [
            -3.0f32, -0.5, 0.0, 0.49, 0.5, 1.5, 127.4, 254.5, 255.0, 300.0,
        ] {
            assert_eq!(super::to_byte(v), v.round().clamp(0.0, 255.0) as u8, "{v}");
        }
        assert_eq!(super::to_byte(f32::NAN), 0);
    }
}
