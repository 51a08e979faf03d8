//! TLS, as every client backend checks it: a `rediss://` server that speaks plain text is told
//! apart from a slow or unreachable one within a fraction of a second, as a configuration
//! error, instead of a handshake that waits out the connect timeout.

use std::future::Future;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};

/// How long a TLS handshake goes unanswered before [`unless_plain_text`] asks the server, in
/// plain text, whether it speaks it.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use lock_core::redis::PLAIN_TEXT_PROBE_DELAY;
///
/// assert!(PLAIN_TEXT_PROBE_DELAY < Duration::from_secs(1));
/// ```
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
///
/// # Examples
///
/// ```
/// use lock_core::redis::unless_plain_text;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> lock_core::Result<()> {
/// // Without TLS there is nothing to probe: the connection is made as it is.
/// let connected = unless_plain_text(None, "redis://cache", async { Ok(42) }).await?;
/// assert_eq!(connected, 42);
/// # Ok(()) }
/// ```
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
