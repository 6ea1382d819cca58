//! The worker's engine names as last listed, cached so a request costs no
//! ListEngines call of its own.

use std::time::{Duration, Instant};

/// The worker's engines as last listed (name, and whether it reads only
/// within its radius of the hole) and its default, listed again at most
/// every `FRESH` while every name asked for is among them: a request costs
/// no ListEngines call of its own, and an engine a new worker brings is
/// seen at the first request that names it.
#[derive(Default)]
pub struct EngineNames(tokio::sync::Mutex<Option<(Instant, Listed)>>);

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Listed {
    pub engines: Vec<(String, bool)>,
    pub default: String,
}

impl Listed {
    pub fn knows(&self, name: &str) -> bool {
        name.is_empty() || self.engines.iter().any(|(n, _)| n == name)
    }
}

impl EngineNames {
    const FRESH: Duration = Duration::from_secs(30);

    /// The cached list when fresh and knowing every one of `wanted`.
    pub(super) async fn cached(&self, wanted: &[&str]) -> Option<Listed> {
        let guard = self.0.lock().await;
        let (at, listed) = guard.as_ref()?;
        let fresh = at.elapsed() < Self::FRESH;
        (fresh && wanted.iter().all(|w| listed.knows(w))).then(|| listed.clone())
    }

    pub(super) async fn store(&self, listed: Listed) {
        *self.0.lock().await = Some((Instant::now(), listed));
    }

    /// Whether `engine` (empty: the default) reads only within its radius
    /// of the hole, as last listed (false before a request named an
    /// engine).
    pub async fn reads_within_radius(&self, engine: &str) -> bool {
        let guard = self.0.lock().await;
        let Some((_, listed)) = guard.as_ref() else {
            return false;
        };
        let name = if engine.is_empty() {
            &listed.default
        } else {
            engine
        };
        listed.engines.iter().any(|(n, local)| n == name && *local)
    }
}

#[cfg(test)]
mod tests {
    use super::{EngineNames, Listed};

    #[tokio::test]
    async fn engine_names_answer_only_when_every_name_is_known() {
        let names = EngineNames::default();
        assert_eq!(names.cached(&["telea"]).await, None, "nothing listed yet");
        assert!(!names.reads_within_radius("").await);
        names
            .store(Listed {
                engines: vec![("telea".into(), true), ("onnx".into(), false)],
                default: "telea".into(),
            })
            .await;
        assert!(names.cached(&["telea", "onnx", ""]).await.is_some());
        assert_eq!(
            names.cached(&["sd"]).await,
            None,
            "a new name is listed again"
        );
        assert!(names.reads_within_radius("").await, "the default, telea");
        assert!(!names.reads_within_radius("onnx").await);
    }
}
