//! Photos as people have them. Phone photos carry their orientation in
//! EXIF: the gateway turns each upload upright, as viewers show it, so a
//! mask drawn on the upright photo repaints the right pixels, and the
//! result comes back upright. Results come in the format asked for.

mod support;

use image::ImageEncoder;
use inpaint_imaging::{PixelBox, RgbImage};
use inpaint_proto::v1::{
    InpaintArea, InpaintParams, InpaintRequest, OutputFormat, inpaint_request::Target,
};
use support::*;

/// An EXIF block (little-endian TIFF) holding only the orientation tag.
fn exif_orientation(o: u16) -> Vec<u8> {
    let mut e = b"II*\0".to_vec();
    e.extend(8u32.to_le_bytes()); // first IFD right after the header
    e.extend(1u16.to_le_bytes()); // one entry:
    e.extend(0x0112u16.to_le_bytes()); // Orientation,
    e.extend(3u16.to_le_bytes()); // SHORT,
    e.extend(1u32.to_le_bytes()); // one value,
    e.extend(o.to_le_bytes());
    e.extend([0, 0]); // padded to 4 bytes
    e.extend(0u32.to_le_bytes()); // no next IFD
    e
}

/// Where the pixel shown at (x, y) of a `w` x `h` upright picture is
/// stored, for EXIF orientation `o` (the EXIF table, worked out by hand:
/// 2 mirrors, 3 turns 180, 4 flips, 5 transposes, 6 is stored turned 90
/// degrees anticlockwise, 7 transverses, 8 is stored turned clockwise).
fn stored_at(o: u16, x: u32, y: u32, w: u32, h: u32) -> (u32, u32) {
    match o {
        1 => (x, y),
        2 => (w - 1 - x, y),
        3 => (w - 1 - x, h - 1 - y),
        4 => (x, h - 1 - y),
        5 => (y, x),
        6 => (y, w - 1 - x),
        7 => (h - 1 - y, w - 1 - x),
        8 => (h - 1 - y, x),
        _ => unreachable!(),
    }
}

fn pixel(img: &RgbImage, x: u32, y: u32) -> [u8; 3] {
    let i = 3 * (y * img.width() + x) as usize;
    [img.as_raw()[i], img.as_raw()[i + 1], img.as_raw()[i + 2]]
}

/// The upright picture stored for orientation `o`, as a JPEG tagged `o`.
fn tagged_jpeg(upright: &RgbImage, o: u16) -> Vec<u8> {
    let (w, h) = (upright.width(), upright.height());
    let (sw, sh) = if o >= 5 { (h, w) } else { (w, h) };
    let mut stored = vec![0u8; (sw * sh * 3) as usize];
    for y in 0..h {
        for x in 0..w {
            let (sx, sy) = stored_at(o, x, y, w, h);
            let i = 3 * (sy * sw + sx) as usize;
            stored[i..i + 3].copy_from_slice(&pixel(upright, x, y));
        }
    }
    let mut out = vec![];
    let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95);
    encoder.set_exif_metadata(exif_orientation(o)).unwrap();
    encoder
        .write_image(&stored, sw, sh, image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

/// What a viewer shows for the JPEG: its stored pixels, decoded with the
/// EXIF ignored, placed by hand.
fn shown(jpeg: &[u8], o: u16, w: u32, h: u32) -> RgbImage {
    let stored = decode_rgb(jpeg); // the image crate's plain decode ignores EXIF
    let mut data = vec![0u8; (w * h * 3) as usize];
    for y in 0..h {
        for x in 0..w {
            let (sx, sy) = stored_at(o, x, y, w, h);
            let i = 3 * (y * w + x) as usize;
            data[i..i + 3].copy_from_slice(&pixel(&stored, sx, sy));
        }
    }
    RgbImage::from_raw(w, h, data).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_exif_orientation_repaints_the_upright_mask() {
    let cluster = start_cluster(None).await;
    let url = cluster.gateway_url();
    // A 240x160 piece of the astronaut: not square, not symmetric.
    let photo = decode_rgb(&photo_bytes("astronaut.png"));
    let (w, h) = (240u32, 160u32);
    let upright = RgbImage::from_raw(
        w,
        h,
        (0..h)
            .flat_map(|y| (0..w).map(move |x| (x + 140, y + 40)))
            .flat_map(|(x, y)| pixel(&photo, x, y))
            .collect(),
    )
    .unwrap();
    // Drawn on the upright picture, off centre.
    let hole = PixelBox::new(150, 30, 50, 40);
    let request = |jpeg: Vec<u8>, keep_stored: bool| InpaintRequest {
        image: jpeg,
        target: Some(Target::Mask(box_mask_png(w, h, hole))),
        params: Some(InpaintParams {
            engine: "fill".into(),
            mask_blur: 0,
            area: InpaintArea::Whole as i32,
            keep_stored_orientation: keep_stored,
            ..Default::default()
        }),
        ..Default::default()
    };
    for o in 1..=8u16 {
        let jpeg = tagged_jpeg(&upright, o);
        let expect = shown(&jpeg, o, w, h);
        let response = inpaint_cli::client::inpaint(&url, request(jpeg, false))
            .await
            .unwrap_or_else(|e| panic!("orientation {o}: {e}"));
        let result = decode_rgb(&response.image);
        assert_eq!((result.width(), result.height()), (w, h), "orientation {o}");
        assert_eq!((response.width, response.height), (w, h), "orientation {o}");
        assert_identical_outside(&expect, &result, hole, 0);
        let fill = pixel(&result, hole.x, hole.y);
        for y in hole.y..hole.bottom() {
            for x in hole.x..hole.right() {
                assert_eq!(pixel(&result, x, y), fill, "orientation {o}: ({x},{y})");
            }
        }
    }
    // As stored: a picture stored turned is taken turned, and a mask of the
    // upright size no longer fits it.
    let status = inpaint_cli::client::inpaint(&url, request(tagged_jpeg(&upright, 6), true))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().starts_with("mask"), "{}", status.message());
    cluster.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_come_in_the_format_asked_for() {
    let cluster = start_cluster(None).await;
    let url = cluster.gateway_url();
    let png = photo_bytes("astronaut.png");
    let photo = decode_rgb(&png);
    let (w, h) = (photo.width(), photo.height());
    let jpeg = {
        let mut out = vec![];
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .write_image(photo.as_raw(), w, h, image::ExtendedColorType::Rgb8)
            .unwrap();
        out
    };
    let hole = PixelBox::new(330, 20, 24, 24);
    let ask = |input: &[u8], mask: PixelBox, format: OutputFormat, quality: Option<u32>| {
        let request = InpaintRequest {
            image: input.to_vec(),
            target: Some(Target::Mask(box_mask_png(w, h, mask))),
            params: Some(InpaintParams {
                mask_blur: 0,
                output_format: format as i32,
                quality,
                ..Default::default()
            }),
            ..Default::default()
        };
        let url = url.clone();
        async move { inpaint_cli::client::inpaint(&url, request).await }
    };
    let as_png = ask(&png, hole, OutputFormat::Unspecified, None)
        .await
        .unwrap();
    assert_eq!(as_png.mime_type, "image/png");
    assert_eq!(
        image::guess_format(&as_png.image).unwrap(),
        image::ImageFormat::Png
    );
    let reference = decode_rgb(&as_png.image);

    // Lossless WebP: the same pixels.
    let webp = ask(&png, hole, OutputFormat::Webp, None).await.unwrap();
    assert_eq!(webp.mime_type, "image/webp");
    assert_eq!(
        image::guess_format(&webp.image).unwrap(),
        image::ImageFormat::WebP
    );
    assert_eq!(decode_rgb(&webp.image).as_raw(), reference.as_raw());

    // JPEG: the size asked, close to the PNG, smaller at a lower quality.
    let fine = ask(&png, hole, OutputFormat::Jpeg, Some(95)).await.unwrap();
    let coarse = ask(&png, hole, OutputFormat::Jpeg, Some(40)).await.unwrap();
    assert_eq!(fine.mime_type, "image/jpeg");
    let decoded = decode_rgb(&fine.image);
    assert_eq!((decoded.width(), decoded.height()), (w, h));
    let whole = inpaint_imaging::mask::from_box(w, h, PixelBox::new(0, 0, w, h));
    let psnr = inpaint_imaging::metrics::psnr_in_mask(&reference, &decoded, &whole).unwrap();
    assert!(psnr > 35.0, "JPEG at 95: {psnr:.1} dB against the PNG");
    assert!(coarse.image.len() < fine.image.len());

    // Same as input: a JPEG for a JPEG.
    let same = ask(&jpeg, hole, OutputFormat::SameAsInput, None)
        .await
        .unwrap();
    assert_eq!(
        image::guess_format(&same.image).unwrap(),
        image::ImageFormat::Jpeg
    );
    // Nothing to repaint (an empty mask): the upload as sent, unless
    // another format was asked for.
    let empty = PixelBox::new(0, 0, 0, 0);
    let sent = ask(&jpeg, empty, OutputFormat::Unspecified, None)
        .await
        .unwrap();
    assert!(sent.unchanged);
    assert_eq!(sent.image, jpeg);
    let converted = ask(&jpeg, empty, OutputFormat::Png, None).await.unwrap();
    assert_eq!(converted.mime_type, "image/png");
    assert_eq!(
        image::guess_format(&converted.image).unwrap(),
        image::ImageFormat::Png
    );

    let status = ask(&png, hole, OutputFormat::Jpeg, Some(0))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().starts_with("params.quality"),
        "{}",
        status.message()
    );
    cluster.shutdown().await.expect("clean shutdown");
}

/// The colour profile a decoder reads from `bytes`.
fn profile_of(bytes: &[u8]) -> Option<Vec<u8>> {
    use image::ImageDecoder;
    let mut decoder = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .unwrap()
        .into_decoder()
        .unwrap();
    decoder.icc_profile().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colour_profiles_come_back_unchanged() {
    let cluster = start_cluster(None).await;
    let url = cluster.gateway_url();
    let photo = decode_rgb(&photo_bytes("astronaut.png"));
    let (w, h) = (photo.width(), photo.height());
    // A profile's bytes (a Display P3 photo's would do the same): 3000
    // bytes, so the JPEG splits it over APP2 segments; its header says it
    // describes RGB pixels (only such a profile can travel with an RGB
    // result).
    let mut profile: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
    profile[16..20].copy_from_slice(b"RGB ");
    profile[36..40].copy_from_slice(b"acsp");
    let mut jpeg = vec![];
    let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 92);
    encoder.set_icc_profile(profile.clone()).unwrap();
    encoder
        .write_image(photo.as_raw(), w, h, image::ExtendedColorType::Rgb8)
        .unwrap();
    assert_eq!(profile_of(&jpeg), Some(profile.clone()));
    for (format, hole) in [
        (OutputFormat::Unspecified, PixelBox::new(330, 20, 24, 24)),
        (OutputFormat::Jpeg, PixelBox::new(330, 20, 24, 24)),
        (OutputFormat::Webp, PixelBox::new(330, 20, 24, 24)),
        // Nothing to repaint, converted to PNG.
        (OutputFormat::Png, PixelBox::new(0, 0, 0, 0)),
    ] {
        let request = InpaintRequest {
            image: jpeg.clone(),
            target: Some(Target::Mask(box_mask_png(w, h, hole))),
            params: Some(InpaintParams {
                output_format: format as i32,
                ..Default::default()
            }),
            ..Default::default()
        };
        let response = inpaint_cli::client::inpaint(&url, request).await.unwrap();
        assert_eq!(
            profile_of(&response.image),
            Some(profile.clone()),
            "{format:?}: the profile is carried over byte for byte"
        );
    }
    cluster.shutdown().await.expect("clean shutdown");
}

/// A fixture made by tests/fixtures/make_colour_jpegs.py.
fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cmyk_and_greyscale_jpegs_come_back_as_rgb_with_a_note() {
    let cluster = start_cluster(None).await;
    let url = cluster.gateway_url();
    // Each fixture: three bands of 32 columns; the colours Pillow gives
    // for them (make_colour_jpegs.py), and what the notes must say.
    let cases = [
        (
            "cmyk.jpg",
            [[200, 30, 40], [30, 160, 60], [240, 220, 50]],
            ["CMYK JPEG", "CMYK colour profile"],
        ),
        (
            "grey.jpg",
            [[82; 3], [110; 3], [207; 3]],
            ["greyscale JPEG", "GRAY colour profile"],
        ),
    ];
    let hole = PixelBox::new(36, 20, 20, 20);
    for (name, bands, said) in cases {
        let request = InpaintRequest {
            image: fixture(name),
            target: Some(Target::Mask(box_mask_png(96, 64, hole))),
            params: Some(InpaintParams {
                engine: "fill".into(),
                mask_blur: 0,
                area: InpaintArea::Whole as i32,
                output_format: OutputFormat::Png as i32,
                ..Default::default()
            }),
            ..Default::default()
        };
        let response = inpaint_cli::client::inpaint(&url, request).await.unwrap();
        for words in said {
            assert!(
                response.notes.iter().any(|n| n.contains(words)),
                "{name}: no note with {words:?} in {:?}",
                response.notes
            );
        }
        // The CMYK or GRAY profile would make viewers misread RGB pixels.
        assert_eq!(profile_of(&response.image), None, "{name}");
        let result = decode_rgb(&response.image);
        assert_eq!((result.width(), result.height()), (96, 64));
        // Away from the band edges and the hole, the colours Pillow sees
        // (within the JPEG's loss).
        for (band, colour) in bands.iter().enumerate() {
            for (x, y) in [(band as u32 * 32 + 16, 8), (band as u32 * 32 + 16, 56)] {
                let got = pixel(&result, x, y);
                let off = got
                    .iter()
                    .zip(colour)
                    .map(|(&a, &b)| (a as i32 - b).abs())
                    .max();
                assert!(off <= Some(6), "{name} ({x},{y}): {got:?} vs {colour:?}");
            }
        }
    }
    cluster.shutdown().await.expect("clean shutdown");
}

/// The EXIF block a decoder reads from `bytes`.
fn exif_of(bytes: &[u8]) -> Option<Vec<u8>> {
    use image::ImageDecoder;
    let mut decoder = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .unwrap()
        .into_decoder()
        .unwrap();
    decoder.exif_metadata().unwrap()
}

/// A big-endian EXIF block: Make "Cam" and a GPS directory holding a
/// longitude of 2 deg 17' 40.2" (three rationals, out of line).
fn exif_with_make_and_gps() -> Vec<u8> {
    let mut e = b"MM\0*".to_vec();
    e.extend(8u32.to_be_bytes());
    e.extend(2u16.to_be_bytes()); // IFD0: Make, GPS pointer
    e.extend(0x010fu16.to_be_bytes());
    e.extend(2u16.to_be_bytes());
    e.extend(4u32.to_be_bytes());
    e.extend(*b"Cam\0");
    e.extend(0x8825u16.to_be_bytes());
    e.extend(4u16.to_be_bytes());
    e.extend(1u32.to_be_bytes());
    e.extend(38u32.to_be_bytes());
    e.extend(0u32.to_be_bytes());
    e.extend(1u16.to_be_bytes()); // GPS IFD at 38: GPSLongitude
    e.extend(4u16.to_be_bytes());
    e.extend(5u16.to_be_bytes());
    e.extend(3u32.to_be_bytes());
    e.extend(56u32.to_be_bytes());
    e.extend(0u32.to_be_bytes());
    for (num, den) in [(2u32, 1u32), (17, 1), (402, 10)] {
        e.extend(num.to_be_bytes());
        e.extend(den.to_be_bytes());
    }
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_kept_on_request_without_the_position() {
    let cluster = start_cluster(None).await;
    let url = cluster.gateway_url();
    let photo = decode_rgb(&photo_bytes("astronaut.png"));
    let (w, h) = (photo.width(), photo.height());
    let exif = exif_with_make_and_gps();
    let mut jpeg = vec![];
    let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90);
    encoder.set_exif_metadata(exif.clone()).unwrap();
    encoder
        .write_image(photo.as_raw(), w, h, image::ExtendedColorType::Rgb8)
        .unwrap();
    let longitude = &exif[56..80];
    let ask = |keep_metadata, keep_gps| {
        let request = InpaintRequest {
            image: jpeg.clone(),
            target: Some(Target::Mask(box_mask_png(
                w,
                h,
                PixelBox::new(330, 20, 24, 24),
            ))),
            params: Some(InpaintParams {
                output_format: OutputFormat::Jpeg as i32,
                keep_metadata,
                keep_gps,
                ..Default::default()
            }),
            ..Default::default()
        };
        let url = url.clone();
        async move {
            let response = inpaint_cli::client::inpaint(&url, request).await.unwrap();
            exif_of(&response.image)
        }
    };
    assert_eq!(ask(false, false).await, None, "dropped by default");
    let kept = ask(true, false).await.expect("kept on request");
    assert!(kept.windows(4).any(|w| w == b"Cam\0"), "the camera is kept");
    assert!(
        !kept.windows(longitude.len()).any(|w| w == longitude),
        "the position is gone"
    );
    let with_gps = ask(true, true).await.expect("kept");
    assert_eq!(with_gps, exif, "everything, when asked");
    cluster.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alpha_and_sixteen_bits_come_back() {
    let cluster = start_cluster(None).await;
    let url = cluster.gateway_url();
    let photo = decode_rgb(&photo_bytes("astronaut.png"));
    let (w, h) = (photo.width(), photo.height());
    let hole = PixelBox::new(330, 20, 24, 24);
    let in_hole =
        |x: u32, y: u32| x >= hole.x && x < hole.right() && y >= hole.y && y < hole.bottom();
    let encode = |img: image::DynamicImage| {
        let mut out = std::io::Cursor::new(vec![]);
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    };
    let ask = |bytes: Vec<u8>, format: OutputFormat| {
        let request = InpaintRequest {
            image: bytes,
            target: Some(Target::Mask(box_mask_png(w, h, hole))),
            params: Some(InpaintParams {
                mask_blur: 0,
                output_format: format as i32,
                ..Default::default()
            }),
            ..Default::default()
        };
        let url = url.clone();
        async move {
            let response = inpaint_cli::client::inpaint(&url, request).await.unwrap();
            image::load_from_memory(&response.image).unwrap()
        }
    };
    // RGBA: a left-to-right alpha ramp.
    let rgba = image::RgbaImage::from_fn(w, h, |x, y| {
        let i = 3 * (y * w + x) as usize;
        let p = &photo.as_raw()[i..i + 3];
        image::Rgba([p[0], p[1], p[2], (x / 2) as u8])
    });
    for format in [OutputFormat::Png, OutputFormat::Webp] {
        let out = ask(encode(rgba.clone().into()), format).await;
        assert!(
            out.color().has_alpha(),
            "{format:?} keeps the alpha channel"
        );
        let out = out.to_rgba8();
        let (mut alpha_same, mut outside_same, mut inside_changed) = (true, true, 0);
        for (x, y, px) in out.enumerate_pixels() {
            let orig = rgba.get_pixel(x, y);
            alpha_same &= px[3] == orig[3];
            if in_hole(x, y) {
                inside_changed += usize::from(px.0[..3] != orig.0[..3]);
            } else {
                outside_same &= px.0[..3] == orig.0[..3];
            }
        }
        assert!(
            alpha_same && outside_same && inside_changed > 0,
            "{format:?}"
        );
    }
    // 16 bits a channel, with low bits an 8-bit copy would lose.
    let deep = image::ImageBuffer::<image::Rgb<u16>, Vec<u16>>::from_fn(w, h, |x, y| {
        let i = 3 * (y * w + x) as usize;
        let p = &photo.as_raw()[i..i + 3];
        let low = ((x + 3 * y) % 200) as u16;
        image::Rgb([
            p[0] as u16 * 256 + low,
            p[1] as u16 * 256 + low,
            p[2] as u16 * 256 + low,
        ])
    });
    let out = ask(
        encode(image::DynamicImage::ImageRgb16(deep.clone())),
        OutputFormat::Png,
    )
    .await;
    assert_eq!(
        out.color(),
        image::ColorType::Rgb16,
        "16 bits in, 16 bits out"
    );
    let out = out.to_rgb16();
    let mut inside_changed = 0;
    for (x, y, px) in out.enumerate_pixels() {
        if in_hole(x, y) {
            inside_changed += usize::from(px != deep.get_pixel(x, y));
        } else {
            assert_eq!(px, deep.get_pixel(x, y), "({x},{y}) outside, all 16 bits");
        }
    }
    assert!(inside_changed > 0);
    cluster.shutdown().await.expect("clean shutdown");
}
