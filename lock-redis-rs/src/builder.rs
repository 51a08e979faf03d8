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
    /// A Redis Cluster is named by its seed nodes, as `fred` writes it:
    /// `redis-cluster://host:port?node=host2:port2&node=host3:port3` (read by
    /// [`cluster_nodes`](lock_core::redis::cluster_nodes)); the backend then runs each script
    /// on the node that serves its lock's slot, and wakes waiters by sharded Pub/Sub
    /// ([`cluster`](Self::cluster) says more).
    ///
    /// A primary behind Sentinel is named by its sentinels, as `fred` writes it too:
    /// `redis-sentinel://host:port/db?sentinelServiceName=name&node=host:port` (read by
    /// [`sentinel_target`](lock_core::redis::sentinel_target); credentials and database are
    /// the data servers'). The backend asks the sentinels for the primary, and asks again when
    /// the connection breaks, times out, or meets a demoted primary (`READONLY`). It also
    /// listens to every sentinel for the failovers they announce (`+switch-master`, on one
    /// Pub/Sub connection per sentinel) and moves both its connections to the announced
    /// primary at once, without waiting for a request to the old one to time out.
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
        if let Some(nodes) = lock_core::redis::cluster_nodes(url) {
            let nodes = nodes.and_then(|nodes| connect::cluster_nodes(&nodes, &target));
            return RedisRsBuilder::new(nodes.map(Source::Cluster), target);
        }
        if let Some(sentinels) = lock_core::redis::sentinel_target(url) {
            let sentinels = sentinels.and_then(|s| connect::check_sentinels(s, &target));
            return RedisRsBuilder::new(sentinels.map(Source::Sentinel), target);
        }
        let client =
            connect::client_for_url(url, &target).map(|client| Source::Single(Box::new(client)));
        RedisRsBuilder::new(client, target)
    }

    /// A builder for the Redis Cluster whose seed nodes are `urls` (`redis://host:port/` each;
    /// any one reachable node is enough to learn the others).
    ///
    /// On a cluster every key and channel of a lock is in the lock key's hash slot, so each
    /// operation is one script on the node that serves the slot, as on one server. Releases
    /// and hand-offs are published with `SPUBLISH` and waited for with `SSUBSCRIBE` (Redis 7
    /// or later), on the cluster connections themselves (RESP3): a release costs its shard,
    /// not the whole cluster. The connection follows `MOVED` and `ASK` redirections and
    /// topology changes, and subscribes again after a reconnection or when a slot moved.
    ///
    /// # Examples
    ///
    /// ```
    /// # async fn example() -> lock_core::Result<()> {
    /// use lock_redis_rs::RedisRsBackend;
    ///
    /// let backend = RedisRsBackend::cluster(["redis://10.0.0.1:7000/", "redis://10.0.0.2:7000/"])
    ///     .prefix("myapp:")
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn cluster<'a>(urls: impl IntoIterator<Item = &'a str>) -> RedisRsBuilder {
        let urls: Vec<String> = urls.into_iter().map(str::to_owned).collect();
        let target = connect::cluster_target(&urls);
        let nodes = connect::cluster_nodes(&urls, &target);
        RedisRsBuilder::new(nodes.map(Source::Cluster), target)
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
        RedisRsBuilder::new(
            client.map(|client| Source::Single(Box::new(client))),
            target,
        )
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
    source: Result<Source>,
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

/// What a builder connects to.
enum Source {
    Single(Box<redis::Client>),
    /// A cluster's seed nodes.
    Cluster(Vec<redis::ConnectionInfo>),
    /// The sentinels of a primary.
    Sentinel(lock_core::redis::SentinelTarget),
}

impl RedisRsBuilder {
    fn new(source: Result<Source>, target: String) -> Self {
        RedisRsBuilder {
            source,
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
        let transport = match self.source? {
            Source::Single(client) => {
                connect::transport(*client, self.target, &self.settings).await?
            }
            Source::Cluster(nodes) => {
                connect::cluster_transport(nodes, self.target, &self.settings).await?
            }
            Source::Sentinel(sentinels) => {
                connect::sentinel_transport(&sentinels, self.target, &self.settings).await?
            }
        };
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
