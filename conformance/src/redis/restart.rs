//! The delayed restart rule: a server that started less than the restart delay ago grants no
//! free lock until the delay has passed since its start.

use std::time::{Duration, Instant};

use lock_core::redis::keys::fence_key;
use lock_core::{Cleared, FencedAcquire, Lock, LockState, ProcessLock, Release, Token, Ttl};

use super::fixture::{RedisFixture, name};
use super::options::RedisOptions;
use crate::redis_server::RawRedis;

/// The server's uptime, from `INFO server`.
async fn uptime(admin: &mut RawRedis) -> Duration {
    let info = admin.run(&["INFO", "server"]).await.unwrap();
    let info = info.as_str().unwrap_or_default().to_owned();
    let seconds = info
        .lines()
        .find_map(|line| line.strip_prefix("uptime_in_seconds:"))
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no uptime in {info:?}"));
    Duration::from_secs(seconds)
}

/// The delayed restart rule: a server that started less than the restart delay ago (here, a
/// new one) grants no free lock (fenced or not) until the delay has passed since its start;
/// by default the delay is the lock's own timeout. A lock held is unaffected, and so is a
/// server up for longer than the delay.
///
/// # Examples
///
/// ```no_run
/// # async fn check(redis: &conformance::redis::RedisFixture) {
/// conformance::redis::a_new_server_grants_a_free_lock_only_after_the_restart_delay(redis).await;
/// # }
/// ```
pub async fn a_new_server_grants_a_free_lock_only_after_the_restart_delay(fx: &RedisFixture) {
    let mut admin = fx.raw().await;
    // Well above the server's uptime, whatever the machine's speed.
    let delay = uptime(&mut admin).await + Duration::from_secs(3);
    let started = Instant::now();
    let fixed = fx
        .backend_with(RedisOptions::default().with_restart_delay(Some(delay)))
        .await;
    let by_ttl = fx
        .backend_with(RedisOptions::default().with_restart_delay(None))
        .await;
    let a = ProcessLock::new(fixed.clone(), "restarted", Duration::from_secs(1)).unwrap();
    let b = ProcessLock::new(by_ttl.clone(), "restarted-ttl", delay).unwrap();
    assert!(!a.lock().await.unwrap(), "granted on a new server");
    assert!(!b.lock().await.unwrap(), "granted before one timeout");
    assert_eq!(a.status().await.unwrap(), LockState::Open, "no key was set");
    assert_eq!(admin.get("restarted").await.unwrap(), None);
    let token = Token::generate().unwrap();
    let ttl = Ttl::from_secs(1).unwrap();
    match fixed
        .try_acquire_fenced(&name("restarted"), &token, ttl)
        .await
    {
        Ok(FencedAcquire::Held {
            remaining: Some(left),
        }) => assert!(
            left <= delay && left + Duration::from_secs(2) >= delay - started.elapsed(),
            "{left:?} left of a {delay:?} delay"
        ),
        other => panic!("a fenced acquire on a new server: {other:?}"),
    }
    let counter = admin.get(&fence_key("restarted")).await.unwrap();
    assert_eq!(counter, None, "a refused fenced acquire counts nothing");

    // A waiter is told how long to wait, and gets the lock once the delay has passed.
    let waiter = Lock::new(fixed.clone(), "restarted", Duration::from_secs(1)).unwrap();
    let guard = tokio::time::timeout(delay + Duration::from_secs(5), waiter.lock())
        .await
        .expect("granted after the delay")
        .unwrap();
    assert!(
        started.elapsed() + Duration::from_secs(2) >= delay,
        "granted {:?} after a {delay:?} delay",
        started.elapsed()
    );
    assert!(b.lock().await.unwrap(), "granted after one timeout");
    // The holder's re-acquire is never delayed; the start is kept, once read, per slot.
    assert!(b.lock().await.unwrap());
    let boot = lock_core::redis::keys::boot_key("", "restarted");
    let stored = admin.get(&boot).await.unwrap();
    assert!(stored.is_some_and(|ms| ms.parse::<u64>().is_ok()), "{boot}");
    assert_eq!(guard.release().await.unwrap(), Release::Released);
    assert_eq!(b.clear(false).await.unwrap(), Cleared::Cleared);
}
