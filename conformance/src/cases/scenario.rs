//! `process-lock-node`'s own test, step by step.

use std::time::Duration;

use lock_core::{Cleared, LockState, ProcessLock};

use crate::Fixture;

/// Steps 1 to 4 of the original scenario, which every paced variant starts with: the first
/// handle locks, the second cannot, the first clears, the second locks.
pub(super) async fn first_four_steps(first: &ProcessLock, second: &ProcessLock) {
    assert!(first.lock().await.unwrap(), "1. first lock is true");
    assert!(!second.lock().await.unwrap(), "2. second lock is false");
    assert_eq!(
        first.clear(false).await.unwrap(),
        Cleared::Cleared,
        "3. first clear is true"
    );
    assert!(second.lock().await.unwrap(), "4. second lock is true");
}

/// The original package's test scenario: two handles on one name with a 1-second timeout.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::original_scenario(&fixture).await;
/// # }
/// ```
pub async fn original_scenario(fx: &Fixture) {
    let name = fx.unique_name("original-scenario");
    let timeout = Duration::from_secs(1);
    let first = fx.handle(&name, timeout);
    let second = fx.handle(&name, timeout);
    let mut clock = fx.clock();

    first_four_steps(&first, &second).await;
    assert!(second.update().await.unwrap(), "5. second update is true");
    assert!(!first.update().await.unwrap(), "6. first update is false");
    assert!(!first.lock().await.unwrap(), "7. first lock is false");

    // The second's lock was last set at step 5: wait the timeout plus a tick of margin.
    clock.advance(timeout + fx.tick()).await;
    assert!(
        first.lock().await.unwrap(),
        "8. after the timeout, first lock is true"
    );
    assert_eq!(
        second.clear(true).await.unwrap(),
        Cleared::Cleared,
        "9. second force clear is true"
    );
    assert_eq!(
        second.status().await.unwrap(),
        LockState::Open,
        "10. status is open"
    );
    assert_eq!(
        second.clear(true).await.unwrap(),
        Cleared::Missing,
        "11. force clear again is null"
    );
}
