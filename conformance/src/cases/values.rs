//! Every value `process-lock-node` documents, for each call.

use std::time::Duration;

use lock_core::{Cleared, LockState};

use crate::Fixture;

const TIMEOUT: Duration = Duration::from_secs(30);

/// `lock`: true when acquired, false when held by someone else, true again for the holder.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::lock_values(&fixture).await;
/// # }
/// ```
pub async fn lock_values(fx: &Fixture) {
    let name = fx.unique_name("lock-values");
    let (a, b) = (fx.handle(&name, TIMEOUT), fx.handle(&name, TIMEOUT));
    assert!(a.lock().await.unwrap(), "lock on a free name must be true");
    assert!(
        !b.lock().await.unwrap(),
        "lock held by another owner must be false"
    );
    assert!(a.lock().await.unwrap(), "lock by the holder must stay true");
    assert!(
        !b.lock().await.unwrap(),
        "a holder's re-lock must not free the lock"
    );
    assert_eq!(a.clear(false).await.unwrap(), Cleared::Cleared);
}

/// `update`: true for the holder, false for a free lock and for another owner.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::update_values(&fixture).await;
/// # }
/// ```
pub async fn update_values(fx: &Fixture) {
    let name = fx.unique_name("update-values");
    let (a, b) = (fx.handle(&name, TIMEOUT), fx.handle(&name, TIMEOUT));
    assert!(
        !a.update().await.unwrap(),
        "update of a free lock must be false"
    );
    assert_eq!(
        a.status().await.unwrap(),
        LockState::Open,
        "update of a free lock must not create it"
    );
    assert!(a.lock().await.unwrap());
    assert!(
        a.update().await.unwrap(),
        "update by the holder must be true"
    );
    assert!(
        !b.update().await.unwrap(),
        "update by another owner must be false"
    );
    assert!(
        a.update().await.unwrap(),
        "another owner's update must not take the lock"
    );
    assert_eq!(a.clear(false).await.unwrap(), Cleared::Cleared);
    assert!(
        !a.update().await.unwrap(),
        "update after clear must be false"
    );
}

/// `clear(false)`: true cleared, false not the owner, null did not exist.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::clear_values(&fixture).await;
/// # }
/// ```
pub async fn clear_values(fx: &Fixture) {
    let name = fx.unique_name("clear-values");
    let (a, b) = (fx.handle(&name, TIMEOUT), fx.handle(&name, TIMEOUT));
    assert_eq!(
        a.clear(false).await.unwrap(),
        Cleared::Missing,
        "clear of a lock never taken"
    );
    assert_eq!(Cleared::Missing.as_option(), None);
    assert!(a.lock().await.unwrap());
    assert_eq!(
        b.clear(false).await.unwrap(),
        Cleared::NotOwner,
        "clear by another owner"
    );
    assert_eq!(Cleared::NotOwner.as_option(), Some(false));
    assert_eq!(
        b.status().await.unwrap(),
        LockState::Locked,
        "a refused clear must leave the lock held"
    );
    assert!(
        a.update().await.unwrap(),
        "a refused clear must leave the owner in place"
    );
    assert_eq!(
        a.clear(false).await.unwrap(),
        Cleared::Cleared,
        "clear by the holder"
    );
    assert_eq!(Cleared::Cleared.as_option(), Some(true));
    assert_eq!(a.status().await.unwrap(), LockState::Open);
    assert_eq!(
        a.clear(false).await.unwrap(),
        Cleared::Missing,
        "clear of a cleared lock"
    );
}

/// `clear(true)`: clears whoever holds it; null when no one does.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::force_clear_values(&fixture).await;
/// # }
/// ```
pub async fn force_clear_values(fx: &Fixture) {
    let name = fx.unique_name("force-clear-values");
    let (a, b) = (fx.handle(&name, TIMEOUT), fx.handle(&name, TIMEOUT));
    assert_eq!(
        b.clear(true).await.unwrap(),
        Cleared::Missing,
        "force clear of a free lock"
    );
    assert!(a.lock().await.unwrap());
    assert_eq!(
        b.clear(true).await.unwrap(),
        Cleared::Cleared,
        "force clear by another owner"
    );
    assert_eq!(a.status().await.unwrap(), LockState::Open);
    assert!(
        !a.update().await.unwrap(),
        "the forced-out owner can no longer renew"
    );
    assert_eq!(
        b.clear(true).await.unwrap(),
        Cleared::Missing,
        "force clear again"
    );
    assert!(a.lock().await.unwrap());
    assert_eq!(
        a.clear(true).await.unwrap(),
        Cleared::Cleared,
        "force clear by the holder"
    );
    assert_eq!(a.status().await.unwrap(), LockState::Open);
}

/// `status`: "open" or "locked", as text too.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::status_values(&fixture).await;
/// # }
/// ```
pub async fn status_values(fx: &Fixture) {
    let name = fx.unique_name("status-values");
    let (a, b) = (fx.handle(&name, TIMEOUT), fx.handle(&name, TIMEOUT));
    let open = a.status().await.unwrap();
    assert_eq!(open, LockState::Open);
    assert_eq!(open.to_string(), "open");
    assert!(a.lock().await.unwrap());
    for handle in [&a, &b] {
        let locked = handle.status().await.unwrap();
        assert_eq!(
            locked,
            LockState::Locked,
            "status is the same for every handle"
        );
        assert_eq!(locked.to_string(), "locked");
    }
    assert_eq!(a.clear(false).await.unwrap(), Cleared::Cleared);
    assert_eq!(b.status().await.unwrap(), LockState::Open);
}
