//! Samplers, named as the WebUI names them, as pure functions over latents.
//!
//! The k-diffusion samplers (Euler, Euler a, DPM++ 2M) are written as a
//! state that takes one step at a time: the caller evaluates the denoiser
//! at (x, sigmas[i]) (the UNet, guidance and latent blend live there) and
//! hands the denoised prediction to `step`. That keeps every sampler
//! straight-line arithmetic, testable without a model, and lets the caller
//! await the UNet between steps (step-level batching, cancel, progress).
//! DDIM works on timesteps and noise predictions instead; its grid and
//! step are in `img2img.rs` (`ddim_timesteps`, `ddim_step`).

/// The samplers the WebUI offers: the one list, in `inpaint_common`.
pub use inpaint_common::sd_params::Sampler as SamplerKind;

/// A k-diffusion sampler walking down `sigmas` (which end with 0).
#[derive(Debug, Clone)]
pub struct KSampler {
    kind: SamplerKind,
    sigmas: Vec<f32>,
    /// DPM++ 2M's previous denoised prediction.
    previous: Option<Vec<f32>>,
}

impl KSampler {
    /// `kind` must not be DDIM; `sigmas` holds at least two values.
    pub fn new(kind: SamplerKind, sigmas: Vec<f32>) -> Self {
        assert!(kind != SamplerKind::Ddim, "DDIM steps over timesteps");
        assert!(sigmas.len() >= 2, "a sampler needs at least one step");
        Self {
            kind,
            sigmas,
            previous: None,
        }
    }

    /// Denoiser evaluations (UNet calls) it will ask for.
    pub fn steps(&self) -> usize {
        self.sigmas.len() - 1
    }

    pub fn sigma(&self, i: usize) -> f32 {
        self.sigmas[i]
    }

    /// Step `i`: moves `x` from sigmas[i] to sigmas[i + 1], given the
    /// denoiser's output at (x, sigmas[i]). `noise` is asked for only by
    /// ancestral samplers, and only when the next sigma is above 0.
    pub fn step(
        &mut self,
        i: usize,
        x: &mut [f32],
        denoised: &[f32],
        noise: &mut dyn FnMut() -> Vec<f32>,
    ) {
        let (sigma, next) = (self.sigmas[i], self.sigmas[i + 1]);
        match self.kind {
            SamplerKind::Euler => euler(x, denoised, sigma, next),
            SamplerKind::EulerAncestral => {
                let (down, up) = ancestral_step(sigma, next);
                euler(x, denoised, sigma, down);
                if next > 0.0 {
                    let n = noise();
                    for (v, n) in x.iter_mut().zip(&n) {
                        *v += n * up;
                    }
                }
            }
            SamplerKind::DpmPp2M => {
                let t = -sigma.ln();
                let t_next = -next.ln();
                let h = t_next - t;
                let ratio = next / sigma;
                // -expm1(-h): how far toward the denoised prediction.
                let toward = -(-h).exp_m1();
                match (&self.previous, next > 0.0) {
                    (Some(old), true) => {
                        let h_last = t - (-self.sigmas[i - 1].ln());
                        let r = h_last / h;
                        let (a, b) = (1.0 + 1.0 / (2.0 * r), 1.0 / (2.0 * r));
                        for ((v, d), o) in x.iter_mut().zip(denoised).zip(old) {
                            *v = ratio * *v + toward * (a * d - b * o);
                        }
                    }
                    _ => {
                        for (v, d) in x.iter_mut().zip(denoised) {
                            *v = ratio * *v + toward * d;
                        }
                    }
                }
                self.previous = Some(denoised.to_vec());
            }
            SamplerKind::Ddim => unreachable!("checked in new"),
        }
    }
}

/// x += (x - denoised) / sigma * (to - sigma)
fn euler(x: &mut [f32], denoised: &[f32], sigma: f32, to: f32) {
    let dt = to - sigma;
    for (v, d) in x.iter_mut().zip(denoised) {
        *v += (*v - d) / sigma * dt;
    }
}

/// (sigma_down, sigma_up) for a step from `from` to `to` with eta 1.
pub fn ancestral_step(from: f32, to: f32) -> (f32, f32) {
    if to == 0.0 {
        return (0.0, 0.0);
    }
    let up = (to * to * (from * from - to * to) / (from * from))
        .sqrt()
        .min(to);
    let down = (to * to - up * up).sqrt();
    (down, up)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_step_lands_on_the_prediction() {
        // With sigma_next = 0 every sampler returns the denoised latent.
        for kind in [
            SamplerKind::Euler,
            SamplerKind::EulerAncestral,
            SamplerKind::DpmPp2M,
        ] {
            let mut s = KSampler::new(kind, vec![2.0, 1.0, 0.0]);
            let mut x = vec![1.0, -3.0];
            s.step(0, &mut x, &[0.5, 0.5], &mut || vec![0.0, 0.0]);
            s.step(1, &mut x, &[0.25, -0.75], &mut || {
                panic!("no noise at sigma 0")
            });
            assert_eq!(x, vec![0.25, -0.75], "{kind:?}");
        }
    }
}
