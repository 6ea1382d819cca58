//! Times our mask operators on a mask prepared by `bench/mask_bench.py`,
//! and our RGB resize on its photos, single-threaded, and writes every result for the script to compare with
//! OpenCV's. Threshold works in place (OpenCV writes into `dst=`); dilate,
//! erode and the blur return a new mask (OpenCV allocates its output too:
//! the script passes no `dst` for those).
//!
//! Usage: mask_bench MASK.png OUT_DIR REPEATS RADIUS...
//! Prints `op=.. radius=.. ours_ms=..` per operator and radius, and writes
//! `OP_RADIUS.bin` (components: its boxes as text).

use std::path::Path;
use std::time::Instant;

use inpaint_imaging::components::components;
use inpaint_imaging::mask::{self, Shape};
use inpaint_imaging::resize::resize_rgb;
use inpaint_imaging::{GrayImage, RgbImage};

/// Best time of `f` on a fresh copy of `input` each repeat (the copy is not
/// timed), for operators that work in place.
fn best_in_place_ms(
    repeats: usize,
    input: &GrayImage,
    mut f: impl FnMut(&mut GrayImage),
) -> (f64, GrayImage) {
    let mut buf = input.clone();
    f(&mut buf); // warm-up, untimed
    let mut best = f64::INFINITY;
    for _ in 0..repeats {
        buf.as_raw_mut().copy_from_slice(input.as_raw());
        let start = Instant::now();
        f(&mut buf);
        best = best.min(start.elapsed().as_secs_f64() * 1e3);
    }
    (best, buf)
}

/// Width and height.
type Size = (u32, u32);

/// Resize cases: name, source size, destination size (the script has the
/// same list).
const RESIZES: [(&str, Size, Size); 3] = [
    ("resize_up", (1024, 768), (2048, 1536)),
    ("resize_down", (1024, 768), (512, 384)),
    ("resize_photo_to_640", (4000, 3000), (640, 480)),
];

fn best_ms<T>(repeats: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut last = Some(f()); // warm-up, untimed
    for _ in 0..repeats {
        // Free the last result first, as the Python side does, so both
        // allocate into the same state.
        drop(last.take());
        let start = Instant::now();
        let out = f();
        best = best.min(start.elapsed().as_secs_f64() * 1e3);
        last = Some(out);
    }
    (best, last.expect("at least one repeat"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: mask_bench MASK.png OUT_DIR REPEATS RADIUS...");
        std::process::exit(2);
    }
    let img = image::open(&args[1]).expect("mask").into_luma8();
    let (w, h) = img.dimensions();
    let m = GrayImage::from_raw(w, h, img.into_raw()).expect("gray");
    let out = Path::new(&args[2]);
    let repeats: usize = args[3].parse().expect("repeats");
    println!("kernels={}", inpaint_imaging::cpu::Isa::best().name());
    for r in &args[4..] {
        let radius: u32 = r.parse().expect("radius");
        let (ms, grown) = best_ms(repeats, || {
            mask::grow_shaped(&m, radius as i32, Shape::Ellipse)
        });
        println!("op=dilate radius={radius} ours_ms={ms:.3}");
        std::fs::write(out.join(format!("dilate_{radius}.bin")), grown.as_raw()).expect("write");
        let (ms, shrunk) = best_ms(repeats, || {
            mask::grow_shaped(&m, -(radius as i32), Shape::Ellipse)
        });
        println!("op=erode radius={radius} ours_ms={ms:.3}");
        std::fs::write(out.join(format!("erode_{radius}.bin")), shrunk.as_raw()).expect("write");
        let (ms, blurred) = best_ms(repeats, || {
            mask::gaussian_blur_with_radius(&m, mask::sigma_for_radius(radius), radius as usize)
        });
        println!("op=gaussian radius={radius} ours_ms={ms:.3}");
        std::fs::write(out.join(format!("gaussian_{radius}.bin")), blurred.as_raw())
            .expect("write");
    }
    // The RGB resize the detectors (a photo to a model's input) and
    // composite (a repainted crop back to its area) use, on the photos the
    // script wrote.
    for (op, (sw, sh), (dw, dh)) in RESIZES {
        let bytes = std::fs::read(out.join(format!("photo_{sw}x{sh}.rgb"))).expect("photo");
        let photo = RgbImage::from_raw(sw, sh, bytes).expect("rgb");
        let (ms, resized) = best_ms(repeats, || resize_rgb(&photo, dw, dh));
        println!("op={op} radius=0 ours_ms={ms:.3}");
        std::fs::write(out.join(format!("{op}_0.bin")), resized.as_raw()).expect("write");
    }
    let (ms, thresholded) = best_in_place_ms(repeats, &m, |b| mask::threshold_in_place(b, 128));
    println!("op=threshold radius=0 ours_ms={ms:.3}");
    std::fs::write(out.join("threshold_0.bin"), thresholded.as_raw()).expect("write");
    let (ms, found) = best_ms(repeats, || components(&m));
    let boxes: Vec<String> = found
        .iter()
        .map(|c| {
            format!(
                "{} {} {} {} {}",
                c.bounds.x, c.bounds.y, c.bounds.width, c.bounds.height, c.pixels
            )
        })
        .collect();
    std::fs::write(out.join("components_0.txt"), boxes.join("\n")).expect("write");
    println!(
        "op=components radius=0 ours_ms={ms:.3} count={}",
        found.len()
    );
}
