//! Turning `fred` errors into process-lock's typed errors.

use std::time::Duration;

use fred::error::{Error as FredError, ErrorKind as FredKind};
use lock_core::{Error, ErrorKind};

/// How fred words the connection failures it reports as `Unknown` (or `Routing`).
const CONNECTION_LOST: &[&str] = &[
    "Failed to route command",
    "Unable to route command or reconnect",
    "Too many failed write attempts",
    "Max attempts",
    "Missing expected connection",
    "Client is not initialized",
    "Failed to send command to router",
    "channel closed",
];

/// The process-lock kind of a `fred` error, the same as the `redis-rs` backend gives for the same
/// failure.
///
/// fred has no kinds of its own for some server errors (`WRONGTYPE` is `InvalidArgument`, like a
/// bad argument, and `NOPERM` is `Unknown`; `WRONGPASS` and `NOAUTH` are `Auth`) and reports a
/// few connection failures as `Unknown`, so those are told apart by their text.
pub(crate) fn kind_of(err: &FredError) -> ErrorKind {
    let details = err.details();
    let code = details.split(' ').next().unwrap_or_default();
    if let Some(kind) = lock_core::redis::server_error_kind(code) {
        return kind;
    }
    match err.kind() {
        FredKind::Timeout => ErrorKind::Timeout,
        FredKind::IO | FredKind::Canceled => ErrorKind::Connection,
        #[cfg(feature = "tls")]
        FredKind::Tls => ErrorKind::Connection,
        FredKind::Config | FredKind::Url | FredKind::Auth => ErrorKind::Config,
        FredKind::Parse | FredKind::Protocol => ErrorKind::UnexpectedReply,
        // No connection to send the command on (between a disconnection and the reconnection,
        // or its one attempt was spent on a connection that broke), or the connection task is
        // gone (the channel to it closed).
        FredKind::Unknown | FredKind::Routing
            if CONNECTION_LOST.iter().any(|m| details.starts_with(m)) =>
        {
            ErrorKind::Connection
        }
        _ => ErrorKind::Backend,
    }
}

/// Maps a `fred` error met while `context` (e.g. `"acquire on redis://host:6379/"`, with the
/// URL already redacted); `within` is the time allowed, for timeouts.
pub(crate) fn from_fred(err: FredError, context: &str, within: Duration) -> Error {
    let kind = kind_of(&err);
    let message = lock_core::redis::error_message(kind, context, within);
    Error::new(kind, message).with_source(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_match_the_redis_rs_backend() {
        let cases = [
            (
                FredError::new(
                    FredKind::InvalidArgument,
                    "WRONGTYPE Operation against a key holding the wrong kind of value",
                ),
                ErrorKind::WrongType,
            ),
            (
                FredError::new(FredKind::Timeout, "Request timed out."),
                ErrorKind::Timeout,
            ),
            (
                FredError::new(FredKind::IO, "Connection closed."),
                ErrorKind::Connection,
            ),
            (
                FredError::new(FredKind::Canceled, "Max reconnection attempts reached."),
                ErrorKind::Connection,
            ),
            (
                FredError::new(FredKind::Unknown, "channel closed"),
                ErrorKind::Connection,
            ),
            (
                FredError::new(FredKind::Unknown, "Failed to route command."),
                ErrorKind::Connection,
            ),
            (
                FredError::new(FredKind::Auth, "WRONGPASS invalid username-password pair"),
                ErrorKind::Config,
            ),
            (
                FredError::new(FredKind::Auth, "NOAUTH Authentication required."),
                ErrorKind::Config,
            ),
            (
                FredError::new(
                    FredKind::Unknown,
                    "NOPERM User u has no permissions to run the 'evalsha' command",
                ),
                ErrorKind::PermissionDenied,
            ),
            (
                FredError::new(
                    FredKind::Unknown,
                    "NOPERM User u has no permissions to access the 'c' channel",
                ),
                ErrorKind::PermissionDenied,
            ),
            (
                FredError::new(FredKind::Url, "RelativeUrlWithoutBase"),
                ErrorKind::Config,
            ),
            (
                FredError::new(FredKind::Parse, "Could not convert to number."),
                ErrorKind::UnexpectedReply,
            ),
            (
                FredError::new(
                    FredKind::Unknown,
                    "TRYAGAIN Multiple keys request during rehashing of slot",
                ),
                ErrorKind::Connection,
            ),
            (
                FredError::new(FredKind::Cluster, "CLUSTERDOWN Hash slot not served"),
                ErrorKind::Connection,
            ),
            (
                FredError::new(
                    FredKind::Unknown,
                    "LOADING Redis is loading the dataset in memory",
                ),
                ErrorKind::Connection,
            ),
            (
                FredError::new(FredKind::Unknown, "ERR something else"),
                ErrorKind::Backend,
            ),
        ];
        for (err, kind) in cases {
            assert_eq!(kind_of(&err), kind, "{err}");
        }
    }

    #[test]
    fn wrong_type_and_timeout_messages() {
        let err = from_fred(
            FredError::new(FredKind::InvalidArgument, "WRONGTYPE Operation"),
            "acquire on redis://h:1/",
            Duration::from_secs(2),
        );
        assert!(err.to_string().contains("another Redis type"), "{err}");
        let err = from_fred(
            FredError::new(FredKind::Timeout, "Request timed out."),
            "status on redis://h:1/",
            Duration::from_secs(2),
        );
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert!(err.to_string().contains("no answer within 2s"), "{err}");
    }

    #[test]
    fn a_permission_error_names_the_operation_and_the_user() {
        let words = "NOPERM User u has no permissions to run the 'evalsha' command";
        let within = Duration::from_secs(2);
        let err = from_fred(
            FredError::new(FredKind::Unknown, words),
            "acquire on h",
            within,
        );
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
        // What to do (from lock-core), then fred's words for the server's, naming the command.
        let shown = err.to_string();
        let advice = lock_core::redis::error_message(err.kind(), "acquire on h", within);
        assert!(
            shown.starts_with(&format!("permission denied: {advice}: ")),
            "{shown}"
        );
        assert!(shown.ends_with(words), "{shown}");
    }
}
