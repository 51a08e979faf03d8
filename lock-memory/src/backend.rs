//! [`MemoryBackend`]: the `LockBackend` implementation over a map in this process.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use lock_core::notify::{InProcess, Subscriptions};
use lock_core::queue::{Leave, QueueStep, Waiter, grant_message};
use lock_core::redis::scripts::{EVICT_CAP, FENCE_RETENTION};
use lock_core::{
    Acquire, Capabilities, FencedAcquire, ForceRelease, LockBackend, LockName, Release, Result,
    Status, Token, Ttl, Watch, async_trait,
};

use crate::clock::{Clock, TokioClock};

/// Locks held in this process's memory, with Redis's semantics.
///
/// Cheap to clone: clones share the same locks. Safe to use from any task or thread. Time comes
/// from a [`Clock`]: [`TokioClock`] by default (so `tokio::time::pause` and `advance` drive
/// expiry), or any other through [`with_clock`](MemoryBackend::with_clock).
///
/// Like Redis, a lock is alive up to and including the instant of its expiry and gone after it,
/// and expired entries are removed when touched and by a periodic sweep, so memory stays bounded
/// by the locks that are alive.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use lock_core::ProcessLock;
/// use lock_memory::MemoryBackend;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> lock_core::Result<()> {
/// let backend = Arc::new(MemoryBackend::new());
/// let a = ProcessLock::new(backend.clone(), "jobs", Duration::from_secs(30))?;
/// let b = ProcessLock::new(backend, "jobs", Duration::from_secs(30))?;
/// assert!(a.lock().await?);
/// assert!(!b.lock().await?);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct MemoryBackend {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    clock: Box<dyn Clock>,
    state: Mutex<State>,
    /// The waiters of this backend's locks, woken by every release.
    waiters: Arc<Subscriptions<InProcess>>,
}

#[derive(Debug, Default)]
struct State {
    locks: HashMap<LockName, Entry>,
    /// Sweep expired entries once the map grows to this size (amortised O(1) per insert).
    sweep_at: usize,
    /// Sweep expired fencing counters once they grow to this many.
    fence_sweep_at: usize,
    /// The last fencing token of each name acquired with a fence, and until when it is kept:
    /// as on Redis, the lock's timeout plus [`FENCE_RETENTION`] after the acquisition. A token is
    /// the larger of the last one plus 1 and the wall clock in microseconds, so tokens keep
    /// growing after a counter is dropped.
    fences: HashMap<LockName, Fence>,
    /// The waiter queue of each name with waiters: as on Redis, by arrival, each with a lease.
    queues: HashMap<LockName, Queue>,
    /// The last ticket given: tickets only grow.
    tickets: u64,
}

/// One name's waiters, by ticket (arrival order).
#[derive(Debug, Default)]
struct Queue {
    entries: BTreeMap<u64, Queued>,
    /// As on Redis, the queue lasts twice a waiter's lease after that waiter's last step, with
    /// every place in it, lapsed or not.
    expires_at: Duration,
}

#[derive(Debug)]
struct Queued {
    token: Token,
    ttl: Ttl,
    claim: Duration,
    lease_until: Duration,
}

impl Queue {
    fn ticket_of(&self, token: &Token) -> Option<u64> {
        self.entries
            .iter()
            .find_map(|(ticket, q)| (q.token == *token).then_some(*ticket))
    }

    fn position(&self, ticket: u64) -> u64 {
        self.entries.range(..ticket).count() as u64
    }

    /// Drops at most `cap` waiters whose lease ran out, as the scripts' `evict`.
    fn evict(&mut self, now: Duration, cap: usize) {
        let gone: Vec<u64> = self
            .entries
            .iter()
            .filter(|(_, q)| q.lease_until < now)
            .map(|(ticket, _)| *ticket)
            .take(cap)
            .collect();
        for ticket in gone {
            self.entries.remove(&ticket);
        }
    }
}

/// A hand-off to tell a waiter's process of, once the state is unlocked.
#[derive(Debug)]
struct Granted {
    token: Token,
    fence: u64,
}

#[derive(Debug, Clone, Copy)]
struct Fence {
    last: u64,
    expires_at: Duration,
}

#[derive(Debug)]
struct Entry {
    token: Token,
    expires_at: Duration,
}

const MIN_SWEEP: usize = 64;

impl MemoryBackend {
    /// A backend on tokio's clock.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_memory::MemoryBackend;
    ///
    /// let backend = MemoryBackend::new();
    /// assert!(backend.is_empty());
    /// ```
    pub fn new() -> Self {
        MemoryBackend::with_clock(TokioClock::new())
    }

    /// A backend on the given clock, for example a [`ManualClock`](crate::ManualClock).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use lock_core::ProcessLock;
    /// use lock_memory::{ManualClock, MemoryBackend};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> lock_core::Result<()> {
    /// let clock = ManualClock::new();
    /// let backend = Arc::new(MemoryBackend::with_clock(clock.clone()));
    /// let lock = ProcessLock::new(backend.clone(), "jobs", Duration::from_secs(30))?;
    /// assert!(lock.lock().await?);
    /// clock.advance(Duration::from_secs(31)); // no sleeping: the lock has expired
    /// assert!(backend.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn with_clock(clock: impl Clock) -> Self {
        MemoryBackend {
            shared: Arc::new(Shared {
                clock: Box::new(clock),
                state: Mutex::new(State {
                    locks: HashMap::new(),
                    sweep_at: MIN_SWEEP,
                    fence_sweep_at: MIN_SWEEP,
                    fences: HashMap::new(),
                    queues: HashMap::new(),
                    tickets: 0,
                }),
                waiters: Subscriptions::new(InProcess),
            }),
        }
    }

    /// How many locks are alive now.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use lock_core::ProcessLock;
    /// use lock_memory::MemoryBackend;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> lock_core::Result<()> {
    /// let backend = Arc::new(MemoryBackend::new());
    /// ProcessLock::new(backend.clone(), "jobs", Duration::from_secs(30))?.lock().await?;
    /// assert_eq!(backend.len(), 1);
    /// # Ok(()) }
    /// ```
    pub fn len(&self) -> usize {
        let now = self.shared.clock.now();
        let state = self.state();
        state.locks.values().filter(|e| e.is_alive(now)).count()
    }

    /// Whether no lock is alive now.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_memory::MemoryBackend;
    ///
    /// assert!(MemoryBackend::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the map half-updated (every update is a
        // single insert or remove), so a poisoned lock is safe to keep using.
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl MemoryBackend {
    /// The channel this backend's queued waiters of `name` are told of hand-offs on.
    fn grant_channel(name: &LockName) -> String {
        format!("grants\0{}", name.as_str())
    }

    /// Tells the waiters: of a hand-off to one of them, or else that `name` was released.
    fn announce(&self, name: &LockName, granted: Option<Granted>) {
        match granted {
            Some(Granted { token, fence }) => self
                .shared
                .waiters
                .deliver(&Self::grant_channel(name), &grant_message(&token, fence)),
            None => self.shared.waiters.notify(name.as_str()),
        }
    }
}

impl Default for MemoryBackend {
    fn default() -> Self {
        MemoryBackend::new()
    }
}

impl Entry {
    /// Redis keeps a key while `now <= expiry` and drops it once `now > expiry`.
    fn is_alive(&self, now: Duration) -> bool {
        now <= self.expires_at
    }
}

impl State {
    /// The live entry for `name`, dropping it first if it has expired.
    fn live(&mut self, name: &str, now: Duration) -> Option<&mut Entry> {
        if self.locks.get(name).is_some_and(|e| !e.is_alive(now)) {
            self.locks.remove(name);
        }
        self.locks.get_mut(name)
    }

    fn insert(&mut self, name: &LockName, entry: Entry, now: Duration) {
        self.locks.insert(name.clone(), entry);
        if self.locks.len() >= self.sweep_at {
            self.locks.retain(|_, e| e.is_alive(now));
            self.sweep_at = (self.locks.len() * 2).max(MIN_SWEEP);
        }
    }

    /// The next fencing token of `name`, kept until `ttl` plus [`FENCE_RETENTION`] from now.
    fn next_fence(&mut self, name: &LockName, ttl: Ttl, now: Duration) -> u64 {
        let last = match self.fences.get(name) {
            Some(fence) if now <= fence.expires_at => fence.last,
            _ => 0,
        };
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| {
                u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
            });
        let fence = (last + 1).max(clock);
        let expires_at = expiry(now, ttl).saturating_add(FENCE_RETENTION);
        self.fences.insert(
            name.clone(),
            Fence {
                last: fence,
                expires_at,
            },
        );
        if self.fences.len() >= self.fence_sweep_at {
            self.fences.retain(|_, f| now <= f.expires_at);
            self.fence_sweep_at = (self.fences.len() * 2).max(MIN_SWEEP);
        }
        fence
    }
}

impl State {
    /// The last fencing token of `name`, 0 if none is kept.
    fn last_fence(&self, name: &LockName, now: Duration) -> u64 {
        match self.fences.get(name) {
            Some(fence) if now <= fence.expires_at => fence.last,
            _ => 0,
        }
    }

    /// Drops `name`'s queue if it expired, as Redis drops the queue's keys.
    fn expire_queue(&mut self, name: &LockName, now: Duration) {
        if self.queues.get(name).is_some_and(|q| now > q.expires_at) {
            self.queues.remove(name);
        }
    }

    /// Drops lapsed waiters of `name`, and its queue once empty or expired.
    fn evict(&mut self, name: &LockName, now: Duration) {
        self.expire_queue(name, now);
        if let Some(queue) = self.queues.get_mut(name) {
            queue.evict(now, EVICT_CAP as usize);
            if queue.entries.is_empty() {
                self.queues.remove(name);
            }
        }
    }

    /// Whether `name` has queued waiters.
    fn has_waiters(&self, name: &LockName) -> bool {
        self.queues.get(name).is_some_and(|q| !q.entries.is_empty())
    }

    /// With `name` free: hands it to its first live waiter for that waiter's claim time, with
    /// the next fence, as the scripts' `hand_on`. Looks at no more than [`EVICT_CAP`] heads.
    fn hand_on(&mut self, name: &LockName, now: Duration) -> Option<Granted> {
        for _ in 0..EVICT_CAP {
            let queue = self.queues.get_mut(name)?;
            let Some((_, head)) = queue.entries.pop_first() else {
                self.queues.remove(name);
                return None;
            };
            if queue.entries.is_empty() {
                self.queues.remove(name);
            }
            if head.lease_until >= now {
                let fence = self.next_fence(name, head.ttl, now);
                let claim = head.claim.min(head.ttl.as_duration());
                let entry = Entry {
                    token: head.token.clone(),
                    expires_at: now.saturating_add(claim),
                };
                self.insert(name, entry, now);
                return Some(Granted {
                    token: head.token,
                    fence,
                });
            }
        }
        None
    }

    /// Queues `waiter` (keeping its ticket if queued) and renews its lease; returns its place.
    fn enqueue(&mut self, name: &LockName, waiter: &Waiter, now: Duration) -> u64 {
        self.expire_queue(name, now);
        let next = self.tickets + 1;
        let queue = self.queues.entry(name.clone()).or_default();
        let life = now.saturating_add(waiter.timing.lease.saturating_mul(2));
        queue.expires_at = queue.expires_at.max(life);
        let ticket = match queue.ticket_of(&waiter.token) {
            Some(ticket) => ticket,
            None => {
                queue.entries.insert(
                    next,
                    Queued {
                        token: waiter.token.clone(),
                        ttl: waiter.ttl,
                        claim: waiter.timing.claim,
                        lease_until: Duration::ZERO,
                    },
                );
                self.tickets = next;
                next
            }
        };
        let queue = self.queues.get_mut(name).expect("just queued");
        if let Some(q) = queue.entries.get_mut(&ticket) {
            q.lease_until = now.saturating_add(waiter.timing.lease);
        }
        queue.position(ticket)
    }

    /// Takes `token` out of `name`'s queue; returns whether it was there.
    fn dequeue(&mut self, name: &LockName, token: &Token) -> bool {
        let Some(queue) = self.queues.get_mut(name) else {
            return false;
        };
        let removed = queue
            .ticket_of(token)
            .and_then(|ticket| queue.entries.remove(&ticket))
            .is_some();
        if queue.entries.is_empty() {
            self.queues.remove(name);
        }
        removed
    }

    /// Frees `name` and hands it on to its first live waiter, as the scripts' `free`.
    fn free(&mut self, name: &LockName, now: Duration) -> Option<Granted> {
        self.locks.remove(name.as_str());
        self.evict(name, now);
        self.hand_on(name, now)
    }

    /// As [`hand_on`](State::hand_on), before a try-once takes a free lock: whether the lock
    /// went to a queued waiter instead (no barging).
    fn hand_on_first(&mut self, name: &LockName, now: Duration) -> Option<Granted> {
        self.evict(name, now);
        if self.has_waiters(name) {
            self.hand_on(name, now)
        } else {
            None
        }
    }
}

fn expiry(now: Duration, ttl: Ttl) -> Duration {
    now.saturating_add(ttl.as_duration())
}

#[async_trait]
impl LockBackend for MemoryBackend {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            remaining_ttl: true,
            notify: true,
            fencing: true,
            queue: true,
            raise_fence: true,
        }
    }

    async fn try_acquire(&self, name: &LockName, token: &Token, ttl: Ttl) -> Result<Acquire> {
        let now = self.shared.clock.now();
        let mut state = self.state();
        match state.live(name.as_str(), now) {
            Some(entry) if entry.token == *token => {
                entry.expires_at = expiry(now, ttl);
                Ok(Acquire::Acquired)
            }
            Some(entry) => Ok(Acquire::Held {
                remaining: Some(entry.expires_at - now),
            }),
            None => {
                if let Some(granted) = state.hand_on_first(name, now) {
                    let remaining = state.live(name.as_str(), now).map(|e| e.expires_at - now);
                    drop(state);
                    self.announce(name, Some(granted));
                    return Ok(Acquire::Held { remaining });
                }
                let entry = Entry {
                    token: token.clone(),
                    expires_at: expiry(now, ttl),
                };
                state.insert(name, entry, now);
                Ok(Acquire::Acquired)
            }
        }
    }

    async fn renew(&self, name: &LockName, token: &Token, ttl: Ttl) -> Result<bool> {
        let now = self.shared.clock.now();
        let mut state = self.state();
        match state.live(name.as_str(), now) {
            Some(entry) if entry.token == *token => {
                entry.expires_at = expiry(now, ttl);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release(&self, name: &LockName, token: &Token) -> Result<Release> {
        let now = self.shared.clock.now();
        let mut state = self.state();
        let outcome = match state.live(name.as_str(), now) {
            None => Release::Missing,
            Some(entry) if entry.token != *token => Release::NotOwner,
            Some(_) => Release::Released,
        };
        if outcome == Release::Released {
            let granted = state.free(name, now);
            drop(state);
            self.announce(name, granted);
        }
        Ok(outcome)
    }

    async fn force_release(&self, name: &LockName) -> Result<ForceRelease> {
        let now = self.shared.clock.now();
        let mut state = self.state();
        Ok(match state.live(name.as_str(), now) {
            None => ForceRelease::Missing,
            Some(_) => {
                let granted = state.free(name, now);
                drop(state);
                self.announce(name, granted);
                ForceRelease::Released
            }
        })
    }

    async fn try_acquire_fenced(
        &self,
        name: &LockName,
        token: &Token,
        ttl: Ttl,
    ) -> Result<FencedAcquire> {
        let now = self.shared.clock.now();
        let mut state = self.state();
        let expires_at = expiry(now, ttl);
        match state.live(name.as_str(), now) {
            Some(entry) if entry.token == *token => entry.expires_at = expires_at,
            Some(entry) => {
                return Ok(FencedAcquire::Held {
                    remaining: Some(entry.expires_at - now),
                });
            }
            None => {
                if let Some(granted) = state.hand_on_first(name, now) {
                    let remaining = state.live(name.as_str(), now).map(|e| e.expires_at - now);
                    drop(state);
                    self.announce(name, Some(granted));
                    return Ok(FencedAcquire::Held { remaining });
                }
                let entry = Entry {
                    token: token.clone(),
                    expires_at,
                };
                state.insert(name, entry, now);
            }
        }
        let fence = state.next_fence(name, ttl, now);
        Ok(FencedAcquire::Acquired { fence })
    }

    async fn queue_step(&self, name: &LockName, waiter: &Waiter) -> Result<QueueStep> {
        let now = self.shared.clock.now();
        let mut state = self.state();
        state.evict(name, now);
        let token = &waiter.token;
        let remaining = match state.live(name.as_str(), now) {
            Some(entry) if entry.token == *token => {
                entry.expires_at = expiry(now, waiter.ttl);
                state.dequeue(name, token);
                let fence = state.last_fence(name, now);
                return Ok(QueueStep::Acquired { fence });
            }
            Some(entry) => Some(entry.expires_at - now),
            None => None,
        };
        if let Some(remaining) = remaining {
            let position = state.enqueue(name, waiter, now);
            return Ok(QueueStep::Queued {
                remaining: Some(remaining),
                position,
            });
        }
        let first = state
            .queues
            .get(name)
            .and_then(|q| q.entries.first_key_value())
            .map(|(_, head)| head.token.clone());
        if first.is_some_and(|first| first != *token) {
            state.enqueue(name, waiter, now);
            let granted = state.hand_on(name, now);
            let step = match &granted {
                Some(g) if g.token == *token => {
                    if let Some(entry) = state.live(name.as_str(), now) {
                        entry.expires_at = expiry(now, waiter.ttl);
                    }
                    QueueStep::Acquired { fence: g.fence }
                }
                _ => {
                    let position = state
                        .queues
                        .get(name)
                        .and_then(|q| q.ticket_of(token).map(|t| q.position(t)))
                        .unwrap_or(0);
                    let remaining = state.live(name.as_str(), now).map(|e| e.expires_at - now);
                    QueueStep::Queued {
                        remaining: Some(remaining.unwrap_or(Duration::ZERO)),
                        position,
                    }
                }
            };
            drop(state);
            if let Some(granted) = granted.filter(|g| g.token != *token) {
                self.announce(name, Some(granted));
            }
            return Ok(step);
        }
        state.dequeue(name, token);
        let entry = Entry {
            token: token.clone(),
            expires_at: expiry(now, waiter.ttl),
        };
        state.insert(name, entry, now);
        let fence = state.next_fence(name, waiter.ttl, now);
        Ok(QueueStep::Acquired { fence })
    }

    async fn leave_queue(&self, name: &LockName, waiter: &Waiter, keep: bool) -> Result<Leave> {
        let now = self.shared.clock.now();
        let mut state = self.state();
        state.expire_queue(name, now);
        let removed = state.dequeue(name, &waiter.token);
        let holds = state
            .live(name.as_str(), now)
            .is_some_and(|entry| entry.token == waiter.token);
        if !holds {
            return Ok(if removed { Leave::Left } else { Leave::Absent });
        }
        if keep {
            if let Some(entry) = state.live(name.as_str(), now) {
                entry.expires_at = expiry(now, waiter.ttl);
            }
            let fence = state.last_fence(name, now);
            return Ok(Leave::Kept { fence });
        }
        let granted = state.free(name, now);
        drop(state);
        self.announce(name, granted);
        Ok(Leave::Released)
    }

    async fn queue_watch(&self, name: &LockName) -> Result<Watch> {
        let channel = Self::grant_channel(name);
        self.shared.waiters.watch_lingering(channel).await
    }

    async fn watch(&self, name: &LockName) -> Result<Watch> {
        self.shared.waiters.watch(name.as_str().to_owned()).await
    }

    async fn raise_fence(&self, name: &LockName, token: &Token, floor: u64) -> Result<bool> {
        let now = self.shared.clock.now();
        let mut state = self.state();
        let held_until = match state.live(name.as_str(), now) {
            Some(entry) if entry.token == *token => entry.expires_at,
            _ => return Ok(false),
        };
        // As the script: the counter rises to the floor, kept for the longer of its own time
        // and the lock's plus the retention.
        let keep = held_until.saturating_add(FENCE_RETENTION);
        match state.fences.get_mut(name) {
            Some(fence) if now <= fence.expires_at => {
                if fence.last < floor {
                    fence.last = floor;
                    fence.expires_at = fence.expires_at.max(keep);
                }
            }
            _ => {
                let fence = Fence {
                    last: floor,
                    expires_at: keep,
                };
                state.fences.insert(name.clone(), fence);
            }
        }
        Ok(true)
    }

    async fn status(&self, name: &LockName) -> Result<Status> {
        let now = self.shared.clock.now();
        let mut state = self.state();
        Ok(match state.live(name.as_str(), now) {
            None => Status::open(),
            Some(entry) => Status::locked(Some(entry.expires_at - now)),
        })
    }

    async fn is_held_by(&self, name: &LockName, token: &Token) -> Result<bool> {
        let now = self.shared.clock.now();
        let mut state = self.state();
        Ok(state
            .live(name.as_str(), now)
            .is_some_and(|entry| entry.token == *token))
    }
}
