//! The two Redis backends share one wire format: a lock taken through one excludes the other,
//! and neither can renew or clear the other's lock. Against a real Redis.
#![cfg(all(feature = "redis-rs", feature = "fred"))]

use std::sync::Arc;
use std::time::Duration;

use conformance::redis_server::RedisServer;
use process_lock::{
    Cleared, FredBackend, Lock, LockBackend, LockState, ProcessLock, RedisRsBackend,
};

async fn backends(server: &RedisServer) -> [Arc<dyn LockBackend>; 2] {
    let rs = RedisRsBackend::builder(server.url())
        .restart_delay(std::time::Duration::ZERO)
        .connect()
        .await
        .unwrap();
    let fred = FredBackend::builder(server.url())
        .restart_delay(std::time::Duration::ZERO)
        .connect()
        .await
        .unwrap();
    [Arc::new(rs), Arc::new(fred)]
}

fn handle(backend: &Arc<dyn LockBackend>, name: &str) -> ProcessLock {
    ProcessLock::new(backend.clone(), name, Duration::from_secs(30)).unwrap()
}

fn guarded(backend: &Arc<dyn LockBackend>, name: &str) -> Lock {
    Lock::new(backend.clone(), name, Duration::from_secs(30)).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_backend_excludes_the_other() {
    let server = RedisServer::start().await.unwrap_or_else(|e| panic!("{e}"));
    let [rs, fred] = backends(&server).await;
    for (first, second, label) in [
        (&rs, &fred, "redis-rs then fred"),
        (&fred, &rs, "fred then redis-rs"),
    ] {
        let name = format!("cross-backend:{label}");
        let holder = handle(first, &name);
        let other = handle(second, &name);
        assert!(holder.lock().await.unwrap(), "{label}");
        assert!(!other.lock().await.unwrap(), "{label}: excluded");
        assert!(!other.update().await.unwrap(), "{label}: cannot renew");
        assert_eq!(
            other.clear(false).await.unwrap(),
            Cleared::NotOwner,
            "{label}"
        );
        assert_eq!(other.status().await.unwrap(), LockState::Locked, "{label}");
        assert!(
            holder.update().await.unwrap(),
            "{label}: the holder still holds it"
        );
        assert_eq!(
            holder.clear(false).await.unwrap(),
            Cleared::Cleared,
            "{label}"
        );
        assert!(
            other.lock().await.unwrap(),
            "{label}: free for the other after clear"
        );
        assert_eq!(
            other.clear(false).await.unwrap(),
            Cleared::Cleared,
            "{label}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_owner_token_works_through_either_backend() {
    let server = RedisServer::start().await.unwrap_or_else(|e| panic!("{e}"));
    let [rs, fred] = backends(&server).await;
    let via_rs = handle(&rs, "cross-backend:same-owner");
    // The same owner (token), reaching Redis through the other client.
    let via_fred = ProcessLock::from_parts(
        fred.clone(),
        via_rs.name().clone(),
        via_rs.token().clone(),
        via_rs.ttl(),
    );
    assert!(via_rs.lock().await.unwrap());
    assert!(via_fred.lock().await.unwrap(), "same owner: re-lock");
    assert!(via_fred.update().await.unwrap());
    assert_eq!(via_fred.clear(false).await.unwrap(), Cleared::Cleared);
    assert_eq!(via_rs.status().await.unwrap(), LockState::Open);
}

/// Fencing tokens count across backends: guards taken in turn through redis-rs and fred on one
/// name get strictly increasing fences, and a waiter on one backend is woken by a release
/// through the other.
#[tokio::test(flavor = "multi_thread")]
async fn fences_grow_and_releases_wake_across_backends() {
    let server = RedisServer::start().await.unwrap_or_else(|e| panic!("{e}"));
    let [rs, fred] = backends(&server).await;
    let name = "cross-backend:fences";
    let mut last = 0;
    for round in 0..6 {
        let backend = if round % 2 == 0 { &rs } else { &fred };
        let guard = guarded(backend, name).lock().await.unwrap();
        let fence = guard.fence().expect("both Redis backends give fences");
        assert!(fence > last, "round {round}: fence {fence} after {last}");
        last = fence;
        assert_eq!(
            guard.release().await.unwrap(),
            process_lock::Release::Released
        );
    }

    for (holder, waiter, label) in [
        (&rs, &fred, "redis-rs releases, fred waits"),
        (&fred, &rs, "fred releases, redis-rs waits"),
    ] {
        let holding = handle(holder, name);
        assert!(holding.lock().await.unwrap(), "{label}");
        let waiting = guarded(waiter, name);
        let waiting = tokio::spawn(async move { waiting.lock().await });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!waiting.is_finished(), "{label}: the lock is held for 30 s");
        assert_eq!(holding.clear(false).await.unwrap(), Cleared::Cleared);
        let guard = tokio::time::timeout(Duration::from_secs(2), waiting)
            .await
            .unwrap_or_else(|_| panic!("{label}: the waiter was not woken by the release"))
            .unwrap()
            .unwrap();
        assert!(guard.fence().unwrap() > last, "{label}");
        last = guard.fence().unwrap();
        assert_eq!(
            guard.release().await.unwrap(),
            process_lock::Release::Released
        );
    }
}
