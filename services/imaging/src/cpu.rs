//! The instruction set the hot kernels run with, chosen once at run time so
//! one portable binary (baseline x86-64) uses AVX2 where the CPU has it.
//!
//! A kernel is written once as an `#[inline(always)]` body; [`multiversion!`]
//! wraps it in a copy compiled for x86-64-v3 (AVX2, BMI2, FMA, ...) and a
//! baseline copy, and calls the one the [`Isa`] allows. Both copies do the
//! same integer arithmetic, so they give the same bytes (tested).

use std::sync::OnceLock;

/// Set to `portable` to keep the kernels on baseline x86-64 instructions
/// (for comparing results, or a CPU whose AVX2 misbehaves).
pub const ENV_OVERRIDE: &str = "INPAINT_KERNELS";

/// An instruction set the kernels may use. Only [`Isa::detect`] hands out
/// one beyond the baseline, so an `Isa` is always safe to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Isa {
    x86_64_v3: bool,
}

impl Isa {
    /// Baseline instructions only: runs on every CPU of the target.
    pub const PORTABLE: Isa = Isa { x86_64_v3: false };

    /// The best this CPU supports (cached), unless `INPAINT_KERNELS=portable`.
    pub fn best() -> Isa {
        static BEST: OnceLock<Isa> = OnceLock::new();
        *BEST.get_or_init(|| {
            let forced =
                std::env::var(ENV_OVERRIDE).is_ok_and(|v| v.eq_ignore_ascii_case("portable"));
            if forced { Isa::PORTABLE } else { Isa::detect() }
        })
    }

    /// The best this CPU supports, ignoring the override.
    pub fn detect() -> Isa {
        Isa {
            x86_64_v3: has_x86_64_v3(),
        }
    }

    /// Every set this CPU can run, baseline first (for tests comparing them).
    pub fn available() -> Vec<Isa> {
        let mut all = vec![Isa::PORTABLE];
        if Isa::detect() != Isa::PORTABLE {
            all.push(Isa::detect());
        }
        all
    }

    /// Whether kernels may use x86-64-v3 instructions (AVX2 and friends).
    pub fn x86_64_v3(self) -> bool {
        self.x86_64_v3
    }

    /// A short name for logs and benchmarks.
    pub fn name(self) -> &'static str {
        if self.x86_64_v3 {
            "x86-64-v3"
        } else {
            "portable"
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

#[cfg(not(target_arch = "x86_64"))]
fn has_x86_64_v3() -> bool {
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
