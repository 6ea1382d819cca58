//! The pipeline's state (the stage clients, the limits, the engine-name
//! cache) and the one way a stage is called.

use std::future::Future;
use std::time::Duration;

use inpaint_proto::v1::{ListEnginesRequest, ListEnginesResponse};
use tracing::Instrument;

use super::engine_names::EngineNames;
use super::validate::Checked;
use crate::decode::Decoding;
use crate::error::Error;
use crate::stages::Stages;

pub struct Pipeline {
    pub stages: Stages,
    pub max_image_pixels: u64,
    /// Longest any one stage call may take, including waiting for a
    /// reachable replica.
    pub stage_timeout: Duration,
    /// Requests and pixels this process holds, synchronous and job runs.
    pub inflight: std::sync::Arc<crate::inflight::InFlight>,
    /// The worker's engine names, as last listed.
    pub engine_names: EngineNames,
}

impl Pipeline {
    /// How the request's uploads are decoded.
    pub(super) fn decoding(&self, req: &Checked) -> Decoding {
        Decoding {
            max_pixels: self.max_image_pixels,
            upright: !req.params.keep_stored_orientation,
        }
    }

    /// The worker's engines and its default, as it lists them now.
    pub(crate) async fn list_engines(&self) -> Result<ListEnginesResponse, Error> {
        let mut worker = self.stages.worker.clone();
        self.call("worker", worker.list_engines(ListEnginesRequest {}))
            .await
    }

    /// One stage call, bounded by the stage timeout.
    pub(crate) async fn call<T>(
        &self,
        name: &'static str,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, Error> {
        // The stage's own span is this one's child: the call carries its
        // trace context (see `Stages`).
        let span = tracing::info_span!("stage", otel.name = name, stage = name);
        match tokio::time::timeout(self.stage_timeout, call.instrument(span)).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(Error::stage(name, status)),
            Err(_) => Err(Error::stage_unavailable(
                name,
                format!("no answer within {:?}", self.stage_timeout),
            )),
        }
    }
}
