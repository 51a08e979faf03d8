//! Behaviour specific to Redis: the shared Redis suite (`conformance::redis_suite!`: the wire
//! format shared with `process-lock-node`, scripts that survive `SCRIPT FLUSH`, typed errors,
//! timeouts, reconnection, no replays, one round trip per operation), then what only this
//! backend offers. Every test runs against a real server of its own.

use std::sync::Arc;
use std::time::Duration;

use conformance::redis::RedisOptions;
use conformance::redis_server::{RawRedis, RedisServer};
use lock_core::{LockBackend, ProcessLock};
use lock_redis_rs::RedisRsBackend;
use lock_redis_rs::redis;

/// The backend on `url`, with the suite's options.
async fn connect(url: String, options: RedisOptions) -> lock_core::Result<Arc<dyn LockBackend>> {
    let backend = RedisRsBackend::builder(&url)
        .connect_timeout(options.connect_timeout)
        .response_timeout(options.response_timeout)
        .reconnect_attempts(options.reconnect_attempts)
        .connect()
        .await?;
    Ok(Arc::new(backend))
}

conformance::redis_suite!(connect);

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
            .connect()
            .await
            .unwrap(),
    );
    let manager = client.get_connection_manager().await.unwrap();
    let from_manager = Arc::new(RedisRsBackend::from_connection_manager(
        manager,
        "app:",
        Duration::from_secs(1),
    ));
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
}

#[test]
fn the_builder_debug_hides_the_password() {
    let builder = RedisRsBackend::builder("redis://default:s3cret-pw@127.0.0.1:6379/");
    let shown = format!("{builder:?}");
    assert!(!shown.contains("s3cret-pw"), "{shown}");
    assert!(shown.contains("***"), "{shown}");
}

#[cfg(not(feature = "tls"))]
#[tokio::test]
async fn rediss_without_the_tls_feature_is_a_config_error() {
    let err = RedisRsBackend::connect("rediss://:s3cret-pw@127.0.0.1:6379/")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), lock_core::ErrorKind::Config, "{err}");
    assert!(!format!("{err} {err:?}").contains("s3cret-pw"), "{err}");
    assert!(err.to_string().contains("`tls` feature"), "{err}");
}
