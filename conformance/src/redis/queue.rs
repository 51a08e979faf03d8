//! The waiter queue between processes, on a real server: waiters of separate backends (as
//! separate processes are) take turns in the order they queued, the releaser queues behind
//! them, a release by a program that knows nothing of the queue reaches the first waiter, and
//! the queue's keys never outlive its waiters.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lock_core::queue::{Leave, QueueStep};
use lock_core::redis::keys::{lease_key, queue_key};
use lock_core::{LockState, Release};

use super::fixture::{RedisFixture, guarded, handle, name};
use crate::cases::queue::{puppet, until_queued};

/// How long a hand-over may take on a loaded machine.
const WAKE: Duration = Duration::from_secs(2);

/// Waiters of four separate backends queue one after another behind a holder on a fifth; the
/// holder releases and at once asks again. The lock goes to the four in the order they queued,
/// and only then back to the holder: across processes a releaser cannot barge back in.
///
/// # Examples
///
/// ```no_run
/// # async fn check(redis: &conformance::redis::RedisFixture) {
/// conformance::redis::waiters_of_separate_backends_take_turns_in_arrival_order(redis).await;
/// # }
/// ```
pub async fn waiters_of_separate_backends_take_turns_in_arrival_order(fx: &RedisFixture) {
    let lock = name("turns");
    let holder_backend = fx.backend().await;
    let holder = guarded(&holder_backend, "turns");
    let first = holder.lock().await.unwrap();
    let turns = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for id in 1..=4 {
        let waiter = guarded(&fx.backend().await, "turns");
        let turns = turns.clone();
        tasks.push(tokio::spawn(async move {
            let guard = waiter.lock().await.unwrap();
            turns.lock().unwrap().push(id);
            tokio::time::sleep(Duration::from_millis(5)).await;
            assert_eq!(guard.release().await.unwrap(), Release::Released);
        }));
        until_queued(&holder_backend, &lock, id).await;
    }
    assert_eq!(first.release().await.unwrap(), Release::Released);
    let again = holder
        .lock_timeout(WAKE * 4)
        .await
        .unwrap()
        .expect("its turn came");
    turns.lock().unwrap().push(0);
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        *turns.lock().unwrap(),
        [1, 2, 3, 4, 0],
        "served in queue order, the releaser last"
    );
    assert_eq!(again.release().await.unwrap(), Release::Released);
}

/// A release the queue is not told of (a `DEL` by hand, `process-lock-node`'s `clear`) reaches
/// the first waiter within its heartbeat: the waiter of another backend takes the lock within
/// a second (plus slack), not at the holder's expiry 30 s away. And a `SET NX` as
/// `process-lock-node` takes locks never overwrites a queued hand-off, nor is overwritten.
///
/// # Examples
///
/// ```no_run
/// # async fn check(redis: &conformance::redis::RedisFixture) {
/// conformance::redis::a_foreign_del_reaches_the_first_waiter_within_its_heartbeat(redis).await;
/// # }
/// ```
pub async fn a_foreign_del_reaches_the_first_waiter_within_its_heartbeat(fx: &RedisFixture) {
    let mut admin = fx.raw().await;
    let holder = handle(&fx.backend().await, "foreign-del");
    assert!(holder.lock().await.unwrap());
    let waiter_backend = fx.backend().await;
    let waiter = guarded(&waiter_backend, "foreign-del");
    let waiting = tokio::spawn(async move { waiter.lock().await });
    until_queued(&waiter_backend, &name("foreign-del"), 1).await;
    let deleted = Instant::now();
    assert_eq!(admin.int(&["DEL", "foreign-del"]).await.unwrap(), 1);
    let bound = lock_core::queue::QueueTiming::MAX_HEARTBEAT + WAKE;
    let guard = tokio::time::timeout(bound, waiting)
        .await
        .unwrap_or_else(|_| panic!("a DEL by hand went unseen for {bound:?}"))
        .unwrap()
        .unwrap();
    assert!(deleted.elapsed() < bound);
    let value = admin.get("foreign-del").await.unwrap();
    assert_eq!(value.as_deref(), Some(guard.token().as_str()));

    // A program that knows nothing of the queue (process-lock-node's `SET NX`) may take a lock
    // that frees up with waiters queued (it gets no fairness), but is never overwritten: the
    // waiter gets the lock only once that program's key is gone.
    let waiter = guarded(&waiter_backend, "foreign-del");
    let waiting = tokio::spawn(async move { waiter.lock().await });
    until_queued(&waiter_backend, &name("foreign-del"), 1).await;
    assert_eq!(guard.release().await.unwrap(), Release::Released);
    let took = admin
        .run(&["SET", "foreign-del", "node", "NX", "PX", "800"])
        .await
        .unwrap();
    assert!(took.is_nil(), "the release handed the lock on: {took:?}");
    let second = tokio::time::timeout(WAKE, waiting)
        .await
        .expect("handed over at once")
        .unwrap()
        .unwrap();
    assert_eq!(second.release().await.unwrap(), Release::Released);
    let node = admin
        .run(&["SET", "foreign-del", "node", "NX", "PX", "800"])
        .await
        .unwrap();
    assert!(
        !node.is_nil(),
        "a free lock with no one queued is Node's to take"
    );
    let waiter = guarded(&waiter_backend, "foreign-del");
    let started = Instant::now();
    let third = tokio::time::timeout(WAKE * 2, waiter.lock())
        .await
        .expect("Node's key expires")
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "the waiter took the lock while Node's key was there"
    );
    assert_eq!(third.release().await.unwrap(), Release::Released);
}

/// The queue's two keys never outlive its waiters: they expire after twice the longest lease
/// of a waiter that stopped stepping, and a release that finds only lapsed waiters deletes
/// them.
///
/// # Examples
///
/// ```no_run
/// # async fn check(redis: &conformance::redis::RedisFixture) {
/// conformance::redis::the_queue_leaves_no_keys_behind(redis).await;
/// # }
/// ```
pub async fn the_queue_leaves_no_keys_behind(fx: &RedisFixture) {
    let mut admin = fx.raw().await;
    let backend = fx.backend().await;
    let (queue, leases) = (queue_key("no-keys"), lease_key("no-keys"));
    let holder = handle(&backend, "no-keys");
    assert!(holder.lock().await.unwrap());

    // A waiter that stops stepping: its lease of 200 ms ends, the keys expire 400 ms later.
    let lease = Duration::from_millis(200);
    let dead = puppet(lease, lease);
    let step = backend.queue_step(&name("no-keys"), &dead).await.unwrap();
    assert!(matches!(step, QueueStep::Queued { .. }));
    assert_eq!(admin.int(&["EXISTS", &queue, &leases]).await.unwrap(), 2);
    let pttl = admin.int(&["PTTL", &queue]).await.unwrap();
    assert!((1..=400).contains(&pttl), "the queue expires: PTTL {pttl}");
    tokio::time::sleep(lease * 2 + Duration::from_millis(100)).await;
    assert_eq!(admin.int(&["EXISTS", &queue, &leases]).await.unwrap(), 0);

    // A waiter whose lease ran out is dropped by the release, which deletes the keys.
    let dead = puppet(lease, lease);
    let step = backend.queue_step(&name("no-keys"), &dead).await.unwrap();
    assert!(matches!(step, QueueStep::Queued { .. }));
    tokio::time::sleep(lease + Duration::from_millis(50)).await;
    assert_eq!(
        holder.clear(false).await.unwrap(),
        lock_core::Cleared::Cleared
    );
    assert_eq!(admin.int(&["EXISTS", &queue, &leases]).await.unwrap(), 0);
    assert_eq!(holder.status().await.unwrap(), LockState::Open);

    // A waiter that timed out left: nothing stays.
    assert!(holder.lock().await.unwrap());
    let impatient = guarded(&backend, "no-keys");
    assert!(impatient.lock_timeout(lease).await.unwrap().is_none());
    assert_eq!(admin.int(&["EXISTS", &queue, &leases]).await.unwrap(), 0);
    assert_eq!(
        holder.clear(false).await.unwrap(),
        lock_core::Cleared::Cleared
    );
}

/// A hand-off whose message never arrives is found by the waiter's next step, with a fence;
/// and if the fencing counter was deleted since (by hand), the step draws a fresh fence, later
/// than any handed before, instead of failing. The same for a waiter that gives up at its
/// deadline and keeps the lock it was handed.
///
/// # Examples
///
/// ```no_run
/// # async fn check(redis: &conformance::redis::RedisFixture) {
/// conformance::redis::a_lost_hand_off_is_confirmed_with_a_fence_even_without_the_counter(redis).await;
/// # }
/// ```
pub async fn a_lost_hand_off_is_confirmed_with_a_fence_even_without_the_counter(fx: &RedisFixture) {
    let mut admin = fx.raw().await;
    let backend = fx.backend().await;
    let lock = name("lost-grant");
    let fence_key = lock_core::redis::keys::fence_key("lost-grant");
    let holder = guarded(&backend, "lost-grant").lock().await.unwrap();
    let first_fence = holder.fence().expect("Redis fences");
    // Waiters stepped by hand: nothing expects their hand-offs, whose messages are lost.
    let long = Duration::from_secs(30);
    let (one, two) = (puppet(long, long), puppet(long, long));
    for waiter in [&one, &two] {
        let step = backend.queue_step(&lock, waiter).await.unwrap();
        assert!(matches!(step, QueueStep::Queued { .. }), "{step:?}");
    }
    assert_eq!(holder.release().await.unwrap(), Release::Released);
    assert_eq!(admin.int(&["DEL", &fence_key]).await.unwrap(), 1);
    let fence = match backend.queue_step(&lock, &one).await.unwrap() {
        QueueStep::Acquired { fence } => fence,
        other => panic!("the first waiter was handed the lock: {other:?}"),
    };
    assert!(fence > first_fence, "{fence} after {first_fence}");
    let value = admin.get("lost-grant").await.unwrap();
    assert_eq!(value.as_deref(), Some(one.token.as_str()));

    assert_eq!(
        backend.release(&lock, &one.token).await.unwrap(),
        Release::Released
    );
    assert_eq!(admin.int(&["DEL", &fence_key]).await.unwrap(), 1);
    let kept = backend.leave_queue(&lock, &two, true).await.unwrap();
    let Leave::Kept { fence: last } = kept else {
        panic!("the second waiter was handed the lock, and keeps it: {kept:?}");
    };
    assert!(last > fence, "{last} after {fence}");
    assert_eq!(
        backend.release(&lock, &two.token).await.unwrap(),
        Release::Released
    );
}
