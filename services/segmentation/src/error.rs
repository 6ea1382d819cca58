//! Segmentation errors, mapped to gRPC status in one place.

use inpaint_common::status::{InvalidField, resource_exhausted};
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Invalid(#[from] InvalidField),
    #[error("model load failed: {0}")]
    Load(String),
    #[error("the {0} model is still loading")]
    Loading(&'static str),
    #[error("{0}")]
    Unavailable(String),
    #[error("the {0} model's queue is full")]
    Busy(&'static str),
    #[error("model run failed: {0}")]
    Inference(String),
}

impl Error {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid(InvalidField::new(field, reason))
    }
}

impl From<ort::Error> for Error {
    fn from(err: ort::Error) -> Self {
        Self::Inference(err.to_string())
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        match err {
            Error::Invalid(e) => e.into(),
            Error::Load(_) | Error::Unavailable(_) => Status::failed_precondition(err.to_string()),
            Error::Loading(_) => Status::unavailable(err.to_string()),
            Error::Busy(_) => resource_exhausted(&err, 1),
            Error::Inference(_) => Status::internal(err.to_string()),
        }
    }
}
