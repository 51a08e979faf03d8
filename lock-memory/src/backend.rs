//! [`MemoryBackend`]: the `LockBackend` implementation over a map in this process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use lock_core::notify::{InProcess, Subscriptions};
use lock_core::redis::scripts::FENCE_RETENTION;
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
    pub fn new() -> Self {
        MemoryBackend::with_clock(TokioClock::new())
    }

    /// A backend on the given clock, for example a [`ManualClock`](crate::ManualClock).
    pub fn with_clock(clock: impl Clock) -> Self {
        MemoryBackend {
            shared: Arc::new(Shared {
                clock: Box::new(clock),
                state: Mutex::new(State {
                    locks: HashMap::new(),
                    sweep_at: MIN_SWEEP,
                    fence_sweep_at: MIN_SWEEP,
                    fences: HashMap::new(),
                }),
                waiters: Subscriptions::new(InProcess),
            }),
        }
    }

    /// How many locks are alive now.
    pub fn len(&self) -> usize {
        let now = self.shared.clock.now();
        let state = self.state();
        state.locks.values().filter(|e| e.is_alive(now)).count()
    }

    /// Whether no lock is alive now.
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
            state.locks.remove(name.as_str());
            drop(state);
            self.shared.waiters.notify(name.as_str());
        }
        Ok(outcome)
    }

    async fn force_release(&self, name: &LockName) -> Result<ForceRelease> {
        let now = self.shared.clock.now();
        let mut state = self.state();
        Ok(match state.live(name.as_str(), now) {
            None => ForceRelease::Missing,
            Some(_) => {
                state.locks.remove(name.as_str());
                drop(state);
                self.shared.waiters.notify(name.as_str());
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

    async fn watch(&self, name: &LockName) -> Result<Watch> {
        self.shared.waiters.watch(name.as_str().to_owned()).await
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
