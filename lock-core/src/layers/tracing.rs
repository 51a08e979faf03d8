//! [`TracingLayer`]: one `tracing` span per backend operation, with the lock's name, the
//! outcome and the duration, and never a token.

use std::time::Instant;

use ::tracing::field::{Empty, display};
use ::tracing::{Instrument, Span, debug_span};
use async_trait::async_trait;

use super::outcome;
use crate::backend::{Acquire, FencedAcquire, ForceRelease, LockBackend, Release, Status};
use crate::error::Result;
use crate::layer::{Layer, LayeredBackend};
use crate::name::LockName;
use crate::notify::Watch;
use crate::queue::{Leave, QueueStep, Waiter};
use crate::token::Token;
use crate::ttl::Ttl;

/// Wraps a backend so that each operation runs in a `tracing` span.
///
/// | span | operation | extra fields |
/// |------|-----------|--------------|
/// | `lock.acquire` | [`try_acquire`](LockBackend::try_acquire), [`try_acquire_fenced`](LockBackend::try_acquire_fenced) | `ttl_ms`, `fenced` |
/// | `lock.renew` | [`renew`](LockBackend::renew) | `ttl_ms` |
/// | `lock.release` | [`release`](LockBackend::release) | |
/// | `lock.force_release` | [`force_release`](LockBackend::force_release) | |
/// | `lock.status` | [`status`](LockBackend::status) | |
/// | `lock.watch` | [`watch`](LockBackend::watch) (subscribing, not the wait itself) | |
/// | `lock.queue_step` | [`queue_step`](LockBackend::queue_step) (outcome `acquired` or `queued`) | `ttl_ms` |
/// | `lock.leave_queue` | [`leave_queue`](LockBackend::leave_queue) (outcome `left`, `absent`, `kept` or `released`) | `keep` |
///
/// Every span, at `DEBUG` level and target `lock_core::layers::tracing`, has the fields
///
/// - `lock`: the lock's name, escaped (`str::escape_debug`) so that a name with a newline or a
///   terminal escape cannot forge log lines;
/// - `outcome`: a fixed word, the same as [`MetricsLayer`](crate::layers)'s labels:
///   `acquired`/`held`, `renewed`/`not_held`, `released`/`released_without_notice`/
///   `not_owner`/`missing`, `open`/`locked`, `watching`, or `error`; `cancelled` when the
///   operation's future was dropped before it finished;
/// - `duration_ms`: how long the operation took, in (fractional) milliseconds;
/// - `error`: the error's message, when the outcome is `error`.
///
/// When an operation finishes, a `DEBUG` event inside its span repeats the outcome and the
/// duration, so that a formatting subscriber that prints events (as `tracing-subscriber`'s `fmt`
/// does) shows every operation.
///
/// A token is never recorded: it is all anyone needs to release a lock. Error messages never
/// contain a password (see [`Error`](crate::Error)).
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
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingLayer {
    _private: (),
}

impl TracingLayer {
    /// The tracing layer.
    ///
    /// # Examples
    ///
    /// ```
    /// let layer = lock_core::layers::TracingLayer::new();
    /// # let _ = layer;
    /// ```
    pub fn new() -> Self {
        TracingLayer::default()
    }
}

impl<B: LockBackend> Layer<B> for TracingLayer {
    type Backend = TracingBackend<B>;

    fn layer(&self, inner: B) -> TracingBackend<B> {
        TracingBackend { inner }
    }
}

/// A backend wrapped by [`TracingLayer`].
///
/// # Examples
///
/// ```
/// use lock_core::LockBackend;
/// use lock_core::layer::LockBackendExt;
/// use lock_core::layers::{TracingBackend, TracingLayer};
///
/// fn traced<B: LockBackend>(backend: B) -> TracingBackend<B> {
///     backend.layer(TracingLayer::new())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct TracingBackend<B> {
    inner: B,
}

impl<B> TracingBackend<B> {
    /// The wrapped backend.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::LockBackend;
    /// use lock_core::layer::LockBackendExt;
    /// use lock_core::layers::TracingLayer;
    ///
    /// fn capabilities_of<B: LockBackend>(backend: B) -> lock_core::Capabilities {
    ///     let traced = backend.layer(TracingLayer::new());
    ///     traced.get_ref().capabilities()
    /// }
    /// ```
    pub fn get_ref(&self) -> &B {
        &self.inner
    }

    /// The wrapped backend, unwrapped.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::LockBackend;
    /// use lock_core::layer::LockBackendExt;
    /// use lock_core::layers::TracingLayer;
    ///
    /// fn untraced<B: LockBackend>(backend: B) -> B {
    ///     backend.layer(TracingLayer::new()).into_inner()
    /// }
    /// ```
    pub fn into_inner(self) -> B {
        self.inner
    }
}

/// One operation's span and clock. Dropped before [`finish`](Op::finish), the operation was
/// cancelled, and says so.
struct Op {
    span: Span,
    start: Instant,
    finished: bool,
}

impl Op {
    fn new(span: Span) -> Self {
        Op {
            span,
            start: Instant::now(),
            finished: false,
        }
    }

    fn finish<T>(mut self, outcome: &'static str, result: &Result<T>) {
        self.finished = true;
        let duration_ms = self.start.elapsed().as_secs_f64() * 1e3;
        self.span.record("outcome", outcome);
        self.span.record("duration_ms", duration_ms);
        match result {
            Ok(_) => ::tracing::debug!(parent: &self.span, outcome, duration_ms, "lock operation"),
            Err(e) => {
                self.span.record("error", display(e));
                ::tracing::debug!(parent: &self.span, outcome, duration_ms, error = %e, "lock operation");
            }
        }
    }
}

impl Drop for Op {
    fn drop(&mut self) {
        if !self.finished {
            self.span.record("outcome", "cancelled");
            self.span
                .record("duration_ms", self.start.elapsed().as_secs_f64() * 1e3);
        }
    }
}

fn escaped(name: &LockName) -> impl std::fmt::Display + '_ {
    name.as_str().escape_debug()
}

#[async_trait]
impl<B: LockBackend> LayeredBackend for TracingBackend<B> {
    type Inner = B;

    fn inner(&self) -> &B {
        &self.inner
    }

    async fn try_acquire(&self, name: &LockName, token: &Token, ttl: Ttl) -> Result<Acquire> {
        let op = Op::new(debug_span!(
            "lock.acquire",
            lock = %escaped(name),
            ttl_ms = ttl.as_millis(),
            fenced = false,
            outcome = Empty,
            duration_ms = Empty,
            error = Empty,
        ));
        let result = self
            .inner
            .try_acquire(name, token, ttl)
            .instrument(op.span.clone())
            .await;
        op.finish(outcome::acquire(&result), &result);
        result
    }

    async fn renew(&self, name: &LockName, token: &Token, ttl: Ttl) -> Result<bool> {
        let op = Op::new(debug_span!(
            "lock.renew",
            lock = %escaped(name),
            ttl_ms = ttl.as_millis(),
            outcome = Empty,
            duration_ms = Empty,
            error = Empty,
        ));
        let result = self
            .inner
            .renew(name, token, ttl)
            .instrument(op.span.clone())
            .await;
        op.finish(outcome::renew(&result), &result);
        result
    }

    async fn release(&self, name: &LockName, token: &Token) -> Result<Release> {
        let op = Op::new(debug_span!(
            "lock.release",
            lock = %escaped(name),
            outcome = Empty,
            duration_ms = Empty,
            error = Empty,
        ));
        let result = self
            .inner
            .release(name, token)
            .instrument(op.span.clone())
            .await;
        op.finish(outcome::release(&result), &result);
        result
    }

    async fn force_release(&self, name: &LockName) -> Result<ForceRelease> {
        let op = Op::new(debug_span!(
            "lock.force_release",
            lock = %escaped(name),
            outcome = Empty,
            duration_ms = Empty,
            error = Empty,
        ));
        let result = self
            .inner
            .force_release(name)
            .instrument(op.span.clone())
            .await;
        op.finish(outcome::force_release(&result), &result);
        result
    }

    async fn status(&self, name: &LockName) -> Result<Status> {
        let op = Op::new(debug_span!(
            "lock.status",
            lock = %escaped(name),
            outcome = Empty,
            duration_ms = Empty,
            error = Empty,
        ));
        let result = self.inner.status(name).instrument(op.span.clone()).await;
        op.finish(outcome::status(&result), &result);
        result
    }

    async fn is_held_by(&self, name: &LockName, token: &Token) -> Result<bool> {
        let op = Op::new(debug_span!(
            "lock.is_held_by",
            lock = %escaped(name),
            outcome = Empty,
            duration_ms = Empty,
            error = Empty,
        ));
        let result = self
            .inner
            .is_held_by(name, token)
            .instrument(op.span.clone())
            .await;
        op.finish(outcome::is_held_by(&result), &result);
        result
    }

    async fn try_acquire_fenced(
        &self,
        name: &LockName,
        token: &Token,
        ttl: Ttl,
    ) -> Result<FencedAcquire> {
        let op = Op::new(debug_span!(
            "lock.acquire",
            lock = %escaped(name),
            ttl_ms = ttl.as_millis(),
            fenced = true,
            outcome = Empty,
            duration_ms = Empty,
            error = Empty,
        ));
        let result = self
            .inner
            .try_acquire_fenced(name, token, ttl)
            .instrument(op.span.clone())
            .await;
        op.finish(outcome::fenced(&result), &result);
        result
    }

    async fn watch(&self, name: &LockName) -> Result<Watch> {
        let op = Op::new(debug_span!(
            "lock.watch",
            lock = %escaped(name),
            outcome = Empty,
            duration_ms = Empty,
            error = Empty,
        ));
        let result = self.inner.watch(name).instrument(op.span.clone()).await;
        op.finish(outcome::watch(&result), &result);
        result
    }

    async fn queue_step(&self, name: &LockName, waiter: &Waiter) -> Result<QueueStep> {
        let op = Op::new(debug_span!(
            "lock.queue_step",
            lock = %escaped(name),
            ttl_ms = waiter.ttl.as_millis(),
            outcome = Empty,
            duration_ms = Empty,
            error = Empty,
        ));
        let result = self
            .inner
            .queue_step(name, waiter)
            .instrument(op.span.clone())
            .await;
        let word = match &result {
            Ok(QueueStep::Acquired { .. }) => "acquired",
            Ok(_) => "queued",
            Err(_) => "error",
        };
        op.finish(word, &result);
        result
    }

    async fn leave_queue(&self, name: &LockName, waiter: &Waiter, keep: bool) -> Result<Leave> {
        let op = Op::new(debug_span!(
            "lock.leave_queue",
            lock = %escaped(name),
            keep,
            outcome = Empty,
            duration_ms = Empty,
            error = Empty,
        ));
        let result = self
            .inner
            .leave_queue(name, waiter, keep)
            .instrument(op.span.clone())
            .await;
        let word = match &result {
            Ok(Leave::Left) => "left",
            Ok(Leave::Absent) => "absent",
            Ok(Leave::Kept { .. }) => "kept",
            Ok(Leave::Released) => "released",
            Err(_) => "error",
        };
        op.finish(word, &result);
        result
    }

    async fn raise_fence(&self, name: &LockName, token: &Token, floor: u64) -> Result<bool> {
        let op = Op::new(debug_span!(
            "lock.raise_fence",
            lock = %escaped(name),
            floor,
            outcome = Empty,
            duration_ms = Empty,
            error = Empty,
        ));
        let result = self
            .inner
            .raise_fence(name, token, floor)
            .instrument(op.span.clone())
            .await;
        op.finish(outcome::is_held_by(&result), &result);
        result
    }
}
