//! [`MetricsLayer`]: counters and histograms on the `metrics` crate's facade, so that any
//! exporter (Prometheus, StatsD, OpenTelemetry…) can publish them.

use std::time::Instant;

use async_trait::async_trait;
use metrics::{
    Label, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};

use super::outcome;
use crate::backend::{Acquire, FencedAcquire, ForceRelease, LockBackend, Release};
use crate::error::Result;
use crate::guard::LostReason;
use crate::layer::{Layer, LayeredBackend};
use crate::name::LockName;
use crate::token::Token;
use crate::ttl::Ttl;

/// The names of the metrics [`MetricsLayer`] records.
///
/// # Examples
///
/// ```
/// use lock_core::layers::names;
///
/// assert_eq!(names::ACQUIRE_DURATION, "process_lock_acquire_duration_seconds");
/// ```
pub mod names {
    /// Histogram, seconds: how long one acquisition attempt
    /// ([`try_acquire`](crate::LockBackend::try_acquire) or
    /// [`try_acquire_fenced`](crate::LockBackend::try_acquire_fenced)) took. Label `outcome`:
    /// `acquired`, `held` or `error`.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::layers::names::ACQUIRE_DURATION;
    ///
    /// assert_eq!(ACQUIRE_DURATION, "process_lock_acquire_duration_seconds");
    /// ```
    pub const ACQUIRE_DURATION: &str = "process_lock_acquire_duration_seconds";
    /// Counter: acquisition attempts that found the lock held by another owner.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::layers::names::ACQUIRE_CONTENDED;
    ///
    /// assert_eq!(ACQUIRE_CONTENDED, "process_lock_acquire_contended_total");
    /// ```
    pub const ACQUIRE_CONTENDED: &str = "process_lock_acquire_contended_total";
    /// Counter: renewals that did not extend the lock. Label `reason`: `not_held` (the store
    /// says the token no longer holds it: for a guard, the lock is lost) or `error`.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::layers::names::RENEWAL_FAILURES;
    ///
    /// assert_eq!(RENEWAL_FAILURES, "process_lock_renewal_failures_total");
    /// ```
    pub const RENEWAL_FAILURES: &str = "process_lock_renewal_failures_total";
    /// Counter: releases. Labels `outcome` (`released`, `released_without_notice`, `not_owner`,
    /// `missing` or `error`) and `forced` (`true` for
    /// [`force_release`](crate::LockBackend::force_release)).
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::layers::names::RELEASES;
    ///
    /// assert_eq!(RELEASES, "process_lock_releases_total");
    /// ```
    pub const RELEASES: &str = "process_lock_releases_total";
    /// Counter: locks a [`LockGuard`](crate::LockGuard) lost while held. Label `reason`:
    /// `not_owner` (a renewal found it free or held by another owner) or `expired` (no renewal
    /// was confirmed before its validity ran out). Recorded by the guards themselves, with or
    /// without a [`MetricsLayer`](super::MetricsLayer), and never with a `lock` label (a guard
    /// does not know the layer's settings).
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::layers::names::LOCKS_LOST;
    ///
    /// assert_eq!(LOCKS_LOST, "process_lock_locks_lost_total");
    /// ```
    pub const LOCKS_LOST: &str = "process_lock_locks_lost_total";
    /// Histogram, seconds: how long a [`Lock::lock`](crate::Lock::lock) (or its deadline
    /// variants) waited, from the call to its answer. Label `outcome`: `acquired`, `timeout`
    /// or `error`. Recorded by the lock itself, like the four below.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::layers::names::WAIT_DURATION;
    ///
    /// assert_eq!(WAIT_DURATION, "process_lock_wait_duration_seconds");
    /// ```
    pub const WAIT_DURATION: &str = "process_lock_wait_duration_seconds";
    /// Gauge: waiters of this process now inside [`Lock::lock`](crate::Lock::lock) or its
    /// deadline variants.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::layers::names::WAITERS;
    ///
    /// assert_eq!(WAITERS, "process_lock_waiters");
    /// ```
    pub const WAITERS: &str = "process_lock_waiters";
    /// Histogram, seconds: how long a guard held its lock, from the acquiring request to its
    /// release, drop or loss.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::layers::names::HOLD_DURATION;
    ///
    /// assert_eq!(HOLD_DURATION, "process_lock_hold_duration_seconds");
    /// ```
    pub const HOLD_DURATION: &str = "process_lock_hold_duration_seconds";
    /// Histogram, seconds: hand-over latency, for an acquisition that had to wait: from the
    /// waiter's last wake-up (a release notice, its turn among its process's waiters, the
    /// holder's expiry; with a waiter queue, the hand-off message, which already made it the
    /// holder, or its heartbeat) to holding the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::layers::names::HANDOVER_DURATION;
    ///
    /// assert_eq!(HANDOVER_DURATION, "process_lock_handover_seconds");
    /// ```
    pub const HANDOVER_DURATION: &str = "process_lock_handover_seconds";
}

/// Wraps a backend so that each operation is measured, on the `metrics` crate's facade (the
/// `metrics` feature).
///
/// | metric | kind | labels |
/// |--------|------|--------|
/// | [`process_lock_acquire_duration_seconds`](names::ACQUIRE_DURATION) | histogram | `outcome` = `acquired` / `held` / `error` |
/// | [`process_lock_acquire_contended_total`](names::ACQUIRE_CONTENDED) | counter | |
/// | [`process_lock_renewal_failures_total`](names::RENEWAL_FAILURES) | counter | `reason` = `not_held` / `error` |
/// | [`process_lock_releases_total`](names::RELEASES) | counter | `outcome`, `forced` |
/// | [`process_lock_locks_lost_total`](names::LOCKS_LOST) | counter | `reason` = `not_owner` / `expired` |
/// | [`process_lock_wait_duration_seconds`](names::WAIT_DURATION) | histogram | `outcome` = `acquired` / `timeout` / `error` |
/// | [`process_lock_waiters`](names::WAITERS) | gauge | |
/// | [`process_lock_hold_duration_seconds`](names::HOLD_DURATION) | histogram | |
/// | [`process_lock_handover_seconds`](names::HANDOVER_DURATION) | histogram | |
///
/// Nothing is recorded until a recorder is installed (for example
/// `metrics-exporter-prometheus`'s); the layer registers the metrics' descriptions with the
/// recorder installed when it is applied.
///
/// **Cardinality.** Labels take a handful of fixed values, so the number of series is bounded
/// whatever the lock names. [`with_name_labels(true)`](MetricsLayer::with_name_labels) adds a
/// `lock` label with the lock's name to every metric: one series per name, for a bounded set of
/// names only.
///
/// **What a backend cannot see is recorded by the locks.** A backend answers one request at a
/// time; it does not know who waits (a waiter sleeps between attempts and in
/// [`Watch::released`](crate::Watch::released), outside any backend call), how long a lock was
/// held, nor when a lock changes hands; and a guard's lock can be lost by expiry without any
/// backend call saying so. So the last five metrics of the table are recorded by
/// [`Lock`](crate::Lock) and its guards themselves, whenever the `metrics` feature is on,
/// without a `lock` label (a lock does not know the layer's settings); they need no layer.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
///
/// use lock_core::LockBackend;
/// use lock_core::layer::LockBackendExt;
/// use lock_core::layers::MetricsLayer;
///
/// fn measured(backend: Arc<dyn LockBackend>) -> Arc<dyn LockBackend> {
///     Arc::new(backend.layer(MetricsLayer::new()))
/// }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct MetricsLayer {
    name_labels: bool,
}

impl MetricsLayer {
    /// The metrics layer, without per-name labels.
    ///
    /// # Examples
    ///
    /// ```
    /// let layer = lock_core::layers::MetricsLayer::new();
    /// # let _ = layer;
    /// ```
    pub fn new() -> Self {
        MetricsLayer::default()
    }

    /// Whether every metric gets a `lock` label with the lock's name; off by default. Turn it
    /// on only for a small, fixed set of names: each name is a series of its own in every
    /// metric.
    ///
    /// # Examples
    ///
    /// ```
    /// let layer = lock_core::layers::MetricsLayer::new().with_name_labels(true);
    /// # let _ = layer;
    /// ```
    pub fn with_name_labels(mut self, on: bool) -> Self {
        self.name_labels = on;
        self
    }
}

impl<B: LockBackend> Layer<B> for MetricsLayer {
    type Backend = MetricsBackend<B>;

    fn layer(&self, inner: B) -> MetricsBackend<B> {
        describe();
        MetricsBackend {
            inner,
            name_labels: self.name_labels,
        }
    }
}

fn describe() {
    describe_histogram!(
        names::ACQUIRE_DURATION,
        metrics::Unit::Seconds,
        "How long one acquisition attempt took, by outcome."
    );
    describe_counter!(
        names::ACQUIRE_CONTENDED,
        "Acquisition attempts that found the lock held by another owner."
    );
    describe_counter!(
        names::RENEWAL_FAILURES,
        "Renewals that did not extend the lock, by reason."
    );
    describe_counter!(names::RELEASES, "Releases, by outcome.");
    describe_counter!(
        names::LOCKS_LOST,
        "Locks a guard lost while held, by reason."
    );
    describe_histogram!(
        names::WAIT_DURATION,
        metrics::Unit::Seconds,
        "How long a waiter waited for a lock, by outcome."
    );
    describe_gauge!(names::WAITERS, "Waiters now waiting for a lock.");
    describe_histogram!(
        names::HOLD_DURATION,
        metrics::Unit::Seconds,
        "How long a guard held its lock."
    );
    describe_histogram!(
        names::HANDOVER_DURATION,
        metrics::Unit::Seconds,
        "From a waiter's last wake-up to holding the lock, for acquisitions that waited."
    );
}

/// Records a wait for a lock that ended with `outcome`: see [`names::WAIT_DURATION`].
pub(crate) fn waited(outcome: &'static str, took: std::time::Duration) {
    histogram!(names::WAIT_DURATION, "outcome" => outcome).record(took.as_secs_f64());
}

/// Records a hand-over: see [`names::HANDOVER_DURATION`].
pub(crate) fn handed_over(took: std::time::Duration) {
    histogram!(names::HANDOVER_DURATION).record(took.as_secs_f64());
}

/// Records how long a guard held its lock: see [`names::HOLD_DURATION`].
pub(crate) fn held(took: std::time::Duration) {
    histogram!(names::HOLD_DURATION).record(took.as_secs_f64());
}

/// One waiter in [`names::WAITERS`], for as long as it lives (cancellation included).
#[derive(Debug)]
pub(crate) struct Waiting(());

impl Waiting {
    pub(crate) fn start() -> Waiting {
        gauge!(names::WAITERS).increment(1.0);
        Waiting(())
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        gauge!(names::WAITERS).decrement(1.0);
    }
}

/// Counts a lock a guard lost: see [`names::LOCKS_LOST`].
pub(crate) fn lock_lost(reason: LostReason) {
    let reason = match reason {
        LostReason::NotOwner => "not_owner",
        LostReason::Expired => "expired",
    };
    counter!(names::LOCKS_LOST, "reason" => reason).increment(1);
}

/// A backend wrapped by [`MetricsLayer`].
///
/// # Examples
///
/// ```
/// use lock_core::LockBackend;
/// use lock_core::layer::LockBackendExt;
/// use lock_core::layers::{MetricsBackend, MetricsLayer};
///
/// fn measured<B: LockBackend>(backend: B) -> MetricsBackend<B> {
///     backend.layer(MetricsLayer::new())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct MetricsBackend<B> {
    inner: B,
    name_labels: bool,
}

impl<B> MetricsBackend<B> {
    /// The wrapped backend.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::LockBackend;
    /// use lock_core::layer::LockBackendExt;
    /// use lock_core::layers::MetricsLayer;
    ///
    /// fn capabilities_of<B: LockBackend>(backend: B) -> lock_core::Capabilities {
    ///     let measured = backend.layer(MetricsLayer::new());
    ///     measured.get_ref().capabilities()
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
    /// use lock_core::layers::MetricsLayer;
    ///
    /// fn unmeasured<B: LockBackend>(backend: B) -> B {
    ///     backend.layer(MetricsLayer::new()).into_inner()
    /// }
    /// ```
    pub fn into_inner(self) -> B {
        self.inner
    }

    fn labels(&self, name: &LockName, fixed: &[(&'static str, &'static str)]) -> Vec<Label> {
        let mut labels: Vec<Label> = fixed.iter().map(|&(k, v)| Label::new(k, v)).collect();
        if self.name_labels {
            labels.push(Label::new("lock", name.as_str().to_owned()));
        }
        labels
    }

    fn acquired(&self, name: &LockName, outcome: &'static str, start: Instant) {
        histogram!(
            names::ACQUIRE_DURATION,
            self.labels(name, &[("outcome", outcome)])
        )
        .record(start.elapsed().as_secs_f64());
        if outcome == "held" {
            counter!(names::ACQUIRE_CONTENDED, self.labels(name, &[])).increment(1);
        }
    }

    fn released(&self, name: &LockName, outcome: &'static str, forced: &'static str) {
        counter!(
            names::RELEASES,
            self.labels(name, &[("outcome", outcome), ("forced", forced)])
        )
        .increment(1);
    }
}

#[async_trait]
impl<B: LockBackend> LayeredBackend for MetricsBackend<B> {
    type Inner = B;

    fn inner(&self) -> &B {
        &self.inner
    }

    async fn try_acquire(&self, name: &LockName, token: &Token, ttl: Ttl) -> Result<Acquire> {
        let start = Instant::now();
        let result = self.inner.try_acquire(name, token, ttl).await;
        self.acquired(name, outcome::acquire(&result), start);
        result
    }

    async fn try_acquire_fenced(
        &self,
        name: &LockName,
        token: &Token,
        ttl: Ttl,
    ) -> Result<FencedAcquire> {
        let start = Instant::now();
        let result = self.inner.try_acquire_fenced(name, token, ttl).await;
        self.acquired(name, outcome::fenced(&result), start);
        result
    }

    async fn renew(&self, name: &LockName, token: &Token, ttl: Ttl) -> Result<bool> {
        let result = self.inner.renew(name, token, ttl).await;
        match outcome::renew(&result) {
            "renewed" => {}
            reason => counter!(
                names::RENEWAL_FAILURES,
                self.labels(name, &[("reason", reason)])
            )
            .increment(1),
        }
        result
    }

    async fn release(&self, name: &LockName, token: &Token) -> Result<Release> {
        let result = self.inner.release(name, token).await;
        self.released(name, outcome::release(&result), "false");
        result
    }

    async fn force_release(&self, name: &LockName) -> Result<ForceRelease> {
        let result = self.inner.force_release(name).await;
        self.released(name, outcome::force_release(&result), "true");
        result
    }
}
