//! `process-lock-node`'s own test with its own pauses (500, 500 and 250 ms on a 1-second
//! timeout), so that its last step can only pass if `update` extended the lock.

use std::time::Duration;

use lock_core::{Cleared, LockState};

use crate::Fixture;

/// The original scenario, paced as the original test: the second handle locks, renews 500 ms
/// later, and 500 ms after that the first still cannot take the lock. 250 ms later, 1250 ms
/// after the second's lock was set, a lock that `update` had not extended would have been
/// free for 250 ms; the renewed one (until 1500 ms) is still held, and the first still cannot
/// take it.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::original_scenario_with_original_pauses(&fixture).await;
/// # }
/// ```
pub async fn original_scenario_with_original_pauses(fx: &Fixture) {
    let name = fx.unique_name("original-pauses");
    let timeout = Duration::from_secs(1);
    let first = fx.handle(&name, timeout);
    let second = fx.handle(&name, timeout);

    super::scenario::first_four_steps(&first, &second).await;
    // Started once the second's lock is set: its timeout runs from before this point.
    let mut clock = fx.clock();
    clock.advance(Duration::from_millis(500)).await;
    assert!(
        second.update().await.unwrap(),
        "5. after 500 ms, second update is true"
    );
    clock.advance(Duration::from_millis(500)).await;
    assert!(
        !first.update().await.unwrap(),
        "6. after 500 ms more, first update is false"
    );
    assert!(!first.lock().await.unwrap(), "7. first lock is false");
    clock.advance(Duration::from_millis(250)).await;
    assert_eq!(
        first.status().await.unwrap(),
        LockState::Locked,
        "8. 1250 ms after the second's lock, past its first timeout, the lock is held: \
         update extended it"
    );
    assert!(
        !first.lock().await.unwrap(),
        "9. and the first still cannot take it"
    );
    assert_eq!(
        second.clear(false).await.unwrap(),
        Cleared::Cleared,
        "10. the second still owns it and clears it"
    );
}
