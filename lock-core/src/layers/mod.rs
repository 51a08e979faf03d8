//! Ready-made layers: [`TracingLayer`] (a `tracing` span per operation) and, with the `metrics`
//! feature, `MetricsLayer` (counters and histograms on the `metrics` facade).
//!
//! Apply them with [`LockBackendExt::layer`](crate::layer::LockBackendExt::layer); both can be
//! stacked in either order:
//!
//! ```
//! # #[cfg(feature = "metrics")] {
//! use std::sync::Arc;
//!
//! use lock_core::LockBackend;
//! use lock_core::layer::LockBackendExt;
//! use lock_core::layers::{MetricsLayer, TracingLayer};
//!
//! fn instrumented(backend: Arc<dyn LockBackend>) -> Arc<dyn LockBackend> {
//!     Arc::new(backend.layer(TracingLayer::new()).layer(MetricsLayer::new()))
//! }
//! # }
//! ```

#[cfg(feature = "metrics")]
mod metrics;
mod outcome;
mod tracing;

#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub use self::metrics::{MetricsBackend, MetricsLayer, names};
pub use self::tracing::{TracingBackend, TracingLayer};

#[cfg(feature = "metrics")]
pub(crate) use self::metrics::lock_lost;

/// Counts a lock a guard lost ([`names::LOCKS_LOST`] with the `metrics` feature); nothing
/// without it. Called by the guard, the only place that sees every loss.
#[cfg(not(feature = "metrics"))]
pub(crate) fn lock_lost(_: crate::LostReason) {}
