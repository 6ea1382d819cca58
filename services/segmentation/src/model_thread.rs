//! A model run by one dedicated thread, fed through a bounded queue: ort's
//! `Session::run` needs `&mut self`, and model runs must stay off the async
//! threads. A full queue is refused at once (RESOURCE_EXHAUSTED) rather than
//! letting latency grow without bound.

use std::path::Path;

use inpaint_onnx::Device;
use ort::session::Session;
use tokio::sync::{mpsc, oneshot};

use crate::error::Error;

struct Job<I, O> {
    input: I,
    span: tracing::Span,
    reply: oneshot::Sender<Result<O, Error>>,
}

/// Handle to a model's thread; cheap to share behind an `Arc`.
pub struct ModelThread<I, O> {
    name: &'static str,
    device: Device,
    jobs: mpsc::Sender<Job<I, O>>,
}

impl<I: Send + 'static, O: Send + 'static> ModelThread<I, O> {
    /// Starts a thread that answers each call with `run(input)`; `device`
    /// is where its session runs (for reports).
    pub fn spawn<F>(
        name: &'static str,
        device: Device,
        queue: usize,
        mut run: F,
    ) -> Result<Self, Error>
    where
        F: FnMut(I) -> Result<O, Error> + Send + 'static,
    {
        let (jobs, mut receiver) = mpsc::channel::<Job<I, O>>(queue.max(1));
        let depth = inpaint_common::metrics::model_queue_depth().with_label_values(&[name]);
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                while let Some(job) = receiver.blocking_recv() {
                    depth.dec();
                    let _entered = job.span.enter();
                    let _ = job.reply.send(run(job.input));
                }
            })
            .map_err(|e| Error::Load(format!("cannot start the {name} thread: {e}")))?;
        Ok(Self { name, device, jobs })
    }

    pub fn device(&self) -> Device {
        self.device
    }

    pub async fn call(&self, input: I) -> Result<O, Error> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            input,
            span: tracing::Span::current(),
            reply,
        };
        self.jobs.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Error::Busy(self.name),
            mpsc::error::TrySendError::Closed(_) => {
                Error::Unavailable(format!("the {} thread stopped", self.name))
            }
        })?;
        inpaint_common::metrics::model_queue_depth()
            .with_label_values(&[self.name])
            .inc();
        answer.await.map_err(|_| {
            Error::Unavailable(format!("the {} thread dropped a request", self.name))
        })?
    }
}

/// What every model needs to open: the runtime and where to run.
#[derive(Clone, Copy)]
pub struct Runtime {
    pub env: &'static ort::environment::Environment,
    pub device: Device,
    pub threads: usize,
}

impl Runtime {
    /// Opens `path`, checking that it has the named inputs and outputs.
    /// `setting` names the option that points at the file, for the error.
    pub fn open(
        &self,
        path: &Path,
        setting: &str,
        inputs: &[&str],
        outputs: &[&str],
    ) -> Result<(Session, Device), Error> {
        if !path.is_file() {
            return Err(Error::Load(format!(
                "model not found at {} (run `make models`, or set {setting})",
                path.display()
            )));
        }
        let (session, device) =
            inpaint_onnx::open_session(self.env, path, self.device, false, self.threads)
                .map_err(|e| Error::Load(e.to_string()))?;
        let has_inputs: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        let has_outputs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
        let missing: Vec<&str> = inputs
            .iter()
            .filter(|n| !has_inputs.contains(n))
            .chain(outputs.iter().filter(|n| !has_outputs.contains(n)))
            .copied()
            .collect();
        if !missing.is_empty() {
            return Err(Error::Load(format!(
                "{} is not the expected model ({setting}): missing inputs/outputs {missing:?}",
                path.display()
            )));
        }
        Ok((session, device))
    }
}
