//! `rediss://`: a real TLS-only redis-server with a certificate from a throwaway CA
//! (`conformance::redis_server::TlsRedisServer`).
#![cfg(feature = "tls")]

use std::sync::Arc;
use std::time::Duration;

use conformance::redis_server::TlsRedisServer;
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
