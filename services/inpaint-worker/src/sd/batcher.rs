//! Step-level batching: one thread per Stable Diffusion model runs its UNet
//! for every request sampling on it. Each request sends one evaluation per
//! step (its condition and negative condition over the same latent); the
//! thread joins the evaluations waiting with the same shapes into one UNet
//! call, so requests join at their first step and leave after their last
//! without waiting for each other (continuous batching). It waits for more
//! only while more requests are sampling than it holds, up to the batch
//! wait, as the ONNX engine's batcher does.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::graph::{Graph, Io, TypedFloats};
pub use super::runs::UnetShape;

/// One request's evaluation at one step: `n` samples (`[n, C, h, w]`) with
/// their hidden states (`[n, tokens, width]`), all at timestep `t`.
pub struct UnetJob {
    pub samples: Vec<f32>,
    /// Shared with every step of the request (made once, in the UNet's
    /// float type).
    pub hidden: Arc<TypedFloats>,
    pub n: usize,
    pub shape: UnetShape,
    pub t: f32,
    pub reply: oneshot::Sender<Result<Vec<f32>, String>>,
}

/// Batches run and their sizes (in samples), for ListModels.
#[derive(Debug, Default)]
pub struct UnetStats {
    pub calls: AtomicU64,
    pub samples: AtomicU64,
    pub largest: AtomicU64,
}

pub struct UnetBatcher {
    queue: SyncSender<UnetJob>,
    /// Evaluations waiting for the UNet's thread (`inpaint_model_queue_depth`).
    depth: prometheus::Gauge,
    max_samples: usize,
    /// Requests sampling now (each sends one evaluation per step).
    sampling: Arc<AtomicUsize>,
    pub stats: Arc<UnetStats>,
}

/// Counts a request as sampling while it lives.
pub struct Sampling(Arc<AtomicUsize>);

impl Drop for Sampling {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl UnetBatcher {
    /// Starts the UNet's thread. `max_samples` bounds a call (1 = no
    /// batching across requests beyond a request's own pair).
    pub fn start(
        name: String,
        unet: Arc<Graph>,
        io: Io,
        text_width: usize,
        max_samples: usize,
        max_wait: Duration,
    ) -> Self {
        let (queue, jobs) = mpsc::sync_channel::<UnetJob>(256);
        let depth =
            inpaint_common::metrics::model_queue_depth().with_label_values(&[name.as_str()]);
        let sampling = Arc::new(AtomicUsize::new(0));
        let stats = Arc::new(UnetStats::default());
        let thread = Thread {
            name,
            depth: depth.clone(),
            unet,
            io,
            text_width,
            max_samples: max_samples.max(1),
            max_wait,
            sampling: sampling.clone(),
            stats: stats.clone(),
        };
        std::thread::Builder::new()
            .name("sd-unet".into())
            .spawn(move || thread.run(jobs))
            .expect("spawn the UNet thread");
        Self {
            queue,
            depth,
            max_samples: max_samples.max(1),
            sampling,
            stats,
        }
    }

    /// Most samples one UNet call takes.
    pub fn max_samples(&self) -> usize {
        self.max_samples
    }

    /// Registers a request that is about to sample.
    pub fn sampling(&self) -> Sampling {
        self.sampling.fetch_add(1, Ordering::SeqCst);
        Sampling(self.sampling.clone())
    }

    /// Queues one evaluation; the answer is `n` noise predictions.
    pub async fn eval(
        &self,
        samples: Vec<f32>,
        hidden: Arc<TypedFloats>,
        n: usize,
        shape: UnetShape,
        t: f32,
    ) -> Result<Vec<f32>, String> {
        let (reply, answer) = oneshot::channel();
        let job = UnetJob {
            samples,
            hidden,
            n,
            shape,
            t,
            reply,
        };
        match self.queue.try_send(job) {
            Ok(()) => self.depth.inc(),
            Err(TrySendError::Full(_)) => return Err("the UNet queue is full".into()),
            Err(TrySendError::Disconnected(_)) => return Err("the UNet thread stopped".into()),
        }
        answer
            .await
            .map_err(|_| "the UNet thread dropped the evaluation".to_string())?
    }
}

struct Thread {
    name: String,
    depth: prometheus::Gauge,
    unet: Arc<Graph>,
    io: Io,
    text_width: usize,
    max_samples: usize,
    max_wait: Duration,
    sampling: Arc<AtomicUsize>,
    stats: Arc<UnetStats>,
}

impl Thread {
    fn run(self, jobs: Receiver<UnetJob>) {
        let mut held: Option<UnetJob> = None;
        loop {
            let first = match held.take() {
                Some(job) => job,
                None => match jobs.recv() {
                    Ok(job) => {
                        self.depth.dec();
                        job
                    }
                    Err(_) => return,
                },
            };
            // Calls mix timesteps only when the UNet takes one per sample.
            let same_t = !self.io.timestep.batched;
            let fits = |job: &UnetJob, first: &UnetJob| {
                job.shape == first.shape && (!same_t || job.t == first.t)
            };
            let mut batch = vec![first];
            let deadline = Instant::now() + self.max_wait;
            while batch.iter().map(|j| j.n).sum::<usize>() < self.max_samples
                && self.sampling.load(Ordering::SeqCst) > batch.len()
            {
                let left = deadline.saturating_duration_since(Instant::now());
                let received = jobs.recv_timeout(left);
                if received.is_ok() {
                    self.depth.dec();
                }
                match received {
                    Ok(job)
                        if fits(&job, &batch[0])
                            && batch.iter().map(|j| j.n).sum::<usize>() + job.n
                                <= self.max_samples =>
                    {
                        batch.push(job)
                    }
                    Ok(job) => {
                        held = Some(job);
                        break;
                    }
                    Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            self.run_batch(batch);
        }
    }

    fn run_batch(&self, batch: Vec<UnetJob>) {
        let n: usize = batch.iter().map(|j| j.n).sum();
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        self.stats.samples.fetch_add(n as u64, Ordering::Relaxed);
        self.stats.largest.fetch_max(n as u64, Ordering::Relaxed);
        crate::metrics::batch_size()
            .with_label_values(&[self.name.as_str()])
            .observe(n as f64);
        let shape = batch[0].shape;
        let mut samples = Vec::with_capacity(batch.iter().map(|j| j.samples.len()).sum());
        let mut timesteps = Vec::with_capacity(n);
        for job in &batch {
            samples.extend_from_slice(&job.samples);
            timesteps.extend(std::iter::repeat_n(job.t, job.n));
        }
        let hidden = TypedFloats::concat(self.io.unet_float, batch.iter().map(|j| &*j.hidden));
        let out = super::runs::unet_run(
            &self.unet,
            &self.io,
            self.text_width,
            &samples,
            n,
            hidden,
            &timesteps,
            shape,
        );
        let per_sample = self.io.latent_channels * shape.width * shape.height;
        match out {
            Ok(out) => {
                let mut at = 0;
                for job in batch {
                    let len = job.n * per_sample;
                    let _ = job.reply.send(Ok(out[at..at + len].to_vec()));
                    at += len;
                }
            }
            Err(e) => {
                for job in batch {
                    let _ = job.reply.send(Err(e.clone()));
                }
            }
        }
    }
}
