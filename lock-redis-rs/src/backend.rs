//! [`RedisRsBackend`]: the `LockBackend` implementation on the `redis` crate.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lock_core::scripts::{FENCE_RETENTION, boot_key, fence_key, release_channel, restart_delay_ms};
use lock_core::{
    Acquire, Capabilities, Error, ErrorKind, FencedAcquire, ForceRelease, LockBackend, LockName,
    Release, Result, Status, Token, Ttl, Watch, async_trait,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::time::Instant;

use crate::error::from_redis;
use crate::pubsub::{PubSubLink, Waiters};
use crate::scripts;

pub use lock_core::redis::REDIS_URL_ENV;

/// Locks in Redis, through the `redis` crate.
///
/// One shared, multiplexed connection (`redis::aio::ConnectionManager`) carries every request
/// from every clone and task, and reconnects by itself after the server restarts or the
/// network breaks. A request that meets a broken connection is sent again on the new one
/// (with a backoff from 10 ms, within the response timeout): every script is idempotent for
/// one token (acquiring again what the token holds only resets its expiry; a release that
/// already landed answers [`Release::Missing`]), so a lock is never taken twice behind the
/// caller's back.
///
/// **Restarts.** A free lock is not granted on a server that started less than the
/// [restart delay](RedisRsBuilder::restart_delay) ago (by default the lock's timeout), since a
/// lock held before a restart without persistence may still be in use; see
/// [`lock_core::scripts`].
///
/// Every operation is one round trip and atomic: acquire (plain or
/// [fenced](LockBackend::try_acquire_fenced)), renew, release and force release are the shared
/// scripts of [`lock_core::scripts`] (by `EVALSHA`, reloaded transparently after a
/// `SCRIPT FLUSH` or a restart), status is `PTTL`. Each operation is bounded by the
/// [response timeout](RedisRsBuilder::response_timeout), reconnection included.
///
/// The key is the lock name (after an optional [prefix](RedisRsBuilder::prefix), none by
/// default) and the value the owner's token, as in `process-lock-node`, so Rust and Node
/// processes contending for one name exclude each other. A fenced acquire also counts in the
/// lock's [`fence_key`](lock_core::scripts::fence_key), under the same prefix.
///
/// **Waiting.** Every release (owned or forced) is published on the lock's
/// [`release_channel`](lock_core::scripts::release_channel), and
/// [`watch`](LockBackend::watch) subscribes to it, so [`ProcessLock::acquire`] sleeps until a
/// release instead of polling. All the waiters of a backend and its clones share one more
/// connection, for Pub/Sub: opened on the first watch (within the
/// [connect timeout](RedisRsBuilder::connect_timeout)), sending nothing but `SUBSCRIBE` and
/// `UNSUBSCRIBE`, reconnected in the background (50 ms doubling to 1 s between attempts) and
/// then subscribed again, which wakes every waiter in case a release went unseen. It closes once
/// the last clone and the last waiter are gone. Like the main connection's, its task runs on
/// the tokio runtime it was opened from (the first watch's), which must outlive its use. A
/// backend made by
/// [`from_connection_manager`](RedisRsBackend::from_connection_manager) has no client to open it
/// with, and does not offer notification: its waiters poll.
///
/// [`ProcessLock::acquire`]: lock_core::ProcessLock::acquire
///
/// # Examples
///
/// ```no_run
/// use std::sync::Arc;
/// use std::time::Duration;
/// use lock_core::ProcessLock;
/// use lock_redis_rs::RedisRsBackend;
///
/// # #[tokio::main] async fn main() -> lock_core::Result<()> {
/// let backend = Arc::new(RedisRsBackend::from_env().await?); // REDIS_URL
/// let lock = ProcessLock::new(backend, "nightly-report", Duration::from_secs(30))?;
/// if lock.lock().await? {
///     // ...
///     lock.clear(false).await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisRsBackend {
    conn: ConnectionManager,
    prefix: Arc<str>,
    /// The server's URL without its password, for messages.
    target: Arc<str>,
    timeout: Duration,
    /// Whether the last request reached the server (false after a connection error): a request
    /// still waiting when the response timeout passes is then waiting for a reconnection.
    connected: Arc<AtomicBool>,
    /// The delayed restart rule's delay; `None`: the lock's timeout.
    restart_delay: Option<Duration>,
    /// The waiters of this backend and its clones, on the Pub/Sub connection; `None` without a
    /// client to open it with.
    waiters: Option<Arc<Waiters>>,
}

/// Configures and connects a [`RedisRsBackend`]; made by [`RedisRsBackend::builder`] or
/// [`RedisRsBackend::with_client`].
#[must_use = "a builder does nothing until .connect().await"]
pub struct RedisRsBuilder {
    client: Result<redis::Client>,
    target: String,
    prefix: String,
    connect_timeout: Duration,
    response_timeout: Duration,
    reconnect_attempts: usize,
    restart_delay: Option<Duration>,
}

impl RedisRsBuilder {
    /// Default time to establish a connection: 2 s.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = lock_core::redis::DEFAULT_CONNECT_TIMEOUT;
    /// Default time for one operation, waiting for a reconnection included: 2 s.
    pub const DEFAULT_RESPONSE_TIMEOUT: Duration = lock_core::redis::DEFAULT_RESPONSE_TIMEOUT;
    /// Default connection attempts after the first fails: 3, with exponential backoff.
    pub const DEFAULT_RECONNECT_ATTEMPTS: usize = lock_core::redis::DEFAULT_RECONNECT_ATTEMPTS;

    fn new(client: Result<redis::Client>, target: String) -> Self {
        RedisRsBuilder {
            client,
            target,
            prefix: String::new(),
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            response_timeout: Self::DEFAULT_RESPONSE_TIMEOUT,
            reconnect_attempts: Self::DEFAULT_RECONNECT_ATTEMPTS,
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

    /// Puts every lock's key under `prefix` (the key becomes `prefix + name`). None by default,
    /// which is what `process-lock-node` uses: set one only if every process sharing the locks
    /// sets the same.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long to wait for a connection to be established: the main one, and the Pub/Sub one
    /// waiters share (on the first watch, and each time it reconnects).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one operation may take, waiting for a reconnection included. Past it the
    /// operation fails with [`ErrorKind::Timeout`]; it may or may not have been applied. A
    /// `SUBSCRIBE` unanswered for that long also fails the watch, and the Pub/Sub connection is
    /// then replaced.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// How many more times to try connecting after a failed attempt, with exponential backoff
    /// from 50 ms.
    pub fn reconnect_attempts(mut self, attempts: usize) -> Self {
        self.reconnect_attempts = attempts;
        self
    }

    /// Connects, within the connect timeout (all attempts together).
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
    pub async fn connect(self) -> Result<RedisRsBackend> {
        let client = self.client?;
        let tls = tls_endpoint(&client);
        #[cfg(feature = "tls")]
        if tls.is_some() {
            use_ring_unless_chosen();
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.response_timeout))
            .set_number_of_retries(self.reconnect_attempts)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1));
        let target = self.target;
        let waiters = PubSubLink::waiters(
            client.clone(),
            target.as_str().into(),
            self.connect_timeout,
            self.response_timeout,
        );
        let connecting = async {
            let connecting = ConnectionManager::new_with_config(client, config);
            match tokio::time::timeout(self.connect_timeout, connecting).await {
                Ok(Ok(conn)) => Ok(conn),
                Ok(Err(e)) => Err(from_redis(e, "connecting", &target)),
                Err(_) => Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "connecting to {target}: no connection within {:?}",
                        self.connect_timeout
                    ),
                )),
            }
        };
        let conn = lock_core::redis::unless_plain_text(tls, &target, connecting).await?;
        Ok(RedisRsBackend {
            conn,
            prefix: self.prefix.into(),
            target: target.into(),
            timeout: self.response_timeout,
            connected: Arc::new(AtomicBool::new(true)),
            restart_delay: self.restart_delay,
            waiters: Some(waiters),
        })
    }
}

impl fmt::Debug for RedisRsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRsBuilder")
            .field("target", &self.target)
            .field("prefix", &self.prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("reconnect_attempts", &self.reconnect_attempts)
            .finish()
    }
}

impl RedisRsBackend {
    /// Connects to the server at `url` with the default settings: `redis://host:port/db`,
    /// `rediss://` for TLS (with the `tls` feature), and `redis://user:password@host/` for
    /// credentials.
    ///
    /// # Errors
    ///
    /// As [`RedisRsBuilder::connect`].
    pub async fn connect(url: &str) -> Result<Self> {
        Self::builder(url).connect().await
    }

    /// Connects to the server named by the `REDIS_URL` environment variable, as
    /// `process-lock-node` does.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] if `REDIS_URL` is unset or not valid UTF-8; otherwise as
    /// [`RedisRsBuilder::connect`].
    pub async fn from_env() -> Result<Self> {
        Self::builder(&lock_core::redis::url_from_env()?)
            .connect()
            .await
    }

    /// A builder for the server at `url`, to set a prefix or timeouts before connecting.
    ///
    /// A `rediss://` (or `valkeys://`) URL needs this crate's `tls` feature: without it,
    /// [`connect`](RedisRsBuilder::connect) fails with [`ErrorKind::Config`] before anything is
    /// attempted, whatever features the `redis` crate has.
    pub fn builder(url: &str) -> RedisRsBuilder {
        let target = lock_core::redact_url(url);
        let client = if lock_core::redis::wants_tls(url) && !cfg!(feature = "tls") {
            Err(Error::new(
                ErrorKind::Config,
                format!("invalid Redis URL {target}: {NO_TLS}"),
            ))
        } else {
            redis::Client::open(url).map_err(|e| {
                Error::new(ErrorKind::Config, format!("invalid Redis URL {target}")).with_source(e)
            })
        };
        RedisRsBuilder::new(client, target)
    }

    /// A builder that connects through a `redis::Client` the application already has.
    ///
    /// A client that connects with TLS needs this crate's `tls` feature: without it,
    /// [`connect`](RedisRsBuilder::connect) fails with [`ErrorKind::Config`].
    pub fn with_client(client: redis::Client) -> RedisRsBuilder {
        let info = client.get_connection_info();
        let tls = tls_endpoint(&client).is_some();
        let scheme = if tls { "rediss" } else { "redis" };
        let target = format!("{scheme}://{}/{}", info.addr(), info.redis_settings().db());
        let client = if tls && !cfg!(feature = "tls") {
            Err(Error::new(
                ErrorKind::Config,
                format!("connecting to {target}: {NO_TLS}"),
            ))
        } else {
            Ok(client)
        };
        RedisRsBuilder::new(client, target)
    }

    /// A backend on a `ConnectionManager` the application already has (its timeouts and
    /// reconnection settings apply), with keys under `prefix` (`""` for none).
    ///
    /// Such a backend cannot open a Pub/Sub connection, having no client: it does not offer
    /// notification ([`Capabilities::notify`] is false, [`watch`](LockBackend::watch) fails with
    /// [`ErrorKind::Unsupported`]), so [`ProcessLock::acquire`](lock_core::ProcessLock::acquire)
    /// polls the lock while waiting. To wait by notification with a client of your own, use
    /// [`with_client`](RedisRsBackend::with_client).
    pub fn from_connection_manager(
        conn: ConnectionManager,
        prefix: impl Into<String>,
        response_timeout: Duration,
    ) -> Self {
        RedisRsBackend {
            conn,
            prefix: prefix.into().into(),
            target: "redis (shared connection manager)".into(),
            timeout: response_timeout,
            connected: Arc::new(AtomicBool::new(true)),
            restart_delay: None,
            waiters: None,
        }
    }

    /// The key prefix (empty by default).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The delayed restart rule's delay for locks on this backend (see
    /// [`RedisRsBuilder::restart_delay`]), as a builder would set it; the default (`None`) is
    /// each lock's own timeout.
    #[must_use]
    pub fn with_restart_delay(mut self, delay: Option<Duration>) -> Self {
        self.restart_delay = delay;
        self
    }

    /// The connection this backend uses, for commands of the application's own.
    pub fn connection_manager(&self) -> &ConnectionManager {
        &self.conn
    }

    fn key(&self, name: &LockName) -> String {
        lock_core::redis::key(&self.prefix, name)
    }

    /// Runs one request with the response timeout, mapping errors. A request that met a
    /// broken connection is made again on the reconnected one (`request` builds it anew), with a
    /// backoff, while the response timeout lasts: every request this backend makes may be
    /// repeated safely (see the type's docs).
    async fn run<T, F, Fut>(&self, op: &'static str, mut request: F) -> Result<T>
    where
        F: FnMut(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let deadline = Instant::now() + self.timeout;
        let mut backoff = Duration::from_millis(10);
        loop {
            match tokio::time::timeout_at(deadline, request(self.conn.clone())).await {
                Ok(Ok(reply)) => {
                    self.connected.store(true, Ordering::Relaxed);
                    return Ok(reply);
                }
                Ok(Err(e)) => {
                    let err = from_redis(e, op, &self.target);
                    let broken = err.kind() == ErrorKind::Connection;
                    self.connected.store(!broken, Ordering::Relaxed);
                    if broken && Instant::now() + backoff < deadline {
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_millis(250));
                        continue;
                    }
                    return Err(err);
                }
                Err(_) => {
                    let (kind, missing) = if self.connected.load(Ordering::Relaxed) {
                        (ErrorKind::Timeout, "no answer")
                    } else {
                        (ErrorKind::Connection, "no connection")
                    };
                    return Err(Error::new(
                        kind,
                        format!(
                            "{op} on {}: {missing} within {:?}",
                            self.target, self.timeout
                        ),
                    ));
                }
            }
        }
    }
}

/// Why a TLS connection is refused without the `tls` feature. The `redis` crate may have TLS
/// all the same (another crate of the build switched it on), but without a crypto provider for
/// rustls it would panic when connecting.
const NO_TLS: &str =
    "TLS (rediss://) needs lock-redis-rs's `tls` feature (process-lock's `redis-rs-tls`)";

/// Where `client` connects with TLS (host and port); `None` for a plain-text connection.
fn tls_endpoint(client: &redis::Client) -> Option<(String, u16)> {
    match client.get_connection_info().addr() {
        redis::ConnectionAddr::TcpTls { host, port, .. } => Some((host.clone(), *port)),
        _ => None,
    }
}

/// Makes `ring` rustls's process-wide crypto provider, unless the application chose one: the
/// `redis` crate builds its TLS configuration with that default, and rustls cannot pick one by
/// itself when other crates of the build switched on none or several of its providers.
#[cfg(feature = "tls")]
fn use_ring_unless_chosen() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Fails only if another thread installed one meanwhile, which is then used.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

#[async_trait]
impl LockBackend for RedisRsBackend {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            remaining_ttl: true,
            notify: self.waiters.is_some(),
            fencing: true,
        }
    }

    async fn try_acquire(&self, name: &LockName, token: &Token, ttl: Ttl) -> Result<Acquire> {
        let key = self.key(name);
        let boot = boot_key(&self.prefix, &key);
        let delay = restart_delay_ms(self.restart_delay, ttl);
        let reply: Vec<i64> = self
            .run("acquire", |mut conn| {
                let mut call = scripts::ACQUIRE.key(&key);
                call.key(&boot)
                    .arg(token.as_str())
                    .arg(ttl.as_millis())
                    .arg(delay);
                async move { call.invoke_async(&mut conn).await }
            })
            .await?;
        lock_core::scripts::acquire_reply(&reply)
            .ok_or_else(|| lock_core::redis::unexpected("acquire", reply))
    }

    async fn renew(&self, name: &LockName, token: &Token, ttl: Ttl) -> Result<bool> {
        let key = self.key(name);
        let reply: i64 = self
            .run("renew", |mut conn| {
                let mut call = scripts::RENEW.key(&key);
                call.arg(token.as_str()).arg(ttl.as_millis());
                async move { call.invoke_async(&mut conn).await }
            })
            .await?;
        lock_core::scripts::renew_reply(reply)
            .ok_or_else(|| lock_core::redis::unexpected("renew", reply))
    }

    async fn try_acquire_fenced(
        &self,
        name: &LockName,
        token: &Token,
        ttl: Ttl,
    ) -> Result<FencedAcquire> {
        let key = self.key(name);
        let (fence, boot) = (fence_key(&key), boot_key(&self.prefix, &key));
        let delay = restart_delay_ms(self.restart_delay, ttl);
        let retention = FENCE_RETENTION.as_millis();
        let reply: Vec<i64> = self
            .run("fenced acquire", |mut conn| {
                let mut call = scripts::ACQUIRE_FENCED.key(&key);
                call.key(&fence)
                    .key(&boot)
                    .arg(token.as_str())
                    .arg(ttl.as_millis())
                    .arg(delay)
                    .arg(retention);
                async move { call.invoke_async(&mut conn).await }
            })
            .await?;
        lock_core::scripts::fenced_reply(&reply)
            .ok_or_else(|| lock_core::redis::unexpected("fenced acquire", reply))
    }

    async fn release(&self, name: &LockName, token: &Token) -> Result<Release> {
        let key = self.key(name);
        let channel = release_channel(&key);
        let reply: i64 = self
            .run("release", |mut conn| {
                let mut call = scripts::RELEASE.key(&key);
                call.arg(token.as_str()).arg(&channel);
                async move { call.invoke_async(&mut conn).await }
            })
            .await?;
        lock_core::scripts::release_reply(reply)
            .ok_or_else(|| lock_core::redis::unexpected("release", reply))
    }

    async fn force_release(&self, name: &LockName) -> Result<ForceRelease> {
        let key = self.key(name);
        let channel = release_channel(&key);
        let reply: i64 = self
            .run("force release", |mut conn| {
                let mut call = scripts::FORCE_RELEASE.key(&key);
                call.arg(&channel);
                async move { call.invoke_async(&mut conn).await }
            })
            .await?;
        lock_core::scripts::force_release_reply(reply)
            .ok_or_else(|| lock_core::redis::unexpected("force release", reply))
    }

    async fn status(&self, name: &LockName) -> Result<Status> {
        let key = self.key(name);
        let reply: i64 = self
            .run("status", |mut conn| {
                let call = scripts::STATUS.key(&key);
                async move { call.invoke_async(&mut conn).await }
            })
            .await?;
        lock_core::scripts::status_reply(reply)
            .ok_or_else(|| lock_core::redis::unexpected("status", reply))
    }

    async fn watch(&self, name: &LockName) -> Result<Watch> {
        match &self.waiters {
            Some(waiters) => waiters.watch(release_channel(&self.key(name))).await,
            None => Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "{self:?} does not offer notification of releases: built from a \
                     connection manager, it has no client to open a Pub/Sub connection with"
                ),
            )),
        }
    }
}

impl fmt::Debug for RedisRsBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRsBackend")
            .field("target", &self.target)
            .field("prefix", &self.prefix)
            .field("response_timeout", &self.timeout)
            .field("notify", &self.waiters.is_some())
            .finish_non_exhaustive()
    }
}
