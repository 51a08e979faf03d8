//! `rediss://`: a real TLS-only redis-server with a certificate from a throwaway CA
//! (`conformance::redis_server::TlsRedisServer`).
#![cfg(feature = "tls")]

use std::sync::Arc;
use std::time::Duration;

use conformance::redis_server::TlsRedisServer;
use lock_core::{Cleared, ErrorKind, Lock, ProcessLock};
use lock_fred::FredBackend;
use lock_fred::fred::prelude::{Builder, Config, TlsConnector};
use lock_fred::fred::rustls::{
    self, RootCertStore, pki_types::CertificateDer, pki_types::pem::PemObject,
};

async fn tls_server() -> TlsRedisServer {
    TlsRedisServer::start()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn locks_over_tls_with_a_private_ca() {
    let server = tls_server().await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(server.ca_pem()).unwrap())
        .unwrap();
    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut config = Config::from_url(server.url()).unwrap();
    config.tls = Some(TlsConnector::from(tls).into());
    let client = Builder::from_config(config).build().unwrap();
    let backend = Arc::new(
        FredBackend::with_client(client)
            .restart_delay(std::time::Duration::ZERO)
            .connect()
            .await
            .unwrap(),
    );
    let lock = ProcessLock::new(backend.clone(), "over-tls", Duration::from_secs(5)).unwrap();
    assert!(lock.lock().await.unwrap());
    assert!(lock.update().await.unwrap());
    assert_eq!(lock.clear(false).await.unwrap(), Cleared::Cleared);

    // The Pub/Sub connection is made from the client's configuration: TLS with its CA.
    let holder = Lock::new(backend.clone(), "over-tls", Duration::from_secs(5)).unwrap();
    let held = holder.lock().await.unwrap();
    let waiter = Lock::new(backend, "over-tls", Duration::from_secs(30)).unwrap();
    let waiting = tokio::spawn(async move { waiter.lock().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "the waiter did not wait");
    assert_eq!(held.release().await.unwrap(), lock_core::Release::Released);
    let guard = tokio::time::timeout(Duration::from_secs(2), waiting)
        .await
        .expect("the waiter was not woken by the release")
        .unwrap()
        .unwrap();
    assert_eq!(guard.release().await.unwrap(), lock_core::Release::Released);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_certificate_is_refused() {
    let server = tls_server().await;
    // rediss:// from a URL trusts the system's roots, which do not include the test CA.
    let url = server.url();
    let err = FredBackend::builder(url)
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
