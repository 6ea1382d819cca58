//! The colour model of an upload: results are RGB, so a CMYK or greyscale
//! JPEG is converted (by the decoder) and said so in the response's notes,
//! and only an RGB colour profile travels with the result (a CMYK or GRAY
//! profile attached to RGB pixels would make viewers misread them).

/// What an upload's colour model means for its result.
pub struct SourceColour {
    /// The profile to carry, when it describes RGB pixels.
    pub icc: Option<Vec<u8>>,
    pub notes: Vec<String>,
}

/// Looks at the upload's bytes (a JPEG's frame header) and its profile.
pub fn source_colour(bytes: &[u8], icc: Option<Vec<u8>>) -> SourceColour {
    let mut notes = vec![];
    match jpeg_components(bytes) {
        Some(4) => notes.push(
            "the CMYK JPEG was converted to RGB without colour management; the result is RGB"
                .to_string(),
        ),
        Some(1) => notes.push("the greyscale JPEG was repainted in RGB; the result is RGB".into()),
        _ => {}
    }
    let icc = match icc {
        Some(profile) => match profile_space(&profile) {
            Some(b"RGB ") => Some(profile),
            space => {
                let name = space.map_or("unreadable".to_string(), |s| {
                    String::from_utf8_lossy(s).trim().to_string()
                });
                notes.push(format!(
                    "the photo's {name} colour profile was not carried: it does not describe RGB pixels"
                ));
                None
            }
        },
        None => None,
    };
    SourceColour { icc, notes }
}

/// The data colour space of an ICC profile (header bytes 16..20: "RGB ",
/// "CMYK", "GRAY", ...).
fn profile_space(profile: &[u8]) -> Option<&[u8; 4]> {
    profile.get(16..20)?.try_into().ok()
}

/// The number of components in a JPEG's frame (1 grey, 3 YCbCr or RGB,
/// 4 CMYK or YCCK); None for anything that is not a readable JPEG.
fn jpeg_components(bytes: &[u8]) -> Option<u8> {
    if bytes.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut at = 2;
    loop {
        // Markers may be padded with extra 0xFF bytes.
        while *bytes.get(at)? == 0xFF && *bytes.get(at + 1)? == 0xFF {
            at += 1;
        }
        if *bytes.get(at)? != 0xFF {
            return None;
        }
        let marker = *bytes.get(at + 1)?;
        let length = u16::from_be_bytes([*bytes.get(at + 2)?, *bytes.get(at + 3)?]) as usize;
        // SOF0-15, except DHT (C4), JPG (C8) and DAC (CC): length,
        // precision, height, width, then the component count.
        if (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker) {
            return bytes.get(at + 9).copied();
        }
        if marker == 0xDA || length < 2 {
            return None; // scan data before any frame header
        }
        at += 2 + length;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(color: image::ExtendedColorType, channels: usize) -> Vec<u8> {
        let mut out = vec![];
        image::codecs::jpeg::JpegEncoder::new(&mut out)
            .encode(&vec![90u8; 8 * 8 * channels], 8, 8, color)
            .unwrap();
        out
    }

    #[test]
    fn frame_components_are_read_from_the_header() {
        assert_eq!(
            jpeg_components(&jpeg(image::ExtendedColorType::Rgb8, 3)),
            Some(3)
        );
        assert_eq!(
            jpeg_components(&jpeg(image::ExtendedColorType::L8, 1)),
            Some(1)
        );
        assert_eq!(jpeg_components(b"\x89PNG\r\n\x1a\n"), None);
        assert_eq!(jpeg_components(&[0xFF, 0xD8, 0xFF]), None);
    }

    #[test]
    fn only_rgb_profiles_travel() {
        let mut rgb = vec![0u8; 132];
        rgb[16..20].copy_from_slice(b"RGB ");
        let mut cmyk = rgb.clone();
        cmyk[16..20].copy_from_slice(b"CMYK");
        let png = b"\x89PNG\r\n\x1a\n";
        let kept = source_colour(png, Some(rgb.clone()));
        assert_eq!(kept.icc, Some(rgb));
        assert!(kept.notes.is_empty());
        let dropped = source_colour(png, Some(cmyk));
        assert_eq!(dropped.icc, None);
        assert!(
            dropped.notes[0].contains("CMYK colour profile"),
            "{:?}",
            dropped.notes
        );
        assert_eq!(source_colour(png, Some(vec![1, 2])).icc, None);
    }
}
