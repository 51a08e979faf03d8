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
pub(crate) use self::metrics::{Waiting, handed_over, held, lock_lost, waited};

// Without the `metrics` feature, what the locks and guards record (see `names`) is nothing.

#[cfg(not(feature = "metrics"))]
pub(crate) fn lock_lost(_: crate::LostReason) {}

#[cfg(not(feature = "metrics"))]
pub(crate) fn waited(_: &'static str, _: std::time::Duration) {}

#[cfg(not(feature = "metrics"))]
pub(crate) fn handed_over(_: std::time::Duration) {}

#[cfg(not(feature = "metrics"))]
pub(crate) fn held(_: std::time::Duration) {}

#[cfg(not(feature = "metrics"))]
#[derive(Debug)]
pub(crate) struct Waiting;

#[cfg(not(feature = "metrics"))]
impl Waiting {
    pub(crate) fn start() -> Waiting {
        Waiting
    }
}
