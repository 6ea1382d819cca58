//! Owned pixel buffers with their size checked once, at construction.

use std::fmt;

/// A buffer whose byte length does not match its declared size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufferError {
    pub width: u32,
    pub height: u32,
    pub channels: usize,
    pub got_bytes: usize,
}

impl fmt::Display for BufferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}x{} with {} channel(s) needs {} bytes, got {}",
            self.width,
            self.height,
            self.channels,
            self.width as usize * self.height as usize * self.channels,
            self.got_bytes
        )
    }
}

impl std::error::Error for BufferError {}

macro_rules! pixel_buffer {
    ($name:ident, $channels:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name {
            width: u32,
            height: u32,
            data: Vec<u8>,
        }

        impl $name {
            pub const CHANNELS: usize = $channels;

            /// Wraps `data`, which must hold exactly width * height pixels.
            pub fn from_raw(width: u32, height: u32, data: Vec<u8>) -> Result<Self, BufferError> {
                let want = width as usize * height as usize * Self::CHANNELS;
                if data.len() != want {
                    return Err(BufferError {
                        width,
                        height,
                        channels: Self::CHANNELS,
                        got_bytes: data.len(),
                    });
                }
                Ok(Self {
                    width,
                    height,
                    data,
                })
            }

            /// A buffer of the given size with every byte set to `value`.
            pub fn filled(width: u32, height: u32, value: u8) -> Self {
                let len = width as usize * height as usize * Self::CHANNELS;
                Self {
                    width,
                    height,
                    data: vec![value; len],
                }
            }

            pub fn width(&self) -> u32 {
                self.width
            }

            pub fn height(&self) -> u32 {
                self.height
            }

            pub fn pixel_count(&self) -> usize {
                self.width as usize * self.height as usize
            }

            pub fn as_raw(&self) -> &[u8] {
                &self.data
            }

            pub fn as_raw_mut(&mut self) -> &mut [u8] {
                &mut self.data
            }

            pub fn into_raw(self) -> Vec<u8> {
                self.data
            }

            /// Copies out the pixels inside `area`, which must lie in the image.
            pub fn crop(&self, area: PixelBox) -> Self {
                assert!(area.right() <= self.width && area.bottom() <= self.height);
                let row_bytes = area.width as usize * Self::CHANNELS;
                let mut data = Vec::with_capacity(row_bytes * area.height as usize);
                for y in area.y..area.bottom() {
                    let start =
                        (y as usize * self.width as usize + area.x as usize) * Self::CHANNELS;
                    data.extend_from_slice(&self.data[start..start + row_bytes]);
                }
                Self {
                    width: area.width,
                    height: area.height,
                    data,
                }
            }

            /// Writes `part` over the pixels at (`x`, `y`); it must fit.
            pub fn paste(&mut self, part: &Self, x: u32, y: u32) {
                assert!(x + part.width <= self.width && y + part.height <= self.height);
                let row_bytes = part.width as usize * Self::CHANNELS;
                for (row, src) in part.data.chunks_exact(row_bytes.max(1)).enumerate() {
                    let start =
                        ((y as usize + row) * self.width as usize + x as usize) * Self::CHANNELS;
                    self.data[start..start + row_bytes].copy_from_slice(src);
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({}x{})", stringify!($name), self.width, self.height)
            }
        }
    };
}

pixel_buffer!(
    RgbImage,
    3,
    "Three 8-bit channels per pixel, R G B, rows packed."
);
pixel_buffer!(
    GrayImage,
    1,
    "One 8-bit channel per pixel. As a mask: 0 = keep, 255 = repaint, between = soft."
);

/// An axis-aligned box in pixels; `x + width` is one past the last column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PixelBox {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl PixelBox {
    pub fn new(x: u32, y: u32, width: u32, height: u32) -> Self {
        Self {
            x,
            y,
            width,
            height,
        }
    }

    pub fn right(&self) -> u32 {
        self.x + self.width
    }

    pub fn bottom(&self) -> u32 {
        self.y + self.height
    }

    pub fn area(&self) -> u64 {
        self.width as u64 * self.height as u64
    }

    /// The smallest box holding both.
    pub fn union(&self, other: &PixelBox) -> PixelBox {
        let x = self.x.min(other.x);
        let y = self.y.min(other.y);
        PixelBox::new(
            x,
            y,
            self.right().max(other.right()) - x,
            self.bottom().max(other.bottom()) - y,
        )
    }

    pub fn intersects(&self, other: &PixelBox) -> bool {
        self.x < other.right()
            && other.x < self.right()
            && self.y < other.bottom()
            && other.y < self.bottom()
    }

    /// Boxes covering `boxes`, each the union of a group of boxes that
    /// overlap (directly or through others), none overlapping another.
    pub fn merge_overlapping(boxes: &[PixelBox]) -> Vec<PixelBox> {
        let mut merged: Vec<PixelBox> = Vec::with_capacity(boxes.len());
        for b in boxes {
            let mut joined = *b;
            // A union can reach boxes it did not touch before: repeat.
            loop {
                let (hit, rest): (Vec<PixelBox>, Vec<PixelBox>) =
                    merged.iter().partition(|m| m.intersects(&joined));
                if hit.is_empty() {
                    break;
                }
                joined = hit.iter().fold(joined, |acc, m| acc.union(m));
                merged = rest;
            }
            merged.push(joined);
        }
        merged
    }

    /// Intersection over union, 0 when disjoint.
    pub fn iou(&self, other: &PixelBox) -> f64 {
        let x0 = self.x.max(other.x);
        let y0 = self.y.max(other.y);
        let x1 = self.right().min(other.right());
        let y1 = self.bottom().min(other.bottom());
        if x1 <= x0 || y1 <= y0 {
            return 0.0;
        }
        let inter = (x1 - x0) as f64 * (y1 - y0) as f64;
        inter / (self.area() as f64 + other.area() as f64 - inter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_raw_checks_length() {
        assert!(RgbImage::from_raw(2, 2, vec![0; 12]).is_ok());
        let err = RgbImage::from_raw(2, 2, vec![0; 11]).unwrap_err();
        assert_eq!(err.got_bytes, 11);
        assert!(GrayImage::from_raw(3, 1, vec![0; 3]).is_ok());
    }

    #[test]
    fn crop_copies_the_right_rows() {
        let data: Vec<u8> = (0..16).collect();
        let img = GrayImage::from_raw(4, 4, data).unwrap();
        let c = img.crop(PixelBox::new(1, 2, 2, 2));
        assert_eq!(c.as_raw(), &[9, 10, 13, 14]);
    }

    #[test]
    fn iou_of_known_boxes() {
        let a = PixelBox::new(0, 0, 10, 10);
        let b = PixelBox::new(5, 0, 10, 10);
        assert!((a.iou(&b) - 50.0 / 150.0).abs() < 1e-9);
        assert_eq!(a.iou(&PixelBox::new(20, 20, 1, 1)), 0.0);
        assert_eq!(a.union(&b), PixelBox::new(0, 0, 15, 10));
    }

    #[test]
    fn overlapping_boxes_merge_into_disjoint_windows() {
        let a = PixelBox::new(0, 0, 10, 10);
        let b = PixelBox::new(8, 8, 10, 10); // overlaps a
        let c = PixelBox::new(50, 0, 5, 5); // alone
        let d = PixelBox::new(17, 30, 25, 5); // overlaps nothing yet
        let e = PixelBox::new(15, 15, 5, 20); // joins a+b and d
        let windows = PixelBox::merge_overlapping(&[a, b, c, d, e]);
        assert_eq!(windows.len(), 2, "{windows:?}");
        assert!(windows.contains(&c));
        assert!(windows.contains(&PixelBox::new(0, 0, 42, 35)));
        // Touching edges do not overlap.
        let f = PixelBox::new(10, 0, 5, 5);
        assert_eq!(PixelBox::merge_overlapping(&[a, f]).len(), 2);
    }

    #[test]
    fn paste_writes_back_what_crop_took() {
        let data: Vec<u8> = (0..6 * 4 * 3).map(|v| v as u8).collect();
        let image = RgbImage::from_raw(6, 4, data).unwrap();
        let part = image.crop(PixelBox::new(2, 1, 3, 2));
        let mut blank = RgbImage::filled(6, 4, 0);
        blank.paste(&part, 2, 1);
        assert_eq!(blank.crop(PixelBox::new(2, 1, 3, 2)), part);
        assert_eq!(blank.as_raw()[..3], [0, 0, 0]);
    }
}
