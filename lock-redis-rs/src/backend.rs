//! [`RedisRsBackend`]: the `LockBackend` implementation on the `redis` crate.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lock_core::scripts::{fence_key, release_channel};
use lock_core::{
    Acquire, Capabilities, Error, ErrorKind, FencedAcquire, ForceRelease, LockBackend, LockName,
    Release, Result, Status, Token, Ttl, Watch, async_trait,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::error::from_redis;
use crate::pubsub::{PubSubLink, Waiters};
use crate::scripts;

/// The environment variable `process-lock-node` reads the server's URL from.
pub const REDIS_URL_ENV: &str = "REDIS_URL";

/// Locks in Redis, through the `redis` crate.
///
/// One shared, multiplexed connection (`redis::aio::ConnectionManager`) carries every request
/// from every clone and task, and reconnects by itself after the server restarts or the
/// network breaks: a request in flight at that moment fails with a
/// [`Connection`](ErrorKind::Connection) error and is never replayed, so a lock is never taken
/// twice behind the caller's back.
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
}

impl RedisRsBuilder {
    /// Default time to establish a connection: 2 s.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
    /// Default time for one operation, waiting for a reconnection included: 2 s.
    pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
    /// Default connection attempts after the first fails: 3, with exponential backoff.
    pub const DEFAULT_RECONNECT_ATTEMPTS: usize = 3;

    fn new(client: Result<redis::Client>, target: String) -> Self {
        RedisRsBuilder {
            client,
            target,
            prefix: String::new(),
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            response_timeout: Self::DEFAULT_RESPONSE_TIMEOUT,
            reconnect_attempts: Self::DEFAULT_RECONNECT_ATTEMPTS,
        }
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
    /// [`ErrorKind::Config`] for a malformed URL or refused credentials,
    /// [`ErrorKind::Connection`] when the server cannot be reached, [`ErrorKind::Timeout`] when
    /// it does not answer in time. Messages name the server without its password.
    ///
    /// # Cancel safety
    ///
    /// Safe: dropping the future drops the connection being made.
    pub async fn connect(self) -> Result<RedisRsBackend> {
        let client = self.client?;
        #[cfg(feature = "tls")]
        {
            // rustls needs one process-wide crypto provider; an application that installed its
            // own keeps it (install_default then fails, harmlessly).
            let _ = rustls::crypto::ring::default_provider().install_default();
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
        let connecting = ConnectionManager::new_with_config(client, config);
        let conn = match tokio::time::timeout(self.connect_timeout, connecting).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(from_redis(e, "connecting", &target)),
            Err(_) => {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "connecting to {target}: no connection within {:?}",
                        self.connect_timeout
                    ),
                ));
            }
        };
        Ok(RedisRsBackend {
            conn,
            prefix: self.prefix.into(),
            target: target.into(),
            timeout: self.response_timeout,
            connected: Arc::new(AtomicBool::new(true)),
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
        Self::builder(&url_from_env(std::env::var(REDIS_URL_ENV))?)
            .connect()
            .await
    }

    /// A builder for the server at `url`, to set a prefix or timeouts before connecting.
    pub fn builder(url: &str) -> RedisRsBuilder {
        let target = lock_core::redact_url(url);
        let client = redis::Client::open(url).map_err(|e| {
            let hint = if url.starts_with("rediss") && !cfg!(feature = "tls") {
                " (TLS needs lock-redis-rs's `tls` feature)"
            } else {
                ""
            };
            Error::new(
                ErrorKind::Config,
                format!("invalid Redis URL {target}{hint}"),
            )
            .with_source(e)
        });
        RedisRsBuilder::new(client, target)
    }

    /// A builder that connects through a `redis::Client` the application already has.
    pub fn with_client(client: redis::Client) -> RedisRsBuilder {
        let info = client.get_connection_info();
        let target = format!("redis://{}/{}", info.addr(), info.redis_settings().db());
        RedisRsBuilder::new(Ok(client), target)
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
            waiters: None,
        }
    }

    /// The key prefix (empty by default).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The connection this backend uses, for commands of the application's own.
    pub fn connection_manager(&self) -> &ConnectionManager {
        &self.conn
    }

    fn key(&self, name: &LockName) -> String {
        let mut key = String::with_capacity(self.prefix.len() + name.as_str().len());
        key.push_str(&self.prefix);
        key.push_str(name.as_str());
        key
    }

    /// Runs one request with the response timeout, mapping errors.
    async fn run<T>(
        &self,
        op: &'static str,
        request: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.timeout, request).await {
            Ok(Ok(reply)) => {
                self.connected.store(true, Ordering::Relaxed);
                Ok(reply)
            }
            Ok(Err(e)) => {
                let err = from_redis(e, op, &self.target);
                self.connected
                    .store(err.kind() != ErrorKind::Connection, Ordering::Relaxed);
                Err(err)
            }
            Err(_) => {
                let (kind, missing) = if self.connected.load(Ordering::Relaxed) {
                    (ErrorKind::Timeout, "no answer")
                } else {
                    (ErrorKind::Connection, "no connection")
                };
                Err(Error::new(
                    kind,
                    format!(
                        "{op} on {}: {missing} within {:?}",
                        self.target, self.timeout
                    ),
                ))
            }
        }
    }
}

fn url_from_env(var: std::result::Result<String, std::env::VarError>) -> Result<String> {
    var.map_err(|e| {
        Error::new(
            ErrorKind::Config,
            format!("{REDIS_URL_ENV} must name the Redis server, e.g. redis://127.0.0.1:6379/"),
        )
        .with_source(e)
    })
}

fn unexpected(op: &str, what: impl fmt::Debug) -> Error {
    Error::new(
        ErrorKind::UnexpectedReply,
        format!("{op}: Redis answered {what:?}"),
    )
}

/// Redis's `PTTL` answer as a remaining time: `None` for a key without expiry (-1).
fn remaining(pttl: i64) -> Option<Duration> {
    u64::try_from(pttl).ok().map(Duration::from_millis)
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
        let mut conn = self.conn.clone();
        let mut call = scripts::ACQUIRE.key(self.key(name));
        call.arg(token.as_str()).arg(ttl.as_millis());
        let reply: Vec<i64> = self.run("acquire", call.invoke_async(&mut conn)).await?;
        match reply[..] {
            [1] => Ok(Acquire::Acquired),
            [0, pttl] => Ok(Acquire::Held {
                remaining: remaining(pttl),
            }),
            _ => Err(unexpected("acquire", reply)),
        }
    }

    async fn renew(&self, name: &LockName, token: &Token, ttl: Ttl) -> Result<bool> {
        let mut conn = self.conn.clone();
        let mut call = scripts::RENEW.key(self.key(name));
        call.arg(token.as_str()).arg(ttl.as_millis());
        match self.run("renew", call.invoke_async(&mut conn)).await? {
            1i64 => Ok(true),
            0 => Ok(false),
            other => Err(unexpected("renew", other)),
        }
    }

    async fn try_acquire_fenced(
        &self,
        name: &LockName,
        token: &Token,
        ttl: Ttl,
    ) -> Result<FencedAcquire> {
        let mut conn = self.conn.clone();
        let key = self.key(name);
        let fence = fence_key(&key);
        let mut call = scripts::ACQUIRE_FENCED.key(key);
        call.key(fence).arg(token.as_str()).arg(ttl.as_millis());
        let reply: Vec<i64> = self
            .run("fenced acquire", call.invoke_async(&mut conn))
            .await?;
        lock_core::scripts::fenced_reply(&reply).ok_or_else(|| unexpected("fenced acquire", reply))
    }

    async fn release(&self, name: &LockName, token: &Token) -> Result<Release> {
        let mut conn = self.conn.clone();
        let key = self.key(name);
        let channel = release_channel(&key);
        let mut call = scripts::RELEASE.key(key);
        call.arg(token.as_str()).arg(channel);
        match self.run("release", call.invoke_async(&mut conn)).await? {
            1i64 => Ok(Release::Released),
            0 => Ok(Release::NotOwner),
            -1 => Ok(Release::Missing),
            other => Err(unexpected("release", other)),
        }
    }

    async fn force_release(&self, name: &LockName) -> Result<ForceRelease> {
        let mut conn = self.conn.clone();
        let key = self.key(name);
        let channel = release_channel(&key);
        let mut call = scripts::FORCE_RELEASE.key(key);
        call.arg(channel);
        match self
            .run("force release", call.invoke_async(&mut conn))
            .await?
        {
            1i64 => Ok(ForceRelease::Released),
            0 => Ok(ForceRelease::Missing),
            other => Err(unexpected("force release", other)),
        }
    }

    async fn status(&self, name: &LockName) -> Result<Status> {
        let mut conn = self.conn.clone();
        let cmd = redis::cmd("PTTL").arg(self.key(name)).to_owned();
        match self.run("status", cmd.query_async(&mut conn)).await? {
            -2i64 => Ok(Status::open()),
            pttl if pttl >= -1 => Ok(Status::locked(remaining(pttl))),
            other => Err(unexpected("status", other)),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_redis_url_is_a_config_error() {
        let err = url_from_env(Err(std::env::VarError::NotPresent)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("REDIS_URL"), "{err}");
    }

    #[test]
    fn pttl_to_remaining() {
        assert_eq!(remaining(-1), None);
        assert_eq!(remaining(1500), Some(Duration::from_millis(1500)));
    }
}
