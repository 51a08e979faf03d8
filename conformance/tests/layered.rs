//! The whole conformance suite on the in-memory backend wrapped in both ready-made layers
//! (tracing, then metrics): a layer that only observes must not change a single answer, and
//! every operation the backend offers (fencing, watching) must pass through.

use std::sync::Arc;

use conformance::Fixture;
use lock_core::layer::LockBackendExt;
use lock_core::layers::{MetricsLayer, TracingLayer};
use lock_memory::{ManualClock, MemoryBackend};

mod manual_clock {
    use super::*;

    async fn fixture() -> Fixture {
        let clock = ManualClock::new();
        let backend = MemoryBackend::with_clock(clock.clone())
            .layer(TracingLayer::new())
            .layer(MetricsLayer::new().with_name_labels(true));
        Fixture::new(Arc::new(backend)).with_manual_time(move |by| clock.advance(by))
    }

    conformance::suite!(fixture);
}

mod real_clock {
    use super::*;

    async fn fixture() -> Fixture {
        let backend = MemoryBackend::new()
            .layer(MetricsLayer::new())
            .layer(TracingLayer::new());
        Fixture::new(Arc::new(backend))
    }

    conformance::suite!(fixture);
}
