//! gRPC errors with the details clients need to act on them.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// A request field that fails a check; as a Status, INVALID_ARGUMENT
/// naming the field (see `invalid_argument`). Every service's error type
/// carries it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidField {
    pub field: String,
    pub reason: String,
}

impl InvalidField {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The same check on a field nested in `outer` (`radius` within
    /// `request.params` is `request.params.radius`).
    pub fn within(self, outer: &str) -> Self {
        Self {
            field: format!("{outer}.{}", self.field),
            reason: self.reason,
        }
    }
}

impl From<InvalidField> for Status {
    fn from(e: InvalidField) -> Self {
        invalid_argument(&e.field, e.reason)
    }
}

/// INVALID_ARGUMENT naming the offending field, in the message and as a
/// `BadRequest` field violation in the details.
pub fn invalid_argument(field: &str, description: impl Into<String>) -> Status {
    let description = description.into();
    Status::with_error_details(
        Code::InvalidArgument,
        format!("{field}: {description}"),
        ErrorDetails::with_bad_request_violation(field, description),
    )
}

/// RESOURCE_EXHAUSTED saying when to try again, in the message and in the
/// `retry-after` metadata (seconds), which clients such as `inpaint batch`
/// read.
pub fn resource_exhausted(reason: impl std::fmt::Display, retry_after_secs: u64) -> Status {
    with_retry_after(Code::ResourceExhausted, reason, retry_after_secs)
}

/// UNAVAILABLE saying when to try again, in the message and in the
/// `retry-after` metadata (seconds), as `resource_exhausted` does.
pub fn unavailable(reason: impl std::fmt::Display, retry_after_secs: u64) -> Status {
    with_retry_after(Code::Unavailable, reason, retry_after_secs)
}

fn with_retry_after(code: Code, reason: impl std::fmt::Display, secs: u64) -> Status {
    let mut status = Status::new(code, format!("{reason}; retry after {secs}s"));
    status.metadata_mut().insert("retry-after", secs.into());
    status
}

/// The field named in an INVALID_ARGUMENT's details, if any.
pub fn violated_field(status: &Status) -> Option<String> {
    let details = status.get_error_details();
    let bad = details.bad_request()?;
    bad.field_violations.first().map(|v| v.field.clone())
}

/// A downstream service failed: keep its code (so INVALID_ARGUMENT stays one)
/// and say which stage it was.
pub fn from_stage(stage: &str, status: Status) -> Status {
    match status.code() {
        Code::InvalidArgument
        | Code::ResourceExhausted
        | Code::NotFound
        | Code::FailedPrecondition => status,
        code => Status::new(
            if code == Code::Unavailable {
                Code::Unavailable
            } else {
                Code::Internal
            },
            format!("{stage} stage failed: {}", status.message()),
        ),
    }
}
