//! Notification of releases, for waiting without polling: [`Watch`], what
//! [`LockBackend::watch`](crate::LockBackend::watch) returns, and [`Subscriptions`], the
//! bookkeeping a backend needs to share one subscription connection among all the waiters of
//! its process.
//!
//! A backend implements [`Subscribe`] for its connection (`SUBSCRIBE` / `UNSUBSCRIBE` on Redis,
//! nothing at all in memory), keeps one [`Subscriptions`], calls [`Subscriptions::notify`] when
//! a release message arrives, and [`Subscriptions::resubscribe`] after its connection came back.
//! Everything else (one server subscription per channel however many wait on it, unsubscribing
//! when the last waiter leaves, waking every waiter after a reconnection in case a message was
//! lost) is written once here.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard, oneshot, watch};

use crate::error::Result;
use crate::queue::parse_grant;
use crate::token::Token;

/// How long a queue subscription (see [`Subscriptions::watch_lingering`]) stays after its last
/// watch is dropped: a process that waits again within this time does not subscribe again.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> lock_core::Result<()> {
/// use lock_core::notify::{InProcess, Subscriptions};
///
/// let subscriptions = Subscriptions::new(InProcess);
/// let watch = subscriptions.watch_lingering("grants".to_owned()).await?;
/// drop(watch);
/// // Still subscribed: a waiter coming back within LINGER does not subscribe again.
/// assert_eq!(subscriptions.watched(), 1);
/// # Ok(()) }
/// ```
pub const LINGER: std::time::Duration = std::time::Duration::from_secs(10);

/// The waiters of this process to whom a lock may be handed, by token: the fence of the
/// hand-off goes to the receiver.
type GrantBook = Arc<Grants>;

/// The waiters of a backend expecting a hand-off, by token, in shards picked by the token's
/// last byte: every `Lock::lock` registers and removes its token, from every task and lock of
/// the process, and one map behind one mutex was the most contended lock of the uncontended
/// path.
#[derive(Default)]
struct Grants([Mutex<HashMap<Token, oneshot::Sender<u64>, ByToken>>; 16]);

/// The hasher of the grant maps: FNV-1a over the token's text, a tenth of the default
/// SipHash's cost on a 32-character token (two hashes per `Lock::lock`). The keys are this
/// process's own waiters' tokens, so there is no one to flood a map with colliding keys.
type ByToken = std::hash::BuildHasherDefault<Fnv1a>;

/// FNV-1a, 64 bits.
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv1a {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl Grants {
    /// The shard of `token`: by the value of its last hex digit (generated tokens spread evenly
    /// over the 16), or its last byte for any other token.
    fn shard(
        &self,
        token: &str,
    ) -> std::sync::MutexGuard<'_, HashMap<Token, oneshot::Sender<u64>, ByToken>> {
        let last = token.as_bytes().last().copied().unwrap_or(0);
        let shard = char::from(last)
            .to_digit(16)
            .map_or(usize::from(last % 16), |d| d as usize);
        self.0[shard].lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Subscribing a backend's notification connection to channels.
///
/// Each call returns once the store has confirmed the subscription (for Redis, once the
/// `SUBSCRIBE` reply arrived), so a waiter that then tries the lock cannot miss a release.
///
/// # Examples
///
/// ```
/// use lock_core::notify::Subscribe;
/// use lock_core::async_trait;
///
/// /// A subscriber that prints what it would send.
/// struct Printing;
///
/// #[async_trait]
/// impl Subscribe for Printing {
///     async fn subscribe(&self, channel: &str) -> lock_core::Result<()> {
///         println!("SUBSCRIBE {channel}");
///         Ok(())
///     }
///
///     async fn unsubscribe(&self, channel: &str) -> lock_core::Result<()> {
///         println!("UNSUBSCRIBE {channel}");
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait Subscribe: Send + Sync + 'static {
    /// Subscribes to `channel`.
    ///
    /// # Errors
    ///
    /// When the store cannot be reached.
    async fn subscribe(&self, channel: &str) -> Result<()>;

    /// Unsubscribes from `channel`.
    ///
    /// # Errors
    ///
    /// When the store cannot be reached; the subscription then stays, unused and harmless.
    async fn unsubscribe(&self, channel: &str) -> Result<()>;
}

/// A subscriber for a store in this process (such as memory): nothing to subscribe to.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> lock_core::Result<()> {
/// use lock_core::notify::{InProcess, Subscriptions};
///
/// let subscriptions = Subscriptions::new(InProcess);
/// let watch = subscriptions.watch("jobs".to_owned()).await?;
/// assert_eq!(subscriptions.channels().await, ["jobs"]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct InProcess;

#[async_trait]
impl Subscribe for InProcess {
    async fn subscribe(&self, _channel: &str) -> Result<()> {
        Ok(())
    }

    async fn unsubscribe(&self, _channel: &str) -> Result<()> {
        Ok(())
    }
}

/// The waiters of one channel in this process.
struct Slot {
    /// Bumped on every notification; each [`Watch`] remembers the last value it saw.
    sent: watch::Sender<u64>,
    /// How many [`Watch`]es are alive.
    watchers: usize,
    /// Turns among this process's waiters, first come first served (see [`Watch::turn`]).
    queue: Arc<AsyncMutex<()>>,
    /// Whether the server subscription stays for [`LINGER`] after the last watch. Such a slot
    /// stays in the map, idle, until its linger task removes it.
    linger: bool,
    /// Since when a lingering slot has had no watch.
    idle_since: Option<tokio::time::Instant>,
    /// Whether a linger task watches this slot (at most one does).
    lingering: bool,
}

/// The subscriptions of one backend: which channels its waiters watch, and which its connection
/// is subscribed to.
///
/// Shared (`Arc`) by the backend and every [`Watch`] it handed out.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> lock_core::Result<()> {
/// use lock_core::notify::{InProcess, Subscriptions};
///
/// let subscriptions = Subscriptions::new(InProcess);
/// let mut watch = subscriptions.watch("jobs".to_owned()).await?;
/// subscriptions.notify("jobs"); // the store told of a release
/// watch.released().await;
/// # Ok(()) }
/// ```
pub struct Subscriptions<S> {
    subscriber: S,
    slots: Mutex<HashMap<String, Slot>>,
    /// How many channels have a slot: lets a release with no waiter anywhere skip the map.
    watched: AtomicUsize,
    /// The channels the store confirmed; changed only while subscribing or unsubscribing, under
    /// this lock, so that an unsubscribe cannot overtake a later subscribe to the same channel.
    server: AsyncMutex<HashSet<String>>,
    /// The channels the store confirmed, readable without waiting for `server`: a watch of one
    /// of them needs no round trip. Changed with `server`; emptied of a channel, under the
    /// `slots` lock, before it is unsubscribed, so that a watch registered meanwhile either
    /// keeps the subscription or subscribes again.
    confirmed: Mutex<HashSet<String>>,
    /// Waiters expecting a hand-off, by token.
    grants: GrantBook,
}

impl<S: Subscribe> Subscriptions<S> {
    /// Bookkeeping for `subscriber`'s connection.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> lock_core::Result<()> {
    /// use lock_core::notify::{InProcess, Subscriptions};
    ///
    /// let subscriptions = Subscriptions::new(InProcess);
    /// assert_eq!(subscriptions.watched(), 0);
    /// # Ok(()) }
    /// ```
    pub fn new(subscriber: S) -> Arc<Self> {
        Arc::new(Subscriptions {
            subscriber,
            slots: Mutex::new(HashMap::new()),
            watched: AtomicUsize::new(0),
            server: AsyncMutex::new(HashSet::new()),
            confirmed: Mutex::new(HashSet::new()),
            grants: GrantBook::default(),
        })
    }

    /// The subscriber given to [`new`](Subscriptions::new).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> lock_core::Result<()> {
    /// use lock_core::notify::{InProcess, Subscriptions};
    ///
    /// let subscriptions = Subscriptions::new(InProcess);
    /// let _: &InProcess = subscriptions.subscriber();
    /// # Ok(()) }
    /// ```
    pub fn subscriber(&self) -> &S {
        &self.subscriber
    }

    /// Starts watching `channel`: registers the waiter, then subscribes the connection unless
    /// it already is. Once this returns, every later [`notify`](Subscriptions::notify) of the
    /// channel wakes the returned [`Watch`].
    ///
    /// # Errors
    ///
    /// When the subscription fails; nothing is left registered then.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future undoes the registration; a subscription the server already made
    /// stays, and is dropped with the channel's last waiter as usual.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> lock_core::Result<()> {
    /// use lock_core::notify::{InProcess, Subscriptions};
    ///
    /// let subscriptions = Subscriptions::new(InProcess);
    /// let watch = subscriptions.watch("jobs".to_owned()).await?;
    /// assert_eq!(subscriptions.watched(), 1);
    /// drop(watch); // unsubscribes in the background
    /// # Ok(()) }
    /// ```
    pub async fn watch(self: &Arc<Self>, channel: String) -> Result<Watch> {
        self.watch_with(channel, false).await
    }

    /// As [`watch`](Subscriptions::watch), for a channel that hand-offs of a lock to this
    /// process's waiters arrive on: the server subscription stays for [`LINGER`] after the last
    /// watch is dropped, so that a process taking the lock again and again subscribes once.
    ///
    /// # Errors
    ///
    /// As [`watch`](Subscriptions::watch).
    ///
    /// # Cancel safety
    ///
    /// As [`watch`](Subscriptions::watch).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> lock_core::Result<()> {
    /// use lock_core::notify::{InProcess, Subscriptions};
    ///
    /// let subscriptions = Subscriptions::new(InProcess);
    /// let watch = subscriptions.watch_lingering("grants".to_owned()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn watch_lingering(self: &Arc<Self>, channel: String) -> Result<Watch> {
        self.watch_with(channel, true).await
    }

    async fn watch_with(self: &Arc<Self>, channel: String, linger: bool) -> Result<Watch> {
        let (seen, queue, confirmed) = {
            let mut slots = self.lock_slots();
            let slot = slots.entry(channel.clone()).or_insert_with(|| {
                self.watched.fetch_add(1, Ordering::SeqCst);
                Slot {
                    sent: watch::Sender::new(0),
                    watchers: 0,
                    queue: Arc::new(AsyncMutex::new(())),
                    linger,
                    idle_since: None,
                    lingering: false,
                }
            });
            slot.linger |= linger;
            slot.watchers += 1;
            slot.idle_since = None;
            let confirmed = self.lock_confirmed().contains(&channel);
            (slot.sent.subscribe(), slot.queue.clone(), confirmed)
        };
        // From here on, dropping the registration (on error or cancellation) undoes it.
        let registration = Registration {
            subscriptions: self.clone(),
            channel,
        };
        if !confirmed {
            let mut server = self.server.lock().await;
            if !server.contains(&registration.channel) {
                self.subscriber.subscribe(&registration.channel).await?;
                server.insert(registration.channel.clone());
                self.lock_confirmed().insert(registration.channel.clone());
            }
        }
        Ok(Watch {
            seen,
            queue,
            grants: self.grants.clone(),
            _registration: Arc::new(registration),
        })
    }

    /// Handles a message received on `channel`: a hand-off (`g <token> <fence>`, see
    /// [`queue`](crate::queue)) goes to the waiter expecting it, anything else wakes the
    /// channel's watches as [`notify`](Subscriptions::notify) does. A hand-off no waiter
    /// expects any more is dropped: the waiter gave up, and leaving the queue released it
    /// (see [`LockBackend::leave_queue`](crate::LockBackend::leave_queue)).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> lock_core::Result<()> {
    /// use lock_core::notify::{InProcess, Subscriptions};
    ///
    /// let subscriptions = Subscriptions::new(InProcess);
    /// use lock_core::Token;
    /// use lock_core::queue::grant_message;
    ///
    /// let watch = subscriptions.watch_lingering("grants".to_owned()).await?;
    /// let token = Token::generate()?;
    /// let mut grant = watch.expect_grant(&token);
    /// subscriptions.deliver("grants", &grant_message(&token, 7));
    /// assert_eq!(grant.granted().await, 7);
    /// # Ok(()) }
    /// ```
    pub fn deliver(&self, channel: &str, message: &str) {
        let Some((token, fence)) = parse_grant(message) else {
            return self.notify(channel);
        };
        let waiter = self.grants.shard(token).remove(token);
        if let Some(waiter) = waiter {
            let _ = waiter.send(fence);
        }
    }

    /// Wakes every [`Watch`] of `channel`: a release happened.
    ///
    /// Costs one atomic load when nothing is watched. A watch registered before the caller's
    /// release (in the store's order, such as under the same lock) is always seen.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> lock_core::Result<()> {
    /// use lock_core::notify::{InProcess, Subscriptions};
    ///
    /// let subscriptions = Subscriptions::new(InProcess);
    /// let mut watch = subscriptions.watch("jobs".to_owned()).await?;
    /// subscriptions.notify("jobs");
    /// watch.released().await;
    /// # Ok(()) }
    /// ```
    pub fn notify(&self, channel: &str) {
        if self.watched.load(Ordering::SeqCst) == 0 {
            return;
        }
        if let Some(slot) = self.lock_slots().get(channel) {
            slot.sent.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Wakes every [`Watch`] of every channel: a release may have happened unseen (the
    /// connection broke). Waiters look at the lock again and go back to waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> lock_core::Result<()> {
    /// use lock_core::notify::{InProcess, Subscriptions};
    ///
    /// let subscriptions = Subscriptions::new(InProcess);
    /// let mut watch = subscriptions.watch("jobs".to_owned()).await?;
    /// subscriptions.notify_all(); // the connection broke: anything may have happened
    /// watch.released().await;
    /// # Ok(()) }
    /// ```
    pub fn notify_all(&self) {
        for slot in self.lock_slots().values() {
            slot.sent.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// The channels the connection is subscribed to.
    ///
    /// # Cancel safety
    ///
    /// Safe: it only reads.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> lock_core::Result<()> {
    /// use lock_core::notify::{InProcess, Subscriptions};
    ///
    /// let subscriptions = Subscriptions::new(InProcess);
    /// let _watch = subscriptions.watch("jobs".to_owned()).await?;
    /// assert_eq!(subscriptions.channels().await, ["jobs"]);
    /// # Ok(()) }
    /// ```
    pub async fn channels(&self) -> Vec<String> {
        self.server.lock().await.iter().cloned().collect()
    }

    /// Subscribes again to every channel, on a new connection, then wakes every waiter (a
    /// release may have happened while the connection was down).
    ///
    /// # Errors
    ///
    /// When a subscription fails: the connection is down again, and the caller will call this
    /// once more after reconnecting. Waiters are woken all the same.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may leave some channels not yet subscribed again, and the waiters
    /// not woken; call it again (as after any failure) to finish.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> lock_core::Result<()> {
    /// use lock_core::notify::{InProcess, Subscriptions};
    ///
    /// let subscriptions = Subscriptions::new(InProcess);
    /// let mut watch = subscriptions.watch("jobs".to_owned()).await?;
    /// // After reconnecting: subscribe again, and wake every waiter.
    /// subscriptions.resubscribe().await?;
    /// watch.released().await;
    /// # Ok(()) }
    /// ```
    pub async fn resubscribe(&self) -> Result<()> {
        let outcome = async {
            let server = self.server.lock().await;
            for channel in server.iter() {
                self.subscriber.subscribe(channel).await?;
            }
            Ok(())
        }
        .await;
        self.notify_all();
        outcome
    }

    /// How many channels have waiters in this process, or keep a lingering subscription (see
    /// [`watch_lingering`](Subscriptions::watch_lingering)).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> lock_core::Result<()> {
    /// use lock_core::notify::{InProcess, Subscriptions};
    ///
    /// let subscriptions = Subscriptions::new(InProcess);
    /// let _a = subscriptions.watch("a".to_owned()).await?;
    /// let _b = subscriptions.watch("b".to_owned()).await?;
    /// assert_eq!(subscriptions.watched(), 2);
    /// # Ok(()) }
    /// ```
    pub fn watched(&self) -> usize {
        self.watched.load(Ordering::SeqCst)
    }

    fn lock_confirmed(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.confirmed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        // The map is consistent after every statement: a panic elsewhere cannot break it.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps the idle lingering slot of `channel` until it has been idle for [`LINGER`], then
    /// removes it and unsubscribes; stops early if a watch came back (the next one to leave
    /// starts this again).
    async fn linger(&self, channel: &str) {
        loop {
            let left = {
                let mut slots = self.lock_slots();
                let Some(slot) = slots.get_mut(channel) else {
                    return;
                };
                match slot.idle_since {
                    Some(since) if slot.watchers == 0 => LINGER
                        .checked_sub(since.elapsed())
                        .filter(|left| !left.is_zero()),
                    _ => {
                        slot.lingering = false;
                        return;
                    }
                }
                .or_else(|| {
                    slots.remove(channel);
                    self.watched.fetch_sub(1, Ordering::SeqCst);
                    None
                })
            };
            match left {
                Some(left) => tokio::time::sleep(left).await,
                None => return self.unsubscribe_if_unwatched(channel).await,
            }
        }
    }

    /// Unsubscribes from `channel` if no waiter came back to it meanwhile.
    async fn unsubscribe_if_unwatched(&self, channel: &str) {
        let mut server = self.server.lock().await;
        {
            let slots = self.lock_slots();
            if slots.contains_key(channel) {
                return;
            }
            self.lock_confirmed().remove(channel);
        }
        if !server.remove(channel) {
            return;
        }
        if self.subscriber.unsubscribe(channel).await.is_err() {
            // Still subscribed, as far as anyone can tell: messages for it find no slot.
            server.insert(channel.to_owned());
            self.lock_confirmed().insert(channel.to_owned());
        }
    }
}

impl<S> fmt::Debug for Subscriptions<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let watched = self
            .slots
            .lock()
            .map(|slots| slots.len())
            .unwrap_or_default();
        f.debug_struct("Subscriptions")
            .field("watched", &watched)
            .finish_non_exhaustive()
    }
}

/// One [`Watch`]'s place among its channel's waiters; dropping it leaves.
struct Registration<S: Subscribe> {
    subscriptions: Arc<Subscriptions<S>>,
    channel: String,
}

impl<S: Subscribe> Drop for Registration<S> {
    fn drop(&mut self) {
        enum Then {
            Nothing,
            Unsubscribe,
            Linger,
        }
        let then = {
            let mut slots = self.subscriptions.lock_slots();
            match slots.get_mut(&self.channel) {
                Some(slot) if slot.watchers > 1 => {
                    slot.watchers -= 1;
                    Then::Nothing
                }
                // The last watch of a lingering slot: the slot stays, idle, and one task (per
                // slot, not per watch) removes it once it has been idle for LINGER.
                Some(slot) if slot.linger => {
                    slot.watchers = 0;
                    slot.idle_since = Some(tokio::time::Instant::now());
                    if slot.lingering {
                        Then::Nothing
                    } else {
                        slot.lingering = true;
                        Then::Linger
                    }
                }
                Some(_) => {
                    slots.remove(&self.channel);
                    self.subscriptions.watched.fetch_sub(1, Ordering::SeqCst);
                    Then::Unsubscribe
                }
                None => Then::Nothing,
            }
        };
        if matches!(then, Then::Nothing) {
            return;
        }
        // Unsubscribing takes a round trip: in the background, if there is a runtime to run it.
        // Without one the subscription stays, unused, until the connection closes.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            if matches!(then, Then::Linger)
                && let Some(slot) = self.subscriptions.lock_slots().get_mut(&self.channel)
            {
                slot.lingering = false;
            }
            return;
        };
        let subscriptions = self.subscriptions.clone();
        let channel = std::mem::take(&mut self.channel);
        runtime.spawn(async move {
            match then {
                Then::Linger => subscriptions.linger(&channel).await,
                _ => subscriptions.unsubscribe_if_unwatched(&channel).await,
            }
        });
    }
}

/// A waiter's subscription to the releases of one lock: [`released`](Watch::released) returns
/// when a release may have happened since the watch began or since it last returned.
///
/// Wake-ups can be spurious (after a reconnection every waiter is woken, in case a message was
/// lost): a waiter always looks at the lock again. Dropping the watch leaves; the backend
/// unsubscribes in the background once no waiter of the process watches that lock.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> lock_core::Result<()> {
/// use lock_core::notify::{InProcess, Subscriptions};
///
/// let subscriptions = Subscriptions::new(InProcess);
/// let mut watch = subscriptions.watch("jobs".to_owned()).await?;
/// let also = watch.clone(); // a second watch of the same channel, from now on
/// subscriptions.notify("jobs");
/// watch.released().await;
/// # Ok(()) }
/// ```
pub struct Watch {
    seen: watch::Receiver<u64>,
    queue: Arc<AsyncMutex<()>>,
    grants: GrantBook,
    _registration: Arc<dyn Send + Sync>,
}

/// A clone is a second watch on the same channel, from the moment it is made: a release
/// before that is not reported to it. The channel is watched until the last clone is dropped.
impl Clone for Watch {
    fn clone(&self) -> Self {
        let mut seen = self.seen.clone();
        seen.mark_unchanged();
        Watch {
            seen,
            queue: self.queue.clone(),
            grants: self.grants.clone(),
            _registration: self._registration.clone(),
        }
    }
}

impl Watch {
    /// Waits for the next release (or possible release) of the lock.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a release that happens while no one awaits is reported by the next call.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> lock_core::Result<()> {
    /// use lock_core::notify::{InProcess, Subscriptions};
    ///
    /// let subscriptions = Subscriptions::new(InProcess);
    /// let mut watch = subscriptions.watch("jobs".to_owned()).await?;
    /// subscriptions.notify("jobs");
    /// watch.released().await;
    /// # Ok(()) }
    /// ```
    pub async fn released(&mut self) {
        // An error means the backend is gone: nothing more will come, so wake up and let the
        // waiter find out by trying the lock.
        let _ = self.seen.changed().await;
    }

    /// Waits for this waiter's turn among the waiters of the same lock in this process, first
    /// come first served; the turn lasts as long as the returned guard.
    ///
    /// A waiter that takes turns tries the lock only when the waiters before it are done, so a
    /// task that releases and at once asks again queues behind those already waiting, instead
    /// of taking the lock back before they wake up. Waiters in other processes compete on the
    /// store, woken by its notifications.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future gives up the place in the queue.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> lock_core::Result<()> {
    /// use lock_core::notify::{InProcess, Subscriptions};
    ///
    /// let subscriptions = Subscriptions::new(InProcess);
    /// let watch = subscriptions.watch("jobs".to_owned()).await?;
    /// let turn = watch.turn().await;
    /// // ... try the lock; the next waiter of this process tries once `turn` is dropped ...
    /// drop(turn);
    /// # Ok(()) }
    /// ```
    pub async fn turn(&self) -> Turn {
        Turn(self.queue.clone().lock_owned().await)
    }

    /// Expects a hand-off of the lock to `token` (a waiter in the backend's
    /// [queue](crate::queue)): the returned [`Grant`] resolves to the hand-off's fencing token
    /// when the backend delivers it. Dropping the `Grant` stops expecting it.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> lock_core::Result<()> {
    /// use lock_core::notify::{InProcess, Subscriptions};
    ///
    /// let subscriptions = Subscriptions::new(InProcess);
    /// use lock_core::Token;
    /// use lock_core::queue::grant_message;
    ///
    /// let watch = subscriptions.watch_lingering("grants".to_owned()).await?;
    /// let token = Token::generate()?;
    /// let mut grant = watch.expect_grant(&token);
    /// subscriptions.deliver("grants", &grant_message(&token, 42));
    /// assert_eq!(grant.granted().await, 42);
    /// # Ok(()) }
    /// ```
    pub fn expect_grant(&self, token: &Token) -> Grant {
        let (tx, rx) = oneshot::channel();
        self.grants.shard(token.as_str()).insert(token.clone(), tx);
        Grant {
            rx,
            token: token.clone(),
            book: self.grants.clone(),
        }
    }
}

/// A hand-off a waiter expects (see [`Watch::expect_grant`]).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> lock_core::Result<()> {
/// use lock_core::notify::{InProcess, Subscriptions};
///
/// let subscriptions = Subscriptions::new(InProcess);
/// use lock_core::Token;
///
/// let watch = subscriptions.watch_lingering("grants".to_owned()).await?;
/// let mut grant = watch.expect_grant(&Token::generate()?);
/// tokio::select! {
///     fence = grant.granted() => println!("handed the lock, fencing token {fence}"),
///     () = tokio::time::sleep(std::time::Duration::from_millis(10)) => println!("not yet"),
/// }
/// # Ok(()) }
/// ```
pub struct Grant {
    rx: oneshot::Receiver<u64>,
    token: Token,
    book: GrantBook,
}

impl Grant {
    /// Waits for the hand-off and returns its fencing token; waits forever if the backend is
    /// gone.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a hand-off that arrives while no one awaits is returned by the next call.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> lock_core::Result<()> {
    /// use lock_core::notify::{InProcess, Subscriptions};
    ///
    /// let subscriptions = Subscriptions::new(InProcess);
    /// use lock_core::Token;
    /// use lock_core::queue::grant_message;
    ///
    /// let watch = subscriptions.watch_lingering("grants".to_owned()).await?;
    /// let token = Token::generate()?;
    /// let mut grant = watch.expect_grant(&token);
    /// subscriptions.deliver("grants", &grant_message(&token, 3));
    /// assert_eq!(grant.granted().await, 3);
    /// # Ok(()) }
    /// ```
    pub async fn granted(&mut self) -> u64 {
        match (&mut self.rx).await {
            Ok(fence) => fence,
            Err(_) => std::future::pending().await,
        }
    }
}

impl Drop for Grant {
    fn drop(&mut self) {
        self.book
            .shard(self.token.as_str())
            .remove(self.token.as_str());
    }
}

impl fmt::Debug for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grant").finish_non_exhaustive()
    }
}

/// Stops the tasks of a [`Watch::any`] when its last clone is dropped.
struct Forwarders(Vec<tokio::task::AbortHandle>);

impl Drop for Forwarders {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

impl Watch {
    /// One watch woken by a release on any of `watches`: what a waiter on several stores (a
    /// [`Quorum`](crate::quorum::Quorum)) sleeps on. Taking turns ([`turn`](Watch::turn))
    /// goes by the first of them, so waiters of one lock in one process still take turns.
    /// Dropping the last clone of the result drops them all. `None` for no watch.
    ///
    /// Needs a tokio runtime: a task per watch passes its wake-ups on.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> lock_core::Result<()> {
    /// use lock_core::notify::{InProcess, Subscriptions, Watch};
    ///
    /// let (a, b) = (Subscriptions::new(InProcess), Subscriptions::new(InProcess));
    /// let watches = vec![a.watch("jobs".to_owned()).await?, b.watch("jobs".to_owned()).await?];
    /// let mut any = Watch::any(watches).expect("two watches");
    /// b.notify("jobs");
    /// any.released().await;
    /// # Ok(()) }
    /// ```
    pub fn any(watches: Vec<Watch>) -> Option<Watch> {
        let first = watches.first()?;
        let (queue, grants) = (first.queue.clone(), first.grants.clone());
        let (tx, seen) = watch::channel(0_u64);
        let tx = Arc::new(tx);
        let tasks = watches
            .into_iter()
            .map(|inner| {
                let tx = tx.clone();
                tokio::spawn(async move {
                    // The whole watch, not only its receiver: its registration keeps the
                    // subscription.
                    let mut inner = inner;
                    loop {
                        tokio::select! {
                            changed = inner.seen.changed() => {
                                // Its backend is gone: wake the waiter once, then stop.
                                tx.send_modify(|n| *n = n.wrapping_add(1));
                                if changed.is_err() {
                                    return;
                                }
                            }
                            () = tx.closed() => return,
                        }
                    }
                })
                .abort_handle()
            })
            .collect();
        Some(Watch {
            seen,
            queue,
            grants,
            _registration: Arc::new(Forwarders(tasks)),
        })
    }
}

impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch").finish_non_exhaustive()
    }
}

/// A waiter's turn (see [`Watch::turn`]); the next waiter's turn begins when this is dropped.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> lock_core::Result<()> {
/// use lock_core::notify::{InProcess, Subscriptions};
///
/// let subscriptions = Subscriptions::new(InProcess);
/// let watch = subscriptions.watch("jobs".to_owned()).await?;
/// {
///     let _turn = watch.turn().await;
///     // this waiter's turn among the process's waiters of "jobs"
/// }
/// # Ok(()) }
/// ```
#[must_use = "the turn ends when this is dropped"]
pub struct Turn(#[allow(dead_code)] OwnedMutexGuard<()>);

impl fmt::Debug for Turn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Turn").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[derive(Default)]
    struct Counting {
        subscribes: AtomicUsize,
        unsubscribes: AtomicUsize,
    }

    #[async_trait]
    impl Subscribe for Arc<Counting> {
        async fn subscribe(&self, _channel: &str) -> Result<()> {
            self.subscribes.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }

        async fn unsubscribe(&self, _channel: &str) -> Result<()> {
            self.unsubscribes.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    #[tokio::test]
    async fn one_subscription_per_channel_and_unsubscribed_after_the_last_watch() {
        let counts = Arc::new(Counting::default());
        let subs = Subscriptions::new(counts.clone());
        let a = subs.watch("c".into()).await.unwrap();
        let b = subs.watch("c".into()).await.unwrap();
        assert_eq!(counts.subscribes.load(Ordering::SeqCst), 1);
        drop(a);
        tokio::task::yield_now().await;
        assert_eq!(counts.unsubscribes.load(Ordering::SeqCst), 0);
        drop(b);
        for _ in 0..100 {
            if counts.unsubscribes.load(Ordering::SeqCst) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(counts.unsubscribes.load(Ordering::SeqCst), 1);
        assert_eq!(subs.watched(), 0);
        assert!(subs.channels().await.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_lingering_subscription_outlives_its_watches_by_linger_with_one_task() {
        let counts = Arc::new(Counting::default());
        let subs = Subscriptions::new(counts.clone());
        for _ in 0..1000 {
            drop(subs.watch_lingering("c".into()).await.unwrap());
        }
        assert_eq!(
            counts.subscribes.load(Ordering::SeqCst),
            1,
            "subscribed once"
        );
        assert_eq!(
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks(),
            1
        );
        tokio::time::sleep(LINGER / 2).await;
        let kept = subs.watch_lingering("c".into()).await.unwrap();
        tokio::time::sleep(LINGER * 2).await;
        assert_eq!(
            counts.unsubscribes.load(Ordering::SeqCst),
            0,
            "watched again"
        );
        drop(kept);
        tokio::time::sleep(LINGER - Duration::from_millis(10)).await;
        assert_eq!(
            counts.unsubscribes.load(Ordering::SeqCst),
            0,
            "not idle for LINGER yet"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            counts.unsubscribes.load(Ordering::SeqCst),
            1,
            "unsubscribed once idle"
        );
        assert_eq!(subs.watched(), 0);
        assert!(subs.channels().await.is_empty());
    }

    #[tokio::test]
    async fn a_notification_wakes_every_watch_of_its_channel_only() {
        let subs = Subscriptions::new(InProcess);
        let mut a = subs.watch("c".into()).await.unwrap();
        let mut b = subs.watch("c".into()).await.unwrap();
        let mut other = subs.watch("d".into()).await.unwrap();
        subs.notify("c");
        a.released().await;
        b.released().await;
        let quiet = tokio::time::timeout(Duration::from_millis(20), other.released()).await;
        assert!(quiet.is_err(), "another channel's watch was woken");
        subs.notify_all();
        other.released().await;
    }

    #[tokio::test]
    async fn a_notification_before_anyone_awaits_is_not_lost() {
        let subs = Subscriptions::new(InProcess);
        let mut a = subs.watch("c".into()).await.unwrap();
        subs.notify("c");
        tokio::time::timeout(Duration::from_secs(1), a.released())
            .await
            .expect("the earlier notification");
    }

    #[tokio::test]
    async fn turns_are_first_come_first_served() {
        let subs = Subscriptions::new(InProcess);
        let a = subs.watch("c".into()).await.unwrap();
        let b = subs.watch("c".into()).await.unwrap();
        let first = a.turn().await;
        let mut second = Box::pin(b.turn());
        assert!(
            futures_poll_once(&mut second).await.is_none(),
            "two turns at once"
        );
        drop(first);
        let _second = second.await;
    }

    async fn futures_poll_once<F: std::future::Future + Unpin>(f: &mut F) -> Option<F::Output> {
        tokio::time::timeout(Duration::from_millis(20), f)
            .await
            .ok()
    }
}
