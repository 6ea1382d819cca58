//! The WebUI's img2img inpainting rules, as pure functions and one sampling
//! loop that awaits the model for each step (modules/processing.py,
//! sd_samplers_common.py `setup_img2img_steps`, sd_samplers_kdiffusion.py
//! and sd_samplers_timesteps.py `sample_img2img`, sd_samplers_cfg_denoiser.py,
//! sd_samplers_timesteps_impl.py `ddim`):
//!
//! - denoising strength: `t_enc = int(min(strength, 0.999) * steps)`; the
//!   k-diffusion samplers run `t_enc + 1` steps over the last sigmas of the
//!   full schedule (from index `steps - t_enc - 1`), starting from
//!   `init + noise * sigma`; DDIM starts from the timestep `t_enc` of its
//!   own grid and runs `t_enc - 1` steps (the WebUI's loop stops one short);
//! - the known area is kept by blending with the initial latent through the
//!   latent mask: on the guided prediction after each model call for the
//!   k-diffusion samplers, on the model's input for DDIM, and once more on
//!   the final latent;
//! - masked content at the latent stage: `latent noise` replaces the hole
//!   by the seed's noise, `latent nothing` by zeros (`fill` and `original`
//!   differ only in the pixels encoded, which the worker prepares).

use std::future::Future;

use super::sampler::{KSampler, SamplerKind};
use super::schedule::{ModelSchedule, Schedule};

/// Steps the WebUI's img2img encodes for a denoising strength.
pub fn t_enc(steps: u32, denoising_strength: f32) -> u32 {
    (denoising_strength.min(0.999) * steps as f32) as u32
}

/// What the hole's latent starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatentFill {
    /// The encoded pixels (WebUI `fill` and `original`).
    Encoded,
    /// The seed's noise (WebUI `latent noise`).
    Noise,
    /// Zeros (WebUI `latent nothing`).
    Zeros,
}

/// The latent mask: 1 where the model repaints, 0 where the initial latent
/// is kept; one value per latent pixel, shared by the channels.
#[derive(Debug, Clone, PartialEq)]
pub struct LatentMask {
    pub width: usize,
    pub height: usize,
    pub paint: Vec<f32>,
}

impl LatentMask {
    /// `value * paint + init * (1 - paint)` over `channels` planes.
    pub fn blend(&self, value: &mut [f32], init: &[f32]) {
        let plane = self.width * self.height;
        for (v, i) in value.chunks_mut(plane).zip(init.chunks(plane)) {
            for ((v, i), p) in v.iter_mut().zip(i).zip(&self.paint) {
                *v = *v * p + i * (1.0 - p);
            }
        }
    }
}

/// Applies the latent-stage masked content to the initial latent.
pub fn fill_latent(init: &mut [f32], mask: &LatentMask, fill: LatentFill, noise: &[f32]) {
    let plane = mask.width * mask.height;
    for (c, values) in init.chunks_mut(plane).enumerate() {
        for (k, v) in values.iter_mut().enumerate() {
            let p = mask.paint[k];
            match fill {
                LatentFill::Encoded => {}
                LatentFill::Noise => *v = *v * (1.0 - p) + noise[c * plane + k] * p,
                LatentFill::Zeros => *v *= 1.0 - p,
            }
        }
    }
}

/// One model evaluation with guidance: the noise prediction (epsilon) for
/// the model input `x_in` at the (fractional) timestep `t`.
pub trait Denoiser {
    type Error;
    fn eps(
        &mut self,
        x_in: Vec<f32>,
        t: f32,
    ) -> impl Future<Output = Result<Vec<f32>, Self::Error>> + Send;
}

/// A sampling request over one latent.
#[derive(Debug, Clone)]
pub struct SamplingPlan {
    pub sampler: SamplerKind,
    pub schedule: Schedule,
    pub steps: u32,
    pub denoising_strength: f32,
}

impl SamplingPlan {
    /// Model evaluations this plan runs.
    pub fn steps_run(&self) -> u32 {
        let t_enc = t_enc(self.steps, self.denoising_strength);
        match self.sampler {
            SamplerKind::Ddim => t_enc.saturating_sub(1),
            _ => t_enc + 1,
        }
    }
}

/// Where sampling starts: the initial latent (masked content applied), the
/// latent mask, and the seed's first noise.
#[derive(Debug, Clone, Copy)]
pub struct LatentStart<'a> {
    pub init: &'a [f32],
    pub mask: &'a LatentMask,
    pub noise: &'a [f32],
}

/// Runs the sampler from `start`; `next_noise` continues the seed's stream
/// (ancestral samplers). `on_step(done, total)` is called after each model
/// evaluation.
pub async fn sample<D: Denoiser + Send>(
    plan: &SamplingPlan,
    model: &ModelSchedule,
    start: LatentStart<'_>,
    next_noise: &mut (dyn FnMut() -> Vec<f32> + Send),
    denoiser: &mut D,
    on_step: &mut (dyn FnMut(u32, u32) + Send),
) -> Result<Vec<f32>, D::Error> {
    let LatentStart { init, mask, noise } = start;
    let t_enc = t_enc(plan.steps, plan.denoising_strength) as usize;
    let steps = plan.steps as usize;
    let total = plan.steps_run();
    let mut x = match plan.sampler {
        SamplerKind::Ddim => {
            let grid = ddim_timesteps(steps);
            let sched = &grid[..t_enc];
            let a = model.alphas_cumprod[grid[t_enc]];
            let (sa, sn) = (a.sqrt(), (1.0 - a).sqrt());
            let mut x: Vec<f32> = init
                .iter()
                .zip(noise)
                .map(|(i, n)| i * sa + n * sn)
                .collect();
            for i in 0..sched.len().saturating_sub(1) {
                let index = sched.len() - 1 - i;
                let mut x_in = x.clone();
                mask.blend(&mut x_in, init);
                let eps = denoiser.eps(x_in, sched[index] as f32).await?;
                let a_t = model.alphas_cumprod[sched[index]];
                let a_prev = model.alphas_cumprod[sched[index - 1]] as f64;
                ddim_step(&mut x, &eps, a_t, a_prev as f32);
                on_step(i as u32 + 1, total);
            }
            x
        }
        kind => {
            let all = model.sigmas(plan.schedule, steps);
            let sigmas = all[steps - t_enc - 1..].to_vec();
            let mut x: Vec<f32> = init
                .iter()
                .zip(noise)
                .map(|(i, n)| i + n * sigmas[0])
                .collect();
            let mut sampler = KSampler::new(kind, sigmas);
            for i in 0..sampler.steps() {
                let sigma = sampler.sigma(i);
                let c_in = 1.0 / (sigma * sigma + 1.0).sqrt();
                let x_in: Vec<f32> = x.iter().map(|v| v * c_in).collect();
                let eps = denoiser.eps(x_in, model.sigma_to_t(sigma)).await?;
                let mut denoised: Vec<f32> =
                    x.iter().zip(&eps).map(|(v, e)| v - e * sigma).collect();
                mask.blend(&mut denoised, init);
                sampler.step(i, &mut x, &denoised, next_noise);
                on_step(i as u32 + 1, total);
            }
            x
        }
    };
    mask.blend(&mut x, init);
    Ok(x)
}

/// The WebUI's DDIM grid: every `1000 / steps`-th timestep, plus one.
pub fn ddim_timesteps(steps: usize) -> Vec<usize> {
    (0..1000)
        .step_by(1000 / steps.max(1))
        .map(|t| (t + 1).min(999))
        .collect()
}

/// One deterministic (eta 0) DDIM step from alpha `a_t` to `a_prev`.
pub fn ddim_step(x: &mut [f32], eps: &[f32], a_t: f32, a_prev: f32) {
    let (sqrt_a, sqrt_1ma) = (a_t.sqrt(), (1.0 - a_t).sqrt());
    let (sqrt_prev, dir) = (a_prev.sqrt(), (1.0 - a_prev).sqrt());
    for (v, e) in x.iter_mut().zip(eps) {
        let pred_x0 = (*v - sqrt_1ma * e) / sqrt_a;
        *v = sqrt_prev * pred_x0 + dir * e;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strength_rule_is_the_webuis() {
        // 20 steps at 0.75: t_enc 15, so 16 sampler steps (diffusers runs 15).
        assert_eq!(t_enc(20, 0.75), 15);
        let plan = SamplingPlan {
            sampler: SamplerKind::Euler,
            schedule: Schedule::Normal,
            steps: 20,
            denoising_strength: 0.75,
        };
        assert_eq!(plan.steps_run(), 16);
        // Strength 1 is capped at 0.999: 20 steps run 20.
        assert_eq!(t_enc(20, 1.0), 19);
        assert_eq!(t_enc(7, 0.5), 3);
        assert_eq!(t_enc(3, 0.3), 0);
    }

    #[test]
    fn ddim_grid_is_the_webuis() {
        assert_eq!(
            ddim_timesteps(10),
            vec![1, 101, 201, 301, 401, 501, 601, 701, 801, 901]
        );
        assert_eq!(ddim_timesteps(3).len(), 4); // 1000 // 3 = 333: 1, 334, 667, 999 (clipped 1000)
        assert_eq!(ddim_timesteps(3)[3], 999);
    }
}
