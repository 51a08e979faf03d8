//! A Redis Cluster on the `redis` crate: the cluster connection scripts run on (each routed by
//! its first key to the node that serves the lock's slot), and notification of releases over
//! sharded Pub/Sub on the same connections (RESP3).
//!
//! Every channel of a lock is in its key's slot ([`KeySpace`](lock_core::redis::keys::KeySpace)),
//! so `SSUBSCRIBE` goes to the node that serves the slot, and a release, `SPUBLISH`ed by the
//! script on that node, reaches only the subscribers of that shard. The `redis` crate
//! subscribes again after a reconnection; the reader here wakes every waiter of a channel
//! subscribed again (a release may have gone unseen meanwhile), and subscribes again itself to
//! a channel the server dropped (`sunsubscribe` pushed when its slot moved to another node).

use std::collections::HashSet;
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;

use lock_core::notify::{Subscribe, Subscriptions};
use lock_core::redis::{RefreshGate, Settings};
use lock_core::{Error, ErrorKind, Result, async_trait};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{PushInfo, PushKind, Value};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use crate::error::from_redis;

pub(crate) type ClusterWaiters = Subscriptions<ShardedPubSub>;

/// Subscribes to shard channels on the cluster connection.
pub(crate) struct ShardedPubSub {
    conn: RwLock<ClusterConnection>,
    target: Arc<str>,
    response_timeout: Duration,
}

impl ShardedPubSub {
    fn conn(&self) -> ClusterConnection {
        self.conn
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn request(
        &self,
        op: &'static str,
        request: impl Future<Output = redis::RedisResult<()>>,
    ) -> Result<()> {
        match tokio::time::timeout(self.response_timeout, request).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(from_redis(e, op, &self.target)),
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "{op} on {}: no answer within {:?}",
                    self.target, self.response_timeout
                ),
            )),
        }
    }
}

#[async_trait]
impl Subscribe for ShardedPubSub {
    async fn subscribe(&self, channel: &str) -> Result<()> {
        let mut conn = self.conn();
        self.request("subscribing", conn.ssubscribe(channel)).await
    }

    async fn unsubscribe(&self, channel: &str) -> Result<()> {
        let mut conn = self.conn();
        match self
            .request("unsubscribing", conn.sunsubscribe(channel))
            .await
        {
            // The connection closed: the subscription went with it.
            Err(e) if e.kind() == ErrorKind::Connection => Ok(()),
            outcome => outcome,
        }
    }
}

/// The connections to a cluster, made again from its seed nodes when a request fails.
///
/// The `redis` crate learns of a new topology from the nodes it talks to: a `MOVED` answer, a
/// connection refused. A primary that stops without closing its connections (a frozen
/// machine, a paused process, a partition) answers nothing, and the client keeps sending the
/// requests of its slots there after the cluster has failed it over to a replica. So a request
/// that times out, or whose connection fails, has both connections made again in the
/// background, from the seed nodes (a node that does not answer is skipped once the connect
/// timeout runs out): the new ones know the current topology. The waiters' channels are
/// subscribed again on the new one, and woken (a release may have gone unseen).
pub(crate) struct ClusterConns {
    scripts: RwLock<ClusterConnection>,
    waiters: Arc<ClusterWaiters>,
    client: ClusterClient,
    connect_timeout: Duration,
    /// When to make them again: at most once per connect timeout.
    gate: Arc<RefreshGate>,
}

impl ClusterConns {
    /// The connection scripts run on.
    pub(crate) fn scripts(&self) -> ClusterConnection {
        self.scripts
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The waiters, on the subscriptions' connection.
    pub(crate) fn waiters(&self) -> &Arc<ClusterWaiters> {
        &self.waiters
    }

    /// After a request failed with `kind`: makes both connections again in the background,
    /// when [`RefreshGate`] says so.
    pub(crate) fn after_failure(self: &Arc<Self>, kind: ErrorKind) {
        let Some(permit) = self.gate.after_failure(kind) else {
            return;
        };
        let conns = Arc::downgrade(self);
        tokio::spawn(async move {
            if let Some(live) = conns.upgrade() {
                live.rediscover().await;
            }
            drop(permit);
        });
    }

    async fn rediscover(&self) {
        // Connecting to every seed (one that does not answer takes the client's connect
        // timeout), then asking one for the slots: both connections at once, as each waits
        // for the same stopped seed.
        let within = self.connect_timeout * 3;
        let connect =
            async || tokio::time::timeout(within, self.client.get_async_connection()).await;
        let (Ok(Ok(scripts)), Ok(Ok(subscriber))) = tokio::join!(connect(), connect()) else {
            // The seeds did not answer: the next failure tries again.
            return;
        };
        *self.scripts.write().unwrap_or_else(PoisonError::into_inner) = scripts;
        *self
            .waiters
            .subscriber()
            .conn
            .write()
            .unwrap_or_else(PoisonError::into_inner) = subscriber;
        for channel in self.waiters.channels().await {
            let _ = self.waiters.subscriber().subscribe(&channel).await;
        }
        self.waiters.notify_all();
    }
}

/// Connects to the cluster whose seed nodes are `nodes`: the connections, and the waiters of
/// the backend, whose reader task lives as long as the connections.
pub(crate) async fn connect(
    nodes: Vec<redis::ConnectionInfo>,
    target: &Arc<str>,
    settings: &Settings,
) -> Result<Arc<ClusterConns>> {
    let (pushes, received) = unbounded_channel();
    let retries = u32::try_from(settings.reconnect_attempts).unwrap_or(u32::MAX);
    let client = ClusterClientBuilder::new(nodes)
        .use_protocol(redis::ProtocolVersion::RESP3)
        .push_sender(pushes)
        .connection_timeout(settings.connect_timeout)
        // Each attempt on a node is bounded (a node that stopped answering is found out), but
        // not the request as a whole: every request already runs under the operation's
        // deadline, which starts first and ends first (one timer fewer per request). An
        // attempt may wait for replicas (`WAIT`, `WAITAOF`) besides: a shorter bound would
        // send it again, wait again, until the deadline.
        .response_timeout(settings.request_timeout())
        .overall_response_timeout(None)
        .retries(retries)
        .build()
        .map_err(|e| {
            Error::new(ErrorKind::Config, format!("invalid Redis Cluster {target}")).with_source(e)
        })?;
    // Two connections: the scripts', and the subscriptions'. The server drops a shard
    // channel whose slot moved with a `sunsubscribe` push of its own, which redis-rs may take
    // for the answer to a request in flight on that connection: only subscription requests
    // are in flight on the second.
    let connect = async || match tokio::time::timeout(
        settings.connect_timeout,
        client.get_async_connection(),
    )
    .await
    {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(from_redis(e, "connecting", target)),
        Err(_) => Err(lock_core::redis::no_connection(
            &format!("connecting to {target}"),
            settings.connect_timeout,
        )),
    };
    let conn = connect().await?;
    let subscriber = connect().await?;
    let waiters = Subscriptions::new(ShardedPubSub {
        conn: RwLock::new(subscriber),
        target: target.clone(),
        response_timeout: settings.response_timeout,
    });
    tokio::spawn(read(Arc::downgrade(&waiters), received));
    Ok(Arc::new(ClusterConns {
        scripts: RwLock::new(conn),
        waiters,
        client,
        connect_timeout: settings.connect_timeout,
        gate: Arc::new(RefreshGate::new(settings.connect_timeout)),
    }))
}

/// Hands each push of the cluster connection to the waiters, until the connection is gone
/// (every clone dropped, its push sender with it) or the waiters are.
async fn read(waiters: Weak<ClusterWaiters>, mut received: UnboundedReceiver<PushInfo>) {
    // The shard channels the server confirmed and has not dropped since.
    let mut subscribed = HashSet::new();
    while let Some(push) = received.recv().await {
        let Some(live) = waiters.upgrade() else {
            return;
        };
        let channel = push.data.first().and_then(text);
        match (push.kind, channel) {
            (PushKind::SMessage, Some(channel)) => {
                let payload = push.data.get(1).and_then(text).unwrap_or_default();
                live.deliver(&channel, &payload);
            }
            // Confirmed again without being dropped: subscribed again after a reconnection,
            // so a release may have gone unseen meanwhile.
            (PushKind::SSubscribe, Some(channel)) if !subscribed.insert(channel.clone()) => {
                live.notify(&channel);
            }
            (PushKind::SUnsubscribe, Some(channel)) => {
                subscribed.remove(&channel);
                // Still watched: the server dropped it (its slot moved), or a new watch came
                // meanwhile. Either way, subscribe again (on the slot's node now) and wake its
                // waiters; an extra SSUBSCRIBE costs nothing.
                if live.channels().await.contains(&channel) {
                    live.notify(&channel);
                    tokio::spawn(async move {
                        let _ = live.subscriber().subscribe(&channel).await;
                    });
                }
            }
            (PushKind::Disconnection, _) => live.notify_all(),
            _ => {}
        }
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}
