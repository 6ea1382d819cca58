//! Gateway errors, mapped to gRPC status in one place.

use inpaint_common::status::{
    InvalidField, from_stage, resource_exhausted, unavailable, violated_field,
};
use tonic::Status;

/// When to try again after the job store failed to answer (it reconnects
/// with backoff; health says when it is back).
const STORE_RETRY_AFTER_SECS: u64 = 2;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Invalid(#[from] InvalidField),
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
    /// The call is understood but the thing it asks about is not in a
    /// state to answer (a job's result before the job succeeded).
    #[error("{0}")]
    NotReady(String),
    /// Something this gateway itself stored or computed is wrong.
    #[error("{0}")]
    Internal(String),
    #[error("{0}")]
    Unauthenticated(String),
}

impl Error {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid(InvalidField::new(field, reason))
    }

    /// A stage's answer as an error. When the connection itself broke
    /// mid-call (the stage's process died: tonic reports INTERNAL or
    /// UNKNOWN with the transport's error underneath, where a status the
    /// stage sent has none), it is UNAVAILABLE, as an unreachable stage is:
    /// stage calls are idempotent, so a job runs again (on another replica)
    /// rather than failing.
    pub fn stage(stage: &'static str, status: Status) -> Self {
        let broken = matches!(status.code(), tonic::Code::Internal | tonic::Code::Unknown)
            && std::error::Error::source(&status).is_some();
        let status = if broken {
            Status::unavailable(format!(
                "the connection broke mid-call: {}",
                status.message()
            ))
        } else {
            status
        };
        Self::Stage { stage, status }
    }

    /// A stage answered something that breaks the contract (a box outside
    /// the image, a result missing).
    pub fn stage_fault(stage: &'static str, what: impl Into<String>) -> Self {
        Self::Stage {
            stage,
            status: Status::internal(what.into()),
        }
    }

    /// A stage that gave no answer in time.
    pub fn stage_unavailable(stage: &'static str, why: impl Into<String>) -> Self {
        Self::Stage {
            stage,
            status: Status::unavailable(why.into()),
        }
    }

    /// The same error with its field named within `outer` (a request
    /// nested in another: `params.radius` becomes `request.params.radius`).
    pub fn within(self, outer: &str) -> Self {
        match self {
            Error::Invalid(e) => Error::Invalid(e.within(outer)),
            other => other,
        }
    }

    /// A stage's INVALID_ARGUMENT on one of its own fields, renamed to the
    /// public field `rename` gives for it (None leaves the error as it is).
    pub fn rename_stage_field(self, rename: impl FnOnce(&str) -> Option<String>) -> Self {
        let Error::Stage { stage, status } = self else {
            return self;
        };
        let field = (status.code() == tonic::Code::InvalidArgument)
            .then(|| violated_field(&status))
            .flatten();
        match field.and_then(|f| rename(&f).map(|public| (public, f))) {
            Some((public, field)) => {
                let reason = status
                    .message()
                    .strip_prefix(&format!("{field}: "))
                    .unwrap_or(status.message());
                Error::invalid(public, reason)
            }
            None => Error::Stage { stage, status },
        }
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        match err {
            Error::Invalid(e) => e.into(),
            Error::Stage { stage, status } => from_stage(stage, status),
            Error::Encode(_) => Status::internal(err.to_string()),
            Error::Cancelled => Status::cancelled(err.to_string()),
            Error::Store(_) => unavailable(err, STORE_RETRY_AFTER_SECS),
            Error::NotFound(_) => Status::not_found(err.to_string()),
            Error::NotReady(_) => Status::failed_precondition(err.to_string()),
            Error::Internal(_) => Status::internal(err.to_string()),
            Error::Unauthenticated(_) => Status::unauthenticated(err.to_string()),
            Error::Busy {
                reason,
                retry_after_secs,
            } => resource_exhausted(reason, retry_after_secs),
        }
    }
}
