//! The [`LockBackend`] trait: the primitives a store must perform atomically.
//!
//! Everything else (the [`ProcessLock`](crate::ProcessLock) and [`Lock`](crate::Lock) handles,
//! waiting, renewal) is written once on top of these primitives. Each primitive is one atomic step,
//! and on a networked store one round trip.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{Error, ErrorKind, Result};
use crate::name::LockName;
use crate::notify::Watch;
use crate::queue::{Leave, QueueStep, Waiter};
use crate::token::Token;
use crate::ttl::Ttl;

/// What a backend offers beyond the required primitives.
///
/// Every field is `false` by default, so anything a backend does not set counts as unsupported;
/// build one with `..Default::default()` so that new fields do not break your backend.
///
/// # Examples
///
/// ```
/// use lock_core::Capabilities;
///
/// let caps = Capabilities { remaining_ttl: true, ..Default::default() };
/// assert!(caps.remaining_ttl);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// The store reports how long a held lock has left: a failed
    /// [`try_acquire`](LockBackend::try_acquire) returns it in [`Acquire::Held`], and
    /// [`status`](LockBackend::status) in [`Status::remaining`].
    pub remaining_ttl: bool,
    /// Waiters can be told of releases: [`watch`](LockBackend::watch) works, and every
    /// release (owned or forced) notifies the watchers of that name, in this process and in
    /// every other one on the same store. Without it, waiting falls back to polling.
    pub notify: bool,
    /// [`try_acquire_fenced`](LockBackend::try_acquire_fenced) works: every acquisition of a
    /// name yields a fencing token greater than every earlier one for that name.
    pub fencing: bool,
    /// Waiters queue in the store, first come first served across processes, and a release
    /// hands the lock straight to the first of them: [`queue_step`](LockBackend::queue_step),
    /// [`leave_queue`](LockBackend::leave_queue) and [`queue_watch`](LockBackend::queue_watch)
    /// work, and a try-once never takes a lock ahead of queued waiters. Implies `fencing`.
    pub queue: bool,
    /// [`raise_fence`](LockBackend::raise_fence) works: a holder can move the fencing counter
    /// of its lock forward, which a [`Quorum`](crate::quorum::Quorum) of backends needs to keep
    /// its tokens increasing. Implies `fencing`.
    pub raise_fence: bool,
}

/// The outcome of [`LockBackend::try_acquire_fenced`].
///
/// # Examples
///
/// ```
/// # use std::{sync::Arc, time::Duration};
/// # use lock_core::{LockBackend, LockName, Token, Ttl};
/// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
/// let (name, token, ttl) = (LockName::new("jobs")?, Token::generate()?, Ttl::from_secs(30)?);
/// use lock_core::FencedAcquire;
/// match backend.try_acquire_fenced(&name, &token, ttl).await? {
///     FencedAcquire::Acquired { fence } => println!("held, fencing token {fence}"),
///     FencedAcquire::Held { remaining } => println!("held by another for {remaining:?}"),
///     _ => {}
/// }
/// # Ok(()) }
/// ```
#[non_exhaustive]
#[must_use = "the lock may not have been acquired"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FencedAcquire {
    /// The caller's token now holds the lock with the full timeout, and this acquisition's
    /// fencing token is `fence`: greater than that of every earlier acquisition of the name.
    Acquired {
        /// The fencing token: at least 1 (on Redis, near the server's clock in microseconds).
        fence: u64,
    },
    /// Another token holds the lock.
    Held {
        /// As in [`Acquire::Held`].
        remaining: Option<Duration>,
    },
}

/// The outcome of [`LockBackend::try_acquire`].
///
/// # Examples
///
/// ```
/// # use std::{sync::Arc, time::Duration};
/// # use lock_core::{LockBackend, LockName, Token, Ttl};
/// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
/// let (name, token, ttl) = (LockName::new("jobs")?, Token::generate()?, Ttl::from_secs(30)?);
/// use lock_core::Acquire;
/// match backend.try_acquire(&name, &token, ttl).await? {
///     Acquire::Acquired => println!("held"),
///     Acquire::Held { remaining } => println!("held by another for {remaining:?}"),
///     _ => {}
/// }
/// # Ok(()) }
/// ```
#[non_exhaustive]
#[must_use = "the lock may not have been acquired"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquire {
    /// The caller's token now holds the lock with the full timeout: it was free, or the caller
    /// already held it (its expiry was reset).
    Acquired,
    /// Another token holds the lock.
    Held {
        /// How long the holder's lock has left, when the backend knows
        /// ([`Capabilities::remaining_ttl`]); `None` also for a key with no expiry.
        remaining: Option<Duration>,
    },
}

impl Release {
    /// Whether the caller's lock was freed (with or without notice to the waiters).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{LockBackend, LockName, Token, Ttl};
    /// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let (name, token, ttl) = (LockName::new("jobs")?, Token::generate()?, Ttl::from_secs(30)?);
    /// if backend.try_acquire(&name, &token, ttl).await?.is_acquired() {
    ///     assert!(backend.release(&name, &token).await?.is_released());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn is_released(self) -> bool {
        matches!(self, Release::Released | Release::ReleasedWithoutNotice)
    }
}

impl ForceRelease {
    /// Whether a lock was freed (with or without notice to the waiters).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{LockBackend, LockName, Token, Ttl};
    /// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let (name, token, ttl) = (LockName::new("jobs")?, Token::generate()?, Ttl::from_secs(30)?);
    /// if backend.try_acquire(&name, &token, ttl).await?.is_acquired() {
    ///     assert!(backend.release(&name, &token).await?.is_released());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn is_released(self) -> bool {
        matches!(
            self,
            ForceRelease::Released | ForceRelease::ReleasedWithoutNotice
        )
    }
}

impl Acquire {
    /// Whether the lock was acquired.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{LockBackend, LockName, Token, Ttl};
    /// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let (name, token, ttl) = (LockName::new("jobs")?, Token::generate()?, Ttl::from_secs(30)?);
    /// let taken = backend.try_acquire(&name, &token, ttl).await?.is_acquired();
    /// # Ok(()) }
    /// ```
    pub fn is_acquired(self) -> bool {
        matches!(self, Acquire::Acquired)
    }
}

/// The outcome of [`LockBackend::release`].
///
/// # Examples
///
/// ```
/// # use std::{sync::Arc, time::Duration};
/// # use lock_core::{LockBackend, LockName, Token, Ttl};
/// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
/// let (name, token, ttl) = (LockName::new("jobs")?, Token::generate()?, Ttl::from_secs(30)?);
/// use lock_core::Release;
/// match backend.release(&name, &token).await? {
///     Release::Released | Release::ReleasedWithoutNotice => println!("released"),
///     Release::NotOwner => println!("someone else holds it: left alone"),
///     Release::Missing => println!("it had expired"),
///     _ => {}
/// }
/// # Ok(()) }
/// ```
#[non_exhaustive]
#[must_use = "the lock may not have been released"]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Release {
    /// The caller held the lock, and it is now free; waiters were told.
    Released,
    /// The caller held the lock, and it is now free (or handed to the first queued waiter), but
    /// the waiters in other processes could not be told (for Redis: the user may not
    /// `PUBLISH`). A queued waiter finds the lock handed to it at its next heartbeat (see
    /// [`QueueTiming`](crate::queue::QueueTiming)); other waiters notice within their fallback
    /// interval (see [`Lock::with_recheck`](crate::Lock::with_recheck)), or at the lock's
    /// expiry.
    ReleasedWithoutNotice,
    /// Another token holds the lock; it was left alone.
    NotOwner,
    /// No one held the lock (it was never taken, was released, or expired).
    Missing,
}

/// The outcome of [`LockBackend::force_release`].
///
/// # Examples
///
/// ```
/// # use std::sync::Arc;
/// # use lock_core::{LockBackend, LockName};
/// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
/// let forced = backend.force_release(&LockName::new("jobs")?).await?;
/// if !forced.is_released() {
///     println!("no one held it");
/// }
/// # Ok(()) }
/// ```
#[non_exhaustive]
#[must_use = "the lock may not have been released"]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ForceRelease {
    /// The lock was held, by anyone, and is now free; waiters were told.
    Released,
    /// As [`Release::ReleasedWithoutNotice`]: freed, but waiters could not be told.
    ReleasedWithoutNotice,
    /// No one held the lock.
    Missing,
}

/// Whether a lock is held.
///
/// `Display` writes exactly `open` or `locked`, the strings `process-lock-node`'s `status`
/// returns.
///
/// # Examples
///
/// ```
/// use lock_core::LockState;
///
/// assert_eq!(LockState::Open.to_string(), "open");
/// assert_eq!("locked".parse::<LockState>(), Ok(LockState::Locked));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LockState {
    /// No one holds the lock.
    Open,
    /// Someone holds the lock.
    Locked,
}

impl LockState {
    /// `"open"` or `"locked"`.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::LockState;
    ///
    /// assert_eq!(LockState::Locked.as_str(), "locked");
    /// assert_eq!("open".parse::<LockState>(), Ok(LockState::Open));
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            LockState::Open => "open",
            LockState::Locked => "locked",
        }
    }
}

impl fmt::Display for LockState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a [`LockState`] from anything but `open` or `locked`.
///
/// # Examples
///
/// ```
/// use lock_core::LockState;
///
/// let err = "closed".parse::<LockState>().unwrap_err();
/// assert_eq!(err.to_string(), "a lock state is \"open\" or \"locked\"");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseLockStateError(());

impl fmt::Display for ParseLockStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a lock state is \"open\" or \"locked\"")
    }
}

impl std::error::Error for ParseLockStateError {}

impl std::str::FromStr for LockState {
    type Err = ParseLockStateError;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "open" => Ok(LockState::Open),
            "locked" => Ok(LockState::Locked),
            _ => Err(ParseLockStateError(())),
        }
    }
}

/// The outcome of [`LockBackend::status`]: whether the lock is held and, when the backend knows,
/// for how much longer.
///
/// # Examples
///
/// ```
/// # use std::sync::Arc;
/// # use lock_core::{LockBackend, LockName, LockState};
/// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
/// let status = backend.status(&LockName::new("jobs")?).await?;
/// if status.state == LockState::Locked {
///     println!("locked, {:?} left", status.remaining);
/// }
/// # Ok(()) }
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Whether the lock is held.
    pub state: LockState,
    /// How long the holder's lock has left, for a held lock on a backend with
    /// [`Capabilities::remaining_ttl`]; `None` otherwise (also for a key with no expiry).
    pub remaining: Option<Duration>,
}

impl Status {
    /// A lock no one holds.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::{LockState, Status};
    ///
    /// assert_eq!(Status::open().state, LockState::Open);
    /// assert_eq!(Status::open().remaining, None);
    /// ```
    pub fn open() -> Self {
        Status {
            state: LockState::Open,
            remaining: None,
        }
    }

    /// A held lock with `remaining` time to live, if known.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use lock_core::{LockState, Status};
    ///
    /// let status = Status::locked(Some(Duration::from_secs(3)));
    /// assert_eq!(status.state, LockState::Locked);
    /// ```
    pub fn locked(remaining: Option<Duration>) -> Self {
        Status {
            state: LockState::Locked,
            remaining,
        }
    }
}

/// A store that can hold locks: the primitives each backend implements.
///
/// Each method is one atomic step on the store (one round trip on a networked one), so that no
/// lock can expire, or change hands, between a check and an action. Expected outcomes are values;
/// errors mean the store could not answer (see [`crate::Error`]).
///
/// Implementations must behave exactly as Redis does; the `conformance` crate's suite checks
/// that, and every backend in this workspace runs it. Names, tokens and timeouts arrive already
/// validated.
///
/// # Cancel safety
///
/// Dropping a returned future before it completes may or may not have applied the operation on
/// the store, as with any network request; it never applies it partially.
///
/// # Examples
///
/// ```
/// # use std::{sync::Arc, time::Duration};
/// # use lock_core::{LockBackend, LockName, Token, Ttl};
/// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
/// let (name, token, ttl) = (LockName::new("jobs")?, Token::generate()?, Ttl::from_secs(30)?);
/// // What `ProcessLock` and `Lock` do, one call each.
/// if backend.try_acquire(&name, &token, ttl).await?.is_acquired() {
///     assert!(backend.renew(&name, &token, ttl).await?);
///     assert!(backend.release(&name, &token).await?.is_released());
/// }
/// # Ok(()) }
/// ```
#[async_trait]
pub trait LockBackend: Send + Sync + fmt::Debug + 'static {
    /// What this backend offers beyond the required primitives.
    fn capabilities(&self) -> Capabilities;

    /// Takes the lock `name` for `token` for `ttl` if no one holds it; if `token` already holds
    /// it, resets its expiry to `ttl` from now. On Redis, the key's value becomes `token`.
    ///
    /// # Errors
    ///
    /// When the store cannot be reached, answers late or answers something unexpected.
    async fn try_acquire(&self, name: &LockName, token: &Token, ttl: Ttl) -> Result<Acquire>;

    /// Resets the expiry of `name` to `ttl` from now if, and only if, `token` holds it. Returns
    /// whether it did; `false` if the lock is free, expired or held by another token.
    ///
    /// # Errors
    ///
    /// As [`try_acquire`](LockBackend::try_acquire).
    async fn renew(&self, name: &LockName, token: &Token, ttl: Ttl) -> Result<bool>;

    /// Frees `name` if, and only if, `token` holds it.
    ///
    /// # Errors
    ///
    /// As [`try_acquire`](LockBackend::try_acquire).
    async fn release(&self, name: &LockName, token: &Token) -> Result<Release>;

    /// Frees `name` whoever holds it.
    ///
    /// # Errors
    ///
    /// As [`try_acquire`](LockBackend::try_acquire).
    async fn force_release(&self, name: &LockName) -> Result<ForceRelease>;

    /// Whether `name` is held, and for how long when the backend knows.
    ///
    /// # Errors
    ///
    /// As [`try_acquire`](LockBackend::try_acquire).
    async fn status(&self, name: &LockName) -> Result<Status>;

    /// Whether `token` holds `name` now, changing nothing: no expiry is reset, nothing is
    /// written. The answer is a snapshot; a lock held now may expire the next moment.
    ///
    /// # Errors
    ///
    /// As [`try_acquire`](LockBackend::try_acquire).
    async fn is_held_by(&self, name: &LockName, token: &Token) -> Result<bool>;

    /// As [`try_acquire`](LockBackend::try_acquire), in the same single atomic step, and on
    /// success also yields a fencing token: a number strictly greater than the one of every
    /// earlier successful `try_acquire_fenced` of `name` on this store, from any process. A
    /// holder passes it to the storage it writes to, which rejects a smaller one than it has
    /// seen, so a holder that lost the lock without knowing (paused, partitioned) cannot
    /// overwrite its successor's work.
    ///
    /// Tokens never go back, not even after the store lost its counter (a restart without
    /// persistence): on Redis a token is the larger of the last one plus 1 and the server's
    /// clock in microseconds (see [`redis::scripts`](crate::redis::scripts)), so the counter itself may
    /// expire once the lock is long gone.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) unless the backend declares
    /// [`Capabilities::fencing`]; otherwise as [`try_acquire`](LockBackend::try_acquire).
    async fn try_acquire_fenced(
        &self,
        name: &LockName,
        token: &Token,
        ttl: Ttl,
    ) -> Result<FencedAcquire> {
        let _ = (name, token, ttl);
        Err(unsupported(self, "fencing tokens"))
    }

    /// Starts watching `name` for releases. Once this returns, every later release of `name`
    /// (by [`release`](LockBackend::release) or [`force_release`](LockBackend::force_release),
    /// in any process) wakes [`Watch::released`]; so a waiter watches first and then tries,
    /// and cannot miss the release it waits for. Expiry does not notify: a waiter also sleeps
    /// until the holder's remaining time runs out.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) unless the backend declares
    /// [`Capabilities::notify`]; otherwise when the subscription cannot be made.
    async fn watch(&self, name: &LockName) -> Result<Watch> {
        let _ = name;
        Err(unsupported(self, "notification of releases"))
    }

    /// One step of `waiter` in the queue of `name`, all in one atomic step: it joins the queue
    /// at the tail (or, already queued, keeps its place and renews its lease for
    /// [`timing.lease`](crate::queue::QueueTiming::lease)); it takes the lock if the lock is
    /// free and no live waiter is ahead; it confirms a lock that was handed to it meanwhile. A
    /// waiter sends one every [`timing.heartbeat`](crate::queue::QueueTiming::heartbeat) and,
    /// when first, once the holder's time has run out.
    ///
    /// Waiters whose lease ran out are dropped from the queue, a few per call. A lock that
    /// frees up while waiters queue (released, forced, expired) is handed to the first live
    /// one, for its claim time, with the next fencing token, and its process is told through
    /// [`queue_watch`](LockBackend::queue_watch).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) unless the backend declares
    /// [`Capabilities::queue`]; otherwise as [`try_acquire`](LockBackend::try_acquire).
    async fn queue_step(&self, name: &LockName, waiter: &Waiter) -> Result<QueueStep> {
        let _ = (name, waiter);
        Err(unsupported(self, "a waiter queue"))
    }

    /// Takes `waiter` out of the queue of `name`. If the lock was handed to it meanwhile, keeps
    /// it for the waiter's full timeout when `keep` is true, and otherwise releases it and
    /// hands it on, so that a waiter that gives up never leaves a lock behind.
    ///
    /// # Errors
    ///
    /// As [`queue_step`](LockBackend::queue_step).
    async fn leave_queue(&self, name: &LockName, waiter: &Waiter, keep: bool) -> Result<Leave> {
        let _ = (name, waiter, keep);
        Err(unsupported(self, "a waiter queue"))
    }

    /// Starts listening for hand-offs of `name` to this backend's waiters: once this returns,
    /// a lock handed to a waiter registered with [`Watch::expect_grant`] reaches it. The
    /// subscription outlives the watch for a while, so that a process that waits again soon
    /// does not subscribe again.
    ///
    /// # Errors
    ///
    /// As [`queue_step`](LockBackend::queue_step), and when the subscription cannot be made.
    async fn queue_watch(&self, name: &LockName) -> Result<Watch> {
        let _ = name;
        Err(unsupported(self, "a waiter queue"))
    }

    /// Raises the fencing counter of `name` to at least `floor` if, and only if, `token` holds
    /// the lock, in one atomic step; returns whether it holds it. Every later
    /// [`try_acquire_fenced`](LockBackend::try_acquire_fenced) of `name` on this store then
    /// yields a token greater than `floor`. The lock itself, its expiry and its waiters are
    /// left as they are; a counter already at or past `floor` is left alone.
    ///
    /// A [`Quorum`](crate::quorum::Quorum) calls it after an acquisition, so that a majority
    /// of its nodes count past the token it handed out (see there for the argument).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) unless the backend declares
    /// [`Capabilities::raise_fence`]; otherwise as [`try_acquire`](LockBackend::try_acquire).
    async fn raise_fence(&self, name: &LockName, token: &Token, floor: u64) -> Result<bool> {
        let _ = (name, token, floor);
        Err(unsupported(self, "raising a fencing counter"))
    }
}

fn unsupported(backend: &(impl LockBackend + ?Sized), what: &str) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        format!("{backend:?} does not offer {what}"),
    )
}

/// Implements [`LockBackend`] for a type by handing every call to another backend, the future
/// of the other's answer passed on as is: no future of its own to box for each call (as an
/// `async fn` under [`async_trait`] would), which on the uncontended path costs an allocation
/// per operation and per level.
///
/// ```text
/// lock_core::__forward_lock_backend!([B: LockBackend + ?Sized] Arc<B> => deref);
/// lock_core::__forward_lock_backend!([] MyBackend => field inner);
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! __forward_lock_backend {
    (@to $s:ident deref) => { (**$s) };
    (@to $s:ident field $field:ident) => { ($s.$field) };
    // One operation: its borrowed arguments (each with a lifetime of its own, as async_trait
    // writes them), then those passed by value.
    (@fn [$($to:tt)+] $name:ident($($arg:ident: &$lt:lifetime $ty:ty),*; $($val:ident: $vty:ty),*) -> $out:ty) => {
        fn $name<'l0, $($lt,)* 'at>(
            &'l0 self,
            $($arg: &$lt $ty,)*
            $($val: $vty,)*
        ) -> ::core::pin::Pin<::std::boxed::Box<
            dyn ::core::future::Future<Output = $crate::Result<$out>> + ::core::marker::Send + 'at,
        >>
        where
            'l0: 'at,
            $($lt: 'at,)*
            Self: 'at,
        {
            $crate::__forward_lock_backend!(@to self $($to)+).$name($($arg,)* $($val),*)
        }
    };
    ([$($generics:tt)*] $ty:ty => $($to:tt)+) => {
        impl<$($generics)*> $crate::LockBackend for $ty {
            fn capabilities(&self) -> $crate::Capabilities {
                $crate::__forward_lock_backend!(@to self $($to)+).capabilities()
            }

            $crate::__forward_lock_backend!(@fn [$($to)+]
                try_acquire(name: &'l1 $crate::LockName, token: &'l2 $crate::Token; ttl: $crate::Ttl)
                    -> $crate::Acquire);
            $crate::__forward_lock_backend!(@fn [$($to)+]
                renew(name: &'l1 $crate::LockName, token: &'l2 $crate::Token; ttl: $crate::Ttl)
                    -> bool);
            $crate::__forward_lock_backend!(@fn [$($to)+]
                release(name: &'l1 $crate::LockName, token: &'l2 $crate::Token;) -> $crate::Release);
            $crate::__forward_lock_backend!(@fn [$($to)+]
                force_release(name: &'l1 $crate::LockName;) -> $crate::ForceRelease);
            $crate::__forward_lock_backend!(@fn [$($to)+]
                status(name: &'l1 $crate::LockName;) -> $crate::Status);
            $crate::__forward_lock_backend!(@fn [$($to)+]
                is_held_by(name: &'l1 $crate::LockName, token: &'l2 $crate::Token;) -> bool);
            $crate::__forward_lock_backend!(@fn [$($to)+]
                try_acquire_fenced(
                    name: &'l1 $crate::LockName, token: &'l2 $crate::Token; ttl: $crate::Ttl
                ) -> $crate::FencedAcquire);
            $crate::__forward_lock_backend!(@fn [$($to)+]
                watch(name: &'l1 $crate::LockName;) -> $crate::Watch);
            $crate::__forward_lock_backend!(@fn [$($to)+]
                queue_step(name: &'l1 $crate::LockName, waiter: &'l2 $crate::queue::Waiter;)
                    -> $crate::queue::QueueStep);
            $crate::__forward_lock_backend!(@fn [$($to)+]
                leave_queue(
                    name: &'l1 $crate::LockName, waiter: &'l2 $crate::queue::Waiter; keep: bool
                ) -> $crate::queue::Leave);
            $crate::__forward_lock_backend!(@fn [$($to)+]
                queue_watch(name: &'l1 $crate::LockName;) -> $crate::Watch);
            $crate::__forward_lock_backend!(@fn [$($to)+]
                raise_fence(name: &'l1 $crate::LockName, token: &'l2 $crate::Token; floor: u64)
                    -> bool);
        }
    };
}

// A shared backend is a backend, so wrappers and `Arc<dyn LockBackend>` pass through unchanged.
crate::__forward_lock_backend!([B: LockBackend + ?Sized] Arc<B> => deref);
