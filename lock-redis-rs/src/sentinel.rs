//! Redis behind Sentinel on the `redis` crate: the sentinels are asked which server is the
//! primary, and asked again whenever the connection to it breaks, times out, or meets a server
//! that is no longer the primary (`READONLY`), so that the backend follows a failover.
//!
//! Scripts run on a connection manager to the current primary; the Pub/Sub connection, made
//! on the first watch, also asks the sentinels at each (re)connection. A demoted primary that
//! stays up as a replica still delivers releases to its subscribers (Redis replicates
//! `PUBLISH`), so waiters keep hearing them until that connection breaks.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use lock_core::redis::{SentinelTarget, Settings};
use lock_core::{Error, ErrorKind, Result};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{IntoConnectionInfo, RedisResult};

use crate::error::from_redis;

/// Asks the sentinels for the current primary.
pub(crate) struct Resolver {
    client: tokio::sync::Mutex<SentinelClient>,
}

impl Resolver {
    pub(crate) fn new(target: &SentinelTarget, shown: &str) -> Result<Self> {
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
        Ok(Resolver {
            client: tokio::sync::Mutex::new(client),
        })
    }

    /// A client for the server the sentinels name the primary now (checked with `ROLE`).
    pub(crate) async fn primary(&self) -> RedisResult<redis::Client> {
        self.client.lock().await.async_get_client().await
    }
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
        }
    }

    fn current(&self) -> Option<ConnectionManager> {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
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
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(conn.clone());
        Ok(conn)
    }

    /// After `err` on a connection to what was the primary: forget the connection when the
    /// server may no longer be the primary (the next call asks the sentinels again), and
    /// turn `READONLY` (a demoted primary) into a connection error, which is sent again.
    pub(crate) fn after_error(&self, err: Error, readonly: bool) -> Error {
        let gone = readonly || matches!(err.kind(), ErrorKind::Connection | ErrorKind::Timeout);
        if gone {
            *self.current.lock().unwrap_or_else(PoisonError::into_inner) = None;
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
