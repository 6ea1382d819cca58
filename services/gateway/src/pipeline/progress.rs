//! What a request tells its listener (a job's event stream) at each stage
//! boundary, and how the listener stops it.

use std::future::Future;

use crate::error::Error;

/// A stage boundary of one request, for progress reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Segmenting,
    MasksReady {
        regions: u32,
    },
    Inpainting {
        done: u32,
        total: u32,
    },
    /// Region `region` ran `step` of its `steps` sampling steps.
    Sampling {
        region: u32,
        step: u32,
        steps: u32,
    },
    Compositing,
}

impl Stage {
    /// (stage name, regions done, regions total) for job events.
    pub fn describe(self) -> (&'static str, u32, u32) {
        match self {
            Stage::Segmenting => ("segmenting", 0, 0),
            Stage::MasksReady { regions } => ("masks_ready", 0, regions),
            Stage::Inpainting { done, total } => ("inpainting", done, total),
            // Region counts stay as the inpainting events set them.
            Stage::Sampling { .. } => ("sampling", 0, 0),
            Stage::Compositing => ("compositing", 0, 0),
        }
    }

    /// (region, step, steps) of a sampling step.
    pub fn step(self) -> Option<(u32, u32, u32)> {
        match self {
            Stage::Sampling {
                region,
                step,
                steps,
                ..
            } => Some((region, step, steps)),
            _ => None,
        }
    }
}

/// Hears about each stage boundary; an error stops the request there (a
/// job's cancellation).
pub trait Progress: Sync {
    fn report(&self, stage: Stage) -> impl Future<Output = Result<(), Error>> + Send;
}

/// For synchronous calls: nobody is listening.
pub struct Silent;

impl Progress for Silent {
    async fn report(&self, _stage: Stage) -> Result<(), Error> {
        Ok(())
    }
}
