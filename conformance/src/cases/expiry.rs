//! Expiry: locks end at their timeout unless renewed, and an expired owner has no power left.
//!
//! Times are in ticks; every check stands at least one tick away from an expiry, so the cases
//! hold on real time too.

use lock_core::{Cleared, LockState};

use crate::Fixture;

/// A lock expires after its timeout, and then anyone can take it.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::expiry(&fixture).await;
/// # }
/// ```
pub async fn expiry(fx: &Fixture) {
    let name = fx.unique_name("expiry");
    let a = fx.handle(&name, fx.ticks(3));
    let b = fx.handle(&name, fx.ticks(3));
    let mut clock = fx.clock();
    assert!(a.lock().await.unwrap());
    clock.advance(fx.ticks(2)).await;
    assert_eq!(
        a.status().await.unwrap(),
        LockState::Locked,
        "alive before its timeout"
    );
    assert!(!b.lock().await.unwrap(), "held before its timeout");
    clock.advance(fx.ticks(2)).await;
    assert_eq!(
        a.status().await.unwrap(),
        LockState::Open,
        "gone after its timeout"
    );
    assert!(b.lock().await.unwrap(), "free for anyone after its timeout");
    assert_eq!(b.clear(false).await.unwrap(), Cleared::Cleared);
}

/// `update` pushes the expiry out to a full timeout from now.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::update_extends_expiry(&fixture).await;
/// # }
/// ```
pub async fn update_extends_expiry(fx: &Fixture) {
    let name = fx.unique_name("update-extends");
    let a = fx.handle(&name, fx.ticks(3));
    let mut clock = fx.clock();
    assert!(a.lock().await.unwrap());
    clock.advance(fx.ticks(2)).await;
    assert!(a.update().await.unwrap(), "renewed before expiry");
    clock.advance(fx.ticks(2)).await; // 4 ticks: past the first expiry, before the renewed one
    assert_eq!(
        a.status().await.unwrap(),
        LockState::Locked,
        "update pushed the expiry out"
    );
    clock.advance(fx.ticks(2)).await; // 6 ticks: past the renewed expiry
    assert_eq!(
        a.status().await.unwrap(),
        LockState::Open,
        "the renewed lock expires too"
    );
    assert!(
        !a.update().await.unwrap(),
        "an expired lock cannot be renewed"
    );
    assert_eq!(
        a.status().await.unwrap(),
        LockState::Open,
        "a failed renewal creates nothing"
    );
}

/// `lock` by the holder resets the expiry to the full timeout.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::relock_resets_expiry(&fixture).await;
/// # }
/// ```
pub async fn relock_resets_expiry(fx: &Fixture) {
    let name = fx.unique_name("relock-resets");
    let a = fx.handle(&name, fx.ticks(3));
    let mut clock = fx.clock();
    assert!(a.lock().await.unwrap());
    clock.advance(fx.ticks(2)).await;
    assert!(a.lock().await.unwrap(), "the holder's lock is true");
    clock.advance(fx.ticks(2)).await;
    assert_eq!(
        a.status().await.unwrap(),
        LockState::Locked,
        "re-lock reset the expiry"
    );
    clock.advance(fx.ticks(2)).await;
    assert_eq!(a.status().await.unwrap(), LockState::Open);
}

/// An owner whose lock expired and was taken by another can neither renew, clear nor re-take
/// it, and `lock` tells it so instead of trusting what it once held.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::expired_owner_is_powerless(&fixture).await;
/// # }
/// ```
pub async fn expired_owner_is_powerless(fx: &Fixture) {
    let name = fx.unique_name("expired-owner");
    let old = fx.handle(&name, fx.ticks(2));
    let new = fx.handle(&name, fx.ticks(30));
    let mut clock = fx.clock();
    assert!(old.lock().await.unwrap());
    clock.advance(fx.ticks(3)).await;
    assert!(
        new.lock().await.unwrap(),
        "the expired lock is free to take"
    );
    assert!(!old.update().await.unwrap(), "the old owner cannot renew");
    assert_eq!(
        old.clear(false).await.unwrap(),
        Cleared::NotOwner,
        "nor clear"
    );
    assert!(
        !old.lock().await.unwrap(),
        "lock must report the truth, not a cached flag"
    );
    assert!(
        new.update().await.unwrap(),
        "the new owner kept the lock through all that"
    );
    assert_eq!(new.clear(false).await.unwrap(), Cleared::Cleared);
}
