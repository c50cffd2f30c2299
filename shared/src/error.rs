//! The one error type of the store. [`crate::http::problem`] is the single
//! place that turns it into a status code and an RFC 9457 body.

/// Everything an operation can fail with, by what the caller should learn.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The resource does not exist — or belongs to another org, which must
    /// look exactly the same.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request is malformed; `field` names the offending input.
    #[error("invalid {field}: {reason}")]
    BadRequest { field: &'static str, reason: String },
    /// A compare-and-set precondition (`If-Match` on upload) failed.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A new artifact's path would clash, on some common file system, with
    /// `existing`, a path or directory its workflow already holds (SPEC §3).
    /// Final: retrying cannot help.
    #[error("path clash: {detail}")]
    PathClash { existing: String, detail: String },
    /// A conditional request header did not match (`If-Match`, `If-None-Match: *`).
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    /// The body exceeds what the route accepts.
    #[error("body too large: {size} bytes exceeds {limit}")]
    TooLarge { size: u64, limit: u64 },
    /// The `Range` cannot be satisfied for a representation of `size` bytes.
    #[error("range not satisfiable")]
    RangeNotSatisfiable { size: u64 },
    /// The path is served, but not with this method; `allow` lists the
    /// methods it answers (the `Allow` header).
    #[error("method not allowed; allowed: {allow}")]
    MethodNotAllowed { allow: String },
    /// No or invalid credentials.
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// Authenticated, but the scope is missing.
    #[error("forbidden: missing scope {0}")]
    Forbidden(&'static str),
    /// The resource existed but is no longer available (expired link).
    #[error("gone: {0}")]
    Gone(&'static str),
    /// The artifact is past its `expiresAt` (SPEC §12): 410 `expired` to its
    /// own org (other orgs never reach it and get the plain 404).
    #[error("artifact expired")]
    Expired,
    /// A legal hold forbids the change (SPEC §12): 409 naming the hold.
    #[error("held: {reason}")]
    Held { reason: String },
    /// Too many requests for one resource; try again after `retry_after` seconds.
    #[error("rate limited: retry after {retry_after} s")]
    RateLimited { retry_after: u64 },
    /// Stored content failed authentication or does not match its metadata.
    #[error("integrity failure: {0}")]
    Integrity(String),
    /// A dependency (DynamoDB, S3, KMS) failed.
    #[error("{service} error: {message}")]
    Upstream {
        service: &'static str,
        message: String,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn bad_request(field: &'static str, reason: impl Into<String>) -> Self {
        Error::BadRequest {
            field,
            reason: reason.into(),
        }
    }

    /// Wrap an SDK error, keeping the full (debug) detail for the log only.
    pub fn upstream(service: &'static str, err: impl std::fmt::Debug) -> Self {
        Error::Upstream {
            service,
            message: format!("{err:?}"),
        }
    }

    /// Whether retrying the same operation later could succeed (for event-driven
    /// callers such as ingest). Client errors and integrity failures never will.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Upstream { .. } | Error::Conflict(_))
    }
}

impl From<crate::crypto::CryptoError> for Error {
    fn from(err: crate::crypto::CryptoError) -> Self {
        Error::Integrity(err.to_string())
    }
}
