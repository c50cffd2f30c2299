//! What can go wrong, and the exit code each outcome maps to (SPEC §15).

use std::fmt;

/// The classes of failure the exit code tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 1: an operation failed (a refused request, a digest mismatch, I/O).
    Failed,
    /// 2: the command line or a local input is wrong.
    Usage,
    /// 3: an artifact, version or link does not exist (or is another org's).
    NotFound,
    /// 4: no, invalid or insufficient credentials (401/403).
    Auth,
    /// 130: interrupted (Ctrl-C); partial downloads stay resumable.
    Interrupted,
}

impl Kind {
    pub fn code(self) -> u8 {
        match self {
            Kind::Failed => 1,
            Kind::Usage => 2,
            Kind::NotFound => 3,
            Kind::Auth => 4,
            Kind::Interrupted => 130,
        }
    }
}

/// A failure with the message a person reads (never a backtrace).
#[derive(Debug, Clone)]
pub struct CliError {
    pub kind: Kind,
    pub message: String,
    /// Worth another attempt (429, 5xx, a broken connection).
    pub retryable: bool,
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

impl CliError {
    fn new(kind: Kind, message: impl Into<String>) -> Self {
        CliError {
            kind,
            message: message.into(),
            retryable: false,
        }
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(Kind::Failed, message)
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Kind::Usage, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Kind::NotFound, message)
    }

    pub fn auth(message: impl Into<String>) -> Self {
        Self::new(Kind::Auth, message)
    }

    /// A failure another attempt may cure.
    pub fn transient(message: impl Into<String>) -> Self {
        CliError {
            retryable: true,
            ..Self::failed(message)
        }
    }

    /// The same failure with what it concerns in front.
    pub fn context(mut self, what: &str) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::failed(e.to_string())
    }
}

pub type Result<T, E = CliError> = std::result::Result<T, E>;

/// The exit code of a run whose operations ended in `failures`: 0 when
/// none failed, their common code when they agree, else 1.
pub fn exit_code(failures: &[Kind]) -> u8 {
    match failures.split_first() {
        None => 0,
        Some((first, rest)) if rest.iter().all(|k| k == first) => first.code(),
        Some(_) => Kind::Failed.code(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(exit_code(&[]), 0);
        assert_eq!(exit_code(&[Kind::NotFound]), 3);
        assert_eq!(exit_code(&[Kind::Auth, Kind::Auth]), 4);
        assert_eq!(exit_code(&[Kind::NotFound, Kind::Auth]), 1);
        assert_eq!(Kind::Interrupted.code(), 130);
        assert_eq!(Kind::Usage.code(), 2);
    }
}
