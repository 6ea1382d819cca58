//! Gaussian noise drawn exactly as PyTorch draws it on the CPU, so that a
//! WebUI user's seed gives the same starting noise here as with the WebUI's
//! "CPU" random source (`modules/rng.py`: `torch.manual_seed(seed)` then
//! `torch.randn(shape)` on the CPU, one generator per image, later draws
//! continuing the same stream).
//!
//! The algorithm (facts from ATen, not its code): a 32-bit Mersenne Twister
//! seeded with the low 32 bits of the seed; a float uniform is the low 24
//! bits of one draw times 2^-24. For 16 values or more, `randn` first fills
//! the whole tensor with uniforms, then turns each block of 16 into normals
//! with Box-Muller pairing slot j with slot j+8 (u1 = 1 - d[j], u2 = d[j+8]);
//! a tail that is not a multiple of 16 is redone on the last 16 slots with
//! 16 fresh uniforms. Under 16 values it draws doubles (53 bits from two
//! draws) through a scalar Box-Muller that caches its second value.
//! PyTorch's AVX2 kernel evaluates log and sincos with its own polynomial,
//! so values agree to about 1e-6, not bit for bit.

const N: usize = 624;
const M: usize = 397;

/// PyTorch's CPU generator after `torch.manual_seed(seed)`.
#[derive(Clone)]
pub struct TorchRng {
    state: [u32; N],
    next: usize,
    cached_normal: Option<f64>,
}

impl TorchRng {
    pub fn new(seed: u64) -> Self {
        let mut state = [0u32; N];
        state[0] = seed as u32;
        for j in 1..N {
            let prev = state[j - 1];
            state[j] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(j as u32);
        }
        Self {
            state,
            next: N,
            cached_normal: None,
        }
    }

    fn twist(&mut self) {
        let mix = |u: u32, v: u32| -> u32 {
            let y = (u & 0x8000_0000) | (v & 0x7fff_ffff);
            (y >> 1) ^ if v & 1 == 1 { 0x9908_b0df } else { 0 }
        };
        for i in 0..N {
            let j = (i + 1) % N;
            let k = (i + M) % N;
            self.state[i] = self.state[k] ^ mix(self.state[i], self.state[j]);
        }
        self.next = 0;
    }

    pub fn next_u32(&mut self) -> u32 {
        if self.next >= N {
            self.twist();
        }
        let mut y = self.state[self.next];
        self.next += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    fn uniform_f32(&mut self) -> f32 {
        (self.next_u32() & 0x00ff_ffff) as f32 * (1.0 / 16_777_216.0)
    }

    fn uniform_f64(&mut self) -> f64 {
        let hi = self.next_u32() as u64;
        let lo = self.next_u32() as u64;
        (((hi << 32) | lo) & ((1u64 << 53) - 1)) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    fn normal_f64(&mut self) -> f64 {
        if let Some(cached) = self.cached_normal.take() {
            return cached;
        }
        let u1 = self.uniform_f64();
        let u2 = self.uniform_f64();
        let radius = (-2.0 * (-u2).ln_1p()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u1;
        self.cached_normal = Some(radius * theta.sin());
        radius * theta.cos()
    }

    /// `torch.randn(n)` continuing this generator's stream.
    pub fn randn(&mut self, n: usize) -> Vec<f32> {
        if n < 16 {
            return (0..n).map(|_| self.normal_f64() as f32).collect();
        }
        let mut out: Vec<f32> = (0..n).map(|_| self.uniform_f32()).collect();
        for block in out.chunks_exact_mut(16) {
            box_muller_16(block);
        }
        if !n.is_multiple_of(16) {
            let tail = &mut out[n - 16..];
            for v in tail.iter_mut() {
                *v = self.uniform_f32();
            }
            box_muller_16(tail);
        }
        out
    }
}

fn box_muller_16(d: &mut [f32]) {
    for j in 0..8 {
        let u1 = 1.0 - d[j];
        let u2 = d[j + 8];
        let radius = (-2.0 * u1.ln()).sqrt();
        let theta = 2.0 * std::f32::consts::PI * u2;
        d[j] = radius * theta.cos();
        d[j + 8] = radius * theta.sin();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mersenne_twister_matches_the_reference_sequence() {
        // The reference MT19937 with seed 5489 gives 3499211612 first and
        // 4123659995 as its 10000th output (C++ std::mt19937's check value).
        let mut rng = TorchRng::new(5489);
        assert_eq!(rng.next_u32(), 3_499_211_612);
        for _ in 1..9999 {
            rng.next_u32();
        }
        assert_eq!(rng.next_u32(), 4_123_659_995);
    }

    #[test]
    fn blocks_of_sixteen_are_standard_normal() {
        let values = TorchRng::new(1).randn(64 * 64 * 4);
        let n = values.len() as f64;
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = values
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.03, "variance {var}");
    }
}
