//! [`ProcessLock`]: the API of `process-lock-node`, in Rust.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::backend::{Acquire, FencedAcquire, ForceRelease, LockBackend, LockState, Release};
use crate::error::{Error, ErrorKind, Result};
use crate::guard::{LockGuard, Renewal};
use crate::name::LockName;
use crate::notify::Watch;
use crate::token::Token;
use crate::ttl::Ttl;

/// The outcome of [`ProcessLock::clear`], one variant per value `process-lock-node` documents.
///
/// # Examples
///
/// ```
/// use lock_core::Cleared;
///
/// let as_node: Option<bool> = Cleared::Missing.into();
/// assert_eq!(as_node, None);
/// assert_eq!(Cleared::Cleared.as_option(), Some(true));
/// assert_eq!(Cleared::NotOwner.as_option(), Some(false));
/// ```
#[non_exhaustive]
#[must_use = "the lock may not have been cleared"]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cleared {
    /// The lock was held (by this handle, or by anyone with `force`) and is now free: `true`.
    Cleared,
    /// Another owner holds the lock and `force` was not given; it was left alone: `false`.
    NotOwner,
    /// No one held the lock: `null`.
    Missing,
}

impl Cleared {
    /// The value `process-lock-node`'s `clear` documents: `Some(true)` cleared, `Some(false)`
    /// not the owner, `None` did not exist.
    pub fn as_option(self) -> Option<bool> {
        match self {
            Cleared::Cleared => Some(true),
            Cleared::NotOwner => Some(false),
            Cleared::Missing => None,
        }
    }
}

impl From<Cleared> for Option<bool> {
    fn from(cleared: Cleared) -> Option<bool> {
        cleared.as_option()
    }
}

impl From<Release> for Cleared {
    fn from(release: Release) -> Cleared {
        match release {
            Release::Released | Release::ReleasedWithoutNotice => Cleared::Cleared,
            Release::NotOwner => Cleared::NotOwner,
            Release::Missing => Cleared::Missing,
        }
    }
}

impl From<ForceRelease> for Cleared {
    fn from(release: ForceRelease) -> Cleared {
        match release {
            ForceRelease::Released | ForceRelease::ReleasedWithoutNotice => Cleared::Cleared,
            ForceRelease::Missing => Cleared::Missing,
        }
    }
}

/// A handle on one named lock. One handle is one owner: it has its own random [`Token`], and
/// only it can renew or clear the lock it took (unless `clear(true)` forces it).
///
/// This is `process-lock-node`'s `ProcessLock`, with the same calls and values, and two fixes:
/// every call is one atomic step on the store (the original's `update` and `clear` read then
/// write, and can touch a lock that changed hands in between), and [`lock`](ProcessLock::lock)
/// asks the store every time instead of trusting a cached flag.
///
/// # Examples
///
/// The original's flow: try to lock, refresh while working, clear on exit.
///
/// ```
/// # use std::sync::Arc;
/// # use std::time::Duration;
/// # use async_trait::async_trait;
/// # use lock_core::*;
/// # #[derive(Debug)] struct Free;
/// # #[async_trait] impl LockBackend for Free {
/// #   fn capabilities(&self) -> Capabilities { Capabilities::default() }
/// #   async fn try_acquire(&self, _: &LockName, _: &Token, _: Ttl) -> Result<Acquire> { Ok(Acquire::Acquired) }
/// #   async fn renew(&self, _: &LockName, _: &Token, _: Ttl) -> Result<bool> { Ok(true) }
/// #   async fn release(&self, _: &LockName, _: &Token) -> Result<Release> { Ok(Release::Released) }
/// #   async fn force_release(&self, _: &LockName) -> Result<ForceRelease> { Ok(ForceRelease::Released) }
/// #   async fn status(&self, _: &LockName) -> Result<Status> { Ok(Status::open()) }
/// # }
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<()> {
/// # let backend = Arc::new(Free);
/// let lock = ProcessLock::new(backend, "nightly-report", Duration::from_secs(30))?;
/// if lock.lock().await? {
///     // ... work, calling lock.update().await? at least every 15 seconds ...
///     assert!(lock.update().await?);
///     assert_eq!(lock.clear(false).await?, Cleared::Cleared);
/// } else {
///     // someone else is running it: try again later
/// }
/// # Ok(()) }
/// ```
pub struct ProcessLock {
    backend: Arc<dyn LockBackend>,
    name: LockName,
    token: Token,
    ttl: Ttl,
    renewal: Renewal,
    recheck: Duration,
}

impl ProcessLock {
    /// A handle on the lock `name` with a fresh owner token; a lock it takes lasts `timeout`
    /// unless renewed. Nothing is sent to the store.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for an empty name, a name
    /// over [`LockName::MAX_LEN`] bytes, a zero timeout or one over [`Ttl::MAX_MILLIS`]
    /// milliseconds.
    pub fn new(
        backend: Arc<dyn LockBackend>,
        name: impl AsRef<str>,
        timeout: Duration,
    ) -> Result<Self> {
        let name = LockName::new(name)?;
        let ttl = Ttl::new(timeout)?;
        Ok(Self::from_parts(backend, name, Token::generate()?, ttl))
    }

    /// As [`new`](ProcessLock::new), with the timeout in whole seconds as the original takes it.
    ///
    /// # Errors
    ///
    /// As [`new`](ProcessLock::new).
    pub fn with_secs(
        backend: Arc<dyn LockBackend>,
        name: impl AsRef<str>,
        timeout_secs: u64,
    ) -> Result<Self> {
        let name = LockName::new(name)?;
        let ttl = Ttl::from_secs(timeout_secs)?;
        Ok(Self::from_parts(backend, name, Token::generate()?, ttl))
    }

    /// A handle from already validated parts, for example to act as an owner whose token is
    /// known.
    pub fn from_parts(
        backend: Arc<dyn LockBackend>,
        name: LockName,
        token: Token,
        ttl: Ttl,
    ) -> Self {
        ProcessLock {
            backend,
            name,
            token,
            ttl,
            renewal: Renewal::default(),
            recheck: Self::DEFAULT_RECHECK,
        }
    }

    /// How often, by default, a waiter that is told of releases looks at the lock anyway:
    /// 2 s. See [`with_recheck`](ProcessLock::with_recheck).
    pub const DEFAULT_RECHECK: Duration = Duration::from_secs(2);

    /// The shortest timeout a [`LockGuard`] accepts: 100 ms. A guard renews every third of
    /// the timeout and must hear back within its validity; below this a network round trip or
    /// a scheduling hiccup loses the lock. The seed-style calls ([`lock`](ProcessLock::lock),
    /// [`update`](ProcessLock::update)) accept any timeout.
    pub const MIN_GUARD_TTL: Duration = Duration::from_millis(100);

    /// Tries to take the lock, without waiting: `true` if this handle holds it after the call,
    /// `false` if someone else does. If this handle already held it, its expiry is reset to the
    /// full timeout.
    ///
    /// # Errors
    ///
    /// When the store cannot be reached, answers late or answers something unexpected.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may leave the lock taken; it then expires after the timeout, or
    /// [`clear`](ProcessLock::clear) frees it.
    pub async fn lock(&self) -> Result<bool> {
        let outcome = self
            .backend
            .try_acquire(&self.name, &self.token, self.ttl)
            .await?;
        Ok(outcome.is_acquired())
    }

    /// Renews the lock for the full timeout: `true` if this handle held it and still does,
    /// `false` if it did not (never taken, cleared, or expired and perhaps taken by another).
    ///
    /// # Errors
    ///
    /// As [`lock`](ProcessLock::lock).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may or may not have renewed the lock.
    pub async fn update(&self) -> Result<bool> {
        self.backend.renew(&self.name, &self.token, self.ttl).await
    }

    /// Frees the lock. Without `force`, only if this handle holds it; with `force`, whoever does.
    /// The three outcomes are the original's `true`, `false` and `null`.
    ///
    /// # Errors
    ///
    /// As [`lock`](ProcessLock::lock).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may or may not have freed the lock.
    pub async fn clear(&self, force: bool) -> Result<Cleared> {
        if force {
            Ok(self.backend.force_release(&self.name).await?.into())
        } else {
            Ok(self.backend.release(&self.name, &self.token).await?.into())
        }
    }

    /// Whether anyone holds the lock: [`LockState::Open`] or [`LockState::Locked`].
    ///
    /// # Errors
    ///
    /// As [`lock`](ProcessLock::lock).
    ///
    /// # Cancel safety
    ///
    /// Safe: it changes nothing.
    pub async fn status(&self) -> Result<LockState> {
        Ok(self.backend.status(&self.name).await?.state)
    }

    /// How the guards of this handle renew their lock (default: every third of the timeout).
    pub fn with_renewal(mut self, renewal: Renewal) -> Self {
        self.renewal = renewal;
        self
    }

    /// How the guards of this handle renew their lock.
    pub fn renewal(&self) -> Renewal {
        self.renewal
    }

    /// How often a waiter that is told of releases ([`Capabilities::notify`]) looks at the
    /// lock anyway, in case a release was not announced: by a process that knows nothing of
    /// notification (`process-lock-node`, a `DEL` by hand), by a user the store forbids to
    /// announce ([`Release::ReleasedWithoutNotice`]), or while a notification connection died
    /// unnoticed. It bounds how long such a release goes unseen. Default
    /// [`DEFAULT_RECHECK`](ProcessLock::DEFAULT_RECHECK); each look is one request per waiting
    /// process.
    ///
    /// [`Capabilities::notify`]: crate::Capabilities::notify
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{LockBackend, ProcessLock};
    /// # fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = ProcessLock::new(backend, "jobs", Duration::from_secs(30))?
    ///     .with_recheck(Duration::from_millis(500));
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn with_recheck(mut self, every: Duration) -> Self {
        self.recheck = every.max(Duration::from_millis(1));
        self
    }

    /// How often a notified waiter looks at the lock anyway (see
    /// [`with_recheck`](ProcessLock::with_recheck)).
    pub fn recheck(&self) -> Duration {
        self.recheck
    }

    /// Fails for a timeout too short for a guard to renew (see
    /// [`MIN_GUARD_TTL`](ProcessLock::MIN_GUARD_TTL)).
    fn check_guard_ttl(&self) -> Result<()> {
        if self.ttl.as_duration() < Self::MIN_GUARD_TTL {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "a timeout of {}ms is too short for a guard to renew the lock in time: \
                     use at least {}ms",
                    self.ttl.as_millis(),
                    Self::MIN_GUARD_TTL.as_millis()
                ),
            ));
        }
        Ok(())
    }

    /// Acquires the lock, waiting as long as it takes, and returns a [`LockGuard`] that keeps
    /// it renewed and reports its loss.
    ///
    /// Each guard is a new owner with a new token (not this handle's), and gets a fencing token
    /// when the backend offers them. While the lock is held by someone else, the waiter sleeps
    /// until a release is announced ([`LockBackend::watch`]), the holder's expiry comes, its
    /// turn among this process's waiters of the same lock comes (first come, first served), or
    /// the [recheck](ProcessLock::with_recheck) interval passes. On a backend without
    /// notification it looks again every 50 ms at most.
    ///
    /// Waiting goes on through outages: a connection error or a timeout of the store is
    /// reported as a `tracing` warning (target `lock_core`) and the waiter tries again, with a
    /// backoff from 50 ms to 1 s, until it gets the lock (or its deadline passes, for
    /// [`acquire_timeout`](ProcessLock::acquire_timeout)).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future at any point is safe and never leaves a lock behind: if an acquire
    /// was in flight and succeeds after the drop, it is released in the background.
    ///
    /// # Errors
    ///
    /// When the store fails in a way trying again cannot fix (see [`Error::is_retryable`]): a
    /// key of another type, a permission the store refuses, a reply that makes no sense;
    /// [`ErrorKind::InvalidInput`] for a timeout below
    /// [`MIN_GUARD_TTL`](ProcessLock::MIN_GUARD_TTL). Must run inside a tokio runtime, which
    /// the renewal task is spawned on.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{LockBackend, ProcessLock};
    /// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = ProcessLock::new(backend, "billing-export", Duration::from_secs(30))?;
    /// let guard = lock.acquire().await?;
    /// println!("fencing token {:?}", guard.fence());
    /// guard.release().await?;
    /// # Ok(()) }
    /// ```
    pub async fn acquire(&self) -> Result<LockGuard> {
        let guard = self.acquire_until(None).await?;
        Ok(guard.expect("waiting without a deadline ends only with the lock"))
    }

    /// As [`acquire`](ProcessLock::acquire), giving up after `timeout`: `Ok(None)` if the lock
    /// was held by others all that time, or the last error if the store was failing when the
    /// time ran out. Timing out is this `Ok(None)`; cancelling is dropping the future.
    ///
    /// # Cancel safety
    ///
    /// As [`acquire`](ProcessLock::acquire).
    ///
    /// # Errors
    ///
    /// As [`acquire`](ProcessLock::acquire).
    pub async fn acquire_timeout(&self, timeout: Duration) -> Result<Option<LockGuard>> {
        self.acquire_until(Some(Instant::now() + timeout)).await
    }

    /// Tries once: a [`LockGuard`] if the lock was free, `Ok(None)` if someone else holds it.
    ///
    /// # Cancel safety
    ///
    /// As [`acquire`](ProcessLock::acquire).
    ///
    /// # Errors
    ///
    /// As [`acquire`](ProcessLock::acquire).
    pub async fn try_acquire(&self) -> Result<Option<LockGuard>> {
        self.check_guard_ttl()?;
        let token = Token::generate()?;
        let sent = Instant::now();
        match self.attempt(&token).await? {
            FencedAcquire::Held { .. } => Ok(None),
            FencedAcquire::Acquired { fence } => Ok(Some(self.guard(token, sent, fence, None))),
        }
    }

    async fn acquire_until(&self, deadline: Option<Instant>) -> Result<Option<LockGuard>> {
        /// How often a waiter on a backend without notification looks again, at most.
        const POLL: Duration = Duration::from_millis(50);
        self.check_guard_ttl()?;
        let token = Token::generate()?;
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
            Some(watch) => match until(deadline, watch.turn()).await {
                Some(turn) => Some(turn),
                None => return Ok(None),
            },
            None => None,
        };
        loop {
            let sent = Instant::now();
            let remaining = match self.attempt(&token).await {
                Ok(FencedAcquire::Acquired { fence }) => {
                    outage.over(&self.name);
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
        }
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
            if let Err(Ok(FencedAcquire::Acquired { .. })) = tx.send(outcome) {
                let _ = backend.release(&name, &token).await;
            }
        });
        let mut pending = Pending {
            rx,
            backend: self.backend.clone(),
            name: self.name.clone(),
            token: pending_token,
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
        LockGuard::start(self, token, sent, fence, queue)
    }

    /// The lock's name.
    pub fn name(&self) -> &LockName {
        &self.name
    }

    /// This handle's owner token: the value stored under the name while this handle holds it.
    pub fn token(&self) -> &Token {
        &self.token
    }

    /// The timeout a lock taken or renewed by this handle lasts.
    pub fn ttl(&self) -> Ttl {
        self.ttl
    }

    /// The backend this handle uses.
    pub fn backend(&self) -> &Arc<dyn LockBackend> {
        &self.backend
    }
}

impl fmt::Debug for ProcessLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessLock")
            .field("name", &self.name)
            .field("token", &self.token)
            .field("ttl", &self.ttl)
            .field("renewal", &self.renewal)
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
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Ok(Ok(FencedAcquire::Acquired { .. })) = self.rx.try_recv()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let (backend, name, token) =
                (self.backend.clone(), self.name.clone(), self.token.clone());
            runtime.spawn(async move {
                let _ = backend.release(&name, &token).await;
            });
        }
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
async fn until<F: std::future::Future>(deadline: Option<Instant>, future: F) -> Option<F::Output> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, future).await.ok(),
        None => Some(future.await),
    }
}
