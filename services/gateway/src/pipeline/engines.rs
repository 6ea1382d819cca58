//! The worker's engine names: checked before any pixel work, and cached so
//! a request costs no ListEngines call of its own.

use std::time::{Duration, Instant};

use inpaint_proto::v1::ListEnginesRequest;

use super::Pipeline;
use crate::error::Error;

/// The worker's engines as last listed (name, and whether it reads only
/// within its radius of the hole) and its default, listed again at most
/// every `FRESH` while every name asked for is among them: a request costs
/// no ListEngines call of its own, and an engine a new worker brings is
/// seen at the first request that names it.
#[derive(Default)]
pub struct EngineNames(tokio::sync::Mutex<Option<(Instant, Listed)>>);

#[derive(Debug, Clone, PartialEq)]
struct Listed {
    engines: Vec<(String, bool)>,
    default: String,
}

impl Listed {
    fn knows(&self, name: &str) -> bool {
        name.is_empty() || self.engines.iter().any(|(n, _)| n == name)
    }
}

impl EngineNames {
    const FRESH: Duration = Duration::from_secs(30);

    /// The cached list when fresh and knowing every one of `wanted`.
    async fn cached(&self, wanted: &[&str]) -> Option<Listed> {
        let guard = self.0.lock().await;
        let (at, listed) = guard.as_ref()?;
        let fresh = at.elapsed() < Self::FRESH;
        (fresh && wanted.iter().all(|w| listed.knows(w))).then(|| listed.clone())
    }

    async fn store(&self, listed: Listed) {
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

impl Pipeline {
    /// Refuses unknown engines (each named with its field) before any pixel
    /// work is done; one ListEngines call, and none when all are defaults.
    pub(super) async fn check_engines(&self, engines: &[(String, String)]) -> Result<(), Error> {
        // Default engines need no check (and no call to a worker that may
        // be down before the stages that come first have been tried).
        if engines.iter().all(|(engine, _)| engine.is_empty()) {
            return Ok(());
        }
        let wanted: Vec<&str> = engines.iter().map(|(engine, _)| engine.as_str()).collect();
        if self.engine_names.cached(&wanted).await.is_some() {
            return Ok(());
        }
        let list = self
            .call(
                "worker",
                self.stages
                    .worker
                    .clone()
                    .list_engines(ListEnginesRequest {}),
            )
            .await?;
        let listed = Listed {
            engines: list
                .engines
                .into_iter()
                .map(|e| (e.name, e.reads_within_radius))
                .collect(),
            default: list.default_engine,
        };
        self.engine_names.store(listed.clone()).await;
        match engines.iter().find(|(engine, _)| !listed.knows(engine)) {
            None => Ok(()),
            Some((engine, field)) => {
                let names: Vec<&str> = listed.engines.iter().map(|(n, _)| n.as_str()).collect();
                Err(Error::invalid(
                    field.as_str(),
                    format!("unknown engine {engine:?}; available: {}", names.join(", ")),
                ))
            }
        }
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
