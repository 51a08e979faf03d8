//! [`RedisRsBackend`]: the type users hold, on the protocol of [`lock_core::redis`] over a
//! [`RedisRsTransport`].

use std::time::Duration;

use lock_core::redis::Settings;
use redis::aio::ConnectionManager;

use crate::transport::RedisRsTransport;

#[cfg(doc)]
use crate::RedisRsBuilder;
#[cfg(doc)]
use lock_core::{Capabilities, ErrorKind, LockBackend, Release};

lock_core::redis::backend_api! {
    /// Locks in Redis, through the `redis` crate.
    ///
    /// One shared, multiplexed connection (`redis::aio::ConnectionManager`) carries every request
    /// from every clone and task, and reconnects by itself after the server restarts or the network
    /// breaks. A request that meets a broken connection is sent again on the new one (with a
    /// backoff from 10 ms, within the response timeout): every script is idempotent for one token
    /// (acquiring again what the token holds only resets its expiry; a release that already landed
    /// answers [`Release::Missing`]), so a lock is never taken twice behind the caller's back.
    ///
    /// **Restarts.** A free lock is not granted on a server that started less than the [restart
    /// delay](RedisRsBuilder::restart_delay) ago (by default the lock's timeout), since a lock held
    /// before a restart without persistence may still be in use; see [`lock_core::redis::scripts`].
    ///
    /// Every operation is one round trip and atomic: acquire (plain or
    /// [fenced](LockBackend::try_acquire_fenced)), renew, release, force release and status are
    /// the shared scripts of [`lock_core::redis`] (by `EVALSHA`, and once by `EVAL`, whole, after
    /// a `SCRIPT FLUSH` or a restart emptied the server's script cache). Each operation is
    /// bounded by the [response timeout](RedisRsBuilder::response_timeout), reconnection
    /// included.
    ///
    /// The key is the lock name (after an optional [prefix](RedisRsBuilder::prefix), none by
    /// default) and the value the owner's token, as in `process-lock-node`, so Rust and Node
    /// processes contending for one name exclude each other. A fenced acquire also counts in the
    /// lock's [`fence_key`](lock_core::redis::keys::fence_key), under the same prefix.
    ///
    /// **Waiting.** Every release (owned or forced) is published on the lock's
    /// [`release_channel`](lock_core::redis::keys::release_channel), and
    /// [`watch`](LockBackend::watch) subscribes to it, so [`Lock::lock`] sleeps until a
    /// release instead of polling. All the waiters of a backend and its clones share one more
    /// connection, for Pub/Sub: opened on the first watch (within the [connect
    /// timeout](RedisRsBuilder::connect_timeout)), sending nothing but `SUBSCRIBE` and
    /// `UNSUBSCRIBE`, reconnected in the background (50 ms doubling to 1 s between attempts) and
    /// then subscribed again, which wakes every waiter in case a release went unseen. It closes
    /// once the last clone and the last waiter are gone. Like the main connection's, its task runs
    /// on the tokio runtime it was opened from (the first watch's), which must outlive its use. A
    /// backend made by [`from_connection_manager`](RedisRsBackend::from_connection_manager) has no
    /// client to open it with, and does not offer notification: its waiters poll.
    ///
    /// [`Lock::lock`]: lock_core::Lock::lock
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
    pub struct RedisRsBackend on RedisRsTransport, built by RedisRsBuilder;
}

impl RedisRsBackend {
    /// A backend on a `ConnectionManager` the application already has (its timeouts and
    /// reconnection settings apply), with keys under `prefix` (`""` for none).
    ///
    /// Such a backend cannot open a Pub/Sub connection, having no client: it does not offer
    /// notification ([`Capabilities::notify`] is false, [`watch`](LockBackend::watch) fails with
    /// [`ErrorKind::Unsupported`]), so [`Lock::lock`](lock_core::Lock::lock)
    /// polls the lock while waiting. To wait by notification with a client of your own, use
    /// [`with_client`](RedisRsBackend::with_client).
    ///
    /// # Examples
    ///
    /// ```
    /// # async fn example() -> lock_core::Result<()> {
    /// use std::time::Duration;
    /// use lock_redis_rs::RedisRsBackend;
    ///
    /// let client = redis::Client::open("redis://127.0.0.1/").map_err(|e| {
    ///     lock_core::Error::new(lock_core::ErrorKind::Config, "bad URL").with_source(e)
    /// })?;
    /// let conn = redis::aio::ConnectionManager::new(client).await.map_err(|e| {
    ///     lock_core::Error::new(lock_core::ErrorKind::Connection, "no Redis").with_source(e)
    /// })?;
    /// let backend = RedisRsBackend::from_connection_manager(conn, "", Duration::from_secs(2));
    /// # Ok(()) }
    /// ```
    pub fn from_connection_manager(
        conn: ConnectionManager,
        prefix: impl Into<String>,
        response_timeout: Duration,
    ) -> Self {
        let mut settings = Settings::default();
        settings.prefix = prefix.into();
        settings.response_timeout = response_timeout;
        let target = "redis (shared connection manager)".into();
        Self::new(RedisRsTransport::new(conn, target, None), &settings)
    }

    /// The delayed restart rule's delay for locks on this backend (see
    /// [`RedisRsBuilder::restart_delay`]), as a builder would set it; the default (`None`) is each
    /// lock's own timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// # async fn example() -> lock_core::Result<()> {
    /// use std::time::Duration;
    /// use lock_redis_rs::RedisRsBackend;
    ///
    /// // A server whose data survives restarts (AOF with fsync always): no delay needed.
    /// let backend = RedisRsBackend::connect("redis://127.0.0.1/").await?
    ///     .with_restart_delay(Some(Duration::ZERO));
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn with_restart_delay(self, delay: Option<Duration>) -> Self {
        RedisRsBackend {
            inner: self.inner.with_restart_delay(delay),
        }
    }

    /// The connection this backend uses on one server, for commands of the application's own;
    /// `None` on a Redis Cluster.
    ///
    /// # Examples
    ///
    /// ```
    /// # async fn example() -> lock_core::Result<()> {
    /// use lock_redis_rs::RedisRsBackend;
    ///
    /// let backend = RedisRsBackend::connect("redis://127.0.0.1/").await?;
    /// // `None` on a Redis Cluster.
    /// let Some(conn) = backend.connection_manager() else { return Ok(()) };
    /// let mut conn = conn.clone();
    /// let pong: String = redis::cmd("PING").query_async(&mut conn).await.map_err(|e| {
    ///     lock_core::Error::new(lock_core::ErrorKind::Connection, "PING failed").with_source(e)
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn connection_manager(&self) -> Option<&ConnectionManager> {
        self.inner.transport().connection_manager()
    }
}
