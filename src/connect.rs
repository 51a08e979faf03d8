//! Connecting a [`Backend`] chosen at run time with the settings both Redis backends share, so
//! that a program (the `process-lock` command among them) sets them once, whichever client it
//! was built with.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use lock_core::redis::ReplicaAck;

use lock_core::{LockBackend, Result};

use crate::select::{Backend, not_compiled};

/// Connecting, here rather than with the rest of [`Backend`], so that choosing a backend does
/// not depend on connecting one.
impl Backend {
    /// A builder to set the server's URL, timeouts or restart delay before connecting this
    /// backend.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> process_lock::Result<()> {
    /// use std::time::Duration;
    /// use process_lock::Backend;
    ///
    /// let backend = Backend::DEFAULT_REDIS
    ///     .builder()
    ///     .url("redis://127.0.0.1:6379/")
    ///     .connect_timeout(Duration::from_secs(1))
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn builder(self) -> BackendBuilder {
        BackendBuilder::new(self)
    }

    /// Connects this backend with the default settings, reading
    /// [`REDIS_URL_ENV`](crate::REDIS_URL_ENV) for the Redis ones; [`builder`](Backend::builder)
    /// to set them.
    ///
    /// # Errors
    ///
    /// As [`BackendBuilder::connect`].
    ///
    /// # Cancel safety
    ///
    /// Safe: dropping the future drops the connection being made.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> process_lock::Result<()> {
    /// use process_lock::Backend;
    ///
    /// if Backend::Memory.is_enabled() {
    ///     let _backend = Backend::Memory.connect().await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn connect(self) -> Result<Arc<dyn LockBackend>> {
        self.builder().connect().await
    }
}

/// Configures and connects a [`Backend`] chosen at run time; made by [`Backend::builder`].
///
/// Each setting is passed to the Redis backend's own builder (`RedisRsBuilder`, `FredBuilder`);
/// those left unset keep its defaults, and the memory backend ignores them all.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> process_lock::Result<()> {
/// use std::time::Duration;
/// use process_lock::Backend;
///
/// // `memory`, `redis-rs` or `fred`, from a configuration file or the command line.
/// let chosen: Backend = "memory".parse()?;
/// # if !chosen.is_enabled() { return Ok(()); }
/// let backend = chosen
///     .builder()
///     .url("redis://127.0.0.1:6379/")
///     .connect_timeout(Duration::from_secs(1))
///     .restart_delay(Duration::ZERO)
///     .connect()
///     .await?;
/// # let _ = backend;
/// # Ok(()) }
/// ```
#[must_use = "a builder does nothing until .connect().await"]
#[derive(Clone)]
pub struct BackendBuilder {
    backend: Backend,
    /// `None`: [`REDIS_URL_ENV`](crate::REDIS_URL_ENV), read when connecting.
    url: Option<String>,
    prefix: Option<String>,
    connect_timeout: Option<Duration>,
    response_timeout: Option<Duration>,
    reconnect_attempts: Option<usize>,
    restart_delay: Option<Duration>,
    replicas: Option<ReplicaAck>,
}

impl BackendBuilder {
    pub(crate) fn new(backend: Backend) -> Self {
        BackendBuilder {
            backend,
            url: None,
            prefix: None,
            connect_timeout: None,
            response_timeout: None,
            reconnect_attempts: None,
            restart_delay: None,
            replicas: None,
        }
    }

    /// The backend this builder connects.
    ///
    /// # Examples
    ///
    /// ```
    /// use process_lock::Backend;
    ///
    /// assert_eq!(Backend::Fred.builder().backend(), Backend::Fred);
    /// ```
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The Redis server: `redis://[user:password@]host[:port][/db]`, `rediss://` for TLS (with
    /// the backend's TLS feature). By default, the URL in
    /// [`REDIS_URL_ENV`](crate::REDIS_URL_ENV) when connecting.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use process_lock::Backend;
    ///
    /// let builder = Backend::DEFAULT_REDIS.builder().url("redis://10.0.0.5:6379/2");
    /// ```
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Puts every lock's key under `prefix` (the key becomes `prefix + name`). None by default,
    /// which is what `process-lock-node` uses: set one only if every process sharing the locks
    /// sets the same.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use process_lock::Backend;
    ///
    /// // Every process sharing the locks must set the same prefix.
    /// let builder = Backend::DEFAULT_REDIS.builder().prefix("billing:");
    /// ```
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// How long to wait for a connection to be established, all attempts together (default:
    /// [`redis::DEFAULT_CONNECT_TIMEOUT`](lock_core::redis::DEFAULT_CONNECT_TIMEOUT)).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use process_lock::Backend;
    ///
    /// let builder = Backend::DEFAULT_REDIS.builder().connect_timeout(Duration::from_secs(2));
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// How long one operation may take, waiting for a reconnection included (default:
    /// [`redis::DEFAULT_RESPONSE_TIMEOUT`](lock_core::redis::DEFAULT_RESPONSE_TIMEOUT)). Past
    /// it the operation fails with [`ErrorKind::Timeout`](crate::ErrorKind::Timeout); it may
    /// or may not have been applied.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use process_lock::Backend;
    ///
    /// let builder = Backend::DEFAULT_REDIS.builder().response_timeout(Duration::from_millis(500));
    /// ```
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = Some(timeout);
        self
    }

    /// How many more times to try connecting after a failed attempt, with exponential backoff
    /// (default: [`redis::DEFAULT_RECONNECT_ATTEMPTS`](lock_core::redis::DEFAULT_RECONNECT_ATTEMPTS)).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use process_lock::Backend;
    ///
    /// let builder = Backend::DEFAULT_REDIS.builder().reconnect_attempts(10);
    /// ```
    pub fn reconnect_attempts(mut self, attempts: usize) -> Self {
        self.reconnect_attempts = Some(attempts);
        self
    }

    /// How long after the Redis server starts a free lock is not granted (the *delayed restart*
    /// rule): a server restarted without persistence has forgotten every lock, whose holders may
    /// go on working until their timeout. By default, the timeout of the lock being acquired;
    /// set the longest timeout any process uses, or [`Duration::ZERO`] for a server whose data
    /// survives restarts.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use process_lock::Backend;
    ///
    /// // The longest timeout any process uses for these locks.
    /// let builder = Backend::DEFAULT_REDIS.builder().restart_delay(Duration::from_secs(60));
    /// ```
    pub fn restart_delay(mut self, delay: Duration) -> Self {
        self.restart_delay = Some(delay);
        self
    }

    /// Replica acknowledgement (Redis backends): after a lock is taken or renewed, `WAIT`
    /// until `ack.replicas()` replicas have it, for at most `ack.timeout()`; with fewer, the
    /// acquisition fails with [`ErrorKind::NotReplicated`](crate::ErrorKind::NotReplicated)
    /// and the lock is released again. See [`ReplicaAck`] for what it protects from, and what
    /// not. Ignored by the memory backend.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use process_lock::{Backend, ReplicaAck};
    ///
    /// let builder = Backend::DEFAULT_REDIS
    ///     .builder()
    ///     .wait_for_replicas(ReplicaAck::new(1, Duration::from_millis(200))?);
    /// # Ok::<(), process_lock::Error>(())
    /// ```
    pub fn wait_for_replicas(mut self, ack: ReplicaAck) -> Self {
        self.replicas = Some(ack);
        self
    }

    /// Connects, within the connect timeout.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) when the backend is not compiled in, or
    /// no URL was set and [`REDIS_URL_ENV`](crate::REDIS_URL_ENV) is unset, or the URL is
    /// malformed or its credentials refused; otherwise the backend's connection errors
    /// ([`ErrorKind::Connection`](crate::ErrorKind::Connection),
    /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout)), whose messages name the server
    /// without its password.
    ///
    /// # Cancel safety
    ///
    /// Safe: dropping the future drops the connection being made.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> process_lock::Result<()> {
    /// use std::time::Duration;
    /// use process_lock::{Backend, Lock};
    ///
    /// let backend = Backend::from_env()?.builder().connect().await?;
    /// let lock = Lock::new(backend, "reports", Duration::from_secs(30))?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(self) -> Result<Arc<dyn LockBackend>> {
        // The two Redis builders have the same methods, not a common trait.
        #[allow(unused_macros)]
        macro_rules! configure {
            ($builder:expr) => {{
                let mut builder = $builder;
                if let Some(prefix) = self.prefix {
                    builder = builder.prefix(prefix);
                }
                if let Some(timeout) = self.connect_timeout {
                    builder = builder.connect_timeout(timeout);
                }
                if let Some(timeout) = self.response_timeout {
                    builder = builder.response_timeout(timeout);
                }
                if let Some(attempts) = self.reconnect_attempts {
                    builder = builder.reconnect_attempts(attempts);
                }
                if let Some(delay) = self.restart_delay {
                    builder = builder.restart_delay(delay);
                }
                if let Some(ack) = self.replicas {
                    builder = builder.wait_for_replicas(ack);
                }
                builder
            }};
        }
        match self.backend {
            #[cfg(feature = "memory")]
            Backend::Memory => Ok(Arc::new(lock_memory::MemoryBackend::new())),
            #[cfg(feature = "redis-rs")]
            Backend::RedisRs => {
                let url = match self.url {
                    Some(url) => url,
                    None => lock_core::redis::url_from_env()?,
                };
                let builder = configure!(lock_redis_rs::RedisRsBackend::builder(&url));
                Ok(Arc::new(builder.connect().await?))
            }
            #[cfg(feature = "fred")]
            Backend::Fred => {
                let url = match self.url {
                    Some(url) => url,
                    None => lock_core::redis::url_from_env()?,
                };
                let builder = configure!(lock_fred::FredBackend::builder(&url));
                Ok(Arc::new(builder.connect().await?))
            }
            #[allow(unreachable_patterns)]
            other => Err(not_compiled(other)),
        }
    }
}

impl BackendBuilder {
    /// Redlock over several independent Redis servers: connects this backend, with these
    /// settings, to each of `urls` (at once), and makes a [`Quorum`](crate::Quorum) of them
    /// (see [`Quorum::from_connections`](crate::quorum::Quorum::from_connections): a server
    /// out of reach at the start counts as a node that fails every request, as long as a
    /// majority connected). The builder's own URL is not used.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) without URLs; a URL or
    /// setting a backend refuses; fewer than a majority of servers reached (an error that
    /// lists each one's).
    ///
    /// # Cancel safety
    ///
    /// Safe: dropping the future drops the connections being made.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> process_lock::Result<()> {
    /// use std::time::Duration;
    /// use process_lock::{Backend, ProcessLock};
    ///
    /// let redlock = Backend::DEFAULT_REDIS
    ///     .builder()
    ///     .connect_quorum(["redis://a:6379/", "redis://b:6379/", "redis://c:6379/"])
    ///     .await?;
    /// let job = ProcessLock::new(redlock, "nightly-report", Duration::from_secs(60))?;
    /// # Ok(()) }
    /// ```
    pub async fn connect_quorum(
        self,
        urls: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<Arc<dyn LockBackend>> {
        let connecting: Vec<_> = urls
            .into_iter()
            .map(|url| tokio::spawn(self.clone().url(url).connect()))
            .collect();
        let mut connected = Vec::with_capacity(connecting.len());
        for task in connecting {
            connected.push(task.await.unwrap_or_else(|e| {
                Err(lock_core::Error::new(
                    lock_core::ErrorKind::Backend,
                    format!("connecting a node failed: {e}"),
                ))
            }));
        }
        Ok(Arc::new(lock_core::quorum::Quorum::from_connections(
            connected,
        )?))
    }
}

impl fmt::Debug for BackendBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the password in the URL.
        f.debug_struct("BackendBuilder")
            .field("backend", &self.backend)
            .field("url", &self.url.as_deref().map(lock_core::redact_url))
            .field("prefix", &self.prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("reconnect_attempts", &self.reconnect_attempts)
            .field("restart_delay", &self.restart_delay)
            .field("replicas", &self.replicas)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password() {
        let builder = Backend::RedisRs
            .builder()
            .url("redis://user:hunter2@db.example:6379/0");
        let shown = format!("{builder:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("db.example"), "{shown}");
    }

    #[cfg(not(feature = "fred"))]
    #[tokio::test]
    async fn a_backend_not_compiled_in_says_which_feature() {
        let Err(err) = Backend::Fred.builder().url("redis://x/").connect().await else {
            panic!("fred is not compiled in");
        };
        assert_eq!(err.kind(), lock_core::ErrorKind::Config);
        assert!(err.to_string().contains("`fred` feature"), "{err}");
    }
}
