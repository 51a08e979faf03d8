//! Remaining time to live, for backends with `Capabilities::remaining_ttl`.

use std::time::Duration;

use lock_core::{Acquire, Cleared, LockState};

use crate::Fixture;

/// A failed acquire and `status` both report how long the holder has left.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::remaining_ttl(&fixture).await;
/// # }
/// ```
pub async fn remaining_ttl(fx: &Fixture) {
    let name = fx.unique_name("remaining-ttl");
    let holder = fx.handle(&name, fx.ticks(10));
    let other = fx.handle(&name, fx.ticks(10));
    let backend = fx.backend();

    let status = backend.status(holder.name()).await.unwrap();
    assert_eq!((status.state, status.remaining), (LockState::Open, None));

    assert!(holder.lock().await.unwrap());
    // Started once the lock is set, so at least 3 ticks have passed at the checks below.
    let mut clock = fx.clock();
    clock.advance(fx.ticks(3)).await;
    // 7 ticks are left; on real time up to a tick more may have passed.
    let in_range = |left: Duration| left <= fx.ticks(7) && left > fx.ticks(5);

    match backend
        .try_acquire(other.name(), other.token(), other.ttl())
        .await
        .unwrap()
    {
        Acquire::Held {
            remaining: Some(left),
        } => {
            assert!(
                in_range(left),
                "failed acquire reports {left:?}, expected about 7 ticks"
            )
        }
        outcome => panic!("expected Held with the remaining time, got {outcome:?}"),
    }
    let status = backend.status(holder.name()).await.unwrap();
    assert_eq!(status.state, LockState::Locked);
    let left = status
        .remaining
        .expect("status of a held lock reports its remaining time");
    assert!(
        in_range(left),
        "status reports {left:?}, expected about 7 ticks"
    );
    assert_eq!(holder.clear(false).await.unwrap(), Cleared::Cleared);
}
