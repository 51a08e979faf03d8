//! A waiter cancelled while its acquire is in flight: the lock that acquire gets is released in
//! the background, trying again after an error that may pass (as a dropped guard's release
//! does), not left held for its whole timeout after one failed try.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Fake, name, ttl};
use lock_core::layer::LayeredBackend;
use lock_core::{
    Error, ErrorKind, FencedAcquire, Lock, LockBackend, LockName, LockState, Release, Result,
    Token, Ttl, async_trait,
};

/// Acquisitions land 50 ms after they are asked for; the first `failing` releases time out
/// without reaching the store.
#[derive(Debug)]
struct SlowThenFailing {
    inner: Fake,
    failing: usize,
    granted: AtomicUsize,
    releases: AtomicUsize,
}

#[async_trait]
impl LayeredBackend for SlowThenFailing {
    type Inner = Fake;

    fn inner(&self) -> &Fake {
        &self.inner
    }

    async fn try_acquire_fenced(
        &self,
        name: &LockName,
        token: &Token,
        ttl: Ttl,
    ) -> Result<FencedAcquire> {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let outcome = self.inner.try_acquire_fenced(name, token, ttl).await;
        if let Ok(FencedAcquire::Acquired { .. }) = outcome {
            self.granted.fetch_add(1, Ordering::SeqCst);
        }
        outcome
    }

    async fn release(&self, name: &LockName, token: &Token) -> Result<Release> {
        if self.releases.fetch_add(1, Ordering::SeqCst) < self.failing {
            return Err(Error::new(ErrorKind::Timeout, "no answer within 1s"));
        }
        self.inner.release(name, token).await
    }
}

#[tokio::test]
async fn a_cancelled_acquire_is_released_though_its_first_release_fails() {
    for failing in [0, 1, 3] {
        let backend = Arc::new(SlowThenFailing {
            inner: Fake::new(),
            failing,
            granted: AtomicUsize::new(0),
            releases: AtomicUsize::new(0),
        });
        let lock = Lock::new(backend.clone(), "jobs", ttl().as_duration()).unwrap();
        // Cancelled while the acquire is on its way; it lands 40 ms later.
        let cancelled = tokio::time::timeout(Duration::from_millis(10), lock.lock()).await;
        assert!(cancelled.is_err(), "the acquire was not cancelled");
        // The landing, then the failed tries 25, 50 and 100 ms apart, then the release.
        let name = name("jobs");
        for _ in 0..100 {
            if backend.releases.load(Ordering::SeqCst) > failing {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            backend.status(&name).await.unwrap().state,
            LockState::Open,
            "with {failing} failed releases, the cancelled acquire's lock stayed held"
        );
        assert_eq!(
            backend.granted.load(Ordering::SeqCst),
            1,
            "the acquire landed"
        );
        assert_eq!(backend.releases.load(Ordering::SeqCst), failing + 1);
    }
}
