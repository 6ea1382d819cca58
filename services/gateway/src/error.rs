//! Gateway errors, mapped to gRPC status in one place.

use inpaint_common::status::{from_stage, invalid_argument};
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{field}: {reason}")]
    InvalidField { field: String, reason: String },
    #[error("{stage} stage: {status}")]
    Stage { stage: &'static str, status: Status },
    #[error("cannot encode the result: {0}")]
    Encode(String),
    #[error("the job was cancelled")]
    Cancelled,
    #[error("{0}")]
    Store(String),
    #[error("{reason}")]
    Busy {
        reason: String,
        retry_after_secs: u64,
    },
    #[error("{0}")]
    NotFound(String),
}

impl Error {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidField {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        match err {
            Error::InvalidField { field, reason } => invalid_argument(&field, reason),
            Error::Stage { stage, status } => from_stage(stage, status),
            Error::Encode(_) => Status::internal(err.to_string()),
            Error::Cancelled => Status::cancelled(err.to_string()),
            Error::Store(_) => Status::unavailable(err.to_string()),
            Error::NotFound(_) => Status::not_found(err.to_string()),
            Error::Busy {
                reason,
                retry_after_secs,
            } => {
                let mut status = Status::resource_exhausted(format!(
                    "{reason}; retry after {retry_after_secs}s"
                ));
                if let Ok(v) = retry_after_secs.to_string().parse() {
                    status.metadata_mut().insert("retry-after", v);
                }
                status
            }
        }
    }
}
