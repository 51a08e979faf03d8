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
