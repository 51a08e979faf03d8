//! Turning `redis` errors into process-lock's typed errors.

use lock_core::{Error, ErrorKind};
use redis::RedisError;

/// Maps a `redis` error from `op` against `target` (a URL without its password).
pub(crate) fn from_redis(err: RedisError, op: &str, target: &str) -> Error {
    let kind = if err.code() == Some("WRONGTYPE") {
        ErrorKind::WrongType
    } else if err.is_timeout() {
        ErrorKind::Timeout
    } else if err.is_io_error() || err.is_connection_dropped() || err.is_connection_refusal() {
        ErrorKind::Connection
    } else {
        match err.kind() {
            redis::ErrorKind::InvalidClientConfig | redis::ErrorKind::AuthenticationFailed => {
                ErrorKind::Config
            }
            redis::ErrorKind::Parse | redis::ErrorKind::UnexpectedReturnType => {
                ErrorKind::UnexpectedReply
            }
            _ => ErrorKind::Backend,
        }
    };
    let message = match kind {
        ErrorKind::WrongType => {
            format!("{op} on {target}: the key exists but holds another Redis type, not a lock")
        }
        _ => format!("{op} on {target}"),
    };
    Error::new(kind, message).with_source(err)
}
