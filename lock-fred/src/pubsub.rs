//! The Pub/Sub side of a [`FredBackend`](crate::FredBackend): one connection of its own, opened
//! on the first watch, that carries the `SUBSCRIBE`s of every waiter of the backend and its
//! clones, and a task that wakes the waiters of a channel when a message arrives on it.
//!
//! Three hazards of fred shape it:
//! - fred answers `SUBSCRIBE` as soon as it is queued, not once the server confirmed it, and
//!   drops the confirmation. A waiter that tried the lock right away could then miss a release
//!   published before the server processed the `SUBSCRIBE`, and a refusal (`NOPERM`) would go
//!   unseen: so each `SUBSCRIBE` (and `UNSUBSCRIBE`) is pipelined with a `PING` on the same
//!   connection, whose answer comes after the server processed it, and which takes the
//!   server's error instead if it refused it (see `PubSub::confirmed`).
//! - fred does not subscribe again after reconnecting (only its `SubscriberClient` does, with
//!   bookkeeping of its own): here `Subscriptions::resubscribe` does, on fred's reconnection
//!   event, and wakes every waiter.
//! - fred drops the `sunsubscribe` a Cluster node sends when a slot it served moved away (a
//!   migration, a failover), so the waiters of a shard channel in that slot would hear nothing
//!   more, and learn of a hand-off by their heartbeat only: here the command clients' cluster
//!   changes (fred sees one when a command meets `MOVED`) refresh this connection's view of the
//!   cluster, subscribe again to every channel, on its slot's node now, and wake every waiter.
//! - fred's connection task holds the client: the connection is stopped (its task aborted)
//!   when the subscriptions are dropped, as the backend's own client is, and the listening task
//!   holds only a weak reference, so that neither keeps the other alive.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use fred::error::{Error as FredError, ErrorKind as FredKind};
use fred::interfaces::{ClientLike, ClusterInterface, EventInterface, PubsubInterface};
use fred::prelude::{Client, ClientState, Options, Server, Value};
use fred::types::{ClusterHash, ClusterStateChange, Message};
use lock_core::notify::{Subscribe, Subscriptions};
use lock_core::{ErrorKind, Result, async_trait};
use tokio::sync::Mutex as AsyncMutex;
use tokio::sync::broadcast::{Receiver, error::RecvError};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::connect::{ConnectionTask, Starter, default_reconnect_policy};
use crate::request::{bounded, options, routed};
use lock_core::redis::unexpected;

/// How long after a failed resubscription, on a connection that is still up (a server that did
/// not answer in time), to try again.
const RESUBSCRIBE_RETRY: Duration = Duration::from_secs(1);

/// The subscriber of a backend: its Pub/Sub connection, made on first use.
pub(crate) struct PubSub {
    /// A client never connected, with the configuration of the backend's (server, TLS,
    /// credentials, timeouts, reconnection policy); each connection is made by a fresh copy.
    template: Client,
    /// On a Redis Cluster: `SSUBSCRIBE`, on the node that serves the channel's slot.
    sharded: bool,
    /// The server, for messages.
    target: Arc<str>,
    connect_timeout: Duration,
    reconnect_attempts: usize,
    response_timeout: Duration,
    /// The connection, once made.
    live: AsyncMutex<Option<Live>>,
    /// The subscriptions this subscriber belongs to, for the listening task.
    home: OnceLock<Weak<Subscriptions<PubSub>>>,
    /// Numbers the `PING`s, so that an answer cannot be taken for another's.
    pings: AtomicU64,
    /// On a Redis Cluster: the topology changes each command client of the backend sees
    /// (copied for each listening task).
    topology: Vec<Receiver<Vec<ClusterStateChange>>>,
}

/// An open Pub/Sub connection and its listening task; dropping it stops both.
struct Live {
    client: Client,
    _task: Option<ConnectionTask>,
    listener: JoinHandle<()>,
    /// The tasks that pass the command clients' topology changes on to the listener.
    forwarders: Vec<JoinHandle<()>>,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.listener.abort();
        for forwarder in &self.forwarders {
            forwarder.abort();
        }
    }
}

impl PubSub {
    /// The subscriptions of a backend whose client is `client`, not connected yet; on a
    /// Cluster, `commands` are the clients whose topology changes make it subscribe again.
    pub(crate) fn new(
        client: &Client,
        commands: &[Client],
        target: Arc<str>,
        connect_timeout: Duration,
        reconnect_attempts: usize,
        response_timeout: Duration,
    ) -> Arc<Subscriptions<PubSub>> {
        // An application's client without a policy would never come back after its first
        // disconnection; the backend's own connection reconnects whatever that client does.
        let policy = client
            .client_reconnect_policy()
            .unwrap_or_else(default_reconnect_policy);
        let template = Client::new(
            client.client_config(),
            Some(client.perf_config()),
            Some(client.connection_config().clone()),
            Some(policy),
        );
        let sharded = template.is_clustered();
        let topology = if sharded {
            commands
                .iter()
                .map(EventInterface::cluster_change_rx)
                .collect()
        } else {
            Vec::new()
        };
        let subscriptions = Subscriptions::new(PubSub {
            topology,
            sharded,
            template,
            target,
            connect_timeout,
            reconnect_attempts,
            response_timeout,
            live: AsyncMutex::new(None),
            home: OnceLock::new(),
            pings: AtomicU64::new(0),
        });
        let _ = subscriptions
            .subscriber()
            .home
            .set(Arc::downgrade(&subscriptions));
        subscriptions
    }

    /// The connected client, connecting it (within the connect timeout) and starting the
    /// listening task the first time.
    async fn client(&self) -> Result<Client> {
        let mut live = self.live.lock().await;
        if let Some(live) = &*live {
            return Ok(live.client.clone());
        }
        // A fresh client each time: one whose connection attempt was cancelled cannot connect
        // again.
        let client = self.template.clone_new();
        let starter = Starter {
            deadline: Instant::now() + self.connect_timeout,
            attempts: self.reconnect_attempts,
            target: &self.target,
            within: self.connect_timeout,
        };
        let task = starter.start(&client).await?;
        // Listening from here on: the first connection's event has been sent already, and
        // nothing was subscribed before it.
        let messages = client.message_rx();
        let reconnections = client.reconnect_rx();
        let (moved, topology) = mpsc::channel(1);
        let forwarders = self
            .topology
            .iter()
            .map(|changes| tokio::spawn(forward(changes.resubscribe(), moved.clone())))
            .collect();
        let home = self.home.get().cloned().unwrap_or_default();
        let events = Events {
            messages,
            reconnections,
            topology,
        };
        let listener = tokio::spawn(listen(home, client.clone(), events, self.response_timeout));
        *live = Some(Live {
            client: client.clone(),
            _task: task,
            listener,
            forwarders,
        });
        Ok(client)
    }

    /// The client, if connected once.
    pub(crate) async fn connected(&self) -> Option<Client> {
        self.live
            .lock()
            .await
            .as_ref()
            .map(|live| live.client.clone())
    }

    /// Sends the request `send` builds (given the options of its commands) on `client`, within
    /// the response timeout. Without a connection it fails at once with a Connection error,
    /// instead of waiting for fred to reconnect: a waiter does not wait for its watch, and the
    /// reconnection subscribes again anyway.
    async fn request<T, F>(
        &self,
        op: &'static str,
        client: &Client,
        mut send: impl FnMut(Options) -> F,
    ) -> Result<T>
    where
        F: Future<Output = std::result::Result<T, FredError>>,
    {
        let deadline = Instant::now() + self.response_timeout;
        // A break noticed while the request is on its way ends it: a request queued behind
        // fred's reconnection would wait for it.
        let mut breaks = client.error_rx();
        let request = routed(client, deadline, || {
            let mut options = options(deadline);
            options.fail_fast = true;
            send(options)
        });
        let request = async {
            tokio::select! {
                reply = request => reply,
                Ok((error, _)) = breaks.recv() => Err(FredError::new(
                    FredKind::IO,
                    format!("the Pub/Sub connection broke: {error}"),
                )),
            }
        };
        let within = self.response_timeout;
        bounded(op, &self.target, within, client, deadline, request).await
    }
}

/// What a request changes on the Pub/Sub connection.
#[derive(Debug, Clone, Copy)]
enum Change {
    Subscribe,
    Unsubscribe,
}

impl PubSub {
    /// A fresh `PING` argument, so that an answer cannot be taken for another's.
    fn nonce(&self) -> String {
        format!(
            "process-lock:{}",
            self.pings.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Sends `change` for `channel` with a `PING` right behind it, and returns once the `PING`
    /// is answered: the server has then processed the change, and refused it if it did not
    /// answer the `PING` itself.
    ///
    /// The two go in one pipeline, written by fred's connection task in one go, with no reply
    /// read in between: fred answers `SUBSCRIBE` as soon as it is queued and waits for no answer
    /// to it, so the server's error for it (`NOPERM`, for a user whose ACL does not have the
    /// channel) goes to the next request waiting for an answer. Sent as two requests, the `PING`
    /// could be queued after the error had come back, and fred would drop the error, finding
    /// no request waiting: the refusal went unseen, and the watch succeeded.
    async fn confirmed(&self, change: Change, client: &Client, channel: &str) -> Result<()> {
        let op = match change {
            Change::Subscribe => "subscribe",
            Change::Unsubscribe => "unsubscribe",
        };
        let nonce = self.nonce();
        let sharded = self.sharded;
        let request = self.request(op, client, |options| {
            let options = if sharded {
                on_slot_of(channel, options)
            } else {
                pinned(client, options)
            };
            let pipeline = client.pipeline().with_options(&options);
            let (channel, nonce) = (channel.to_owned(), nonce.clone());
            async move {
                // Both only queue the command: fred answers them at once.
                match (change, sharded) {
                    (Change::Subscribe, false) => pipeline.subscribe(channel).await?,
                    (Change::Unsubscribe, false) => pipeline.unsubscribe(channel).await?,
                    (Change::Subscribe, true) => pipeline.ssubscribe(channel).await?,
                    (Change::Unsubscribe, true) => pipeline.sunsubscribe(channel).await?,
                }
                pipeline.ping::<Value>(Some(nonce)).await?;
                pipeline.last::<Value>().await
            }
        });
        match request.await {
            Ok(reply) if is_pong(&reply, &nonce) => Ok(()),
            Ok(reply) => {
                resynchronize(client, self.connect_timeout);
                Err(unexpected(op, reply))
            }
            // No answer at all: the connection may have died without a word (fred does not
            // notice on a connection that sends nothing else).
            Err(e) if e.kind() == ErrorKind::Connection => Err(e),
            // The answers may still come, to later requests.
            Err(e) if e.kind() == ErrorKind::Timeout => {
                resynchronize(client, self.connect_timeout);
                Err(e)
            }
            // The server refused the change (for a `SUBSCRIBE`, `NOPERM` is PermissionDenied):
            // its error answered the PING, and the PING's own answer is still to come.
            Err(e) => {
                self.realign(client).await;
                Err(e)
            }
        }
    }

    /// After an answer too many is on its way (a refused change's `PING` answer): waits until
    /// it has gone by, so that answers match their requests again, checking with `PING`s of its
    /// own; failing that, reconnects.
    ///
    /// fred drops an answer that arrives while no request waits for one. Requests on this
    /// connection are one at a time (`Subscriptions` sends them under its lock), so once the
    /// late answer arrived with none waiting it is gone; a `PING` that gets it instead lets its
    /// own answer go by the same way, after a pause.
    async fn realign(&self, client: &Client) {
        /// How many `PING`s to try before reconnecting.
        const ATTEMPTS: usize = 3;
        /// Added to twice the round trip, before trying again.
        const PAUSE: Duration = Duration::from_millis(10);
        for _ in 0..ATTEMPTS {
            let nonce = self.nonce();
            let sent = Instant::now();
            let reply = self
                .request("ping", client, |options| {
                    let pinger = client.with_options(&pinned(client, options));
                    let nonce = nonce.clone();
                    async move { pinger.ping::<Value>(Some(nonce)).await }
                })
                .await;
            match reply {
                Ok(reply) if is_pong(&reply, &nonce) => return,
                Ok(_) => tokio::time::sleep(sent.elapsed() * 2 + PAUSE).await,
                Err(_) => break,
            }
        }
        resynchronize(client, self.connect_timeout);
    }
}

/// `options`, sending the command, in a cluster, to the node fred sends `SUBSCRIBE` to, so that
/// a `PING`'s answer follows the confirmation.
/// `options`, sending the command to the node that serves the slot of `channel`: where a
/// shard channel is subscribed to, and where the `PING` after it must go to come back after it.
fn on_slot_of(channel: &str, mut options: Options) -> Options {
    let slot = fred::util::redis_keyslot(channel.as_bytes());
    options.cluster_hash = Some(ClusterHash::Custom(slot));
    options
}

fn pinned(client: &Client, mut options: Options) -> Options {
    if client.is_clustered() {
        let slot = fred::util::redis_keyslot(client.id().as_bytes());
        options.cluster_hash = Some(ClusterHash::Custom(slot));
    }
    options
}

#[async_trait]
impl Subscribe for PubSub {
    async fn subscribe(&self, channel: &str) -> Result<()> {
        let client = self.client().await?;
        self.confirmed(Change::Subscribe, &client, channel).await
    }

    async fn unsubscribe(&self, channel: &str) -> Result<()> {
        let Some(client) = self.connected().await else {
            return Ok(());
        };
        self.confirmed(Change::Unsubscribe, &client, channel).await
    }
}

impl fmt::Debug for PubSub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PubSub")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// Whether `reply` answers `PING nonce`: `["pong", nonce]` on a connection in RESP2's
/// subscribed mode, `nonce` itself otherwise.
fn is_pong(reply: &Value, nonce: &str) -> bool {
    match reply {
        Value::Array(items) => match items.as_slice() {
            [pong, echo] => {
                pong.as_str()
                    .is_some_and(|p| p.eq_ignore_ascii_case("pong"))
                    && echo.as_str().as_deref() == Some(nonce)
            }
            _ => false,
        },
        other => other.as_str().as_deref() == Some(nonce),
    }
}

/// Answers on the connection may no longer match their requests: starts a new connection (in
/// the background), after which every channel is subscribed again.
fn resynchronize(client: &Client, within: Duration) {
    let client = client.clone();
    tokio::spawn(async move {
        let _ = tokio::time::timeout(within, client.force_reconnection()).await;
    });
}

/// What the listening task hears of.
struct Events {
    /// The messages of the subscribed channels.
    messages: Receiver<Message>,
    /// The Pub/Sub connection's reconnections.
    reconnections: Receiver<Server>,
    /// A command client saw the cluster's topology change (never, off a Cluster).
    topology: mpsc::Receiver<()>,
}

/// Passes a command client's topology `changes` on to the listening task, as one notice at a
/// time at most (one resubscription answers any number of changes).
async fn forward(mut changes: Receiver<Vec<ClusterStateChange>>, moved: mpsc::Sender<()>) {
    loop {
        match changes.recv().await {
            Ok(_) | Err(RecvError::Lagged(_)) => {
                let _ = moved.try_send(());
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// Wakes the waiters of each channel a message arrives on, and subscribes again to every channel
/// after each reconnection and each change of a Cluster's topology (within `response_timeout`
/// for the new view of the cluster), until the subscriptions are gone (or this task is aborted,
/// with the connection).
async fn listen(
    home: Weak<Subscriptions<PubSub>>,
    client: Client,
    events: Events,
    response_timeout: Duration,
) {
    let Events {
        mut messages,
        mut reconnections,
        mut topology,
    } = events;
    let mut retry_at: Option<Instant> = None;
    loop {
        let retry = async {
            match retry_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let resubscribe = tokio::select! {
            message = messages.recv() => {
                let Some(subscriptions) = home.upgrade() else { return };
                match message {
                    Ok(message) => {
                        let payload = message.value.as_str().unwrap_or_default();
                        subscriptions.deliver(&message.channel, &payload);
                    }
                    // Messages were lost: any waiter may have missed its release.
                    Err(RecvError::Lagged(_)) => subscriptions.notify_all(),
                    Err(RecvError::Closed) => return,
                }
                false
            }
            event = reconnections.recv() => match event {
                Ok(_) | Err(RecvError::Lagged(_)) => true,
                Err(RecvError::Closed) => return,
            },
            // A slot may have moved: its node dropped the subscriptions of its shard channels,
            // which fred does not pass on. SSUBSCRIBE goes where this client thinks the slot is,
            // so its view of the cluster is refreshed first.
            Some(()) = topology.recv() => {
                let _ = tokio::time::timeout(response_timeout, client.sync_cluster()).await;
                true
            }
            () = retry => true,
        };
        if resubscribe {
            // fred announces a reconnection before it takes requests on it.
            connected(&client, RESUBSCRIBE_RETRY).await;
            let Some(subscriptions) = home.upgrade() else {
                return;
            };
            // Wakes every waiter, whatever the outcome. Without a connection, the next
            // reconnection brings the next attempt; with one, a timer does.
            retry_at = match subscriptions.resubscribe().await {
                Err(_) if client.state() == ClientState::Connected => {
                    Some(Instant::now() + RESUBSCRIBE_RETRY)
                }
                _ => None,
            };
        }
    }
}

/// Waits until `client` is connected, `within` at most.
async fn connected(client: &Client, within: Duration) {
    /// How often to look again: fred's notice of a connection made just before
    /// `wait_for_connect` listens for it is not repeated.
    const RECHECK: Duration = Duration::from_millis(20);
    let deadline = Instant::now() + within;
    while client.state() != ClientState::Connected && Instant::now() < deadline {
        let until = deadline.min(Instant::now() + RECHECK);
        let _ = tokio::time::timeout_at(until, client.wait_for_connect()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pongs_are_read_strictly() {
        let pong = |items: &[&str]| {
            Value::Array(items.iter().map(|s| Value::String((*s).into())).collect())
        };
        assert!(is_pong(
            &pong(&["pong", "process-lock:3"]),
            "process-lock:3"
        ));
        assert!(is_pong(
            &Value::String("process-lock:3".into()),
            "process-lock:3"
        ));
        assert!(!is_pong(
            &pong(&["pong", "process-lock:2"]),
            "process-lock:3"
        ));
        assert!(!is_pong(&pong(&["pong", ""]), "process-lock:3"));
        assert!(!is_pong(
            &pong(&["subscribe", "process-lock:3", "1"]),
            "process-lock:3"
        ));
        assert!(!is_pong(&Value::String("PONG".into()), "process-lock:3"));
        assert!(!is_pong(&Value::Null, "process-lock:3"));
    }
}
