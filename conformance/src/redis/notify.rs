//! Waiting by notification over Pub/Sub: a waiter subscribes, tries once, then sends nothing
//! until the release's `PUBLISH` wakes it at once; its Pub/Sub connection, killed or cut,
//! comes back by itself, subscribes again and wakes its waiters.

use std::time::{Duration, Instant};

use lock_core::redis::keys::{grant_channel_prefix, release_channel};
use lock_core::{Cleared, ErrorKind, Lock, LockGuard, Release};
use tokio::task::JoinHandle;

use super::fixture::{RedisFixture, guarded, handle, name};
use super::options::RedisOptions;
use crate::redis_server::{CommandCounter, RawRedis, Resp};

/// Waits, 5 s at most, until the commands clients sent since the last `take` satisfy `done`,
/// and returns them.
async fn sent_until(counter: &CommandCounter, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut sent = Vec::new();
    loop {
        sent.extend(counter.take().await.unwrap());
        if done(&sent) {
            return sent;
        }
        assert!(Instant::now() < deadline, "only {sent:?} were sent in 5 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Whether `sent` has a `SUBSCRIBE` and, after it, an `EVALSHA`: a waiter watched, then tried.
fn subscribed_then_tried(sent: &[String]) -> bool {
    sent.iter()
        .position(|c| c == "subscribe")
        .is_some_and(|at| sent[at..].iter().any(|c| c == "evalsha"))
}

/// `lock()` in a task of its own, to wait while the case goes on.
fn wait_for(lock: Lock) -> JoinHandle<lock_core::Result<LockGuard>> {
    tokio::spawn(async move { lock.lock().await })
}

/// The waiter's guard, within `within`.
async fn acquired(
    waiting: JoinHandle<lock_core::Result<LockGuard>>,
    within: Duration,
) -> LockGuard {
    tokio::time::timeout(within, waiting)
        .await
        .unwrap_or_else(|_| panic!("the waiter did not get the lock within {within:?}"))
        .expect("the waiting task")
        .expect("acquire")
}

/// How many clients listen for the lock at `key`: subscribed to its release channel, or to a
/// grant channel of its waiter queue (one per backend with waiters).
async fn subscribers(admin: &mut RawRedis, key: &str) -> i64 {
    let pattern = format!("{}*", grant_channel_prefix(key));
    let granted = match admin.run(&["PUBSUB", "CHANNELS", &pattern]).await.unwrap() {
        Resp::Array(Some(channels)) => i64::try_from(channels.len()).unwrap(),
        other => panic!("PUBSUB CHANNELS answered {other:?}"),
    };
    let channel = release_channel(key);
    match admin.run(&["PUBSUB", "NUMSUB", &channel]).await.unwrap() {
        Resp::Array(Some(reply)) if reply.len() == 2 => {
            granted + reply[1].as_int().expect("PUBSUB NUMSUB's count")
        }
        other => panic!("PUBSUB NUMSUB answered {other:?}"),
    }
}

/// A waiter sends only its heartbeat while it waits: `lock()` on a lock another backend holds
/// for 30 s costs one `SUBSCRIBE` (its grant channel) and one `EVALSHA` (it queues), then one
/// `EVALSHA` per second (the heartbeat that keeps its place: no polling, no `PING`), until the
/// holder's release (its `EVALSHA`, which hands the lock over and `PUBLISH`es to the waiter);
/// then the waiter holds it without asking, and its guard's one `EVALSHA` confirms it halfway
/// through the claim (2 s here: after about a second).
///
/// # Examples
///
/// ```no_run
/// # async fn check(redis: &conformance::redis::RedisFixture) {
/// conformance::redis::a_waiter_sends_only_its_heartbeat_while_it_waits(redis).await;
/// # }
/// ```
pub async fn a_waiter_sends_only_its_heartbeat_while_it_waits(fx: &RedisFixture) {
    let mut admin = fx.raw().await;
    let holder_backend = fx.backend().await;
    let waiter_backend = fx.backend().await;
    assert!(
        waiter_backend.capabilities().notify,
        "a Redis backend notifies releases"
    );
    let holder = handle(&holder_backend, "awaited");
    let waiter = guarded(&waiter_backend, "awaited");
    // Warm up, so that only the waiting is counted: open the waiter's Pub/Sub connection (a
    // handshake of its own) and load every script the waiting and the holder use.
    let warm = waiter_backend.watch(&name("warm-up")).await.unwrap();
    assert!(holder.lock().await.unwrap());
    assert_eq!(holder.clear(false).await.unwrap(), Cleared::Cleared);
    let guard = waiter.try_lock().await.unwrap().expect("free");
    assert_eq!(guard.release().await.unwrap(), Release::Released);
    let warm_queue = guarded(&waiter_backend, "warm-up").lock().await.unwrap();
    let renewed = waiter_backend.renew(warm_queue.name(), warm_queue.token(), warm_queue.ttl());
    assert!(renewed.await.unwrap(), "the confirm's script");
    assert_eq!(warm_queue.release().await.unwrap(), Release::Released);
    let counter = fx.counter().await;

    assert!(holder.lock().await.unwrap());
    assert_eq!(
        counter.take().await.unwrap(),
        ["evalsha"],
        "the holder's lock"
    );
    let waiting = wait_for(waiter);
    let sent = sent_until(&counter, |sent| sent.last().is_some_and(|c| c == "evalsha")).await;
    // A client that drops the server's confirmation of `SUBSCRIBE` (fred) confirms it with a
    // `PING` on the Pub/Sub connection before the waiter may try.
    assert!(
        sent == ["subscribe", "evalsha"] || sent == ["subscribe", "ping", "evalsha"],
        "watch (and confirm), then one try: {sent:?}"
    );

    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(!waiting.is_finished(), "the lock is held for 30 s");
    let beats = counter.take().await.unwrap();
    assert!(
        (1..=3).contains(&beats.len()) && beats.iter().all(|c| c == "evalsha"),
        "a heartbeat a second for 2.5 s: {beats:?}"
    );

    assert_eq!(holder.clear(false).await.unwrap(), Cleared::Cleared);
    let guard = acquired(waiting, Duration::from_secs(5)).await;
    let handed = Instant::now();
    assert!(guard.is_held(), "handed over: held without asking");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = counter.take().await.unwrap();
    assert!(
        sent == ["evalsha"] || sent == ["evalsha", "evalsha"],
        "the holder's release (a hand-off), and at most one heartbeat that crossed it: {sent:?}"
    );
    let sent = sent_until(&counter, |sent| !sent.is_empty()).await;
    assert_eq!(sent, ["evalsha"], "the guard's confirm");
    let took = handed.elapsed();
    assert!(
        took < Duration::from_millis(1900),
        "confirmed within the claim (2 s): {took:?}"
    );
    let value = admin.get("awaited").await.unwrap();
    assert_eq!(value.as_deref(), Some(guard.token().as_str()));
    assert_eq!(guard.release().await.unwrap(), Release::Released);
    drop(warm);
}

/// A release wakes a waiter in another process at once: a waiter on a lock with 30 s left gets
/// it within 200 ms of the holder's `clear(false)`, and another within 200 ms of a forced
/// `clear(true)`. Woken by the release's message: not by the expiry, 30 s away, and not by
/// polling, since the backend declares `notify`. The fences of the two guards grow.
///
/// # Examples
///
/// ```no_run
/// # async fn check(redis: &conformance::redis::RedisFixture) {
/// conformance::redis::a_release_wakes_a_waiter_at_once(redis).await;
/// # }
/// ```
pub async fn a_release_wakes_a_waiter_at_once(fx: &RedisFixture) {
    const AT_ONCE: Duration = Duration::from_millis(200);
    let counter = fx.counter().await;
    let holder_backend = fx.backend().await;
    let waiter_backend = fx.backend().await;
    assert!(waiter_backend.capabilities().notify);
    assert!(holder_backend.capabilities().notify);
    let holder = handle(&holder_backend, "wake-up");
    assert!(holder.lock().await.unwrap());
    counter.take().await.unwrap();

    let waiting = wait_for(guarded(&waiter_backend, "wake-up"));
    sent_until(&counter, subscribed_then_tried).await;
    assert!(!waiting.is_finished(), "the lock is held for 30 s");
    let released = Instant::now();
    assert_eq!(holder.clear(false).await.unwrap(), Cleared::Cleared);
    let first = acquired(waiting, Duration::from_secs(5)).await;
    let took = released.elapsed();
    assert!(took < AT_ONCE, "woken {took:?} after the release");
    assert!(first.is_held());

    // Now the first waiter's backend holds it, and a waiter on the other backend is woken by
    // a third party's forced clear.
    let waiting = wait_for(guarded(&holder_backend, "wake-up"));
    sent_until(&counter, subscribed_then_tried).await;
    assert!(!waiting.is_finished(), "the lock is held for 30 s");
    let released = Instant::now();
    let admin = handle(&fx.backend().await, "wake-up");
    assert_eq!(admin.clear(true).await.unwrap(), Cleared::Cleared);
    let second = acquired(waiting, Duration::from_secs(5)).await;
    let took = released.elapsed();
    assert!(took < AT_ONCE, "woken {took:?} after the forced release");
    match (first.fence(), second.fence()) {
        (Some(one), Some(two)) => assert!(one < two, "fences {one} then {two}"),
        fences => panic!("a Redis backend gives fencing tokens: {fences:?}"),
    }
    assert_eq!(second.release().await.unwrap(), Release::Released);
    assert_eq!(first.release().await.unwrap(), Release::Missing);
}

/// A waiter survives its Pub/Sub connection being killed (`CLIENT KILL TYPE pubsub`) while it
/// waits on a lock with 30 s left: the holder's release, published while the connection was
/// down or coming back, still reaches it within a few seconds (the backend reconnects,
/// subscribes again and wakes its waiters), and the new connection then carries the next
/// release's message at once.
///
/// # Examples
///
/// ```no_run
/// # async fn check(redis: &conformance::redis::RedisFixture) {
/// conformance::redis::a_waiter_survives_its_pubsub_connection_being_killed(redis).await;
/// # }
/// ```
pub async fn a_waiter_survives_its_pubsub_connection_being_killed(fx: &RedisFixture) {
    let mut admin = fx.raw().await;
    let holder_backend = fx.backend().await;
    let waiter_backend = fx.backend().await;
    let holder = handle(&holder_backend, "killed-sub");
    assert!(holder.lock().await.unwrap());

    let waiting = wait_for(guarded(&waiter_backend, "killed-sub"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while subscribers(&mut admin, "killed-sub").await == 0 {
        assert!(Instant::now() < deadline, "the waiter never subscribed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "the lock is held for 30 s");
    let killed = admin
        .int(&["CLIENT", "KILL", "TYPE", "pubsub"])
        .await
        .unwrap();
    assert_eq!(killed, 1, "one Pub/Sub connection: the waiter's backend's");
    assert_eq!(holder.clear(false).await.unwrap(), Cleared::Cleared);
    let guard = acquired(waiting, Duration::from_secs(5)).await;
    assert!(guard.is_held());
    assert_eq!(
        subscribers(&mut admin, "killed-sub").await,
        1,
        "subscribed again"
    );

    // The new connection carries messages: another waiter of the same backend is woken by
    // the next release at once.
    assert_eq!(guard.release().await.unwrap(), Release::Released);
    assert!(holder.lock().await.unwrap());
    let waiting = wait_for(guarded(&waiter_backend, "killed-sub"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "the lock is held for 30 s");
    let released = Instant::now();
    assert_eq!(holder.clear(false).await.unwrap(), Cleared::Cleared);
    let guard = acquired(waiting, Duration::from_secs(5)).await;
    let took = released.elapsed();
    assert!(took < Duration::from_millis(200), "woken {took:?} after");
    assert_eq!(guard.release().await.unwrap(), Release::Released);
}

/// While the network to the server is down, watching a lock (subscribing) fails at once with a
/// retryable `ErrorKind::Connection` error, within the response timeout; once the network is
/// back, the backend's Pub/Sub connection comes back by itself, wakes the watches made before
/// the outage (a release may have gone unseen), and delivers the next releases to them.
///
/// # Examples
///
/// ```no_run
/// # async fn check(redis: &conformance::redis::RedisFixture) {
/// conformance::redis::a_broken_pubsub_connection_fails_watches_promptly_then_recovers(redis).await;
/// # }
/// ```
pub async fn a_broken_pubsub_connection_fails_watches_promptly_then_recovers(fx: &RedisFixture) {
    let proxy = fx.proxy().await;
    let options = RedisOptions::default().with_response_timeout(Duration::from_millis(500));
    let backend = fx
        .connect(proxy.url(), options.clone())
        .await
        .unwrap_or_else(|e| panic!("connecting through the proxy: {e:?}"));
    let mut before = backend.watch(&name("before-outage")).await.unwrap();

    proxy.set_down(true);
    for attempt in 0..3 {
        let started = Instant::now();
        let err = backend.watch(&name("during-outage")).await.unwrap_err();
        let took = started.elapsed();
        assert_eq!(
            err.kind(),
            ErrorKind::Connection,
            "attempt {attempt}: {err:?}"
        );
        assert!(err.is_retryable());
        assert!(
            took < options.response_timeout,
            "attempt {attempt}: {took:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    proxy.set_down(false);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut after = loop {
        match backend.watch(&name("after-outage")).await {
            Ok(watch) => break watch,
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Connection, "{e:?}");
                assert!(Instant::now() < deadline, "no Pub/Sub reconnection: {e:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), before.released())
        .await
        .expect("the watch made before the outage is woken once subscribed again");

    // Both watches get the next releases, published by another process.
    let other = fx.backend().await;
    for (watch, lock) in [(&mut before, "before-outage"), (&mut after, "after-outage")] {
        let lock = handle(&other, lock);
        assert!(lock.lock().await.unwrap());
        assert_eq!(lock.clear(false).await.unwrap(), Cleared::Cleared);
        tokio::time::timeout(Duration::from_secs(1), watch.released())
            .await
            .unwrap_or_else(|_| panic!("no message for {}", lock.name().as_str()));
    }
}
