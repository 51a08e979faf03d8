//! Fencing tokens: every acquisition of a name gets a number greater than every earlier one.

use std::time::Duration;

use lock_core::{FencedAcquire, LockName, Release, Token, Ttl};

use crate::Fixture;

/// Successive guards on one name, from different handles, get strictly increasing fencing
/// tokens; a failed attempt gets none and leaves the counter's order intact; other names
/// count on their own.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::fences_increase(&fixture).await;
/// # }
/// ```
pub async fn fences_increase(fx: &Fixture) {
    let name = fx.unique_name("fences");
    let mut last = 0;
    for round in 0..5 {
        let guard = fx
            .guarded(&name, Duration::from_secs(30))
            .lock()
            .await
            .unwrap();
        let fence = guard
            .fence()
            .expect("a backend with fencing gives guards a fence");
        assert!(fence > last, "round {round}: fence {fence} after {last}");
        last = fence;
        assert!(
            fx.guarded(&name, Duration::from_secs(30))
                .try_lock()
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(guard.release().await.unwrap(), Release::Released);
    }

    // The primitive itself: held gives the remaining time, the holder's re-acquire a new fence.
    let backend = fx.backend();
    let lock = LockName::new(&name).unwrap();
    let (a, b) = (Token::generate().unwrap(), Token::generate().unwrap());
    let ttl = Ttl::new(Duration::from_secs(30)).unwrap();
    let FencedAcquire::Acquired { fence: first } =
        backend.try_acquire_fenced(&lock, &a, ttl).await.unwrap()
    else {
        panic!("a free lock was not acquired");
    };
    assert!(first > last);
    match backend.try_acquire_fenced(&lock, &b, ttl).await.unwrap() {
        FencedAcquire::Held { .. } => {}
        other => panic!("a held lock was acquired: {other:?}"),
    }
    let FencedAcquire::Acquired { fence: again } =
        backend.try_acquire_fenced(&lock, &a, ttl).await.unwrap()
    else {
        panic!("the holder's re-acquire failed");
    };
    assert!(
        again > first,
        "re-acquired with fence {again} after {first}"
    );
    assert_eq!(backend.release(&lock, &a).await.unwrap(), Release::Released);

    // A plain acquire does not count, and other names have their own counter.
    let other = LockName::new(fx.unique_name("fences-other")).unwrap();
    let FencedAcquire::Acquired { fence } =
        backend.try_acquire_fenced(&other, &a, ttl).await.unwrap()
    else {
        panic!("a free lock was not acquired");
    };
    // Tokens come from a clock (microseconds) where the counter is new: a new name starts
    // above every token handed out before, whatever name it was for.
    assert!(
        fence > again,
        "a new name's first fence {fence} after {again}"
    );
    assert_eq!(
        backend.release(&other, &a).await.unwrap(),
        Release::Released
    );
}
