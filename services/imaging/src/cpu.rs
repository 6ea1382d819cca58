//! The instruction set the hot kernels run with, chosen once at run time so
//! one portable binary (baseline x86-64) uses AVX2, or AVX-512, where the
//! CPU has it.
//!
//! A kernel is written once as an `#[inline(always)]` body; [`multiversion!`]
//! wraps it in copies compiled for x86-64-v4 (AVX-512 F/BW/CD/DQ/VL: one
//! 512-bit register holds the 32 16-bit lanes the kernels work on) and
//! x86-64-v3 (AVX2, BMI2, FMA, ...) and a baseline copy, and calls the best
//! one the [`Isa`] allows. Every copy does the same integer arithmetic, so
//! they give the same bytes (tested).

use std::sync::OnceLock;

/// Set to `portable` to keep the kernels on baseline x86-64 instructions,
/// or `x86-64-v3` to stop at AVX2 (for comparing results, or a CPU whose
/// wider instructions misbehave or slow its clock).
pub const ENV_OVERRIDE: &str = "INPAINT_KERNELS";

/// An instruction set the kernels may use. Only [`Isa::detect`] hands out
/// one beyond the baseline, so an `Isa` is always safe to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Isa {
    level: Level,
}

/// x86-64 microarchitecture levels, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Baseline,
    V3,
    V4,
}

impl Isa {
    /// Baseline instructions only: runs on every CPU of the target.
    pub const PORTABLE: Isa = Isa {
        level: Level::Baseline,
    };

    /// The best this CPU supports (cached), capped by `INPAINT_KERNELS`.
    pub fn best() -> Isa {
        static BEST: OnceLock<Isa> = OnceLock::new();
        *BEST.get_or_init(|| {
            let cap = std::env::var(ENV_OVERRIDE).ok().and_then(|v| {
                Isa::available()
                    .into_iter()
                    .find(|isa| isa.name().eq_ignore_ascii_case(v.trim()))
            });
            let best = Isa::detect();
            cap.map_or(best, |cap| cap.min(best))
        })
    }

    /// The best this CPU supports, ignoring the override.
    pub fn detect() -> Isa {
        let level = match (has_x86_64_v3(), has_avx512()) {
            (true, true) => Level::V4,
            (true, false) => Level::V3,
            (false, _) => Level::Baseline,
        };
        Isa { level }
    }

    /// Every set this CPU can run, baseline first (for tests comparing them).
    pub fn available() -> Vec<Isa> {
        let best = Isa::detect();
        [Level::Baseline, Level::V3, Level::V4]
            .into_iter()
            .map(|level| Isa { level })
            .filter(|&isa| isa <= best)
            .collect()
    }

    /// Whether kernels may use x86-64-v3 instructions (AVX2 and friends).
    pub fn x86_64_v3(self) -> bool {
        self.level >= Level::V3
    }

    /// Whether kernels may use x86-64-v4 instructions (AVX-512).
    pub fn x86_64_v4(self) -> bool {
        self.level >= Level::V4
    }

    /// A short name for logs and benchmarks (and `INPAINT_KERNELS`).
    pub fn name(self) -> &'static str {
        match self.level {
            Level::Baseline => "portable",
            Level::V3 => "x86-64-v3",
            Level::V4 => "x86-64-v4",
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn has_x86_64_v3() -> bool {
    is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("avx")
        && is_x86_feature_detected!("bmi1")
        && is_x86_feature_detected!("bmi2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("lzcnt")
        && is_x86_feature_detected!("popcnt")
        && is_x86_feature_detected!("movbe")
        && is_x86_feature_detected!("f16c")
}

/// The AVX-512 subsets x86-64-v4 adds to v3.
#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512cd")
        && is_x86_feature_detected!("avx512dq")
        && is_x86_feature_detected!("avx512vl")
}

#[cfg(not(target_arch = "x86_64"))]
fn has_x86_64_v3() -> bool {
    false
}

#[cfg(not(target_arch = "x86_64"))]
fn has_avx512() -> bool {
    false
}

/// `fn NAME(isa: Isa, ARGS) -> RET` calling `BODY(ARGS)` compiled for the
/// instruction set `isa` allows. `BODY` and what it calls should be
/// `#[inline(always)]` so they are compiled into each copy.
macro_rules! multiversion {
    ($(#[$attr:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? => $body:path) => {
        $(#[$attr])*
        $vis fn $name(isa: $crate::cpu::Isa, $($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx,avx2,bmi1,bmi2,fma,lzcnt,popcnt,movbe,f16c")]
            fn x86_64_v3($($arg: $ty),*) $(-> $ret)? {
                $body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx,avx2,bmi1,bmi2,fma,lzcnt,popcnt,movbe,f16c,avx512f,avx512bw,avx512cd,avx512dq,avx512vl")]
            fn x86_64_v4($($arg: $ty),*) $(-> $ret)? {
                $body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            if isa.x86_64_v4() {
                // SAFETY: an Isa allows x86-64-v4 only when the CPU has it
                // (Isa::detect is the only way to get one that does).
                #[allow(unsafe_code)]
                return unsafe { x86_64_v4($($arg),*) };
            }
            #[cfg(target_arch = "x86_64")]
            if isa.x86_64_v3() {
                // SAFETY: an Isa allows x86-64-v3 only when the CPU has it
                // (Isa::detect is the only way to get one that does).
                #[allow(unsafe_code)]
                return unsafe { x86_64_v3($($arg),*) };
            }
            let _ = isa;
            $body($($arg),*)
        }
    };
}
pub(crate) use multiversion;
