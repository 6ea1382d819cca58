//! Times our mask operators on a mask prepared by `bench/mask_bench.py`,
//! single-threaded, and writes the dilate/erode results for the script to
//! compare with OpenCV's.
//!
//! Usage: mask_bench MASK.png OUT_DIR REPEATS RADIUS...
//! Prints `op=.. radius=.. ours_ms=..` per operator and radius.

use std::path::Path;
use std::time::Instant;

use inpaint_imaging::GrayImage;
use inpaint_imaging::components::components;
use inpaint_imaging::mask::{self, Shape};

fn best_ms<T>(repeats: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut last = None;
    for _ in 0..repeats {
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
        let (ms, _) = best_ms(repeats, || {
            mask::gaussian_blur(&m, mask::sigma_for_radius(radius))
        });
        println!("op=gaussian radius={radius} ours_ms={ms:.3}");
    }
    let mut scratch = m.clone();
    let (ms, _) = best_ms(repeats, || {
        scratch.as_raw_mut().copy_from_slice(m.as_raw());
        mask::threshold_in_place(&mut scratch, 128);
    });
    println!("op=threshold radius=0 ours_ms={ms:.3}");
    let (ms, found) = best_ms(repeats, || components(&m));
    println!(
        "op=components radius=0 ours_ms={ms:.3} count={}",
        found.len()
    );
}
