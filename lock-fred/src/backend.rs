//! [`FredBackend`]: the type users hold, on the protocol of [`lock_core::redis`] over a
//! [`FredTransport`].

use fred::prelude::Client;

use crate::transport::FredTransport;

#[cfg(doc)]
use crate::FredBuilder;
#[cfg(doc)]
use fred::prelude::Pool;
#[cfg(doc)]
use lock_core::{LockBackend, Release};

lock_core::redis::backend_api! {
    /// Locks in Redis, through the `fred` crate.
    ///
    /// One multiplexed connection (a `fred` [`Client`], or each client of a [`Pool`]) carries every
    /// request from every clone and task. A backend built from a URL reconnects by itself after the
    /// server restarts or the network breaks (see [`FredBuilder::reconnect_policy`]). A request
    /// that meets a broken connection is sent again once the client has reconnected, within the
    /// response timeout: every script is idempotent for one token (acquiring again what the token
    /// holds only resets its expiry; a release that already landed answers [`Release::Missing`]),
    /// so a lock is never taken twice behind the caller's back. fred may write a command again
    /// itself, after a cluster redirection (`MOVED`, `ASK`) or a broken connection, but only
    /// before the command's timeout, which ends just before the response timeout: never once
    /// the caller has had its answer or its error.
    ///
    /// Every operation is one round trip and atomic: acquire (fenced or not), renew, release, force
    /// release and status are the scripts of [`lock_core::redis`] (by `EVALSHA`, and once by
    /// `EVAL`, whole, after a `SCRIPT FLUSH` or a restart emptied the server's script cache).
    /// Each operation is bounded by the [response timeout](FredBuilder::response_timeout),
    /// waiting for a reconnection included.
    ///
    /// **Restarts.** A free lock is not granted on a server that started less than the [restart
    /// delay](FredBuilder::restart_delay) ago (by default the lock's timeout), since a lock held
    /// before a restart without persistence may still be in use; see [`lock_core::redis::scripts`].
    ///
    /// Every release, owned or forced, is published on the lock's channel
    /// ([`release_channel`](lock_core::redis::keys::release_channel)), and waiters
    /// ([`LockBackend::watch`]) are woken by it: the backend opens one more connection, for
    /// Pub/Sub, on the first watch, with the same configuration (server, TLS, credentials) as its
    /// client's, and shares it among all its clones and waiters. It subscribes to a lock's channel
    /// while someone in the process waits for that lock, and after that connection broke and came
    /// back it subscribes again and wakes every waiter (a release may have gone unseen). Fencing
    /// tokens ([`LockBackend::try_acquire_fenced`]) count acquisitions in a second key, the lock's
    /// [`fence_key`](lock_core::redis::keys::fence_key).
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
    pub struct FredBackend on FredTransport, built by FredBuilder;
}

impl FredBackend {
    /// A client this backend uses (for a pool, the next in turn), for commands of the application's
    /// own. For a backend built from a URL it works as long as the backend lives.
    ///
    /// # Examples
    ///
    /// ```
    /// # async fn example() -> lock_core::Result<()> {
    /// use fred::prelude::ClientLike;
    /// use lock_fred::FredBackend;
    ///
    /// let backend = FredBackend::connect("redis://127.0.0.1/").await?;
    /// let pong: String = backend.client().ping(None).await.map_err(|e| {
    ///     lock_core::Error::new(lock_core::ErrorKind::Connection, "PING failed").with_source(e)
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn client(&self) -> &Client {
        self.inner.transport().client()
    }
}
