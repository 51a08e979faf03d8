//! Redis behind Sentinel on the `redis` crate: the sentinels are asked which server is the
//! primary, and asked again whenever the connection to it breaks, times out, or meets a server
//! that is no longer the primary (`READONLY`), so that the backend follows a failover.
//!
//! Scripts run on a connection manager to the current primary; the Pub/Sub connection, made
//! on the first watch, also asks the sentinels at each (re)connection. A demoted primary that
//! stays up as a replica still delivers releases to its subscribers (Redis replicates
//! `PUBLISH`), so waiters keep hearing them until that connection breaks.
//!
//! A failover is also heard as it happens: [`SwitchWatch`] subscribes to `+switch-master` on
//! every sentinel, and when one announces a new primary for the service, both connections are
//! made again to the announced server (checked with `ROLE`), without waiting for a request to
//! the old primary to time out.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use lock_core::redis::{SWITCH_MASTER, SentinelTarget, Settings, SwitchAnnouncements};
use lock_core::{Error, ErrorKind, Result};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{IntoConnectionInfo, RedisResult};
use tokio::task::JoinHandle;

use crate::error::from_redis;
use crate::pubsub::Waiters;

/// The first pause before subscribing again to a sentinel that could not be reached, doubled
/// after each failure.
const FIRST_RETRY: Duration = Duration::from_millis(100);
/// The longest pause before subscribing again to a sentinel.
const MAX_RETRY: Duration = Duration::from_secs(5);

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update is one assignment: a panic elsewhere cannot leave it half-done.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Asks the sentinels for the current primary, or tries first the one they last announced.
pub(crate) struct Resolver {
    client: tokio::sync::Mutex<SentinelClient>,
    /// The primary a sentinel announced last (`+switch-master`), as `host:port` and a client
    /// for it; forgotten once it does not answer as the primary.
    announced: Mutex<Option<(String, redis::Client)>>,
    /// A data server's URL up to its host (`redis://user:password@`, `rediss://` with TLS).
    node_prefix: String,
    /// A data server's URL after its port (`/db`).
    node_suffix: String,
    /// How long the announced server may take to say it is the primary.
    check_within: Duration,
}

impl Resolver {
    pub(crate) fn new(target: &SentinelTarget, shown: &str, settings: &Settings) -> Result<Self> {
        let config = |e: redis::RedisError| {
            Error::new(ErrorKind::Config, format!("invalid Redis Sentinel {shown}")).with_source(e)
        };
        // The data servers' credentials and database, read the way the crate reads URLs.
        let auth = match (&target.username, &target.password) {
            (None, None) => String::new(),
            (user, password) => format!(
                "{}:{}@",
                escape(user.as_deref().unwrap_or_default()),
                escape(password.as_deref().unwrap_or_default())
            ),
        };
        let template = format!("redis://{auth}placeholder/{}", target.db)
            .into_connection_info()
            .map_err(config)?;
        let mut node = SentinelNodeConnectionInfo::default()
            .set_redis_connection_info(template.redis_settings().clone());
        if target.tls {
            node = node.set_tls_mode(redis::TlsMode::Secure);
        }
        let client = SentinelClient::build(
            target.sentinels.clone(),
            target.service.clone(),
            Some(node),
            SentinelServerType::Master,
        )
        .map_err(config)?;
        let scheme = if target.tls { "rediss" } else { "redis" };
        Ok(Resolver {
            client: tokio::sync::Mutex::new(client),
            announced: Mutex::new(None),
            node_prefix: format!("{scheme}://{auth}"),
            node_suffix: format!("/{}", target.db),
            // Half the connect timeout, so that the sentinels are still asked within it.
            check_within: settings.connect_timeout / 2,
        })
    }

    /// A client for the server a sentinel announced last if it answers as the primary, else
    /// for the server the sentinels name the primary now (checked with `ROLE`).
    pub(crate) async fn primary(&self) -> RedisResult<redis::Client> {
        let announced = locked(&self.announced).clone();
        if let Some((address, client)) = announced {
            let checked = tokio::time::timeout(self.check_within, is_primary(&client)).await;
            if matches!(checked, Ok(Ok(true))) {
                return Ok(client);
            }
            // Not the primary (any more), or not answering: the sentinels are asked instead.
            let mut announced = locked(&self.announced);
            if announced.as_ref().is_some_and(|(a, _)| *a == address) {
                *announced = None;
            }
        }
        self.client.lock().await.async_get_client().await
    }

    /// A sentinel announced `host:port` the new primary: the next connections try it first.
    fn announce(&self, host: &str, port: u16) {
        // An IPv6 address is written in brackets in a URL.
        let url_host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        let url = format!("{}{url_host}:{port}{}", self.node_prefix, self.node_suffix);
        // Fails only for an address no URL can hold; the sentinels are asked then.
        let client = redis::Client::open(url).ok();
        *locked(&self.announced) = client.map(|client| (format!("{host}:{port}"), client));
    }
}

/// Whether the server of `client` says it is a primary (`ROLE`).
async fn is_primary(client: &redis::Client) -> RedisResult<bool> {
    let mut conn = client.get_multiplexed_async_connection().await?;
    let role: redis::Role = redis::cmd("ROLE").query_async(&mut conn).await?;
    Ok(matches!(role, redis::Role::Primary { .. }))
}

/// `text` with the characters a URL's user or password cannot hold escaped.
fn escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The connection manager to the current primary, made again after the primary changed.
pub(crate) struct SentinelConn {
    resolver: Arc<Resolver>,
    config: ConnectionManagerConfig,
    connect_timeout: Duration,
    target: Arc<str>,
    current: Mutex<Option<ConnectionManager>>,
    connecting: tokio::sync::Mutex<()>,
    /// Counts the times the connection was forgotten, so that one made meanwhile, maybe to
    /// the old primary, is not kept.
    forgotten: AtomicU64,
}

impl SentinelConn {
    pub(crate) fn new(
        resolver: Arc<Resolver>,
        config: ConnectionManagerConfig,
        settings: &Settings,
        target: Arc<str>,
    ) -> Self {
        SentinelConn {
            resolver,
            config,
            connect_timeout: settings.connect_timeout,
            target,
            current: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            forgotten: AtomicU64::new(0),
        }
    }

    fn current(&self) -> Option<ConnectionManager> {
        locked(&self.current).clone()
    }

    /// The connection to the primary, asking the sentinels for it first if there is none.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Connection`] when no sentinel names a reachable primary in time.
    pub(crate) async fn manager(&self) -> Result<ConnectionManager> {
        if let Some(conn) = self.current() {
            return Ok(conn);
        }
        let _connecting = self.connecting.lock().await;
        if let Some(conn) = self.current() {
            return Ok(conn);
        }
        let forgotten = self.forgotten.load(Ordering::SeqCst);
        let connecting = async {
            let client = self.resolver.primary().await?;
            ConnectionManager::new_with_config(client, self.config.clone()).await
        };
        let conn = match tokio::time::timeout(self.connect_timeout, connecting).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => {
                let err = from_redis(e, "asking the sentinels for the primary", &self.target);
                // Whatever went wrong, another try may find the primary.
                return Err(
                    Error::new(ErrorKind::Connection, err.message().to_owned()).with_source(err)
                );
            }
            Err(_) => {
                return Err(lock_core::redis::no_connection(
                    &format!("connecting to the primary of {}", self.target),
                    self.connect_timeout,
                ));
            }
        };
        let mut current = locked(&self.current);
        // Forgotten while it was made (a new primary announced): used for this request only.
        if self.forgotten.load(Ordering::SeqCst) == forgotten {
            *current = Some(conn.clone());
        }
        Ok(conn)
    }

    /// A new primary was announced: the next request makes a new connection. Requests in
    /// flight on the old one finish there (or time out).
    pub(crate) fn forget(&self) {
        let mut current = locked(&self.current);
        self.forgotten.fetch_add(1, Ordering::SeqCst);
        *current = None;
    }

    /// After `err` on a connection to what was the primary: forget the connection when the
    /// server may no longer be the primary (the next call asks the sentinels again), and
    /// turn `READONLY` (a demoted primary) into a connection error, which is sent again.
    pub(crate) fn after_error(&self, err: Error, readonly: bool) -> Error {
        let gone = readonly || matches!(err.kind(), ErrorKind::Connection | ErrorKind::Timeout);
        if gone {
            *locked(&self.current) = None;
        }
        if readonly {
            Error::new(
                ErrorKind::Connection,
                format!(
                    "{}: the server is no longer the primary; asking the sentinels again",
                    err.message()
                ),
            )
            .with_source(err)
        } else {
            err
        }
    }
}

/// Hears failovers as the sentinels announce them: a task per sentinel, subscribed to its
/// `+switch-master`, reconnecting (with backoff) when its connection breaks. When one announces
/// a new primary for the service, the backend's connections are made again to it. Dropping it
/// stops the tasks.
///
/// Each sentinel announces a failover once it has taken up the new configuration, so several
/// announce the same one: only an address other than the last announced is acted on. A
/// sentinel connection that dies silently (no reset) is not noticed; the other sentinels, and
/// the requests that time out on the old primary, still bring the backend to the new one.
pub(crate) struct SwitchWatch {
    tasks: Vec<JoinHandle<()>>,
}

/// What a new primary's announcement changes.
struct Follow {
    resolver: Arc<Resolver>,
    conn: Weak<SentinelConn>,
    waiters: Weak<Waiters>,
    /// The failovers heard so far.
    heard: SwitchAnnouncements,
}

impl SwitchWatch {
    /// Starts listening to the sentinels of `target` for the backend whose connection is
    /// `conn` and whose waiters are `waiters`; none of the sentinels need to answer now.
    pub(crate) fn start(
        target: &SentinelTarget,
        resolver: Arc<Resolver>,
        conn: &Arc<SentinelConn>,
        waiters: &Arc<Waiters>,
        connect_timeout: Duration,
    ) -> Self {
        let follow = Arc::new(Follow {
            heard: SwitchAnnouncements::new(target.service.clone()),
            resolver,
            conn: Arc::downgrade(conn),
            waiters: Arc::downgrade(waiters),
        });
        let tasks = target
            .sentinels
            .iter()
            // The URLs were read when the resolver was made: none fails here.
            .filter_map(|url| redis::Client::open(url.as_str()).ok())
            .map(|sentinel| tokio::spawn(listen(sentinel, follow.clone(), connect_timeout)))
            .collect();
        SwitchWatch { tasks }
    }
}

impl Drop for SwitchWatch {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Follow {
    /// A sentinel announced `payload` on `+switch-master`.
    fn announced(&self, payload: &str) {
        let Some((host, port)) = self.heard.new_primary(payload) else {
            return;
        };
        self.resolver.announce(host, port);
        if let Some(conn) = self.conn.upgrade() {
            conn.forget();
        }
        if let Some(waiters) = self.waiters.upgrade() {
            // Subscribed again on the new primary, which wakes every waiter to try again.
            waiters.subscriber().reconnect();
        }
    }
}

/// One sentinel's task: subscribes to `+switch-master`, passes each announcement on, and
/// subscribes again when the connection breaks.
async fn listen(sentinel: redis::Client, follow: Arc<Follow>, connect_timeout: Duration) {
    let mut retry = FIRST_RETRY;
    loop {
        let subscribing = async {
            let mut pubsub = sentinel.get_async_pubsub().await?;
            pubsub.subscribe(SWITCH_MASTER).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        if let Ok(Ok(pubsub)) = tokio::time::timeout(connect_timeout, subscribing).await {
            retry = FIRST_RETRY;
            let mut messages = pubsub.into_on_message();
            while let Some(message) = messages.next().await {
                let payload: String = message.get_payload().unwrap_or_default();
                follow.announced(&payload);
            }
        }
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(MAX_RETRY);
    }
}
