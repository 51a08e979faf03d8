//! Layers: cross-cutting behaviour (tracing, metrics, and whatever a user writes) wrapped around
//! any [`LockBackend`] without rewriting it, as opendal's `Layer`/`LayeredAccess` and tower's
//! `Layer` do.
//!
//! This module is for **layer authors**. Users only apply layers, with
//! [`LockBackendExt::layer`]:
//!
//! ```
//! use std::sync::Arc;
//!
//! use lock_core::layer::LockBackendExt;
//! use lock_core::layers::TracingLayer;
//! use lock_core::{LockBackend, ProcessLock};
//! # use lock_core::{Acquire, Capabilities, ForceRelease, LockName, Release, Result, Status, Token, Ttl};
//! # #[derive(Debug)] struct MyStore;
//! # #[lock_core::async_trait] impl LockBackend for MyStore {
//! #   fn capabilities(&self) -> Capabilities { Capabilities::default() }
//! #   async fn try_acquire(&self, _: &LockName, _: &Token, _: Ttl) -> Result<Acquire> { Ok(Acquire::Acquired) }
//! #   async fn renew(&self, _: &LockName, _: &Token, _: Ttl) -> Result<bool> { Ok(true) }
//! #   async fn release(&self, _: &LockName, _: &Token) -> Result<Release> { Ok(Release::Released) }
//! #   async fn force_release(&self, _: &LockName) -> Result<ForceRelease> { Ok(ForceRelease::Missing) }
//! #   async fn status(&self, _: &LockName) -> Result<Status> { Ok(Status::open()) }
//! #   async fn is_held_by(&self, _: &LockName, _: &Token) -> Result<bool> { Ok(false) }
//! # }
//!
//! let backend = MyStore.layer(TracingLayer::new());
//! let lock = ProcessLock::with_secs(Arc::new(backend), "nightly-report", 30)?;
//! # Ok::<(), lock_core::Error>(())
//! ```
//!
//! # Writing a layer
//!
//! A layer is two types:
//!
//! - the **layer** itself, implementing [`Layer`]: its configuration, and a
//!   [`layer`](Layer::layer) method that wraps a backend;
//! - the **wrapped backend** it returns, implementing [`LayeredBackend`]: it names its
//!   [`inner`](LayeredBackend::inner) backend and overrides only the operations it cares about.
//!   Every other operation, including any added to [`LockBackend`] later, passes through to the
//!   inner backend unchanged, and a blanket implementation makes it a [`LockBackend`].
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//!
//! use lock_core::layer::{Layer, LayeredBackend, LockBackendExt};
//! use lock_core::{Acquire, LockBackend, LockName, Result, Token, Ttl, async_trait};
//!
//! /// Counts acquisition attempts; everything else passes through.
//! #[derive(Debug, Default)]
//! struct CountLayer;
//!
//! #[derive(Debug)]
//! struct Counted<B> {
//!     inner: B,
//!     attempts: AtomicU64,
//! }
//!
//! impl<B: LockBackend> Layer<B> for CountLayer {
//!     type Backend = Counted<B>;
//!
//!     fn layer(&self, inner: B) -> Counted<B> {
//!         Counted { inner, attempts: AtomicU64::new(0) }
//!     }
//! }
//!
//! #[async_trait]
//! impl<B: LockBackend> LayeredBackend for Counted<B> {
//!     type Inner = B;
//!
//!     fn inner(&self) -> &B {
//!         &self.inner
//!     }
//!
//!     async fn try_acquire(&self, name: &LockName, token: &Token, ttl: Ttl) -> Result<Acquire> {
//!         self.attempts.fetch_add(1, Ordering::Relaxed);
//!         self.inner.try_acquire(name, token, ttl).await
//!     }
//! }
//! # #[derive(Debug)] struct MyStore;
//! # #[lock_core::async_trait] impl LockBackend for MyStore {
//! #   fn capabilities(&self) -> lock_core::Capabilities { Default::default() }
//! #   async fn try_acquire(&self, _: &LockName, _: &Token, _: Ttl) -> Result<Acquire> { Ok(Acquire::Acquired) }
//! #   async fn renew(&self, _: &LockName, _: &Token, _: Ttl) -> Result<bool> { Ok(true) }
//! #   async fn release(&self, _: &LockName, _: &Token) -> Result<lock_core::Release> { Ok(lock_core::Release::Released) }
//! #   async fn force_release(&self, _: &LockName) -> Result<lock_core::ForceRelease> { Ok(lock_core::ForceRelease::Missing) }
//! #   async fn status(&self, _: &LockName) -> Result<lock_core::Status> { Ok(lock_core::Status::open()) }
//! #   async fn is_held_by(&self, _: &LockName, _: &Token) -> Result<bool> { Ok(false) }
//! # }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<()> {
//! let backend = MyStore.layer(CountLayer);
//! // Both traits are in scope here, so name the one to call (see below).
//! let (name, token) = (LockName::new("jobs")?, Token::generate()?);
//! let acquired = LockBackend::try_acquire(&backend, &name, &token, Ttl::from_secs(30)?).await?;
//! assert!(acquired.is_acquired());
//! assert_eq!(backend.attempts.load(Ordering::Relaxed), 1);
//! # Ok(()) }
//! ```
//!
//! A wrapped backend implements [`LayeredBackend`] and never [`LockBackend`] directly (the
//! blanket implementation would conflict). Call the inner backend through `self.inner` (or
//! [`inner()`](LayeredBackend::inner)) with [`LockBackend`] in scope. Where both traits are
//! imported, a method call on a wrapped backend itself is ambiguous (both have
//! `try_acquire`…): write `LockBackend::try_acquire(&backend, …)`, or import only
//! [`LockBackend`] where backends are used, as users do.
//!
//! # Why generic layers rather than `Arc<dyn LockBackend>` wrappers
//!
//! A layer is generic over the backend it wraps, so stacking layers costs no extra allocation or
//! dynamic call per layer, and a wrapped backend keeps its concrete type (a test can still reach
//! its inner backend). `Arc<dyn LockBackend>` implements [`LockBackend`] too, so a layer also
//! wraps a backend chosen at run time, and a wrapped backend goes into
//! [`ProcessLock`](crate::ProcessLock) as `Arc::new(backend)` like any other.
//!
//! # Nothing is lost in forwarding
//!
//! Every method of [`LayeredBackend`] forwards to the inner backend by default, and the blanket
//! [`LockBackend`] implementation calls the [`LayeredBackend`] method of the same name, so a
//! layer never falls back to [`LockBackend`]'s own defaults (which answer
//! [`Unsupported`](crate::ErrorKind::Unsupported)) for an operation its inner backend offers.
//! When a method is added to [`LockBackend`], it is added here with a forwarding default too;
//! the conformance suite runs on a layered memory backend, which declares every capability,
//! and fails if one is forgotten.

use async_trait::async_trait;

use crate::backend::{
    Acquire, Capabilities, FencedAcquire, ForceRelease, LockBackend, Release, Status,
};
use crate::error::Result;
use crate::name::LockName;
use crate::notify::Watch;
use crate::queue::{Leave, QueueStep, Waiter};
use crate::token::Token;
use crate::ttl::Ttl;

/// Wraps a backend in cross-cutting behaviour: the configuration of a layer, applied to a
/// backend of type `B`.
///
/// Apply one with [`LockBackendExt::layer`]; see the [module docs](self) for writing one.
///
/// # Examples
///
/// ```
/// use lock_core::layer::{Layer, LayeredBackend};
/// use lock_core::LockBackend;
///
/// /// A layer that changes nothing: every operation passes through.
/// #[derive(Debug)]
/// struct Nothing;
///
/// #[derive(Debug)]
/// struct Passed<B>(B);
///
/// impl<B: LockBackend> Layer<B> for Nothing {
///     type Backend = Passed<B>;
///
///     fn layer(&self, inner: B) -> Passed<B> {
///         Passed(inner)
///     }
/// }
///
/// impl<B: LockBackend> LayeredBackend for Passed<B> {
///     type Inner = B;
///
///     fn inner(&self) -> &B {
///         &self.0
///     }
/// }
/// ```
pub trait Layer<B: LockBackend> {
    /// The wrapped backend.
    type Backend: LockBackend;

    /// Wraps `inner`.
    fn layer(&self, inner: B) -> Self::Backend;
}

/// A backend that wraps another: every operation it does not override passes through to
/// [`inner`](LayeredBackend::inner) unchanged.
///
/// Every type implementing it is a [`LockBackend`] (by a blanket implementation). Override a
/// method to add behaviour around the inner call; leave the rest alone. See the
/// [module docs](self) for an example.
///
/// # Cancel safety
///
/// As [`LockBackend`]'s: an override should add nothing that breaks when its future is dropped
/// mid-way (a span or a timer is fine; a half-updated shared state is not).
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use lock_core::layer::LayeredBackend;
/// use lock_core::{LockBackend, LockName, Release, Token, async_trait};
///
/// /// Counts releases; every other operation goes to the inner backend unchanged.
/// #[derive(Debug)]
/// struct CountReleases<B> {
///     inner: B,
///     releases: AtomicU64,
/// }
///
/// #[async_trait]
/// impl<B: LockBackend> LayeredBackend for CountReleases<B> {
///     type Inner = B;
///
///     fn inner(&self) -> &B {
///         &self.inner
///     }
///
///     async fn release(&self, name: &LockName, token: &Token) -> lock_core::Result<Release> {
///         self.releases.fetch_add(1, Ordering::Relaxed);
///         self.inner.release(name, token).await
///     }
/// }
/// ```
#[async_trait]
pub trait LayeredBackend: Send + Sync + std::fmt::Debug + 'static {
    /// The wrapped backend.
    type Inner: LockBackend;

    /// The wrapped backend, which every operation not overridden is passed to.
    fn inner(&self) -> &Self::Inner;

    /// As [`LockBackend::capabilities`]; by default the inner backend's.
    fn capabilities(&self) -> Capabilities {
        self.inner().capabilities()
    }

    /// As [`LockBackend::try_acquire`]; by default the inner backend's.
    ///
    /// # Errors
    ///
    /// As [`LockBackend::try_acquire`].
    async fn try_acquire(&self, name: &LockName, token: &Token, ttl: Ttl) -> Result<Acquire> {
        self.inner().try_acquire(name, token, ttl).await
    }

    /// As [`LockBackend::renew`]; by default the inner backend's.
    ///
    /// # Errors
    ///
    /// As [`LockBackend::renew`].
    async fn renew(&self, name: &LockName, token: &Token, ttl: Ttl) -> Result<bool> {
        self.inner().renew(name, token, ttl).await
    }

    /// As [`LockBackend::release`]; by default the inner backend's.
    ///
    /// # Errors
    ///
    /// As [`LockBackend::release`].
    async fn release(&self, name: &LockName, token: &Token) -> Result<Release> {
        self.inner().release(name, token).await
    }

    /// As [`LockBackend::force_release`]; by default the inner backend's.
    ///
    /// # Errors
    ///
    /// As [`LockBackend::force_release`].
    async fn force_release(&self, name: &LockName) -> Result<ForceRelease> {
        self.inner().force_release(name).await
    }

    /// As [`LockBackend::status`]; by default the inner backend's.
    ///
    /// # Errors
    ///
    /// As [`LockBackend::status`].
    async fn status(&self, name: &LockName) -> Result<Status> {
        self.inner().status(name).await
    }

    /// As [`LockBackend::is_held_by`]; by default the inner backend's.
    ///
    /// # Errors
    ///
    /// As [`LockBackend::is_held_by`].
    async fn is_held_by(&self, name: &LockName, token: &Token) -> Result<bool> {
        self.inner().is_held_by(name, token).await
    }

    /// As [`LockBackend::try_acquire_fenced`]; by default the inner backend's.
    ///
    /// # Errors
    ///
    /// As [`LockBackend::try_acquire_fenced`].
    async fn try_acquire_fenced(
        &self,
        name: &LockName,
        token: &Token,
        ttl: Ttl,
    ) -> Result<FencedAcquire> {
        self.inner().try_acquire_fenced(name, token, ttl).await
    }

    /// As [`LockBackend::watch`]; by default the inner backend's.
    ///
    /// # Errors
    ///
    /// As [`LockBackend::watch`].
    async fn watch(&self, name: &LockName) -> Result<Watch> {
        self.inner().watch(name).await
    }

    /// As [`LockBackend::queue_step`]; by default the inner backend's.
    ///
    /// # Errors
    ///
    /// As [`LockBackend::queue_step`].
    async fn queue_step(&self, name: &LockName, waiter: &Waiter) -> Result<QueueStep> {
        self.inner().queue_step(name, waiter).await
    }

    /// As [`LockBackend::leave_queue`]; by default the inner backend's.
    ///
    /// # Errors
    ///
    /// As [`LockBackend::leave_queue`].
    async fn leave_queue(&self, name: &LockName, waiter: &Waiter, keep: bool) -> Result<Leave> {
        self.inner().leave_queue(name, waiter, keep).await
    }

    /// As [`LockBackend::queue_watch`]; by default the inner backend's.
    ///
    /// # Errors
    ///
    /// As [`LockBackend::queue_watch`].
    async fn queue_watch(&self, name: &LockName) -> Result<Watch> {
        self.inner().queue_watch(name).await
    }

    /// As [`LockBackend::raise_fence`]; by default the inner backend's.
    ///
    /// # Errors
    ///
    /// As [`LockBackend::raise_fence`].
    async fn raise_fence(&self, name: &LockName, token: &Token, floor: u64) -> Result<bool> {
        self.inner().raise_fence(name, token, floor).await
    }
}

// Every method is spelled out, never left to `LockBackend`'s defaults: a default here would
// silently answer `Unsupported` for something the inner backend offers.
#[async_trait]
impl<L: LayeredBackend> LockBackend for L {
    fn capabilities(&self) -> Capabilities {
        LayeredBackend::capabilities(self)
    }

    async fn try_acquire(&self, name: &LockName, token: &Token, ttl: Ttl) -> Result<Acquire> {
        LayeredBackend::try_acquire(self, name, token, ttl).await
    }

    async fn renew(&self, name: &LockName, token: &Token, ttl: Ttl) -> Result<bool> {
        LayeredBackend::renew(self, name, token, ttl).await
    }

    async fn release(&self, name: &LockName, token: &Token) -> Result<Release> {
        LayeredBackend::release(self, name, token).await
    }

    async fn force_release(&self, name: &LockName) -> Result<ForceRelease> {
        LayeredBackend::force_release(self, name).await
    }

    async fn status(&self, name: &LockName) -> Result<Status> {
        LayeredBackend::status(self, name).await
    }

    async fn is_held_by(&self, name: &LockName, token: &Token) -> Result<bool> {
        LayeredBackend::is_held_by(self, name, token).await
    }

    async fn try_acquire_fenced(
        &self,
        name: &LockName,
        token: &Token,
        ttl: Ttl,
    ) -> Result<FencedAcquire> {
        LayeredBackend::try_acquire_fenced(self, name, token, ttl).await
    }

    async fn watch(&self, name: &LockName) -> Result<Watch> {
        LayeredBackend::watch(self, name).await
    }

    async fn queue_step(&self, name: &LockName, waiter: &Waiter) -> Result<QueueStep> {
        LayeredBackend::queue_step(self, name, waiter).await
    }

    async fn leave_queue(&self, name: &LockName, waiter: &Waiter, keep: bool) -> Result<Leave> {
        LayeredBackend::leave_queue(self, name, waiter, keep).await
    }

    async fn queue_watch(&self, name: &LockName) -> Result<Watch> {
        LayeredBackend::queue_watch(self, name).await
    }

    async fn raise_fence(&self, name: &LockName, token: &Token, floor: u64) -> Result<bool> {
        LayeredBackend::raise_fence(self, name, token, floor).await
    }
}

/// Applies layers to any backend: `backend.layer(a).layer(b)`, innermost first.
///
/// Implemented for every [`LockBackend`], `Arc<dyn LockBackend>` included.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
///
/// use lock_core::LockBackend;
/// use lock_core::layer::LockBackendExt;
/// use lock_core::layers::TracingLayer;
///
/// fn traced(backend: Arc<dyn LockBackend>) -> Arc<dyn LockBackend> {
///     Arc::new(backend.layer(TracingLayer::new()))
/// }
/// ```
pub trait LockBackendExt: LockBackend + Sized {
    /// Wraps this backend in `layer`.
    fn layer<L: Layer<Self>>(self, layer: L) -> L::Backend {
        layer.layer(self)
    }
}

impl<B: LockBackend> LockBackendExt for B {}
