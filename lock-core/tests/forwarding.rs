//! A layer that overrides nothing behaves exactly as the backend it wraps, for every operation,
//! including those `LockBackend` has defaults for (fencing, watching).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Fake, name, ttl};
use lock_core::layer::{Layer, LayeredBackend, LockBackendExt};
use lock_core::{
    Acquire, FencedAcquire, ForceRelease, Lock, LockBackend, LockState, Release, Token,
};

#[derive(Debug)]
struct Nothing;

#[derive(Debug)]
struct Passed<B>(B);

impl<B: LockBackend> Layer<B> for Nothing {
    type Backend = Passed<B>;

    fn layer(&self, inner: B) -> Passed<B> {
        Passed(inner)
    }
}

impl<B: LockBackend> LayeredBackend for Passed<B> {
    type Inner = B;

    fn inner(&self) -> &B {
        &self.0
    }
}

#[tokio::test]
async fn every_operation_passes_through() {
    // Two layers deep, behind `Arc<dyn LockBackend>` as `Lock` holds it.
    let backend: Arc<dyn LockBackend> = Arc::new(Fake::new().layer(Nothing).layer(Nothing));
    assert_eq!(backend.capabilities(), Fake::new().capabilities());

    let (n, a, b) = (
        name("jobs"),
        Token::generate().unwrap(),
        Token::generate().unwrap(),
    );
    assert_eq!(
        backend.try_acquire_fenced(&n, &a, ttl()).await.unwrap(),
        FencedAcquire::Acquired { fence: 1 }
    );
    assert_eq!(
        backend.try_acquire(&n, &b, ttl()).await.unwrap(),
        Acquire::Held { remaining: None }
    );
    assert!(backend.renew(&n, &a, ttl()).await.unwrap());
    assert!(!backend.renew(&n, &b, ttl()).await.unwrap());
    assert_eq!(backend.status(&n).await.unwrap().state, LockState::Locked);

    let mut watch = backend.watch(&n).await.unwrap();
    assert_eq!(backend.release(&n, &b).await.unwrap(), Release::NotOwner);
    assert_eq!(backend.release(&n, &a).await.unwrap(), Release::Released);
    tokio::time::timeout(Duration::from_secs(5), watch.released())
        .await
        .expect("the release reached the watcher through both layers");

    assert_eq!(
        backend.force_release(&n).await.unwrap(),
        ForceRelease::Missing
    );
    assert!(
        backend
            .try_acquire(&name("broken"), &a, ttl())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_layered_backend_drives_a_lock() {
    let backend = Arc::new(Fake::new().layer(Nothing));
    let lock = Lock::new(backend.clone(), "jobs", std::time::Duration::from_secs(30)).unwrap();
    let guard = lock.lock().await.unwrap();
    assert_eq!(guard.fence(), Some(1));
    assert_eq!(lock.status().await.unwrap(), LockState::Locked);
    drop(guard);
    // The inner backend is still reachable through the layer.
    let _: &Fake = backend.inner();
}
