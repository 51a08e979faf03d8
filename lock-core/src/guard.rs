//! [`LockGuard`]: a held lock, renewed in the background, that tells its holder when it is lost.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::backend::{LockBackend, Release};
use crate::error::{Error, ErrorKind, Result};
use crate::name::LockName;
use crate::notify::{Turn, Watch};
use crate::token::Token;
use crate::ttl::Ttl;

/// Why a [`LockGuard`] lost its lock.
///
/// # Examples
///
/// ```
/// # use std::{sync::Arc, time::Duration};
/// # use lock_core::{Lock, LockBackend};
/// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
/// let lock = Lock::new(backend, "reports", Duration::from_secs(30))?;
/// let guard = lock.lock().await?;
/// let lost = guard.lost().await;
/// match lost.reason() {
///     lock_core::LostReason::NotOwner => println!("someone else has {}", lost.name()),
///     lock_core::LostReason::Expired => println!("the store was out of reach"),
///     _ => {}
/// }
/// # Ok(()) }
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LostReason {
    /// A renewal found the lock free or held by another owner: it was deleted (a forced
    /// clear), or it expired and someone else took it.
    NotOwner,
    /// The lock's validity ran out without a confirmed renewal: the store could not be reached
    /// or did not answer (down, paused, partitioned) in time. The key may still exist for a
    /// moment, but no one can count on it any more.
    Expired,
}

/// The loss of a [`LockGuard`]'s lock: its [reason](Lost::reason) and, for an expiry, the last
/// error the renewals met.
///
/// # Examples
///
/// ```
/// # use std::{sync::Arc, time::Duration};
/// # use lock_core::{Lock, LockBackend};
/// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
/// let lock = Lock::new(backend, "reports", Duration::from_secs(30))?;
/// let guard = lock.lock().await?;
/// tokio::select! {
///     lost = guard.lost() => eprintln!("lost {} ({:?})", lost.name(), lost.reason()),
///     () = tokio::time::sleep(Duration::from_secs(5)) => guard.release().await.map(drop)?,
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Lost {
    name: LockName,
    reason: LostReason,
    at: Instant,
    cause: Option<Arc<Error>>,
}

impl Lost {
    /// Why the lock was lost.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{Lock, LockBackend};
    /// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = Lock::new(backend, "reports", Duration::from_secs(30))?;
    /// let guard = lock.lock().await?;
    /// if let Some(lost) = guard.try_lost() {
    ///     assert!(!guard.is_held());
    ///     println!("lost: {:?}", lost.reason());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn reason(&self) -> LostReason {
        self.reason
    }

    /// The lock's name.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{Lock, LockBackend};
    /// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = Lock::new(backend, "reports", Duration::from_secs(30))?;
    /// let guard = lock.lock().await?;
    /// let lost = guard.lost().await;
    /// assert_eq!(lost.name().as_str(), "reports");
    /// # Ok(()) }
    /// ```
    pub fn name(&self) -> &LockName {
        &self.name
    }

    /// Since when the lock cannot be counted on: for [`LostReason::Expired`], the end of its
    /// validity (whenever the loss was noticed); otherwise, when the loss was found.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{Lock, LockBackend};
    /// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = Lock::new(backend, "reports", Duration::from_secs(30))?;
    /// let guard = lock.lock().await?;
    /// let lost = guard.lost().await;
    /// println!("not to be counted on since {:?} ago", lost.at().elapsed());
    /// # Ok(()) }
    /// ```
    pub fn at(&self) -> Instant {
        self.at
    }

    /// The last error a renewal met, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{Lock, LockBackend};
    /// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = Lock::new(backend, "reports", Duration::from_secs(30))?;
    /// let guard = lock.lock().await?;
    /// let lost = guard.lost().await;
    /// if let Some(error) = lost.cause() {
    ///     eprintln!("the last renewal failed: {error}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn cause(&self) -> Option<&Error> {
        self.cause.as_deref()
    }
}

impl fmt::Display for Lost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name.as_str();
        match self.reason {
            LostReason::NotOwner => {
                write!(
                    f,
                    "lock {name:?} lost: it was cleared or taken by another owner"
                )
            }
            LostReason::Expired => {
                write!(
                    f,
                    "lock {name:?} lost: no renewal was confirmed before it expired"
                )?;
                match &self.cause {
                    Some(cause) => write!(f, " (last error: {cause})"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl std::error::Error for Lost {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// A loss as an error of kind [`ErrorKind::LockLost`], the loss as its source.
impl From<Lost> for Error {
    fn from(lost: Lost) -> Error {
        Error::new(ErrorKind::LockLost, "the work under it was stopped").with_source(lost)
    }
}

/// How a [`LockGuard`] keeps its lock: when it renews and how much it trusts its clock.
///
/// # Examples
///
/// ```
/// use lock_core::Renewal;
///
/// let renewal = Renewal::default().every(0.25)?;
/// # Ok::<(), lock_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Renewal {
    fraction: f64,
}

impl Default for Renewal {
    /// Renew every third of the timeout: two renewals can fail before the lock is in danger.
    fn default() -> Self {
        Renewal {
            fraction: 1.0 / 3.0,
        }
    }
}

impl Renewal {
    /// Renew each time this fraction of the timeout has passed since the last confirmed
    /// renewal was sent (default 1/3).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] unless `0 < fraction < 1`.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::Renewal;
    ///
    /// let renewal = Renewal::default().every(0.5)?;
    /// assert_eq!(renewal.fraction(), 0.5);
    /// assert!(Renewal::default().every(1.0).is_err());
    /// # Ok::<(), lock_core::Error>(())
    /// ```
    pub fn every(mut self, fraction: f64) -> Result<Self> {
        if !(fraction > 0.0 && fraction < 1.0) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("the renewal fraction must be between 0 and 1, exclusive: {fraction}"),
            ));
        }
        self.fraction = fraction;
        Ok(self)
    }

    /// The fraction of the timeout between renewals.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::Renewal;
    ///
    /// assert!((Renewal::default().fraction() - 1.0 / 3.0).abs() < 1e-9);
    /// ```
    pub fn fraction(&self) -> f64 {
        self.fraction
    }

    fn interval(&self, ttl: Ttl) -> Duration {
        ttl.as_duration()
            .mul_f64(self.fraction)
            .max(Duration::from_millis(1))
    }

    /// How much shorter than the timeout a lock is trusted, for the drift between this
    /// process's clock and the store's: 1% of the timeout plus 2 ms, as Redlock allows.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use lock_core::{Renewal, Ttl};
    ///
    /// let ttl = Ttl::from_secs(10)?;
    /// assert_eq!(Renewal::drift(ttl), Duration::from_millis(102));
    /// # Ok::<(), lock_core::Error>(())
    /// ```
    pub fn drift(ttl: Ttl) -> Duration {
        ttl.as_duration() / 100 + Duration::from_millis(2)
    }
}

/// What the guard knows of its lock.
#[derive(Debug, Clone)]
enum State {
    /// Held until `valid_until`, unless a renewal confirms it longer.
    Held { valid_until: Instant },
    /// Lost, for good.
    Lost(Lost),
}

/// A guard's state, and a notice of its changes for [`LockGuard::lost`]: a mutex and one
/// `Notify`. (A `watch` channel wakes eight `Notify`s at every change, a tenth of the cost of a
/// guard's bookkeeping, paid at every release.)
struct StateCell {
    state: std::sync::Mutex<State>,
    changed: Notify,
}

impl StateCell {
    fn new(state: State) -> Self {
        StateCell {
            state: std::sync::Mutex::new(state),
            changed: Notify::new(),
        }
    }

    /// Changes the state with `modify`, which says whether it changed anything; if it did,
    /// wakes those waiting for a change. Returns what `modify` said.
    fn modify_if(&self, modify: impl FnOnce(&mut State) -> bool) -> bool {
        let changed = modify(
            &mut self
                .state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if changed {
            self.changed.notify_waiters();
        }
        changed
    }

    fn read<R>(&self, read: impl FnOnce(&State) -> R) -> R {
        read(
            &self
                .state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

/// What the guard and its renewal task share.
struct Shared {
    backend: Arc<dyn LockBackend>,
    name: LockName,
    token: Token,
    ttl: Ttl,
    state: StateCell,
    /// When the acquiring request was sent: the hold's start, for the hold-duration metric.
    acquired: Instant,
    /// The last error a renewal met since the last confirmed one: the cause of an expiry,
    /// whoever notices it (the renewal task, or a holder checking the clock).
    last_error: std::sync::Mutex<Option<Arc<Error>>>,
    /// This guard's turn among its process's waiters for the lock: given up as soon as the
    /// lock is lost (the next waiter need not wait for the guard to be dropped), or once it
    /// is released.
    turn: std::sync::Mutex<Option<Turn>>,
    /// Set once the holder released or dropped the guard: the release is the holder's to make,
    /// and the renewal task must not race it with one of its own (which would take the
    /// holder's `Released`, leaving it `NotOwner` once the lock was handed on).
    given_up: std::sync::atomic::AtomicBool,
    /// The time between renewals.
    interval: Duration,
    /// The renewal task, spawned only when the first renewal is due (see
    /// [`renewals`](crate::renewals)).
    renewal: std::sync::Mutex<Renewing>,
}

/// Where a guard's renewal task is.
enum Renewing {
    /// Not yet spawned: the first renewal is not due.
    NotYet,
    Running(tokio::task::AbortHandle),
    /// Stopped by the holder (released or dropped): never to start.
    Stopped,
}

impl crate::renewals::Due for Shared {
    fn due(self: Arc<Self>, at: Instant) {
        let mut renewal = self
            .renewal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if matches!(*renewal, Renewing::NotYet) {
            let interval = self.interval;
            let task = tokio::spawn(renew(self.clone(), interval, at));
            *renewal = Renewing::Running(task.abort_handle());
        }
    }
}

impl Shared {
    /// Stops the renewal task, or keeps it from ever starting.
    fn stop_renewing(&self) {
        let mut renewal = self
            .renewal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Renewing::Running(task) = std::mem::replace(&mut *renewal, Renewing::Stopped) {
            task.abort();
        }
    }

    /// Marks the lock lost since `at`, unless it already is, and counts the loss.
    fn lose(&self, reason: LostReason, at: Instant, cause: Option<Error>) {
        if self.mark_lost(reason, at, cause) {
            crate::layers::lock_lost(reason);
        }
    }

    /// Marks the lock given up by its holder (released or dropped): over, but not a loss.
    fn give_up(&self) {
        // Before the state changes: a renewal task that sees the lock gone must know why.
        self.given_up
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.mark_lost(LostReason::NotOwner, Instant::now(), None);
    }

    /// Marks the lock lost since `at`, unless it already is; returns whether it was held.
    fn mark_lost(&self, reason: LostReason, at: Instant, cause: Option<Error>) -> bool {
        let cause = match (cause, reason) {
            (Some(cause), _) => Some(Arc::new(cause)),
            (None, LostReason::Expired) => self.last_error(),
            (None, _) => None,
        };
        let lost = Lost {
            name: self.name.clone(),
            reason,
            at,
            cause,
        };
        let changed = self.state.modify_if(|state| match state {
            State::Lost(_) => false,
            State::Held { .. } => {
                *state = State::Lost(lost);
                true
            }
        });
        if changed {
            self.ended();
        }
        changed
    }

    /// The hold is over (given up or lost): records it, and lets the next waiter go.
    fn ended(&self) {
        crate::layers::held(self.acquired.elapsed());
        drop(self.take_turn());
    }

    fn take_turn(&self) -> Option<Turn> {
        self.turn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// Marks the lock lost if its validity has run out; returns the loss if it is lost.
    fn check(&self) -> Option<Lost> {
        let now = Instant::now();
        let expired = self.state.modify_if(|state| match state {
            State::Held { valid_until } if now >= *valid_until => {
                *state = State::Lost(Lost {
                    name: self.name.clone(),
                    reason: LostReason::Expired,
                    at: *valid_until,
                    cause: self.last_error(),
                });
                true
            }
            _ => false,
        });
        if expired {
            crate::layers::lock_lost(LostReason::Expired);
            self.ended();
        }
        self.state.read(|state| match state {
            State::Lost(lost) => Some(lost.clone()),
            State::Held { .. } => None,
        })
    }

    /// Records a renewal confirmed for a request sent at `sent`; a lock already lost (or whose
    /// validity ran out meanwhile) stays lost.
    fn renewed(&self, sent: Instant) -> bool {
        let now = Instant::now();
        let valid = sent
            + self
                .ttl
                .as_duration()
                .saturating_sub(Renewal::drift(self.ttl));
        let name = &self.name;
        let cause = self.last_error();
        let mut expired = false;
        self.state.modify_if(|state| match state {
            State::Held { valid_until } if now < *valid_until => {
                *valid_until = valid;
                true
            }
            State::Held { valid_until } => {
                expired = true;
                *state = State::Lost(Lost {
                    name: name.clone(),
                    reason: LostReason::Expired,
                    at: *valid_until,
                    cause,
                });
                true
            }
            State::Lost(_) => false,
        });
        if expired {
            crate::layers::lock_lost(LostReason::Expired);
            self.ended();
        }
        let held = self.state.read(|state| matches!(state, State::Held { .. }));
        if !held {
            drop(self.take_turn());
        }
        held
    }

    fn last_error(&self) -> Option<Arc<Error>> {
        self.last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set_last_error(&self, error: Option<Error>) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = error.map(Arc::new);
    }

    fn valid_until(&self) -> Option<Instant> {
        self.state.read(|state| match state {
            State::Held { valid_until } => Some(*valid_until),
            State::Lost(_) => None,
        })
    }
}

/// A held lock, renewed in the background until it is released or lost.
///
/// Returned by [`Lock::lock`](crate::Lock::lock) and its variants. Each
/// guard is its own owner, with its own [token](LockGuard::token) and
/// [fencing token](LockGuard::fence).
///
/// **Renewal.** A background task renews the lock every third of its timeout (see
/// [`Renewal`]), retrying failed renewals, but only while the lock is still valid. Validity is
/// measured on this process's monotonic clock from the moment the acquiring (or renewing)
/// request was *sent*, minus an allowance for clock drift ([`Renewal::drift`]): the store
/// may have started the expiry any time after that.
///
/// **Loss.** The guard reports the lock lost ([`lost`](LockGuard::lost),
/// [`is_held`](LockGuard::is_held), [`run`](LockGuard::run)) as soon as a renewal finds it free
/// or held by another owner, or its validity runs out with no renewal confirmed (the store down,
/// paused or out of reach). A lost lock is never reported as held again.
///
/// **Release.** [`release`](LockGuard::release) frees the lock and returns the outcome. Dropping
/// the guard never blocks and never panics: inside a tokio runtime it releases the lock in the
/// background; outside one (the runtime shut down) it leaves the key to expire after at most
/// the timeout.
///
/// # Examples
///
/// ```
/// # use std::{sync::Arc, time::Duration};
/// # use lock_core::{Lock, LockBackend};
/// # async fn write_reports(_fence: Option<u64>) {}
/// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
/// let lock = Lock::new(backend, "reports", Duration::from_secs(30))?;
/// let guard = lock.lock().await?;
/// tokio::select! {
///     () = write_reports(guard.fence()) => {
///         guard.release().await?;
///     }
///     lost = guard.lost() => eprintln!("lost the lock: {:?}", lost.reason()),
/// }
/// # Ok(()) }
/// ```
#[must_use = "the lock is released when the guard is dropped"]
pub struct LockGuard {
    shared: Arc<Shared>,
    fence: Option<u64>,
    /// Keeps the lock's waiters of this process queued behind the holder (see `Shared::turn`).
    watch: Option<Watch>,
    released: bool,
}

/// A lock just acquired: what its guard starts from.
pub(crate) struct Held {
    /// The owner token it was acquired for.
    pub(crate) token: Token,
    /// When the acquiring request was sent: validity counts from there.
    pub(crate) sent: Instant,
    /// Its fencing token, when the backend gives them.
    pub(crate) fence: Option<u64>,
    /// The process's queue of waiters for this lock, and this guard's turn in it.
    pub(crate) queue: Option<(Watch, Turn)>,
    /// For a lock handed over by the store's queue and not yet confirmed: until when it is
    /// surely held (from its claim time). The guard confirms it halfway through that time.
    pub(crate) handed_until: Option<Instant>,
}

impl LockGuard {
    /// Starts keeping the lock `name` on `backend`, renewing it for `ttl` as `renewal` says.
    pub(crate) fn start(
        backend: Arc<dyn LockBackend>,
        name: LockName,
        ttl: Ttl,
        renewal: Renewal,
        held: Held,
    ) -> LockGuard {
        let Held {
            token,
            sent,
            fence,
            queue,
            handed_until,
        } = held;
        let interval = renewal.interval(ttl);
        let (valid_until, first_renewal) = match handed_until {
            // Confirmed halfway through what is left of the claim (or at the usual interval, if
            // sooner): a lock held briefly costs no confirmation at all.
            Some(until) => {
                let now = Instant::now();
                let left = until.saturating_duration_since(now);
                (until, now + interval.min(left / 2))
            }
            None => (
                sent + ttl.as_duration().saturating_sub(Renewal::drift(ttl)),
                sent + interval,
            ),
        };
        let (watch, turn) = queue.unzip();
        let shared = Arc::new(Shared {
            backend,
            name,
            token,
            ttl,
            state: StateCell::new(State::Held { valid_until }),
            acquired: sent,
            last_error: std::sync::Mutex::new(None),
            turn: std::sync::Mutex::new(turn),
            given_up: std::sync::atomic::AtomicBool::new(false),
            interval,
            renewal: std::sync::Mutex::new(Renewing::NotYet),
        });
        let due: std::sync::Weak<dyn crate::renewals::Due> = Arc::downgrade(&shared) as _;
        crate::renewals::schedule(due, first_renewal);
        LockGuard {
            shared,
            fence,
            watch,
            released: false,
        }
    }

    /// The lock's name.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{Lock, LockBackend};
    /// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = Lock::new(backend, "reports", Duration::from_secs(30))?;
    /// let guard = lock.lock().await?;
    /// assert_eq!(guard.name().as_str(), "reports");
    /// # Ok(()) }
    /// ```
    pub fn name(&self) -> &LockName {
        &self.shared.name
    }

    /// This guard's owner token: the value of the lock's key while it holds it.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{Lock, LockBackend};
    /// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = Lock::new(backend, "reports", Duration::from_secs(30))?;
    /// let guard = lock.lock().await?;
    /// assert_eq!(guard.token().as_str().len(), 32);
    /// # Ok(()) }
    /// ```
    pub fn token(&self) -> &Token {
        &self.shared.token
    }

    /// The lock's timeout, to which each renewal resets its expiry.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{Lock, LockBackend};
    /// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = Lock::new(backend, "reports", Duration::from_secs(30))?;
    /// let guard = lock.lock().await?;
    /// assert_eq!(guard.ttl().as_millis(), 30_000);
    /// # Ok(()) }
    /// ```
    pub fn ttl(&self) -> Ttl {
        self.shared.ttl
    }

    /// This acquisition's fencing token, greater than that of every earlier acquisition of the
    /// same name on the same store; `None` if the backend does not offer fencing
    /// ([`Capabilities::fencing`](crate::Capabilities::fencing)).
    ///
    /// Pass it with every write to the resource the lock protects, and have the resource
    /// reject a token smaller than the largest it has seen.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{Lock, LockBackend};
    /// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = Lock::new(backend, "reports", Duration::from_secs(30))?;
    /// let guard = lock.lock().await?;
    /// // Pass the fencing token along with every write the lock protects.
    /// if let Some(fence) = guard.fence() {
    ///     println!("writing with fencing token {fence}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn fence(&self) -> Option<u64> {
        self.fence
    }

    /// Whether the lock is still held: not lost, and still within its validity.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{Lock, LockBackend};
    /// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = Lock::new(backend, "reports", Duration::from_secs(30))?;
    /// let guard = lock.lock().await?;
    /// assert!(guard.is_held());
    /// # Ok(()) }
    /// ```
    pub fn is_held(&self) -> bool {
        self.shared.check().is_none()
    }

    /// Until when the lock is known to be held, unless a renewal confirms it longer; `None`
    /// once lost.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{Lock, LockBackend};
    /// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = Lock::new(backend, "reports", Duration::from_secs(30))?;
    /// let guard = lock.lock().await?;
    /// if let Some(until) = guard.valid_until() {
    ///     println!("held for at least {:?} more", until.saturating_duration_since(tokio::time::Instant::now()));
    /// }
    /// # Ok(()) }
    /// ```
    pub fn valid_until(&self) -> Option<Instant> {
        self.shared.check();
        self.shared.valid_until()
    }

    /// The loss, if the lock is lost; never blocks.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{Lock, LockBackend};
    /// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = Lock::new(backend, "reports", Duration::from_secs(30))?;
    /// let guard = lock.lock().await?;
    /// for chunk in 0..10 {
    ///     if guard.try_lost().is_some() {
    ///         break; // stop before writing anything more
    ///     }
    ///     println!("chunk {chunk}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn try_lost(&self) -> Option<Lost> {
        self.shared.check()
    }

    /// Waits until the lock is lost, and says why. Never returns while the lock is held; it
    /// fires at the latest when the validity runs out, whatever the store does.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{Lock, LockBackend};
    /// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = Lock::new(backend, "reports", Duration::from_secs(30))?;
    /// let guard = lock.lock().await?;
    /// tokio::select! {
    ///     lost = guard.lost() => eprintln!("stopping: {:?}", lost.reason()),
    ///     () = tokio::time::sleep(Duration::from_secs(1)) => {
    ///         guard.release().await?;
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn lost(&self) -> Lost {
        loop {
            // Listening before looking: a change between the two still wakes this.
            let changed = self.shared.state.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            if let Some(lost) = self.shared.check() {
                return lost;
            }
            let Some(valid_until) = self.shared.valid_until() else {
                continue;
            };
            tokio::select! {
                () = changed => {}
                () = tokio::time::sleep_until(valid_until) => {}
            }
        }
    }

    /// Runs `work` while the lock is held: its output, or [`Lost`] if the lock is lost first,
    /// in which case `work` is dropped (cancelled) at once.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops `work` where it stands; the guard, and so the lock, is
    /// unaffected.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{Lock, LockBackend};
    /// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = Lock::new(backend, "nightly-report", Duration::from_secs(30))?;
    /// let guard = lock.lock().await?;
    /// match guard.run(async { /* the work only one process may do */ 42 }).await {
    ///     Ok(answer) => println!("done: {answer}"),
    ///     Err(lost) => eprintln!("stopped: {lost}"),
    /// }
    /// guard.release().await?;
    /// # Ok(()) }
    /// ```
    pub async fn run<F: Future>(&self, work: F) -> std::result::Result<F::Output, Lost> {
        tokio::select! {
            biased;
            lost = self.lost() => Err(lost),
            output = work => match self.try_lost() {
                // Finished, but past the loss: the work cannot count on having been alone.
                Some(lost) => Err(lost),
                None => Ok(output),
            },
        }
    }

    /// Stops renewing and releases the lock: [`Release::Released`] (or
    /// [`Release::ReleasedWithoutNotice`] if waiters elsewhere could not be told), or
    /// [`Release::NotOwner`] / [`Release::Missing`] if it was lost meanwhile.
    ///
    /// # Errors
    ///
    /// When the store cannot be reached or does not answer. The release is then tried again in
    /// the background, with a backoff, until the lock's validity ends (after which the lock
    /// expires by itself within its timeout); the error says so.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes leaves the release to the background, as
    /// dropping the guard does: the lock is released (or expires) all the same.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{Lock, LockBackend};
    /// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = Lock::new(backend, "reports", Duration::from_secs(30))?;
    /// let guard = lock.lock().await?;
    /// assert_eq!(guard.release().await?, lock_core::Release::Released);
    /// # Ok(()) }
    /// ```
    pub async fn release(mut self) -> Result<Release> {
        self.stop_renewing();
        self.released = true;
        // The next waiter's turn comes once the lock is free.
        let turn = self.shared.take_turn();
        let valid_until = self.shared.valid_until();
        self.shared.give_up();
        let shared = self.shared.clone();
        // If this future is dropped mid-way, the release goes on in the background.
        let mut background = BackgroundRelease {
            shared: Some(shared.clone()),
            valid_until,
            turn,
            watch: self.watch.take(),
        };
        let outcome = shared.backend.release(&shared.name, &shared.token).await;
        match outcome {
            Err(e) if e.is_retryable() && valid_until.is_some_and(|v| Instant::now() < v) => {
                let until = valid_until.unwrap_or_else(Instant::now);
                let left = until.saturating_duration_since(Instant::now());
                background.spawn();
                Err(Error::new(
                    e.kind(),
                    format!(
                        "releasing lock {:?} failed; trying again in the background for the \
                         {left:.1?} its validity has left, after which it expires by itself",
                        shared.name.as_str()
                    ),
                )
                .with_source(e))
            }
            outcome => {
                background.shared = None;
                outcome
            }
        }
    }

    fn stop_renewing(&mut self) {
        self.shared.stop_renewing();
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        self.stop_renewing();
        if self.released {
            return;
        }
        // Hand the turn over only once the release is done, so this process's next waiter
        // finds the lock free.
        let turn = self.shared.take_turn();
        let lost = self.shared.check();
        // Until when to keep trying: the validity, or a single try for a lock already expired.
        let valid_until = self.shared.valid_until().or_else(|| Some(Instant::now()));
        self.shared.give_up();
        if matches!(&lost, Some(l) if l.reason == LostReason::NotOwner) {
            return;
        }
        BackgroundRelease {
            shared: Some(self.shared.clone()),
            valid_until,
            turn,
            watch: self.watch.take(),
        }
        .spawn();
    }
}

/// A release to finish in the background (when dropped, or by [`spawn`](Self::spawn)): tried
/// until it is answered or the lock's validity ends, then this process's next waiter's turn is
/// handed over.
struct BackgroundRelease {
    /// `None` once there is nothing left to do.
    shared: Option<Arc<Shared>>,
    valid_until: Option<Instant>,
    turn: Option<Turn>,
    watch: Option<Watch>,
}

impl BackgroundRelease {
    fn spawn(&mut self) {
        let Some(shared) = self.shared.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime (it shut down): the lock expires by itself.
            return;
        };
        let (turn, watch) = (self.turn.take(), self.watch.take());
        let until = self.valid_until.unwrap_or_else(Instant::now);
        runtime.spawn(async move {
            release_retrying(&shared.backend, &shared.name, &shared.token, until).await;
            drop((turn, watch));
        });
    }
}

impl Drop for BackgroundRelease {
    fn drop(&mut self) {
        self.spawn();
    }
}

/// Releases `token`'s lock on `name`, trying again after errors that may pass (with a backoff
/// from 25 ms to 1 s) until `until`, the end of its validity; at least once. For the releases
/// no caller waits for: a dropped guard's, and an acquisition's whose waiter was cancelled.
pub(crate) async fn release_retrying(
    backend: &Arc<dyn LockBackend>,
    name: &LockName,
    token: &Token,
    until: Instant,
) {
    let mut backoff = Duration::from_millis(25);
    loop {
        match backend.release(name, token).await {
            Err(e) if e.is_retryable() && Instant::now() + backoff < until => {
                tracing::warn!(
                    lock = %name.as_str().escape_debug(),
                    "releasing failed, trying again: {e}"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
            Err(e) => {
                tracing::warn!(
                    lock = %name.as_str().escape_debug(),
                    "releasing failed; the lock expires by itself: {e}"
                );
                return;
            }
            Ok(_) => return,
        }
    }
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("name", &self.shared.name)
            .field("token", &self.shared.token)
            .field("fence", &self.fence)
            .field("held", &self.is_held())
            .finish_non_exhaustive()
    }
}

/// The renewal task: renews at `next`, then every `interval` from the last confirmed renewal's
/// sending, retrying errors while the lock is valid, until the lock is lost (then releases it,
/// in case a renewal whose answer never came did land).
async fn renew(shared: Arc<Shared>, interval: Duration, mut next: Instant) {
    const FIRST_RETRY: Duration = Duration::from_millis(25);
    const MAX_RETRY: Duration = Duration::from_secs(1);
    loop {
        tokio::time::sleep_until(next).await;
        let mut retry = FIRST_RETRY.min(interval);
        loop {
            let Some(valid_until) = shared.valid_until() else {
                return;
            };
            let now = Instant::now();
            if now >= valid_until {
                shared.lose(LostReason::Expired, valid_until, None);
                return release_lost(&shared).await;
            }
            let request = shared
                .backend
                .renew(&shared.name, &shared.token, shared.ttl);
            match tokio::time::timeout_at(valid_until, request).await {
                Ok(Ok(true)) => {
                    if !shared.renewed(now) {
                        return release_lost(&shared).await;
                    }
                    shared.set_last_error(None);
                    next = now + interval;
                    break;
                }
                Ok(Ok(false)) => return shared.lose(LostReason::NotOwner, Instant::now(), None),
                // The key was overwritten with another type: someone else's now.
                Ok(Err(e)) if e.kind() == ErrorKind::WrongType => {
                    return shared.lose(LostReason::NotOwner, Instant::now(), Some(e));
                }
                Ok(Err(e)) => {
                    shared.set_last_error(Some(e));
                    tokio::time::sleep_until((Instant::now() + retry).min(valid_until)).await;
                    retry = (retry * 2).min(MAX_RETRY);
                }
                Err(_elapsed) => {
                    shared.lose(LostReason::Expired, valid_until, None);
                    return release_lost(&shared).await;
                }
            }
        }
    }
}

/// After a loss by expiry: a renewal that timed out may still have landed, leaving the key this
/// guard's for another timeout. Release it, best effort, so that others need not wait for it.
async fn release_lost(shared: &Shared) {
    if shared.given_up.load(std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    let _ = shared.backend.release(&shared.name, &shared.token).await;
}
