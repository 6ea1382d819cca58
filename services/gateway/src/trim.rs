//! What of a repainted crop needs to travel back. The paste-back (without
//! colour correction or a seamless blend) reads a crop's repaint only where
//! its alpha is above zero: when the crop was repainted at its own size, the
//! worker answers with just that part and Composite is given just that
//! part, and the result is the same pixels (on a whole-image crop with a
//! small mask, a few percent of the bytes).

use inpaint_common::tensor::to_gray;
use inpaint_imaging::{PixelBox, mask};
use inpaint_proto::v1::{self as pb, InpaintParams};

/// The part of `crop` (in its own pixels) worth answering with, or None
/// when all of it is (a resized crop, corrections that read the whole crop,
/// an empty or unreadable alpha).
pub fn answer_box(
    crop: &pb::Crop,
    alpha: Option<&pb::Tensor>,
    params: &InpaintParams,
) -> Option<PixelBox> {
    if params.color_correction || params.seamless {
        return None;
    }
    let area = crop.r#box?;
    if (area.width, area.height) != (crop.work_width, crop.work_height) {
        return None;
    }
    let alpha = to_gray(alpha.cloned(), "alpha").ok()?;
    if (alpha.width(), alpha.height()) != (area.width, area.height) {
        return None;
    }
    mask::bounding_box(&alpha).filter(|part| (part.width, part.height) != (area.width, area.height))
}

/// For an engine that reads only within `radius` + 2 of the hole (see
/// EngineInfo.reads_within_radius; radius 0 = Telea's default): the part of
/// a `width` x `height` crop it needs to repaint `answer`, the hole's box.
pub fn reach_box(answer: PixelBox, width: u32, height: u32, radius: u32) -> PixelBox {
    let radius = if radius == 0 {
        inpaint_imaging::telea::DEFAULT_RADIUS
    } else {
        radius
    };
    let reach = radius + 2;
    let x0 = answer.x.saturating_sub(reach);
    let y0 = answer.y.saturating_sub(reach);
    let x1 = (answer.right() + reach).min(width);
    let y1 = (answer.bottom() + reach).min(height);
    PixelBox::new(x0, y0, x1 - x0, y1 - y0)
}

/// `crop` and its `alpha` narrowed to `part` (in the crop's pixels): the
/// crop's box moves into the image accordingly.
pub fn narrow(
    crop: &pb::Crop,
    alpha: Option<pb::Tensor>,
    part: PixelBox,
) -> (pb::Crop, Option<pb::Tensor>) {
    let area = crop.r#box.unwrap_or_default();
    let narrowed = pb::Crop {
        r#box: Some(pb::Box {
            x: area.x + part.x,
            y: area.y + part.y,
            width: part.width,
            height: part.height,
        }),
        work_width: part.width,
        work_height: part.height,
        sd: None,
    };
    let alpha = to_gray(alpha, "alpha")
        .ok()
        .map(|a| inpaint_common::tensor::into_gray_tensor(a.crop(part)));
    (narrowed, alpha)
}

#[cfg(test)]
mod tests {
    use super::*;
    use inpaint_common::tensor::into_gray_tensor;
    use inpaint_imaging::GrayImage;

    fn crop(w: u32, h: u32, work: (u32, u32)) -> pb::Crop {
        pb::Crop {
            r#box: Some(pb::Box {
                x: 10,
                y: 20,
                width: w,
                height: h,
            }),
            work_width: work.0,
            work_height: work.1,
            sd: None,
        }
    }

    fn alpha_with(w: u32, h: u32, on: PixelBox) -> pb::Tensor {
        let mut a = GrayImage::filled(w, h, 0);
        a.paste(&GrayImage::filled(on.width, on.height, 200), on.x, on.y);
        into_gray_tensor(a)
    }

    #[test]
    fn only_the_blended_part_travels() {
        let on = PixelBox::new(5, 6, 7, 8);
        let alpha = alpha_with(40, 30, on);
        let plain = InpaintParams::default();
        let c = crop(40, 30, (40, 30));
        assert_eq!(answer_box(&c, Some(&alpha), &plain), Some(on));
        let (narrowed, a) = narrow(&c, Some(alpha.clone()), on);
        let b = narrowed.r#box.unwrap();
        assert_eq!((b.x, b.y, b.width, b.height), (15, 26, 7, 8));
        assert_eq!((narrowed.work_width, narrowed.work_height), (7, 8));
        let a = to_gray(a, "alpha").unwrap();
        assert!(a.as_raw().iter().all(|&v| v == 200));
    }

    #[test]
    fn the_reach_is_the_radius_and_two_inside_the_crop() {
        let hole = PixelBox::new(20, 3, 10, 10);
        assert_eq!(reach_box(hole, 100, 50, 0), PixelBox::new(13, 0, 24, 20));
        assert_eq!(reach_box(hole, 32, 50, 3), PixelBox::new(15, 0, 17, 18));
    }

    #[test]
    fn whole_crops_when_the_paste_reads_more() {
        let alpha = alpha_with(40, 30, PixelBox::new(5, 6, 7, 8));
        let resized = crop(40, 30, (64, 48));
        assert_eq!(
            answer_box(&resized, Some(&alpha), &InpaintParams::default()),
            None
        );
        let c = crop(40, 30, (40, 30));
        for params in [
            InpaintParams {
                color_correction: true,
                ..Default::default()
            },
            InpaintParams {
                seamless: true,
                ..Default::default()
            },
        ] {
            assert_eq!(answer_box(&c, Some(&alpha), &params), None);
        }
        let full = alpha_with(40, 30, PixelBox::new(0, 0, 40, 30));
        assert_eq!(answer_box(&c, Some(&full), &InpaintParams::default()), None);
        let empty = into_gray_tensor(GrayImage::filled(40, 30, 0));
        assert_eq!(
            answer_box(&c, Some(&empty), &InpaintParams::default()),
            None
        );
    }
}
