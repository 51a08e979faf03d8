//! Connecting on the `redis` crate: the client from a URL, plain text or TLS (with the checks
//! that a `rediss://` URL is honoured), and the multiplexed connection scripts run on.

use std::sync::Arc;
use std::time::Duration;

use lock_core::redis::Settings;
use lock_core::{Error, ErrorKind, Result};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::error::from_redis;
use crate::pubsub::{ClientSource, PubSubLink};
use crate::transport::RedisRsTransport;

/// Why a TLS connection is refused without the `tls` feature. The `redis` crate may have TLS
/// all the same (another crate of the build switched it on), but without a crypto provider for
/// rustls it would panic when connecting.
const NO_TLS: &str =
    "TLS (rediss://) needs lock-redis-rs's `tls` feature (process-lock's `redis-rs-tls`)";

/// The client for `url` (`target` is the URL without its password, for messages).
pub(crate) fn client_for_url(url: &str, target: &str) -> Result<redis::Client> {
    if lock_core::redis::wants_tls(url) && !cfg!(feature = "tls") {
        return Err(Error::new(
            ErrorKind::Config,
            format!("invalid Redis URL {target}: {NO_TLS}"),
        ));
    }
    redis::Client::open(url).map_err(|e| {
        Error::new(ErrorKind::Config, format!("invalid Redis URL {target}")).with_source(e)
    })
}

/// An application's `client`, checked (TLS needs the `tls` feature), and the server it
/// connects to, for messages.
pub(crate) fn application_client(client: redis::Client) -> (Result<redis::Client>, String) {
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
    (client, target)
}

/// Connects `client` (to `target`, for messages) as `settings` say, within their connect
/// timeout; the Pub/Sub connection of its waiters is opened later, on the first watch.
pub(crate) async fn transport(
    client: redis::Client,
    target: String,
    settings: &Settings,
) -> Result<RedisRsTransport> {
    let tls = tls_endpoint(&client);
    #[cfg(feature = "tls")]
    if tls.is_some() {
        use_ring_unless_chosen();
    }
    let config = manager_config(settings);
    let target: Arc<str> = target.into();
    let waiters = PubSubLink::waiters(
        ClientSource::Fixed(Box::new(client.clone())),
        target.clone(),
        settings.connect_timeout,
        settings.response_timeout,
    );
    let connecting = async {
        let connecting = ConnectionManager::new_with_config(client, config);
        match tokio::time::timeout(settings.connect_timeout, connecting).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(from_redis(e, "connecting", &target)),
            Err(_) => Err(lock_core::redis::no_connection(
                &format!("connecting to {target}"),
                settings.connect_timeout,
            )),
        }
    };
    let conn = lock_core::redis::unless_plain_text(tls, &target, connecting).await?;
    Ok(RedisRsTransport::new(conn, target, Some(waiters)))
}

/// Where `client` connects with TLS (host and port); `None` for a plain-text connection.
/// The seed nodes `urls` of a cluster, read; each must be a URL the `redis` crate reads, TLS
/// only with the `tls` feature.
pub(crate) fn cluster_nodes(urls: &[String], target: &str) -> Result<Vec<redis::ConnectionInfo>> {
    if urls.is_empty() {
        return Err(Error::new(
            ErrorKind::Config,
            "a Redis Cluster needs at least one seed node",
        ));
    }
    urls.iter()
        .map(|url| {
            let client = client_for_url(url, target)?;
            Ok(client.get_connection_info().clone())
        })
        .collect()
}

/// A cluster as messages name it: its seed nodes, never a password.
pub(crate) fn cluster_target(urls: &[String]) -> String {
    let nodes: Vec<String> = urls.iter().map(|url| lock_core::redact_url(url)).collect();
    format!("redis cluster {}", nodes.join(","))
}

pub(crate) async fn cluster_transport(
    nodes: Vec<redis::ConnectionInfo>,
    target: String,
    settings: &Settings,
) -> Result<RedisRsTransport> {
    #[cfg(feature = "tls")]
    if nodes
        .iter()
        .any(|node| matches!(node.addr(), redis::ConnectionAddr::TcpTls { .. }))
    {
        use_ring_unless_chosen();
    }
    let target: Arc<str> = target.into();
    let conns = crate::cluster::connect(nodes, &target, settings).await?;
    Ok(RedisRsTransport::cluster(conns, target))
}

/// A Sentinel target this build can connect to (TLS only with the `tls` feature).
pub(crate) fn check_sentinels(
    sentinels: lock_core::redis::SentinelTarget,
    target: &str,
) -> Result<lock_core::redis::SentinelTarget> {
    if sentinels.tls && !cfg!(feature = "tls") {
        return Err(Error::new(
            ErrorKind::Config,
            format!("invalid Redis URL {target}: {NO_TLS}"),
        ));
    }
    Ok(sentinels)
}

pub(crate) async fn sentinel_transport(
    sentinels: &lock_core::redis::SentinelTarget,
    target: String,
    settings: &Settings,
) -> Result<RedisRsTransport> {
    #[cfg(feature = "tls")]
    if sentinels.tls {
        use_ring_unless_chosen();
    }
    let target: Arc<str> = target.into();
    let resolver = Arc::new(crate::sentinel::Resolver::new(
        sentinels, &target, settings,
    )?);
    let waiters = PubSubLink::waiters(
        ClientSource::Sentinel(resolver.clone()),
        target.clone(),
        settings.connect_timeout,
        settings.response_timeout,
    );
    let conn = Arc::new(crate::sentinel::SentinelConn::new(
        resolver.clone(),
        manager_config(settings),
        settings,
        target.clone(),
    ));
    // Connect now, so that a set without a reachable primary is an error of `connect`.
    conn.manager().await?;
    let watch = crate::sentinel::SwitchWatch::start(
        sentinels,
        resolver,
        &conn,
        &waiters,
        settings.connect_timeout,
    );
    Ok(RedisRsTransport::sentinel(conn, target, waiters, watch))
}

/// The connection manager's settings. It has no response timeout of its own: every request
/// already runs under the operation's deadline (`timeout_at` in the transport), which starts
/// first and so always ends first; a second timer per request would only cost CPU (one
/// timer-wheel entry added and removed per request). A request that times out leaves the
/// connection as it is either way (the client reconnects on broken connections only).
fn manager_config(settings: &Settings) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(settings.connect_timeout))
        .set_response_timeout(None)
        .set_number_of_retries(settings.reconnect_attempts)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_secs(1))
}

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
