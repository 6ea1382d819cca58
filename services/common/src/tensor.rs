//! Wire tensors <-> pixel buffers, with checks that name the field.

use inpaint_imaging::{GrayImage, PixelBox, RgbImage};
use inpaint_proto::v1::{Box as WireBox, PixelLayout, Tensor};
use tonic::Status;

use crate::status::invalid_argument;

/// A pixel box as the wire's `Box`.
pub fn wire_box(b: PixelBox) -> WireBox {
    WireBox {
        x: b.x,
        y: b.y,
        width: b.width,
        height: b.height,
    }
}

pub fn from_rgb(image: &RgbImage) -> Tensor {
    Tensor {
        width: image.width(),
        height: image.height(),
        layout: PixelLayout::Rgb8 as i32,
        data: image.as_raw().to_vec(),
    }
}

pub fn into_rgb_tensor(image: RgbImage) -> Tensor {
    Tensor {
        width: image.width(),
        height: image.height(),
        layout: PixelLayout::Rgb8 as i32,
        data: image.into_raw(),
    }
}

pub fn from_gray(image: &GrayImage) -> Tensor {
    Tensor {
        width: image.width(),
        height: image.height(),
        layout: PixelLayout::Gray8 as i32,
        data: image.as_raw().to_vec(),
    }
}

pub fn into_gray_tensor(image: GrayImage) -> Tensor {
    Tensor {
        width: image.width(),
        height: image.height(),
        layout: PixelLayout::Gray8 as i32,
        data: image.into_raw(),
    }
}

/// An RGB8 tensor as an image; `field` names it in errors.
pub fn to_rgb(tensor: Option<Tensor>, field: &str) -> Result<RgbImage, Status> {
    let t = present(tensor, field)?;
    expect_layout(&t, PixelLayout::Rgb8, field)?;
    RgbImage::from_raw(t.width, t.height, t.data)
        .map_err(|e| invalid_argument(field, e.to_string()))
}

/// A GRAY8 tensor as a mask; `field` names it in errors.
pub fn to_gray(tensor: Option<Tensor>, field: &str) -> Result<GrayImage, Status> {
    let t = present(tensor, field)?;
    expect_layout(&t, PixelLayout::Gray8, field)?;
    GrayImage::from_raw(t.width, t.height, t.data)
        .map_err(|e| invalid_argument(field, e.to_string()))
}

fn present(tensor: Option<Tensor>, field: &str) -> Result<Tensor, Status> {
    let t = tensor.ok_or_else(|| invalid_argument(field, "is required"))?;
    if t.width == 0 || t.height == 0 {
        return Err(invalid_argument(
            field,
            "width and height must be at least 1",
        ));
    }
    Ok(t)
}

fn expect_layout(t: &Tensor, want: PixelLayout, field: &str) -> Result<(), Status> {
    if t.layout == want as i32 {
        Ok(())
    } else {
        Err(invalid_argument(
            field,
            format!(
                "layout must be {}, got {:?}",
                want.as_str_name(),
                PixelLayout::try_from(t.layout)
            ),
        ))
    }
}

/// A mask as it travels: the box holding every pixel above 0 and the
/// pixels in it (a 1x1 zero at the corner for an empty mask).
pub fn mask_window(mask: &GrayImage) -> (PixelBox, GrayImage) {
    let area = inpaint_imaging::mask::bounding_box(mask).unwrap_or(PixelBox::new(0, 0, 1, 1));
    (area, mask.crop(area))
}

/// Whether a wire box lies inside a `width` x `height` image (a box from
/// another service is not trusted not to overflow).
pub fn box_inside(b: &WireBox, width: u32, height: u32) -> bool {
    b.x.checked_add(b.width).is_some_and(|r| r <= width)
        && b.y.checked_add(b.height).is_some_and(|r| r <= height)
}

/// A travelling mask back at the image's `width` x `height`: `window`
/// placed at `area` (None: the mask is already the image's size); `field`
/// names it in errors.
pub fn expand_mask(
    window: GrayImage,
    area: Option<WireBox>,
    width: u32,
    height: u32,
    field: &str,
) -> Result<GrayImage, Status> {
    let Some(b) = area else {
        if (window.width(), window.height()) != (width, height) {
            return Err(invalid_argument(
                field,
                format!(
                    "is {}x{}, image is {width}x{height}",
                    window.width(),
                    window.height()
                ),
            ));
        }
        return Ok(window);
    };
    if !box_inside(&b, width, height) || (window.width(), window.height()) != (b.width, b.height) {
        return Err(invalid_argument(
            field,
            format!(
                "is {}x{} at box {}x{}+{}+{}: it must be its box's size, inside the {width}x{height} image",
                window.width(),
                window.height(),
                b.width,
                b.height,
                b.x,
                b.y
            ),
        ));
    }
    let mut full = GrayImage::filled(width, height, 0);
    full.paste(&window, b.x, b.y);
    Ok(full)
}

#[cfg(test)]
mod mask_window_tests {
    use super::*;

    #[test]
    fn a_mask_travels_as_its_box_and_comes_back_whole() {
        let mut mask = GrayImage::filled(20, 10, 0);
        mask.as_raw_mut()[3 * 20 + 5] = 200;
        mask.as_raw_mut()[6 * 20 + 9] = 1;
        let (area, window) = mask_window(&mask);
        assert_eq!(area, PixelBox::new(5, 3, 5, 4));
        let back = expand_mask(window, Some(wire_box(area)), 20, 10, "masks[0]").unwrap();
        assert_eq!(back, mask);
        // An empty mask travels as one zero pixel.
        let (area, window) = mask_window(&GrayImage::filled(20, 10, 0));
        assert_eq!(
            (area, window.as_raw().to_vec()),
            (PixelBox::new(0, 0, 1, 1), vec![0])
        );
    }

    #[test]
    fn a_window_that_does_not_fit_is_refused_by_name() {
        let window = GrayImage::filled(5, 4, 9);
        for b in [PixelBox::new(17, 0, 5, 4), PixelBox::new(0, 0, 4, 4)] {
            let status = expand_mask(window.clone(), Some(wire_box(b)), 20, 10, "masks[1]");
            let status = status.unwrap_err();
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
            assert!(
                status.message().starts_with("masks[1]"),
                "{}",
                status.message()
            );
        }
        let whole = expand_mask(window, None, 20, 10, "masks[2]").unwrap_err();
        assert!(
            whole.message().contains("image is 20x10"),
            "{}",
            whole.message()
        );
    }
}
