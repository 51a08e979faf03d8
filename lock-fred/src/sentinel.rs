//! Failovers behind Sentinel heard as they happen: [`SwitchWatch`] subscribes to
//! `+switch-master` on every sentinel, and when one announces a new primary for the service,
//! the backend's clients (and its Pub/Sub connection) connect again, which asks the sentinels
//! for the primary, until they are on the announced server. Without it, a backend learns of a
//! failover only from a request that timed out on the old primary (see `Resync`).

use std::sync::{Arc, Weak};
use std::time::Duration;

use fred::interfaces::{ClientLike, EventInterface, PubsubInterface};
use fred::prelude::{Client, Server, ServerConfig};
use fred::types::Message;
use lock_core::notify::Subscriptions;
use lock_core::redis::{SWITCH_MASTER, SwitchAnnouncements};
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use crate::connect::{ConnectionTask, default_reconnect_policy};
use crate::pubsub::PubSub;

/// How long a client is made to reconnect until it is on the announced primary: the sentinel
/// fred asks may take up the new configuration later than the one that announced it.
const FOLLOW_FOR: Duration = Duration::from_secs(10);
/// The pause between two reconnections that found another server than the announced one.
const FOLLOW_RETRY: Duration = Duration::from_millis(250);

/// Listens to every sentinel of a backend's clients for `+switch-master`, on a client per
/// sentinel that reconnects by itself (and subscribes again); dropping it closes them.
///
/// Each sentinel announces a failover once it has taken up the new configuration, so several
/// announce the same one: only an address other than the last announced is acted on. A
/// sentinel connection that dies silently (no reset) is not noticed; the other sentinels, and
/// the requests that time out on the old primary, still bring the backend to the new one.
pub(crate) struct SwitchWatch {
    /// The sentinels' clients' connection tasks, and the tasks that listen to them.
    _connections: Vec<ConnectionTask>,
    listeners: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for SwitchWatch {
    fn drop(&mut self) {
        for listener in &self.listeners {
            listener.abort();
        }
    }
}

/// What a new primary's announcement changes.
struct Follow {
    /// The backend's clients (those of its pool, or the only one).
    clients: Vec<Client>,
    notify: Weak<Subscriptions<PubSub>>,
    /// How long one reconnection may take.
    within: Duration,
    /// The failovers heard so far.
    heard: SwitchAnnouncements,
}

impl SwitchWatch {
    /// Starts listening to the sentinels of `clients` (behind sentinels; `None` otherwise),
    /// whose waiters are `notify`; none of the sentinels need to answer now.
    pub(crate) fn start(
        clients: &[Client],
        notify: &Arc<Subscriptions<PubSub>>,
        within: Duration,
    ) -> Option<Self> {
        let first = clients.first()?;
        let config = first.client_config();
        let ServerConfig::Sentinel {
            hosts,
            service_name,
            ..
        } = &config.server
        else {
            return None;
        };
        let follow = Arc::new(Follow {
            heard: SwitchAnnouncements::new(service_name.clone()),
            clients: clients.to_vec(),
            notify: Arc::downgrade(notify),
            within,
        });
        let mut watch = SwitchWatch {
            _connections: Vec::new(),
            listeners: Vec::new(),
        };
        for host in hosts {
            // The sentinel as the clients reach it (TLS alike), without the data servers'
            // credentials and database.
            let mut sentinel = config.clone();
            sentinel.server = ServerConfig::Centralized {
                server: host.clone(),
            };
            sentinel.username = None;
            sentinel.password = None;
            sentinel.database = None;
            let client = Client::new(
                sentinel,
                Some(first.perf_config()),
                Some(first.connection_config().clone()),
                Some(default_reconnect_policy()),
            );
            // Listening before connecting, so that the first connection's event is heard.
            let events = (client.message_rx(), client.reconnect_rx());
            let listener = tokio::spawn(listen(client.clone(), events, follow.clone()));
            watch
                ._connections
                .push(ConnectionTask::new(&client, client.connect()));
            watch.listeners.push(listener);
        }
        Some(watch)
    }
}

/// One sentinel's listener: subscribes to `+switch-master` at each (re)connection, and passes
/// each announcement on.
async fn listen(
    sentinel: Client,
    events: (Receiver<Message>, Receiver<Server>),
    follow: Arc<Follow>,
) {
    let (mut messages, mut connections) = events;
    loop {
        tokio::select! {
            message = messages.recv() => match message {
                Ok(message) if *message.channel == *SWITCH_MASTER => {
                    if let Some(payload) = message.value.as_str() {
                        follow.announced(&payload);
                    }
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            },
            connected = connections.recv() => match connected {
                Ok(_) | Err(RecvError::Lagged(_)) => {
                    // Not subscribed (no answer in time): the next reconnection tries again.
                    let subscribing = sentinel.subscribe(SWITCH_MASTER);
                    let _ = tokio::time::timeout(follow.within, subscribing).await;
                }
                Err(RecvError::Closed) => return,
            },
        }
    }
}

impl Follow {
    /// A sentinel announced `payload` on `+switch-master`.
    fn announced(self: &Arc<Self>, payload: &str) {
        let Some((host, port)) = self.heard.new_primary(payload) else {
            return;
        };
        let (follow, host) = (self.clone(), host.to_owned());
        tokio::spawn(async move {
            for client in &follow.clients {
                reconnect_to(client, &host, port, follow.within).await;
            }
            if let Some(notify) = follow.notify.upgrade() {
                if let Some(pubsub) = notify.subscriber().connected().await {
                    // Its listener subscribes again on the new connection, waking every waiter.
                    reconnect_to(&pubsub, &host, port, follow.within).await;
                }
                // Every waiter tries again, on the new primary.
                notify.notify_all();
            }
        });
    }
}

/// Has `client` connect again (which asks the sentinels for the primary) until it is on
/// `host:port`, for [`FOLLOW_FOR`] at most; `within` bounds each reconnection.
async fn reconnect_to(client: &Client, host: &str, port: u16, within: Duration) {
    let until = Instant::now() + FOLLOW_FOR;
    loop {
        let mut connected = client.reconnect_rx();
        let _ = tokio::time::timeout(within, client.force_reconnection()).await;
        if let Ok(Ok(server)) = tokio::time::timeout(within, connected.recv()).await
            && *server.host == *host
            && server.port == port
        {
            return;
        }
        if Instant::now() + FOLLOW_RETRY >= until {
            return;
        }
        tokio::time::sleep(FOLLOW_RETRY).await;
    }
}
