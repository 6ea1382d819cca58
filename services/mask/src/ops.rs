//! Turns wire mask operations into kernel calls: all are validated first
//! (errors name the operation's index and field, e.g. `ops[2].grow.pixels`),
//! then applied in order to each region's mask until a Combine joins them.

use inpaint_imaging::RgbImage;
use inpaint_imaging::mask::{self, Shape as KernelShape};
use inpaint_imaging::{GrayImage, PixelBox};
use inpaint_proto::v1::{CombineMode, FeatherKind, MaskOp, RegionOps, Shape, mask_op::Op};

use crate::error::Error;

/// Most operations one request may chain.
pub const MAX_OPS: usize = 32;

const KNOWN: &str =
    "threshold, invert, grow, feather, fill_holes, offset, keep_largest, area_filter, combine";

/// Checks every operation against an image of `width` x `height`.
pub fn validate(ops: &[MaskOp], width: u32, height: u32) -> Result<(), Error> {
    if ops.len() > MAX_OPS {
        return Err(Error::invalid(
            "ops",
            format!("at most {MAX_OPS} operations, got {}", ops.len()),
        ));
    }
    let longest = width.max(height) as f64;
    for (i, op) in ops.iter().enumerate() {
        let field = |name: &str| format!("ops[{i}].{name}");
        let within = |name: &str, v: f64, max: f64| -> Result<(), Error> {
            if v.is_finite() && v.abs() <= max {
                Ok(())
            } else {
                Err(Error::invalid(
                    field(name),
                    format!("{v} is out of range (|value| <= {max})"),
                ))
            }
        };
        match &op.op {
            None => {
                return Err(Error::invalid(
                    format!("ops[{i}]"),
                    format!("unknown or missing operation; known: {KNOWN}"),
                ));
            }
            Some(Op::Threshold(t)) => within("threshold.level", t.level as f64, 255.0)?,
            Some(Op::Invert(_)) | Some(Op::FillHoles(_)) | Some(Op::KeepLargest(_)) => {}
            Some(Op::Grow(g)) => {
                within("grow.pixels", g.pixels as f64, longest)?;
                Shape::try_from(g.shape)
                    .map_err(|_| Error::invalid(field("grow.shape"), "unknown shape"))?;
            }
            Some(Op::Feather(f)) => {
                within("feather.radius", f.radius as f64, longest)?;
                within("feather.sigma", f.sigma as f64, longest)?;
                if f.sigma < 0.0 {
                    return Err(Error::invalid(
                        field("feather.sigma"),
                        "must not be negative",
                    ));
                }
                FeatherKind::try_from(f.kind)
                    .map_err(|_| Error::invalid(field("feather.kind"), "unknown kind"))?;
            }
            Some(Op::Offset(o)) => {
                within("offset.x", o.x as f64, longest)?;
                within("offset.y", o.y as f64, longest)?;
            }
            Some(Op::AreaFilter(a)) => {
                within("area_filter.min_ratio", a.min_ratio as f64, 1.0)?;
                within("area_filter.max_ratio", a.max_ratio as f64, 1.0)?;
                if a.min_ratio < 0.0 || a.max_ratio < 0.0 {
                    return Err(Error::invalid(
                        field("area_filter"),
                        "ratios must not be negative",
                    ));
                }
                if a.max_ratio > 0.0 && a.min_ratio > a.max_ratio {
                    return Err(Error::invalid(
                        field("area_filter.min_ratio"),
                        "must not exceed max_ratio",
                    ));
                }
            }
            Some(Op::Combine(c)) => match CombineMode::try_from(c.mode) {
                Ok(CombineMode::Unspecified) | Err(_) => {
                    return Err(Error::invalid(
                        field("combine.mode"),
                        "merge, intersect, subtract or merge_invert",
                    ));
                }
                Ok(_) => {}
            },
        }
    }
    Ok(())
}

/// Validates `ops`, then applies them to `regions` (same size each).
pub fn apply(ops: &[MaskOp], mut regions: Vec<GrayImage>) -> Result<Vec<GrayImage>, Error> {
    let Some(first) = regions.first() else {
        return Err(Error::invalid("masks", "at least one mask is required"));
    };
    validate(ops, first.width(), first.height())?;
    // Runs of per-region operators between the combines.
    let mut run: Vec<&Op> = vec![];
    for op in ops {
        match op.op.as_ref().expect("validated") {
            Op::Combine(c) => {
                regions = regions.iter().map(|m| apply_chain(&run, m)).collect();
                run.clear();
                let mode = CombineMode::try_from(c.mode).expect("validated");
                regions = vec![combine(mode, &regions)];
            }
            other => run.push(other),
        }
    }
    Ok(regions.iter().map(|m| apply_chain(&run, m)).collect())
}

/// Applies `ops` in order to `m`, working only where they can change
/// anything when they are all local (nothing they do reaches further than
/// their `reach` from the mask): the mask's bounding box widened by the
/// sum of their reaches, which holds zeros at least that deep around the
/// mask, so borders see what they would see in the whole mask and the
/// result is the same. A face in a 48-megapixel photo is then a few
/// thousand pixels of work instead of 48 million per operator.
fn apply_chain(ops: &[&Op], m: &GrayImage) -> GrayImage {
    let whole = |m: &GrayImage| {
        let mut out = m.clone();
        for op in ops {
            out = apply_one(op, &out);
        }
        out
    };
    let Some(total) = ops.iter().map(|op| reach(op)).sum::<Option<u32>>() else {
        return whole(m);
    };
    let Some(b) = mask::bounding_box(m) else {
        // Local operators leave an empty mask empty.
        return m.clone();
    };
    let (w, h) = (m.width(), m.height());
    let (x0, y0) = (b.x.saturating_sub(total), b.y.saturating_sub(total));
    let (x1, y1) = (
        b.right().saturating_add(total).min(w),
        b.bottom().saturating_add(total).min(h),
    );
    let area = PixelBox::new(x0, y0, x1 - x0, y1 - y0);
    if area.area() * 2 > w as u64 * h as u64 {
        return whole(m);
    }
    let part = whole(&m.crop(area));
    let mut out = GrayImage::filled(w, h, 0);
    let stride = w as usize;
    for (row, src) in part.as_raw().chunks_exact(area.width as usize).enumerate() {
        let at = (area.y as usize + row) * stride + area.x as usize;
        out.as_raw_mut()[at..at + src.len()].copy_from_slice(src);
    }
    out
}

/// How far from the mask `op` can turn a 0 into anything else, or None
/// when it is not local (invert, threshold at 0, and the area filter,
/// whose ratios are of the whole image). One pixel of margin each, so the
/// zeros around a mask stay at least as deep as any kernel reaches.
fn reach(op: &Op) -> Option<u32> {
    Some(match op {
        Op::Threshold(t) if t.level > 0 => 1,
        Op::Grow(g) => g.pixels.unsigned_abs() + 1,
        Op::Feather(f) => match FeatherKind::try_from(f.kind) {
            // The box cascade beyond the direct kernel reaches about 3
            // sigma; 4 sigma is a safe bound for both.
            Ok(FeatherKind::Gaussian) if f.sigma > 0.0 => (4.0 * f.sigma).ceil() as u32 + 2,
            Ok(FeatherKind::Gaussian) => {
                let sigma = mask::sigma_for_radius(f.radius);
                f.radius.max((4.0 * sigma).ceil() as u32) + 2
            }
            _ => f.radius + 1,
        },
        Op::Offset(o) => o.x.unsigned_abs() + o.y.unsigned_abs() + 1,
        Op::FillHoles(_) | Op::KeepLargest(_) => 1,
        Op::Threshold(_) | Op::Invert(_) | Op::AreaFilter(_) | Op::Combine(_) => return None,
    })
}

/// The operator list of each region when some regions have their own
/// (`region_ops`), or None when all share `ops`. Validated: indices in
/// range and unique, no Combine anywhere (regions stay apart).
pub fn region_ops(
    region_ops: &[RegionOps],
    ops: &[MaskOp],
    regions: usize,
    image: &RgbImage,
) -> Result<Option<Vec<Vec<MaskOp>>>, Error> {
    if region_ops.is_empty() {
        return Ok(None);
    }
    let combines = |list: &[MaskOp]| list.iter().any(|op| matches!(op.op, Some(Op::Combine(_))));
    if combines(ops) {
        return Err(Error::invalid(
            "region_ops",
            "cannot be used when `ops` combines the regions",
        ));
    }
    let mut per_region: Vec<Option<Vec<MaskOp>>> = vec![None; regions];
    for (k, own) in region_ops.iter().enumerate() {
        let field = format!("region_ops[{k}]");
        let slot = per_region.get_mut(own.region as usize).ok_or_else(|| {
            Error::invalid(
                format!("{field}.region"),
                format!("there are {regions} masks"),
            )
        })?;
        if slot.is_some() {
            return Err(Error::invalid(format!("{field}.region"), "given twice"));
        }
        validate(&own.ops, image.width(), image.height()).map_err(|e| match e {
            Error::Invalid(e) => Error::Invalid(e.within(&field)),
            other => other,
        })?;
        if combines(&own.ops) {
            return Err(Error::invalid(
                format!("{field}.ops"),
                "cannot hold a combine",
            ));
        }
        *slot = Some(own.ops.clone());
    }
    Ok(Some(
        per_region
            .into_iter()
            .map(|own| own.unwrap_or_else(|| ops.to_vec()))
            .collect(),
    ))
}

/// Applies each region's own (validated, Combine-free) operators.
pub fn apply_per_region(
    per_region: &[Vec<MaskOp>],
    regions: Vec<GrayImage>,
) -> Result<Vec<GrayImage>, Error> {
    let mut out = Vec::with_capacity(regions.len());
    for (ops, region) in per_region.iter().zip(regions) {
        out.extend(apply(ops, vec![region])?);
    }
    Ok(out)
}

fn apply_one(op: &Op, m: &GrayImage) -> GrayImage {
    match op {
        Op::Threshold(t) => mask::threshold(m, t.level as u8),
        Op::Invert(_) => mask::invert(m),
        Op::Grow(g) => {
            let shape = match Shape::try_from(g.shape) {
                Ok(Shape::Square) => KernelShape::Square,
                _ => KernelShape::Ellipse,
            };
            mask::grow_shaped(m, g.pixels, shape)
        }
        Op::Feather(f) => match FeatherKind::try_from(f.kind) {
            Ok(FeatherKind::Gaussian) => {
                if f.sigma > 0.0 {
                    mask::gaussian_blur(m, f.sigma)
                } else {
                    // As OpenCV's GaussianBlur with ksize 2r+1 and sigma 0.
                    let sigma = mask::sigma_for_radius(f.radius);
                    mask::gaussian_blur_with_radius(m, sigma, f.radius as usize)
                }
            }
            _ => mask::feather(m, f.radius),
        },
        Op::FillHoles(_) => mask::fill_holes(m),
        Op::Offset(o) => mask::offset(m, o.x, o.y),
        Op::KeepLargest(k) => mask::keep_largest(m, k.count as usize),
        Op::AreaFilter(a) => {
            let max = if a.max_ratio > 0.0 {
                a.max_ratio as f64
            } else {
                1.0
            };
            mask::filter_by_area(m, a.min_ratio as f64, max)
        }
        Op::Combine(_) => unreachable!("combine joins regions"),
    }
}

fn combine(mode: CombineMode, regions: &[GrayImage]) -> GrayImage {
    let all: Vec<&GrayImage> = regions.iter().collect();
    let joined = match mode {
        CombineMode::Intersect => mask::intersect(&all),
        CombineMode::Subtract => mask::subtract(&all),
        CombineMode::MergeInvert => mask::union(&all).map(|m| mask::invert(&m)),
        CombineMode::Merge | CombineMode::Unspecified => mask::union(&all),
    };
    joined.expect("at least one region")
}

#[cfg(test)]
mod tests {
    use super::*;
    use inpaint_proto::v1::{AreaFilter, Combine, Feather, Grow, Invert, Offset, Threshold};

    fn op(op: Op) -> MaskOp {
        MaskOp { op: Some(op) }
    }

    fn boxed(x: u32, y: u32, w: u32, h: u32) -> GrayImage {
        mask::from_box(40, 30, PixelBox::new(x, y, w, h))
    }

    #[test]
    fn order_is_kept() {
        let m = boxed(5, 5, 4, 4);
        let invert_then_grow = apply(
            &[
                op(Op::Invert(Invert {})),
                op(Op::Grow(Grow {
                    pixels: 1,
                    shape: 0,
                })),
            ],
            vec![m.clone()],
        )
        .unwrap();
        let grow_then_invert = apply(
            &[
                op(Op::Grow(Grow {
                    pixels: 1,
                    shape: 0,
                })),
                op(Op::Invert(Invert {})),
            ],
            vec![m],
        )
        .unwrap();
        assert_ne!(invert_then_grow, grow_then_invert);
    }

    #[test]
    fn ops_apply_per_region_until_combined() {
        let regions = vec![boxed(0, 0, 4, 4), boxed(20, 10, 4, 4)];
        let shifted = apply(&[op(Op::Offset(Offset { x: 2, y: 1 }))], regions.clone()).unwrap();
        assert_eq!(shifted, vec![boxed(2, 1, 4, 4), boxed(22, 11, 4, 4)]);
        let merged = apply(
            &[
                op(Op::Offset(Offset { x: 2, y: 1 })),
                op(Op::Combine(Combine {
                    mode: CombineMode::Merge as i32,
                })),
                op(Op::Invert(Invert {})),
            ],
            regions,
        )
        .unwrap();
        assert_eq!(merged.len(), 1);
        assert_eq!(
            merged[0],
            mask::invert(&mask::union(&[&boxed(2, 1, 4, 4), &boxed(22, 11, 4, 4)]).unwrap())
        );
    }

    #[test]
    fn gaussian_feather_from_radius_or_sigma() {
        let m = boxed(10, 10, 10, 10);
        let gaussian = |radius, sigma| {
            let f = Feather {
                radius,
                kind: FeatherKind::Gaussian as i32,
                sigma,
            };
            apply(&[op(Op::Feather(f))], vec![m.clone()])
                .unwrap()
                .remove(0)
        };
        // Rows of OpenCV 5.0's cv2.GaussianBlur on the same mask (40x30,
        // box 10..20 both ways): ksize (9, 9) with its sigma for that size,
        // and ksize (0, 0) with sigma 2.5 (8-bit: kernel cut at 3 sigma).
        // Recorded numbers, independent of our blur; within 1 grey level.
        let opencv_r4: [(u32, [u8; 18]); 3] = [
            (
                15,
                [
                    0, 0, 4, 17, 47, 98, 157, 208, 238, 251, 255, 255, 251, 238, 208, 157, 98, 47,
                ],
            ),
            (
                10,
                [
                    0, 0, 2, 10, 29, 60, 97, 128, 147, 155, 157, 157, 155, 147, 128, 97, 60, 29,
                ],
            ),
            (
                7,
                [
                    0, 0, 0, 1, 3, 6, 10, 14, 16, 17, 17, 17, 17, 16, 14, 10, 6, 3,
                ],
            ),
        ];
        let opencv_s25: [(u32, [u8; 18]); 2] = [
            (
                15,
                [
                    3, 9, 19, 38, 66, 103, 141, 177, 205, 223, 232, 232, 223, 205, 177, 141, 103,
                    66,
                ],
            ),
            (
                9,
                [
                    1, 4, 8, 17, 29, 45, 62, 78, 91, 99, 103, 103, 99, 91, 78, 62, 45, 29,
                ],
            ),
        ];
        let check = |ours: &GrayImage, rows: &[(u32, [u8; 18])], what: &str| {
            for (y, want) in rows {
                for (k, w) in want.iter().enumerate() {
                    let x = 4 + k as u32;
                    let got = ours.as_raw()[(y * 40 + x) as usize];
                    assert!(
                        got.abs_diff(*w) <= 1,
                        "{what} ({x},{y}): {got} vs OpenCV {w}"
                    );
                }
            }
        };
        check(&gaussian(4, 0.0), &opencv_r4, "radius 4");
        check(&gaussian(0, 2.5), &opencv_s25, "sigma 2.5");
    }

    #[test]
    fn bad_values_name_index_and_field() {
        let m = GrayImage::filled(10, 10, 0);
        let cases: Vec<(MaskOp, &str)> = vec![
            (
                op(Op::Grow(Grow {
                    pixels: -11,
                    shape: 0,
                })),
                "ops[1].grow.pixels",
            ),
            (
                op(Op::Grow(Grow {
                    pixels: 1,
                    shape: 9,
                })),
                "ops[1].grow.shape",
            ),
            (
                op(Op::Feather(Feather {
                    radius: 50,
                    kind: 0,
                    sigma: 0.0,
                })),
                "ops[1].feather.radius",
            ),
            (
                op(Op::Feather(Feather {
                    radius: 1,
                    kind: 0,
                    sigma: f32::NAN,
                })),
                "ops[1].feather.sigma",
            ),
            (
                op(Op::Threshold(Threshold { level: 256 })),
                "ops[1].threshold.level",
            ),
            (
                op(Op::AreaFilter(AreaFilter {
                    min_ratio: 0.5,
                    max_ratio: 0.1,
                })),
                "ops[1].area_filter.min_ratio",
            ),
            (
                op(Op::AreaFilter(AreaFilter {
                    min_ratio: f32::NAN,
                    max_ratio: 0.1,
                })),
                "ops[1].area_filter.min_ratio",
            ),
            (op(Op::Combine(Combine { mode: 0 })), "ops[1].combine.mode"),
            (MaskOp { op: None }, "ops[1]"),
        ];
        for (bad, field) in cases {
            let err = apply(&[op(Op::Invert(Invert {})), bad], vec![m.clone()]).unwrap_err();
            assert!(err.to_string().starts_with(&format!("{field}:")), "{err}");
        }
        let many = vec![op(Op::Invert(Invert {})); MAX_OPS + 1];
        assert!(
            apply(&many, vec![m])
                .unwrap_err()
                .to_string()
                .starts_with("ops:")
        );
    }

    #[test]
    fn region_ops_replace_the_shared_chain_for_their_region() {
        let image = RgbImage::filled(40, 30, 0);
        let grow = |pixels| {
            op(Op::Grow(Grow {
                pixels,
                ..Default::default()
            }))
        };
        let shared = vec![grow(1)];
        let own = vec![RegionOps {
            region: 1,
            ops: vec![grow(3)],
        }];
        let chains = region_ops(&own, &shared, 2, &image).unwrap().unwrap();
        let out = apply_per_region(&chains, vec![boxed(5, 5, 2, 2), boxed(20, 10, 2, 2)]).unwrap();
        assert_eq!(mask::bounding_box(&out[0]), Some(PixelBox::new(4, 4, 4, 4)));
        assert_eq!(
            mask::bounding_box(&out[1]),
            Some(PixelBox::new(17, 7, 8, 8))
        );
        assert!(region_ops(&[], &shared, 2, &image).unwrap().is_none());
    }

    #[test]
    fn region_ops_errors_name_their_field() {
        let image = RgbImage::filled(40, 30, 0);
        let merge = op(Op::Combine(Combine {
            mode: CombineMode::Merge as i32,
        }));
        let field = |own: &[RegionOps], shared: &[MaskOp]| match region_ops(own, shared, 2, &image)
        {
            Err(Error::Invalid(e)) => e.field,
            other => panic!("expected an error, got {other:?}"),
        };
        let at = |region| RegionOps {
            region,
            ops: vec![],
        };
        assert_eq!(field(&[at(2)], &[]), "region_ops[0].region");
        assert_eq!(field(&[at(0), at(0)], &[]), "region_ops[1].region");
        assert_eq!(field(&[at(0)], std::slice::from_ref(&merge)), "region_ops");
        let combining = RegionOps {
            region: 0,
            ops: vec![merge],
        };
        assert_eq!(field(&[combining], &[]), "region_ops[0].ops");
        let bad = RegionOps {
            region: 1,
            ops: vec![op(Op::Grow(Grow {
                pixels: 10_000,
                ..Default::default()
            }))],
        };
        assert_eq!(field(&[bad], &[]), "region_ops[0].ops[0].grow.pixels");
    }
}

#[cfg(test)]
mod local_tests {
    use super::*;
    use inpaint_proto::v1::{Feather, FillHoles, Grow, KeepLargest, Offset, Threshold};

    /// Blobs (a ring, so fill-holes has a hole, and a soft disc) at `x`,
    /// `y` on a 300x200 mask; near an edge when asked.
    fn blobs(x: i32, y: i32) -> GrayImage {
        let mut m = GrayImage::filled(300, 200, 0);
        for py in 0..200i32 {
            for px in 0..300i32 {
                let d = (((px - x).pow(2) + (py - y).pow(2)) as f32).sqrt();
                let e = (((px - x - 40).pow(2) + (py - y - 10).pow(2)) as f32).sqrt();
                let v = if (8.0..14.0).contains(&d) {
                    255
                } else if e < 9.0 {
                    (255.0 - e * 20.0) as u8
                } else {
                    0
                };
                m.as_raw_mut()[(py * 300 + px) as usize] = v;
            }
        }
        m
    }

    #[test]
    fn local_chains_give_what_the_whole_mask_gives() {
        let chains: Vec<Vec<Op>> = vec![
            vec![Op::Grow(Grow {
                pixels: 6,
                shape: 0,
            })],
            vec![Op::Grow(Grow {
                pixels: -3,
                shape: 1,
            })],
            vec![Op::Feather(Feather {
                radius: 9,
                kind: FeatherKind::Gaussian as i32,
                sigma: 0.0,
            })],
            vec![Op::Feather(Feather {
                radius: 0,
                kind: FeatherKind::Gaussian as i32,
                sigma: 7.5,
            })],
            vec![Op::Feather(Feather {
                radius: 30,
                kind: FeatherKind::Gaussian as i32,
                sigma: 0.0,
            })],
            vec![Op::Feather(Feather {
                radius: 11,
                kind: 0,
                sigma: 0.0,
            })],
            vec![Op::Offset(Offset { x: -7, y: 12 })],
            vec![
                Op::Threshold(Threshold { level: 100 }),
                Op::FillHoles(FillHoles {}),
                Op::Grow(Grow {
                    pixels: 4,
                    shape: 0,
                }),
                Op::KeepLargest(KeepLargest { count: 1 }),
                Op::Feather(Feather {
                    radius: 4,
                    kind: FeatherKind::Gaussian as i32,
                    sigma: 0.0,
                }),
            ],
        ];
        // In the middle, and cut by the left/top and right/bottom edges.
        for (x, y) in [(150, 100), (5, 3), (290, 195)] {
            let m = blobs(x, y);
            for chain in &chains {
                let ops: Vec<&Op> = chain.iter().collect();
                let mut whole = m.clone();
                for op in &ops {
                    whole = apply_one(op, &whole);
                }
                assert!(reach(ops[0]).is_some());
                assert_eq!(apply_chain(&ops, &m), whole, "at ({x},{y}): {chain:?}");
            }
        }
    }

    #[test]
    fn global_operators_see_the_whole_mask() {
        let m = blobs(150, 100);
        let invert = Op::Invert(inpaint_proto::v1::Invert {});
        let zero = Op::Threshold(Threshold { level: 0 });
        assert_eq!(reach(&invert), None);
        assert_eq!(reach(&zero), None);
        assert_eq!(apply_chain(&[&invert], &m), mask::invert(&m));
        assert!(apply_chain(&[&zero], &m).as_raw().iter().all(|&v| v == 255));
    }
}
