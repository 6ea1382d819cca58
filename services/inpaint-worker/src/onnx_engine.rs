//! The ONNX engine: one session per model, owned by its own thread, fed by a
//! bounded queue. The thread gathers same-shape crops from concurrent
//! requests into one batch (up to `max_batch`), runs it, and answers each
//! crop. It waits for more crops (at most `max_wait`) only while other crops
//! are on their way (being prepared or queued), so a lone request pays no
//! batching delay.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use inpaint_imaging::resize::{resize_hole, resize_rgb};
use inpaint_imaging::{GrayImage, PixelBox, RgbImage};
use inpaint_onnx::Device;
use inpaint_onnx::ort::session::Session;
use inpaint_onnx::ort::value::{TensorElementType, TensorRef, ValueType};
use tokio::sync::oneshot;

use crate::error::Error;
use crate::models::{DType, MaskPolarity, ModelSpec, Range};

/// How model engines are opened.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    pub ort_dylib: std::path::PathBuf,
    pub device: Device,
    pub require_gpu: bool,
    pub threads: usize,
    pub max_wait: Duration,
    /// Wait up to `max_wait` for a batch to fill even when no other crop is
    /// on its way (throughput over latency, e.g. on GPUs).
    pub always_wait: bool,
    pub queue: usize,
    /// Stable Diffusion: most requests whose steps share one UNet call.
    pub sd_max_batch: usize,
    /// Stable Diffusion: the folder of textual-inversion embeddings.
    pub sd_embeddings: Option<std::path::PathBuf>,
    /// Stable Diffusion: the folder of LoRA files.
    pub sd_loras: Option<std::path::PathBuf>,
    /// Stable Diffusion: bytes the merged LoRA variants of one model may hold.
    pub sd_lora_cache_bytes: u64,
}

/// Default budget of merged LoRA variants per model: two SD 1.5 fp16 UNets.
pub const DEFAULT_LORA_CACHE_BYTES: u64 = 4 << 30;

impl RuntimeOptions {
    /// Settings for a tool run from the repository root (the benchmarks):
    /// `ORT_DYLIB_PATH` or the library `make models` fetched, `ORT_THREADS`
    /// threads per run (default 1), the GPU required when CUDA is asked, so
    /// a figure is never a silent CPU fallback.
    pub fn for_tools(device: Device) -> Self {
        Self {
            ort_dylib: std::env::var_os("ORT_DYLIB_PATH")
                .map(Into::into)
                .unwrap_or_else(|| "models/cache/onnxruntime/libonnxruntime.so".into()),
            device,
            require_gpu: device == Device::Cuda,
            threads: std::env::var("ORT_THREADS")
                .ok()
                .and_then(|t| t.parse().ok())
                .unwrap_or(1),
            max_wait: Duration::from_millis(1),
            always_wait: false,
            queue: 4,
            sd_max_batch: 8,
            sd_embeddings: None,
            sd_loras: None,
            sd_lora_cache_bytes: DEFAULT_LORA_CACHE_BYTES,
        }
    }
}

/// Counters for the batches a model ran.
#[derive(Debug, Default)]
pub struct BatchStats {
    pub batches: AtomicU64,
    pub crops: AtomicU64,
    pub largest: AtomicU64,
}

/// One crop in model layout.
enum Pixels {
    F32 { image: Vec<f32>, mask: Vec<f32> },
    U8 { image: Vec<u8>, mask: Vec<u8> },
}

struct Job {
    width: u32,
    height: u32,
    pixels: Pixels,
    span: tracing::Span,
    reply: oneshot::Sender<Result<RgbImage, Error>>,
}

pub struct ModelEngine {
    pub spec: ModelSpec,
    pub device: Device,
    pub stats: Arc<BatchStats>,
    jobs: SyncSender<Job>,
    /// Crops between entering `inpaint` and getting their answer.
    in_flight: Arc<AtomicUsize>,
}

/// Counts a crop as in flight until dropped.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn new(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self(counter.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ModelEngine {
    /// Opens the model (blocking), checks it against its spec and starts its
    /// thread.
    pub fn load(spec: ModelSpec, options: &RuntimeOptions) -> Result<Self, Error> {
        let load_err = |reason: String| Error::ModelLoad {
            model: spec.name.clone(),
            reason,
        };
        let env =
            inpaint_onnx::environment(&options.ort_dylib).map_err(|e| load_err(e.to_string()))?;
        let (session, device) = inpaint_onnx::open_session(
            env,
            &spec.path,
            options.device,
            options.require_gpu,
            options.threads,
        )
        .map_err(|e| load_err(e.to_string()))?;
        check_signature(&session, &spec).map_err(load_err)?;
        tracing::info!(model = %spec.name, path = %spec.path.display(), device = device.name(), "model loaded");
        let (jobs, queue) = mpsc::sync_channel(options.queue.max(1));
        let stats = Arc::new(BatchStats::default());
        let in_flight = Arc::new(AtomicUsize::new(0));
        let batcher = Batcher {
            spec: spec.clone(),
            queue,
            max_wait: options.max_wait,
            always_wait: options.always_wait,
            stats: stats.clone(),
            in_flight: in_flight.clone(),
        };
        std::thread::Builder::new()
            .name(format!("model-{}", spec.name))
            .spawn(move || batcher.run(session))
            .map_err(|e| load_err(format!("cannot start its thread: {e}")))?;
        Ok(Self {
            spec,
            device,
            stats,
            jobs,
            in_flight,
        })
    }

    /// Repaints the hole of one crop. Only hole pixels change.
    pub async fn inpaint(&self, image: &RgbImage, hole: &GrayImage) -> Result<RgbImage, Error> {
        let _counted = InFlight::new(&self.in_flight);
        let (w, h) = model_size(&self.spec, image.width(), image.height());
        let (fitted, fitted_hole) = fit(image, hole, w, h, self.spec.fixed_size.is_some());
        let (reply, answer) = oneshot::channel();
        let job = Job {
            width: w,
            height: h,
            pixels: to_tensors(&self.spec, &fitted, &fitted_hole),
            span: tracing::Span::current(),
            reply,
        };
        self.jobs.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => Error::Busy {
                model: self.spec.name.clone(),
            },
            TrySendError::Disconnected(_) => {
                Error::Task(format!("model {} thread stopped", self.spec.name))
            }
        })?;
        queue_depth(&self.spec.name).inc();
        let out = answer
            .await
            .map_err(|_| Error::Task(format!("model {} dropped the crop", self.spec.name)))??;
        let back = unfit(
            &out,
            image.width(),
            image.height(),
            self.spec.fixed_size.is_some(),
        );
        Ok(keep_known(image, hole, &back))
    }
}

/// The size the model sees a crop at: its fixed size, or the crop padded to
/// the side multiple.
fn model_size(spec: &ModelSpec, w: u32, h: u32) -> (u32, u32) {
    match spec.fixed_size {
        Some(size) => size,
        None => (
            w.div_ceil(spec.side_multiple) * spec.side_multiple,
            h.div_ceil(spec.side_multiple) * spec.side_multiple,
        ),
    }
}

/// Resizes (fixed models) or pads with the edge pixels, marked known (dynamic).
fn fit(image: &RgbImage, hole: &GrayImage, w: u32, h: u32, resize: bool) -> (RgbImage, GrayImage) {
    if resize {
        return (resize_rgb(image, w, h), resize_hole(hole, w, h));
    }
    if (image.width(), image.height()) == (w, h) {
        return (image.clone(), hole.clone());
    }
    let (iw, ih) = (image.width() as usize, image.height() as usize);
    let mut data = Vec::with_capacity((w * h * 3) as usize);
    let mut mask = vec![0u8; (w * h) as usize];
    for y in 0..h as usize {
        let sy = y.min(ih - 1);
        for x in 0..w as usize {
            let sx = x.min(iw - 1);
            let s = sy * iw + sx;
            data.extend_from_slice(&image.as_raw()[s * 3..s * 3 + 3]);
            if y < ih && x < iw {
                mask[y * w as usize + x] = hole.as_raw()[s];
            }
        }
    }
    (
        RgbImage::from_raw(w, h, data).expect("sized above"),
        GrayImage::from_raw(w, h, mask).expect("sized above"),
    )
}

fn unfit(out: &RgbImage, w: u32, h: u32, resized: bool) -> RgbImage {
    if resized {
        resize_rgb(out, w, h)
    } else {
        out.crop(PixelBox::new(0, 0, w, h))
    }
}

/// The model's pixels where the hole is, the original elsewhere.
fn keep_known(original: &RgbImage, hole: &GrayImage, repainted: &RgbImage) -> RgbImage {
    let mut out = original.clone();
    for (i, &m) in hole.as_raw().iter().enumerate() {
        if m > 0 {
            out.as_raw_mut()[i * 3..i * 3 + 3]
                .copy_from_slice(&repainted.as_raw()[i * 3..i * 3 + 3]);
        }
    }
    out
}

fn to_tensors(spec: &ModelSpec, image: &RgbImage, hole: &GrayImage) -> Pixels {
    let plane = image.pixel_count();
    let hole_value = |m: u8| match spec.mask {
        MaskPolarity::HoleIsOne => m > 0,
        MaskPolarity::KeepIsOne => m == 0,
    };
    match spec.dtype {
        DType::F32 => {
            let scale = if spec.input_range == Range::Unit {
                1.0 / 255.0
            } else {
                1.0
            };
            let mut data = vec![0f32; 3 * plane];
            for (i, px) in image.as_raw().chunks_exact(3).enumerate() {
                for c in 0..3 {
                    data[c * plane + i] = px[c] as f32 * scale;
                }
            }
            let full = if spec.input_range == Range::Unit {
                1.0
            } else {
                255.0
            };
            let mask = hole
                .as_raw()
                .iter()
                .map(|&m| if hole_value(m) { full } else { 0.0 })
                .collect();
            Pixels::F32 { image: data, mask }
        }
        DType::U8 => {
            let mut data = vec![0u8; 3 * plane];
            for (i, px) in image.as_raw().chunks_exact(3).enumerate() {
                for c in 0..3 {
                    data[c * plane + i] = px[c];
                }
            }
            let mask = hole
                .as_raw()
                .iter()
                .map(|&m| if hole_value(m) { 255 } else { 0 })
                .collect();
            Pixels::U8 { image: data, mask }
        }
    }
}

/// Checks input and output names and element types against the spec.
fn check_signature(session: &Session, spec: &ModelSpec) -> Result<(), String> {
    let want = match spec.dtype {
        DType::F32 => TensorElementType::Float32,
        DType::U8 => TensorElementType::Uint8,
    };
    for name in [&spec.image_input, &spec.mask_input] {
        let input = session.inputs().iter().find(|i| i.name() == name.as_str()).ok_or_else(|| {
            let names: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
            format!("has no input {name:?} (its inputs: {names:?}); set image_input/mask_input in the config")
        })?;
        match input.dtype() {
            ValueType::Tensor { ty, .. } if *ty == want => {}
            other => {
                return Err(format!(
                    "input {name:?} is {other:?}, the config says a {want:?} tensor"
                ));
            }
        }
    }
    if !session
        .outputs()
        .iter()
        .any(|o| o.name() == spec.output.as_str())
    {
        let names: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
        return Err(format!(
            "has no output {:?} (its outputs: {names:?}); set output in the config",
            spec.output
        ));
    }
    Ok(())
}

/// The model's thread: its session and what it needs to form batches.
struct Batcher {
    spec: ModelSpec,
    queue: mpsc::Receiver<Job>,
    max_wait: Duration,
    always_wait: bool,
    stats: Arc<BatchStats>,
    in_flight: Arc<AtomicUsize>,
}

impl Batcher {
    fn run(self, mut session: Session) {
        let mut held: Option<Job> = None;
        loop {
            let first = match held.take() {
                Some(job) => job,
                None => match self.queue.recv() {
                    Ok(job) => {
                        queue_depth(&self.spec.name).dec();
                        job
                    }
                    Err(_) => return,
                },
            };
            let key = (first.width, first.height);
            let mut batch = vec![first];
            let deadline = Instant::now() + self.max_wait;
            // Wait only while more crops are coming than this batch holds
            // (or always, when so configured).
            while batch.len() < self.spec.max_batch
                && (self.always_wait || self.in_flight.load(Ordering::SeqCst) > batch.len())
            {
                let left = deadline.saturating_duration_since(Instant::now());
                let received = self.queue.recv_timeout(left);
                if received.is_ok() {
                    queue_depth(&self.spec.name).dec();
                }
                match received {
                    Ok(job) if (job.width, job.height) == key => batch.push(job),
                    Ok(job) => {
                        held = Some(job);
                        break;
                    }
                    Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            self.stats.batches.fetch_add(1, Ordering::Relaxed);
            crate::metrics::batch_size()
                .with_label_values(&[self.spec.name.as_str()])
                .observe(batch.len() as f64);
            self.stats
                .crops
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            self.stats
                .largest
                .fetch_max(batch.len() as u64, Ordering::Relaxed);
            let span = tracing::info_span!(parent: &batch[0].span, "model_batch", model = %self.spec.name, size = batch.len());
            let _entered = span.enter();
            match run_one_batch(&mut session, &self.spec, &batch, key) {
                Ok(images) => {
                    for (job, image) in batch.into_iter().zip(images) {
                        let _ = job.reply.send(Ok(image));
                    }
                }
                Err(err) => {
                    tracing::error!(%err, "model run failed");
                    for job in batch {
                        let _ = job.reply.send(Err(Error::Model(err.clone())));
                    }
                }
            }
        }
    }
}

fn run_one_batch(
    session: &mut Session,
    spec: &ModelSpec,
    batch: &[Job],
    (w, h): (u32, u32),
) -> Result<Vec<RgbImage>, String> {
    let (n, w, h) = (batch.len(), w as usize, h as usize);
    let image_shape = [n, 3, h, w];
    let mask_shape = [n, 1, h, w];
    let outputs = match spec.dtype {
        DType::F32 => {
            let (image, mask) = gather(batch, |p| match p {
                Pixels::F32 { image, mask } => Some((image.as_slice(), mask.as_slice())),
                Pixels::U8 { .. } => None,
            });
            let data = run_session(
                session,
                spec,
                (image_shape, &image),
                (mask_shape, &mask),
                |v| v.try_extract_tensor::<f32>(),
                n,
                w,
                h,
            )?;
            let scale = if spec.output_range == Range::Unit {
                255.0
            } else {
                1.0
            };
            split(n, w, h, |i| inpaint_imaging::to_byte(data[i] * scale))
        }
        DType::U8 => {
            let (image, mask) = gather(batch, |p| match p {
                Pixels::U8 { image, mask } => Some((image.as_slice(), mask.as_slice())),
                Pixels::F32 { .. } => None,
            });
            let data = run_session(
                session,
                spec,
                (image_shape, &image),
                (mask_shape, &mask),
                |v| v.try_extract_tensor::<u8>(),
                n,
                w,
                h,
            )?;
            split(n, w, h, |i| data[i])
        }
    };
    Ok(outputs)
}

/// The batch's images and masks, each concatenated.
fn gather<'a, T: Copy + 'a>(
    batch: &'a [Job],
    parts: impl Fn(&'a Pixels) -> Option<(&'a [T], &'a [T])>,
) -> (Vec<T>, Vec<T>) {
    let (mut image, mut mask) = (Vec::new(), Vec::new());
    for (i, m) in batch.iter().filter_map(|job| parts(&job.pixels)) {
        image.extend_from_slice(i);
        mask.extend_from_slice(m);
    }
    (image, mask)
}

/// Runs one batch and copies out the output, checked to be [n, 3, h, w].
#[allow(clippy::too_many_arguments)]
fn run_session<T, O: Copy>(
    session: &mut Session,
    spec: &ModelSpec,
    image: ([usize; 4], &[T]),
    mask: ([usize; 4], &[T]),
    extract: impl for<'v> Fn(
        &'v inpaint_onnx::ort::value::DynValue,
    ) -> inpaint_onnx::ort::Result<(
        &'v inpaint_onnx::ort::value::Shape,
        &'v [O],
    )>,
    n: usize,
    w: usize,
    h: usize,
) -> Result<Vec<O>, String>
where
    T: inpaint_onnx::ort::value::PrimitiveTensorElementType + Clone + std::fmt::Debug + 'static,
{
    let e = |err: inpaint_onnx::ort::Error| err.to_string();
    let inputs = inpaint_onnx::ort::inputs![
        spec.image_input.as_str() => TensorRef::from_array_view(image).map_err(e)?,
        spec.mask_input.as_str() => TensorRef::from_array_view(mask).map_err(e)?,
    ];
    let out = session.run(inputs).map_err(e)?;
    let (shape, data) = extract(&out[spec.output.as_str()]).map_err(e)?;
    check_shape(shape.as_ref(), n, w, h)?;
    Ok(data.to_vec())
}

fn check_shape(shape: &[i64], n: usize, w: usize, h: usize) -> Result<(), String> {
    if shape != [n as i64, 3, h as i64, w as i64] {
        return Err(format!(
            "output shape {shape:?}, expected [{n}, 3, {h}, {w}]"
        ));
    }
    Ok(())
}

/// Planar [n,3,h,w] values to n interleaved RGB images.
fn split(n: usize, w: usize, h: usize, value: impl Fn(usize) -> u8) -> Vec<RgbImage> {
    let plane = w * h;
    (0..n)
        .map(|b| {
            let base = b * 3 * plane;
            let mut data = Vec::with_capacity(3 * plane);
            for i in 0..plane {
                for c in 0..3 {
                    data.push(value(base + c * plane + i));
                }
            }
            RgbImage::from_raw(w as u32, h as u32, data).expect("sized above")
        })
        .collect()
}

fn queue_depth(model: &str) -> prometheus::Gauge {
    inpaint_common::metrics::model_queue_depth().with_label_values(&[model])
}
