//! Sending a request on a `fred` client within a deadline: each command sent once (never
//! replayed by fred), sent again only while fred has no connection to send it on (so it was
//! never written), and fred's errors and timeouts mapped to process-lock's.

use std::future::Future;
use std::time::Duration;

use fred::error::{Error as FredError, ErrorKind as FredKind};
use fred::prelude::{Client, ClientLike, ClientState, Options};
use lock_core::Result;
use tokio::time::Instant;

use crate::error::from_fred;

/// The options of each command of an operation that must end by `deadline`: timed out by fred
/// itself just before the deadline, so that a command still waiting to be written (during a
/// reconnection) is dropped instead of being sent late, and written at most
/// [`WRITE_ATTEMPTS`] times.
/// How many times fred may write one command: once, and again after a cluster redirection
/// (`MOVED`, then perhaps `ASK`), or after a broken connection while the caller still waits.
///
/// fred counts a redirection's write as an attempt, and follows an `ASK` only with an attempt
/// left: with none, its `ASKING` step fails ("Max attempts reached."), which ends its
/// connection task for good, and every request afterwards times out. That is what one attempt
/// did to a waiter whose lock's slot was migrating. A write again is never late: fred does not
/// write a command whose timeout (just before the caller's deadline) has passed, so it runs only
/// while its caller still waits, as the protocol's own resend does (every script may run twice).
pub(crate) const WRITE_ATTEMPTS: u32 = 3;

pub(crate) fn options(deadline: Instant) -> Options {
    let left = deadline
        .saturating_duration_since(Instant::now())
        .saturating_sub(Duration::from_millis(1))
        // fred reads a zero timeout as "none".
        .max(Duration::from_millis(1));
    Options {
        max_attempts: Some(WRITE_ATTEMPTS),
        timeout: Some(left),
        ..Options::default()
    }
}

/// Runs one request on `client` that must end by `deadline` (`within` from its start), mapping
/// errors; `op` and `target` name it in messages.
pub(crate) async fn bounded<T>(
    op: &str,
    target: &str,
    within: Duration,
    client: &Client,
    deadline: Instant,
    request: impl Future<Output = std::result::Result<T, FredError>>,
) -> Result<T> {
    let outcome = tokio::time::timeout_at(deadline, request).await.ok();
    settle(op, target, within, client, outcome)
}

/// As [`bounded`], without a timer of its own, for a request that fred bounds: each of its
/// commands sent with [`options`] for its deadline (fred times each out by then, 1 ms at the
/// least), and any other wait bounded by the deadline too (as [`routed`]'s are).
///
/// The hot path of every script: a timer per request, on top of fred's own, cost a wake-up of
/// the runtime's timer driver for most requests (a tenth of the uncontended rate, measured with
/// `benches/redis.rs`).
pub(crate) async fn timed_by_fred<T>(
    op: &str,
    target: &str,
    within: Duration,
    client: &Client,
    request: impl Future<Output = std::result::Result<T, FredError>>,
) -> Result<T> {
    let outcome = request.await;
    settle(op, target, within, client, Some(outcome))
}

/// Maps a request's outcome (`None`: the deadline passed first) to process-lock's.
fn settle<T>(
    op: &str,
    target: &str,
    within: Duration,
    client: &Client,
    outcome: Option<std::result::Result<T, FredError>>,
) -> Result<T> {
    let context = || format!("{op} on {target}");
    let late = match outcome {
        Some(Ok(reply)) => return Ok(reply),
        Some(Err(e)) if *e.kind() != FredKind::Timeout => {
            return Err(from_fred(e, &context(), within));
        }
        Some(Err(e)) => Some(e),
        None => None,
    };
    // While it reconnects, fred holds requests back (and drops those that time out before they
    // are sent): without a connection, say so, as the redis-rs backend does.
    let connected = client.state() == ClientState::Connected;
    let err = lock_core::redis::no_reply(&context(), within, connected);
    Err(match late {
        Some(e) => err.with_source(e),
        None => err,
    })
}

/// How fred fails a command it found no connection for: such a command was never written.
const NOT_ROUTED: &str = "Failed to route command.";

/// Sends the request `send` builds, and sends it again, until `deadline`, while fred fails it
/// for want of a connection (between a disconnection and the reconnection). Such a request was
/// never written, so sending it again cannot apply it twice; a request that was written is
/// never sent again (see [`options`]).
pub(crate) async fn routed<T, F>(
    client: &Client,
    deadline: Instant,
    mut send: impl FnMut() -> F,
) -> std::result::Result<T, FredError>
where
    F: Future<Output = std::result::Result<T, FredError>>,
{
    /// How often to look again at the connection while waiting: fred's notice of a
    /// reconnection made just before `wait_for_connect` subscribes to it is not repeated.
    const RECHECK: Duration = Duration::from_millis(50);
    /// Between fred reporting a connection and its router using it.
    const SETTLE: Duration = Duration::from_millis(5);
    loop {
        match send().await {
            Err(e) if e.details() == NOT_ROUTED && Instant::now() < deadline => {
                let until = deadline.min(Instant::now() + RECHECK);
                // A failed attempt to reconnect is no answer yet: fred tries again by its policy.
                let _ = tokio::time::timeout_at(until, client.wait_for_connect()).await;
                tokio::time::sleep_until(deadline.min(Instant::now() + SETTLE)).await;
            }
            other => return other,
        }
    }
}
