//! A guard's validity against the server's own expiry: on a paused server it reports its loss
//! before the lock could expire, and behind a slow link it trusts its lock no longer than the
//! server keeps it.

use std::time::{Duration, Instant};

use lock_core::{Cleared, ErrorKind, Lock, LockGuard, LockState, LostReason, ProcessLock, Release};

use super::fixture::{RedisFixture, guards, handle};
use super::options::RedisOptions;
use crate::redis_server::RawRedis;

/// A server that stops answering (`CLIENT PAUSE`) while a guard holds a 1 s lock: the renewals
/// time out (`ErrorKind::Timeout`, at the response timeout of 250 ms), and the guard reports
/// `LostReason::Expired` from before 1 s has passed since it was acquired, so before the server
/// could expire the lock and hand it to someone else, and says so then (within scheduling
/// slack). Once the server answers again, the backend works.
///
/// # Examples
///
/// ```no_run
/// # async fn check(redis: &conformance::redis::RedisFixture) {
/// conformance::redis::a_paused_server_makes_a_guard_report_its_loss_before_the_lock_expires(redis).await;
/// # }
/// ```
pub async fn a_paused_server_makes_a_guard_report_its_loss_before_the_lock_expires(
    fx: &RedisFixture,
) {
    const TTL: Duration = Duration::from_millis(1000);
    let mut admin = fx.raw().await;
    let options = RedisOptions::default().with_response_timeout(Duration::from_millis(250));
    let backend = fx.backend_with(options).await;
    let lock = Lock::new(backend.clone(), "paused", TTL).unwrap();
    let guard = lock.lock().await.unwrap();
    let acquired = Instant::now();

    admin
        .run(&["CLIENT", "PAUSE", "3000", "ALL"])
        .await
        .unwrap();
    let lost = tokio::time::timeout(Duration::from_secs(3), guard.lost())
        .await
        .expect("the loss is reported");
    let noticed = acquired.elapsed();
    assert_eq!(lost.reason(), LostReason::Expired, "{lost}");
    // Lost from the end of its validity, before the server's expiry (at least 1 s after the
    // acquire was sent, and it was sent before `acquired`)...
    let at = lost.at().into_std() - acquired;
    assert!(at < TTL, "lost {at:?} after acquiring");
    assert!(
        at >= TTL / 2,
        "lost {at:?} after acquiring, before renewals could fail"
    );
    // ...and said so then, give or take the scheduling of a loaded machine.
    assert!(
        noticed < TTL + Duration::from_millis(100),
        "noticed {noticed:?} after acquiring"
    );
    if let Some(cause) = lost.cause() {
        assert_eq!(cause.kind(), ErrorKind::Timeout, "{lost}");
    }
    assert!(!guard.is_held());
    // Still paused: the backend's requests end at its response timeout, as the renewals did.
    let started = Instant::now();
    let err = lock.status().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
    let took = started.elapsed();
    assert!(took < Duration::from_millis(750), "{took:?}");

    // On Redis 7.0 UNPAUSE itself waits for the pause to end.
    admin.run(&["CLIENT", "UNPAUSE"]).await.unwrap();
    let other = handle(&backend, "after-pause");
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match other.lock().await {
            Ok(taken) => {
                assert!(taken, "free");
                break;
            }
            Err(e) => {
                assert!(
                    matches!(e.kind(), ErrorKind::Timeout | ErrorKind::Connection),
                    "{e:?}"
                );
                assert!(
                    Instant::now() < deadline,
                    "no answer after the pause: {e:?}"
                );
            }
        }
    }
    assert!(other.update().await.unwrap());
    assert_eq!(other.clear(false).await.unwrap(), Cleared::Cleared);
    // The lost lock ends: released by the guard, or at its expiry.
    let deadline = Instant::now() + Duration::from_secs(3);
    while lock.status().await.unwrap() == LockState::Locked {
        assert!(Instant::now() < deadline, "the lost lock is still there");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(guard);
}

/// Checks, against the server itself, that `guard` trusts its lock no longer than the server
/// keeps it: the key is the guard's, and its expiry (read with `PTTL`, directly from the
/// server) is no earlier than the guard's validity.
async fn trusted_no_longer_than_kept(admin: &mut RawRedis, guard: &LockGuard, after: &str) {
    let valid_until = guard
        .valid_until()
        .expect("the guard holds its lock")
        .into_std();
    let key = guard.name().as_str();
    assert_eq!(
        admin.get(key).await.unwrap().as_deref(),
        Some(guard.token().as_str()),
        "after {after}, the key is the guard's"
    );
    let pttl = admin.int(&["PTTL", key]).await.unwrap();
    let answered = Instant::now();
    assert!(
        pttl > 0,
        "after {after}, the key has no expiry left: {pttl}"
    );
    assert_eq!(
        guard.valid_until().map(|v| v.into_std()),
        Some(valid_until),
        "after {after}, a renewal came in between: the check is void"
    );
    // The server answered before `answered`, when at most `pttl` + 1 ms were left.
    let expiry_at_most = answered + Duration::from_millis(pttl.unsigned_abs() + 1);
    assert!(
        valid_until <= expiry_at_most,
        "after {after}, the guard trusts its lock {:?} longer than the server keeps it: \
         validity counted from the delayed reply, not from the request",
        valid_until - expiry_at_most
    );
}

/// Behind a link that delays every reply by 200 ms (the drift allowance of a 1 s lock is
/// 12 ms), a guard counts its lock's validity from when each request was sent: after the
/// acquire and after a renewal, the server keeps the key at least as long as the guard trusts
/// it. A guard counting from the reply would trust it up to 200 ms longer than it exists.
///
/// # Examples
///
/// ```no_run
/// # async fn check(redis: &conformance::redis::RedisFixture) {
/// conformance::redis::a_guard_behind_a_slow_link_trusts_its_lock_no_longer_than_the_server_keeps_it(redis).await;
/// # }
/// ```
pub async fn a_guard_behind_a_slow_link_trusts_its_lock_no_longer_than_the_server_keeps_it(
    fx: &RedisFixture,
) {
    const TTL: Duration = Duration::from_millis(1000);
    const DELAY: Duration = Duration::from_millis(200);
    let proxy = fx.proxy().await;
    let backend = fx
        .connect(proxy.url(), RedisOptions::default())
        .await
        .unwrap_or_else(|e| panic!("connecting through the proxy: {e:?}"));
    let mut admin = fx.raw().await;
    let lock = Lock::new(backend.clone(), "slow-link", TTL).unwrap();
    // Before the link slows down: the Pub/Sub connection is up and every script is loaded,
    // so that the acquire and renewals below are one delayed round trip each.
    let _warm = if backend.capabilities().notify {
        Some(backend.watch(lock.name()).await.unwrap())
    } else {
        None
    };
    let warm = ProcessLock::new(backend.clone(), "warm-up", TTL).unwrap();
    let guard = guards(&warm).try_lock().await.unwrap().expect("free");
    assert_eq!(guard.release().await.unwrap(), Release::Released);
    assert!(warm.lock().await.unwrap() && warm.update().await.unwrap());
    assert_eq!(warm.status().await.unwrap(), LockState::Locked);
    assert_eq!(warm.clear(false).await.unwrap(), Cleared::Cleared);

    proxy.delay_replies(DELAY);
    let guard = lock.lock().await.unwrap();
    trusted_no_longer_than_kept(&mut admin, &guard, "the acquire").await;

    // The first renewal is sent a third of the timeout after the acquire was, and confirmed
    // 200 ms later.
    let acquired = guard.valid_until().unwrap();
    let deadline = Instant::now() + TTL;
    while guard.valid_until() == Some(acquired) {
        assert!(Instant::now() < deadline, "no renewal was confirmed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    trusted_no_longer_than_kept(&mut admin, &guard, "a renewal").await;

    proxy.delay_replies(Duration::ZERO);
    assert_eq!(guard.release().await.unwrap(), Release::Released);
}
