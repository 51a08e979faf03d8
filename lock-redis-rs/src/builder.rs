//! [`RedisRsBuilder`]: what configures a [`RedisRsBackend`] before it connects, and the
//! backend's constructors that make one.

use std::fmt;

use lock_core::Result;
use lock_core::redis::Settings;

use crate::backend::RedisRsBackend;
use crate::connect;

#[cfg(doc)]
use lock_core::ErrorKind;

impl RedisRsBackend {
    /// A builder for the server at `url`, to set a prefix or timeouts before connecting:
    /// `redis://host:port/db`, `rediss://` for TLS (with the `tls` feature), and
    /// `redis://user:password@host/` for credentials.
    ///
    /// A `rediss://` (or `valkeys://`) URL needs this crate's `tls` feature: without it,
    /// [`connect`](RedisRsBuilder::connect) fails with [`ErrorKind::Config`] before anything is
    /// attempted, whatever features the `redis` crate has.
    ///
    /// # Examples
    ///
    /// ```
    /// # async fn example() -> lock_core::Result<()> {
    /// use std::time::Duration;
    /// use lock_redis_rs::RedisRsBackend;
    ///
    /// let backend = RedisRsBackend::builder("redis://127.0.0.1:6379/0")
    ///     .prefix("myapp:")
    ///     .response_timeout(Duration::from_secs(2))
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn builder(url: &str) -> RedisRsBuilder {
        let target = lock_core::redact_url(url);
        RedisRsBuilder::new(connect::client_for_url(url, &target), target)
    }

    /// A builder that connects through a `redis::Client` the application already has.
    ///
    /// A client that connects with TLS needs this crate's `tls` feature: without it,
    /// [`connect`](RedisRsBuilder::connect) fails with [`ErrorKind::Config`].
    ///
    /// # Examples
    ///
    /// ```
    /// # async fn example() -> lock_core::Result<()> {
    /// use lock_redis_rs::RedisRsBackend;
    ///
    /// let client = redis::Client::open("redis://127.0.0.1/").map_err(|e| {
    ///     lock_core::Error::new(lock_core::ErrorKind::Config, "bad URL").with_source(e)
    /// })?;
    /// let backend = RedisRsBackend::with_client(client).connect().await?;
    /// # Ok(()) }
    /// ```
    pub fn with_client(client: redis::Client) -> RedisRsBuilder {
        let (client, target) = connect::application_client(client);
        RedisRsBuilder::new(client, target)
    }
}

/// Configures and connects a [`RedisRsBackend`]; made by [`RedisRsBackend::builder`] or
/// [`RedisRsBackend::with_client`].
///
/// # Examples
///
/// ```
/// # async fn example() -> lock_core::Result<()> {
/// use std::time::Duration;
/// use lock_redis_rs::RedisRsBackend;
///
/// let backend = RedisRsBackend::builder("redis://127.0.0.1/")
///     .connect_timeout(Duration::from_secs(5))
///     .reconnect_attempts(3)
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[must_use = "a builder does nothing until .connect().await"]
pub struct RedisRsBuilder {
    client: Result<redis::Client>,
    /// The server's URL without its password, for messages.
    target: String,
    settings: Settings,
}

lock_core::redis::builder_api! {
    impl RedisRsBuilder { settings }

    /// How long to wait for a connection to be established: the main one, and the Pub/Sub one
    /// waiters share (on the first watch, and each time it reconnects).
    connect_timeout;

    /// How long one operation may take, waiting for a reconnection included. Past it the
    /// operation fails with [`ErrorKind::Timeout`](lock_core::ErrorKind::Timeout); it may or
    /// may not have been applied. A `SUBSCRIBE` unanswered for that long also fails the watch,
    /// and the Pub/Sub connection is then replaced.
    response_timeout;

    /// How many more times to try connecting after a failed attempt, with exponential backoff
    /// from 50 ms.
    reconnect_attempts;
}

impl RedisRsBuilder {
    fn new(client: Result<redis::Client>, target: String) -> Self {
        RedisRsBuilder {
            client,
            target,
            settings: Settings::default(),
        }
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
    ///
    /// # Examples
    ///
    /// ```
    /// # async fn example() -> lock_core::Result<()> {
    /// use lock_redis_rs::RedisRsBackend;
    ///
    /// match RedisRsBackend::builder("redis://127.0.0.1/").connect().await {
    ///     Ok(backend) => println!("connected: {backend:?}"),
    ///     Err(e) if e.is_retryable() => eprintln!("Redis is not reachable yet: {e}"),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn connect(self) -> Result<RedisRsBackend> {
        let transport = connect::transport(self.client?, self.target, &self.settings).await?;
        Ok(RedisRsBackend::new(transport, &self.settings))
    }
}

impl fmt::Debug for RedisRsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRsBuilder")
            .field("target", &self.target)
            .field("settings", &self.settings)
            .finish()
    }
}
