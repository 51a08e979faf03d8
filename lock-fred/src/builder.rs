//! [`FredBuilder`]: what configures a [`FredBackend`] before it connects, and the backend's
//! constructors that make one.

use std::fmt;
use std::sync::Arc;

use fred::prelude::{Builder, Client, ClientLike, Config, Pool, ReconnectPolicy};
use lock_core::redis::Settings;
use lock_core::{Error, ErrorKind, Result};
use tokio::time::Instant;

use crate::backend::FredBackend;
use crate::config::{config_from_url, describe};
use crate::connect::{Starter, default_reconnect_policy};
use crate::pubsub::PubSub;
use crate::transport::{Conn, FredTransport};

impl FredBackend {
    /// A builder for the server at `url`, to set a prefix, timeouts or a reconnection policy
    /// before connecting: `redis://host:port/db`, `rediss://` for TLS (with the `tls` feature),
    /// and `redis://user:password@host/` for credentials; `?protocol=resp3` selects RESP3.
    ///
    /// Accepts the URLs the `redis-rs` backend accepts over TCP: the schemes `redis`, `valkey`,
    /// and `rediss`, `valkeys` for TLS; and a Redis Cluster by its seed nodes,
    /// `redis-cluster://host:port?node=host:port&node=host:port` (`rediss-cluster://` for TLS),
    /// whose scripts run on the node of each lock's slot and whose waiters subscribe with
    /// `SSUBSCRIBE` there; and a primary behind Sentinel by its sentinels,
    /// `redis-sentinel://host:port/db?sentinelServiceName=name&node=host:port` (read by
    /// [`sentinel_target`](lock_core::redis::sentinel_target)). Behind sentinels the backend
    /// also listens to every sentinel for the failovers they announce (`+switch-master`, on
    /// one Pub/Sub connection per sentinel) and reconnects its clients until they are on the
    /// announced primary, without waiting for a request to the old one to time out. A unix
    /// socket goes through a `fred` client built by the application
    /// ([`with_client`](Self::with_client)).
    ///
    /// # Examples
    ///
    /// ```
    /// # async fn example() -> lock_core::Result<()> {
    /// use std::time::Duration;
    /// use lock_fred::FredBackend;
    ///
    /// let backend = FredBackend::builder("redis://127.0.0.1:6379/0")
    ///     .prefix("myapp:")
    ///     .response_timeout(Duration::from_secs(2))
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn builder(url: &str) -> FredBuilder {
        let target = lock_core::redact_url(url);
        let config = config_from_url(url, &target);
        FredBuilder::new(Source::Url(config), target)
    }

    /// A builder on a `fred` [`Client`] the application already has, connected or not (it is
    /// connected if needed). Its own reconnection policy and timeouts apply, besides the
    /// builder's response timeout; its commands are never written once their caller has had its
    /// answer or its error.
    ///
    /// Waiters are woken over a Pub/Sub connection of the backend's own, made on the first
    /// watch from a copy of the client's configuration (server or topology, TLS, credentials,
    /// timeouts) and its reconnection policy, or the
    /// [default one](FredBuilder::default_reconnect_policy) if it has none; the application's
    /// client itself never subscribes.
    ///
    /// On a Redis Cluster or behind sentinels, one of the backend's requests that times out or
    /// whose connection breaks makes the backend look for the topology again on the client
    /// (a primary may have stopped without closing its connections, and a cluster tells a
    /// client that gets no answer nothing): on a Cluster it runs `sync_cluster`; behind
    /// sentinels it forces the client to reconnect, which asks the sentinels for the primary,
    /// and the application's commands in flight on that client fail then. At most once per
    /// connect timeout. Behind sentinels the backend also forces the client to reconnect when
    /// a sentinel announces a failover (`+switch-master`). Give the backend a client of its
    /// own (or [`builder`](Self::builder)) where that is not acceptable.
    ///
    /// # Examples
    ///
    /// ```
    /// # async fn example() -> lock_core::Result<()> {
    /// use fred::prelude::{Builder, Config};
    /// use lock_fred::FredBackend;
    ///
    /// let config = Config::from_url("redis://127.0.0.1/").map_err(|e| {
    ///     lock_core::Error::new(lock_core::ErrorKind::Config, "bad URL").with_source(e)
    /// })?;
    /// let client = Builder::from_config(config).build().map_err(|e| {
    ///     lock_core::Error::new(lock_core::ErrorKind::Config, "bad client").with_source(e)
    /// })?;
    /// let backend = FredBackend::with_client(client).connect().await?;
    /// # Ok(()) }
    /// ```
    pub fn with_client(client: Client) -> FredBuilder {
        let target = describe(&client.client_config());
        FredBuilder::new(Source::Client(client), target)
    }

    /// A builder on a `fred` [`Pool`] the application already has, connected or not (each
    /// client is connected if needed): operations take its clients in turn. As
    /// [`with_client`](Self::with_client) otherwise (one Pub/Sub connection for the backend,
    /// made from the configuration of the pool's clients).
    ///
    /// # Examples
    ///
    /// ```
    /// # async fn example() -> lock_core::Result<()> {
    /// use fred::prelude::{Builder, Config};
    /// use lock_fred::FredBackend;
    ///
    /// let config = Config::from_url("redis://127.0.0.1/").map_err(|e| {
    ///     lock_core::Error::new(lock_core::ErrorKind::Config, "bad URL").with_source(e)
    /// })?;
    /// let pool = Builder::from_config(config).build_pool(4).map_err(|e| {
    ///     lock_core::Error::new(lock_core::ErrorKind::Config, "bad pool").with_source(e)
    /// })?;
    /// let backend = FredBackend::with_pool(pool).connect().await?;
    /// # Ok(()) }
    /// ```
    pub fn with_pool(pool: Pool) -> FredBuilder {
        let target = describe(&pool.client_config());
        FredBuilder::new(Source::Pool(pool), target)
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
///
/// # Examples
///
/// ```
/// # async fn example() -> lock_core::Result<()> {
/// use std::time::Duration;
/// use lock_fred::FredBackend;
///
/// let backend = FredBackend::builder("redis://127.0.0.1/")
///     .connect_timeout(Duration::from_secs(5))
///     .reconnect_attempts(3)
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[must_use = "a builder does nothing until .connect().await"]
pub struct FredBuilder {
    source: Source,
    /// The server, without its password, for messages.
    target: String,
    settings: Settings,
    reconnect_policy: ReconnectPolicy,
}

lock_core::redis::builder_api! {
    impl FredBuilder { settings }

    /// How long to wait for a connection to be established, all attempts together (each
    /// attempt, and each command of the handshake, is also bounded by it).
    connect_timeout;

    /// How long one operation may take, waiting for a reconnection included. Past it the
    /// operation fails with [`ErrorKind::Timeout`](lock_core::ErrorKind::Timeout); it may or
    /// may not have been applied.
    response_timeout;

    /// How many more times [`connect`](FredBuilder::connect) tries after a failed attempt, with
    /// exponential backoff from 50 ms, within the connect timeout. Once connected, a lost
    /// connection is re-established according to the
    /// [`reconnect_policy`](FredBuilder::reconnect_policy).
    reconnect_attempts;
}

impl FredBuilder {
    fn new(source: Source, target: String) -> Self {
        FredBuilder {
            source,
            target,
            settings: Settings::default(),
            reconnect_policy: Self::default_reconnect_policy(),
        }
    }

    /// The default [`reconnect_policy`](FredBuilder::reconnect_policy): try again forever, after
    /// 50 ms, then doubling up to 1 s between attempts (plus fred's jitter of up to 100 ms).
    ///
    /// fred itself does not reconnect at all unless given a policy: its client would stay
    /// disconnected after the first server restart.
    ///
    /// # Examples
    ///
    /// ```
    /// # async fn example() -> lock_core::Result<()> {
    /// use lock_fred::{FredBackend, FredBuilder};
    ///
    /// let backend = FredBackend::builder("redis://127.0.0.1/")
    ///     .reconnect_policy(FredBuilder::default_reconnect_policy())
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn default_reconnect_policy() -> ReconnectPolicy {
        default_reconnect_policy()
    }

    /// How the client re-establishes a lost connection, in the background; by default
    /// [`default_reconnect_policy`](FredBuilder::default_reconnect_policy), which never gives
    /// up. A policy with a maximum number of attempts leaves the backend disconnected for good
    /// once they are spent.
    ///
    /// Only for a backend built from a URL: an application's [`Client`] or [`Pool`] keeps the
    /// policy it was built with. The backend's Pub/Sub connection (for waiters) follows the
    /// same policy.
    ///
    /// # Examples
    ///
    /// ```
    /// # async fn example() -> lock_core::Result<()> {
    /// use fred::types::config::ReconnectPolicy;
    /// use lock_fred::FredBackend;
    ///
    /// // Try again every 100 ms, 20 times at most, then give up.
    /// let backend = FredBackend::builder("redis://127.0.0.1/")
    ///     .reconnect_policy(ReconnectPolicy::new_constant(20, 100))
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// # async fn example() -> lock_core::Result<()> {
    /// use lock_fred::FredBackend;
    ///
    /// match FredBackend::builder("redis://127.0.0.1/").connect().await {
    ///     Ok(backend) => println!("connected: {backend:?}"),
    ///     Err(e) if e.is_retryable() => eprintln!("Redis is not reachable yet: {e}"),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn connect(self) -> Result<FredBackend> {
        let settings = &self.settings;
        let starter = Starter {
            deadline: Instant::now() + settings.connect_timeout,
            attempts: settings.reconnect_attempts,
            target: &self.target,
            within: settings.connect_timeout,
        };
        let (conn, owned) = match self.source {
            Source::Url(config) => {
                let client = client(config?, settings, self.reconnect_policy, &self.target)?;
                let task = starter.start(&client).await?;
                (Conn::Client(client), task)
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
        let target: Arc<str> = self.target.as_str().into();
        // Not connected yet: the first watch connects it.
        let notify = PubSub::new(
            conn.next(),
            conn.clients(),
            target.clone(),
            settings.connect_timeout,
            settings.reconnect_attempts,
            settings.response_timeout,
        );
        let transport = FredTransport::new(conn, target, notify, owned, settings.connect_timeout);
        Ok(FredBackend::new(transport, settings))
    }
}

/// The client for `config`, as `settings` and `policy` say.
fn client(
    config: Config,
    settings: &Settings,
    policy: ReconnectPolicy,
    target: &str,
) -> Result<Client> {
    Builder::from_config(config)
        .with_connection_config(|c| {
            c.connection_timeout = settings.connect_timeout;
            c.internal_command_timeout = settings.connect_timeout;
            // fred re-sends commands that were in flight when a connection broke, by default
            // up to 3 times. For locks that is unsafe: an acquire that was applied but whose
            // reply was lost would be sent again, find the lock taken (by the caller itself,
            // but now with its expiry reset) or, for a release, report "missing". Every command
            // is sent once; the caller sees a Connection error and decides.
            c.max_command_attempts = 1;
        })
        .with_performance_config(|p| {
            p.default_command_timeout = settings.response_timeout;
        })
        .set_policy(policy)
        .build()
        .map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("invalid Redis configuration for {target}"),
            )
            .with_source(e)
        })
}

impl fmt::Debug for FredBuilder {
    // Never print fred's `Config`: its `Debug` shows the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FredBuilder")
            .field("target", &self.target)
            .field("settings", &self.settings)
            .field("reconnect_policy", &self.reconnect_policy)
            .finish_non_exhaustive()
    }
}
