//! [`RedisRsTransport`]: running a script, and subscribing, on the `redis` crate.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use lock_core::redis::{Deadline, RedisTransport, ReplicaAck, Reply, ScriptCall};
use lock_core::{Error, ErrorKind, Result, Watch, async_trait};
use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;
use redis::{RedisResult, ServerErrorKind, Value};

use crate::cluster::ClusterConns;
use crate::error::from_redis;
use crate::pubsub::Waiters;
use crate::sentinel::{SentinelConn, SwitchWatch};

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
    conn: Conn,
    target: Arc<str>,
    connected: Arc<AtomicBool>,
}

/// One server, or a Redis Cluster.
#[derive(Clone)]
enum Conn {
    /// One server: scripts on a connection manager, waiters on a Pub/Sub connection of their
    /// own (none for a backend built on an application's connection manager).
    Single {
        conn: ConnectionManager,
        waiters: Option<Arc<Waiters>>,
    },
    /// A cluster: scripts on a cluster connection, sharded Pub/Sub on another, both made
    /// again when a node stops answering.
    Cluster(Arc<ClusterConns>),
    /// The primary the sentinels name: scripts on a connection manager to it, made again when
    /// it changes, and waiters on a Pub/Sub connection to it.
    Sentinel {
        conn: Arc<SentinelConn>,
        waiters: Arc<Waiters>,
        /// Hears the sentinels announce a new primary; stopped with the last clone.
        _watch: Arc<SwitchWatch>,
    },
}

impl RedisRsTransport {
    pub(crate) fn new(
        conn: ConnectionManager,
        target: Arc<str>,
        waiters: Option<Arc<Waiters>>,
    ) -> Self {
        RedisRsTransport {
            conn: Conn::Single { conn, waiters },
            target,
            connected: Arc::new(AtomicBool::new(true)),
        }
    }

    pub(crate) fn cluster(conns: Arc<ClusterConns>, target: Arc<str>) -> Self {
        RedisRsTransport {
            conn: Conn::Cluster(conns),
            target,
            connected: Arc::new(AtomicBool::new(true)),
        }
    }

    pub(crate) fn sentinel(
        conn: Arc<SentinelConn>,
        target: Arc<str>,
        waiters: Arc<Waiters>,
        watch: SwitchWatch,
    ) -> Self {
        RedisRsTransport {
            conn: Conn::Sentinel {
                conn,
                waiters,
                _watch: Arc::new(watch),
            },
            target,
            connected: Arc::new(AtomicBool::new(true)),
        }
    }

    /// The connection manager of a backend on one server; `None` on a cluster or behind
    /// sentinels.
    pub(crate) fn connection_manager(&self) -> Option<&ConnectionManager> {
        match &self.conn {
            Conn::Single { conn, .. } => Some(conn),
            Conn::Cluster(_) | Conn::Sentinel { .. } => None,
        }
    }

    /// `request` on a connection of its own (one server, or a cluster), within `deadline`,
    /// noting whether the connection works for the timeout's message.
    async fn direct<T>(
        &self,
        op: &str,
        deadline: Deadline,
        request: impl Future<Output = RedisResult<T>>,
    ) -> Result<T> {
        match tokio::time::timeout_at(deadline.at, request).await {
            Ok(Ok(value)) => {
                self.connected.store(true, Ordering::Relaxed);
                Ok(value)
            }
            Ok(Err(e)) => {
                let err = from_redis(e, op, &self.target);
                let broken = err.kind() == ErrorKind::Connection;
                self.connected.store(!broken, Ordering::Relaxed);
                Err(err)
            }
            Err(_) => Err(lock_core::redis::no_reply(
                &format!("{op} on {}", self.target),
                deadline.within,
                self.connected.load(Ordering::Relaxed),
            )),
        }
    }

    /// [`RedisTransport::eval`] (an `async fn` of its own, outside `async_trait`'s impl,
    /// so that its future is not boxed).
    async fn eval_unboxed(&self, call: &ScriptCall, deadline: Deadline) -> Result<Reply> {
        let value = match &self.conn {
            Conn::Single { conn, .. } => {
                let mut conn = conn.clone();
                let request = async move { evalsha_or_eval(&mut conn, call).await };
                self.direct(call.op, deadline, request).await?
            }
            Conn::Cluster(conns) => {
                let mut conn = conns.scripts();
                let request = async move { evalsha_or_eval(&mut conn, call).await };
                self.direct(call.op, deadline, request)
                    .await
                    .inspect_err(|e| conns.after_failure(e.kind()))?
            }
            Conn::Sentinel { conn, .. } => {
                let request = async |m: &mut ConnectionManager| evalsha_or_eval(m, call).await;
                self.on_primary(conn, call.op, deadline, request).await?
            }
        };
        if let Value::Push { kind, .. } = &value {
            // A push taken for the answer: the script may or may not have run, and running
            // it again is safe.
            return Err(Error::new(
                ErrorKind::Connection,
                format!(
                    "{} on {}: the connection answered a {kind:?} push instead of the script",
                    call.op, self.target
                ),
            ));
        }
        Ok(reply(value))
    }

    /// `request` on a connection to the primary the sentinels name, within `deadline`; after
    /// an error that says the server may no longer be the primary, the next request asks them
    /// again.
    async fn on_primary<T>(
        &self,
        conn: &SentinelConn,
        op: &str,
        deadline: Deadline,
        request: impl AsyncFnOnce(&mut ConnectionManager) -> RedisResult<T>,
    ) -> Result<T> {
        let attempt = async {
            let mut manager = conn.manager().await?;
            request(&mut manager).await.map_err(|e| {
                let readonly = e.kind() == redis::ErrorKind::Server(ServerErrorKind::ReadOnly);
                conn.after_error(from_redis(e, op, &self.target), readonly)
            })
        };
        match tokio::time::timeout_at(deadline.at, attempt).await {
            Ok(outcome) => outcome,
            Err(_) => {
                let err = lock_core::redis::no_reply(
                    &format!("{op} on {}", self.target),
                    deadline.within,
                    true,
                );
                Err(conn.after_error(err, false))
            }
        }
    }
}

#[async_trait]
impl RedisTransport for RedisRsTransport {
    fn eval(
        &self,
        call: &ScriptCall,
        deadline: Deadline,
    ) -> impl Future<Output = Result<Reply>> + Send {
        self.eval_unboxed(call, deadline)
    }

    fn notifies(&self) -> bool {
        match &self.conn {
            Conn::Single { waiters, .. } => waiters.is_some(),
            Conn::Cluster(_) | Conn::Sentinel { .. } => true,
        }
    }

    fn sharded(&self) -> bool {
        matches!(self.conn, Conn::Cluster(_))
    }

    async fn eval_replicated(
        &self,
        call: &ScriptCall,
        ack: ReplicaAck,
        deadline: Deadline,
    ) -> Result<(Reply, Reply)> {
        let (value, waited) = match &self.conn {
            Conn::Single { conn, .. } => {
                let mut conn = conn.clone();
                let request = async move { replicated_single(&mut conn, call, ack).await };
                self.direct(call.op, deadline, request).await?
            }
            Conn::Cluster(conns) => {
                let mut conn = conns.scripts();
                let request = async move { replicated_cluster(&mut conn, call, ack).await };
                self.direct(call.op, deadline, request)
                    .await
                    .inspect_err(|e| conns.after_failure(e.kind()))?
            }
            Conn::Sentinel { conn, .. } => {
                let request =
                    async |m: &mut ConnectionManager| replicated_single(m, call, ack).await;
                self.on_primary(conn, call.op, deadline, request).await?
            }
        };
        Ok((reply(value), waited))
    }

    async fn watch(&self, channel: String) -> Result<Watch> {
        match &self.conn {
            Conn::Single {
                waiters: Some(waiters),
                ..
            } => waiters.watch(channel).await,
            Conn::Single { waiters: None, .. } => Err(self.no_pubsub()),
            Conn::Cluster(conns) => conns.waiters().watch(channel).await,
            Conn::Sentinel { waiters, .. } => waiters.watch(channel).await,
        }
    }

    async fn watch_grants(&self, channel: String) -> Result<Watch> {
        match &self.conn {
            Conn::Single {
                waiters: Some(waiters),
                ..
            } => waiters.watch_lingering(channel).await,
            Conn::Single { waiters: None, .. } => Err(self.no_pubsub()),
            Conn::Cluster(conns) => conns.waiters().watch_lingering(channel).await,
            Conn::Sentinel { waiters, .. } => waiters.watch_lingering(channel).await,
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
            .field("cluster", &self.sharded())
            .field("notify", &self.notifies())
            .finish_non_exhaustive()
    }
}

/// `EVALSHA` of `call`'s script.
fn evalsha(call: &ScriptCall) -> redis::Cmd {
    let mut evalsha = redis::cmd("EVALSHA");
    evalsha
        .arg(call.script.sha1())
        .arg(call.keys.len())
        .arg(&call.keys)
        .arg(ArgsOf(call));
    evalsha
}

/// `EVAL` of `call`'s script: the whole text, which the server also caches.
fn eval(call: &ScriptCall) -> redis::Cmd {
    let mut eval = redis::cmd("EVAL");
    eval.arg(call.script.lua())
        .arg(call.keys.len())
        .arg(&call.keys)
        .arg(ArgsOf(call));
    eval
}

/// `EVALSHA`, and after a `NOSCRIPT` (nothing ran: a `SCRIPT FLUSH`, a restart, a node that
/// never saw the script) the script sent whole (`EVAL`, which also caches it there).
///
/// Not `SCRIPT LOAD` then `EVALSHA` again: that is one more round trip, and a restart between
/// the two (the `EVALSHA` sent again on a new connection) loses what was loaded, so it could
/// answer `NOSCRIPT` again (CI saw it, fred, a server killed and started empty). On a
/// cluster, a `SCRIPT LOAD` has no key to be routed by, and could load it on another node.
async fn evalsha_or_eval(
    conn: &mut impl redis::aio::ConnectionLike,
    call: &ScriptCall,
) -> RedisResult<Value> {
    match evalsha(call).query_async(conn).await {
        Err(e) if e.kind() == redis::ErrorKind::Server(ServerErrorKind::NoScript) => {
            eval(call).query_async(conn).await
        }
        other => other,
    }
}

/// A call's arguments, written to a command as they are (each is text already).
struct ArgsOf<'a>(&'a ScriptCall);

impl redis::ToRedisArgs for ArgsOf<'_> {
    fn write_redis_args<W: ?Sized + redis::RedisWrite>(&self, out: &mut W) {
        for arg in &self.0.args {
            out.write_arg(arg.as_bytes());
        }
    }

    fn num_of_args(&self) -> usize {
        self.0.args.len()
    }
}

/// `WAIT` (or `WAITAOF`) for `ack`.
fn wait(ack: ReplicaAck) -> redis::Cmd {
    let (command, args) = lock_core::redis::calls::replica_wait(ack);
    let mut wait = redis::cmd(command);
    for arg in &args {
        wait.arg(arg.as_bytes());
    }
    wait
}

/// The second answer of a script and its `WAIT`: the server's error answer (the script ran)
/// is [`Reply::Error`].
fn waited(answer: RedisResult<Value>) -> Reply {
    match answer {
        Ok(Value::ServerError(e)) => Reply::Error(e.to_string()),
        Ok(value) => reply(value),
        Err(e) => Reply::Error(e.to_string()),
    }
}

/// The script's answer and its `WAIT`'s, from a pipeline's answers.
fn split(answers: Vec<RedisResult<Value>>) -> RedisResult<(Value, Reply)> {
    let mut answers = answers.into_iter();
    match (answers.next(), answers.next()) {
        (Some(script), Some(wait)) => Ok((script?, waited(wait))),
        _ => Err(redis::RedisError::from((
            redis::ErrorKind::Parse,
            "a pipeline of 2 commands answered fewer",
        ))),
    }
}

/// The script then `WAIT`, pipelined: one write, so both on the same connection. Each
/// command's error comes back as its own answer (`ignore_errors`): a failed `WAITAOF` does
/// not hide that the script ran. After a `NOSCRIPT`, the script is sent whole (`EVAL`) with
/// its `WAIT`.
async fn replicated_single(
    conn: &mut ConnectionManager,
    call: &ScriptCall,
    ack: ReplicaAck,
) -> RedisResult<(Value, Reply)> {
    let mut pipe = redis::pipe();
    pipe.ignore_errors()
        .add_command(evalsha(call))
        .add_command(wait(ack));
    let mut answers: Vec<RedisResult<Value>> = pipe.query_async(conn).await?;
    if let Some(Err(e)) = answers.first()
        && e.kind() == redis::ErrorKind::Server(ServerErrorKind::NoScript)
    {
        let mut pipe = redis::pipe();
        pipe.ignore_errors()
            .add_command(eval(call))
            .add_command(wait(ack));
        answers = pipe.query_async(conn).await?;
    }
    split(answers)
}

/// On a cluster, the pipeline goes to the primary of the call's first key, with `EVAL` when
/// that node lacks the script.
async fn replicated_cluster(
    conn: &mut ClusterConnection,
    call: &ScriptCall,
    ack: ReplicaAck,
) -> RedisResult<(Value, Reply)> {
    use redis::cluster_routing::{Route, SingleNodeRoutingInfo, SlotAddr};
    let slot = lock_core::redis::keys::hash_slot(call.keys.first().map_or("", String::as_str));
    let route = || SingleNodeRoutingInfo::SpecificNode(Route::new(slot, SlotAddr::Master));
    let mut pipe = redis::pipe();
    pipe.add_command(evalsha(call)).add_command(wait(ack));
    // A routed pipeline answers each command's error as a value.
    let mut values = conn.route_pipeline(pipe, 0, 2, route()).await?;
    if let Some(Value::ServerError(e)) = values.first()
        && e.kind() == Some(ServerErrorKind::NoScript)
    {
        let mut pipe = redis::pipe();
        pipe.add_command(eval(call)).add_command(wait(ack));
        values = conn.route_pipeline(pipe, 0, 2, route()).await?;
    }
    let answers = values
        .into_iter()
        .map(|value| match value {
            Value::ServerError(e) => Err(e.into()),
            value => Ok(value),
        })
        .collect();
    split(answers)
}

/// A script's answer as the protocol reads it.
fn reply(value: Value) -> Reply {
    match value {
        Value::Int(n) => Reply::Int(n),
        Value::Array(items) => Reply::Array(items.into_iter().map(reply).collect()),
        other => Reply::Other(format!("{other:?}")),
    }
}
