//! Times our Telea on cases prepared by `bench/telea_bench.py` and writes
//! each result next to its case, for the script to score against OpenCV.
//!
//! Usage: telea_bench CASE_DIR RADIUS REPEATS CASE...
//! (each CASE has CASE_DIR/CASE.image.png and CASE_DIR/CASE.mask.png; the
//! result goes to CASE_DIR/CASE.ours.png). Prints `case=.. ours_ms=..`.

use std::path::Path;
use std::time::Instant;

use inpaint_imaging::{GrayImage, RgbImage, telea};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: telea_bench CASE_DIR RADIUS REPEATS CASE...");
        std::process::exit(2);
    }
    let dir = Path::new(&args[1]);
    let radius: u32 = args[2].parse().expect("radius");
    let repeats: usize = args[3].parse().expect("repeats");
    for case in &args[4..] {
        let image = image::open(dir.join(format!("{case}.image.png")))
            .expect("image")
            .into_rgb8();
        let mask = image::open(dir.join(format!("{case}.mask.png")))
            .expect("mask")
            .into_luma8();
        let (w, h) = image.dimensions();
        let image = RgbImage::from_raw(w, h, image.into_raw()).expect("rgb");
        let hole = GrayImage::from_raw(w, h, mask.into_raw()).expect("mask");
        let mut best = f64::INFINITY;
        let mut out = None;
        for _ in 0..repeats {
            let start = Instant::now();
            let result = telea::inpaint(&image, &hole, radius);
            best = best.min(start.elapsed().as_secs_f64() * 1e3);
            out = Some(result);
        }
        let out = out.expect("at least one repeat");
        image::RgbImage::from_raw(w, h, out.into_raw())
            .expect("rgb")
            .save(dir.join(format!("{case}.ours.png")))
            .expect("write result");
        println!("case={case} ours_ms={best:.3}");
    }
}
