//! Establishing a `fred` client's connection: the first one, with retries within the connect
//! timeout (telling a plain-text server from a TLS one), the task that drives it, and the
//! policy by which fred re-establishes it afterwards.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use fred::error::Error as FredError;
use fred::prelude::{Client, ClientLike, ClientState, Config, ReconnectPolicy, ServerConfig};
use fred::types::ConnectHandle;
use lock_core::Result;
use tokio::sync::oneshot;
use tokio::task::{AbortHandle, JoinHandle};
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
///
/// It is also started again when it ends on an error (see [`supervise`]): fred ends it for
/// good on some errors, after which the client answers nothing but timeouts.
pub(crate) struct ConnectionTask {
    /// The supervisor, which owns fred's task (and aborts it when aborted).
    supervisor: Option<JoinHandle<()>>,
    /// Tells the supervisor to stop watching and leave fred's task running.
    detach: Option<oneshot::Sender<()>>,
    /// fred's task now, aborted at once when this is dropped: the supervisor, aborted too,
    /// may not run again before the test (or the application) counts connections.
    current: Arc<Mutex<Option<AbortHandle>>>,
}

impl ConnectionTask {
    /// Supervises fred's `task`, which drives `client`'s connection.
    pub(crate) fn new(client: &Client, task: ConnectHandle) -> Self {
        let (detach, detached) = oneshot::channel();
        let current = Arc::new(Mutex::new(Some(task.abort_handle())));
        let supervisor = supervise(client.clone(), task, detached, current.clone());
        ConnectionTask {
            supervisor: Some(tokio::spawn(supervisor)),
            detach: Some(detach),
            current,
        }
    }

    /// Lets fred's task run on, unsupervised, for an application's client.
    pub(crate) fn detach(mut self) {
        self.supervisor = None;
        lock(&self.current).take();
        if let Some(detach) = self.detach.take() {
            let _ = detach.send(());
        }
    }
}

impl Drop for ConnectionTask {
    fn drop(&mut self) {
        if let Some(supervisor) = &self.supervisor {
            supervisor.abort();
        }
        if let Some(task) = lock(&self.current).take() {
            task.abort();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How long after fred's task ended on an error to start it again, the first time.
const RESTART_AFTER: Duration = Duration::from_millis(100);

/// The longest pause before a restart: the pause doubles while the task keeps ending soon after
/// each start (a server gone for good, past the client's own reconnection policy).
const RESTART_AFTER_AT_MOST: Duration = Duration::from_secs(5);

/// How long a restarted task must run for the next restart to come after the shortest pause
/// again.
const RAN_WELL: Duration = Duration::from_secs(10);

/// fred's connection task, aborted when dropped unless taken out.
struct Driven(Option<ConnectHandle>);

impl Driven {
    /// The task, no longer aborted by this.
    fn into_inner(mut self) -> Option<ConnectHandle> {
        self.0.take()
    }
}

impl Drop for Driven {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

/// Watches fred's `task` driving `client`'s connection (once it has connected), and starts it
/// again whenever it ends on an error (after [`RESTART_AFTER`], doubling up to
/// [`RESTART_AFTER_AT_MOST`] while it keeps ending within [`RAN_WELL`]), until `detached` (the
/// task is then left running) or aborted (the task is then aborted too). A task that ends
/// without an error (the client quit) is not started again.
///
/// fred ends its task on errors its router treats as fatal, and then nothing answers requests
/// but timeouts: fred 10.1 follows an `ASK` (a slot in migration on a Redis Cluster) by sending
/// `ASKING` to the new node and the command again to the old one, which answers `ASK` again,
/// until the command's write attempts run out, and "Max attempts reached." in the `ASKING` step
/// ends the task. Started again, the client reconnects and its requests are served (those of
/// the migrating slot fail, and are sent again, until the migration ends with `MOVED`).
async fn supervise(
    client: Client,
    task: ConnectHandle,
    mut detached: oneshot::Receiver<()>,
    current: Arc<Mutex<Option<AbortHandle>>>,
) {
    let mut driven = Driven(Some(task));
    let (mut pause, mut started) = (RESTART_AFTER, Instant::now());
    loop {
        let Some(task) = driven.0.as_mut() else {
            return;
        };
        tokio::select! {
            ended = task => {
                driven.0 = None;
                match ended {
                    Ok(Err(e)) => {
                        if started.elapsed() >= RAN_WELL {
                            pause = RESTART_AFTER;
                        }
                        tracing::warn!(
                            client = %client.id(),
                            error = %e,
                            in_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
                            "fred ended its connection task on an error; starting it again"
                        );
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(RESTART_AFTER_AT_MOST);
                        started = Instant::now();
                        let task = client.connect();
                        *lock(&current) = Some(task.abort_handle());
                        driven.0 = Some(task);
                    }
                    // The client quit, or the task was aborted or panicked.
                    Ok(Ok(())) | Err(_) => return,
                }
            }
            _ = &mut detached => {
                // Left running: the application's client is its own.
                driven.0 = None;
                return;
            }
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
        // Failed (the task has ended), late or cancelled: dropping it stops it. Supervised only
        // once connected: until then, these attempts are the retries, within the deadline.
        let task = Driven(Some(client.connect()));
        wait(tokio::time::timeout_at(self.deadline, outcome).await)?;
        Ok(task
            .into_inner()
            .map(|task| ConnectionTask::new(client, task)))
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
