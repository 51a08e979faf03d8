//! What configures a Redis backend, whatever its client: the `REDIS_URL` environment variable,
//! the defaults, the URL schemes that ask for TLS, and [`Settings`], the part of a builder every
//! client shares; and, with [`backend_api!`](crate::redis::backend_api) and
//! [`builder_api!`](crate::redis::builder_api), the public API every client's backend and
//! builder share.

use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};

/// The environment variable `process-lock-node` reads the server's URL from.
///
/// # Examples
///
/// ```
/// use lock_core::redis::REDIS_URL_ENV;
///
/// assert_eq!(REDIS_URL_ENV, "REDIS_URL"); // as process-lock-node
/// ```
pub const REDIS_URL_ENV: &str = "REDIS_URL";

/// Default time to establish a connection, all attempts together: 2 s.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use lock_core::redis::{DEFAULT_CONNECT_TIMEOUT, Settings};
///
/// assert_eq!(Settings::default().connect_timeout, DEFAULT_CONNECT_TIMEOUT);
/// assert_eq!(DEFAULT_CONNECT_TIMEOUT, Duration::from_secs(2));
/// ```
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Default time for one operation, waiting for a reconnection included: 2 s.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use lock_core::redis::{DEFAULT_RESPONSE_TIMEOUT, Settings};
///
/// assert_eq!(Settings::default().response_timeout, DEFAULT_RESPONSE_TIMEOUT);
/// assert_eq!(DEFAULT_RESPONSE_TIMEOUT, Duration::from_secs(2));
/// ```
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Default connection attempts after the first fails: 3, with exponential backoff.
///
/// # Examples
///
/// ```
/// use lock_core::redis::{DEFAULT_RECONNECT_ATTEMPTS, Settings};
///
/// assert_eq!(Settings::default().reconnect_attempts, DEFAULT_RECONNECT_ATTEMPTS);
/// ```
pub const DEFAULT_RECONNECT_ATTEMPTS: usize = 3;

/// The server's URL from [`REDIS_URL_ENV`], as `process-lock-node` reads it.
///
/// # Errors
///
/// [`ErrorKind::Config`] if the variable is unset or not valid UTF-8.
///
/// # Examples
///
/// ```
/// use lock_core::redis::url_from_env;
///
/// match url_from_env() {
///     Ok(url) => println!("Redis at {}", lock_core::redact_url(&url)),
///     Err(e) => eprintln!("{e}"),
/// }
/// ```
pub fn url_from_env() -> Result<String> {
    url_from(std::env::var(REDIS_URL_ENV))
}

fn url_from(var: std::result::Result<String, std::env::VarError>) -> Result<String> {
    var.map_err(|e| {
        Error::new(
            ErrorKind::Config,
            format!("{REDIS_URL_ENV} must name the Redis server, e.g. redis://127.0.0.1:6379/"),
        )
        .with_source(e)
    })
}

/// Whether `url` asks for TLS (`rediss://`, `valkeys://`, and their `-cluster` forms, any
/// letter case).
///
/// # Examples
///
/// ```
/// use lock_core::redis::wants_tls;
///
/// assert!(wants_tls("rediss://cache:6380/"));
/// assert!(!wants_tls("redis://cache:6379/"));
/// ```
pub fn wants_tls(url: &str) -> bool {
    let scheme = url.split("://").next().unwrap_or_default();
    [
        "rediss",
        "valkeys",
        "rediss-cluster",
        "valkeys-cluster",
        "rediss-sentinel",
        "valkeys-sentinel",
    ]
    .iter()
    .any(|tls| scheme.eq_ignore_ascii_case(tls))
}

/// The nodes of a Redis Cluster URL, or `None` when `url` is not one.
///
/// A cluster URL is written as `fred` reads it:
/// `redis-cluster://user:password@host:port?node=host2:port2&node=host3:port3`
/// (`rediss-cluster://` for TLS; `valkey-cluster://`, `valkeys-cluster://` alike). The host
/// and each `node` are seed nodes: the client learns the rest of the cluster from any one of
/// them. Each comes back as a URL of its own (`redis://user:password@host:port/`, or
/// `rediss://`), with the credentials of the whole.
///
/// # Errors
///
/// [`ErrorKind::Config`] when `url` is a cluster URL that cannot be read: no host, a `node`
/// that is not `host:port`, a database other than 0 (a cluster has only database 0), or
/// another query parameter.
///
/// # Examples
///
/// ```
/// use lock_core::redis::cluster_nodes;
///
/// let nodes = cluster_nodes("redis-cluster://:pw@10.0.0.1:7000?node=10.0.0.2:7000").unwrap()?;
/// assert_eq!(nodes, ["redis://:pw@10.0.0.1:7000/", "redis://:pw@10.0.0.2:7000/"]);
/// assert!(cluster_nodes("redis://10.0.0.1:6379/").is_none());
/// assert!(cluster_nodes("redis-cluster://10.0.0.1:7000/3").unwrap().is_err());
/// # Ok::<(), lock_core::Error>(())
/// ```
pub fn cluster_nodes(url: &str) -> Option<Result<Vec<String>>> {
    let (scheme, _) = url.split_once("://")?;
    let tls = match scheme.to_ascii_lowercase().as_str() {
        "redis-cluster" | "valkey-cluster" => false,
        "rediss-cluster" | "valkeys-cluster" => true,
        _ => return None,
    };
    Some(read_cluster_url(url, tls))
}

fn read_cluster_url(url: &str, tls: bool) -> Result<Vec<String>> {
    let target = crate::redact_url(url);
    let bad = |why: &str| {
        Error::new(
            ErrorKind::Config,
            format!("invalid Redis Cluster URL {target}: {why}"),
        )
    };
    // Read as a plain URL of a special scheme, which has a host to parse.
    let (_, rest) = url.split_once("://").unwrap_or_default();
    let parsed = url::Url::parse(&format!("redis://{rest}"))
        .map_err(|e| bad("expected redis-cluster://host:port?node=host:port").with_source(e))?;
    let Some(host) = parsed.host_str().filter(|h| !h.is_empty()) else {
        return Err(bad("no host"));
    };
    let scheme = if tls { "rediss" } else { "redis" };
    let auth = match (parsed.username(), parsed.password()) {
        ("", None) => String::new(),
        (user, Some(password)) => format!("{user}:{password}@"),
        (user, None) => format!("{user}@"),
    };
    let path = parsed.path().trim_matches('/');
    if !path.is_empty() && path != "0" {
        return Err(bad("a cluster has only database 0"));
    }
    let node = |host: &str, port: u16| format!("{scheme}://{auth}{host}:{port}/");
    let mut nodes = vec![node(host, parsed.port().unwrap_or(6379))];
    for (key, value) in parsed.query_pairs() {
        if key != "node" {
            return Err(bad(&format!(
                "unknown parameter {key:?} (only node=host:port)"
            )));
        }
        let (host, port) = value
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
            .filter(|(h, _)| !h.is_empty())
            .ok_or_else(|| bad(&format!("node={value} is not host:port")))?;
        nodes.push(node(host, port));
    }
    Ok(nodes)
}

/// A Sentinel set, as a `redis-sentinel://` URL names it (see [`sentinel_target`]).
///
/// # Examples
///
/// ```
/// use lock_core::redis::sentinel_target;
///
/// let target = sentinel_target("redis-sentinel://s1:26379/2?sentinelServiceName=locks").unwrap()?;
/// assert_eq!(target.service, "locks");
/// assert_eq!(target.db, 2);
/// # Ok::<(), lock_core::Error>(())
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelTarget {
    /// The sentinels, `redis://host:port/` each (`rediss://` for TLS), without credentials.
    pub sentinels: Vec<String>,
    /// The service (master) name the sentinels watch.
    pub service: String,
    /// The user, on the data servers.
    pub username: Option<String>,
    /// The password, on the data servers.
    pub password: Option<String>,
    /// The database, on the data servers.
    pub db: i64,
    /// Whether the data servers and sentinels speak TLS.
    pub tls: bool,
}

/// The channel on which every sentinel announces a failover, once it has taken up the new
/// configuration: `<service> <old host> <old port> <new host> <new port>`.
///
/// # Examples
///
/// ```
/// assert_eq!(lock_core::redis::SWITCH_MASTER, "+switch-master");
/// ```
pub const SWITCH_MASTER: &str = "+switch-master";

/// The new primary a sentinel's [`SWITCH_MASTER`] message announces, as host and port, if it
/// is `service`'s; `None` for another service's or a message that cannot be read.
///
/// # Examples
///
/// ```
/// use lock_core::redis::announced_primary;
///
/// let message = "jobs 10.0.0.1 6379 10.0.0.2 6380";
/// assert_eq!(announced_primary(message, "jobs"), Some(("10.0.0.2", 6380)));
/// assert_eq!(announced_primary(message, "billing"), None);
/// assert_eq!(announced_primary("jobs 10.0.0.1 6379", "jobs"), None);
/// ```
pub fn announced_primary<'a>(message: &'a str, service: &str) -> Option<(&'a str, u16)> {
    let mut words = message.split_whitespace();
    if words.next()? != service {
        return None;
    }
    let (_old_host, _old_port) = (words.next()?, words.next()?);
    let (host, port) = (words.next()?, words.next()?.parse().ok()?);
    words.next().is_none().then_some((host, port))
}

/// The failovers of one service that a backend hears from its sentinels: every sentinel
/// announces a failover (on [`SWITCH_MASTER`]) once it has taken up the new configuration, so
/// one failover is heard several times; it is acted on once.
///
/// # Examples
///
/// ```
/// use lock_core::redis::SwitchAnnouncements;
///
/// let heard = SwitchAnnouncements::new("jobs");
/// let failover = "jobs 10.0.0.1 6379 10.0.0.2 6379";
/// assert_eq!(heard.new_primary(failover), Some(("10.0.0.2", 6379)));
/// // The same failover, announced by another sentinel.
/// assert_eq!(heard.new_primary(failover), None);
/// assert_eq!(heard.new_primary("billing 10.0.0.5 6379 10.0.0.6 6379"), None);
/// // The next failover.
/// let back = "jobs 10.0.0.2 6379 10.0.0.1 6379";
/// assert_eq!(heard.new_primary(back), Some(("10.0.0.1", 6379)));
/// ```
#[derive(Debug)]
pub struct SwitchAnnouncements {
    service: String,
    /// The primary announced last, `host:port`.
    last: std::sync::Mutex<Option<String>>,
}

impl SwitchAnnouncements {
    /// Announcements of `service`'s failovers.
    ///
    /// # Examples
    ///
    /// ```
    /// let heard = lock_core::redis::SwitchAnnouncements::new("jobs");
    /// assert_eq!(heard.new_primary("jobs"), None);
    /// ```
    pub fn new(service: impl Into<String>) -> Self {
        SwitchAnnouncements {
            service: service.into(),
            last: std::sync::Mutex::new(None),
        }
    }

    /// The new primary `message` announces ([`announced_primary`]), unless it is the one
    /// announced last: `None` for that, for another service's failover, and for a message
    /// that cannot be read.
    ///
    /// # Examples
    ///
    /// ```
    /// let heard = lock_core::redis::SwitchAnnouncements::new("jobs");
    /// let failover = "jobs 10.0.0.1 6379 10.0.0.2 6379";
    /// assert!(heard.new_primary(failover).is_some());
    /// assert!(heard.new_primary(failover).is_none());
    /// ```
    pub fn new_primary<'a>(&self, message: &'a str) -> Option<(&'a str, u16)> {
        let (host, port) = announced_primary(message, &self.service)?;
        let address = format!("{host}:{port}");
        // Every update is one assignment: a panic elsewhere cannot leave it half-done.
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.as_deref() == Some(address.as_str()) {
            return None;
        }
        *last = Some(address);
        Some((host, port))
    }
}

/// The Sentinel set a URL names, or `None` when `url` does not name one.
///
/// A Sentinel URL is written as `fred` reads it:
/// `redis-sentinel://user:password@host:port/db?sentinelServiceName=name&node=host:port`
/// (`rediss-sentinel://` for TLS; the `valkey` forms alike): the host and each `node` are
/// sentinels, and the credentials and database are those of the data servers.
///
/// # Errors
///
/// [`ErrorKind::Config`] when `url` is a Sentinel URL that cannot be read: no host, no
/// `sentinelServiceName`, a `node` that is not `host:port`, a database that is not a number,
/// or another query parameter.
///
/// # Examples
///
/// ```
/// use lock_core::redis::sentinel_target;
///
/// let url = "redis-sentinel://:pw@10.0.0.1:26379/0?sentinelServiceName=mymaster&node=10.0.0.2:26379";
/// let target = sentinel_target(url).unwrap()?;
/// assert_eq!(target.sentinels, ["redis://10.0.0.1:26379/", "redis://10.0.0.2:26379/"]);
/// assert_eq!(target.password.as_deref(), Some("pw"));
/// let escaped = sentinel_target("redis-sentinel://:a%2Bb%40c@h/?sentinelServiceName=m").unwrap()?;
/// assert_eq!(escaped.password.as_deref(), Some("a+b@c"));
/// assert!(sentinel_target("redis://10.0.0.1/").is_none());
/// assert!(sentinel_target("redis-sentinel://10.0.0.1:26379/").unwrap().is_err());
/// # Ok::<(), lock_core::Error>(())
/// ```
pub fn sentinel_target(url: &str) -> Option<Result<SentinelTarget>> {
    let (scheme, _) = url.split_once("://")?;
    let tls = match scheme.to_ascii_lowercase().as_str() {
        "redis-sentinel" | "valkey-sentinel" => false,
        "rediss-sentinel" | "valkeys-sentinel" => true,
        _ => return None,
    };
    Some(read_sentinel_url(url, tls))
}

/// `text` with its `%XX` escapes decoded (a URL's user or password).
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn read_sentinel_url(url: &str, tls: bool) -> Result<SentinelTarget> {
    let target = crate::redact_url(url);
    let bad = |why: &str| {
        Error::new(
            ErrorKind::Config,
            format!("invalid Redis Sentinel URL {target}: {why}"),
        )
    };
    let (_, rest) = url.split_once("://").unwrap_or_default();
    let parsed = url::Url::parse(&format!("redis://{rest}")).map_err(|e| {
        bad("expected redis-sentinel://host:port/db?sentinelServiceName=name").with_source(e)
    })?;
    let Some(host) = parsed.host_str().filter(|h| !h.is_empty()) else {
        return Err(bad("no host"));
    };
    let scheme = if tls { "rediss" } else { "redis" };
    let node = |host: &str, port: u16| format!("{scheme}://{host}:{port}/");
    let mut sentinels = vec![node(host, parsed.port().unwrap_or(26379))];
    let mut service = None;
    for (key, value) in parsed.query_pairs() {
        match &*key {
            "sentinelServiceName" => service = Some(value.into_owned()),
            "node" => {
                let (host, port) = value
                    .rsplit_once(':')
                    .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
                    .filter(|(h, _)| !h.is_empty())
                    .ok_or_else(|| bad(&format!("node={value} is not host:port")))?;
                sentinels.push(node(host, port));
            }
            other => {
                return Err(bad(&format!(
                    "unknown parameter {other:?} (only sentinelServiceName and node)"
                )));
            }
        }
    }
    let service = service
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("no sentinelServiceName"))?;
    let path = parsed.path().trim_matches('/');
    let db = if path.is_empty() {
        0
    } else {
        path.parse::<i64>()
            .map_err(|_| bad("the database is not a number"))?
    };
    Ok(SentinelTarget {
        sentinels,
        service,
        username: Some(parsed.username())
            .filter(|u| !u.is_empty())
            .map(decode),
        password: parsed.password().map(decode),
        db,
        tls,
    })
}

/// The settings every Redis client's builder has, with the same defaults: each builder keeps
/// one, [`builder_api!`](crate::redis::builder_api) gives it the setters, and
/// [`RedisBackend::new`](super::RedisBackend::new) takes what the protocol needs from it.
///
/// # Examples
///
/// ```
/// use lock_core::redis::{DEFAULT_RESPONSE_TIMEOUT, Settings};
///
/// let settings = Settings::default();
/// assert_eq!(settings.prefix, "");
/// assert_eq!(settings.response_timeout, DEFAULT_RESPONSE_TIMEOUT);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Put before every lock name to make its key; empty by default, as in `process-lock-node`.
    pub prefix: String,
    /// How long to wait for a connection to be established, all attempts together
    /// ([`DEFAULT_CONNECT_TIMEOUT`]).
    pub connect_timeout: Duration,
    /// How long one operation may take, waiting for a reconnection included
    /// ([`DEFAULT_RESPONSE_TIMEOUT`]).
    pub response_timeout: Duration,
    /// How many more times to try connecting after a failed attempt
    /// ([`DEFAULT_RECONNECT_ATTEMPTS`]).
    pub reconnect_attempts: usize,
    /// The delayed restart rule's delay (see [`scripts`](super::scripts)); `None`, the
    /// default: the timeout of the lock being acquired.
    pub restart_delay: Option<Duration>,
    /// How many replicas must acknowledge a lock taken or renewed (`WAIT`), and how long to
    /// wait for them; `None`, the default: none.
    pub replicas: Option<ReplicaAck>,
}

impl Settings {
    /// How long one request may wait for its answer: the response timeout, and, with replica
    /// acknowledgement, the acknowledgement's timeout too (a `WAIT` or `WAITAOF` answers only
    /// once the replicas did or it ran out). A client's own timeout per request, where it has
    /// one, must be at least this.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use lock_core::redis::{ReplicaAck, Settings};
    ///
    /// let mut settings = Settings::default();
    /// assert_eq!(settings.request_timeout(), settings.response_timeout);
    /// settings.replicas = Some(ReplicaAck::new(1, Duration::from_secs(2)).unwrap());
    /// assert_eq!(settings.request_timeout(), settings.response_timeout + Duration::from_secs(2));
    /// ```
    pub fn request_timeout(&self) -> Duration {
        self.response_timeout + self.replicas.map_or(Duration::ZERO, |ack| ack.timeout())
    }
}

/// Replica acknowledgement: after a lock is taken or renewed on the primary, `WAIT` on the
/// same connection until `replicas` replicas have the write, for at most `timeout`. Fewer in
/// time, and the acquisition fails with
/// [`ErrorKind::NotReplicated`] (the lock is released again)
/// and a renewal counts as failed.
///
/// It narrows the window in which a failover loses a lock, and does not close it: replication
/// stays asynchronous (a replica that acknowledged may still not be the one promoted, and a
/// write acknowledged by replicas can be lost if they all restart without persistence).
/// Fencing tokens are what protects the resource.
///
/// `WAIT` holds the connection it runs on: the backend's other operations on that connection
/// queue behind it, for up to the timeout when a replica lags. Keep the timeout short.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use lock_core::redis::ReplicaAck;
///
/// let ack = ReplicaAck::new(1, Duration::from_millis(200))?;
/// assert_eq!(ack.replicas(), 1);
/// assert!(ReplicaAck::new(0, Duration::from_millis(200)).is_err());
/// # Ok::<(), lock_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaAck {
    replicas: u32,
    timeout: Duration,
    aof: bool,
}

impl ReplicaAck {
    /// Wait for `replicas` replicas (at least 1), for at most `timeout` (at least 1 ms: `WAIT`
    /// with 0 would wait forever).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for 0 replicas or a timeout under 1 ms.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use lock_core::redis::ReplicaAck;
    ///
    /// assert!(ReplicaAck::new(2, Duration::ZERO).is_err());
    /// ```
    pub fn new(replicas: u32, timeout: Duration) -> Result<Self> {
        if replicas == 0 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "replica acknowledgement needs at least 1 replica",
            ));
        }
        if timeout < Duration::from_millis(1) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("a replica acknowledgement timeout of {timeout:?} is under 1 ms"),
            ));
        }
        Ok(ReplicaAck {
            replicas,
            timeout,
            aof: false,
        })
    }

    /// How many replicas must acknowledge.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use lock_core::redis::ReplicaAck;
    ///
    /// assert_eq!(ReplicaAck::new(2, Duration::from_secs(1))?.replicas(), 2);
    /// # Ok::<(), lock_core::Error>(())
    /// ```
    pub fn replicas(&self) -> u32 {
        self.replicas
    }

    /// How long to wait for them.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use lock_core::redis::ReplicaAck;
    ///
    /// let ack = ReplicaAck::new(1, Duration::from_millis(50))?;
    /// assert_eq!(ack.timeout(), Duration::from_millis(50));
    /// # Ok::<(), lock_core::Error>(())
    /// ```
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The same acknowledgement, by the append-only file: `WAITAOF 1 replicas timeout`
    /// instead of `WAIT`, which returns once the write is fsynced to the primary's own
    /// append-only file and to `replicas` replicas' (Redis 7.2 or later, with
    /// `appendonly yes` on the primary and on those replicas). A lock acknowledged this way
    /// survives a restart of the primary, or a failover to one of those replicas, even
    /// if every server loses power; with plain `WAIT`, the replicas have it in memory only.
    ///
    /// Each acquisition and renewal then waits for those fsyncs, and for the replicas to
    /// report them, which they do with their acknowledgement of every second: on Redis 8.0.2
    /// a `WAITAOF` counting one replica took 0.87–0.95 s (against about a millisecond for
    /// `WAIT`). Give it a timeout of 2 s or more. A server without `WAITAOF` fails the acquisition with
    /// [`ErrorKind::Unsupported`], one without an append-only file with
    /// [`ErrorKind::Config`] (the lock is released again in both cases).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use lock_core::redis::ReplicaAck;
    ///
    /// let ack = ReplicaAck::new(1, Duration::from_secs(2))?.with_aof();
    /// assert!(ack.aof());
    /// assert_eq!(ack.replicas(), 1);
    /// # Ok::<(), lock_core::Error>(())
    /// ```
    #[must_use]
    pub fn with_aof(mut self) -> Self {
        self.aof = true;
        self
    }

    /// Whether the acknowledgement is by the append-only file (`WAITAOF`; see
    /// [`with_aof`](ReplicaAck::with_aof)).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use lock_core::redis::ReplicaAck;
    ///
    /// assert!(!ReplicaAck::new(1, Duration::from_secs(1))?.aof());
    /// # Ok::<(), lock_core::Error>(())
    /// ```
    pub fn aof(&self) -> bool {
        self.aof
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            prefix: String::new(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            reconnect_attempts: DEFAULT_RECONNECT_ATTEMPTS,
            restart_delay: None,
            replicas: None,
        }
    }
}

/// Defines, once for every Redis client backend, the backend type users hold: a struct (with
/// the documentation given in the call) around a [`RedisBackend`](super::RedisBackend) over the
/// client's transport, with what every such backend offers: `connect(url)` and `from_env()`
/// (through the backend's own `builder(url)`), `prefix()`, and its
/// [`LockBackend`](crate::LockBackend) implementation, every operation being the protocol's
/// (handed to the [`RedisBackend`](super::RedisBackend), its futures passed on unboxed again). The builder
/// (named for the documentation) comes with [`builder_api!`](crate::redis::builder_api), and
/// makes the backend with the crate-private `new(transport, &settings)`.
///
/// The client crate adds its own constructors and accessors in an `impl` block of its own,
/// reaching the [`RedisBackend`](super::RedisBackend) as `self.inner`.
///
/// ```text
/// lock_core::redis::backend_api! {
///     /// Locks in Redis, through my client.
///     pub struct MyBackend on MyTransport, built by MyBuilder;
/// }
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! __redis_backend_api {
    (
        $(#[$attr:meta])*
        pub struct $backend:ident on $transport:ty, built by $builder:ident;
    ) => {
        $(#[$attr])*
        #[derive(Clone, Debug)]
        pub struct $backend {
            inner: $crate::redis::RedisBackend<$transport>,
        }

        impl $backend {
            /// The backend on `transport`, configured by `settings` (its builder's).
            pub(crate) fn new(transport: $transport, settings: &$crate::redis::Settings) -> Self {
                $backend {
                    inner: $crate::redis::RedisBackend::new(transport, settings),
                }
            }

            /// Connects to the server at `url` (as [`builder`](Self::builder) reads it) with
            /// the default settings.
            ///
            /// # Errors
            ///
            #[doc = concat!("As [`", stringify!($builder), "::connect`].")]
            ///
            /// # Cancel safety
            ///
            /// Safe: dropping the future drops the connection being made.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use ", env!("CARGO_CRATE_NAME"), "::", stringify!($backend), ";")]
            ///
            /// # async fn example() -> lock_core::Result<()> {
            #[doc = concat!("let backend = ", stringify!($backend), "::connect(\"redis://127.0.0.1:6379/\").await?;")]
            /// # Ok(()) }
            /// ```
            pub async fn connect(url: &str) -> $crate::Result<Self> {
                Self::builder(url).connect().await
            }

            /// Connects to the server named by the `REDIS_URL` environment variable, as
            /// `process-lock-node` does.
            ///
            /// # Errors
            ///
            /// [`ErrorKind::Config`](lock_core::ErrorKind::Config) if `REDIS_URL` is unset or
            /// not valid UTF-8; otherwise
            #[doc = concat!("as [`", stringify!($builder), "::connect`].")]
            ///
            /// # Cancel safety
            ///
            /// Safe: dropping the future drops the connection being made.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use ", env!("CARGO_CRATE_NAME"), "::", stringify!($backend), ";")]
            ///
            /// # async fn example() -> lock_core::Result<()> {
            /// // REDIS_URL=redis://cache:6379/
            #[doc = concat!("let backend = ", stringify!($backend), "::from_env().await?;")]
            /// # Ok(()) }
            /// ```
            pub async fn from_env() -> $crate::Result<Self> {
                Self::connect(&$crate::redis::url_from_env()?).await
            }

            /// The key prefix (empty by default).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use ", env!("CARGO_CRATE_NAME"), "::", stringify!($backend), ";")]
            ///
            /// # async fn example() -> lock_core::Result<()> {
            #[doc = concat!("let backend = ", stringify!($backend), "::connect(\"redis://127.0.0.1/\").await?;")]
            /// assert_eq!(backend.prefix(), "");
            /// # Ok(()) }
            /// ```
            pub fn prefix(&self) -> &str {
                self.inner.prefix()
            }
        }

        // Every operation is `lock_core::redis`'s, over this backend's transport.
        $crate::__forward_lock_backend!([] $backend => field inner);
    };
}

/// Writes, once for every Redis client backend, the part of the builder's API they all share:
/// the constants `DEFAULT_CONNECT_TIMEOUT`, `DEFAULT_RESPONSE_TIMEOUT` and
/// `DEFAULT_RECONNECT_ATTEMPTS`, and the setters `restart_delay`, `prefix`, `connect_timeout`,
/// `response_timeout` and `reconnect_attempts`, which write to the builder's [`Settings`]
/// field (named in the call).
///
/// The documentation of the three setters whose meaning depends on the client comes with the
/// call:
///
/// ```text
/// lock_core::redis::builder_api! {
///     impl MyBuilder { settings }
///
///     /// How long to wait for a connection to be established ...
///     connect_timeout;
///     /// How long one operation may take ...
///     response_timeout;
///     /// How many more times to try connecting ...
///     reconnect_attempts;
/// }
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! __redis_builder_api {
    (
        impl $builder:ident { $settings:ident }
        $(#[$connect:meta])* connect_timeout;
        $(#[$response:meta])* response_timeout;
        $(#[$attempts:meta])* reconnect_attempts;
    ) => {
        impl $builder {
            /// Default time to establish a connection: 2 s.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use ", env!("CARGO_CRATE_NAME"), "::", stringify!($builder), ";")]
            ///
            #[doc = concat!("assert_eq!(", stringify!($builder), "::DEFAULT_CONNECT_TIMEOUT, std::time::Duration::from_secs(2));")]
            /// ```
            pub const DEFAULT_CONNECT_TIMEOUT: ::std::time::Duration =
                $crate::redis::DEFAULT_CONNECT_TIMEOUT;
            /// Default time for one operation, waiting for a reconnection included: 2 s.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use ", env!("CARGO_CRATE_NAME"), "::", stringify!($builder), ";")]
            ///
            #[doc = concat!("assert_eq!(", stringify!($builder), "::DEFAULT_RESPONSE_TIMEOUT, std::time::Duration::from_secs(2));")]
            /// ```
            pub const DEFAULT_RESPONSE_TIMEOUT: ::std::time::Duration =
                $crate::redis::DEFAULT_RESPONSE_TIMEOUT;
            /// Default connection attempts after the first fails: 3, with exponential backoff.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use ", env!("CARGO_CRATE_NAME"), "::", stringify!($builder), ";")]
            ///
            #[doc = concat!("assert_eq!(", stringify!($builder), "::DEFAULT_RECONNECT_ATTEMPTS, 3);")]
            /// ```
            pub const DEFAULT_RECONNECT_ATTEMPTS: usize = $crate::redis::DEFAULT_RECONNECT_ATTEMPTS;

            /// How long after the server starts a free lock is not granted (the *delayed
            /// restart* rule): a server restarted without persistence has forgotten every lock,
            /// whose holders may go on working until their timeout. By default, the timeout of
            /// the lock being acquired, which protects holders using the same timeout; set the
            /// longest timeout any process uses, or
            /// [`Duration::ZERO`](std::time::Duration::ZERO) to grant at once (for a server
            /// whose data survives restarts, or in tests). A server that kept its data keeps
            /// its start time, and grants at once.
            ///
            /// # Examples
            ///
            /// ```
            /// use std::time::Duration;
            #[doc = concat!("use ", env!("CARGO_CRATE_NAME"), "::", stringify!($builder), ";")]
            ///
            #[doc = concat!("fn persistent(builder: ", stringify!($builder), ") -> ", stringify!($builder), " {")]
            ///     // The server's data survives restarts: no delay.
            ///     builder.restart_delay(Duration::ZERO)
            /// }
            /// ```
            pub fn restart_delay(mut self, delay: ::std::time::Duration) -> Self {
                self.$settings.restart_delay = ::std::option::Option::Some(delay);
                self
            }

            /// Replica acknowledgement: after a lock is taken or renewed, waits (`WAIT`) until
            /// `ack.replicas()` replicas have it, for at most `ack.timeout()`; with fewer, the
            /// acquisition fails with
            #[doc = "[`ErrorKind::NotReplicated`](lock_core::ErrorKind::NotReplicated)"]
            /// and the lock is released again, and a renewal counts as failed (see
            #[doc = "[`ReplicaAck`](lock_core::redis::ReplicaAck)"]
            /// for what it protects from, and what not). Each acquisition and renewal then
            /// takes the replicas' round trip too.
            ///
            /// # Examples
            ///
            /// ```
            /// use std::time::Duration;
            /// use lock_core::redis::ReplicaAck;
            #[doc = concat!("use ", env!("CARGO_CRATE_NAME"), "::", stringify!($builder), ";")]
            ///
            #[doc = concat!("fn replicated(builder: ", stringify!($builder), ") -> lock_core::Result<", stringify!($builder), "> {")]
            ///     Ok(builder.wait_for_replicas(ReplicaAck::new(1, Duration::from_millis(200))?))
            /// }
            /// ```
            pub fn wait_for_replicas(mut self, ack: $crate::redis::ReplicaAck) -> Self {
                self.$settings.replicas = ::std::option::Option::Some(ack);
                self
            }

            /// Puts every lock's key under `prefix` (the key becomes `prefix + name`). None by
            /// default, which is what `process-lock-node` uses: set one only if every process
            /// sharing the locks sets the same.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use ", env!("CARGO_CRATE_NAME"), "::", stringify!($builder), ";")]
            ///
            #[doc = concat!("fn billing(builder: ", stringify!($builder), ") -> ", stringify!($builder), " {")]
            ///     builder.prefix("billing:")
            /// }
            /// ```
            pub fn prefix(
                mut self,
                prefix: impl ::std::convert::Into<::std::string::String>,
            ) -> Self {
                self.$settings.prefix = prefix.into();
                self
            }

            $(#[$connect])*
            ///
            /// # Examples
            ///
            /// ```
            /// use std::time::Duration;
            #[doc = concat!("use ", env!("CARGO_CRATE_NAME"), "::", stringify!($builder), ";")]
            ///
            #[doc = concat!("fn patient(builder: ", stringify!($builder), ") -> ", stringify!($builder), " {")]
            ///     builder.connect_timeout(Duration::from_secs(10))
            /// }
            /// ```
            pub fn connect_timeout(mut self, timeout: ::std::time::Duration) -> Self {
                self.$settings.connect_timeout = timeout;
                self
            }

            $(#[$response])*
            ///
            /// # Examples
            ///
            /// ```
            /// use std::time::Duration;
            #[doc = concat!("use ", env!("CARGO_CRATE_NAME"), "::", stringify!($builder), ";")]
            ///
            #[doc = concat!("fn quick(builder: ", stringify!($builder), ") -> ", stringify!($builder), " {")]
            ///     builder.response_timeout(Duration::from_millis(500))
            /// }
            /// ```
            pub fn response_timeout(mut self, timeout: ::std::time::Duration) -> Self {
                self.$settings.response_timeout = timeout;
                self
            }

            $(#[$attempts])*
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use ", env!("CARGO_CRATE_NAME"), "::", stringify!($builder), ";")]
            ///
            #[doc = concat!("fn stubborn(builder: ", stringify!($builder), ") -> ", stringify!($builder), " {")]
            ///     builder.reconnect_attempts(10)
            /// }
            /// ```
            pub fn reconnect_attempts(mut self, attempts: usize) -> Self {
                self.$settings.reconnect_attempts = attempts;
                self
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_announcement_is_read_for_its_service_only() {
        let message = "jobs 10.0.0.1 6379 10.0.0.2 6380";
        assert_eq!(announced_primary(message, "jobs"), Some(("10.0.0.2", 6380)));
        assert_eq!(announced_primary(message, "other"), None);
        assert_eq!(
            announced_primary("jobs ::1 6379 ::2 6379", "jobs"),
            Some(("::2", 6379))
        );
        for bad in [
            "",
            "jobs",
            "jobs 10.0.0.1 6379 10.0.0.2",
            "jobs 10.0.0.1 6379 10.0.0.2 port",
            "jobs 10.0.0.1 6379 10.0.0.2 6380 more",
        ] {
            assert_eq!(announced_primary(bad, "jobs"), None, "{bad:?}");
        }
    }

    #[test]
    fn missing_redis_url_is_a_config_error() {
        let err = url_from(Err(std::env::VarError::NotPresent)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("REDIS_URL"), "{err}");
    }

    #[test]
    fn tls_schemes() {
        for url in ["rediss://h/", "REDISS://h", "valkeys://h:1"] {
            assert!(wants_tls(url), "{url}");
        }
        for url in ["redis://h/", "unix:///tmp/s", "h:6379"] {
            assert!(!wants_tls(url), "{url}");
        }
    }
}
