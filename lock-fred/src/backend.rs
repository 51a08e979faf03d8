//! [`FredBackend`]: the `LockBackend` implementation on the `fred` crate.

use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use fred::error::{Error as FredError, ErrorKind as FredKind};
use fred::prelude::{
    Builder, Client, ClientLike, ClientState, Config, LuaInterface, Options, Pool, ReconnectPolicy,
    ServerConfig, Value,
};
use fred::types::scripts::Script;
use fred::types::{ConnectHandle, RespVersion};
use lock_core::notify::Subscriptions;
use lock_core::scripts::{FENCE_RETENTION, boot_key, fence_key, release_channel, restart_delay_ms};
use lock_core::{
    Acquire, Capabilities, Error, ErrorKind, FencedAcquire, ForceRelease, LockBackend, LockName,
    Release, Result, Status, Token, Ttl, Watch, async_trait,
};
use tokio::time::Instant;

use crate::error::from_fred;
use crate::pubsub::PubSub;
use crate::scripts;

pub use lock_core::redis::REDIS_URL_ENV;

/// Locks in Redis, through the `fred` crate.
///
/// One multiplexed connection (a `fred` [`Client`], or each client of a [`Pool`]) carries every
/// request from every clone and task. A backend built from a URL reconnects by itself after the
/// server restarts or the network breaks (see [`FredBuilder::reconnect_policy`]). A request
/// that meets a broken connection is sent again once the client has reconnected, within the
/// response timeout: every script is idempotent for one token (acquiring again what the token
/// holds only resets its expiry; a release that already landed answers [`Release::Missing`]),
/// so a lock is never taken twice behind the caller's back. (fred itself would replay requests
/// on its own terms; this backend sends every command with `max_attempts = 1` and decides.)
///
/// Every operation is one round trip and atomic: acquire (fenced or not), renew, release, force
/// release and status are the scripts of [`lock_core::scripts`] (by `EVALSHA`, loaded again
/// transparently after a `SCRIPT FLUSH` or a restart). Each operation is bounded by the
/// [response timeout](FredBuilder::response_timeout), waiting for a reconnection included.
///
/// **Restarts.** A free lock is not granted on a server that started less than the
/// [restart delay](FredBuilder::restart_delay) ago (by default the lock's timeout), since a
/// lock held before a restart without persistence may still be in use; see
/// [`lock_core::scripts`].
///
/// Every release, owned or forced, is published on the lock's channel
/// ([`release_channel`](lock_core::scripts::release_channel)), and waiters
/// ([`LockBackend::watch`]) are woken by it: the backend opens one more connection, for
/// Pub/Sub, on the first watch, with the same configuration (server, TLS, credentials) as its
/// client's, and shares it among all its clones and waiters. It subscribes to a lock's channel
/// while someone in the process waits for that lock, and after that connection broke and came
/// back it subscribes again and wakes every waiter (a release may have gone unseen). Fencing
/// tokens ([`LockBackend::try_acquire_fenced`]) count acquisitions in a second key, the lock's
/// [`fence_key`](lock_core::scripts::fence_key).
///
/// The key is the lock name (after an optional [prefix](FredBuilder::prefix), none by default)
/// and the value the owner's token, as in `process-lock-node` and the `redis-rs` backend, so
/// processes using any of them for one name exclude each other.
///
/// A backend that made its own client (from a URL) closes the connection when its last clone is
/// dropped; one built on an application's [`Client`] or [`Pool`] leaves it alone. The Pub/Sub
/// connection is always the backend's own: closed once its last clone and its last waiter are
/// gone.
///
/// # Examples
///
/// ```no_run
/// use std::sync::Arc;
/// use std::time::Duration;
/// use lock_core::ProcessLock;
/// use lock_fred::FredBackend;
///
/// # #[tokio::main] async fn main() -> lock_core::Result<()> {
/// let backend = Arc::new(FredBackend::from_env().await?); // REDIS_URL
/// let lock = ProcessLock::new(backend, "nightly-report", Duration::from_secs(30))?;
/// if lock.lock().await? {
///     // ...
///     lock.clear(false).await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct FredBackend {
    conn: Conn,
    prefix: Arc<str>,
    /// The server's URL without its password, for messages.
    target: Arc<str>,
    timeout: Duration,
    /// The delayed restart rule's delay; `None`: the lock's timeout.
    restart_delay: Option<Duration>,
    /// The waiters of this backend's locks, and the Pub/Sub connection that wakes them.
    notify: Arc<Subscriptions<PubSub>>,
    /// The connection task of a client this backend made itself, stopped with the last clone.
    _owned: Option<Arc<ConnectionTask>>,
}

/// Where requests go.
#[derive(Clone)]
enum Conn {
    Client(Client),
    Pool(Pool),
}

impl Conn {
    /// The client for the next request: the only one, or the pool's next in turn.
    fn next(&self) -> &Client {
        match self {
            Conn::Client(client) => client,
            Conn::Pool(pool) => pool.next(),
        }
    }
}

/// fred's task driving a client's connection, aborted when dropped (unless detached): the task
/// holds the client, so without that a client this backend made would keep its connection (and,
/// with a reconnection policy, its retries) alive forever once unreachable, after the last
/// clone of the backend is dropped or when connecting is cancelled.
pub(crate) struct ConnectionTask(Option<ConnectHandle>);

impl ConnectionTask {
    /// Lets the task run on, for an application's client.
    fn detach(mut self) {
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

/// What a [`FredBuilder`] connects.
enum Source {
    /// A parsed URL (the error if it did not parse).
    Url(Result<Config>),
    /// An application's client.
    Client(Client),
    /// An application's pool.
    Pool(Pool),
}

/// Configures and connects a [`FredBackend`]; made by [`FredBackend::builder`],
/// [`FredBackend::with_client`] or [`FredBackend::with_pool`].
#[must_use = "a builder does nothing until .connect().await"]
pub struct FredBuilder {
    source: Source,
    target: String,
    prefix: String,
    connect_timeout: Duration,
    response_timeout: Duration,
    reconnect_attempts: usize,
    reconnect_policy: ReconnectPolicy,
    restart_delay: Option<Duration>,
}

impl FredBuilder {
    /// Default time to establish a connection: 2 s.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = lock_core::redis::DEFAULT_CONNECT_TIMEOUT;
    /// Default time for one operation, waiting for a reconnection included: 2 s.
    pub const DEFAULT_RESPONSE_TIMEOUT: Duration = lock_core::redis::DEFAULT_RESPONSE_TIMEOUT;
    /// Default connection attempts after the first fails: 3, with exponential backoff.
    pub const DEFAULT_RECONNECT_ATTEMPTS: usize = lock_core::redis::DEFAULT_RECONNECT_ATTEMPTS;

    fn new(source: Source, target: String) -> Self {
        FredBuilder {
            source,
            target,
            prefix: String::new(),
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            response_timeout: Self::DEFAULT_RESPONSE_TIMEOUT,
            reconnect_attempts: Self::DEFAULT_RECONNECT_ATTEMPTS,
            reconnect_policy: Self::default_reconnect_policy(),
            restart_delay: None,
        }
    }

    /// How long after the server starts a free lock is not granted (the *delayed restart*
    /// rule): a server restarted without persistence has forgotten every lock, whose holders
    /// may go on working until their timeout. By default, the timeout of the lock being
    /// acquired, which protects holders using the same timeout; set the longest timeout any
    /// process uses, or [`Duration::ZERO`] to grant at once (for a server whose data survives
    /// restarts, or in tests). A server that kept its data keeps its start time, and grants at
    /// once.
    pub fn restart_delay(mut self, delay: Duration) -> Self {
        self.restart_delay = Some(delay);
        self
    }

    /// The default [`reconnect_policy`](FredBuilder::reconnect_policy): try again forever, after
    /// 50 ms, then doubling up to 1 s between attempts (plus fred's jitter of up to 100 ms).
    ///
    /// fred itself does not reconnect at all unless given a policy: its client would stay
    /// disconnected after the first server restart.
    pub fn default_reconnect_policy() -> ReconnectPolicy {
        ReconnectPolicy::new_exponential(0, 50, 1_000, 2)
    }

    /// Puts every lock's key under `prefix` (the key becomes `prefix + name`). None by default,
    /// which is what `process-lock-node` uses: set one only if every process sharing the locks
    /// sets the same.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long to wait for a connection to be established, all attempts together (each
    /// attempt, and each command of the handshake, is also bounded by it).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one operation may take, waiting for a reconnection included. Past it the
    /// operation fails with [`ErrorKind::Timeout`]; it may or may not have been applied.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// How many more times [`connect`](FredBuilder::connect) tries after a failed attempt, with
    /// exponential backoff from 50 ms, within the connect timeout. Once connected, a lost
    /// connection is re-established according to the
    /// [`reconnect_policy`](FredBuilder::reconnect_policy).
    pub fn reconnect_attempts(mut self, attempts: usize) -> Self {
        self.reconnect_attempts = attempts;
        self
    }

    /// How the client re-establishes a lost connection, in the background; by default
    /// [`default_reconnect_policy`](FredBuilder::default_reconnect_policy), which never gives
    /// up. A policy with a maximum number of attempts leaves the backend disconnected for good
    /// once they are spent.
    ///
    /// Only for a backend built from a URL: an application's [`Client`] or [`Pool`] keeps the
    /// policy it was built with. The backend's Pub/Sub connection (for waiters) follows the
    /// same policy.
    pub fn reconnect_policy(mut self, policy: ReconnectPolicy) -> Self {
        self.reconnect_policy = policy;
        self
    }

    /// Connects, within the connect timeout (all attempts together). An application's
    /// [`Client`] or [`Pool`] that is already connected is used as it is.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] for a malformed URL, refused credentials, TLS without the `tls`
    /// feature, or a server that speaks plain text where TLS was asked for (told within a
    /// fraction of a second, not at the connect timeout); [`ErrorKind::Connection`] when the
    /// server cannot be reached, [`ErrorKind::Timeout`] when it does not answer in time.
    /// Messages name the server without its password.
    ///
    /// # Cancel safety
    ///
    /// Safe: dropping the future drops the connection being made.
    pub async fn connect(self) -> Result<FredBackend> {
        let deadline = Instant::now() + self.connect_timeout;
        let starter = Starter {
            deadline,
            attempts: self.reconnect_attempts,
            target: &self.target,
            within: self.connect_timeout,
        };
        let (conn, owned) = match self.source {
            Source::Url(config) => {
                let client = Builder::from_config(config?)
                    .with_connection_config(|c| {
                        c.connection_timeout = self.connect_timeout;
                        c.internal_command_timeout = self.connect_timeout;
                        // fred re-sends commands that were in flight when a connection broke,
                        // by default up to 3 times. For locks that is unsafe: an acquire that was
                        // applied but whose reply was lost would be sent again, find the lock
                        // taken (by the caller itself, but now with its expiry reset) or, for a
                        // release, report "missing". Every command is sent once; the caller sees
                        // a Connection error and decides.
                        c.max_command_attempts = 1;
                    })
                    .with_performance_config(|p| {
                        p.default_command_timeout = self.response_timeout;
                    })
                    .set_policy(self.reconnect_policy)
                    .build()
                    .map_err(|e| {
                        Error::new(
                            ErrorKind::Config,
                            format!("invalid Redis configuration for {}", self.target),
                        )
                        .with_source(e)
                    })?;
                let task = starter.start(&client).await?;
                let owned = task.map(Arc::new);
                (Conn::Client(client), owned)
            }
            Source::Client(client) => {
                // A task started here belongs to the application's client: it keeps running.
                if let Some(task) = starter.start(&client).await? {
                    task.detach();
                }
                (Conn::Client(client), None)
            }
            Source::Pool(pool) => {
                for client in pool.clients() {
                    if let Some(task) = starter.start(client).await? {
                        task.detach();
                    }
                }
                (Conn::Pool(pool), None)
            }
        };
        let target: Arc<str> = self.target.into();
        // Not connected yet: the first watch connects it.
        let notify = PubSub::new(
            conn.next(),
            target.clone(),
            self.connect_timeout,
            self.reconnect_attempts,
            self.response_timeout,
        );
        Ok(FredBackend {
            conn,
            prefix: self.prefix.into(),
            target,
            timeout: self.response_timeout,
            restart_delay: self.restart_delay,
            notify,
            _owned: owned,
        })
    }
}

impl fmt::Debug for FredBuilder {
    // Never print fred's `Config`: its `Debug` shows the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FredBuilder")
            .field("target", &self.target)
            .field("prefix", &self.prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("reconnect_attempts", &self.reconnect_attempts)
            .field("reconnect_policy", &self.reconnect_policy)
            .finish_non_exhaustive()
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
                    return Err(Error::new(
                        ErrorKind::Timeout,
                        format!(
                            "connecting to {}: no connection within {:?}",
                            self.target, self.within
                        ),
                    ));
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

impl FredBackend {
    /// Connects to the server at `url` with the default settings: `redis://host:port/db`,
    /// `rediss://` for TLS (with the `tls` feature), and `redis://user:password@host/` for
    /// credentials; `?protocol=resp3` selects RESP3.
    ///
    /// # Errors
    ///
    /// As [`FredBuilder::connect`].
    pub async fn connect(url: &str) -> Result<Self> {
        Self::builder(url).connect().await
    }

    /// Connects to the server named by the `REDIS_URL` environment variable, as
    /// `process-lock-node` does.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] if `REDIS_URL` is unset or not valid UTF-8; otherwise as
    /// [`FredBuilder::connect`].
    pub async fn from_env() -> Result<Self> {
        Self::builder(&lock_core::redis::url_from_env()?)
            .connect()
            .await
    }

    /// A builder for the server at `url`, to set a prefix, timeouts or a reconnection policy
    /// before connecting.
    ///
    /// Accepts the URLs the `redis-rs` backend accepts over TCP: the schemes `redis`, `valkey`,
    /// and `rediss`, `valkeys` for TLS. Other topologies (cluster, sentinel, unix socket) go
    /// through a `fred` client built by the application ([`with_client`](Self::with_client)).
    pub fn builder(url: &str) -> FredBuilder {
        let target = lock_core::redact_url(url);
        let config = config_from_url(url, &target);
        FredBuilder::new(Source::Url(config), target)
    }

    /// A builder on a `fred` [`Client`] the application already has, connected or not (it is
    /// connected if needed). Its own reconnection policy and timeouts apply, besides the
    /// builder's response timeout; its commands are sent once, never replayed.
    ///
    /// Waiters are woken over a Pub/Sub connection of the backend's own, made on the first
    /// watch from a copy of the client's configuration (server or topology, TLS, credentials,
    /// timeouts) and its reconnection policy, or the
    /// [default one](FredBuilder::default_reconnect_policy) if it has none; the application's
    /// client itself never subscribes.
    pub fn with_client(client: Client) -> FredBuilder {
        let target = describe(&client.client_config());
        FredBuilder::new(Source::Client(client), target)
    }

    /// A builder on a `fred` [`Pool`] the application already has, connected or not (each
    /// client is connected if needed): operations take its clients in turn. As
    /// [`with_client`](Self::with_client) otherwise (one Pub/Sub connection for the backend,
    /// made from the configuration of the pool's clients).
    pub fn with_pool(pool: Pool) -> FredBuilder {
        let target = describe(&pool.client_config());
        FredBuilder::new(Source::Pool(pool), target)
    }

    /// The key prefix (empty by default).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A client this backend uses (for a pool, the next in turn), for commands of the
    /// application's own. For a backend built from a URL it works as long as the backend lives.
    pub fn client(&self) -> &Client {
        self.conn.next()
    }

    fn key(&self, name: &LockName) -> String {
        lock_core::redis::key(&self.prefix, name)
    }

    /// Runs one operation on `client` that must end by `deadline` (the response timeout from
    /// now), mapping errors.
    async fn run<T>(
        &self,
        op: &'static str,
        client: &Client,
        deadline: Instant,
        request: impl Future<Output = std::result::Result<T, FredError>>,
    ) -> Result<T> {
        bounded(op, &self.target, self.timeout, client, deadline, request).await
    }

    /// Runs `script` by `EVALSHA` on `keys`; after a `NOSCRIPT` (nothing ran), loads it and runs
    /// it again.
    async fn eval(
        &self,
        op: &'static str,
        script: &'static Script,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<Value> {
        let client = self.conn.next();
        let deadline = Instant::now() + self.timeout;
        let (keys, args) = (&keys, &args);
        let mut backoff = Duration::from_millis(10);
        loop {
            let request = routed(client, deadline, || {
                evalsha_or_load(client, deadline, script, keys, args)
            });
            match self.run(op, client, deadline, request).await {
                // The connection broke: once fred has reconnected, send it again (see the
                // type's docs for why that is safe).
                Err(e)
                    if e.kind() == ErrorKind::Connection && Instant::now() + backoff < deadline =>
                {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(250));
                }
                outcome => return outcome,
            }
        }
    }
}

/// The options of each command of an operation that must end by `deadline`: sent once, and
/// timed out by fred itself just before the deadline, so that a command still waiting to be
/// written (during a reconnection) is dropped instead of being sent late.
pub(crate) fn options(deadline: Instant) -> Options {
    let left = deadline
        .saturating_duration_since(Instant::now())
        .saturating_sub(Duration::from_millis(1))
        // fred reads a zero timeout as "none".
        .max(Duration::from_millis(1));
    Options {
        max_attempts: Some(1),
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
    let context = || format!("{op} on {target}");
    let late = match tokio::time::timeout_at(deadline, request).await {
        Ok(Ok(reply)) => return Ok(reply),
        Ok(Err(e)) if *e.kind() != FredKind::Timeout => {
            return Err(from_fred(e, &context(), within));
        }
        Ok(Err(e)) => Some(e),
        Err(_) => None,
    };
    // While it reconnects, fred holds requests back (and drops those that time out before they
    // are sent): without a connection, say so, as the redis-rs backend does.
    let (kind, missing) = if client.state() == ClientState::Connected {
        (ErrorKind::Timeout, "no answer")
    } else {
        (ErrorKind::Connection, "no connection")
    };
    let err = Error::new(kind, format!("{}: {missing} within {within:?}", context()));
    Err(match late {
        Some(e) => err.with_source(e),
        None => err,
    })
}

/// One `EVALSHA` of `script`, and after a `NOSCRIPT` (nothing ran) a `SCRIPT LOAD` and the
/// `EVALSHA` again.
async fn evalsha_or_load(
    client: &Client,
    deadline: Instant,
    script: &'static Script,
    keys: &[String],
    args: &[String],
) -> std::result::Result<Value, FredError> {
    let first = client
        .with_options(&options(deadline))
        .evalsha::<Value, _, _, _>(script.sha1().clone(), keys.to_vec(), args.to_vec())
        .await;
    match first {
        Err(e) if e.details().starts_with("NOSCRIPT") => {
            let lua = script.lua().cloned().unwrap_or_default();
            client
                .with_options(&options(deadline))
                .script_load_cluster::<(), _>(lua)
                .await?;
            client
                .with_options(&options(deadline))
                .evalsha::<Value, _, _, _>(script.sha1().clone(), keys.to_vec(), args.to_vec())
                .await
        }
        other => other,
    }
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

/// Parses and checks a URL as the `redis-rs` backend does, into a `fred` configuration.
fn config_from_url(url: &str, target: &str) -> Result<Config> {
    let invalid = |why: &str| {
        Error::new(
            ErrorKind::Config,
            format!("invalid Redis URL {target}: {why}"),
        )
    };
    let parsed = url::Url::parse(url).map_err(|e| invalid("not a URL").with_source(e))?;
    let tls = match parsed.scheme() {
        "redis" | "valkey" => false,
        "rediss" | "valkeys" => true,
        other => {
            return Err(invalid(&format!(
                "unsupported scheme {other:?}; expected redis://, or rediss:// for TLS"
            )));
        }
    };
    // fred only logs a warning for rediss:// without TLS support, and connects in plaintext.
    if tls && !cfg!(feature = "tls") {
        return Err(invalid(
            "TLS (rediss://) needs lock-fred's `tls` feature; refusing to connect in plaintext",
        ));
    }
    let mut version = RespVersion::RESP2;
    for (name, value) in parsed.query_pairs() {
        if name == "protocol" {
            version = match &*value {
                "2" | "resp2" => RespVersion::RESP2,
                "3" | "resp3" => RespVersion::RESP3,
                _ => return Err(invalid("invalid protocol version, expected resp2 or resp3")),
            };
        }
    }
    #[cfg(feature = "tls")]
    if tls {
        // Before fred builds its TLS configuration.
        use_ring_unless_chosen();
    }
    let mut config = Config::from_url_centralized(url).map_err(|e| {
        let err = invalid("not a Redis URL");
        // fred's messages do not quote the URL; never pass one on that would show the password.
        match parsed.password() {
            Some(password) if e.details().contains(password) => err,
            _ => err.with_source(e),
        }
    })?;
    config.version = version;
    // Report the first connection's failure instead of retrying in the background: the
    // builder retries itself, within its connect timeout.
    config.fail_fast = true;
    Ok(config)
}

/// Makes `ring` rustls's process-wide crypto provider, unless the application chose one: fred
/// builds the TLS configuration of a `rediss://` URL with that default, and rustls cannot pick
/// one by itself when other crates of the build switched on none or several of its providers.
#[cfg(feature = "tls")]
fn use_ring_unless_chosen() {
    use fred::rustls::crypto::{CryptoProvider, ring};
    if CryptoProvider::get_default().is_none() {
        // Fails only if another thread installed one meanwhile, which is then used.
        let _ = ring::default_provider().install_default();
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

/// The server of an application's client, for messages: never its password.
fn describe(config: &Config) -> String {
    let hosts = |servers: &mut dyn Iterator<Item = String>| servers.collect::<Vec<_>>().join(",");
    let host = |host: &str, port: u16| {
        if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        }
    };
    match &config.server {
        ServerConfig::Centralized { server } => format!(
            "redis://{}/{}",
            host(&server.host, server.port),
            config.database.unwrap_or(0)
        ),
        ServerConfig::Clustered { hosts: servers, .. } => format!(
            "redis cluster {}",
            hosts(&mut servers.iter().map(|s| host(&s.host, s.port)))
        ),
        ServerConfig::Sentinel {
            hosts: servers,
            service_name,
            ..
        } => format!(
            "redis sentinel {} service {service_name}",
            hosts(&mut servers.iter().map(|s| host(&s.host, s.port)))
        ),
        #[allow(unreachable_patterns, reason = "variants behind fred's features")]
        _ => "redis (application's fred client)".to_owned(),
    }
}

/// An integer reply.
fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Integer(n) => Some(*n),
        _ => None,
    }
}

/// `ACQUIRE_FENCED`'s answer, read by `lock_core::scripts::fenced_reply`.
fn fenced(reply: &Value) -> Option<FencedAcquire> {
    lock_core::scripts::fenced_reply(&ints(reply)?)
}

/// An array of integers reply.
fn ints(value: &Value) -> Option<Vec<i64>> {
    match value {
        Value::Array(items) => items.iter().map(int).collect(),
        _ => None,
    }
}

#[async_trait]
impl LockBackend for FredBackend {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            remaining_ttl: true,
            notify: true,
            fencing: true,
        }
    }

    async fn try_acquire(&self, name: &LockName, token: &Token, ttl: Ttl) -> Result<Acquire> {
        let key = self.key(name);
        let boot = boot_key(&self.prefix, &key);
        let args = vec![
            token.as_str().to_owned(),
            ttl.as_millis().to_string(),
            restart_delay_ms(self.restart_delay, ttl).to_string(),
        ];
        let reply = self
            .eval("acquire", &scripts::ACQUIRE, vec![key, boot], args)
            .await?;
        ints(&reply)
            .and_then(|ints| lock_core::scripts::acquire_reply(&ints))
            .ok_or_else(|| lock_core::redis::unexpected("acquire", reply))
    }

    async fn renew(&self, name: &LockName, token: &Token, ttl: Ttl) -> Result<bool> {
        let args = vec![token.as_str().to_owned(), ttl.as_millis().to_string()];
        let reply = self
            .eval("renew", &scripts::RENEW, vec![self.key(name)], args)
            .await?;
        int(&reply)
            .and_then(lock_core::scripts::renew_reply)
            .ok_or_else(|| lock_core::redis::unexpected("renew", reply))
    }

    async fn release(&self, name: &LockName, token: &Token) -> Result<Release> {
        let key = self.key(name);
        let args = vec![token.as_str().to_owned(), release_channel(&key)];
        let reply = self
            .eval("release", &scripts::RELEASE, vec![key], args)
            .await?;
        int(&reply)
            .and_then(lock_core::scripts::release_reply)
            .ok_or_else(|| lock_core::redis::unexpected("release", reply))
    }

    async fn force_release(&self, name: &LockName) -> Result<ForceRelease> {
        let key = self.key(name);
        let args = vec![release_channel(&key)];
        let reply = self
            .eval("force release", &scripts::FORCE_RELEASE, vec![key], args)
            .await?;
        int(&reply)
            .and_then(lock_core::scripts::force_release_reply)
            .ok_or_else(|| lock_core::redis::unexpected("force release", reply))
    }

    async fn try_acquire_fenced(
        &self,
        name: &LockName,
        token: &Token,
        ttl: Ttl,
    ) -> Result<FencedAcquire> {
        let key = self.key(name);
        let (fence, boot) = (fence_key(&key), boot_key(&self.prefix, &key));
        let args = vec![
            token.as_str().to_owned(),
            ttl.as_millis().to_string(),
            restart_delay_ms(self.restart_delay, ttl).to_string(),
            FENCE_RETENTION.as_millis().to_string(),
        ];
        let reply = self
            .eval(
                "fenced acquire",
                &scripts::ACQUIRE_FENCED,
                vec![key, fence, boot],
                args,
            )
            .await?;
        fenced(&reply).ok_or_else(|| lock_core::redis::unexpected("fenced acquire", reply))
    }

    async fn watch(&self, name: &LockName) -> Result<Watch> {
        let channel = lock_core::scripts::release_channel(&self.key(name));
        self.notify.watch(channel).await
    }

    async fn status(&self, name: &LockName) -> Result<Status> {
        let reply = self
            .eval("status", &scripts::STATUS, vec![self.key(name)], vec![])
            .await?;
        int(&reply)
            .and_then(lock_core::scripts::status_reply)
            .ok_or_else(|| lock_core::redis::unexpected("status", reply))
    }
}

impl fmt::Debug for FredBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FredBackend")
            .field("target", &self.target)
            .field("prefix", &self.prefix)
            .field("response_timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_like_redis_rs_does() {
        let ok = config_from_url("redis://u:pw@h:6380/2?protocol=resp3", "t").unwrap();
        assert_eq!(ok.version, RespVersion::RESP3);
        assert_eq!(ok.database, Some(2));
        assert!(ok.fail_fast);
        assert!(config_from_url("valkey://h/", "t").is_ok());
        for bad in [
            "http://h/",
            "redis-cluster://h:1/",
            "redis+unix:///tmp/redis.sock",
            "redis://h/?protocol=4",
        ] {
            let err = config_from_url(bad, "t").unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{bad}");
        }
        let tls = config_from_url("rediss://h:6380/", "t");
        if cfg!(feature = "tls") {
            assert!(tls.is_ok());
        } else {
            let err = tls.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config);
            assert!(err.to_string().contains("`tls` feature"), "{err}");
        }
    }

    #[test]
    fn replies_are_read_strictly() {
        assert_eq!(ints(&Value::Array(vec![Value::Integer(1)])), Some(vec![1]));
        assert_eq!(ints(&Value::Array(vec![Value::Null])), None);
        assert_eq!(int(&Value::Integer(-2)), Some(-2));
        assert_eq!(int(&Value::Null), None);
        let reply =
            |items: &[i64]| Value::Array(items.iter().copied().map(Value::Integer).collect());
        assert_eq!(
            fenced(&reply(&[1, 7])),
            Some(FencedAcquire::Acquired { fence: 7 })
        );
        assert_eq!(fenced(&reply(&[1, 0])), None);
        assert_eq!(fenced(&Value::Integer(1)), None);
        assert_eq!(
            fenced(&Value::Array(vec![Value::Integer(1), Value::Null])),
            None
        );
    }
}
