//! Worker errors, mapped to gRPC status in one place.

use inpaint_common::status::invalid_argument;
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("engine: unknown engine {name:?}; available: {available}")]
    UnknownEngine { name: String, available: String },
    #[error("{field}: {reason}")]
    InvalidField { field: String, reason: String },
    #[error("engine task failed: {0}")]
    Task(String),
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        match err {
            Error::UnknownEngine { name, available } => invalid_argument(
                "engine",
                format!("unknown engine {name:?}; available: {available}"),
            ),
            Error::InvalidField { field, reason } => invalid_argument(&field, reason),
            Error::Task(msg) => Status::internal(msg),
        }
    }
}
