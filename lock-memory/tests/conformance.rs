//! The conformance suite on the in-memory backend, twice: on a manual clock (instant, 512
//! model-based sequences) and on tokio's real clock (as a user's test would run it).

use std::sync::Arc;

use conformance::Fixture;
use lock_memory::{ManualClock, MemoryBackend};

mod manual_clock {
    use super::*;

    async fn fixture() -> Fixture {
        let clock = ManualClock::new();
        let backend = Arc::new(MemoryBackend::with_clock(clock.clone()));
        Fixture::new(backend).with_manual_time(move |by| clock.advance(by))
    }

    conformance::suite!(fixture);
}

mod real_clock {
    use super::*;

    async fn fixture() -> Fixture {
        Fixture::new(Arc::new(MemoryBackend::new()))
    }

    conformance::suite!(fixture);
}

/// Redlock over three independent in-memory stores: the quorum behaves as one store does,
/// without a waiter queue (waiters are woken by notification and race).
mod quorum_of_three {
    use super::*;
    use lock_core::quorum::Quorum;

    async fn fixture() -> Fixture {
        let nodes: Vec<Arc<dyn lock_core::LockBackend>> = (0..3)
            .map(|_| Arc::new(MemoryBackend::new()) as Arc<dyn lock_core::LockBackend>)
            .collect();
        Fixture::new(Arc::new(Quorum::new(nodes).expect("three nodes")))
    }

    conformance::suite!(fixture, without = [queue]);
}
