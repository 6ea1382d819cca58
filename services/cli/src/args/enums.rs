//! The command line's choice flags and, in this one place, the proto enum
//! each choice stands for.

use clap::ValueEnum;
use inpaint_proto::v1::{FaceShape, InpaintArea, MaskedContent, OutputFormat, RegionOrder};

/// `run --fill`: what the engine sees in the hole.
#[derive(Clone, Copy, ValueEnum)]
pub enum Content {
    /// Smooth average of the surroundings.
    Fill,
    /// The original pixels.
    Original,
    /// Seeded noise.
    Noise,
    /// Mid grey.
    Nothing,
}

/// `run --area`: the whole photo, or only a crop around the mask.
#[derive(Clone, Copy, ValueEnum)]
pub enum Area {
    Whole,
    OnlyMasked,
}

/// `run --face-shape`: the mask each face gets (named apart from the proto
/// enum `FaceShape`).
#[derive(Clone, Copy, ValueEnum)]
pub enum FaceShapeArg {
    Box,
    Mesh,
    Eyes,
    Mouth,
    EyesAndMouth,
}

/// `batch --format`: the results' image format.
#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Png,
    Jpeg,
    Webp,
    /// The format each photo came in.
    Same,
}

/// `run --order`: the order of the detections.
#[derive(Clone, Copy, ValueEnum)]
pub enum Order {
    LeftToRight,
    Largest,
    Confident,
}

impl From<Content> for MaskedContent {
    fn from(content: Content) -> Self {
        match content {
            Content::Fill => MaskedContent::Fill,
            Content::Original => MaskedContent::Original,
            Content::Noise => MaskedContent::Noise,
            Content::Nothing => MaskedContent::Nothing,
        }
    }
}

impl From<Area> for InpaintArea {
    fn from(area: Area) -> Self {
        match area {
            Area::Whole => InpaintArea::Whole,
            Area::OnlyMasked => InpaintArea::OnlyMasked,
        }
    }
}

impl From<FaceShapeArg> for FaceShape {
    fn from(shape: FaceShapeArg) -> Self {
        match shape {
            FaceShapeArg::Box => FaceShape::Box,
            FaceShapeArg::Mesh => FaceShape::Mesh,
            FaceShapeArg::Eyes => FaceShape::Eyes,
            FaceShapeArg::Mouth => FaceShape::Mouth,
            FaceShapeArg::EyesAndMouth => FaceShape::EyesAndMouth,
        }
    }
}

impl From<Format> for OutputFormat {
    fn from(format: Format) -> Self {
        match format {
            Format::Png => OutputFormat::Png,
            Format::Jpeg => OutputFormat::Jpeg,
            Format::Webp => OutputFormat::Webp,
            Format::Same => OutputFormat::SameAsInput,
        }
    }
}

impl From<Order> for RegionOrder {
    fn from(order: Order) -> Self {
        match order {
            Order::LeftToRight => RegionOrder::LeftToRight,
            Order::Largest => RegionOrder::LargestFirst,
            Order::Confident => RegionOrder::MostConfidentFirst,
        }
    }
}
