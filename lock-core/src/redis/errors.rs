//! Errors as every Redis backend reports them: the kinds of the server's error replies whose
//! meaning does not depend on the client, the messages that say what to do, and the errors of
//! an answer that makes no sense or did not come in time.

use std::fmt;
use std::time::Duration;

use crate::error::{Error, ErrorKind};

/// The kind of a server's error reply with this `code` (its first word), for the codes whose
/// meaning does not depend on the client: `None` for the others, which the client's own
/// classification decides.
///
/// # Examples
///
/// ```
/// use lock_core::ErrorKind;
/// use lock_core::redis::server_error_kind;
///
/// assert_eq!(server_error_kind("NOPERM"), Some(ErrorKind::PermissionDenied));
/// assert_eq!(server_error_kind("TRYAGAIN"), Some(ErrorKind::Connection));
/// assert_eq!(server_error_kind("ERR"), None);
/// ```
pub fn server_error_kind(code: &str) -> Option<ErrorKind> {
    match code {
        "WRONGTYPE" => Some(ErrorKind::WrongType),
        // The ACL of the connection's user refuses the command, key or channel.
        "NOPERM" => Some(ErrorKind::PermissionDenied),
        // Credentials refused (or missing): a configuration error, not something to retry.
        "WRONGPASS" | "NOAUTH" => Some(ErrorKind::Config),
        // The node cannot serve the command now, and did not run it: the keys of a script are
        // split between two nodes in a slot migration (`TRYAGAIN`), the cluster has slots
        // without a node (`CLUSTERDOWN`), the server is loading its data (`LOADING`) or is a
        // replica cut off from its primary (`MASTERDOWN`). Sent again (it is a Connection
        // error, which is retried) it runs once the node can serve it. fred passes these
        // replies on; redis-rs's cluster client retries some of them itself.
        "TRYAGAIN" | "CLUSTERDOWN" | "LOADING" | "MASTERDOWN" => Some(ErrorKind::Connection),
        _ => None,
    }
}

/// The message of an error of `kind` met while `context` (`"acquire on redis://host/"`, the
/// URL without its password), saying what to do where the kind tells; `within` is the time
/// allowed, for timeouts.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use lock_core::ErrorKind;
/// use lock_core::redis::error_message;
///
/// let message = error_message(ErrorKind::Timeout, "release on redis://cache:6379", Duration::from_secs(2));
/// assert!(message.contains("release on redis://cache:6379"));
/// ```
pub fn error_message(kind: ErrorKind, context: &str, within: Duration) -> String {
    match kind {
        ErrorKind::WrongType => {
            format!("{context}: the key exists but holds another Redis type, not a lock")
        }
        ErrorKind::PermissionDenied => format!(
            "{context}: the Redis user lacks the permission (NOPERM); allow the command, key or \
             channel in the user's ACL"
        ),
        ErrorKind::Timeout => format!("{context}: no answer within {within:?}"),
        _ => context.to_owned(),
    }
}

/// The error of a reply to `op` that makes no sense.
///
/// # Examples
///
/// ```
/// use lock_core::ErrorKind;
/// use lock_core::redis::unexpected;
///
/// assert_eq!(unexpected("renew", "a string").kind(), ErrorKind::UnexpectedReply);
/// ```
pub fn unexpected(op: &str, what: impl fmt::Debug) -> Error {
    Error::new(
        ErrorKind::UnexpectedReply,
        format!("{op}: Redis answered {what:?}"),
    )
}

/// The error of an operation (`context`: `"acquire on redis://host/"`) still unanswered after
/// `within`: [`ErrorKind::Timeout`] ("no answer") if the connection was up, or
/// [`ErrorKind::Connection`] ("no connection") if the request was waiting for a reconnection.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use lock_core::ErrorKind;
/// use lock_core::redis::no_reply;
///
/// let err = no_reply("renew on redis://cache", Duration::from_secs(2), true);
/// assert_eq!(err.kind(), ErrorKind::Timeout);
/// ```
pub fn no_reply(context: &str, within: Duration, connected: bool) -> Error {
    let (kind, missing) = if connected {
        (ErrorKind::Timeout, "no answer")
    } else {
        (ErrorKind::Connection, "no connection")
    };
    Error::new(kind, format!("{context}: {missing} within {within:?}"))
}

/// The error of a connection (`context`: `"connecting to redis://host/"`) not established
/// within `within`: [`ErrorKind::Timeout`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use lock_core::redis::no_connection;
///
/// let err = no_connection("renew on redis://cache", Duration::from_secs(2));
/// assert!(err.is_retryable());
/// ```
pub fn no_connection(context: &str, within: Duration) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!("{context}: no connection within {within:?}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_to_do() {
        let context = "acquire on redis://h/";
        let denied = error_message(ErrorKind::PermissionDenied, context, Duration::ZERO);
        assert!(denied.contains("ACL"), "{denied}");
        let late = error_message(ErrorKind::Timeout, context, Duration::from_secs(2));
        assert_eq!(late, "acquire on redis://h/: no answer within 2s");
    }
}
