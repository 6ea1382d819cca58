//! One binary on three CPUs: this test runs its own test binary natively
//! and under qemu-x86_64 emulating a Nehalem (SSE4.2, no AVX, no AVX2) and a
//! Haswell (x86-64-v3: AVX2, no AVX-512), and checks that each emulated CPU
//! gets the kernels it can run and that all give the same masks. A kernel
//! that used AVX2 or AVX-512 without asking the CPU would die there with an
//! illegal instruction. qemu-user comes from `make sysdeps`.

use std::process::Command;

use inpaint_imaging::GrayImage;
use inpaint_imaging::cpu::Isa;
use inpaint_imaging::mask::{self, Shape};

/// The CPUs qemu emulates and the kernels each must get: x86-64 with SSE
/// up to 4.2 and nothing of v3; x86-64-v3 without AVX-512.
const EMULATED: [(&str, &str); 2] = [("Nehalem", "portable"), ("Haswell", "x86-64-v3")];

/// The test the parent runs in each child.
const CHILD: &str = "child_prints_its_kernels_and_masks";

/// A mask with discs, a thin line and grey noise.
fn sample_mask() -> GrayImage {
    let (w, h) = (301u32, 203u32);
    let mut m = GrayImage::filled(w, h, 0);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for (i, v) in m.as_raw_mut().iter_mut().enumerate() {
        let (x, y) = ((i as u32 % w) as i64, (i as u32 / w) as i64);
        let disc = (x - 90).pow(2) + (y - 100).pow(2) < 60 * 60
            || (x - 230).pow(2) + (y - 60).pow(2) < 25 * 25;
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *v = if disc || (x - y).abs() < 2 {
            255
        } else if state.is_multiple_of(17) {
            state as u8
        } else {
            0
        };
    }
    m
}

/// FNV-1a over every result, so the parent compares one number per CPU.
fn fingerprint(results: &[GrayImage]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for image in results {
        for &b in image.as_raw() {
            hash = (hash ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

#[test]
#[ignore = "the child of each_cpu_gets_the_kernels_it_has_and_the_same_masks"]
fn child_prints_its_kernels_and_masks() {
    let m = sample_mask();
    let results = vec![
        mask::gaussian_blur_with_radius(&m, mask::sigma_for_radius(4), 4),
        mask::gaussian_blur_with_radius(&m, mask::sigma_for_radius(16), 16),
        mask::grow_shaped(&m, 5, Shape::Ellipse),
        mask::grow_shaped(&m, -3, Shape::Ellipse),
        mask::grow_shaped(&m, 7, Shape::Square),
    ];
    println!(
        "kernels={} fingerprint={:016x}",
        Isa::best().name(),
        fingerprint(&results)
    );
}

/// Runs the child test, under `runner` if given, and returns its
/// `kernels=.. fingerprint=..` line.
fn run_child(runner: &[&str]) -> String {
    let exe = std::env::current_exe().expect("test binary");
    let mut args: Vec<String> = runner.iter().map(|s| s.to_string()).collect();
    args.push(exe.display().to_string());
    args.extend(
        [
            "--ignored",
            "--exact",
            CHILD,
            "--nocapture",
            "--test-threads=1",
        ]
        .map(String::from),
    );
    let output = Command::new(&args[0])
        .args(&args[1..])
        .env_remove(inpaint_imaging::cpu::ENV_OVERRIDE)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (qemu-x86_64 comes from the qemu-user package: make sysdeps)",
                args[0]
            )
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{args:?} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    // The harness prints the test's name on the same line first.
    let at = stdout
        .find("kernels=")
        .unwrap_or_else(|| panic!("no kernels line in:\n{stdout}"));
    stdout[at..].lines().next().unwrap_or_default().to_string()
}

#[cfg(target_arch = "x86_64")]
#[test]
fn each_cpu_gets_the_kernels_it_has_and_the_same_masks() {
    let native = run_child(&[]);
    assert!(
        native.starts_with(&format!("kernels={} ", Isa::detect().name())),
        "natively: {native}"
    );
    let print = |line: &str| line.split_once(' ').map(|(_, f)| f.to_string());
    for (cpu, kernels) in EMULATED {
        let emulated = run_child(&["qemu-x86_64", "-cpu", cpu]);
        assert!(
            emulated.starts_with(&format!("kernels={kernels} ")),
            "under {cpu}: {emulated}"
        );
        assert_eq!(
            print(&native),
            print(&emulated),
            "native {native} vs {cpu} {emulated}"
        );
    }
}
