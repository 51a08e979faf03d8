//! [`RedisRsTransport`]: running a script, and subscribing, on the `redis` crate.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use lock_core::redis::{Deadline, RedisTransport, Reply, ScriptCall};
use lock_core::{Error, ErrorKind, Result, Watch, async_trait};
use redis::aio::ConnectionManager;
use redis::{RedisResult, ServerErrorKind, Value};

use crate::error::from_redis;
use crate::pubsub::Waiters;

/// The `redis` crate's side of a [`RedisRsBackend`](crate::RedisRsBackend): scripts on its
/// shared, multiplexed connection, and subscriptions on the Pub/Sub connection its waiters
/// share. The protocol itself is [`lock_core::redis`]'s.
///
/// # Examples
///
/// ```
/// use lock_core::redis::RedisBackend;
/// use lock_redis_rs::RedisRsTransport;
///
/// /// Code written against the protocol layer, for the redis-rs client.
/// fn prefix_of(backend: &RedisBackend<RedisRsTransport>) -> &str {
///     backend.prefix()
/// }
/// ```
#[derive(Clone)]
pub struct RedisRsTransport {
    conn: ConnectionManager,
    /// The server's URL without its password, for messages.
    target: Arc<str>,
    /// Whether the last request reached the server (false after a connection error): a request
    /// still waiting when the response timeout passes is then waiting for a reconnection.
    connected: Arc<AtomicBool>,
    /// The waiters of the backend and its clones, on the Pub/Sub connection; `None` without a
    /// client to open it with.
    waiters: Option<Arc<Waiters>>,
}

impl RedisRsTransport {
    /// A transport on `conn`, to the server `target` (without its password), whose waiters
    /// are `waiters` (`None`: it cannot subscribe).
    pub(crate) fn new(
        conn: ConnectionManager,
        target: Arc<str>,
        waiters: Option<Arc<Waiters>>,
    ) -> Self {
        RedisRsTransport {
            conn,
            target,
            connected: Arc::new(AtomicBool::new(true)),
            waiters,
        }
    }

    /// The connection scripts run on.
    pub(crate) fn connection_manager(&self) -> &ConnectionManager {
        &self.conn
    }
}

#[async_trait]
impl RedisTransport for RedisRsTransport {
    async fn eval(&self, call: &ScriptCall, deadline: Deadline) -> Result<Reply> {
        let mut conn = self.conn.clone();
        match tokio::time::timeout_at(deadline.at, evalsha_or_load(&mut conn, call)).await {
            Ok(Ok(value)) => {
                self.connected.store(true, Ordering::Relaxed);
                Ok(reply(value))
            }
            Ok(Err(e)) => {
                let err = from_redis(e, call.op, &self.target);
                let broken = err.kind() == ErrorKind::Connection;
                self.connected.store(!broken, Ordering::Relaxed);
                Err(err)
            }
            Err(_) => Err(lock_core::redis::no_reply(
                &format!("{} on {}", call.op, self.target),
                deadline.within,
                self.connected.load(Ordering::Relaxed),
            )),
        }
    }

    fn notifies(&self) -> bool {
        self.waiters.is_some()
    }

    async fn watch(&self, channel: String) -> Result<Watch> {
        match &self.waiters {
            Some(waiters) => waiters.watch(channel).await,
            None => Err(self.no_pubsub()),
        }
    }

    async fn watch_grants(&self, channel: String) -> Result<Watch> {
        match &self.waiters {
            Some(waiters) => waiters.watch_lingering(channel).await,
            None => Err(self.no_pubsub()),
        }
    }
}

impl RedisRsTransport {
    fn no_pubsub(&self) -> Error {
        Error::new(
            ErrorKind::Unsupported,
            format!(
                "{self:?} does not offer notification of releases: built from a connection \
                 manager, it has no client to open a Pub/Sub connection with"
            ),
        )
    }
}

impl fmt::Debug for RedisRsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRsTransport")
            .field("target", &self.target)
            .field("notify", &self.waiters.is_some())
            .finish_non_exhaustive()
    }
}

/// `EVALSHA`, and after a `NOSCRIPT` (nothing ran: a `SCRIPT FLUSH`, a restart) `SCRIPT LOAD`
/// and the `EVALSHA` again, as `redis::Script` does.
async fn evalsha_or_load(conn: &mut ConnectionManager, call: &ScriptCall) -> RedisResult<Value> {
    let mut evalsha = redis::cmd("EVALSHA");
    evalsha
        .arg(call.script.sha1())
        .arg(call.keys.len())
        .arg(&call.keys)
        .arg(&call.args);
    match evalsha.query_async(conn).await {
        Err(e) if e.kind() == redis::ErrorKind::Server(ServerErrorKind::NoScript) => {
            let mut load = redis::cmd("SCRIPT");
            load.arg("LOAD").arg(call.script.lua());
            load.exec_async(conn).await?;
            evalsha.query_async(conn).await
        }
        other => other,
    }
}

/// A script's answer as the protocol reads it.
fn reply(value: Value) -> Reply {
    match value {
        Value::Int(n) => Reply::Int(n),
        Value::Array(items) => Reply::Array(items.into_iter().map(reply).collect()),
        other => Reply::Other(format!("{other:?}")),
    }
}
