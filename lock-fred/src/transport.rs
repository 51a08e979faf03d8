//! [`FredTransport`]: running a script, and subscribing, on the `fred` crate.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use fred::error::Error as FredError;
use fred::prelude::{Client, ClientLike, ClusterInterface, Options, Pool, ServerConfig, Value};
use fred::types::{ClusterHash, CustomCommand};
use lock_core::notify::Subscriptions;
use lock_core::redis::{Deadline, RedisTransport, RefreshGate, ReplicaAck, Reply, ScriptCall};
use lock_core::{Error, ErrorKind, Result, Watch, async_trait};
use tokio::time::Instant;

use crate::connect::ConnectionTask;
use crate::pubsub::PubSub;
use crate::request::{options, routed, timed_by_fred};
use crate::sentinel::SwitchWatch;

/// The `fred` crate's side of a [`FredBackend`](crate::FredBackend): scripts on a `fred`
/// [`Client`] (or the clients of a [`Pool`], in turn), and subscriptions on a Pub/Sub connection
/// of its own. The protocol itself is [`lock_core::redis`]'s.
///
/// # Examples
///
/// ```
/// use lock_core::redis::RedisBackend;
/// use lock_fred::FredTransport;
///
/// /// Code written against the protocol layer, for the fred client.
/// fn prefix_of(backend: &RedisBackend<FredTransport>) -> &str {
///     backend.prefix()
/// }
/// ```
#[derive(Clone)]
pub struct FredTransport {
    conn: Conn,
    /// A Redis Cluster: releases on sharded Pub/Sub.
    sharded: bool,
    /// The server, without its password, for messages.
    target: Arc<str>,
    /// The waiters of the backend's locks, and the Pub/Sub connection that wakes them.
    notify: Arc<Subscriptions<PubSub>>,
    /// The connection task of a client the backend made itself, stopped with the last clone.
    _owned: Option<Arc<ConnectionTask>>,
    /// On a Redis Cluster or behind sentinels: the clients' view of it, brought up to date
    /// after a failure.
    resync: Option<Arc<Resync>>,
    /// Behind sentinels: the failovers they announce, followed as they happen.
    _switches: Option<Arc<SwitchWatch>>,
}

/// Brings the clients' view of a Redis Cluster, or of the primary the sentinels name, up to
/// date after a request timed out or its connection failed, as [`RefreshGate`] says when:
/// `CLUSTER SLOTS` asked of a node that answers, or a reconnection (which asks the sentinels
/// again). The waiters are then woken to try again at once.
struct Resync {
    clients: Vec<Client>,
    /// Behind sentinels (else on a Redis Cluster).
    sentinel: bool,
    /// How long one may take.
    within: Duration,
    gate: Arc<RefreshGate>,
}

impl Resync {
    fn after_failure(&self, kind: ErrorKind, notify: &Arc<Subscriptions<PubSub>>) {
        let Some(permit) = self.gate.after_failure(kind) else {
            return;
        };
        let (clients, sentinel, within) = (self.clients.clone(), self.sentinel, self.within);
        let notify = Arc::downgrade(notify);
        tokio::spawn(async move {
            for client in &clients {
                let _ = if sentinel {
                    tokio::time::timeout(within, client.force_reconnection()).await
                } else {
                    tokio::time::timeout(within, client.sync_cluster()).await
                };
            }
            if let Some(notify) = notify.upgrade() {
                notify.notify_all();
            }
            drop(permit);
        });
    }
}

/// Where requests go.
#[derive(Clone)]
pub(crate) enum Conn {
    Client(Client),
    Pool(Pool),
}

impl Conn {
    /// The client for the next request: the only one, or the pool's next in turn.
    pub(crate) fn next(&self) -> &Client {
        match self {
            Conn::Client(client) => client,
            Conn::Pool(pool) => pool.next(),
        }
    }

    /// Every client requests go to.
    pub(crate) fn clients(&self) -> &[Client] {
        match self {
            Conn::Client(client) => std::slice::from_ref(client),
            Conn::Pool(pool) => pool.clients(),
        }
    }
}

impl FredTransport {
    /// A transport on `conn`, to the server `target` (without its password), whose waiters are
    /// `notify`; `owned`, the connection task of a client made for it, is stopped with it.
    pub(crate) fn new(
        conn: Conn,
        target: Arc<str>,
        notify: Arc<Subscriptions<PubSub>>,
        owned: Option<ConnectionTask>,
        connect_timeout: Duration,
    ) -> Self {
        let sharded = conn.next().is_clustered();
        let sentinel = matches!(
            conn.next().client_config().server,
            ServerConfig::Sentinel { .. }
        );
        let resync = (sharded || sentinel).then(|| {
            Arc::new(Resync {
                clients: conn.clients().to_vec(),
                sentinel,
                within: connect_timeout,
                gate: Arc::new(RefreshGate::new(connect_timeout)),
            })
        });
        let switches = SwitchWatch::start(conn.clients(), &notify, connect_timeout);
        FredTransport {
            sharded,
            conn,
            target,
            notify,
            _owned: owned.map(Arc::new),
            resync,
            _switches: switches.map(Arc::new),
        }
    }

    /// After a request failed: on a Redis Cluster or behind sentinels, see [`Resync`].
    fn after_failure(&self, e: &Error) {
        if let Some(resync) = &self.resync {
            resync.after_failure(e.kind(), &self.notify);
        }
    }

    /// The client for the next request.
    pub(crate) fn client(&self) -> &Client {
        self.conn.next()
    }

    /// [`RedisTransport::eval`] (an `async fn` of its own, outside `async_trait`'s impl,
    /// so that its future is not boxed).
    async fn eval_unboxed(&self, call: &ScriptCall, deadline: Deadline) -> Result<Reply> {
        let client = self.conn.next();
        let request = routed(client, deadline.at, || {
            evalsha_or_eval(client, deadline.at, call)
        });
        let (op, within) = (call.op, deadline.within);
        let value = timed_by_fred(op, &self.target, within, client, request)
            .await
            .inspect_err(|e| self.after_failure(e))?;
        Ok(reply(value))
    }
}

#[async_trait]
impl RedisTransport for FredTransport {
    fn eval(
        &self,
        call: &ScriptCall,
        deadline: Deadline,
    ) -> impl Future<Output = Result<Reply>> + Send {
        self.eval_unboxed(call, deadline)
    }

    fn notifies(&self) -> bool {
        true
    }

    fn sharded(&self) -> bool {
        self.sharded
    }

    async fn eval_replicated(
        &self,
        call: &ScriptCall,
        ack: ReplicaAck,
        deadline: Deadline,
    ) -> Result<(Reply, Reply)> {
        let client = self.conn.next();
        let request = routed(client, deadline.at, || {
            replicated(client, deadline.at, call, ack)
        });
        let (op, within) = (call.op, deadline.within);
        let (value, waited) = timed_by_fred(op, &self.target, within, client, request)
            .await
            .inspect_err(|e| self.after_failure(e))?;
        Ok((reply(value), waited))
    }

    async fn watch(&self, channel: String) -> Result<Watch> {
        self.notify.watch(channel).await
    }

    async fn watch_grants(&self, channel: String) -> Result<Watch> {
        self.notify.watch_lingering(channel).await
    }
}

impl fmt::Debug for FredTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FredTransport")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// One `EVALSHA` of the call's script, and after a `NOSCRIPT` (nothing ran: a `SCRIPT FLUSH`,
/// a restart, a node that never saw it) the script sent whole (`EVAL`, which also caches it).
///
/// Not `SCRIPT LOAD` then `EVALSHA` again: that is one more round trip, and a restart between
/// the two (fred sends the `EVALSHA` again on its new connection) loses what was loaded, so it
/// could answer `NOSCRIPT` again (CI saw it: a server killed and started empty).
async fn evalsha_or_eval(
    client: &Client,
    deadline: Instant,
    call: &ScriptCall,
) -> std::result::Result<Value, FredError> {
    match evalsha(client, deadline, call).await {
        Err(e) if e.details().starts_with("NOSCRIPT") => {
            client
                .with_options(&script_options(deadline, call))
                .custom(eval_command(), script_args(call, call.script.lua())?)
                .await
        }
        other => other,
    }
}

/// `EVALSHA` of `call`, with the options of a command due by `deadline`, on the node of the
/// slot of its first key.
///
/// A custom command, not fred's `evalsha`: fred's scripting interface is not one its
/// `WithOptions` client carries, so `with_options(..).evalsha(..)` reaches the plain client
/// through `Deref`, and the options (the deadline, the write attempts) were silently dropped.
async fn evalsha(
    client: &Client,
    deadline: Instant,
    call: &ScriptCall,
) -> std::result::Result<Value, FredError> {
    client
        .with_options(&script_options(deadline, call))
        .custom(evalsha_command(), script_args(call, call.script.sha1())?)
        .await
}

/// The options of a script command due by `deadline`: routed, on a cluster, by the slot of
/// its first key (fred would hash its first argument, the script's SHA-1).
fn script_options(deadline: Instant, call: &ScriptCall) -> Options {
    let mut options = options(deadline);
    if let Some(key) = call.keys.first() {
        let slot = lock_core::redis::keys::hash_slot(key);
        options.cluster_hash = Some(ClusterHash::Custom(slot));
    }
    options
}

fn evalsha_command() -> CustomCommand {
    CustomCommand::new_static("EVALSHA", ClusterHash::FirstKey, false)
}

fn eval_command() -> CustomCommand {
    CustomCommand::new_static("EVAL", ClusterHash::FirstKey, false)
}

/// `script numkeys keys... args...`, `script` being its SHA-1 (`EVALSHA`) or its text (`EVAL`).
fn script_args(call: &ScriptCall, script: &str) -> std::result::Result<Vec<Value>, FredError> {
    let mut args: Vec<Value> = Vec::with_capacity(2 + call.keys.len() + call.args.len());
    args.push(script.into());
    args.push(call.keys.len().try_into()?);
    args.extend(call.keys.iter().map(|k| Value::from(k.as_str())));
    args.extend(call.args.iter().map(|a| Value::from(a.as_str())));
    Ok(args)
}

/// The script then `WAIT` (or `WAITAOF`), pipelined on one client (on a cluster, to the
/// primary of the call's first key): both on the same connection. After a `NOSCRIPT`, the
/// pipeline is sent again with the script whole (`EVAL`). An error answered to the second
/// command (the script ran) is [`Reply::Error`].
async fn replicated(
    client: &Client,
    deadline: Instant,
    call: &ScriptCall,
    ack: ReplicaAck,
) -> std::result::Result<(Value, Reply), FredError> {
    let (wait_command, wait_args) = lock_core::redis::calls::replica_wait(ack);
    // The script by its SHA-1, or whole (`EVAL`) after a `NOSCRIPT`, then its `WAIT`.
    let wait_args = &wait_args;
    let send = |whole: bool| async move {
        let pipeline = client
            .pipeline()
            .with_options(&script_options(deadline, call));
        let command = |name| CustomCommand::new_static(name, ClusterHash::FirstKey, false);
        let (script, text) = if whole {
            (eval_command(), call.script.lua())
        } else {
            (evalsha_command(), call.script.sha1())
        };
        pipeline
            .custom::<(), _>(script, script_args(call, text)?)
            .await?;
        let wait: Vec<Value> = wait_args.iter().map(|a| Value::from(a.as_str())).collect();
        pipeline
            .custom::<(), _>(command(wait_command), wait)
            .await?;
        Ok::<_, FredError>(pipeline.try_all::<Value>().await)
    };
    let mut answers = send(false).await?;
    if answers.first().is_some_and(|a| {
        a.as_ref()
            .is_err_and(|e| e.details().starts_with("NOSCRIPT"))
    }) {
        answers = send(true).await?;
    }
    let mut answers = answers.into_iter();
    match (answers.next(), answers.next()) {
        (Some(value), Some(waited)) => {
            let waited = match waited {
                Ok(value) => reply(value),
                Err(e) => Reply::Error(e.details().to_owned()),
            };
            Ok((value?, waited))
        }
        _ => Err(FredError::new(
            fred::error::ErrorKind::Protocol,
            "a pipeline of 2 commands answered fewer",
        )),
    }
}

/// A script's answer as the protocol reads it.
fn reply(value: Value) -> Reply {
    match value {
        Value::Integer(n) => Reply::Int(n),
        Value::Array(items) => Reply::Array(items.into_iter().map(reply).collect()),
        other => Reply::Other(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lock_core::FencedAcquire;
    use lock_core::redis::Script;
    use lock_core::redis::calls::acquire_fenced;

    #[test]
    fn scripts_carry_their_source_and_sha1() {
        // fred hashes with a SHA-1 of its own: both must name each script alike, as Redis does.
        for script in Script::ALL {
            let fred = fred::types::scripts::Script::from_lua(script.lua());
            assert_eq!(&fred.sha1()[..], script.sha1(), "{script:?}");
        }
        let shas: std::collections::HashSet<_> = Script::ALL.iter().map(|s| s.sha1()).collect();
        assert_eq!(shas.len(), Script::ALL.len(), "every script is distinct");
    }

    #[test]
    fn replies_are_read_strictly() {
        let ints =
            |items: &[i64]| Value::Array(items.iter().copied().map(Value::Integer).collect());
        assert_eq!(reply(ints(&[1])), Reply::Array(vec![Reply::Int(1)]));
        assert_eq!(reply(Value::Integer(-2)), Reply::Int(-2));
        assert!(matches!(reply(Value::Null), Reply::Other(_)));
        assert!(matches!(reply(Value::String("1".into())), Reply::Other(_)));
        let name = lock_core::LockName::new("x").unwrap();
        let token = lock_core::Token::generate().unwrap();
        let ttl = lock_core::Ttl::from_secs(1).unwrap();
        let call = acquire_fenced("", &name, &token, ttl, None);
        assert_eq!(
            call.read(reply(ints(&[1, 7]))).unwrap(),
            FencedAcquire::Acquired { fence: 7 }
        );
        for wrong in [
            ints(&[1, 0]),
            Value::Integer(1),
            Value::Array(vec![Value::Integer(1), Value::Null]),
        ] {
            let err = call.read(reply(wrong)).unwrap_err();
            assert_eq!(err.kind(), lock_core::ErrorKind::UnexpectedReply, "{err}");
        }
    }
}
