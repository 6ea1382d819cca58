//! Mask service errors, mapped to gRPC status in one place.

use inpaint_common::status::invalid_argument;
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{field}: {reason}")]
    InvalidField { field: String, reason: String },
    #[error("{field}: {pixels} pixels is over the limit of {limit}")]
    TooManyPixels {
        field: String,
        pixels: u64,
        limit: u64,
    },
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
            Error::TooManyPixels { ref field, .. } => invalid_argument(field, err.to_string()),
        }
    }
}
