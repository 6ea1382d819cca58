//! `inpaint mask`: the mask service's operator pipeline run locally on
//! mask files.

use anyhow::Context;
use inpaint_proto::v1::MaskOp;

use crate::args::MaskArgs;

/// Applies the operations to the masks and writes their union as PNG.
pub fn mask(args: MaskArgs, ops: Vec<MaskOp>) -> anyhow::Result<()> {
    let mut regions = Vec::with_capacity(args.inputs.len());
    let mut size = None;
    for path in &args.inputs {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let (w, h) = match size {
            Some(s) => s,
            None => {
                let img = image::load_from_memory(&bytes)
                    .with_context(|| format!("cannot decode {}", path.display()))?;
                (img.width(), img.height())
            }
        };
        size = Some((w, h));
        let as_stored = inpaint_gateway::decode::Decoding {
            max_pixels: u64::MAX,
            upright: false,
        };
        let m = inpaint_gateway::decode::decode_mask(&bytes, w, h, as_stored)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        regions.push(m);
    }
    let processed = inpaint_mask::ops::apply(&ops, regions).map_err(|e| anyhow::anyhow!("{e}"))?;
    let union = inpaint_imaging::mask::union(&processed.iter().collect::<Vec<_>>())
        .expect("at least one input");
    let png =
        inpaint_gateway::decode::encode_gray_png(&union).map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(dir) = args.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.output, png)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    let on = union.as_raw().iter().filter(|&&v| v > 0).count();
    println!(
        "wrote {} ({}x{}, {} operations, {on} pixels above 0)",
        args.output.display(),
        union.width(),
        union.height(),
        ops.len()
    );
    Ok(())
}
