//! The two handles' API as a user meets it, beyond what the conformance suite checks on every
//! backend (`holds`, `with_lock` released after the work, on cancellation and on loss): a panic
//! inside `with_lock`, the deadline variants, the timeout floor, and the owner model between a
//! `Lock` and a `ProcessLock`.
#![cfg(feature = "memory")]

use std::sync::Arc;
use std::time::Duration;

use process_lock::{ErrorKind, Lock, LockBackend, MemoryBackend, ProcessLock, Release};
use tokio::time::{Instant, timeout};

const TTL: Duration = Duration::from_secs(30);
/// Longer than any of these steps takes, even on a loaded machine: a bound, not a measure.
const BOUND: Duration = Duration::from_secs(5);

fn backend() -> Arc<dyn LockBackend> {
    Arc::new(MemoryBackend::new())
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
