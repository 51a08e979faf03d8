//! Guards: renewed in the background for as long as they are held, and reporting the loss of
//! their lock (deleted, taken over, or unreachable store) before anyone else can take it.

use std::time::Duration;

use lock_core::{Cleared, Lock, LockState, LostReason, Release};
use tokio::time::Instant;

use crate::Fixture;
use crate::faults::{Cut, Cuttable};

/// How long a loss may take to be reported, beyond what the case allows for.
const SLACK: Duration = Duration::from_secs(2);

/// Lets `by` pass for the guard (real time) and for the store (its own clock, manual or real).
async fn pass(fx: &Fixture, by: Duration) {
    let mut clock = fx.clock();
    tokio::time::sleep(by).await;
    if fx.is_manual_time() {
        clock.advance(by).await;
    }
}

/// A guard keeps its lock past several timeouts by renewing it in the background; others are
/// kept out all along; `release` frees it and says so.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::guard_renews_in_the_background(&fixture).await;
/// # }
/// ```
pub async fn guard_renews_in_the_background(fx: &Fixture) {
    let name = fx.unique_name("renews");
    let ttl = fx.ticks(6);
    let lock = fx.guarded(&name, ttl);
    let other = fx.handle(&name, ttl);
    let guard = lock.lock().await.unwrap();
    for _ in 0..18 {
        pass(fx, fx.tick()).await;
        assert!(!other.lock().await.unwrap(), "the guard's lock was taken");
    }
    assert!(guard.is_held());
    assert!(guard.try_lost().is_none());
    assert_eq!(guard.release().await.unwrap(), Release::Released);
    assert!(other.lock().await.unwrap(), "released, so free");
    assert_eq!(other.clear(false).await.unwrap(), Cleared::Cleared);
}

/// A guard whose lock is force-cleared reports the loss (`NotOwner`) at its next renewal,
/// within a third of the timeout, and stays lost; `run` stops its work.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::guard_lost_when_cleared(&fixture).await;
/// # }
/// ```
pub async fn guard_lost_when_cleared(fx: &Fixture) {
    let name = fx.unique_name("lost-cleared");
    let ttl = fx.ticks(6);
    let lock = fx.guarded(&name, ttl);
    let guard = lock.lock().await.unwrap();
    let cleared = Instant::now();
    assert_eq!(
        fx.handle(&name, ttl).clear(true).await.unwrap(),
        Cleared::Cleared
    );
    let work = guard.run(std::future::pending::<()>());
    let lost = tokio::time::timeout(ttl + SLACK, work)
        .await
        .expect("run() stopped at the loss")
        .unwrap_err();
    assert_eq!(lost.reason(), LostReason::NotOwner, "{lost}");
    assert!(cleared.elapsed() < ttl / 3 + SLACK);
    assert!(!guard.is_held());
    assert!(guard.valid_until().is_none());
    assert_eq!(guard.lost().await.reason(), LostReason::NotOwner);
    pass(fx, ttl).await;
    assert!(!guard.is_held(), "a lost lock is never held again");
    assert_eq!(guard.release().await.unwrap(), Release::Missing);
}

/// A guard whose lock was cleared and taken by another owner reports the loss, and neither its
/// renewals nor its release or drop touch the new owner's lock.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::guard_lost_when_taken_over(&fixture).await;
/// # }
/// ```
pub async fn guard_lost_when_taken_over(fx: &Fixture) {
    let name = fx.unique_name("lost-taken");
    let ttl = fx.ticks(6);
    let guard = fx.guarded(&name, ttl).lock().await.unwrap();
    let thief = fx.handle(&name, ttl * 10);
    assert_eq!(thief.clear(true).await.unwrap(), Cleared::Cleared);
    assert!(thief.lock().await.unwrap());
    let lost = tokio::time::timeout(ttl + SLACK, guard.lost())
        .await
        .expect("the takeover was reported");
    assert_eq!(lost.reason(), LostReason::NotOwner);
    drop(guard);
    tokio::time::sleep(fx.ticks(2)).await;
    assert!(
        thief.update().await.unwrap(),
        "the lost guard's drop released the new owner's lock"
    );
    assert_eq!(thief.clear(false).await.unwrap(), Cleared::Cleared);
}

/// A guard whose renewals cannot reach the store (requests refused, or hanging as on a paused
/// server) reports the loss (`Expired`) no later than its timeout from the acquire: before
/// anyone else could take the lock.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::guard_lost_when_store_unreachable(&fixture).await;
/// # }
/// ```
pub async fn guard_lost_when_store_unreachable(fx: &Fixture) {
    for how in [Cut::Refuse, Cut::Hang] {
        let name = fx.unique_name("lost-unreachable");
        let ttl = fx.ticks(6);
        let link = Cuttable::new(fx.backend().clone());
        let lock = Lock::new(link.clone(), &name, ttl).unwrap();
        // Watch the name first, so that the acquire below makes no connection of its own (a
        // Redis backend opens its Pub/Sub connection on the first watch): from `sent`, the
        // acquire's request goes out at once.
        let _warm = if fx.backend().capabilities().notify {
            Some(fx.backend().watch(lock.name()).await.unwrap())
        } else {
            None
        };
        let sent = Instant::now();
        let guard = lock.lock().await.unwrap();
        link.cut(how);
        let lost = tokio::time::timeout(ttl + SLACK, guard.lost())
            .await
            .unwrap_or_else(|_| panic!("no loss reported with the link cut ({how:?})"));
        let noticed = sent.elapsed();
        assert_eq!(lost.reason(), LostReason::Expired, "{how:?}: {lost}");
        // Lost from the end of its validity, which is before the store's expiry...
        let at = lost.at() - sent;
        assert!(
            at < ttl,
            "{how:?}: lost {at:?} after acquiring, not before {ttl:?}"
        );
        assert!(
            at >= ttl / 3,
            "{how:?}: lost after {at:?}, before any renewal was due"
        );
        // ...and said so then, give or take the scheduling of a loaded machine.
        assert!(
            noticed < ttl + fx.tick(),
            "{how:?}: the loss was noticed {noticed:?} after acquiring"
        );
        if how == Cut::Refuse {
            assert!(lost.cause().is_some(), "the renewal error is kept");
        }
        assert!(!guard.is_held());
        link.mend();
        assert!(!guard.is_held(), "a lost lock is never held again");
        drop(guard);
        // The store itself still had the key (nobody could delete it): it expires on its own.
        pass(fx, ttl).await;
        assert_eq!(
            fx.handle(&name, ttl).status().await.unwrap(),
            LockState::Open
        );
    }
}

/// A dropped guard releases its lock in the background (inside a runtime): the next owner
/// gets it at once, not after the timeout.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::guard_dropped_releases(&fixture).await;
/// # }
/// ```
pub async fn guard_dropped_releases(fx: &Fixture) {
    let name = fx.unique_name("dropped");
    let lock = fx.guarded(&name, Duration::from_secs(30));
    let guard = lock.lock().await.unwrap();
    assert!(guard.is_held());
    drop(guard);
    let next = lock
        .lock_timeout(SLACK)
        .await
        .unwrap()
        .expect("the dropped guard's lock was released");
    assert_eq!(next.release().await.unwrap(), Release::Released);
}

/// A guard that lost its lock stops keeping this process's other waiters out: a waiter queued
/// behind it gets the lock once the loss is noticed, while the lost guard is still alive.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::guard_lost_hands_over_to_the_next_waiter(&fixture).await;
/// # }
/// ```
pub async fn guard_lost_hands_over_to_the_next_waiter(fx: &Fixture) {
    let name = fx.unique_name("lost-hand-over");
    let ttl = fx.ticks(6);
    let guard = fx.guarded(&name, ttl).lock().await.unwrap();
    let waiter = fx.guarded(&name, ttl);
    let mut waiting = tokio::spawn(async move { waiter.lock().await });
    let early = tokio::time::timeout(fx.ticks(2), &mut waiting).await;
    assert!(early.is_err(), "a waiter got a held lock");

    assert_eq!(
        fx.handle(&name, ttl).clear(true).await.unwrap(),
        Cleared::Cleared
    );
    let next = tokio::time::timeout(ttl + SLACK, waiting)
        .await
        .expect("the waiter got the lock after the holder's loss")
        .unwrap()
        .unwrap();
    // With turns (a backend that notifies) the waiter came after the loss was noticed; a
    // polling waiter may come first. Either way the old guard knows it lost the lock.
    let lost = tokio::time::timeout(ttl + SLACK, guard.lost())
        .await
        .expect("the old guard noticed its loss");
    assert_eq!(lost.reason(), LostReason::NotOwner);
    assert!(next.is_held());
    drop(guard);
    tokio::time::sleep(fx.tick()).await;
    assert!(
        next.is_held(),
        "the lost guard's drop left the new lock alone"
    );
    assert_eq!(next.release().await.unwrap(), Release::Released);
}
