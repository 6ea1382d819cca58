//! Turns wire mask operations into kernel calls, validating each one.

use inpaint_imaging::GrayImage;
use inpaint_imaging::mask;
use inpaint_proto::v1::{MaskOp, mask_op::Op};

use crate::error::Error;

/// Most operations one request may chain.
pub const MAX_OPS: usize = 32;

/// Applies `ops` to `mask` in order. Errors name the operation's index and
/// field, e.g. `ops[2].grow.pixels`.
pub fn apply(ops: &[MaskOp], mut current: GrayImage) -> Result<GrayImage, Error> {
    if ops.len() > MAX_OPS {
        return Err(Error::invalid(
            "ops",
            format!("at most {MAX_OPS} operations, got {}", ops.len()),
        ));
    }
    let longest = current.width().max(current.height()) as i64;
    for (i, op) in ops.iter().enumerate() {
        let field = |name: &str| format!("ops[{i}].{name}");
        current = match &op.op {
            None => return Err(Error::invalid(format!("ops[{i}]"), "operation is not set")),
            Some(Op::Threshold(t)) => {
                let level = u8::try_from(t.level)
                    .map_err(|_| Error::invalid(field("threshold.level"), "must be in 0..=255"))?;
                mask::threshold(&current, level)
            }
            Some(Op::Invert(_)) => mask::invert(&current),
            Some(Op::Grow(g)) => {
                if (g.pixels as i64).abs() > longest {
                    return Err(Error::invalid(
                        field("grow.pixels"),
                        format!(
                            "|{}| is beyond the image's longer side ({longest})",
                            g.pixels
                        ),
                    ));
                }
                mask::grow(&current, g.pixels)
            }
            Some(Op::Feather(f)) => {
                if f.radius as i64 > longest {
                    return Err(Error::invalid(
                        field("feather.radius"),
                        format!("{} is beyond the image's longer side ({longest})", f.radius),
                    ));
                }
                mask::feather(&current, f.radius)
            }
        };
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use inpaint_imaging::PixelBox;
    use inpaint_proto::v1::{Feather, Grow, Invert};

    fn op(op: Op) -> MaskOp {
        MaskOp { op: Some(op) }
    }

    #[test]
    fn order_is_kept() {
        let m = mask::from_box(20, 20, PixelBox::new(5, 5, 4, 4));
        let invert_then_grow = apply(
            &[op(Op::Invert(Invert {})), op(Op::Grow(Grow { pixels: 1 }))],
            m.clone(),
        )
        .unwrap();
        let grow_then_invert = apply(
            &[op(Op::Grow(Grow { pixels: 1 })), op(Op::Invert(Invert {}))],
            m,
        )
        .unwrap();
        assert_ne!(invert_then_grow, grow_then_invert);
    }

    #[test]
    fn bad_radius_names_index_and_field() {
        let m = GrayImage::filled(10, 10, 0);
        let err = apply(
            &[
                op(Op::Invert(Invert {})),
                op(Op::Grow(Grow { pixels: -11 })),
            ],
            m.clone(),
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("ops[1].grow.pixels"), "{err}");
        let err = apply(&[op(Op::Feather(Feather { radius: 50 }))], m.clone()).unwrap_err();
        assert!(
            err.to_string().starts_with("ops[0].feather.radius"),
            "{err}"
        );
        let err = apply(&[MaskOp { op: None }], m).unwrap_err();
        assert!(err.to_string().starts_with("ops[0]"), "{err}");
    }
}
