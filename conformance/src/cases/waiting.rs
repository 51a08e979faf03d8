//! Waiting for a lock: woken by a release or at the holder's expiry, giving up at a deadline,
//! safe to cancel, and one winner among many waiters.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lock_core::{Cleared, LockName, LockState, Release};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::Fixture;

/// Long enough that no lock in these cases expires unless the case lets it.
const LONG: Duration = Duration::from_secs(30);
/// How long a wake-up may take on a loaded machine: far below `LONG`, so a waiter that was
/// not woken (and would sleep until the expiry) fails.
const WAKE: Duration = Duration::from_secs(2);

/// A waiter blocked on a held lock is woken by its release, owned or forced, and takes it at
/// once (not at the holder's expiry, 30 s away).
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::wait_wakes_on_release(&fixture).await;
/// # }
/// ```
pub async fn wait_wakes_on_release(fx: &Fixture) {
    for force in [false, true] {
        let name = fx.unique_name("wake-on-release");
        let holder = fx.handle(&name, LONG);
        assert!(holder.lock().await.unwrap());
        // Only a notification can wake it within WAKE: no recheck meanwhile.
        let waiter = fx.guarded(&name, LONG).with_recheck(LONG);
        let mut waiting = tokio::spawn(async move { waiter.lock().await });
        let early = tokio::time::timeout(fx.ticks(2), &mut waiting).await;
        assert!(early.is_err(), "acquire returned while the lock was held");

        let released = Instant::now();
        assert_eq!(holder.clear(force).await.unwrap(), Cleared::Cleared);
        let guard = tokio::time::timeout(WAKE, waiting)
            .await
            .unwrap_or_else(|_| panic!("a waiter was not woken by a release (force: {force})"))
            .unwrap()
            .unwrap();
        assert!(released.elapsed() < WAKE);
        assert!(guard.is_held());
        assert!(!holder.lock().await.unwrap(), "the waiter holds it now");
        assert_eq!(guard.release().await.unwrap(), Release::Released);
        assert_eq!(holder.status().await.unwrap(), LockState::Open);
    }
}

/// A waiter blocked on a lock whose holder vanished (never releases) takes it when the
/// holder's timeout runs out: it sleeps until that expiry instead of polling.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::wait_wakes_at_expiry(&fixture).await;
/// # }
/// ```
pub async fn wait_wakes_at_expiry(fx: &Fixture) {
    let name = fx.unique_name("wake-at-expiry");
    let ttl = fx.ticks(4);
    let holder = fx.handle(&name, ttl);
    assert!(holder.lock().await.unwrap());
    let waiter = fx.guarded(&name, LONG);
    let started = Instant::now();
    let waiting = tokio::spawn(async move { waiter.lock_timeout(LONG).await });
    // On manual time the store's clock jumps at once and the waiter wakes after `ttl` of real
    // time (the remaining time it was told); on real time this sleeps `ttl`.
    let mut clock = fx.clock();
    clock.advance(ttl + fx.tick()).await;
    let guard = tokio::time::timeout(ttl + WAKE, waiting)
        .await
        .expect("a waiter was not woken at the holder's expiry")
        .unwrap()
        .unwrap()
        .expect("acquired after the expiry, long before its own deadline");
    assert!(
        started.elapsed() < ttl + WAKE,
        "woken {:?} after a {ttl:?} expiry",
        started.elapsed()
    );
    assert!(!holder.update().await.unwrap(), "the old holder expired");
    assert_eq!(guard.release().await.unwrap(), Release::Released);
}

/// `acquire_timeout` on a held lock gives up at its deadline with `Ok(None)` (not an error,
/// not later than asked), `try_acquire` gives up at once, and the holder is left alone.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::wait_deadline(&fixture).await;
/// # }
/// ```
pub async fn wait_deadline(fx: &Fixture) {
    let name = fx.unique_name("deadline");
    let holder = fx.handle(&name, LONG);
    assert!(holder.lock().await.unwrap());
    let waiter = fx.guarded(&name, LONG);

    let timeout = fx.ticks(3);
    let started = Instant::now();
    let outcome = waiter.lock_timeout(timeout).await.unwrap();
    let waited = started.elapsed();
    assert!(outcome.is_none(), "acquired a held lock");
    assert!(
        waited >= timeout,
        "gave up after {waited:?}, before {timeout:?}"
    );
    assert!(waited < timeout + WAKE, "gave up after {waited:?}");

    assert!(waiter.try_lock().await.unwrap().is_none());
    assert!(waiter.lock_timeout(Duration::ZERO).await.unwrap().is_none());
    assert!(holder.update().await.unwrap(), "the holder still holds it");
    assert_eq!(holder.clear(false).await.unwrap(), Cleared::Cleared);
    let guard = waiter.lock_timeout(timeout).await.unwrap();
    assert!(
        guard.is_some(),
        "a free lock is acquired before the deadline"
    );
}

/// Dropping a waiting acquire at any point never leaves a lock behind: cancelled while the
/// lock is held, the waiter takes nothing later; cancelled while its request is in flight, a
/// lock it got is released in the background, not left for its (30 s) timeout.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::wait_cancelled_leaves_nothing(&fixture).await;
/// # }
/// ```
pub async fn wait_cancelled_leaves_nothing(fx: &Fixture) {
    // Cancelled while waiting: the holder's release must not hand the lock to a ghost.
    let name = fx.unique_name("cancel-waiting");
    let holder = fx.handle(&name, LONG);
    assert!(holder.lock().await.unwrap());
    let waiter = fx.guarded(&name, LONG);
    let cancelled = tokio::time::timeout(fx.tick(), waiter.lock()).await;
    assert!(cancelled.is_err());
    assert_eq!(holder.clear(false).await.unwrap(), Cleared::Cleared);
    tokio::time::sleep(fx.ticks(2)).await;
    assert_eq!(
        holder.status().await.unwrap(),
        LockState::Open,
        "a cancelled waiter took the lock"
    );

    // Cancelled at every point of an acquire of a free lock.
    let name = fx.unique_name("cancel-anywhere");
    let lock = fx.guarded(&name, LONG);
    let probe = fx.handle(&name, LONG);
    for step in 0..40u64 {
        let limit = Duration::from_micros(step * step * 25);
        // Either cancelled (anywhere inside), or done: then the guard is dropped at once.
        drop(tokio::time::timeout(limit, lock.lock()).await);
        let open = until_open(&probe, WAKE).await;
        assert!(
            open,
            "after cancelling an acquire after {limit:?}, the lock stayed held"
        );
    }
}

/// Eight waiters on one held lock: every release hands it to exactly one of them, and all of
/// them get it in turn, with never two inside at once.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::wait_many_waiters_one_winner(&fixture).await;
/// # }
/// ```
pub async fn wait_many_waiters_one_winner(fx: &Fixture) {
    const WAITERS: usize = 8;
    let name = fx.unique_name("many-waiters");
    let holder = fx.handle(&name, LONG);
    assert!(holder.lock().await.unwrap());
    let inside = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..WAITERS {
        // Woken by notifications alone: no recheck within the case.
        let lock = fx.guarded(&name, LONG).with_recheck(LONG);
        let (inside, most) = (inside.clone(), most.clone());
        let hold = fx.tick() / 5;
        tasks.spawn(async move {
            let guard = lock.lock().await.unwrap();
            let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(hold).await;
            inside.fetch_sub(1, Ordering::SeqCst);
            guard.release().await.unwrap()
        });
    }
    tokio::time::sleep(fx.ticks(2)).await;
    assert_eq!(inside.load(Ordering::SeqCst), 0, "a waiter got a held lock");
    assert_eq!(holder.clear(false).await.unwrap(), Cleared::Cleared);
    let outcomes = tokio::time::timeout(WAKE * WAITERS as u32, tasks.join_all())
        .await
        .expect("every waiter got the lock in turn");
    assert!(outcomes.iter().all(|r| *r == Release::Released));
    assert_eq!(most.load(Ordering::SeqCst), 1, "two waiters inside at once");
    assert_eq!(holder.status().await.unwrap(), LockState::Open);
}

/// [`LockBackend::watch`](lock_core::LockBackend::watch): once it returns, an owned release
/// and a forced one each wake the watch; a failed release (not the owner) and the watch of
/// another name do not.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::watch_wakes_on_release(&fixture).await;
/// # }
/// ```
pub async fn watch_wakes_on_release(fx: &Fixture) {
    let backend = fx.backend();
    let name = LockName::new(fx.unique_name("watch")).unwrap();
    let other = LockName::new(fx.unique_name("watch-other")).unwrap();
    let mut watch = backend.watch(&name).await.unwrap();
    let mut quiet = backend.watch(&other).await.unwrap();

    let holder = fx.handle(name.as_str(), LONG);
    let stranger = fx.handle(name.as_str(), LONG);
    assert!(holder.lock().await.unwrap());
    assert_eq!(stranger.clear(false).await.unwrap(), Cleared::NotOwner);
    let spurious = tokio::time::timeout(fx.tick(), watch.released()).await;
    assert!(spurious.is_err(), "woken without a release");

    assert_eq!(holder.clear(false).await.unwrap(), Cleared::Cleared);
    tokio::time::timeout(WAKE, watch.released())
        .await
        .expect("an owned release wakes the watch");

    assert!(holder.lock().await.unwrap());
    assert_eq!(stranger.clear(true).await.unwrap(), Cleared::Cleared);
    tokio::time::timeout(WAKE, watch.released())
        .await
        .expect("a forced release wakes the watch");

    let other_woken = tokio::time::timeout(fx.tick(), quiet.released()).await;
    assert!(other_woken.is_err(), "another name's watch was woken");
}

/// Waits up to `within` for the lock to be open; whether it was.
async fn until_open(probe: &lock_core::ProcessLock, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if probe.status().await.unwrap() == LockState::Open {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
