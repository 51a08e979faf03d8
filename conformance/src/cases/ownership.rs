//! Owners: a `ProcessLock` handle (and its clones) is one owner, and `holds` asks, changing
//! nothing, whether it still holds its lock; `Lock::with_lock` runs work under a guard and gives
//! the lock up on every path.

use std::time::Duration;

use lock_core::{Cleared, ErrorKind, LockState, LostReason, Release};

use crate::Fixture;

/// How long a background release or a loss may take to show, beyond what the case allows for.
const SLACK: Duration = Duration::from_secs(2);

/// `holds` is true for the handle that took the lock and its clones, false for any other owner,
/// and false again once the lock is cleared or taken by another.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::holds_answers_for_its_owner_only(&fixture).await;
/// # }
/// ```
pub async fn holds_answers_for_its_owner_only(fx: &Fixture) {
    let name = fx.unique_name("holds-owner");
    let ttl = fx.ticks(10);
    let (mine, other) = (fx.handle(&name, ttl), fx.handle(&name, ttl));
    assert!(!mine.holds().await.unwrap(), "free: nobody holds it");
    assert!(mine.lock().await.unwrap());
    assert!(mine.holds().await.unwrap(), "the owner holds it");
    assert!(
        mine.clone().holds().await.unwrap(),
        "a clone is the same owner"
    );
    assert!(
        !other.holds().await.unwrap(),
        "another handle is another owner"
    );
    assert!(!other.lock().await.unwrap());
    assert_eq!(mine.clear(false).await.unwrap(), Cleared::Cleared);
    assert!(!mine.holds().await.unwrap(), "cleared");
    assert!(other.lock().await.unwrap());
    assert!(other.holds().await.unwrap());
    assert!(!mine.holds().await.unwrap(), "taken by another");
    assert_eq!(other.clear(false).await.unwrap(), Cleared::Cleared);
}

/// `holds` is read-only: asked again and again while the lock runs out, it never extends it,
/// and the lock expires at its timeout.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::holds_extends_nothing(&fixture).await;
/// # }
/// ```
pub async fn holds_extends_nothing(fx: &Fixture) {
    let name = fx.unique_name("holds-read-only");
    let lock = fx.handle(&name, fx.ticks(10));
    assert!(lock.lock().await.unwrap());
    let mut clock = fx.clock();
    for _ in 0..6 {
        assert!(lock.holds().await.unwrap());
        clock.advance(fx.tick()).await;
    }
    // 6 ticks have passed; the timeout is 10 ticks: 5 more (and one for real time) are past it,
    // unless `holds` had renewed it.
    clock.advance(fx.ticks(6)).await;
    assert!(!lock.holds().await.unwrap(), "expired at its timeout");
    assert_eq!(lock.status().await.unwrap(), LockState::Open);
}

/// `with_lock` holds the lock while its work runs, returns the work's output, and releases the
/// lock afterwards, whether the work succeeded or returned an error.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::with_lock_releases_after_the_work(&fixture).await;
/// # }
/// ```
pub async fn with_lock_releases_after_the_work(fx: &Fixture) {
    let name = fx.unique_name("with-lock");
    let lock = fx.guarded(&name, fx.ticks(10));
    let other = fx.handle(&name, fx.ticks(10));
    let seen = lock
        .with_lock(async |guard| {
            assert!(guard.is_held());
            other.status().await.unwrap()
        })
        .await
        .unwrap();
    assert_eq!(seen, LockState::Locked, "held while the work ran");
    assert_eq!(
        other.status().await.unwrap(),
        LockState::Open,
        "released after"
    );

    let failed: Result<(), &str> = lock.with_lock(async |_| Err("failed")).await.unwrap();
    assert_eq!(failed, Err("failed"));
    assert_eq!(
        other.status().await.unwrap(),
        LockState::Open,
        "released after an error"
    );
}

/// Dropping a `with_lock` future mid-work releases the lock (in the background), long before
/// its timeout.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::with_lock_cancelled_releases(&fixture).await;
/// # }
/// ```
pub async fn with_lock_cancelled_releases(fx: &Fixture) {
    let name = fx.unique_name("with-lock-cancelled");
    let ttl = Duration::from_secs(30);
    let lock = fx.guarded(&name, ttl);
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let worker = lock.clone();
    let task = tokio::spawn(async move {
        worker
            .with_lock(async |_| {
                let _ = started_tx.send(());
                std::future::pending::<()>().await
            })
            .await
    });
    started_rx.await.expect("the work started");
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    let guard = tokio::time::timeout(SLACK, lock.lock())
        .await
        .expect("released at the cancellation, not at the 30 s timeout")
        .unwrap();
    assert_eq!(guard.release().await.unwrap(), Release::Released);
}

/// When the lock is lost while the work runs (an operator clears it by force), `with_lock`
/// stops the work and answers `ErrorKind::LockLost`, the loss as the error's source.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::with_lock_stops_the_work_when_the_lock_is_lost(&fixture).await;
/// # }
/// ```
pub async fn with_lock_stops_the_work_when_the_lock_is_lost(fx: &Fixture) {
    let name = fx.unique_name("with-lock-lost");
    let ttl = fx.ticks(6);
    let lock = fx.guarded(&name, ttl);
    let admin = fx.handle(&name, ttl);
    let outcome = tokio::time::timeout(
        ttl + SLACK,
        lock.with_lock(async |_| {
            assert_eq!(admin.clear(true).await.unwrap(), Cleared::Cleared);
            std::future::pending::<()>().await
        }),
    )
    .await
    .expect("the work was stopped at the next renewal");
    let err = outcome.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LockLost, "{err}");
    let lost = std::error::Error::source(&err)
        .and_then(|source| source.downcast_ref::<lock_core::Lost>())
        .expect("the loss is the error's source");
    assert_eq!(lost.reason(), LostReason::NotOwner);
}
