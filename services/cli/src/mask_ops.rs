//! Mask operations as command-line words: `grow=16`, `feather=8`,
//! `combine=merge`, ... shared by `inpaint mask` (one flag per operation, in
//! command-line order) and `inpaint run --op`.

use inpaint_proto::v1::{self as pb, MaskOp, mask_op::Op};

/// Every operation name, with what its value is.
pub const OPERATIONS: &[(&str, &str)] = &[
    (
        "threshold",
        "LEVEL: values >= LEVEL (0..255) become 255, others 0",
    ),
    ("invert", "repaint everything but the mask"),
    ("grow", "PIXELS: grow (>0) or shrink (<0) by a disc"),
    (
        "grow-square",
        "PIXELS: grow (>0) or shrink (<0) by a square",
    ),
    (
        "feather",
        "RADIUS: soft edge outward from the mask, 0 at RADIUS",
    ),
    ("blur", "SIGMA: Gaussian blur of the mask"),
    ("fill-holes", "fill background enclosed by the mask"),
    ("offset", "X,Y: move the mask right/down by X,Y pixels"),
    (
        "keep-largest",
        "COUNT: keep the COUNT largest connected pieces",
    ),
    (
        "area-range",
        "MIN,MAX: keep pieces whose area / image area is in MIN..MAX",
    ),
    (
        "combine",
        "MODE: join the regions: merge, intersect, subtract, merge-invert",
    ),
];

/// `name` or `name=value`.
pub fn parse_spec(spec: &str) -> Result<MaskOp, String> {
    let (name, value) = match spec.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (spec, None),
    };
    parse_op(name, value)
}

pub fn parse_op(name: &str, value: Option<&str>) -> Result<MaskOp, String> {
    let need = || value.ok_or_else(|| format!("{name} needs a value"));
    let number = |what: &str| -> Result<f64, String> {
        let v = need()?;
        v.trim()
            .parse::<f64>()
            .map_err(|_| format!("{name}: {what} {v:?} is not a number"))
    };
    let pair = || -> Result<(f64, f64), String> {
        let v = need()?;
        let (a, b) = v
            .split_once(',')
            .ok_or_else(|| format!("{name}: expected A,B, got {v:?}"))?;
        let parse = |s: &str| {
            s.trim()
                .parse::<f64>()
                .map_err(|_| format!("{name}: {s:?} is not a number"))
        };
        Ok((parse(a)?, parse(b)?))
    };
    let op = match name {
        "threshold" => Op::Threshold(pb::Threshold {
            level: number("level")? as u32,
        }),
        "invert" => Op::Invert(pb::Invert {}),
        "grow" | "grow-square" => Op::Grow(pb::Grow {
            pixels: number("pixels")? as i32,
            shape: if name == "grow" {
                pb::Shape::Ellipse
            } else {
                pb::Shape::Square
            } as i32,
        }),
        "feather" => Op::Feather(pb::Feather {
            radius: number("radius")? as u32,
            kind: pb::FeatherKind::Outward as i32,
            sigma: 0.0,
        }),
        "blur" => Op::Feather(pb::Feather {
            radius: 0,
            kind: pb::FeatherKind::Gaussian as i32,
            sigma: number("sigma")? as f32,
        }),
        "fill-holes" => Op::FillHoles(pb::FillHoles {}),
        "offset" => {
            let (x, y) = pair()?;
            Op::Offset(pb::Offset {
                x: x as i32,
                y: y as i32,
            })
        }
        "keep-largest" => Op::KeepLargest(pb::KeepLargest {
            count: number("count")? as u32,
        }),
        "area-range" => {
            let (min, max) = pair()?;
            Op::AreaFilter(pb::AreaFilter {
                min_ratio: min as f32,
                max_ratio: max as f32,
            })
        }
        "combine" => {
            let mode = match need()? {
                "merge" => pb::CombineMode::Merge,
                "intersect" => pb::CombineMode::Intersect,
                "subtract" => pb::CombineMode::Subtract,
                "merge-invert" => pb::CombineMode::MergeInvert,
                other => return Err(format!("combine: unknown mode {other:?}")),
            };
            Op::Combine(pb::Combine { mode: mode as i32 })
        }
        other => {
            let known: Vec<&str> = OPERATIONS.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "unknown operation {other:?}; known: {}",
                known.join(", ")
            ));
        }
    };
    Ok(MaskOp { op: Some(op) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        assert!(matches!(
            parse_spec("grow=-4").unwrap().op,
            Some(Op::Grow(pb::Grow { pixels: -4, .. }))
        ));
        assert!(matches!(
            parse_spec("invert").unwrap().op,
            Some(Op::Invert(_))
        ));
        assert!(matches!(
            parse_spec("offset=3,-2").unwrap().op,
            Some(Op::Offset(pb::Offset { x: 3, y: -2 }))
        ));
        assert!(parse_spec("grow").is_err());
        assert!(parse_spec("explode=3").unwrap_err().contains("known"));
        assert!(parse_spec("combine=xor").is_err());
    }
}
