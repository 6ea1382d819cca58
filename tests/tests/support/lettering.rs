//! Text drawn onto photos with a 5x7 bitmap font of our own, so a test knows
//! exactly which pixels are text.

use image::RgbImage;

/// Glyph rows, 5 columns each; '#' is ink.
fn glyph(c: char) -> [&'static str; 7] {
    match c {
        'A' => [
            " ### ", "#   #", "#   #", "#####", "#   #", "#   #", "#   #",
        ],
        'E' => [
            "#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#####",
        ],
        'I' => [
            "#####", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "#####",
        ],
        'L' => [
            "#    ", "#    ", "#    ", "#    ", "#    ", "#    ", "#####",
        ],
        'M' => [
            "#   #", "## ##", "# # #", "# # #", "#   #", "#   #", "#   #",
        ],
        'N' => [
            "#   #", "##  #", "# # #", "#  ##", "#   #", "#   #", "#   #",
        ],
        'O' => [
            " ### ", "#   #", "#   #", "#   #", "#   #", "#   #", " ### ",
        ],
        'P' => [
            "#### ", "#   #", "#   #", "#### ", "#    ", "#    ", "#    ",
        ],
        'R' => [
            "#### ", "#   #", "#   #", "#### ", "# #  ", "#  # ", "#   #",
        ],
        'S' => [
            " ####", "#    ", "#    ", " ### ", "    #", "    #", "#### ",
        ],
        'T' => [
            "#####", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ",
        ],
        'X' => [
            "#   #", "#   #", " # # ", "  #  ", " # # ", "#   #", "#   #",
        ],
        '0' => [
            " ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### ",
        ],
        '2' => [
            " ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####",
        ],
        '6' => [
            "  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### ",
        ],
        ' ' => ["     "; 7],
        other => panic!("no glyph for {other:?}"),
    }
}

/// Draws `text` with its top-left corner at (x, y), each font pixel a
/// `scale` x `scale` square of `colour`. Returns the pixels it changed.
pub fn draw(
    image: &mut RgbImage,
    text: &str,
    (x, y): (u32, u32),
    scale: u32,
    colour: [u8; 3],
) -> Vec<(u32, u32)> {
    let mut inked = Vec::new();
    for (i, c) in text.chars().enumerate() {
        let left = x + i as u32 * 6 * scale;
        for (row, line) in glyph(c).iter().enumerate() {
            for (col, cell) in line.chars().enumerate() {
                if cell != '#' {
                    continue;
                }
                for dy in 0..scale {
                    for dx in 0..scale {
                        let (px, py) =
                            (left + col as u32 * scale + dx, y + row as u32 * scale + dy);
                        image.put_pixel(px, py, image::Rgb(colour));
                        inked.push((px, py));
                    }
                }
            }
        }
    }
    inked
}

/// The coffee photo with two lines of text: (clean, lettered, text pixels).
pub fn lettered_coffee() -> (RgbImage, RgbImage, Vec<(u32, u32)>) {
    let clean = image::load_from_memory(&super::photo_bytes("coffee.png"))
        .expect("decodable photo")
        .into_rgb8();
    let mut lettered = clean.clone();
    let mut inked = draw(&mut lettered, "SAMPLE TEXT", (40, 20), 4, [255, 255, 255]);
    inked.extend(draw(
        &mut lettered,
        "INPAINT 2026",
        (300, 340),
        3,
        [20, 20, 20],
    ));
    (clean, lettered, inked)
}
