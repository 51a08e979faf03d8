//! Establishing a `fred` client's connection: the first one, with retries within the connect
//! timeout (telling a plain-text server from a TLS one), the task that drives it, and the
//! policy by which fred re-establishes it afterwards.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use fred::error::Error as FredError;
use fred::prelude::{Client, ClientLike, ClientState, Config, ReconnectPolicy, ServerConfig};
use fred::types::ConnectHandle;
use lock_core::Result;
use tokio::time::Instant;

use crate::error::from_fred;

/// The default reconnection policy (see `FredBuilder::default_reconnect_policy`): try again
/// forever, after 50 ms, then doubling up to 1 s between attempts (plus fred's jitter).
pub(crate) fn default_reconnect_policy() -> ReconnectPolicy {
    ReconnectPolicy::new_exponential(0, 50, 1_000, 2)
}

/// fred's task driving a client's connection, aborted when dropped (unless detached): the task
/// holds the client, so without that a client this backend made would keep its connection (and,
/// with a reconnection policy, its retries) alive forever once unreachable, after the last
/// clone of the backend is dropped or when connecting is cancelled.
pub(crate) struct ConnectionTask(Option<ConnectHandle>);

impl ConnectionTask {
    /// Lets the task run on, for an application's client.
    pub(crate) fn detach(mut self) {
        self.0 = None;
    }
}

impl Drop for ConnectionTask {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

/// Establishes a client's first connection, with retries, by a deadline.
pub(crate) struct Starter<'a> {
    pub(crate) deadline: Instant,
    pub(crate) attempts: usize,
    pub(crate) target: &'a str,
    pub(crate) within: Duration,
}

/// Why one connection attempt failed.
enum Failed {
    Error(FredError),
    Timeout,
}

impl Starter<'_> {
    /// Connects `client` unless it is connected already, trying again after retryable errors.
    /// Returns the connection task if this call started it.
    ///
    /// With TLS, a server that speaks plain text is a [`ErrorKind::Config`] error, found out
    /// within a fraction of a second (see [`lock_core::redis::unless_plain_text`]).
    pub(crate) async fn start(&self, client: &Client) -> Result<Option<ConnectionTask>> {
        let tls = tls_endpoint(&client.client_config());
        lock_core::redis::unless_plain_text(tls, self.target, self.attempts(client)).await
    }

    /// Connects `client` unless it is connected already, trying again after retryable errors.
    async fn attempts(&self, client: &Client) -> Result<Option<ConnectionTask>> {
        let mut delay = Duration::from_millis(50);
        let mut failures = 0;
        loop {
            let err = match self.attempt(client).await {
                Ok(task) => return Ok(task),
                Err(Failed::Timeout) => {
                    let context = format!("connecting to {}", self.target);
                    return Err(lock_core::redis::no_connection(&context, self.within));
                }
                Err(Failed::Error(e)) => {
                    from_fred(e, &format!("connecting to {}", self.target), self.within)
                }
            };
            if failures >= self.attempts
                || !err.is_retryable()
                || Instant::now() + delay >= self.deadline
            {
                return Err(err);
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(1));
            failures += 1;
        }
    }

    /// One attempt. fred's `init` does the same, but loses its connection task if cancelled
    /// (by the deadline, or by dropping the future): the task would connect later and live on
    /// unreachable.
    async fn attempt(
        &self,
        client: &Client,
    ) -> std::result::Result<Option<ConnectionTask>, Failed> {
        let wait =
            |outcome: std::result::Result<std::result::Result<(), FredError>, _>| match outcome {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(Failed::Error(e)),
                Err(tokio::time::error::Elapsed { .. }) => Err(Failed::Timeout),
            };
        match client.state() {
            ClientState::Connected => return Ok(None),
            // Someone else's connection task is at work: wait for it, and leave it alone.
            ClientState::Connecting => {
                let outcome =
                    tokio::time::timeout_at(self.deadline, client.wait_for_connect()).await;
                return wait(outcome).map(|()| None);
            }
            ClientState::Disconnected | ClientState::Disconnecting => {}
        }
        // Listen for the outcome before starting, as `init` does, so that it cannot be missed.
        let mut outcome = pin!(client.wait_for_connect());
        if let Poll::Ready(result) =
            std::future::poll_fn(|cx| Poll::Ready(outcome.as_mut().poll(cx))).await
        {
            return result.map(|()| None).map_err(Failed::Error);
        }
        // Failed (the task has ended), late or cancelled: dropping it stops it.
        let task = ConnectionTask(Some(client.connect()));
        wait(tokio::time::timeout_at(self.deadline, outcome).await)?;
        Ok(Some(task))
    }
}

/// Where a client with `config` connects with TLS (host and port; for a cluster, the first
/// node it knows); `None` without TLS, or for a sentinel.
fn tls_endpoint(config: &Config) -> Option<(String, u16)> {
    if !config.uses_tls() {
        return None;
    }
    let server = match &config.server {
        ServerConfig::Centralized { server } => server,
        ServerConfig::Clustered { hosts, .. } => hosts.first()?,
        #[allow(unreachable_patterns, reason = "variants behind fred's features")]
        _ => return None,
    };
    Some((server.host.to_string(), server.port))
}
