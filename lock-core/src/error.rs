//! The one error type of process-lock, shared by every backend.
//!
//! Expected outcomes ("held by someone else", "not the owner", "did not exist") are values, never
//! errors; an [`Error`] means the question could not be answered: bad input, a store that cannot
//! be reached or answers late, or a reply that makes no sense.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;

/// A `Result` whose error is this crate's [`Error`].
///
/// # Examples
///
/// ```
/// fn parse_name(name: &str) -> lock_core::Result<lock_core::LockName> {
///     lock_core::LockName::new(name)
/// }
/// assert!(parse_name("").is_err());
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, for callers to match on.
///
/// # Examples
///
/// ```
/// use lock_core::{ErrorKind, Ttl};
///
/// let err = Ttl::from_secs(0).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::InvalidInput);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The caller passed a value that can never work: an empty or over-long lock name, a zero
    /// or over-large timeout. Nothing was sent to the store.
    InvalidInput,
    /// The backend's configuration is wrong: a malformed URL, a missing `REDIS_URL`, an unknown
    /// scheme. Nothing was sent to the store.
    Config,
    /// The store could not be reached, or the connection broke mid-request, or the store said it
    /// cannot serve the request now (for Redis: `TRYAGAIN` in a slot migration, `CLUSTERDOWN`,
    /// `LOADING`, `MASTERDOWN`). The operation may or may not have been applied; it is retried.
    Connection,
    /// The store did not answer within the configured time. The operation may or may not have
    /// been applied.
    Timeout,
    /// The key holding the lock exists but is not a lock (for Redis: another data type,
    /// `WRONGTYPE`). Someone else uses the same key for something else.
    WrongType,
    /// The store refused the command for this user (for Redis: an ACL without the right to run
    /// `EVALSHA`, `SUBSCRIBE` or another command the operation needs, `NOPERM`). Nothing was
    /// changed; fix the user's permissions.
    PermissionDenied,
    /// The store answered something this library does not understand.
    UnexpectedReply,
    /// The backend does not offer the requested primitive (see `Capabilities`).
    Unsupported,
    /// Any other error reported by the store or its client.
    Backend,
    /// The lock was taken or renewed on the Redis primary, but fewer replicas than asked
    /// acknowledged it in time (`WAIT`, with
    /// [`ReplicaAck`](crate::redis::ReplicaAck)): a failover now could lose it. A lock just
    /// taken was released again; a renewal counts as failed.
    NotReplicated,
    /// The lock was lost while work ran under it ([`Lock::with_lock`](crate::Lock::with_lock)):
    /// its validity ran out with no renewal confirmed, or another owner took it. The
    /// [`Lost`](crate::Lost) is the [`source`](StdError::source).
    LockLost,
}

impl ErrorKind {
    fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Config => "configuration error",
            ErrorKind::Connection => "connection error",
            ErrorKind::Timeout => "timed out",
            ErrorKind::WrongType => "wrong type",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::UnexpectedReply => "unexpected reply",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Backend => "backend error",
            ErrorKind::LockLost => "lock lost",
            ErrorKind::NotReplicated => "not replicated",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of every process-lock operation: a [`kind`](Error::kind) to match on, a message for
/// people, and the underlying error as [`source`](StdError::source) when there is one.
///
/// Messages never contain a password: backends strip credentials before building one.
///
/// # Examples
///
/// ```
/// use lock_core::{Error, ErrorKind};
///
/// let err = Error::new(ErrorKind::InvalidInput, "lock name is empty");
/// assert_eq!(err.kind(), ErrorKind::InvalidInput);
/// assert!(!err.is_retryable());
/// assert_eq!(err.to_string(), "invalid input: lock name is empty");
/// ```
pub struct Error {
    kind: ErrorKind,
    message: Cow<'static, str>,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl Error {
    /// An error of `kind` with a message for people.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::{Error, ErrorKind};
    ///
    /// let err = Error::new(ErrorKind::Config, "REDIS_URL is not set");
    /// assert_eq!(err.message(), "REDIS_URL is not set");
    /// ```
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying error, kept as [`source`](StdError::source).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::error::Error as _;
    /// use lock_core::{Error, ErrorKind};
    ///
    /// let io = std::io::Error::other("connection reset");
    /// let err = Error::new(ErrorKind::Connection, "release failed").with_source(io);
    /// assert_eq!(err.source().unwrap().to_string(), "connection reset");
    /// ```
    #[must_use]
    pub fn with_source(mut self, source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// What went wrong.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::{ErrorKind, LockName};
    ///
    /// assert_eq!(LockName::new("").unwrap_err().kind(), ErrorKind::InvalidInput);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the kind or the source.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::{Error, ErrorKind};
    ///
    /// assert_eq!(Error::new(ErrorKind::Timeout, "no answer").message(), "no answer");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether trying the same operation again may succeed: true for connection errors and
    /// timeouts, false for bad input, configuration and replies that make no sense.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::{Error, ErrorKind};
    ///
    /// assert!(Error::new(ErrorKind::Timeout, "no answer").is_retryable());
    /// assert!(!Error::new(ErrorKind::InvalidInput, "empty name").is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, ErrorKind::Connection | ErrorKind::Timeout)
    }

    pub(crate) fn invalid_input(message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(ErrorKind::InvalidInput, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// `url` with its password replaced by `***`, for error messages, logs and `Debug` output of
/// backends that connect by URL. Text that does not parse as a URL is not shown at all, since it
/// may be a password typed in the wrong place.
///
/// # Examples
///
/// ```
/// assert_eq!(
///     lock_core::redact_url("redis://app:hunter2@cache:6379/0"),
///     "redis://app:***@cache:6379/0"
/// );
/// ```
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                // Only fails for URLs that cannot have credentials, which this one has.
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "<unparsable URL>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("redis://user:hunter2@example.com:6380/2"),
            "redis://user:***@example.com:6380/2"
        );
        assert_eq!(redact_url("redis://:hunter2@h/"), "redis://:***@h/");
        assert_eq!(redact_url("redis://h:1/"), "redis://h:1/");
        assert_eq!(redact_url("hunter2"), "<unparsable URL>");
    }

    #[test]
    fn display_includes_kind_message_and_source() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let err =
            Error::new(ErrorKind::Connection, "cannot reach redis at 127.0.0.1:1").with_source(io);
        assert_eq!(
            err.to_string(),
            "connection error: cannot reach redis at 127.0.0.1:1: refused"
        );
        assert!(err.is_retryable());
        assert!(StdError::source(&err).is_some());
    }
}
