//! Locks left behind: a key is never forever. Whatever set it (a first acquire, a holder's
//! re-lock, a renewal, a guard's acquire), a lock nobody releases expires by itself after its
//! timeout, as when its process dies.
//!
//! Every other case releases what it takes, so an acquire that forgets the expiry (a `SET NX`
//! without `PX`) would pass them all; this one never releases.

use lock_core::{Cleared, Lock, LockState};

use crate::Fixture;
use crate::faults::{Cut, Cuttable};

/// A lock taken by `lock`, one re-locked by its holder, one renewed by `update` and one taken
/// by a guard (the acquire guards use: fenced where the backend fences) are all left behind:
/// each expires by itself after its timeout, and anyone can take it then.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::abandoned_locks_expire_by_themselves(&fixture).await;
/// # }
/// ```
pub async fn abandoned_locks_expire_by_themselves(fx: &Fixture) {
    let ttl = fx.ticks(3);
    let taken = fx.handle(&fx.unique_name("left-taken"), ttl);
    let relocked = fx.handle(&fx.unique_name("left-relocked"), ttl);
    let renewed = fx.handle(&fx.unique_name("left-renewed"), ttl);
    let guarded = fx.unique_name("left-guarded");

    assert!(taken.lock().await.unwrap());
    assert!(relocked.lock().await.unwrap());
    assert!(relocked.lock().await.unwrap(), "the holder's re-lock");
    assert!(renewed.lock().await.unwrap());
    assert!(renewed.update().await.unwrap());
    // The guard's process "dies" right after acquiring: its link is cut, so that neither its
    // renewals nor its release (nor the drop's) ever reach the store again.
    let link = Cuttable::new(fx.backend().clone());
    let guard = Lock::new(link.clone(), &guarded, ttl)
        .unwrap()
        .lock()
        .await
        .unwrap();
    link.cut(Cut::Hang);
    drop(guard);

    // Every key was set (or last renewed) before this point: a tick past the timeout, all
    // have expired.
    let mut clock = fx.clock();
    clock.advance(ttl + fx.tick()).await;
    let guarded = fx.handle(&guarded, ttl);
    for (what, lock) in [
        ("a lock taken and left", &taken),
        ("a lock re-locked and left", &relocked),
        ("a lock renewed and left", &renewed),
        ("a guard's lock left behind", &guarded),
    ] {
        assert_eq!(
            lock.status().await.unwrap(),
            LockState::Open,
            "{what} never expired by itself"
        );
        let next = fx.handle(lock.name().as_str(), ttl);
        assert!(next.lock().await.unwrap(), "{what} is free to take");
        assert_eq!(next.clear(false).await.unwrap(), Cleared::Cleared);
    }
}
