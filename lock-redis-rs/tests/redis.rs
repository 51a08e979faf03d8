//! What only this backend offers (what every Redis backend must do is in `tests/conformance.rs`,
//! `conformance::suite!(redis = connect)`). Every test runs against a real server of its own.

use std::sync::Arc;
use std::time::Duration;

use conformance::redis_server::{FaultyProxy, RawRedis, RedisServer, Resp};
use lock_core::{Cleared, ErrorKind, Lock, LockBackend, LockName, ProcessLock};
use lock_redis_rs::RedisRsBackend;
use lock_redis_rs::redis;

fn handle(backend: &Arc<RedisRsBackend>, name: &str) -> ProcessLock {
    ProcessLock::new(backend.clone(), name, Duration::from_secs(30)).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn built_from_an_existing_client_or_connection_manager_with_a_prefix() {
    let server = RedisServer::start_own()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut admin = RawRedis::connect(server.url()).await.unwrap();
    let client = redis::Client::open(server.url()).unwrap();
    let from_client = Arc::new(
        RedisRsBackend::with_client(client.clone())
            .prefix("app:")
            .restart_delay(std::time::Duration::ZERO)
            .connect()
            .await
            .unwrap(),
    );
    let manager = client.get_connection_manager().await.unwrap();
    let from_manager = Arc::new(
        RedisRsBackend::from_connection_manager(manager, "app:", Duration::from_secs(1))
            .with_restart_delay(Some(Duration::ZERO)),
    );
    let a = handle(&from_client, "job");
    let b = handle(&from_manager, "job");
    assert!(a.lock().await.unwrap());
    assert!(!b.lock().await.unwrap(), "same prefix, same lock");
    let value = admin.get("app:job").await.unwrap();
    assert_eq!(value.as_deref(), Some(a.token().as_str()));
    let unprefixed = admin.get("job").await.unwrap();
    assert_eq!(unprefixed, None);
    assert_eq!(from_client.prefix(), "app:");
    assert!(from_client.capabilities().remaining_ttl);
    assert!(from_client.capabilities().notify);
    assert!(from_client.capabilities().fencing);

    // Without a client, no Pub/Sub connection: no notification, and waiting polls instead.
    let caps = from_manager.capabilities();
    assert!(
        !caps.notify && caps.fencing && caps.remaining_ttl,
        "{caps:?}"
    );
    let err = from_manager
        .watch(&LockName::new("job").unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    let b = Lock::new(b.backend().clone(), "job", Duration::from_secs(30)).unwrap();
    let waiting = tokio::spawn(async move { b.lock().await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished(), "a holds it");
    assert_eq!(a.clear(false).await.unwrap(), Cleared::Cleared);
    let guard = tokio::time::timeout(Duration::from_secs(2), waiting)
        .await
        .expect("a polling waiter gets the lock")
        .unwrap()
        .unwrap();
    assert!(guard.fence().is_some(), "fenced all the same");
    let value = admin.get("app:job").await.unwrap();
    assert_eq!(value.as_deref(), Some(guard.token().as_str()));
    assert_eq!(
        pubsub_clients(&mut admin).await.len(),
        0,
        "no Pub/Sub connection"
    );
}

/// The addresses of the server's Pub/Sub clients.
/// The ids of the server's clients in Pub/Sub mode (subscribed to something).
async fn pubsub_clients(admin: &mut RawRedis) -> Vec<String> {
    client_ids(admin, &["CLIENT", "LIST", "TYPE", "pubsub"]).await
}

/// The ids of the clients `CLIENT LIST ...` lists.
async fn client_ids(admin: &mut RawRedis, list: &[&str]) -> Vec<String> {
    let list = admin.run(list).await.unwrap();
    let list = list.as_str().expect("CLIENT LIST's text").to_owned();
    list.lines()
        .filter_map(|line| line.split(' ').find_map(|field| field.strip_prefix("id=")))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_pubsub_connection_per_backend_opened_on_the_first_watch_closed_with_the_last_clone() {
    let server = RedisServer::start_own()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut admin = RawRedis::connect(server.url()).await.unwrap();
    let backend = RedisRsBackend::builder(server.url())
        .restart_delay(std::time::Duration::ZERO)
        .connect()
        .await
        .unwrap();
    let clone = backend.clone();
    assert_eq!(
        pubsub_clients(&mut admin).await.len(),
        0,
        "opened on the first watch only"
    );

    let a = backend.watch(&LockName::new("a").unwrap()).await.unwrap();
    let b = clone.watch(&LockName::new("b").unwrap()).await.unwrap();
    let a_again = clone.watch(&LockName::new("a").unwrap()).await.unwrap();
    let subscriber = pubsub_clients(&mut admin).await;
    assert_eq!(subscriber.len(), 1, "shared by clones and waiters");
    let subscriber = ["CLIENT", "LIST", "ID", &subscriber[0]];
    let counts = admin
        .run(&[
            "PUBSUB",
            "NUMSUB",
            "process-lock:released:a",
            "process-lock:released:b",
        ])
        .await
        .unwrap();
    assert_eq!(
        counts,
        Resp::Array(Some(vec![
            Resp::Bulk(Some(b"process-lock:released:a".to_vec())),
            Resp::Int(1),
            Resp::Bulk(Some(b"process-lock:released:b".to_vec())),
            Resp::Int(1),
        ])),
        "one subscription per channel"
    );

    drop((backend, clone));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        client_ids(&mut admin, &subscriber).await.len(),
        1,
        "the watches still use it"
    );
    drop((a, b, a_again));
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while !client_ids(&mut admin, &subscriber).await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the Pub/Sub connection outlived the backend and its watches"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_first_watch_that_cannot_connect_fails_promptly_and_the_next_one_connects() {
    let server = RedisServer::start_own()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let proxy = FaultyProxy::start(server.url()).await.unwrap();
    let backend = RedisRsBackend::builder(proxy.url())
        .connect_timeout(Duration::from_millis(500))
        .response_timeout(Duration::from_millis(500))
        .restart_delay(std::time::Duration::ZERO)
        .connect()
        .await
        .unwrap();
    let name = LockName::new("unreachable").unwrap();
    proxy.set_down(true);
    let started = std::time::Instant::now();
    let err = backend.watch(&name).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err:?}");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    proxy.set_down(false);
    let mut watch = backend.watch(&name).await.unwrap();
    // Released by another process, straight to the server.
    let other = RedisRsBackend::builder(server.url())
        .restart_delay(std::time::Duration::ZERO)
        .connect()
        .await
        .unwrap();
    let lock = ProcessLock::new(Arc::new(other), "unreachable", Duration::from_secs(5)).unwrap();
    assert!(lock.lock().await.unwrap());
    assert_eq!(lock.clear(false).await.unwrap(), Cleared::Cleared);
    tokio::time::timeout(Duration::from_secs(1), watch.released())
        .await
        .expect("the release's message");
}

#[cfg(not(feature = "tls"))]
#[tokio::test]
async fn rediss_without_the_tls_feature_is_a_config_error() {
    // Whatever features the redis crate has (another crate of the build may switch its TLS on,
    // without a crypto provider for rustls): refused before anything is attempted.
    for url in [
        "rediss://:s3cret-pw@127.0.0.1:6379/",
        "valkeys://:s3cret-pw@127.0.0.1:6379/",
        "REDISS://:s3cret-pw@127.0.0.1:6379/",
    ] {
        let err = RedisRsBackend::connect(url).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{url}: {err}");
        assert!(!format!("{err} {err:?}").contains("s3cret-pw"), "{err}");
        assert!(err.to_string().contains("`tls` feature"), "{url}: {err}");
    }
    // An application's client with TLS (when the redis crate has it here).
    if let Ok(client) = redis::Client::open("rediss://127.0.0.1:6379/") {
        let err = RedisRsBackend::with_client(client)
            .connect()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{err}");
        assert!(err.to_string().contains("`tls` feature"), "{err}");
    }
}
