//! The two handles' API as a user meets it: `Lock` as tokio's `Mutex` (waiting `lock`,
//! `try_lock`, deadlines, `with_lock`), `ProcessLock`'s read-only `holds`, and the owner model
//! between them. The same calls on Redis are covered by the conformance suite.
#![cfg(feature = "memory")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use process_lock::{
    ErrorKind, Lock, LockBackend, LockState, LostReason, MemoryBackend, ProcessLock, Release,
};
use tokio::time::{Instant, timeout};

const TTL: Duration = Duration::from_secs(30);
/// Longer than any of these steps takes, even on a loaded machine: a bound, not a measure.
const BOUND: Duration = Duration::from_secs(5);

fn backend() -> Arc<dyn LockBackend> {
    Arc::new(MemoryBackend::new())
}

#[tokio::test]
async fn with_lock_returns_the_output_and_releases() {
    let backend = backend();
    let lock = Lock::new(backend.clone(), "jobs", TTL).unwrap();
    let seen = lock
        .with_lock(async |guard| {
            assert!(guard.is_held());
            lock.status().await.unwrap()
        })
        .await
        .unwrap();
    assert_eq!(seen, LockState::Locked, "held while the closure ran");
    assert_eq!(
        lock.status().await.unwrap(),
        LockState::Open,
        "released after"
    );

    // An error of the work is its output: the lock is released all the same.
    let failed: Result<(), &str> = lock.with_lock(async |_| Err("no")).await.unwrap();
    assert_eq!(failed, Err("no"));
    assert_eq!(lock.status().await.unwrap(), LockState::Open);
}

#[tokio::test]
async fn with_lock_releases_when_the_work_panics() {
    let lock = Lock::new(backend(), "jobs", TTL).unwrap();
    let worker = lock.clone();
    let panicked = tokio::spawn(async move {
        worker
            .with_lock(async |_| -> () { panic!("the work failed") })
            .await
    })
    .await;
    assert!(panicked.unwrap_err().is_panic());
    // The guard's drop released the lock in the background: the next lock() gets it at once,
    // not after the 30 s timeout.
    let guard = timeout(BOUND, lock.lock()).await.unwrap().unwrap();
    assert_eq!(guard.release().await.unwrap(), Release::Released);
}

#[tokio::test]
async fn with_lock_releases_when_cancelled() {
    let lock = Lock::new(backend(), "jobs", TTL).unwrap();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let worker = lock.clone();
    let task = tokio::spawn(async move {
        worker
            .with_lock(async |_| {
                started_tx.send(()).unwrap();
                std::future::pending::<()>().await
            })
            .await
    });
    started_rx.await.unwrap();
    assert_eq!(lock.status().await.unwrap(), LockState::Locked);
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    let guard = timeout(BOUND, lock.lock()).await.unwrap().unwrap();
    assert_eq!(guard.release().await.unwrap(), Release::Released);
}

#[tokio::test]
async fn with_lock_stops_the_work_when_the_lock_is_lost() {
    let backend = backend();
    let lock = Lock::new(backend.clone(), "jobs", Duration::from_millis(300)).unwrap();
    let admin = ProcessLock::new(backend, "jobs", TTL).unwrap();
    let finished = AtomicBool::new(false);
    let outcome = lock
        .with_lock(async |_| {
            // An operator clears the lock by force; the next renewal (every 100 ms) sees it.
            assert_eq!(
                admin.clear(true).await.unwrap(),
                process_lock::Cleared::Cleared
            );
            tokio::time::sleep(BOUND).await;
            finished.store(true, Ordering::SeqCst);
        })
        .await;
    let err = outcome.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LockLost, "{err}");
    let lost = std::error::Error::source(&err)
        .and_then(|source| source.downcast_ref::<process_lock::Lost>())
        .expect("the loss is the source");
    assert_eq!(lost.reason(), LostReason::NotOwner);
    assert!(!finished.load(Ordering::SeqCst), "the work was stopped");
}

#[tokio::test]
async fn try_lock_and_deadlines_give_up_while_another_guard_holds() {
    let lock = Lock::new(backend(), "jobs", TTL).unwrap();
    let held = lock.try_lock().await.unwrap().expect("free");
    assert!(lock.try_lock().await.unwrap().is_none());
    assert!(
        lock.lock_timeout(Duration::from_millis(50))
            .await
            .unwrap()
            .is_none()
    );
    let deadline = Instant::now() + Duration::from_millis(50);
    assert!(lock.lock_until(deadline).await.unwrap().is_none());
    assert!(
        Instant::now() >= deadline,
        "gave up at the deadline, not before"
    );
    // A deadline already past still tries once: a free lock is taken.
    assert_eq!(held.release().await.unwrap(), Release::Released);
    let guard = lock.lock_until(Instant::now()).await.unwrap();
    assert!(guard.is_some(), "a free lock is taken even at the deadline");
}

#[tokio::test]
async fn a_waiting_lock_gets_the_lock_when_the_guard_is_released() {
    let lock = Lock::new(backend(), "jobs", TTL).unwrap();
    let held = lock.lock().await.unwrap();
    let first_owner = held.token().clone();
    let waiter = lock.clone();
    let waiting = tokio::spawn(async move { waiter.lock().await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !waiting.is_finished(),
        "lock() waits, as tokio's Mutex::lock does"
    );
    assert_eq!(held.release().await.unwrap(), Release::Released);
    let guard = timeout(BOUND, waiting).await.unwrap().unwrap().unwrap();
    assert_ne!(guard.token(), &first_owner, "each guard is its own owner");
}

#[tokio::test]
async fn a_lock_refuses_a_timeout_too_short_to_renew() {
    let err = Lock::new(backend(), "jobs", Duration::from_millis(99)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("at least 100ms"), "{err}");
    // The seed-style handle renews only when told: any timeout is fine.
    assert!(ProcessLock::new(backend(), "jobs", Duration::from_millis(1)).is_ok());
}

#[tokio::test]
async fn holds_answers_for_this_handle_only_and_extends_nothing() {
    let clock = process_lock::memory::ManualClock::new();
    let backend: Arc<dyn LockBackend> = Arc::new(MemoryBackend::with_clock(clock.clone()));
    let mine = ProcessLock::new(backend.clone(), "jobs", TTL).unwrap();
    let other = ProcessLock::new(backend.clone(), "jobs", TTL).unwrap();
    assert!(!mine.holds().await.unwrap(), "not taken yet");
    assert!(mine.lock().await.unwrap());
    assert!(mine.holds().await.unwrap());
    assert!(
        mine.clone().holds().await.unwrap(),
        "a clone is the same owner"
    );
    assert!(
        !other.holds().await.unwrap(),
        "another handle is another owner"
    );

    // `holds` is read-only: asking at 20 s does not push the expiry past 30 s.
    clock.advance(Duration::from_secs(20));
    assert!(mine.holds().await.unwrap());
    clock.advance(Duration::from_secs(11));
    assert!(!mine.holds().await.unwrap(), "expired at 30 s");
    assert_eq!(mine.status().await.unwrap(), LockState::Open);
}

#[tokio::test]
async fn a_process_lock_and_a_lock_of_one_name_exclude_each_other() {
    let backend = backend();
    let seed = ProcessLock::new(backend.clone(), "jobs", TTL).unwrap();
    let lock = Lock::new(backend, "jobs", TTL).unwrap();
    assert!(seed.lock().await.unwrap());
    assert!(lock.try_lock().await.unwrap().is_none());
    let waiting = tokio::spawn({
        let lock = lock.clone();
        async move { lock.lock().await }
    });
    assert_eq!(
        seed.clear(false).await.unwrap(),
        process_lock::Cleared::Cleared
    );
    let guard = timeout(BOUND, waiting).await.unwrap().unwrap().unwrap();
    assert!(!seed.lock().await.unwrap(), "the guard holds it now");
    assert!(!seed.holds().await.unwrap());
    assert_eq!(guard.release().await.unwrap(), Release::Released);
}
