//! `rediss://`: a real TLS-only redis-server with a certificate from a throwaway CA
//! (`conformance::redis_server::TlsRedisServer`).
#![cfg(feature = "tls")]

use std::sync::Arc;
use std::time::Duration;

use conformance::redis_server::{RawRedis, RedisServer, TlsRedisServer};
use lock_core::{Cleared, ErrorKind, LockBackend, LockName, ProcessLock};
use lock_redis_rs::RedisRsBackend;
use lock_redis_rs::redis::{self, TlsCertificates};

async fn tls_server() -> TlsRedisServer {
    TlsRedisServer::start()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn locks_over_tls_with_a_private_ca() {
    let server = tls_server().await;
    let client = redis::Client::build_with_tls(
        server.url(),
        TlsCertificates {
            client_tls: None,
            root_cert: Some(server.ca_pem().to_vec()),
        },
    )
    .unwrap();
    let backend = Arc::new(
        RedisRsBackend::with_client(client)
            .restart_delay(std::time::Duration::ZERO)
            .connect()
            .await
            .unwrap(),
    );
    // The Pub/Sub connection goes over TLS too.
    let mut watch = backend
        .watch(&LockName::new("over-tls").unwrap())
        .await
        .unwrap();
    let lock = ProcessLock::new(backend, "over-tls", Duration::from_secs(5)).unwrap();
    assert!(lock.lock().await.unwrap());
    assert!(lock.update().await.unwrap());
    assert_eq!(lock.clear(false).await.unwrap(), Cleared::Cleared);
    tokio::time::timeout(Duration::from_secs(1), watch.released())
        .await
        .expect("the release's message, over TLS");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_certificate_is_refused() {
    let server = tls_server().await;
    // rediss:// from a URL trusts the system's roots, which do not include the test CA.
    let url = server.url();
    let err = RedisRsBackend::builder(url)
        .reconnect_attempts(0)
        .restart_delay(std::time::Duration::ZERO)
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err:?}");
    let shown = err.to_string();
    assert!(
        shown.contains(url) && shown.contains("UnknownIssuer"),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rediss_to_a_plain_text_server_is_a_config_error_at_once() {
    let server = RedisServer::start_own()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let url = server.url().replacen("redis://", "rediss://:s3cret-pw@", 1);
    let mut admin = RawRedis::connect(server.url()).await.unwrap();
    // Then with a password, when it answers PING with -NOAUTH.
    for requirepass in [false, true] {
        if requirepass {
            admin
                .run(&["CONFIG", "SET", "requirepass", "s3cret-pw"])
                .await
                .unwrap();
        }
        for attempt in 0..5 {
            let started = std::time::Instant::now();
            let err = RedisRsBackend::builder(&url)
                .connect_timeout(Duration::from_secs(5))
                .connect()
                .await
                .unwrap_err();
            let elapsed = started.elapsed();
            let shown = format!("{err} {err:?}");
            let attempt = format!("requirepass {requirepass}, try {attempt}: {shown}");
            assert_eq!(err.kind(), ErrorKind::Config, "{attempt}");
            assert!(elapsed < Duration::from_secs(1), "{elapsed:?}, {attempt}");
            assert!(
                err.to_string()
                    .contains("speaks plain text, not TLS: use redis://"),
                "{attempt}"
            );
            assert!(!shown.contains("s3cret-pw"), "{attempt}");
        }
    }
}
