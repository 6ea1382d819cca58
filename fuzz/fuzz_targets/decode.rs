//! Uploaded bytes as the gateway decodes them: the photo (with its EXIF,
//! ICC and orientation), the header-only pixel count, a mask and a sketch
//! against a small photo. Any bytes must give an image or a clear error,
//! never a panic, and never more pixels than the limit.
#![no_main]

use inpaint_gateway::decode::{Decoding, decode_mask, decode_photo, decode_sketch, image_pixels};
use inpaint_imaging::RgbImage;
use libfuzzer_sys::fuzz_target;

const MAX_PIXELS: u64 = 4_000_000;

fuzz_target!(|data: &[u8]| {
    let how = Decoding {
        max_pixels: MAX_PIXELS,
        upright: data.first().is_some_and(|b| b & 1 == 0),
    };
    if let Ok(photo) = decode_photo(data, "image", how) {
        let pixels = photo.image.width() as u64 * photo.image.height() as u64;
        assert!(
            pixels <= MAX_PIXELS,
            "decoded {pixels} pixels past the limit"
        );
    }
    if let Ok(pixels) = image_pixels(data, "image", MAX_PIXELS) {
        assert!(pixels <= MAX_PIXELS);
    }
    let photo = RgbImage::filled(24, 16, 128);
    if let Ok(mask) = decode_mask(data, 24, 16, how) {
        assert_eq!((mask.width(), mask.height()), (24, 16));
    }
    if let Ok((colours, painted)) = decode_sketch(data, &photo, how) {
        assert_eq!((colours.width(), colours.height()), (24, 16));
        assert_eq!((painted.width(), painted.height()), (24, 16));
    }
});
