//! The engines a request names, checked against the worker's before any
//! pixel work.

use super::base::Pipeline;
use super::engine_names::Listed;
use crate::error::Error;

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
        let list = self.list_engines().await?;
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
