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
