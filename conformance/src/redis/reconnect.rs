//! A server that stalls, kills the connection or goes away: typed, retryable errors within the
//! response timeout, replies never mixed up, a request sent again only where that is safe,
//! reconnection by itself, and a waiter that waits through it all.

use std::time::{Duration, Instant};

use lock_core::{Cleared, ErrorKind, Lock, LockState, ProcessLock, Release};

use super::fixture::{RedisFixture, handle};
use super::options::RedisOptions;

/// A server that stops answering (`CLIENT PAUSE`) gives a retryable `ErrorKind::Timeout` within
/// the response timeout; once it answers again, every reply goes to its own request.
///
/// # Examples
///
/// ```no_run
/// # async fn check(redis: &conformance::redis::RedisFixture) {
/// conformance::redis::a_stalled_server_gives_a_timeout_then_answers_stay_in_order(redis).await;
/// # }
/// ```
pub async fn a_stalled_server_gives_a_timeout_then_answers_stay_in_order(fx: &RedisFixture) {
    let mut admin = fx.raw().await;
    let options = RedisOptions::default().with_response_timeout(Duration::from_millis(300));
    let backend = fx.backend_with(options).await;
    let a = handle(&backend, "stalled");
    let b = handle(&backend, "stalled");
    assert!(a.lock().await.unwrap());

    admin
        .run(&["CLIENT", "PAUSE", "1500", "ALL"])
        .await
        .unwrap();
    let started = Instant::now();
    let err = b.lock().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
    assert!(err.is_retryable());
    assert!(
        started.elapsed() < Duration::from_millis(1200),
        "{:?}",
        started.elapsed()
    );

    // Once the pause ends, the late reply must not be mistaken for a later request's.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!b.lock().await.unwrap(), "a still holds it");
    assert!(a.update().await.unwrap());
    assert_eq!(b.clear(false).await.unwrap(), Cleared::NotOwner);
    assert_eq!(a.clear(false).await.unwrap(), Cleared::Cleared);
    assert_eq!(a.status().await.unwrap(), LockState::Open);
}

/// After the server kills the backend's connection (`CLIENT KILL`), requests fail with
/// `ErrorKind::Connection` (and are not replayed) until the backend reconnects, by itself.
///
/// # Examples
///
/// ```no_run
/// # async fn check(redis: &conformance::redis::RedisFixture) {
/// conformance::redis::reconnects_after_the_connection_is_killed(redis).await;
/// # }
/// ```
pub async fn reconnects_after_the_connection_is_killed(fx: &RedisFixture) {
    let mut admin = fx.raw().await;
    let backend = fx.backend().await;
    let lock = handle(&backend, "reconnect");
    assert!(lock.lock().await.unwrap());
    // Kill every client connection but the admin's own.
    let killed = admin
        .int(&["CLIENT", "KILL", "SKIPME", "yes", "TYPE", "normal"])
        .await
        .unwrap();
    assert!(killed >= 1, "{killed}");
    // The request that finds the connection dead is sent again on a new one.
    assert!(
        lock.update().await.unwrap(),
        "still the owner after reconnecting"
    );
    admin
        .int(&["CLIENT", "KILL", "SKIPME", "yes", "TYPE", "normal"])
        .await
        .unwrap();
    assert_eq!(lock.clear(false).await.unwrap(), Cleared::Cleared);
}

/// While the server is unreachable, every operation fails with a retryable
/// `ErrorKind::Connection` error within the response timeout; once it is back, the backend
/// reconnects by itself within a few seconds.
///
/// # Examples
///
/// ```no_run
/// # async fn check(redis: &conformance::redis::RedisFixture) {
/// conformance::redis::an_outage_gives_connection_errors_then_the_backend_recovers(redis).await;
/// # }
/// ```
pub async fn an_outage_gives_connection_errors_then_the_backend_recovers(fx: &RedisFixture) {
    let proxy = fx.proxy().await;
    let options = RedisOptions::default().with_response_timeout(Duration::from_millis(500));
    let backend = fx
        .connect(proxy.url(), options)
        .await
        .unwrap_or_else(|e| panic!("connecting through the proxy: {e:?}"));
    let lock = handle(&backend, "outage");
    assert!(lock.lock().await.unwrap());

    // Down once every connection through it is closed: a request sent before would be
    // carried to the server, and time out waiting for a reply that is never passed on.
    proxy
        .cut_off(Duration::from_secs(5))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for _ in 0..3 {
        let started = Instant::now();
        let err = lock.update().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Connection, "{err:?}");
        assert!(err.is_retryable());
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{:?}",
            started.elapsed()
        );
    }
    let err = lock.status().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err:?}");

    // Back: reconnected in the background, within the backends' 1 s cap between attempts.
    proxy.set_down(false);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match lock.update().await {
            Ok(renewed) => {
                assert!(renewed, "still the owner");
                break;
            }
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Connection, "{e:?}");
                assert!(Instant::now() < deadline, "no reconnection: {e:?}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    assert_eq!(lock.clear(false).await.unwrap(), Cleared::Cleared);
}

/// A release whose reply is lost (the server applied it, then the connection broke) is sent
/// once more on a new connection, which is safe: the script compares the token, so the second
/// one finds the lock gone (`Missing`) and touches nothing. It is never sent a third time.
///
/// # Examples
///
/// ```no_run
/// # async fn check(redis: &conformance::redis::RedisFixture) {
/// conformance::redis::a_request_whose_reply_is_lost_is_sent_again_safely(redis).await;
/// # }
/// ```
pub async fn a_request_whose_reply_is_lost_is_sent_again_safely(fx: &RedisFixture) {
    let counter = fx.counter().await;
    let proxy = fx.proxy().await;
    let backend = fx
        .connect(proxy.url(), RedisOptions::default())
        .await
        .unwrap_or_else(|e| panic!("connecting through the proxy: {e:?}"));
    let lock = handle(&backend, "lost-reply");
    // Load the release script, so that the release below is a single EVALSHA.
    assert!(lock.lock().await.unwrap());
    assert_eq!(lock.clear(false).await.unwrap(), Cleared::Cleared);
    assert_eq!(lock.status().await.unwrap(), LockState::Open);
    assert!(lock.lock().await.unwrap());
    counter.take().await.unwrap();

    proxy.lose_next_reply();
    let cleared = lock.clear(false).await;
    assert_eq!(
        cleared.unwrap(),
        Cleared::Missing,
        "the second release found the first one's work done"
    );
    assert_eq!(lock.status().await.unwrap(), LockState::Open);
    let sent = counter.take().await.unwrap();
    let evalshas = sent.iter().filter(|c| *c == "evalsha").count();
    assert_eq!(evalshas, 3, "two releases and the status: {sent:?}");
}

/// A waiter waits through a stalled server (`CLIENT PAUSE` longer than its response timeout)
/// and through a dropped connection: it tries again until it gets the lock, never failing.
///
/// # Examples
///
/// ```no_run
/// # async fn check(redis: &conformance::redis::RedisFixture) {
/// conformance::redis::a_waiter_waits_through_a_stall_and_a_dropped_connection(redis).await;
/// # }
/// ```
pub async fn a_waiter_waits_through_a_stall_and_a_dropped_connection(fx: &RedisFixture) {
    let mut admin = fx.raw().await;
    let options = RedisOptions::default().with_response_timeout(Duration::from_millis(200));
    let holder_backend = fx.backend().await;
    let waiter_backend = fx.backend_with(options).await;
    let holder = ProcessLock::new(holder_backend, "stalled", Duration::from_millis(1500)).unwrap();
    assert!(
        holder.lock().await.unwrap(),
        "a seed-style lock: no renewal"
    );
    let waiter = Lock::new(waiter_backend, "stalled", Duration::from_secs(5)).unwrap();
    let started = Instant::now();
    let waiting = tokio::spawn(async move { waiter.lock_timeout(Duration::from_secs(15)).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    admin
        .run(&["CLIENT", "PAUSE", "1000", "ALL"])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    admin
        .int(&["CLIENT", "KILL", "SKIPME", "yes", "TYPE", "normal"])
        .await
        .unwrap();
    admin
        .int(&["CLIENT", "KILL", "SKIPME", "yes", "TYPE", "pubsub"])
        .await
        .unwrap();
    let guard = waiting
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("the waiter gave up: {e:?}"))
        .expect("the waiter took the lock");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1400),
        "taken {took:?} after starting, before the holder's expiry"
    );
    assert!(took < Duration::from_secs(6), "{took:?}");
    assert_eq!(guard.release().await.unwrap(), Release::Released);
}
