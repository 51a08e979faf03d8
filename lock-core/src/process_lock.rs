//! [`ProcessLock`]: the API of `process-lock-node`, in Rust.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::{ForceRelease, LockBackend, LockState, Release};
use crate::error::Result;
use crate::name::LockName;
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
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{LockBackend, ProcessLock};
    /// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = ProcessLock::new(backend, "nightly-report", Duration::from_secs(30))?;
    /// // As process-lock-node: true cleared, false not the owner, null missing.
    /// let cleared: Option<bool> = lock.clear(false).await?.as_option();
    /// # Ok(()) }
    /// ```
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

/// A handle on one named lock, with `process-lock-node`'s calls: [`lock`](ProcessLock::lock)
/// (`true`/`false`, never waits), [`update`](ProcessLock::update), [`clear`](ProcessLock::clear)
/// and [`status`](ProcessLock::status), plus the read-only [`holds`](ProcessLock::holds).
///
/// One handle is one owner: it has its own random [`Token`], and only it (or a clone of it,
/// which is the same owner) can renew or clear the lock it took, unless `clear(true)` forces
/// it. Nothing renews the lock for it: call `update` within the timeout. For a lock that waits,
/// renews itself and tells when it is lost, use [`Lock`](crate::Lock).
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
/// #   async fn is_held_by(&self, _: &LockName, _: &Token) -> Result<bool> { Ok(false) }
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
#[derive(Clone)]
pub struct ProcessLock {
    backend: Arc<dyn LockBackend>,
    name: LockName,
    token: Token,
    ttl: Ttl,
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
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{LockBackend, ProcessLock};
    /// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = ProcessLock::new(backend, "nightly-report", Duration::from_secs(30))?;
    /// assert_eq!(lock.name().as_str(), "nightly-report");
    /// # Ok(()) }
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use lock_core::{LockBackend, ProcessLock};
    /// # fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = ProcessLock::with_secs(backend, "nightly-report", 30)?;
    /// assert_eq!(lock.ttl().as_millis(), 30_000);
    /// # Ok(()) }
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use lock_core::{LockBackend, LockName, ProcessLock, Token, Ttl};
    /// # fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// // Take over a lock known by its token, for example one a crashed run wrote down.
    /// let token = Token::from_string("0123abcd")?;
    /// let lock = ProcessLock::from_parts(backend, LockName::new("nightly-report")?, token, Ttl::from_secs(30)?);
    /// assert_eq!(lock.token().as_str(), "0123abcd");
    /// # Ok(()) }
    /// ```
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
        }
    }

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
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{LockBackend, ProcessLock};
    /// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = ProcessLock::new(backend, "nightly-report", Duration::from_secs(30))?;
    /// if lock.lock().await? {
    ///     // ... the work, calling lock.update() now and then ...
    ///     lock.clear(false).await?;
    /// }
    /// # Ok(()) }
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{LockBackend, ProcessLock};
    /// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = ProcessLock::new(backend, "nightly-report", Duration::from_secs(30))?;
    /// if lock.lock().await? && !lock.update().await? {
    ///     eprintln!("lost the lock: stop");
    /// }
    /// # Ok(()) }
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{LockBackend, ProcessLock};
    /// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = ProcessLock::new(backend, "nightly-report", Duration::from_secs(30))?;
    /// use lock_core::Cleared;
    /// match lock.clear(false).await? {
    ///     Cleared::Cleared => println!("released"),
    ///     Cleared::NotOwner => println!("someone else holds it: left alone"),
    ///     Cleared::Missing => println!("no one held it"),
    ///     _ => {}
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn clear(&self, force: bool) -> Result<Cleared> {
        if force {
            Ok(self.backend.force_release(&self.name).await?.into())
        } else {
            Ok(self.backend.release(&self.name, &self.token).await?.into())
        }
    }

    /// Whether this handle holds the lock now, changing nothing: unlike
    /// [`update`](ProcessLock::update) it does not extend the lock, and unlike
    /// [`lock`](ProcessLock::lock) it never takes it. `false` if the lock is free, expired or
    /// held by another owner. The answer is a snapshot: a lock held now may expire the next
    /// moment if it is not updated.
    ///
    /// # Errors
    ///
    /// As [`lock`](ProcessLock::lock).
    ///
    /// # Cancel safety
    ///
    /// Safe: it changes nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{LockBackend, ProcessLock};
    /// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = ProcessLock::new(backend, "nightly-report", Duration::from_secs(30))?;
    /// if lock.lock().await? {
    ///     assert!(lock.holds().await?);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn holds(&self) -> Result<bool> {
        self.backend.is_held_by(&self.name, &self.token).await
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
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{LockBackend, ProcessLock};
    /// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = ProcessLock::new(backend, "nightly-report", Duration::from_secs(30))?;
    /// println!("{}", lock.status().await?); // "open" or "locked"
    /// # Ok(()) }
    /// ```
    pub async fn status(&self) -> Result<LockState> {
        Ok(self.backend.status(&self.name).await?.state)
    }

    /// The lock's name.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{LockBackend, ProcessLock};
    /// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = ProcessLock::new(backend, "nightly-report", Duration::from_secs(30))?;
    /// assert_eq!(lock.name().as_str(), "nightly-report");
    /// # Ok(()) }
    /// ```
    pub fn name(&self) -> &LockName {
        &self.name
    }

    /// This handle's owner token: the value stored under the name while this handle holds it.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{LockBackend, ProcessLock};
    /// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = ProcessLock::new(backend, "nightly-report", Duration::from_secs(30))?;
    /// // Two handles are two owners.
    /// assert_ne!(lock.token(), ProcessLock::new(lock.backend().clone(), "nightly-report", Duration::from_secs(30))?.token());
    /// # Ok(()) }
    /// ```
    pub fn token(&self) -> &Token {
        &self.token
    }

    /// The timeout a lock taken or renewed by this handle lasts.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{LockBackend, ProcessLock};
    /// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = ProcessLock::new(backend, "nightly-report", Duration::from_secs(30))?;
    /// assert_eq!(lock.ttl().as_duration(), Duration::from_secs(30));
    /// # Ok(()) }
    /// ```
    pub fn ttl(&self) -> Ttl {
        self.ttl
    }

    /// The backend this handle uses.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{LockBackend, ProcessLock};
    /// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
    /// let lock = ProcessLock::new(backend, "nightly-report", Duration::from_secs(30))?;
    /// let same_store = ProcessLock::new(lock.backend().clone(), "other-report", Duration::from_secs(30))?;
    /// # Ok(()) }
    /// ```
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
            .field("backend", &self.backend)
            .finish()
    }
}
