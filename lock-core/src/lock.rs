//! [`Lock`]: a distributed lock used like tokio's `Mutex`, whose guards renew themselves.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::Instrument;

use crate::backend::{Acquire, FencedAcquire, LockBackend, LockState};
use crate::error::{Error, ErrorKind, Result};
use crate::guard::{Held, LockGuard, Renewal, release_retrying};
use crate::name::LockName;
use crate::notify::Watch;
use crate::queue::{Leave, QueueStep, QueueTiming, Waiter};
use crate::token::Token;
use crate::ttl::Ttl;

/// A named lock shared by every process that uses the same name on the same store, used as
/// tokio's [`Mutex`](tokio::sync::Mutex) is: [`lock`](Lock::lock) waits and returns a
/// [`LockGuard`], [`try_lock`](Lock::try_lock) does not wait, [`lock_timeout`](Lock::lock_timeout)
/// and [`lock_until`](Lock::lock_until) give up at a deadline, and
/// [`with_lock`](Lock::with_lock) runs a closure under the lock and releases it on every path.
///
/// **Owners.** A `Lock` owns nothing: it is a name, a timeout and a backend, cheap to clone and
/// to share. Each [`LockGuard`] is one owner, with a token of its own, from the moment it is
/// returned until it is released, dropped or lost; the guard renews the lock in the
/// background and reports its loss. So the only thing that can keep a `lock()` waiting is
/// another guard (in this process or another): as with tokio's `Mutex`, a task that calls
/// `lock()` while it still holds a guard of the same name waits for itself, so drop or
/// [`release`](LockGuard::release) the guard first. The seed-style [`ProcessLock`](crate::ProcessLock)
/// is the other model, one owner per handle with `process-lock-node`'s calls; a `ProcessLock`
/// and a `Lock` of the same name exclude each other as two processes would.
///
/// **Waiting.** On a backend with a waiter queue ([`Capabilities::queue`]: Redis and memory),
/// waiters of every process queue in the store, first come first served, and a release hands
/// the lock straight to the first of them (see [`crate::queue`] and the README's "Waiting in
/// line"); a try-once never takes the lock ahead of them. On other backends, waiters of one
/// process queue first come, first served, and across processes a waiter sleeps until a
/// release is announced ([`Capabilities::notify`]), the holder's expiry, or the
/// [recheck](Lock::with_recheck) interval. Either way a waiter goes on through outages of the
/// store, with a `tracing` warning and a backoff from 50 ms to 1 s. The first `lock()` of a
/// `Lock` subscribes the backend to the lock's hand-off channel, and the `Lock` (with its
/// clones) keeps that subscription while it lives: later calls do not ask for it again.
///
/// [`Capabilities::queue`]: crate::Capabilities::queue
/// [`Capabilities::notify`]: crate::Capabilities::notify
///
/// # Examples
///
/// ```
/// # use std::{sync::Arc, time::Duration};
/// # use lock_core::{Lock, LockBackend};
/// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
/// let lock = Lock::new(backend, "billing-export", Duration::from_secs(30))?;
///
/// // Wait for the lock, like tokio's Mutex::lock.
/// let guard = lock.lock().await?;
/// println!("fencing token {:?}", guard.fence());
/// guard.release().await?;
///
/// // Or run a closure under it: released on every path, cancelled if the lock is lost.
/// let rows = lock.with_lock(async |_guard| 42).await?;
/// assert_eq!(rows, 42);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Lock {
    backend: Arc<dyn LockBackend>,
    name: LockName,
    ttl: Ttl,
    renewal: Renewal,
    recheck: Duration,
    /// The watch on this lock's hand-offs, made by the first wait in the queue and shared by
    /// every later one (and by clones): asking the backend for it cost a third of an
    /// uncontended `lock()`'s own allocations. While it lives the process stays subscribed to
    /// the lock's hand-off channel.
    hand_offs: Arc<Mutex<Option<Watch>>>,
}

impl Lock {
    /// How often, by default, a waiter that is told of releases looks at the lock anyway:
    /// 2 s. See [`with_recheck`](Lock::with_recheck).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{Lock, LockBackend};
    /// # fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = Lock::new(backend, "reports", Duration::from_secs(30))?;
    /// assert_eq!(lock.recheck(), Lock::DEFAULT_RECHECK);
    /// # Ok(()) }
    /// ```
    pub const DEFAULT_RECHECK: Duration = Duration::from_secs(2);

    /// The shortest timeout a `Lock` accepts: 100 ms. A guard renews every third of the
    /// timeout and must hear back within its validity; below this a network round trip or a
    /// scheduling hiccup loses the lock. ([`ProcessLock`](crate::ProcessLock), which does not
    /// renew by itself, accepts any timeout.)
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{ErrorKind, Lock, LockBackend};
    /// # fn example(backend: Arc<dyn LockBackend>) {
    /// let too_short = Lock::new(backend, "reports", Lock::MIN_TTL / 2).unwrap_err();
    /// assert_eq!(too_short.kind(), ErrorKind::InvalidInput);
    /// # }
    /// ```
    pub const MIN_TTL: Duration = Duration::from_millis(100);

    /// The lock `name` on `backend`; a guard keeps it for `timeout` at a time, renewing it
    /// every third of that. Nothing is sent to the store.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for an empty name, a name over [`LockName::MAX_LEN`]
    /// bytes, a timeout below [`MIN_TTL`](Lock::MIN_TTL) or over [`Ttl::MAX_MILLIS`]
    /// milliseconds.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{ErrorKind, Lock, LockBackend};
    /// # fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = Lock::new(backend.clone(), "jobs", Duration::from_secs(30))?;
    /// let too_short = Lock::new(backend, "jobs", Duration::from_millis(10));
    /// assert_eq!(too_short.unwrap_err().kind(), ErrorKind::InvalidInput);
    /// # Ok(()) }
    /// ```
    pub fn new(
        backend: Arc<dyn LockBackend>,
        name: impl AsRef<str>,
        timeout: Duration,
    ) -> Result<Self> {
        Self::from_parts(backend, LockName::new(name)?, Ttl::new(timeout)?)
    }

    /// As [`new`](Lock::new), from already validated parts.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for a timeout below [`MIN_TTL`](Lock::MIN_TTL).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use lock_core::{Lock, LockBackend, LockName, Ttl};
    /// # fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let name = LockName::new("reports")?;
    /// let lock = Lock::from_parts(backend, name.clone(), Ttl::from_secs(30)?)?;
    /// assert_eq!(lock.name(), &name);
    /// # Ok(()) }
    /// ```
    pub fn from_parts(backend: Arc<dyn LockBackend>, name: LockName, ttl: Ttl) -> Result<Self> {
        if ttl.as_duration() < Self::MIN_TTL {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "a timeout of {}ms is too short for a guard to renew the lock in time: \
                     use at least {}ms",
                    ttl.as_millis(),
                    Self::MIN_TTL.as_millis()
                ),
            ));
        }
        Ok(Lock {
            backend,
            name,
            ttl,
            renewal: Renewal::default(),
            recheck: Self::DEFAULT_RECHECK,
            hand_offs: Arc::default(),
        })
    }

    /// How the guards of this lock renew it (default: every third of the timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{Lock, LockBackend, Renewal};
    /// # fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// // Renew every quarter of the timeout instead of every third.
    /// let lock = Lock::new(backend, "reports", Duration::from_secs(30))?
    ///     .with_renewal(Renewal::default().every(0.25)?);
    /// assert_eq!(lock.renewal().fraction(), 0.25);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn with_renewal(mut self, renewal: Renewal) -> Self {
        self.renewal = renewal;
        self
    }

    /// How the guards of this lock renew it.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{Lock, LockBackend, Renewal};
    /// # fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = Lock::new(backend, "reports", Duration::from_secs(30))?;
    /// assert_eq!(lock.renewal().fraction(), Renewal::default().fraction());
    /// # Ok(()) }
    /// ```
    pub fn renewal(&self) -> Renewal {
        self.renewal
    }

    /// On a backend without a waiter queue, how often a waiter that is told of releases
    /// ([`Capabilities::notify`]) looks at the lock anyway, in case a release was not
    /// announced (a queued waiter's heartbeat does this, see [`crate::queue::QueueTiming`]): by a process that knows nothing of
    /// notification (`process-lock-node`, a `DEL` by hand), by a user the store forbids to
    /// announce ([`Release::ReleasedWithoutNotice`]), or while a notification connection died
    /// unnoticed. It bounds how long such a release goes unseen. Default
    /// [`DEFAULT_RECHECK`](Lock::DEFAULT_RECHECK); each look is one request per waiting
    /// process.
    ///
    /// [`Capabilities::notify`]: crate::Capabilities::notify
    /// [`Release::ReleasedWithoutNotice`]: crate::Release::ReleasedWithoutNotice
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{Lock, LockBackend};
    /// # fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = Lock::new(backend, "jobs", Duration::from_secs(30))?
    ///     .with_recheck(Duration::from_millis(500));
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn with_recheck(mut self, every: Duration) -> Self {
        self.recheck = every.max(Duration::from_millis(1));
        self
    }

    /// How often a notified waiter looks at the lock anyway (see
    /// [`with_recheck`](Lock::with_recheck)).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{Lock, LockBackend};
    /// # fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = Lock::new(backend, "reports", Duration::from_secs(30))?
    ///     .with_recheck(Duration::from_millis(500));
    /// assert_eq!(lock.recheck(), Duration::from_millis(500));
    /// # Ok(()) }
    /// ```
    pub fn recheck(&self) -> Duration {
        self.recheck
    }

    /// Acquires the lock, waiting as long as it takes, and returns a [`LockGuard`] that keeps
    /// it renewed and reports its loss. The guard has a fencing token
    /// ([`fence`](LockGuard::fence)) when the backend offers them.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future at any point is safe and never leaves a lock behind: if an acquire
    /// was in flight and succeeds after the drop, it is released in the background.
    ///
    /// # Errors
    ///
    /// When the store fails in a way trying again cannot fix (see [`Error::is_retryable`]): a
    /// key of another type, a permission the store refuses, a reply that makes no sense.
    /// Must run inside a tokio runtime, which the renewal task is spawned on.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{Lock, LockBackend};
    /// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = Lock::new(backend, "billing-export", Duration::from_secs(30))?;
    /// let guard = lock.lock().await?;
    /// // ... the work only one process may do ...
    /// guard.release().await?;
    /// # Ok(()) }
    /// ```
    pub async fn lock(&self) -> Result<LockGuard> {
        let guard = self.acquire_until(None).await?;
        Ok(guard.expect("waiting without a deadline ends only with the lock"))
    }

    /// Tries once, without waiting: a [`LockGuard`] if the lock was free, `Ok(None)` if
    /// someone else holds it.
    ///
    /// # Cancel safety
    ///
    /// As [`lock`](Lock::lock).
    ///
    /// # Errors
    ///
    /// As [`lock`](Lock::lock), and any error of the store: a single try does not retry.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{Lock, LockBackend};
    /// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = Lock::new(backend, "cron:cleanup", Duration::from_secs(30))?;
    /// match lock.try_lock().await? {
    ///     Some(guard) => guard.release().await.map(drop)?,
    ///     None => println!("another process is cleaning up"),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn try_lock(&self) -> Result<Option<LockGuard>> {
        let token = Token::generate()?;
        let sent = Instant::now();
        match self.attempt(&token).await? {
            FencedAcquire::Held { .. } => Ok(None),
            FencedAcquire::Acquired { fence } => Ok(Some(self.guard(token, sent, fence, None))),
        }
    }

    /// As [`lock`](Lock::lock), giving up after `timeout`: `Ok(None)` if the lock was held by
    /// others all that time, or the last error if the store was failing when the time ran out.
    ///
    /// # Cancel safety
    ///
    /// As [`lock`](Lock::lock).
    ///
    /// # Errors
    ///
    /// As [`lock`](Lock::lock).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{Lock, LockBackend};
    /// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = Lock::new(backend, "deploy", Duration::from_secs(30))?;
    /// let Some(guard) = lock.lock_timeout(Duration::from_secs(5)).await? else {
    ///     return Ok(()); // someone else has been deploying for 5 s
    /// };
    /// guard.release().await?;
    /// # Ok(()) }
    /// ```
    pub async fn lock_timeout(&self, timeout: Duration) -> Result<Option<LockGuard>> {
        self.acquire_until(Some(Instant::now() + timeout)).await
    }

    /// As [`lock`](Lock::lock), giving up at `deadline`: `Ok(None)` if the lock was held by
    /// others until then, or the last error if the store was failing when the time ran out.
    ///
    /// # Cancel safety
    ///
    /// As [`lock`](Lock::lock).
    ///
    /// # Errors
    ///
    /// As [`lock`](Lock::lock).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{Lock, LockBackend};
    /// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = Lock::new(backend, "deploy", Duration::from_secs(30))?;
    /// let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    /// if let Some(guard) = lock.lock_until(deadline).await? {
    ///     guard.release().await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn lock_until(&self, deadline: Instant) -> Result<Option<LockGuard>> {
        self.acquire_until(Some(deadline)).await
    }

    /// Waits for the lock, runs `work` with the guard, and releases the lock: on success, on
    /// an error or panic inside `work` (the guard's drop releases it), and when the lock is
    /// lost, in which case `work` is cancelled (dropped at its next `.await`) and the result is
    /// an [`ErrorKind::LockLost`] error whose source is the [`Lost`](crate::Lost).
    ///
    /// If releasing fails after `work` completed (the store is unreachable), `work`'s output
    /// is returned all the same: the release goes on in the background (see
    /// [`LockGuard::release`]) and the lock expires by itself at the latest.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops `work` and releases the lock in the background.
    ///
    /// # Errors
    ///
    /// As [`lock`](Lock::lock), and [`ErrorKind::LockLost`] when the lock was lost during
    /// `work`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{Lock, LockBackend};
    /// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = Lock::new(backend, "nightly-report", Duration::from_secs(30))?;
    /// let fence = lock
    ///     .with_lock(async |guard| {
    ///         // ... write to storage, passing the fencing token along ...
    ///         guard.fence()
    ///     })
    ///     .await?;
    /// # let _ = fence;
    /// # Ok(()) }
    /// ```
    pub async fn with_lock<T>(&self, work: impl AsyncFnOnce(&LockGuard) -> T) -> Result<T> {
        let guard = self.lock().await?;
        let output = guard.run(work(&guard)).await.map_err(Error::from)?;
        if let Err(e) = guard.release().await {
            tracing::warn!(
                lock = %self.name.as_str().escape_debug(),
                "the work is done but its lock could not be released now: {e}"
            );
        }
        Ok(output)
    }

    /// Whether anyone holds the lock: [`LockState::Open`] or [`LockState::Locked`].
    ///
    /// # Errors
    ///
    /// When the store cannot be reached, answers late or answers something unexpected.
    ///
    /// # Cancel safety
    ///
    /// Safe: it changes nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{Lock, LockBackend, LockState};
    /// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = Lock::new(backend, "reports", Duration::from_secs(30))?;
    /// if lock.status().await? == LockState::Locked {
    ///     println!("someone is writing the reports");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn status(&self) -> Result<LockState> {
        Ok(self.backend.status(&self.name).await?.state)
    }

    /// Waits for the lock until `deadline`, in a `lock.wait` span, measured (see
    /// [`layers::names`](crate::layers)).
    async fn acquire_until(&self, deadline: Option<Instant>) -> Result<Option<LockGuard>> {
        let span = tracing::debug_span!(
            "lock.wait",
            lock = %self.name.as_str().escape_debug(),
            outcome = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        );
        let _waiting = crate::layers::Waiting::start();
        let started = Instant::now();
        // An enabled span is entered at every poll; a disabled one (no subscriber wants it)
        // is left out of the way.
        let result = if span.is_disabled() {
            self.wait(deadline).await
        } else {
            self.wait(deadline).instrument(span.clone()).await
        };
        let outcome = match &result {
            Ok(Some(_)) => "acquired",
            Ok(None) => "timeout",
            Err(_) => "error",
        };
        let took = started.elapsed();
        span.record("outcome", outcome);
        span.record("duration_ms", took.as_secs_f64() * 1e3);
        crate::layers::waited(outcome, took);
        result
    }

    async fn wait(&self, deadline: Option<Instant>) -> Result<Option<LockGuard>> {
        /// How often a waiter on a backend without notification looks again, at most.
        const POLL: Duration = Duration::from_millis(50);
        if self.backend.capabilities().queue {
            return self.wait_in_queue(deadline).await;
        }
        let token = Token::generate()?;
        // When this waiter last woke up after waiting: hand-over latency counts from there.
        let mut woke = None;
        let mut outage = Outage::default();
        let mut watch = if self.backend.capabilities().notify {
            loop {
                match self.backend.watch(&self.name).await {
                    Ok(watch) => break Some(watch),
                    Err(e) if e.is_retryable() => {
                        outage.wait(&self.name, "watching", e, deadline).await?;
                    }
                    Err(e) => return Err(e),
                }
            }
        } else {
            None
        };
        let turn = match &watch {
            Some(watch) => {
                let mut turn = std::pin::pin!(watch.turn());
                let now = std::future::poll_fn(|cx| Poll::Ready(turn.as_mut().poll(cx))).await;
                match now {
                    Poll::Ready(turn) => Some(turn),
                    // Queued behind this process's other waiters of the lock.
                    Poll::Pending => match until(deadline, turn).await {
                        Some(turn) => {
                            woke = Some(Instant::now());
                            Some(turn)
                        }
                        None => return Ok(None),
                    },
                }
            }
            None => None,
        };
        loop {
            let sent = Instant::now();
            let remaining = match self.attempt(&token).await {
                Ok(FencedAcquire::Acquired { fence }) => {
                    outage.over(&self.name);
                    if let Some(woke) = woke {
                        crate::layers::handed_over(woke.elapsed());
                    }
                    let queue = watch.zip(turn);
                    return Ok(Some(self.guard(token, sent, fence, queue)));
                }
                Ok(FencedAcquire::Held { remaining }) => {
                    outage.over(&self.name);
                    remaining
                }
                // The same token tries again: an attempt that landed unseen is taken over.
                Err(e) if e.is_retryable() => {
                    outage.wait(&self.name, "acquiring", e, deadline).await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            // Redis keeps a key up to and including its last millisecond.
            let expiry = remaining.map(|left| Instant::now() + left + Duration::from_millis(1));
            let look = Instant::now() + if watch.is_some() { self.recheck } else { POLL };
            let wake = expiry.map_or(look, |expiry| expiry.min(look));
            let wake = deadline.map_or(wake, |d| wake.min(d));
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
            let sleep = tokio::time::sleep_until(wake);
            match watch.as_mut() {
                Some(watch) => {
                    tokio::select! {
                        () = watch.released() => {}
                        () = sleep => {}
                    }
                }
                None => sleep.await,
            }
            woke = Some(Instant::now());
        }
    }

    /// Waits in the store's queue (see [`crate::queue`]): joins it, keeps its place with a
    /// heartbeat, and either is handed the lock by a release (told through the queue watch)
    /// or takes it when first and the holder's time ran out.
    async fn wait_in_queue(&self, deadline: Option<Instant>) -> Result<Option<LockGuard>> {
        let token = Token::generate()?;
        let timing = QueueTiming::for_ttl(self.ttl);
        let waiter = Waiter::new(token.clone(), self.ttl, timing);
        let mut outage = Outage::default();
        // Listen first, so that a hand-off right after joining reaches this waiter.
        let mut watch = match self.kept_hand_offs() {
            Some(watch) => watch,
            None => loop {
                match self.backend.queue_watch(&self.name).await {
                    Ok(watch) => {
                        self.keep_hand_offs(&watch);
                        break watch;
                    }
                    Err(e) if e.is_retryable() => {
                        outage.wait(&self.name, "watching", e, deadline).await?;
                    }
                    Err(e) => return Err(e),
                }
            },
        };
        let mut grant = watch.expect_grant(&token);
        // From here on, going away (cancelled, an error) leaves the queue, and releases a lock
        // handed over meanwhile.
        let mut queued = Queued {
            backend: self.backend.clone(),
            name: self.name.clone(),
            waiter: Some(waiter.clone()),
        };
        // When this waiter last woke up after waiting: hand-over latency counts from there.
        let mut woke = None;
        loop {
            let sent = Instant::now();
            let wake = match self.backend.queue_step(&self.name, &waiter).await {
                Ok(QueueStep::Acquired { fence }) => {
                    outage.over(&self.name);
                    queued.waiter = None;
                    if let Some(woke) = woke {
                        crate::layers::handed_over(Instant::now().duration_since(woke));
                    }
                    return Ok(Some(self.guard(token, sent, fence, None)));
                }
                Ok(QueueStep::Queued {
                    remaining,
                    position,
                }) => {
                    outage.over(&self.name);
                    let beat = Instant::now() + timing.heartbeat;
                    match remaining {
                        // First in line: step again as soon as the holder's time runs out (Redis
                        // keeps a key up to and including its last millisecond).
                        Some(left) if position == 0 => {
                            beat.min(Instant::now() + left + Duration::from_millis(1))
                        }
                        _ => beat,
                    }
                }
                Err(e) if e.is_retryable() => {
                    outage
                        .wait(&self.name, "waiting in line", e, deadline)
                        .await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            // This step found the waiter still queued: a lock handed over since is held at
            // least until the step's sending plus the claim time.
            let still_queued = sent;
            let give_up = deadline.map_or(wake, |d| d.min(wake));
            tokio::select! {
                biased;
                fence = grant.granted() => {
                    let claim = timing.claim.min(self.ttl.as_duration());
                    let drift = Renewal::drift(Ttl::new(claim).unwrap_or(self.ttl));
                    let now = Instant::now();
                    let until = still_queued + claim.saturating_sub(drift);
                    if until > now + claim / 2 {
                        queued.waiter = None;
                        let guard = self.handed(token, still_queued, fence, until);
                        // Woken by the hand-off itself, which already made this waiter the
                        // holder: the latency is this process's alone.
                        crate::layers::handed_over(now.elapsed());
                        return Ok(Some(guard));
                    }
                    // Too little of the claim is left to trust it unconfirmed: the next step
                    // confirms it (or finds it reclaimed, and queues again). The old
                    // registration goes first: dropping it after would remove the new one.
                    drop(grant);
                    grant = watch.expect_grant(&token);
                    woke = Some(now);
                }
                // The grant channel's connection came back: a hand-off may have been missed.
                () = watch.released() => woke = Some(Instant::now()),
                () = tokio::time::sleep_until(give_up) => {
                    woke = Some(Instant::now());
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        let sent = Instant::now();
                        return match self.backend.leave_queue(&self.name, &waiter, true).await {
                            Ok(Leave::Kept { fence }) => {
                                queued.waiter = None;
                                Ok(Some(self.guard(token, sent, fence, None)))
                            }
                            Ok(_) => {
                                queued.waiter = None;
                                Ok(None)
                            }
                            // `queued` leaves in the background.
                            Err(_) => Ok(None),
                        };
                    }
                }
            }
        }
    }

    /// A watch on this lock's hand-offs, if an earlier wait made one.
    fn kept_hand_offs(&self) -> Option<Watch> {
        let kept = self
            .hand_offs
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        kept.as_ref().map(Watch::clone)
    }

    /// Keeps `watch` for the next waits (unless another wait kept one first).
    fn keep_hand_offs(&self, watch: &Watch) {
        let mut kept = self
            .hand_offs
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if kept.is_none() {
            *kept = Some(watch.clone());
        }
    }

    /// The guard of a lock the queue handed over: held until `until` unless its first
    /// renewal, sent halfway through that time, confirms it for longer.
    fn handed(&self, token: Token, since: Instant, fence: u64, until: Instant) -> LockGuard {
        self.start(Held {
            token,
            sent: since,
            fence: Some(fence),
            queue: None,
            handed_until: Some(until),
        })
    }

    /// One acquire for `token`, fenced when the backend can. Cancel safe: the request runs in
    /// its own task, and an acquisition nobody is left to receive is released.
    async fn attempt(&self, token: &Token) -> Result<FencedAcquire> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::new(
                ErrorKind::Config,
                "waiting for a lock and renewing it need a tokio runtime",
            )
        })?;
        let (tx, rx) = oneshot::channel();
        let backend = self.backend.clone();
        let pending_token = token.clone();
        let (name, token, ttl) = (self.name.clone(), token.clone(), self.ttl);
        let fenced = backend.capabilities().fencing;
        // A lock this attempt gets is valid at most until then, counted from its sending.
        let valid_until = Instant::now() + ttl.as_duration();
        runtime.spawn(async move {
            let outcome = if fenced {
                backend.try_acquire_fenced(&name, &token, ttl).await
            } else {
                backend
                    .try_acquire(&name, &token, ttl)
                    .await
                    .map(|a| match a {
                        Acquire::Acquired => FencedAcquire::Acquired { fence: 0 },
                        Acquire::Held { remaining } => FencedAcquire::Held { remaining },
                    })
            };
            // The waiter went away (cancelled) before the answer: the lock it got is released,
            // trying again while it is valid (a single try that met a timeout left it held).
            if let Err(Ok(FencedAcquire::Acquired { .. })) = tx.send(outcome) {
                release_retrying(&backend, &name, &token, valid_until).await;
            }
        });
        let mut pending = Pending {
            rx,
            backend: self.backend.clone(),
            name: self.name.clone(),
            token: pending_token,
            valid_until,
        };
        let outcome = (&mut pending.rx)
            .await
            .map_err(|_| Error::new(ErrorKind::Backend, "the backend panicked while acquiring"))?;
        let outcome = outcome?;
        pending.rx.close();
        Ok(match (outcome, fenced) {
            (FencedAcquire::Acquired { .. }, false) => FencedAcquire::Acquired { fence: 0 },
            (outcome, _) => outcome,
        })
    }

    fn guard(
        &self,
        token: Token,
        sent: Instant,
        fence: u64,
        queue: Option<(Watch, crate::notify::Turn)>,
    ) -> LockGuard {
        let fence = self.backend.capabilities().fencing.then_some(fence);
        self.start(Held {
            token,
            sent,
            fence,
            queue,
            handed_until: None,
        })
    }

    fn start(&self, held: Held) -> LockGuard {
        LockGuard::start(
            self.backend.clone(),
            self.name.clone(),
            self.ttl,
            self.renewal,
            held,
        )
    }

    /// The lock's name.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{Lock, LockBackend};
    /// # fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = Lock::new(backend, "reports", Duration::from_secs(30))?;
    /// assert_eq!(lock.name().as_str(), "reports");
    /// # Ok(()) }
    /// ```
    pub fn name(&self) -> &LockName {
        &self.name
    }

    /// The timeout a guard keeps the lock for at a time.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{Lock, LockBackend};
    /// # fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = Lock::new(backend, "reports", Duration::from_secs(30))?;
    /// assert_eq!(lock.ttl().as_millis(), 30_000);
    /// # Ok(()) }
    /// ```
    pub fn ttl(&self) -> Ttl {
        self.ttl
    }

    /// The backend this lock lives on.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{Lock, LockBackend};
    /// # fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = Lock::new(backend.clone(), "reports", Duration::from_secs(30))?;
    /// assert!(Arc::ptr_eq(lock.backend(), &backend));
    /// # Ok(()) }
    /// ```
    pub fn backend(&self) -> &Arc<dyn LockBackend> {
        &self.backend
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("name", &self.name)
            .field("ttl", &self.ttl)
            .field("renewal", &self.renewal)
            .field("recheck", &self.recheck)
            .field("backend", &self.backend)
            .finish()
    }
}

/// An acquire whose answer is awaited: if the waiter goes away (is cancelled) after the answer
/// arrived but before reading it, a lock it acquired is released in the background.
struct Pending {
    rx: oneshot::Receiver<Result<FencedAcquire>>,
    backend: Arc<dyn LockBackend>,
    name: LockName,
    token: Token,
    /// The end of the validity of a lock the acquire got.
    valid_until: Instant,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Ok(Ok(FencedAcquire::Acquired { .. })) = self.rx.try_recv()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let (backend, name, token) =
                (self.backend.clone(), self.name.clone(), self.token.clone());
            let until = self.valid_until;
            runtime.spawn(async move {
                release_retrying(&backend, &name, &token, until).await;
            });
        }
    }
}

/// A waiter in the store's queue: if it goes away before it has a guard (cancelled, timed out
/// or failed), it leaves the queue in the background, and a lock handed to it meanwhile is
/// released and handed on.
struct Queued {
    backend: Arc<dyn LockBackend>,
    name: LockName,
    /// `None` once the waiter has a guard or has left.
    waiter: Option<Waiter>,
}

impl Drop for Queued {
    fn drop(&mut self) {
        let Some(waiter) = self.waiter.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime to leave with: the place lapses after the lease, a hand-off after
            // the claim.
            return;
        };
        let (backend, name) = (self.backend.clone(), self.name.clone());
        runtime.spawn(async move {
            for pause in [10, 100, 1000] {
                match backend.leave_queue(&name, &waiter, false).await {
                    Err(e) if e.is_retryable() => {
                        tokio::time::sleep(Duration::from_millis(pause)).await;
                    }
                    _ => return,
                }
            }
        });
    }
}

/// A waiter's view of an outage of the store: backs off between tries, and says so.
#[derive(Debug, Default)]
struct Outage {
    /// The next pause; zero while the store answers.
    backoff: Duration,
    /// Failed tries in a row.
    failures: u32,
}

impl Outage {
    const FIRST: Duration = Duration::from_millis(50);
    const MAX: Duration = Duration::from_secs(1);

    /// After `error` while `doing`: warns, and sleeps the backoff, or fails with `error` if
    /// `deadline` comes first.
    async fn wait(
        &mut self,
        name: &LockName,
        doing: &str,
        error: Error,
        deadline: Option<Instant>,
    ) -> Result<()> {
        self.failures += 1;
        self.backoff = if self.backoff.is_zero() {
            Self::FIRST
        } else {
            (self.backoff * 2).min(Self::MAX)
        };
        tracing::warn!(
            lock = %name.as_str().escape_debug(),
            failures = self.failures,
            retry_in_ms = u64::try_from(self.backoff.as_millis()).unwrap_or(u64::MAX),
            "{doing} failed, trying again: {error}"
        );
        let wake = Instant::now() + self.backoff;
        match deadline {
            Some(deadline) if deadline <= wake => {
                tokio::time::sleep_until(deadline).await;
                Err(error)
            }
            _ => {
                tokio::time::sleep_until(wake).await;
                Ok(())
            }
        }
    }

    /// The store answered again.
    fn over(&mut self, name: &LockName) {
        if self.failures > 0 {
            tracing::warn!(
                lock = %name.as_str().escape_debug(),
                failures = self.failures,
                "the store answers again"
            );
        }
        *self = Outage::default();
    }
}

/// `future`'s output, or `None` once `deadline` (if any) has passed.
async fn until<F: Future>(deadline: Option<Instant>, future: F) -> Option<F::Output> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, future).await.ok(),
        None => Some(future.await),
    }
}
