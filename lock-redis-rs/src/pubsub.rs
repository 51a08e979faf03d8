//! Notification of releases: one Pub/Sub connection per backend, opened on the first watch,
//! shared by every clone and every waiter, and reconnected in the background.
//!
//! [`PubSubLink`] is the backend's [`Subscribe`]r; `lock_core::notify::Subscriptions` does the
//! bookkeeping (one subscription per channel, waking waiters). A reader task owns the
//! connection's message stream: it wakes the waiters of each release message, and when the
//! connection breaks it makes a new one, with backoff, and has every channel subscribed again
//! (which also wakes every waiter, in case a release went unseen meanwhile).
//!
//! The task holds the subscriptions only weakly, and the link aborts it when dropped, so the
//! connection closes once the last clone of the backend and the last waiter are gone.
//!
//! Nothing but `SUBSCRIBE` and `UNSUBSCRIBE` is ever sent on the connection (no `PING`), so a
//! waiter costs the server nothing while it waits. The price: a connection that dies silently
//! (a partition, with no reset) is noticed only when a subscription goes unanswered for the
//! response timeout; meanwhile waiters still wake at their holder's expiry.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use lock_core::notify::{Subscribe, Subscriptions};
use lock_core::{Error, ErrorKind, Result, async_trait};
use redis::aio::{PubSubSink, PubSubStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::error::from_redis;

/// The waiters of one backend and its clones.
pub(crate) type Waiters = Subscriptions<PubSubLink>;

/// The first pause between reconnection attempts, doubled after each failure.
const FIRST_RETRY: Duration = Duration::from_millis(50);
/// The longest pause between reconnection attempts.
const MAX_RETRY: Duration = Duration::from_secs(1);

/// The backend's Pub/Sub connection, as `Subscriptions` sees it.
pub(crate) struct PubSubLink {
    client: ClientSource,
    /// The server's URL without its password, for messages.
    target: Arc<str>,
    connect_timeout: Duration,
    response_timeout: Duration,
    /// The subscriptions this link serves, for the reader task; set right after they are made.
    waiters: OnceLock<Weak<Waiters>>,
    state: Mutex<Link>,
    /// Held while the first connection is made, so that concurrent first watches make one.
    connecting: tokio::sync::Mutex<()>,
    /// The reader task, once the first connection is made; aborted when the link drops.
    reader: Mutex<Option<JoinHandle<()>>>,
    /// Counts [`reconnect`](Self::reconnect) calls, so that a connection opened while one came
    /// (to the old primary, maybe) is made again.
    moved: AtomicU64,
}

/// Where the connection stands.
enum Link {
    /// No watch yet: nothing opened.
    Idle,
    /// Connected.
    Up(Connection),
    /// Broken: the reader task is making a new one.
    Down,
}

/// A live connection: the sink requests go through, and how to tell the reader task that it
/// stopped answering.
#[derive(Clone)]
struct Connection {
    sink: PubSubSink,
    unresponsive: Arc<Notify>,
}

impl PubSubLink {
    /// The waiters of a backend on `client`, whose Pub/Sub connection is opened on the first
    /// watch.
    pub(crate) fn waiters(
        client: ClientSource,
        target: Arc<str>,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Arc<Waiters> {
        let waiters = Subscriptions::new(PubSubLink {
            client,
            target,
            connect_timeout,
            response_timeout,
            waiters: OnceLock::new(),
            state: Mutex::new(Link::Idle),
            connecting: tokio::sync::Mutex::new(()),
            reader: Mutex::new(None),
            moved: AtomicU64::new(0),
        });
        let _ = waiters.subscriber().waiters.set(Arc::downgrade(&waiters));
        waiters
    }

    fn state(&self) -> MutexGuard<'_, Link> {
        // Every update is one assignment: a panic elsewhere cannot leave it half-done.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The live connection, opening the first one if no watch came before; a Connection error
    /// while the reader task is reconnecting.
    async fn connection(&self) -> Result<Connection> {
        if let Some(found) = self.current()? {
            return Ok(found);
        }
        let _connecting = self.connecting.lock().await;
        if let Some(found) = self.current()? {
            return Ok(found);
        }
        let moved = self.moved.load(Ordering::SeqCst);
        let (sink, stream) = open(&self.client, &self.target, self.connect_timeout).await?;
        let connection = Connection {
            sink,
            unresponsive: Arc::new(Notify::new()),
        };
        // Up before the reader starts, so that a break it sees at once is not overwritten.
        *self.state() = Link::Up(connection.clone());
        self.again_if_moved(moved, &connection);
        let waiters = self.waiters.get().cloned().unwrap_or_default();
        let reader = tokio::spawn(read(
            waiters,
            stream,
            connection.unresponsive.clone(),
            self.client.clone(),
            self.target.clone(),
            self.connect_timeout,
        ));
        *self.reader.lock().unwrap_or_else(PoisonError::into_inner) = Some(reader);
        Ok(connection)
    }

    /// Behind sentinels, a new primary was announced: the connection is made again (to it)
    /// and subscribed again to every channel, which wakes every waiter.
    pub(crate) fn reconnect(&self) {
        let state = self.state();
        self.moved.fetch_add(1, Ordering::SeqCst);
        if let Link::Up(connection) = &*state {
            connection.unresponsive.notify_one();
        }
    }

    /// Has the reader make `connection` again if [`reconnect`](Self::reconnect) was called
    /// since `moved` was read, before it was up: it may be to the old primary.
    fn again_if_moved(&self, moved: u64, connection: &Connection) {
        if self.moved.load(Ordering::SeqCst) != moved {
            // A permit the reader takes at once, even if it is not listening yet.
            connection.unresponsive.notify_one();
        }
    }

    /// The live connection if there is one, `None` if none was opened yet.
    fn current(&self) -> Result<Option<Connection>> {
        match &*self.state() {
            Link::Up(connection) => Ok(Some(connection.clone())),
            Link::Idle => Ok(None),
            Link::Down => Err(Error::new(
                ErrorKind::Connection,
                format!(
                    "subscribing on {}: the Pub/Sub connection is down, reconnecting",
                    self.target
                ),
            )),
        }
    }

    /// Runs a `SUBSCRIBE` or `UNSUBSCRIBE` within the response timeout; past it the connection
    /// is deemed dead and the reader task makes a new one.
    async fn request(
        &self,
        op: &'static str,
        connection: &Connection,
        request: impl Future<Output = redis::RedisResult<()>>,
    ) -> Result<()> {
        match tokio::time::timeout(self.response_timeout, request).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(from_redis(e, op, &self.target)),
            Err(_) => {
                connection.unresponsive.notify_one();
                Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "{op} on {}: no answer within {:?}",
                        self.target, self.response_timeout
                    ),
                ))
            }
        }
    }
}

#[async_trait]
impl Subscribe for PubSubLink {
    async fn subscribe(&self, channel: &str) -> Result<()> {
        let connection = self.connection().await?;
        let mut sink = connection.sink.clone();
        self.request("subscribing", &connection, sink.subscribe(channel))
            .await
    }

    async fn unsubscribe(&self, channel: &str) -> Result<()> {
        let connection = match &*self.state() {
            Link::Up(connection) => connection.clone(),
            // Never connected, or the connection is gone and the subscription with it: the
            // next connection subscribes only to the channels still watched.
            Link::Idle | Link::Down => return Ok(()),
        };
        let mut sink = connection.sink.clone();
        match self
            .request("unsubscribing", &connection, sink.unsubscribe(channel))
            .await
        {
            // The connection closed: the subscription went with it.
            Err(e) if e.kind() == ErrorKind::Connection => Ok(()),
            outcome => outcome,
        }
    }
}

impl Drop for PubSubLink {
    fn drop(&mut self) {
        // The last waiter and the last clone of the backend are gone: close the connection.
        if let Some(reader) = self
            .reader
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            reader.abort();
        }
    }
}

/// Opens a Pub/Sub connection within `timeout`.
/// Where the Pub/Sub connection connects: one server, or the primary the sentinels name at
/// each (re)connection.
#[derive(Clone)]
pub(crate) enum ClientSource {
    Fixed(Box<redis::Client>),
    Sentinel(Arc<crate::sentinel::Resolver>),
}

impl ClientSource {
    async fn client(&self) -> redis::RedisResult<redis::Client> {
        match self {
            ClientSource::Fixed(client) => Ok((**client).clone()),
            ClientSource::Sentinel(resolver) => resolver.primary().await,
        }
    }
}

async fn open(
    client: &ClientSource,
    target: &str,
    timeout: Duration,
) -> Result<(PubSubSink, PubSubStream)> {
    let opening = async { client.client().await?.get_async_pubsub().await };
    match tokio::time::timeout(timeout, opening).await {
        Ok(Ok(pubsub)) => Ok(pubsub.split()),
        Ok(Err(e)) => Err(from_redis(e, "opening the Pub/Sub connection", target)),
        Err(_) => Err(Error::new(
            ErrorKind::Timeout,
            format!("opening the Pub/Sub connection to {target}: no connection within {timeout:?}"),
        )),
    }
}

/// The reader task: wakes the waiters of each release message; when the connection breaks (or
/// stops answering), makes a new one and subscribes it again; ends once the waiters are gone.
async fn read(
    waiters: Weak<Waiters>,
    mut stream: PubSubStream,
    mut unresponsive: Arc<Notify>,
    client: ClientSource,
    target: Arc<str>,
    connect_timeout: Duration,
) {
    loop {
        loop {
            tokio::select! {
                message = stream.next() => {
                    let Some(message) = message else { break };
                    let Some(waiters) = waiters.upgrade() else { return };
                    let payload: String = message.get_payload().unwrap_or_default();
                    waiters.deliver(message.get_channel_name(), &payload);
                }
                () = unresponsive.notified() => break,
            }
        }
        // Dropping the stream closes the connection, if it was still open.
        drop(stream);
        let Some(live) = waiters.upgrade() else {
            return;
        };
        *live.subscriber().state() = Link::Down;
        drop(live);
        (stream, unresponsive) = match reconnect(&waiters, &client, &target, connect_timeout).await
        {
            Some(connection) => connection,
            None => return,
        };
    }
}

/// Makes a new connection, with backoff, and subscribes it to every watched channel (waking
/// every waiter); `None` once the waiters are gone.
async fn reconnect(
    waiters: &Weak<Waiters>,
    client: &ClientSource,
    target: &str,
    connect_timeout: Duration,
) -> Option<(PubSubStream, Arc<Notify>)> {
    let mut retry = FIRST_RETRY;
    loop {
        let moved = waiters.upgrade()?.subscriber().moved.load(Ordering::SeqCst);
        if let Ok((sink, stream)) = open(client, target, connect_timeout).await {
            let unresponsive = Arc::new(Notify::new());
            let live = waiters.upgrade()?;
            let connection = Connection {
                sink,
                unresponsive: unresponsive.clone(),
            };
            *live.subscriber().state() = Link::Up(connection.clone());
            if live.resubscribe().await.is_ok() {
                live.subscriber().again_if_moved(moved, &connection);
                return Some((stream, unresponsive));
            }
            // Broken again already: start over.
            *live.subscriber().state() = Link::Down;
        }
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(MAX_RETRY);
    }
}
