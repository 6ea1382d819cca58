//! Noise levels: the model's discrete sigmas (from its training betas) and
//! the schedules the WebUI offers over them, as k-diffusion computes them
//! (`external.DiscreteSchedule`, `sampling.get_sigmas_karras`). Every
//! schedule ends with sigma 0.

/// The scheduler config a model folder ships (`scheduler_config.json`).
#[derive(Debug, Clone, PartialEq)]
pub struct BetaConfig {
    pub beta_start: f64,
    pub beta_end: f64,
    /// "scaled_linear" (Stable Diffusion) or "linear".
    pub beta_schedule: String,
    pub train_timesteps: usize,
}

impl Default for BetaConfig {
    fn default() -> Self {
        Self {
            beta_start: 0.00085,
            beta_end: 0.012,
            beta_schedule: "scaled_linear".into(),
            train_timesteps: 1000,
        }
    }
}

/// The model's noise levels, one per training timestep.
#[derive(Debug, Clone)]
pub struct ModelSchedule {
    /// alphas_cumprod, kept in f32 as the model holds them.
    pub alphas_cumprod: Vec<f32>,
    pub sigmas: Vec<f32>,
    log_sigmas: Vec<f32>,
}

impl ModelSchedule {
    pub fn new(config: &BetaConfig) -> Result<Self, String> {
        let n = config.train_timesteps;
        if n < 2 {
            return Err(format!("num_train_timesteps {n} is too small"));
        }
        let betas: Vec<f64> = match config.beta_schedule.as_str() {
            "scaled_linear" => linspace(config.beta_start.sqrt(), config.beta_end.sqrt(), n)
                .into_iter()
                .map(|b| b * b)
                .collect(),
            "linear" => linspace(config.beta_start, config.beta_end, n),
            other => return Err(format!("beta_schedule {other:?} is not supported")),
        };
        let mut product = 1.0f64;
        let alphas_cumprod: Vec<f32> = betas
            .iter()
            .map(|b| {
                product *= 1.0 - b;
                product as f32
            })
            .collect();
        let sigmas: Vec<f32> = alphas_cumprod
            .iter()
            .map(|&a| ((1.0 - a) / a).sqrt())
            .collect();
        let log_sigmas = sigmas.iter().map(|s| s.ln()).collect();
        Ok(Self {
            alphas_cumprod,
            sigmas,
            log_sigmas,
        })
    }

    pub fn sigma_min(&self) -> f32 {
        self.sigmas[0]
    }

    pub fn sigma_max(&self) -> f32 {
        *self.sigmas.last().expect("at least two timesteps")
    }

    /// The (fractional) timestep of a sigma: linear in log sigma between
    /// the two neighbouring training timesteps.
    pub fn sigma_to_t(&self, sigma: f32) -> f32 {
        let log_sigma = sigma.ln();
        let last = self.log_sigmas.len() - 1;
        // The last index whose log sigma is <= ours, kept below the end.
        let low = self
            .log_sigmas
            .iter()
            .rposition(|&l| l <= log_sigma)
            .unwrap_or(0)
            .min(last - 1);
        let (lo, hi) = (self.log_sigmas[low], self.log_sigmas[low + 1]);
        let w = ((lo - log_sigma) / (lo - hi)).clamp(0.0, 1.0);
        (1.0 - w) * low as f32 + w * (low + 1) as f32
    }

    /// The sigma at a fractional timestep (log-linear interpolation).
    pub fn t_to_sigma(&self, t: f32) -> f32 {
        let low = t.floor() as usize;
        let high = (t.ceil() as usize).min(self.log_sigmas.len() - 1);
        let w = t - low as f32;
        ((1.0 - w) * self.log_sigmas[low] + w * self.log_sigmas[high]).exp()
    }

    /// `steps` sigmas from the highest to the lowest, and a final 0.
    pub fn sigmas(&self, schedule: Schedule, steps: usize) -> Vec<f32> {
        let mut out = match schedule {
            Schedule::Normal => {
                let t_max = (self.sigmas.len() - 1) as f64;
                linspace(t_max, 0.0, steps)
                    .into_iter()
                    .map(|t| self.t_to_sigma(t as f32))
                    .collect()
            }
            Schedule::Karras => karras(steps, self.sigma_min(), self.sigma_max(), 7.0),
        };
        out.push(0.0);
        out
    }
}

/// The spacing of noise levels over the steps, as the WebUI names them:
/// the one list, in `inpaint_common`.
pub use inpaint_common::sd_params::Schedule;

/// Karras sigmas (without the final 0), computed in f32 as torch does.
fn karras(steps: usize, sigma_min: f32, sigma_max: f32, rho: f32) -> Vec<f32> {
    let min_inv = sigma_min.powf(1.0 / rho);
    let max_inv = sigma_max.powf(1.0 / rho);
    linspace(0.0, 1.0, steps)
        .into_iter()
        .map(|ramp| (max_inv + ramp as f32 * (min_inv - max_inv)).powf(rho))
        .collect()
}

/// `n` evenly spaced values from `a` to `b` inclusive (one value: `a`).
fn linspace(a: f64, b: f64, n: usize) -> Vec<f64> {
    match n {
        0 => vec![],
        1 => vec![a],
        _ => {
            let step = (b - a) / (n - 1) as f64;
            (0..n).map(|i| a + step * i as f64).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_diffusion_extremes() {
        let m = ModelSchedule::new(&BetaConfig::default()).unwrap();
        // Known SD 1.x values: sigma_min ~0.0292, sigma_max ~14.6146.
        assert!(
            (m.sigma_min() - 0.029_167).abs() < 1e-4,
            "{}",
            m.sigma_min()
        );
        assert!((m.sigma_max() - 14.614_6).abs() < 1e-3, "{}", m.sigma_max());
        assert!((m.sigma_to_t(m.sigmas[321]) - 321.0).abs() < 1e-3);
    }

    #[test]
    fn schedules_run_down_to_zero() {
        let m = ModelSchedule::new(&BetaConfig::default()).unwrap();
        for schedule in [Schedule::Normal, Schedule::Karras] {
            let s = m.sigmas(schedule, 20);
            assert_eq!(s.len(), 21);
            assert_eq!(*s.last().unwrap(), 0.0);
            assert!(s.windows(2).all(|w| w[0] > w[1]), "{schedule:?} {s:?}");
        }
    }
}
