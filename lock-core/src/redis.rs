//! What every Redis client backend shares, besides the [scripts](crate::scripts): the
//! environment variable and defaults, key naming, the mapping of server errors to
//! [`ErrorKind`]s with their messages, and the check that a `rediss://` server speaks TLS.
//!
//! A client backend (`lock-redis-rs`, `lock-fred`) keeps only its transport: connecting, running
//! a script, subscribing. For backend authors; users meet these through the backends' builders.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};
use crate::name::LockName;

/// The environment variable `process-lock-node` reads the server's URL from.
pub const REDIS_URL_ENV: &str = "REDIS_URL";

/// Default time to establish a connection, all attempts together: 2 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Default time for one operation, waiting for a reconnection included: 2 s.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Default connection attempts after the first fails: 3, with exponential backoff.
pub const DEFAULT_RECONNECT_ATTEMPTS: usize = 3;

/// The server's URL from [`REDIS_URL_ENV`], as `process-lock-node` reads it.
///
/// # Errors
///
/// [`ErrorKind::Config`] if the variable is unset or not valid UTF-8.
pub fn url_from_env() -> Result<String> {
    url_from(std::env::var(REDIS_URL_ENV))
}

fn url_from(var: std::result::Result<String, std::env::VarError>) -> Result<String> {
    var.map_err(|e| {
        Error::new(
            ErrorKind::Config,
            format!("{REDIS_URL_ENV} must name the Redis server, e.g. redis://127.0.0.1:6379/"),
        )
        .with_source(e)
    })
}

/// The key of the lock `name` under `prefix`: `prefix + name`, as `process-lock-node` names it
/// (with no prefix).
///
/// # Examples
///
/// ```
/// use lock_core::LockName;
/// use lock_core::redis::key;
///
/// assert_eq!(key("app:", &LockName::new("jobs")?), "app:jobs");
/// # Ok::<(), lock_core::Error>(())
/// ```
pub fn key(prefix: &str, name: &LockName) -> String {
    let mut key = String::with_capacity(prefix.len() + name.as_str().len());
    key.push_str(prefix);
    key.push_str(name.as_str());
    key
}

/// Whether `url` asks for TLS (`rediss://`, `valkeys://`, any letter case).
pub fn wants_tls(url: &str) -> bool {
    let scheme = url.split("://").next().unwrap_or_default();
    ["rediss", "valkeys"]
        .iter()
        .any(|tls| scheme.eq_ignore_ascii_case(tls))
}

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
/// assert_eq!(server_error_kind("ERR"), None);
/// ```
pub fn server_error_kind(code: &str) -> Option<ErrorKind> {
    match code {
        "WRONGTYPE" => Some(ErrorKind::WrongType),
        // The ACL of the connection's user refuses the command, key or channel.
        "NOPERM" => Some(ErrorKind::PermissionDenied),
        // Credentials refused (or missing): a configuration error, not something to retry.
        "WRONGPASS" | "NOAUTH" => Some(ErrorKind::Config),
        _ => None,
    }
}

/// The message of an error of `kind` met while `context` (`"acquire on redis://host/"`, the
/// URL without its password), saying what to do where the kind tells; `within` is the time
/// allowed, for timeouts.
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
pub fn unexpected(op: &str, what: impl fmt::Debug) -> Error {
    Error::new(
        ErrorKind::UnexpectedReply,
        format!("{op}: Redis answered {what:?}"),
    )
}

/// How long a TLS handshake goes unanswered before [`unless_plain_text`] asks the server, in
/// plain text, whether it speaks it.
pub const PLAIN_TEXT_PROBE_DELAY: Duration = Duration::from_millis(200);

/// Runs `connecting`, a connection being made with TLS to `tls` (host and port; nothing to
/// check without one), but fails with [`ErrorKind::Config`] instead if the server speaks plain
/// text: as soon as the handshake has gone unanswered for [`PLAIN_TEXT_PROBE_DELAY`], or when it
/// failed at once with a connection error.
///
/// A plain-text Redis server does not answer a TLS ClientHello (it waits for the end of a line:
/// the handshake would wait out the connect timeout), or answers it with an error (if it holds
/// a newline byte), which fails the handshake as if the network had. A second connection that
/// sends `PING` tells: a plain-text server answers it with a RESP line (`+PONG`, or an error such
/// as `-NOAUTH`), a TLS server with an alert, or not at all.
///
/// # Errors
///
/// `connecting`'s, or [`ErrorKind::Config`] for a server that speaks plain text.
///
/// # Cancel safety
///
/// Safe: dropping it drops `connecting` and the probe's connection.
pub async fn unless_plain_text<T>(
    tls: Option<(String, u16)>,
    target: &str,
    connecting: impl Future<Output = Result<T>>,
) -> Result<T> {
    let Some((host, port)) = tls else {
        return connecting.await;
    };
    let plain_text = || {
        Error::new(
            ErrorKind::Config,
            format!("the server at {target} speaks plain text, not TLS: use redis://"),
        )
    };
    let probe = async {
        tokio::time::sleep(PLAIN_TEXT_PROBE_DELAY).await;
        if speaks_plain_text(&host, port).await {
            plain_text()
        } else {
            std::future::pending().await
        }
    };
    let outcome = tokio::select! {
        biased;
        outcome = connecting => outcome,
        plain = probe => return Err(plain),
    };
    match outcome {
        Err(e) if e.kind() == ErrorKind::Connection && speaks_plain_text(&host, port).await => {
            Err(plain_text().with_source(e))
        }
        outcome => outcome,
    }
}

/// Whether the server at `host:port` answers `PING\r\n`, sent in plain text, with a RESP line
/// (`+...` or `-...`), within half a second.
async fn speaks_plain_text(host: &str, port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let asked = async {
        let mut stream = tokio::net::TcpStream::connect((host, port)).await.ok()?;
        stream.write_all(b"PING\r\n").await.ok()?;
        let mut reply = Vec::new();
        let mut chunk = [0; 64];
        while reply.len() < 512 {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            reply.extend_from_slice(&chunk[..n]);
            if !matches!(reply.first(), Some(b'+' | b'-')) {
                return Some(false);
            }
            if let Some(end) = reply.windows(2).position(|pair| pair == b"\r\n") {
                return Some(reply[1..end].iter().all(|b| (b' '..=b'~').contains(b)));
            }
        }
        Some(false)
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(500), asked).await,
        Ok(Some(true))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_redis_url_is_a_config_error() {
        let err = url_from(Err(std::env::VarError::NotPresent)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("REDIS_URL"), "{err}");
    }

    #[test]
    fn tls_schemes() {
        for url in ["rediss://h/", "REDISS://h", "valkeys://h:1"] {
            assert!(wants_tls(url), "{url}");
        }
        for url in ["redis://h/", "unix:///tmp/s", "h:6379"] {
            assert!(!wants_tls(url), "{url}");
        }
    }

    #[test]
    fn messages_say_what_to_do() {
        let context = "acquire on redis://h/";
        let denied = error_message(ErrorKind::PermissionDenied, context, Duration::ZERO);
        assert!(denied.contains("ACL"), "{denied}");
        let late = error_message(ErrorKind::Timeout, context, Duration::from_secs(2));
        assert_eq!(late, "acquire on redis://h/: no answer within 2s");
    }
}
