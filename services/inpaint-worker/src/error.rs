//! Worker errors, mapped to gRPC status in one place.

use inpaint_common::status::{InvalidField, invalid_argument, resource_exhausted};
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("engine: unknown engine {name:?}; available: {available}")]
    UnknownEngine { name: String, available: String },
    #[error("model: no model {name:?} is loaded; loaded: [{loaded}]")]
    UnknownModel { name: String, loaded: String },
    #[error(transparent)]
    Invalid(#[from] InvalidField),
    #[error("model {model} cannot be loaded: {reason}")]
    ModelLoad { model: String, reason: String },
    #[error("model {model}: queue is full")]
    Busy { model: String },
    #[error("model run failed: {0}")]
    Model(String),
    #[error("engine task failed: {0}")]
    Task(String),
    #[error(
        "engine sd: no Stable Diffusion pipeline is configured (add a [[model]] with kind = \"sd\" and the export's folder to the worker's model file)"
    )]
    NoSdModel,
}

impl Error {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid(InvalidField::new(field, reason))
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        match err {
            Error::UnknownEngine { name, available } => invalid_argument(
                "engine",
                format!("unknown engine {name:?}; available: {available}"),
            ),
            Error::UnknownModel { .. } => Status::not_found(err.to_string()),
            Error::Invalid(e) => e.into(),
            Error::ModelLoad { .. } | Error::NoSdModel => {
                Status::failed_precondition(err.to_string())
            }
            Error::Busy { .. } => resource_exhausted(&err, 1),
            Error::Model(_) | Error::Task(_) => Status::internal(err.to_string()),
        }
    }
}
