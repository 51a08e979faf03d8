//! What only this backend offers or has to take care of with fred (its Pub/Sub connection's
//! lifetime, configuration and confirmations); what every Redis backend must do is in
//! `tests/conformance.rs` (`conformance::suite!(redis = connect)`). Every test runs against a
//! real server of its own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use conformance::redis_server::{RawRedis, RedisServer, Resp};
use lock_core::{Cleared, FencedAcquire, Lock, LockBackend, LockName, ProcessLock, Token, Ttl};
use lock_fred::FredBackend;
use lock_fred::fred::prelude::{Builder, Client, ClientLike, Config};

async fn server() -> RedisServer {
    RedisServer::start_own()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn admin(server: &RedisServer) -> RawRedis {
    RawRedis::connect(server.url()).await.unwrap()
}

/// How many client connections the server has (the admin's own included).
async fn clients(admin: &mut RawRedis) -> usize {
    let list = admin.run(&["CLIENT", "LIST"]).await.unwrap();
    list.as_str().unwrap_or_default().lines().count()
}

/// How many Pub/Sub connections the server has.
async fn subscribers(admin: &mut RawRedis) -> usize {
    let list = admin
        .run(&["CLIENT", "LIST", "TYPE", "pubsub"])
        .await
        .unwrap();
    list.as_str().unwrap_or_default().lines().count()
}

/// Waits (5 s at most) until `count` gives `expected`.
async fn eventually(
    admin: &mut RawRedis,
    count: impl AsyncFn(&mut RawRedis) -> usize,
    expected: usize,
    what: &str,
) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = count(admin).await;
        if now == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {now}, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Takes `name` through `holder`, starts a waiter through `waiter`, releases, and checks that
/// the waiter got the lock long before the holder's 30 s would have expired: it was woken.
async fn a_release_wakes_the_waiter(
    holder: &Arc<FredBackend>,
    waiter: &Arc<FredBackend>,
    name: &str,
) {
    let held = guarded(holder, name).lock().await.unwrap();
    let waiting = guarded(waiter, name);
    let waiting = tokio::spawn(async move { waiting.lock().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "the waiter did not wait");
    let released = Instant::now();
    assert_eq!(held.release().await.unwrap(), lock_core::Release::Released);
    let guard = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the waiter was not woken by the release")
        .unwrap()
        .unwrap();
    assert!(
        released.elapsed() < Duration::from_secs(2),
        "{:?}",
        released.elapsed()
    );
    assert_eq!(guard.release().await.unwrap(), lock_core::Release::Released);
}

fn handle(backend: &Arc<FredBackend>, name: &str) -> ProcessLock {
    ProcessLock::new(backend.clone(), name, Duration::from_secs(30)).unwrap()
}

fn guarded(backend: &Arc<FredBackend>, name: &str) -> Lock {
    Lock::new(backend.clone(), name, Duration::from_secs(30)).unwrap()
}

#[test]
fn the_builder_debug_hides_the_password() {
    let builder = FredBackend::builder("redis://default:s3cret-pw@127.0.0.1:6379/");
    let shown = format!("{builder:?}");
    assert!(!shown.contains("s3cret-pw"), "{shown}");
    assert!(shown.contains("***"), "{shown}");
}

#[cfg(not(feature = "tls"))]
#[tokio::test]
async fn rediss_without_the_tls_feature_is_a_config_error() {
    // fred alone would connect in plaintext.
    let err = FredBackend::builder("rediss://:s3cret-pw@127.0.0.1:6379/")
        .restart_delay(std::time::Duration::ZERO)
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), lock_core::ErrorKind::Config, "{err}");
    assert!(!format!("{err} {err:?}").contains("s3cret-pw"), "{err}");
    assert!(err.to_string().contains("`tls` feature"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn built_from_an_existing_client_or_pool_with_a_prefix() {
    let server = server().await;
    let mut admin = admin(&server).await;
    let config = Config::from_url(server.url()).unwrap();
    // Not connected yet: the builder connects it.
    let fresh = Builder::from_config(config.clone()).build().unwrap();
    let from_client = Arc::new(
        FredBackend::with_client(fresh.clone())
            .prefix("app:")
            .restart_delay(Duration::ZERO)
            .connect()
            .await
            .unwrap(),
    );
    assert!(fresh.is_connected());
    // Connected already: used as it is.
    let connected = Client::new(config.clone(), None, None, None);
    connected.init().await.unwrap();
    let from_connected = Arc::new(
        FredBackend::with_client(connected)
            .prefix("app:")
            .response_timeout(Duration::from_secs(1))
            .restart_delay(std::time::Duration::ZERO)
            .connect()
            .await
            .unwrap(),
    );
    let pool = Builder::from_config(config).build_pool(2).unwrap();
    let from_pool = Arc::new(
        FredBackend::with_pool(pool)
            .prefix("app:")
            .restart_delay(std::time::Duration::ZERO)
            .connect()
            .await
            .unwrap(),
    );
    let a = handle(&from_client, "job");
    let b = handle(&from_connected, "job");
    let c = handle(&from_pool, "job");
    assert!(a.lock().await.unwrap());
    assert!(!b.lock().await.unwrap(), "same prefix, same lock");
    assert!(!c.lock().await.unwrap(), "same prefix, same lock");
    assert!(
        !c.lock().await.unwrap(),
        "through the pool's other client too"
    );
    let value = admin.get("app:job").await.unwrap();
    assert_eq!(value.as_deref(), Some(a.token().as_str()));
    let unprefixed = admin.get("job").await.unwrap();
    assert_eq!(unprefixed, None);
    assert_eq!(from_client.prefix(), "app:");
    let capabilities = from_client.capabilities();
    assert!(capabilities.remaining_ttl && capabilities.notify && capabilities.fencing);
    let shown = format!("{from_client:?}");
    assert!(
        shown.contains(&server.url()[..server.url().len() - 1]),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_the_last_clone_closes_its_own_connection() {
    let server = server().await;
    let mut admin = admin(&server).await;
    let before = clients(&mut admin).await;
    let backend = Arc::new(
        FredBackend::builder(server.url())
            .restart_delay(std::time::Duration::ZERO)
            .connect()
            .await
            .unwrap(),
    );
    let clone = backend.clone();
    assert_eq!(clients(&mut admin).await, before + 1);
    drop(backend);
    assert_eq!(
        clients(&mut admin).await,
        before + 1,
        "a clone still uses it"
    );
    drop(clone);
    let deadline = Instant::now() + Duration::from_secs(5);
    while clients(&mut admin).await != before {
        assert!(Instant::now() < deadline, "the connection stayed open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_connect_leaves_no_connection_behind() {
    let server = server().await;
    let mut admin = admin(&server).await;
    let before = clients(&mut admin).await;
    for micros in [0, 200, 500, 1_000, 2_000, 5_000] {
        let connecting = FredBackend::builder(server.url())
            .restart_delay(std::time::Duration::ZERO)
            .connect();
        let _ = tokio::time::timeout(Duration::from_micros(micros), connecting).await;
    }
    // Give a connection that escaped the time to show up, then expect none.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while clients(&mut admin).await != before {
        assert!(
            Instant::now() < deadline,
            "a connection outlived its cancelled connect"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn speaks_resp3_when_asked() {
    let server = server().await;
    let url = format!("{}?protocol=resp3", server.url());
    let backend = FredBackend::builder(&url).restart_delay(Duration::ZERO);
    let backend = Arc::new(backend.connect().await.unwrap());
    let a = handle(&backend, "resp3");
    let b = handle(&backend, "resp3");
    assert!(a.lock().await.unwrap());
    assert!(!b.lock().await.unwrap());
    let status = backend.status(a.name()).await.unwrap();
    assert!(
        status
            .remaining
            .is_some_and(|left| left > Duration::from_secs(29))
    );
    assert!(a.update().await.unwrap());
    assert_eq!(b.clear(false).await.unwrap(), Cleared::NotOwner);
    assert_eq!(a.clear(false).await.unwrap(), Cleared::Cleared);
    assert_eq!(a.clear(true).await.unwrap(), Cleared::Missing);
    // The Pub/Sub connection speaks RESP3 too: pushed messages, and PING's plain answer.
    let other = Arc::new(
        FredBackend::builder(&url)
            .restart_delay(std::time::Duration::ZERO)
            .connect()
            .await
            .unwrap(),
    );
    a_release_wakes_the_waiter(&other, &backend, "resp3-waiter").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pubsub_connection_opens_on_the_first_watch_and_closes_with_the_last_clone() {
    let server = server().await;
    let mut admin = admin(&server).await;
    let before = clients(&mut admin).await;
    let backend = Arc::new(
        FredBackend::builder(server.url())
            .restart_delay(std::time::Duration::ZERO)
            .connect()
            .await
            .unwrap(),
    );
    let clone = backend.clone();
    let name = LockName::new("watched").unwrap();
    assert_eq!(subscribers(&mut admin).await, 0, "opened before any watch");

    let first = backend.watch(&name).await.unwrap();
    let second = clone.watch(&LockName::new("other").unwrap()).await.unwrap();
    assert_eq!(
        subscribers(&mut admin).await,
        1,
        "one connection for every clone and waiter"
    );
    assert_eq!(clients(&mut admin).await, before + 2);
    drop((first, second));
    drop(backend);
    // The clone still watches through the same connection.
    let third = clone.watch(&name).await.unwrap();
    assert_eq!(subscribers(&mut admin).await, 1);
    drop(third);
    drop(clone);
    eventually(
        &mut admin,
        clients,
        before,
        "connections left after the last clone",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watch_outliving_the_backend_keeps_the_connection_until_it_is_dropped() {
    let server = server().await;
    let mut admin = admin(&server).await;
    let before = clients(&mut admin).await;
    let backend = Arc::new(
        FredBackend::builder(server.url())
            .restart_delay(std::time::Duration::ZERO)
            .connect()
            .await
            .unwrap(),
    );
    let watch = backend.watch(&LockName::new("w").unwrap()).await.unwrap();
    drop(backend);
    eventually(
        &mut admin,
        clients,
        before + 1,
        "the backend's own connection",
    )
    .await;
    assert_eq!(subscribers(&mut admin).await, 1, "the watch's connection");
    drop(watch);
    eventually(
        &mut admin,
        clients,
        before,
        "connections left after the last watch",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_first_watch_leaves_no_connection_behind() {
    let server = server().await;
    let mut admin = admin(&server).await;
    let backend = Arc::new(
        FredBackend::builder(server.url())
            .restart_delay(std::time::Duration::ZERO)
            .connect()
            .await
            .unwrap(),
    );
    let before = clients(&mut admin).await;
    let name = LockName::new("cancelled").unwrap();
    for micros in [0, 200, 500, 1_000, 2_000, 5_000] {
        let _ = tokio::time::timeout(Duration::from_micros(micros), backend.watch(&name)).await;
    }
    drop(backend);
    tokio::time::sleep(Duration::from_millis(300)).await;
    eventually(
        &mut admin,
        clients,
        before - 1,
        "a connection outlived its cancelled watch",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn waiters_are_woken_through_a_backend_on_an_application_client_or_pool() {
    let server = server().await;
    let config = Config::from_url(server.url()).unwrap();
    // No reconnection policy: the backend's Pub/Sub connection gets one of its own.
    let client = Builder::from_config(config.clone()).build().unwrap();
    let from_client = Arc::new(
        FredBackend::with_client(client)
            .restart_delay(std::time::Duration::ZERO)
            .connect()
            .await
            .unwrap(),
    );
    let pool = Builder::from_config(config).build_pool(2).unwrap();
    let from_pool = Arc::new(
        FredBackend::with_pool(pool)
            .restart_delay(std::time::Duration::ZERO)
            .connect()
            .await
            .unwrap(),
    );
    let from_url = Arc::new(
        FredBackend::builder(server.url())
            .restart_delay(std::time::Duration::ZERO)
            .connect()
            .await
            .unwrap(),
    );

    a_release_wakes_the_waiter(&from_url, &from_client, "app-client").await;
    a_release_wakes_the_waiter(&from_url, &from_pool, "app-pool").await;
    a_release_wakes_the_waiter(&from_client, &from_pool, "between-apps").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pubsub_connection_has_the_clients_credentials() {
    let server = server().await;
    let mut admin = admin(&server).await;
    admin
        .run(&["CONFIG", "SET", "requirepass", "s3cret-pw"])
        .await
        .unwrap();
    admin.run(&["AUTH", "s3cret-pw"]).await.unwrap();
    let url = server.url().replacen("redis://", "redis://:s3cret-pw@", 1);
    let from_url = Arc::new(
        FredBackend::builder(&url)
            .restart_delay(std::time::Duration::ZERO)
            .connect()
            .await
            .unwrap(),
    );
    let client = Builder::from_config(Config::from_url(&url).unwrap())
        .build()
        .unwrap();
    let from_client = Arc::new(
        FredBackend::with_client(client)
            .restart_delay(std::time::Duration::ZERO)
            .connect()
            .await
            .unwrap(),
    );
    a_release_wakes_the_waiter(&from_url, &from_client, "with-password").await;
    a_release_wakes_the_waiter(&from_client, &from_url, "with-password").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watch_returns_once_the_server_confirmed_the_subscription() {
    // fred answers SUBSCRIBE once written: the backend waits for the server's confirmation.
    let server = server().await;
    let mut admin = admin(&server).await;
    let backend = Arc::new(
        FredBackend::builder(server.url())
            .restart_delay(std::time::Duration::ZERO)
            .connect()
            .await
            .unwrap(),
    );
    // Connected already, so that only the SUBSCRIBE is held up.
    let _first = backend
        .watch(&LockName::new("first").unwrap())
        .await
        .unwrap();
    admin.run(&["CLIENT", "PAUSE", "600", "ALL"]).await.unwrap();
    let started = Instant::now();
    let _second = backend
        .watch(&LockName::new("second").unwrap())
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "returned before the server could confirm: {:?}",
        started.elapsed()
    );
    let numsub = admin
        .run(&[
            "PUBSUB",
            "NUMSUB",
            &lock_core::redis::keys::release_channel("second"),
        ])
        .await
        .unwrap();
    assert!(format!("{numsub:?}").contains("Int(1)"), "{numsub:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn waiters_are_woken_after_the_pubsub_connection_is_killed() {
    // fred does not subscribe again after reconnecting: the backend does.
    let server = server().await;
    let mut admin = admin(&server).await;
    let backend = Arc::new(
        FredBackend::builder(server.url())
            .restart_delay(std::time::Duration::ZERO)
            .connect()
            .await
            .unwrap(),
    );
    let holder = guarded(&backend, "killed");
    let held = holder.lock().await.unwrap();
    let waiting = guarded(&backend, "killed");
    let waiting = tokio::spawn(async move { waiting.lock().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let killed = admin
        .int(&["CLIENT", "KILL", "TYPE", "pubsub"])
        .await
        .unwrap();
    assert_eq!(killed, 1);
    // Subscribed again on the new connection.
    eventually(&mut admin, subscribers, 1, "no new Pub/Sub connection").await;
    // The waiter's channel: the lock's grant channel for this backend.
    let pattern = lock_core::redis::keys::grant_channel_prefix("killed") + "*";
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let channels = admin.run(&["PUBSUB", "CHANNELS", &pattern]).await.unwrap();
        if matches!(&channels, Resp::Array(Some(c)) if c.len() == 1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not subscribed again: {channels:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!waiting.is_finished(), "the waiter took a held lock");
    assert_eq!(held.release().await.unwrap(), lock_core::Release::Released);
    let guard = tokio::time::timeout(Duration::from_secs(2), waiting)
        .await
        .expect("the waiter was not woken by the release")
        .unwrap()
        .unwrap();
    assert_eq!(guard.release().await.unwrap(), lock_core::Release::Released);
}

#[tokio::test(flavor = "multi_thread")]
async fn fencing_tokens_count_in_the_fence_key_under_the_prefix() {
    let server = server().await;
    let mut admin = admin(&server).await;
    let backend = FredBackend::builder(server.url())
        .prefix("app:")
        .restart_delay(Duration::ZERO)
        .connect()
        .await
        .unwrap();
    let name = LockName::new("fenced").unwrap();
    let (a, b) = (Token::generate().unwrap(), Token::generate().unwrap());
    let ttl = Ttl::new(Duration::from_secs(30)).unwrap();
    let fence = |acquired: FencedAcquire| match acquired {
        FencedAcquire::Acquired { fence } => fence,
        other => panic!("not acquired: {other:?}"),
    };
    let first = fence(backend.try_acquire_fenced(&name, &a, ttl).await.unwrap());
    assert!(matches!(
        backend.try_acquire_fenced(&name, &b, ttl).await.unwrap(),
        FencedAcquire::Held { remaining: Some(left) } if left > Duration::from_secs(29)
    ));
    let second = fence(backend.try_acquire_fenced(&name, &a, ttl).await.unwrap());
    assert!(second > first, "the holder again: a new fence");
    assert_eq!(
        admin.get("{app:fenced}:fence").await.unwrap(),
        Some(second.to_string())
    );
    assert_eq!(
        admin.get("app:fenced").await.unwrap().as_deref(),
        Some(a.as_str())
    );
    assert_eq!(
        backend.force_release(&name).await.unwrap(),
        lock_core::ForceRelease::Released
    );
    let third = fence(backend.try_acquire_fenced(&name, &b, ttl).await.unwrap());
    assert!(third > second, "the counter outlives the lock");
}
