//! Mask service errors, mapped to gRPC status in one place.

use inpaint_common::status::{InvalidField, invalid_argument};
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Invalid(#[from] InvalidField),
    #[error("{field}: {pixels} pixels is over the limit of {limit}")]
    TooManyPixels {
        field: String,
        pixels: u64,
        limit: u64,
    },
}

impl Error {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid(InvalidField::new(field, reason))
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        match err {
            Error::Invalid(e) => e.into(),
            Error::TooManyPixels { ref field, .. } => invalid_argument(field, err.to_string()),
        }
    }
}
