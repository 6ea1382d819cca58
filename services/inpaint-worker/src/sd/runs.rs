//! Single runs of a pipeline's graphs, shared by the pipeline and the
//! UNet's batching thread: a text-encoder window, a batched UNet call.

use inpaint_onnx::ort::value::{DynValue, Tensor, TensorElementType};

use super::graph::{FloatType, Graph, Io, TypedFloats, float_tensor};
use super::tokenizer::WINDOW;

/// A UNet call's sample shape and token count: what must match for
/// evaluations to share a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnetShape {
    pub channels: usize,
    pub width: usize,
    pub height: usize,
    pub tokens: usize,
}

/// Hidden states (`[77, width]`) of one text-encoder window.
pub fn encode_window(text_encoder: &Graph, io: &Io, ids: &[u32]) -> Result<Vec<f32>, String> {
    let shape = vec![1i64, WINDOW as i64];
    let e = |err: inpaint_onnx::ort::Error| err.to_string();
    let input: DynValue = match io.ids_type {
        TensorElementType::Int32 => {
            Tensor::from_array((shape, ids.iter().map(|&i| i as i32).collect::<Vec<_>>()))
                .map_err(e)?
                .into_dyn()
        }
        _ => Tensor::from_array((shape, ids.iter().map(|&i| i as i64).collect::<Vec<_>>()))
            .map_err(e)?
            .into_dyn(),
    };
    let (shape, hidden) =
        text_encoder.run(vec![(io.ids_input.clone(), input)], &io.hidden_output)?;
    if shape.len() != 3 || shape[0] != 1 || shape[1] != WINDOW as i64 {
        return Err(format!(
            "{}: hidden states {shape:?}, expected [1, {WINDOW}, width]",
            text_encoder.file.display()
        ));
    }
    Ok(hidden)
}

/// One UNet run over `n` samples (`[n, C, h, w]`) with their hidden states
/// (`[n, tokens, width]`) and timesteps; returns `n` noise predictions.
#[allow(clippy::too_many_arguments)]
pub fn unet_run(
    unet: &Graph,
    io: &Io,
    text_width: usize,
    samples: &[f32],
    n: usize,
    hidden: TypedFloats,
    timesteps: &[f32],
    shape: UnetShape,
) -> Result<Vec<f32>, String> {
    let (lw, lh) = (shape.width, shape.height);
    let sample = float_tensor(
        io.unet_float,
        vec![n as i64, shape.channels as i64, lh as i64, lw as i64],
        samples,
    )?;
    let hidden_value =
        hidden.into_tensor(vec![n as i64, shape.tokens as i64, text_width as i64])?;
    let e = |err: inpaint_onnx::ort::Error| err.to_string();
    // A scalar timestep input takes one value for the whole call (the
    // batcher only groups equal ones then).
    let (dims, ts): (Vec<i64>, Vec<f32>) = if io.timestep.batched {
        (vec![n as i64], timesteps.to_vec())
    } else {
        (vec![], vec![timesteps[0]])
    };
    let timestep: DynValue = match io.timestep.ty {
        // Integer timesteps cannot carry the fractional ones the k-diffusion
        // samplers ask for: the nearest one is used.
        TensorElementType::Int64 => Tensor::from_array((
            dims,
            ts.iter().map(|t| t.round() as i64).collect::<Vec<_>>(),
        ))
        .map_err(e)?
        .into_dyn(),
        TensorElementType::Int32 => Tensor::from_array((
            dims,
            ts.iter().map(|t| t.round() as i32).collect::<Vec<_>>(),
        ))
        .map_err(e)?
        .into_dyn(),
        TensorElementType::Float16 => float_tensor(FloatType::F16, dims, &ts)?,
        _ => float_tensor(FloatType::F32, dims, &ts)?,
    };
    let (out_shape, out) = unet.run(
        vec![
            (io.unet_sample.clone(), sample),
            (io.unet_timestep.clone(), timestep),
            (io.unet_hidden.clone(), hidden_value),
        ],
        &io.unet_output,
    )?;
    if out.len() != n * io.latent_channels * lw * lh {
        return Err(format!(
            "{}: output {out_shape:?}, expected [{n}, {}, {lh}, {lw}]",
            unet.file.display(),
            io.latent_channels
        ));
    }
    Ok(out)
}
