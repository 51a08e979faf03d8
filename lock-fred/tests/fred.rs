//! Behaviour specific to Redis: the shared Redis suite (`conformance::redis_suite!`: the wire
//! format shared with `process-lock-node`, scripts that survive `SCRIPT FLUSH`, typed errors,
//! timeouts, reconnection, no replays, one round trip per operation), then what only this
//! backend offers. Every test runs against a real server of its own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use conformance::redis::RedisOptions;
use conformance::redis_server::{RawRedis, RedisServer};
use lock_core::{Cleared, LockBackend, ProcessLock};
use lock_fred::FredBackend;
use lock_fred::fred::prelude::{Builder, Client, ClientLike, Config};

/// The backend on `url`, with the suite's options.
async fn connect(url: String, options: RedisOptions) -> lock_core::Result<Arc<dyn LockBackend>> {
    let backend = FredBackend::builder(&url)
        .connect_timeout(options.connect_timeout)
        .response_timeout(options.response_timeout)
        .reconnect_attempts(options.reconnect_attempts)
        .connect()
        .await?;
    Ok(Arc::new(backend))
}

conformance::redis_suite!(connect);

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

fn handle(backend: &Arc<FredBackend>, name: &str) -> ProcessLock {
    ProcessLock::new(backend.clone(), name, Duration::from_secs(30)).unwrap()
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
    let err = FredBackend::connect("rediss://:s3cret-pw@127.0.0.1:6379/")
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
            .connect()
            .await
            .unwrap(),
    );
    let pool = Builder::from_config(config).build_pool(2).unwrap();
    let from_pool = Arc::new(
        FredBackend::with_pool(pool)
            .prefix("app:")
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
    assert!(from_client.capabilities().remaining_ttl);
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
    let backend = Arc::new(FredBackend::connect(server.url()).await.unwrap());
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
        let connecting = FredBackend::connect(server.url());
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
    let backend = Arc::new(FredBackend::connect(&url).await.unwrap());
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
}
