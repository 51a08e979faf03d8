//! The holder's remaining time, exactly: what a failed acquire (plain or fenced, the one guards
//! and waiters use) and `status` report is the store's own expiry, to the millisecond, not a
//! rounded or shifted one. Waiters sleep until that expiry, so a second off makes them wake a
//! second late, or early and in vain.

use std::time::Duration;

use lock_core::{Acquire, Cleared, FencedAcquire, Token};

use crate::Fixture;

/// After a lock with a 30-second timeout has been held 3 ticks, a failed acquire, a failed
/// fenced acquire (where the backend fences) and `status` all say it has 30 s − 3 ticks left:
/// exactly on manual time, within the tick the requests may take on real time. A remaining
/// time off by a second, or rounded to whole seconds, fails.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::failed_acquires_report_the_exact_remaining_time(&fixture).await;
/// # }
/// ```
pub async fn failed_acquires_report_the_exact_remaining_time(fx: &Fixture) {
    let name = fx.unique_name("exact-remaining");
    let timeout = Duration::from_secs(30);
    let holder = fx.handle(&name, timeout);
    let backend = fx.backend();
    let other = Token::generate().unwrap();

    assert!(holder.lock().await.unwrap());
    // Started once the lock is set: at least 3 ticks have passed on the store at the checks.
    let mut clock = fx.clock();
    clock.advance(fx.ticks(3)).await;
    let expected = timeout - fx.ticks(3);
    let check = |what: &str, left: Option<Duration>| {
        let left = left.unwrap_or_else(|| panic!("{what} reports no remaining time"));
        if fx.is_manual_time() {
            assert_eq!(
                left, expected,
                "{what} reports {left:?}, not exactly {expected:?}"
            );
        } else {
            assert!(
                left <= expected && left > expected - fx.tick(),
                "{what} reports {left:?}, expected {expected:?} (a tick less at most)"
            );
        }
    };

    match backend
        .try_acquire(holder.name(), &other, holder.ttl())
        .await
        .unwrap()
    {
        Acquire::Held { remaining } => check("a failed acquire", remaining),
        outcome => panic!("a held lock was acquired: {outcome:?}"),
    }
    if backend.capabilities().fencing {
        match backend
            .try_acquire_fenced(holder.name(), &other, holder.ttl())
            .await
            .unwrap()
        {
            FencedAcquire::Held { remaining } => check("a failed fenced acquire", remaining),
            outcome => panic!("a held lock was acquired: {outcome:?}"),
        }
    }
    check(
        "status",
        backend.status(holder.name()).await.unwrap().remaining,
    );
    assert_eq!(holder.clear(false).await.unwrap(), Cleared::Cleared);
}
