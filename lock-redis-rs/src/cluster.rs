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
use std::sync::{Arc, Weak};
use std::time::Duration;

use lock_core::notify::{Subscribe, Subscriptions};
use lock_core::redis::Settings;
use lock_core::{Error, ErrorKind, Result, async_trait};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{PushInfo, PushKind, Value};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use crate::error::from_redis;

pub(crate) type ClusterWaiters = Subscriptions<ShardedPubSub>;

/// Subscribes to shard channels on the cluster connection.
pub(crate) struct ShardedPubSub {
    conn: ClusterConnection,
    target: Arc<str>,
    response_timeout: Duration,
}

impl ShardedPubSub {
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
        let mut conn = self.conn.clone();
        self.request("subscribing", conn.ssubscribe(channel)).await
    }

    async fn unsubscribe(&self, channel: &str) -> Result<()> {
        let mut conn = self.conn.clone();
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

/// Connects to the cluster whose seed nodes are `nodes`: the connection, and the waiters of
/// the backend, whose reader task lives as long as the connection.
pub(crate) async fn connect(
    nodes: Vec<redis::ConnectionInfo>,
    target: &Arc<str>,
    settings: &Settings,
) -> Result<(ClusterConnection, Arc<ClusterWaiters>)> {
    let (pushes, received) = unbounded_channel();
    let retries = u32::try_from(settings.reconnect_attempts).unwrap_or(u32::MAX);
    let client = ClusterClientBuilder::new(nodes)
        .use_protocol(redis::ProtocolVersion::RESP3)
        .push_sender(pushes)
        .connection_timeout(settings.connect_timeout)
        // Each attempt on a node is bounded (a node that stopped answering is found out), but
        // not the request as a whole: every request already runs under the operation's
        // deadline, which starts first and ends first (one timer fewer per request).
        .response_timeout(settings.response_timeout)
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
        conn: subscriber,
        target: target.clone(),
        response_timeout: settings.response_timeout,
    });
    tokio::spawn(read(Arc::downgrade(&waiters), received));
    Ok((conn, waiters))
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
