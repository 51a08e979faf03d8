//! Turning `redis` errors into process-lock's typed errors.

use std::time::Duration;

use lock_core::{Error, ErrorKind};
use redis::RedisError;

/// Maps a `redis` error from `op` against `target` (a URL without its password).
pub(crate) fn from_redis(err: RedisError, op: &str, target: &str) -> Error {
    let kind = match err.code().and_then(lock_core::redis::server_error_kind) {
        Some(kind) => kind,
        None if err.is_timeout() => ErrorKind::Timeout,
        None if err.is_io_error() || err.is_connection_dropped() || err.is_connection_refusal() => {
            ErrorKind::Connection
        }
        None => match err.kind() {
            redis::ErrorKind::InvalidClientConfig | redis::ErrorKind::AuthenticationFailed => {
                ErrorKind::Config
            }
            redis::ErrorKind::Parse | redis::ErrorKind::UnexpectedReturnType => {
                ErrorKind::UnexpectedReply
            }
            _ => ErrorKind::Backend,
        },
    };
    // The response timeout is not known here; a timeout's message is the backend's own.
    let message = match kind {
        ErrorKind::Timeout => format!("{op} on {target}"),
        kind => lock_core::redis::error_message(kind, &format!("{op} on {target}"), Duration::ZERO),
    };
    Error::new(kind, message).with_source(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error a server's `reply` (one RESP error line) gives.
    fn server_error(reply: &str) -> RedisError {
        redis::parse_redis_value(reply.as_bytes())
            .and_then(redis::Value::extract_error)
            .unwrap_err()
    }

    #[test]
    fn server_errors_have_their_kinds() {
        let cases = [
            (
                "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
                ErrorKind::WrongType,
            ),
            (
                "-NOPERM User u has no permissions to run the 'evalsha' command\r\n",
                ErrorKind::PermissionDenied,
            ),
            (
                "-WRONGPASS invalid username-password pair or user is disabled.\r\n",
                ErrorKind::Config,
            ),
            ("-NOAUTH Authentication required.\r\n", ErrorKind::Config),
            (
                "-TRYAGAIN Multiple keys request during rehashing of slot\r\n",
                ErrorKind::Connection,
            ),
            (
                "-CLUSTERDOWN Hash slot not served\r\n",
                ErrorKind::Connection,
            ),
            ("-ERR something else\r\n", ErrorKind::Backend),
        ];
        for (reply, kind) in cases {
            let err = from_redis(server_error(reply), "acquire", "redis://h:1/");
            assert_eq!(err.kind(), kind, "{reply}: {err}");
        }
    }

    #[test]
    fn a_permission_error_names_the_operation_and_the_user() {
        let refusal =
            server_error("-NOPERM User u has no permissions to run the 'evalsha' command\r\n");
        let (why, context) = (refusal.to_string(), "acquire on redis://h:1/");
        let err = from_redis(refusal, "acquire", "redis://h:1/");
        // What to do (from lock-core), then the server's words, which name the command.
        let advice = lock_core::redis::error_message(err.kind(), context, Duration::ZERO);
        assert_eq!(
            err.to_string(),
            format!("permission denied: {advice}: {why}")
        );
        assert!(why.contains("evalsha"), "{why}");
    }
}
