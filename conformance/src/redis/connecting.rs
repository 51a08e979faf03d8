//! Connecting: bounded by the connect timeout, with typed errors (`Connection`, `Timeout`,
//! `Config`), and the password never shown.

use std::time::{Duration, Instant};

use lock_core::{ErrorKind, LockName, LockState};

use super::fixture::RedisFixture;
use super::options::RedisOptions;

/// Connecting to a port nothing listens on fails within the connect timeout with a
/// `Connection` (or `Timeout`) error naming the server, without its password.
///
/// # Examples
///
/// ```no_run
/// # async fn check(redis: &conformance::redis::RedisFixture) {
/// conformance::redis::connection_refused_is_a_connection_error_without_the_password(redis).await;
/// # }
/// ```
pub async fn connection_refused_is_a_connection_error_without_the_password(fx: &RedisFixture) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port(); // nothing listens here once the listener is dropped
    let url = format!("redis://user:s3cret-pw@127.0.0.1:{port}/");
    let options = RedisOptions::default()
        .with_connect_timeout(Duration::from_millis(500))
        .with_reconnect_attempts(1);
    let started = Instant::now();
    let err = fx.connect(&url, options).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "bounded by the timeout"
    );
    assert!(
        matches!(err.kind(), ErrorKind::Connection | ErrorKind::Timeout),
        "{err:?}"
    );
    let shown = format!("{err} / {err:?}");
    assert!(!shown.contains("s3cret-pw"), "password leaked: {shown}");
    assert!(shown.contains(&format!("127.0.0.1:{port}")), "{shown}");
}

/// Connecting to a server that accepts the TCP connection but never answers fails with
/// `ErrorKind::Timeout` within the connect timeout, without the password.
///
/// # Examples
///
/// ```no_run
/// # async fn check(redis: &conformance::redis::RedisFixture) {
/// conformance::redis::an_unanswering_server_times_out_within_the_connect_timeout(redis).await;
/// # }
/// ```
pub async fn an_unanswering_server_times_out_within_the_connect_timeout(fx: &RedisFixture) {
    // A listener that never accepts: the TCP handshake completes (backlog) but Redis's never
    // does, so only the timeout ends the attempt.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://:s3cret-pw@{}/", silent.local_addr().unwrap());
    let options = RedisOptions::default().with_connect_timeout(Duration::from_millis(400));
    let started = Instant::now();
    let err = fx.connect(&url, options).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
    assert!(!format!("{err} {err:?}").contains("s3cret-pw"), "{err:?}");
    drop(silent);
}

/// Malformed URLs are `ErrorKind::Config` errors that do not show the password; `rediss://`
/// never connects in plaintext.
///
/// # Examples
///
/// ```no_run
/// # async fn check(redis: &conformance::redis::RedisFixture) {
/// conformance::redis::malformed_urls_are_config_errors_without_the_password(redis).await;
/// # }
/// ```
pub async fn malformed_urls_are_config_errors_without_the_password(fx: &RedisFixture) {
    for url in [
        "not a url",
        "http://127.0.0.1:6379/",
        "redis://user:s3cret-pw@[::1/",
        "redis://127.0.0.1:6379/?protocol=bogus",
        "redis://:s3cret-pw@127.0.0.1:6379/not-a-db",
    ] {
        let err = fx.connect(url, RedisOptions::default()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{url}: {err}");
        assert!(
            !format!("{err} {err:?}").contains("s3cret-pw"),
            "{url}: {err}"
        );
    }

    // rediss:// to this plaintext server: a backend without TLS support refuses the URL,
    // naming its `tls` feature; one with TLS support finds the server speaks plain text (or
    // at least fails the handshake). Connecting in plaintext (what fred alone does without
    // TLS support) would succeed here.
    let url = fx.url().replacen("redis://", "rediss://:s3cret-pw@", 1);
    let options = RedisOptions::default()
        .with_connect_timeout(Duration::from_secs(1))
        .with_reconnect_attempts(0);
    let err = fx.connect(&url, options).await.unwrap_err();
    let shown = format!("{err} {err:?}");
    match err.kind() {
        ErrorKind::Config => assert!(
            err.to_string().contains("`tls` feature")
                || err.to_string().contains("speaks plain text, not TLS"),
            "{err}"
        ),
        kind => assert!(
            matches!(kind, ErrorKind::Connection | ErrorKind::Timeout),
            "{url}: {err:?}"
        ),
    }
    assert!(!shown.contains("s3cret-pw"), "{url}: {shown}");
}

/// With a password set (`requirepass`), the connected backend's `Debug` shows `***` instead,
/// and it works; a wrong password is a `Config` error that does not show it.
///
/// # Examples
///
/// ```no_run
/// # async fn check(redis: &conformance::redis::RedisFixture) {
/// conformance::redis::debug_output_hides_the_password(redis).await;
/// # }
/// ```
pub async fn debug_output_hides_the_password(fx: &RedisFixture) {
    let url = fx
        .url()
        .replacen("redis://", "redis://default:s3cret-pw@", 1);
    let mut admin = fx.raw().await;
    admin
        .run(&["CONFIG", "SET", "requirepass", "s3cret-pw"])
        .await
        .unwrap();
    let backend = fx.connect(&url, RedisOptions::default()).await.unwrap();
    let shown = format!("{backend:?}");
    assert!(!shown.contains("s3cret-pw"), "{shown}");
    assert!(shown.contains("***"), "{shown}");
    assert_eq!(
        backend
            .status(&LockName::new("any").unwrap())
            .await
            .unwrap()
            .state,
        LockState::Open
    );

    let wrong = url.replace("s3cret-pw", "wrong-pw");
    let err = fx
        .connect(&wrong, RedisOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err:?}");
    assert!(!format!("{err} {err:?}").contains("wrong-pw"), "{err:?}");
}

/// `rediss://` to this plain-text server is a configuration error within a second, not a wait
/// for the connect timeout (here 5 s): a backend without TLS support refuses the URL, naming
/// its `tls` feature; one with it finds that the server speaks plain text. Then the same once
/// the server requires a password (it answers `-NOAUTH`). The password is never shown.
///
/// # Examples
///
/// ```no_run
/// # async fn check(redis: &conformance::redis::RedisFixture) {
/// conformance::redis::rediss_to_a_plain_text_server_is_a_config_error_at_once(redis).await;
/// # }
/// ```
pub async fn rediss_to_a_plain_text_server_is_a_config_error_at_once(fx: &RedisFixture) {
    let url = fx.url().replacen("redis://", "rediss://:s3cret-pw@", 1);
    let mut admin = fx.raw().await;
    for requirepass in [false, true] {
        if requirepass {
            admin
                .run(&["CONFIG", "SET", "requirepass", "s3cret-pw"])
                .await
                .unwrap();
        }
        for attempt in 0..5 {
            let options = RedisOptions::default().with_connect_timeout(Duration::from_secs(5));
            let started = Instant::now();
            let err = fx.connect(&url, options).await.unwrap_err();
            let elapsed = started.elapsed();
            let shown = format!("{err} {err:?}");
            let attempt = format!("requirepass {requirepass}, try {attempt}: {shown}");
            assert_eq!(err.kind(), ErrorKind::Config, "{attempt}");
            assert!(elapsed < Duration::from_secs(1), "{elapsed:?}, {attempt}");
            let message = err.to_string();
            assert!(
                message.contains("speaks plain text, not TLS: use redis://")
                    || message.contains("`tls` feature"),
                "{attempt}"
            );
            assert!(!shown.contains("s3cret-pw"), "{attempt}");
        }
    }
}
