//! The cases of the shared Redis suite: each is a plain `async fn(&RedisFixture)` that panics,
//! with a message saying what broke, when the backend misbehaves. Each runs on a server of its
//! own, so it may use fixed key names, flush scripts, pause clients or set a password.
//!
//! | case | checks |
//! |---|---|
//! | [`a_node_lock_excludes_rust_and_rust_cannot_touch_it`], [`a_rust_lock_excludes_node_with_the_plain_token_as_value`] | the wire format shared with `process-lock-node`, both ways |
//! | [`every_operation_survives_script_flush`], [`a_flushed_script_costs_evalsha_script_load_evalsha_once`] | scripts reloaded transparently, at the cost of one `SCRIPT LOAD` |
//! | [`a_key_of_another_type_is_a_wrong_type_error`] | `ErrorKind::WrongType`, and the key left alone |
//! | [`connection_refused_is_a_connection_error_without_the_password`], [`an_unanswering_server_times_out_within_the_connect_timeout`] | connecting is bounded by the connect timeout, with typed errors |
//! | [`malformed_urls_are_config_errors_without_the_password`], [`debug_output_hides_the_password`] | `ErrorKind::Config`, and the password never shown |
//! | [`a_stalled_server_gives_a_timeout_then_answers_stay_in_order`] | `ErrorKind::Timeout` within the response timeout, and no late reply taken for another's |
//! | [`reconnects_after_the_connection_is_killed`], [`an_outage_gives_connection_errors_then_the_backend_recovers`] | `ErrorKind::Connection`, then reconnection |
//! | [`a_request_whose_reply_is_lost_fails_and_is_never_replayed`] | a request is sent once, never again after reconnecting |
//! | [`every_operation_is_one_round_trip`] | one command per operation (`MONITOR`) |

use std::sync::Arc;
use std::time::{Duration, Instant};

use lock_core::{Cleared, ErrorKind, LockBackend, LockName, LockState, ProcessLock};

use super::{RedisFixture, RedisOptions};
use crate::redis_server::RawRedis;

fn handle(backend: &Arc<dyn LockBackend>, name: &str) -> ProcessLock {
    ProcessLock::new(backend.clone(), name, Duration::from_secs(30)).unwrap()
}

/// What `process-lock-node` sends for `lock()`: `SET name <uuid> NX EX timeout`.
async fn node_lock(node: &mut RawRedis, name: &str, uuid: &str) -> bool {
    !node
        .run(&["SET", name, uuid, "NX", "EX", "30"])
        .await
        .unwrap()
        .is_nil()
}

/// A lock `process-lock-node` took keeps Rust out, and Rust can neither renew nor clear it nor
/// change its value; once Node clears it, Rust can take it.
pub async fn a_node_lock_excludes_rust_and_rust_cannot_touch_it(fx: &RedisFixture) {
    let mut node = fx.raw().await;
    let lock = handle(&fx.backend().await, "shared-job");
    let uuid = "0f8fad5b-d9cb-469f-a165-70867728950e";

    assert!(node_lock(&mut node, "shared-job", uuid).await);
    assert!(!lock.lock().await.unwrap(), "the Node process holds it");
    assert!(
        !lock.update().await.unwrap(),
        "Rust cannot renew Node's lock"
    );
    assert_eq!(lock.clear(false).await.unwrap(), Cleared::NotOwner);
    assert_eq!(lock.status().await.unwrap(), LockState::Locked);
    let value = node.get("shared-job").await.unwrap();
    assert_eq!(value.as_deref(), Some(uuid), "Node's value is untouched");

    // Node's clear: GET, compare with its uuid, DEL.
    assert_eq!(node.int(&["DEL", "shared-job"]).await.unwrap(), 1);
    assert!(lock.lock().await.unwrap(), "free once Node cleared it");
}

/// A lock Rust took is the key `name` holding the plain token, with its expiry in
/// milliseconds; it keeps `process-lock-node` out until cleared.
pub async fn a_rust_lock_excludes_node_with_the_plain_token_as_value(fx: &RedisFixture) {
    let mut node = fx.raw().await;
    let lock = handle(&fx.backend().await, "shared-job");

    assert!(lock.lock().await.unwrap());
    let value = node.get("shared-job").await.unwrap();
    assert_eq!(
        value.as_deref(),
        Some(lock.token().as_str()),
        "the key holds the plain token"
    );
    let ttl = node.int(&["PTTL", "shared-job"]).await.unwrap();
    assert!((29_000..=30_000).contains(&ttl), "expiry set in ms: {ttl}");
    assert!(
        !node_lock(&mut node, "shared-job", "node-uuid").await,
        "Node is excluded"
    );
    // Node's update/clear compare the value with their own uuid first, so they leave it alone:
    // the value is still ours.
    let value = node.get("shared-job").await.unwrap();
    assert_eq!(value.as_deref(), Some(lock.token().as_str()));
    assert_eq!(lock.clear(false).await.unwrap(), Cleared::Cleared);
    assert!(
        node_lock(&mut node, "shared-job", "node-uuid").await,
        "Node gets it after clear"
    );
}

/// Every operation gives its usual answer right after `SCRIPT FLUSH` (or a restart) emptied
/// the script cache.
pub async fn every_operation_survives_script_flush(fx: &RedisFixture) {
    let mut admin = fx.raw().await;
    let backend = fx.backend().await;
    let a = handle(&backend, "flushed");
    let b = handle(&backend, "flushed");
    let mut flush = async || {
        admin.run(&["SCRIPT", "FLUSH"]).await.unwrap();
    };

    flush().await;
    assert!(a.lock().await.unwrap());
    flush().await;
    assert!(!b.lock().await.unwrap());
    flush().await;
    assert!(a.update().await.unwrap());
    flush().await;
    assert_eq!(b.clear(false).await.unwrap(), Cleared::NotOwner);
    flush().await;
    assert_eq!(a.clear(false).await.unwrap(), Cleared::Cleared);
    flush().await;
    assert_eq!(a.clear(false).await.unwrap(), Cleared::Missing);
    assert!(!a.update().await.unwrap());
}

/// After `SCRIPT FLUSH`, a script costs `EVALSHA` (refused), `SCRIPT LOAD`, `EVALSHA` once, then
/// one `EVALSHA` again.
pub async fn a_flushed_script_costs_evalsha_script_load_evalsha_once(fx: &RedisFixture) {
    let mut admin = fx.raw().await;
    let counter = fx.counter().await;
    let backend = fx.backend().await;
    let lock = handle(&backend, "reloaded");
    assert!(lock.lock().await.unwrap());
    admin.run(&["SCRIPT", "FLUSH"]).await.unwrap();
    counter.take().await.unwrap();

    assert!(lock.update().await.unwrap());
    assert_eq!(
        counter.take().await.unwrap(),
        ["evalsha", "script", "evalsha"]
    );
    assert!(lock.update().await.unwrap());
    assert_eq!(counter.take().await.unwrap(), ["evalsha"]);
}

/// A name whose key holds another type (here a list) gives `ErrorKind::WrongType` for every
/// operation, leaves the key alone, and reads as locked.
pub async fn a_key_of_another_type_is_a_wrong_type_error(fx: &RedisFixture) {
    let mut other = fx.raw().await;
    assert_eq!(other.int(&["RPUSH", "queue", "job-1"]).await.unwrap(), 1);
    let lock = handle(&fx.backend().await, "queue");

    for (op, err) in [
        ("lock", lock.lock().await.map(|_| ()).unwrap_err()),
        ("update", lock.update().await.map(|_| ()).unwrap_err()),
        ("clear", lock.clear(false).await.map(|_| ()).unwrap_err()),
    ] {
        assert_eq!(err.kind(), ErrorKind::WrongType, "{op}: {err}");
        assert!(
            err.to_string().contains("another Redis type"),
            "{op}: {err}"
        );
    }
    let len = other.int(&["LLEN", "queue"]).await.unwrap();
    assert_eq!(len, 1, "the list was left alone");
    assert_eq!(
        lock.status().await.unwrap(),
        LockState::Locked,
        "the name is taken"
    );
}

/// Connecting to a port nothing listens on fails within the connect timeout with a
/// `Connection` (or `Timeout`) error naming the server, without its password.
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
    // naming its `tls` feature; one with TLS support fails the handshake. Connecting in
    // plaintext (what fred alone does without TLS support) would succeed here.
    let url = fx.url().replacen("redis://", "rediss://:s3cret-pw@", 1);
    let options = RedisOptions::default()
        .with_connect_timeout(Duration::from_secs(1))
        .with_reconnect_attempts(0);
    let err = fx.connect(&url, options).await.unwrap_err();
    let shown = format!("{err} {err:?}");
    match err.kind() {
        ErrorKind::Config => assert!(err.to_string().contains("`tls` feature"), "{err}"),
        kind => assert!(
            matches!(kind, ErrorKind::Connection | ErrorKind::Timeout),
            "{url}: {err:?}"
        ),
    }
    assert!(!shown.contains("s3cret-pw"), "{url}: {shown}");
}

/// With a password set (`requirepass`), the connected backend's `Debug` shows `***` instead,
/// and it works; a wrong password is a `Config` error that does not show it.
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

/// A server that stops answering (`CLIENT PAUSE`) gives a retryable `ErrorKind::Timeout` within
/// the response timeout; once it answers again, every reply goes to its own request.
pub async fn a_stalled_server_gives_a_timeout_then_answers_stay_in_order(fx: &RedisFixture) {
    let mut admin = fx.raw().await;
    let options = RedisOptions::default().with_response_timeout(Duration::from_millis(300));
    let backend = fx.backend_with(options).await;
    let a = handle(&backend, "stalled");
    let b = handle(&backend, "stalled");
    assert!(a.lock().await.unwrap());

    admin
        .run(&["CLIENT", "PAUSE", "1500", "ALL"])
        .await
        .unwrap();
    let started = Instant::now();
    let err = b.lock().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
    assert!(err.is_retryable());
    assert!(
        started.elapsed() < Duration::from_millis(1200),
        "{:?}",
        started.elapsed()
    );

    // Once the pause ends, the late reply must not be mistaken for a later request's.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!b.lock().await.unwrap(), "a still holds it");
    assert!(a.update().await.unwrap());
    assert_eq!(b.clear(false).await.unwrap(), Cleared::NotOwner);
    assert_eq!(a.clear(false).await.unwrap(), Cleared::Cleared);
    assert_eq!(a.status().await.unwrap(), LockState::Open);
}

/// After the server kills the backend's connection (`CLIENT KILL`), requests fail with
/// `ErrorKind::Connection` (and are not replayed) until the backend reconnects, by itself.
pub async fn reconnects_after_the_connection_is_killed(fx: &RedisFixture) {
    let mut admin = fx.raw().await;
    let backend = fx.backend().await;
    let lock = handle(&backend, "reconnect");
    assert!(lock.lock().await.unwrap());
    // Kill every client connection but the admin's own.
    let killed = admin
        .int(&["CLIENT", "KILL", "SKIPME", "yes", "TYPE", "normal"])
        .await
        .unwrap();
    assert!(killed >= 1, "{killed}");
    // The request that finds the connection dead fails (and is not replayed) ...
    let mut recovered = false;
    for _ in 0..20 {
        match lock.update().await {
            Ok(renewed) => {
                assert!(renewed, "still the owner after reconnecting");
                recovered = true;
                break;
            }
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Connection, "{e:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    // ... and the next ones go through a new connection.
    assert!(recovered, "no reconnection");
    assert_eq!(lock.clear(false).await.unwrap(), Cleared::Cleared);
}

/// While the server is unreachable, every operation fails with a retryable
/// `ErrorKind::Connection` error within the response timeout; once it is back, the backend
/// reconnects by itself within a few seconds.
pub async fn an_outage_gives_connection_errors_then_the_backend_recovers(fx: &RedisFixture) {
    let proxy = fx.proxy().await;
    let options = RedisOptions::default().with_response_timeout(Duration::from_millis(500));
    let backend = fx
        .connect(proxy.url(), options)
        .await
        .unwrap_or_else(|e| panic!("connecting through the proxy: {e:?}"));
    let lock = handle(&backend, "outage");
    assert!(lock.lock().await.unwrap());

    proxy.set_down(true);
    for _ in 0..3 {
        let started = Instant::now();
        let err = lock.update().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Connection, "{err:?}");
        assert!(err.is_retryable());
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{:?}",
            started.elapsed()
        );
    }
    let err = lock.status().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err:?}");

    // Back: reconnected in the background, within the backends' 1 s cap between attempts.
    proxy.set_down(false);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match lock.update().await {
            Ok(renewed) => {
                assert!(renewed, "still the owner");
                break;
            }
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Connection, "{e:?}");
                assert!(Instant::now() < deadline, "no reconnection: {e:?}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    assert_eq!(lock.clear(false).await.unwrap(), Cleared::Cleared);
}

/// A release whose reply is lost (the server applied it, then the connection broke) fails at
/// once with `ErrorKind::Connection`, and is never sent again after reconnecting: replaying it
/// could release, or for an acquire re-take, a lock behind the caller's back.
pub async fn a_request_whose_reply_is_lost_fails_and_is_never_replayed(fx: &RedisFixture) {
    let mut admin = fx.raw().await;
    let counter = fx.counter().await;
    let proxy = fx.proxy().await;
    let backend = fx
        .connect(proxy.url(), RedisOptions::default())
        .await
        .unwrap_or_else(|e| panic!("connecting through the proxy: {e:?}"));
    let lock = handle(&backend, "lost-reply");
    // Load the release script, so that the release below is a single EVALSHA.
    assert!(lock.lock().await.unwrap());
    assert_eq!(lock.clear(false).await.unwrap(), Cleared::Cleared);
    assert!(lock.lock().await.unwrap());
    counter.take().await.unwrap();

    proxy.lose_replies(true);
    let started = Instant::now();
    let err = lock.clear(false).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "not a timeout: {:?}",
        started.elapsed()
    );
    proxy.lose_replies(false);
    let value = admin.get("lost-reply").await.unwrap();
    assert_eq!(
        value, None,
        "the release was applied, only its reply was lost"
    );

    // Through the new connection. Had the backend re-sent the release after reconnecting (as
    // fred does by default), that would have gone first.
    assert_eq!(lock.status().await.unwrap(), LockState::Open);
    let sent = counter.take().await.unwrap();
    let evalshas = sent.iter().filter(|c| *c == "evalsha").count();
    assert_eq!(evalshas, 1, "the release was sent once: {sent:?}");
    assert_eq!(lock.clear(false).await.unwrap(), Cleared::Missing);
}

/// Once the scripts are loaded, every operation is exactly one command: `EVALSHA` for lock,
/// update and clear, `PTTL` for status, `DEL` for a forced clear.
pub async fn every_operation_is_one_round_trip(fx: &RedisFixture) {
    let counter = fx.counter().await;
    let backend = fx.backend().await;
    let a = handle(&backend, "counted");
    let b = handle(&backend, "counted");
    // Load the scripts first: a cold script costs a SCRIPT LOAD once per server.
    assert!(a.lock().await.unwrap());
    assert!(a.update().await.unwrap());
    assert_eq!(a.clear(false).await.unwrap(), Cleared::Cleared);
    counter.take().await.unwrap();

    let one = |commands: Vec<String>, expected: &str, op: &str| {
        assert_eq!(commands, vec![expected.to_owned()], "{op}");
    };
    assert!(a.lock().await.unwrap());
    one(counter.take().await.unwrap(), "evalsha", "lock (acquired)");
    assert!(!b.lock().await.unwrap());
    one(counter.take().await.unwrap(), "evalsha", "lock (held)");
    assert!(a.lock().await.unwrap());
    one(counter.take().await.unwrap(), "evalsha", "lock (re-lock)");
    assert!(a.update().await.unwrap());
    one(counter.take().await.unwrap(), "evalsha", "update");
    assert_eq!(a.status().await.unwrap(), LockState::Locked);
    one(counter.take().await.unwrap(), "pttl", "status");
    assert_eq!(b.clear(false).await.unwrap(), Cleared::NotOwner);
    one(
        counter.take().await.unwrap(),
        "evalsha",
        "clear (not owner)",
    );
    assert_eq!(a.clear(false).await.unwrap(), Cleared::Cleared);
    one(counter.take().await.unwrap(), "evalsha", "clear");
    assert_eq!(a.clear(true).await.unwrap(), Cleared::Missing);
    one(counter.take().await.unwrap(), "del", "clear(force)");
}
