//! LoRA deltas onto a graph's weights, as the WebUI's Lora extension
//! computes them (network_lora.py, lyco_helpers.rebuild_conventional):
//! `multiplier * alpha / rank * up @ down` reshaped to the weight, alpha
//! missing = scale 1, the WebUI's `dyn` keeping the first ranks (the scale
//! still by the full rank), and a 4-channel LoRA's first conv zero-padded
//! onto a 9-channel inpainting UNet's; several LoRAs add up
//! (networks.py network_apply_weights: W0 + the sum of the deltas).

use std::collections::HashMap;

use inpaint_onnx::weights::{Layout, ModuleWeight};

use super::file::{LoraModule, Target};

/// A graph's module weights by module path, the export's wrapper modules
/// stripped (paths start at one of `roots`).
#[derive(Debug, Default)]
pub struct GraphModules {
    by_path: HashMap<String, ModuleWeight>,
    by_underscored: HashMap<String, String>,
}

/// Roots of the UNet's module paths.
pub const UNET_ROOTS: &[&str] = &[
    "conv_in",
    "time_embedding",
    "add_embedding",
    "down_blocks",
    "mid_block",
    "up_blocks",
    "conv_norm_out",
    "conv_out",
];
/// Roots of the CLIP text model's module paths.
pub const TEXT_ROOTS: &[&str] = &["embeddings", "encoder", "final_layer_norm"];

fn canonical(path: &str, roots: &[&str]) -> Option<String> {
    let parts: Vec<&str> = path.split('.').collect();
    let at = parts.iter().position(|p| roots.contains(p))?;
    Some(parts[at..].join("."))
}

impl GraphModules {
    pub fn new(index: Vec<ModuleWeight>, roots: &[&str]) -> Self {
        let mut m = Self::default();
        for w in index {
            if let Some(path) = canonical(&w.module, roots) {
                m.by_underscored
                    .insert(path.replace('.', "_"), path.clone());
                m.by_path.insert(path, w);
            }
        }
        m
    }

    pub fn len(&self) -> usize {
        self.by_path.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_path.is_empty()
    }

    /// The weight a LoRA module names.
    pub fn find(&self, target: &Target, roots: &[&str]) -> Option<&ModuleWeight> {
        let path = match target {
            Target::Dotted(p) => canonical(p, roots).unwrap_or_else(|| p.clone()),
            Target::Underscored(u) => {
                let u = u.strip_prefix("text_model_").unwrap_or(u);
                self.by_underscored.get(u)?.clone()
            }
        };
        self.by_path.get(&path)
    }
}

/// Whether the pair fits the weight; the reason when not.
pub fn fits(m: &LoraModule, w: &ModuleWeight) -> Result<(), String> {
    let padded_conv = w.layout == Layout::Conv
        && w.dims.get(1) == Some(&9)
        && m.in_channels == 4
        && m.inner / 4 == w.inner / 9;
    if m.out == w.out && (m.inner == w.inner || padded_conv) {
        Ok(())
    } else {
        Err(format!(
            "{}: the LoRA's {} x {} does not fit the model's {} x {} (a LoRA for another base model?)",
            m.key, m.out, m.inner, w.out, w.inner
        ))
    }
}

/// Adds `factor * up[:, :rank] @ down[:rank]` to `values`, the weight's
/// own values as f32 in its layout. `fits` must hold.
pub fn add_delta(values: &mut [f32], w: &ModuleWeight, m: &LoraModule, factor: f32, rank: usize) {
    let rank = rank.min(m.rank);
    match w.layout {
        Layout::OutIn | Layout::Conv => add_rows(values, w.inner, 0, m, factor, rank),
        // Transposed weights: each of the weight's rows is one input column
        // of the delta, computed in place of a strided scatter.
        Layout::InOut => add_columns(values, w.out, 0, m, factor, rank),
        Layout::Columns { start, total } => add_columns(values, total, start, m, factor, rank),
    }
}

/// `[out, inner]` rows at `stride` (a padded conv's first input channels
/// come first in each of its rows).
fn add_rows(
    values: &mut [f32],
    stride: usize,
    start: usize,
    m: &LoraModule,
    factor: f32,
    rank: usize,
) {
    let mut row = vec![0f32; m.inner];
    for o in 0..m.out {
        row.fill(0.0);
        for k in 0..rank {
            let a = factor * m.up[o * m.rank + k];
            if a == 0.0 {
                continue;
            }
            for (x, d) in row.iter_mut().zip(&m.down[k * m.inner..(k + 1) * m.inner]) {
                *x += a * d;
            }
        }
        let at = o * stride + start;
        for (v, d) in values[at..at + m.inner].iter_mut().zip(&row) {
            *v += d;
        }
    }
}

/// The delta transposed, `[inner, out]`, its rows at `stride` from `start`.
fn add_columns(
    values: &mut [f32],
    stride: usize,
    start: usize,
    m: &LoraModule,
    factor: f32,
    rank: usize,
) {
    let mut up_t = vec![0f32; rank * m.out];
    for o in 0..m.out {
        for k in 0..rank {
            up_t[k * m.out + o] = factor * m.up[o * m.rank + k];
        }
    }
    let mut col = vec![0f32; m.out];
    for j in 0..m.inner {
        col.fill(0.0);
        for k in 0..rank {
            let d = m.down[k * m.inner + j];
            if d == 0.0 {
                continue;
            }
            for (x, u) in col.iter_mut().zip(&up_t[k * m.out..(k + 1) * m.out]) {
                *x += u * d;
            }
        }
        let at = j * stride + start;
        for (v, d) in values[at..at + m.out].iter_mut().zip(&col) {
            *v += d;
        }
    }
}

/// The WebUI's calc_scale: alpha / rank, or 1 without alpha.
pub fn scale(m: &LoraModule) -> f32 {
    m.alpha.map_or(1.0, |a| a / m.rank as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use inpaint_onnx::tensor::FloatKind;

    fn weight(layout: Layout, dims: Vec<usize>, out: usize, inner: usize) -> ModuleWeight {
        ModuleWeight {
            module: "m".into(),
            initializer: "w".into(),
            layout,
            dims,
            kind: FloatKind::F32,
            out,
            inner,
        }
    }

    fn pair(out: usize, inner: usize) -> LoraModule {
        // up [out, 1] = 1..=out, down [1, inner] = 10, 20, ...
        LoraModule {
            part: super::super::file::Part::Unet,
            key: "k".into(),
            target: Target::Dotted("m".into()),
            up: (1..=out).map(|v| v as f32).collect(),
            down: (1..=inner).map(|v| 10.0 * v as f32).collect(),
            out,
            rank: 1,
            inner,
            in_channels: inner,
            alpha: None,
        }
    }

    #[test]
    fn deltas_land_where_each_layout_keeps_the_value() {
        // delta[o][j] = (o + 1) * 10 * (j + 1), out 2, in 3.
        let m = pair(2, 3);
        let mut out_in = vec![0.0; 6];
        add_delta(
            &mut out_in,
            &weight(Layout::OutIn, vec![2, 3], 2, 3),
            &m,
            1.0,
            1,
        );
        assert_eq!(out_in, [10., 20., 30., 20., 40., 60.]);
        let mut in_out = vec![0.0; 6];
        add_delta(
            &mut in_out,
            &weight(Layout::InOut, vec![3, 2], 2, 3),
            &m,
            0.5,
            1,
        );
        assert_eq!(in_out, [5., 10., 10., 20., 15., 30.]);
        // Columns 1..3 of a [3, 4] packed weight.
        let mut packed = vec![0.0; 12];
        let cols = Layout::Columns { start: 1, total: 4 };
        add_delta(&mut packed, &weight(cols, vec![3, 4], 2, 3), &m, 1.0, 1);
        assert_eq!(
            packed,
            [0., 10., 20., 0., 0., 20., 40., 0., 0., 30., 60., 0.]
        );
    }

    #[test]
    fn shapes_of_another_base_do_not_fit_but_a_4_channel_conv_pads_onto_9() {
        let m = pair(2, 3);
        assert!(fits(&m, &weight(Layout::OutIn, vec![2, 4], 2, 4)).is_err());
        let mut conv = pair(2, 4 * 9);
        conv.in_channels = 4;
        let nine = weight(Layout::Conv, vec![2, 9, 3, 3], 2, 81);
        assert!(fits(&conv, &nine).is_ok());
        let mut values = vec![0.0; 162];
        add_delta(&mut values, &nine, &conv, 1.0, 1);
        assert!(
            values[36..81].iter().all(|&v| v == 0.0),
            "channels 4..9 untouched"
        );
        assert_eq!(values[0], 10.0);
    }
}
