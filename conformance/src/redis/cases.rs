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
//! | [`reconnects_after_the_connection_is_killed`], [`an_outage_gives_connection_errors_then_the_backend_recovers`] | a request sent again on a new connection; `ErrorKind::Connection` through an outage, then reconnection |
//! | [`a_request_whose_reply_is_lost_is_sent_again_safely`] | a request whose reply was lost is sent once more, harmlessly |
//! | [`every_operation_is_one_round_trip`] | one command per operation (`MONITOR`) |
//! | [`a_waiter_sends_nothing_while_it_waits`], [`a_release_wakes_a_waiter_at_once`] | waiting by notification: `SUBSCRIBE`, one try, silence, woken by the release's `PUBLISH` at once |
//! | [`a_waiter_survives_its_pubsub_connection_being_killed`], [`a_broken_pubsub_connection_fails_watches_promptly_then_recovers`] | the Pub/Sub connection reconnects, subscribes again and wakes its waiters; watching while it is down fails at once |
//! | [`fencing_tokens_grow_on_the_wire_under_the_prefix`] | fencing tokens from the server's clock, strictly growing (a lost counter included), as a plain integer in an expiring fence key, under the prefix |
//! | [`a_paused_server_makes_a_guard_report_its_loss_before_the_lock_expires`] | a guard reports `LostReason::Expired` before its lock could expire on the server |
//! | [`a_new_server_grants_a_free_lock_only_after_the_restart_delay`] | the delayed restart rule, by a fixed delay and by the lock's timeout |
//! | [`a_release_that_cannot_publish_says_so_and_waiters_still_see_it`] | `ReleasedWithoutNotice`, and waiters' recheck |
//! | [`a_waiter_waits_through_a_stall_and_a_dropped_connection`] | waiting goes on through timeouts and connection errors |
//! | [`a_refused_subscribe_is_an_error_every_time`], [`a_user_without_evalsha_gets_permission_denied_and_nothing_changes`], [`a_wrong_password_is_a_config_error`] | ACL refusals: `PermissionDenied` every time, nothing changed; a refused password is `Config` (in [`super::acl`]) |
//! | [`rediss_to_a_plain_text_server_is_a_config_error_at_once`] | `rediss://` to a plain-text server: `Config` within a second (in [`super::plain_text`]) |
//! | [`a_key_without_expiry_is_a_lock_held_by_another`] | a key another program `SET` without expiry is locked (no remaining time), never read as open, and left alone |
//! | [`a_guard_behind_a_slow_link_trusts_its_lock_no_longer_than_the_server_keeps_it`] | with replies delayed past the drift allowance, a guard's validity counts from the request, never beyond the key's expiry on the server |

use std::sync::Arc;
use std::time::{Duration, Instant};

use lock_core::scripts::{fence_key, release_channel};
use lock_core::{
    Cleared, ErrorKind, FencedAcquire, LockBackend, LockGuard, LockName, LockState, LostReason,
    ProcessLock, Release, Token, Ttl,
};
use tokio::task::JoinHandle;

pub use super::acl::{
    a_refused_subscribe_is_an_error_every_time,
    a_user_without_evalsha_gets_permission_denied_and_nothing_changes,
    a_wrong_password_is_a_config_error,
};
pub use super::plain_text::rediss_to_a_plain_text_server_is_a_config_error_at_once;
use super::{RedisFixture, RedisOptions};
use crate::redis_server::{CommandCounter, RawRedis, Resp};

fn handle(backend: &Arc<dyn LockBackend>, name: &str) -> ProcessLock {
    ProcessLock::new(backend.clone(), name, Duration::from_secs(30)).unwrap()
}

fn name(name: &str) -> LockName {
    LockName::new(name).unwrap()
}

/// Waits, 5 s at most, until the commands clients sent since the last `take` satisfy `done`,
/// and returns them.
async fn sent_until(counter: &CommandCounter, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut sent = Vec::new();
    loop {
        sent.extend(counter.take().await.unwrap());
        if done(&sent) {
            return sent;
        }
        assert!(Instant::now() < deadline, "only {sent:?} were sent in 5 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Whether `sent` has a `SUBSCRIBE` and, after it, an `EVALSHA`: a waiter watched, then tried.
fn subscribed_then_tried(sent: &[String]) -> bool {
    sent.iter()
        .position(|c| c == "subscribe")
        .is_some_and(|at| sent[at..].iter().any(|c| c == "evalsha"))
}

/// `acquire()` in a task of its own, to wait while the case goes on.
fn wait_for(lock: ProcessLock) -> JoinHandle<lock_core::Result<LockGuard>> {
    tokio::spawn(async move { lock.acquire().await })
}

/// The waiter's guard, within `within`.
async fn acquired(
    waiting: JoinHandle<lock_core::Result<LockGuard>>,
    within: Duration,
) -> LockGuard {
    tokio::time::timeout(within, waiting)
        .await
        .unwrap_or_else(|_| panic!("the waiter did not get the lock within {within:?}"))
        .expect("the waiting task")
        .expect("acquire")
}

/// How many clients are subscribed to the release channel of the lock at `key`.
async fn subscribers(admin: &mut RawRedis, key: &str) -> i64 {
    let channel = release_channel(key);
    match admin.run(&["PUBSUB", "NUMSUB", &channel]).await.unwrap() {
        Resp::Array(Some(reply)) if reply.len() == 2 => {
            reply[1].as_int().expect("PUBSUB NUMSUB's count")
        }
        other => panic!("PUBSUB NUMSUB answered {other:?}"),
    }
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
    assert!(
        lock.try_acquire().await.unwrap().is_none(),
        "a fenced acquire is excluded too"
    );
    let value = node.get("shared-job").await.unwrap();
    assert_eq!(value.as_deref(), Some(uuid), "Node's value is untouched");
    let counter = node.get(&fence_key("shared-job")).await.unwrap();
    assert_eq!(counter, None, "a failed fenced acquire counts nothing");

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

    // A guard (a fenced acquire) writes the same key and value: the fence lives elsewhere.
    let guard = lock.try_acquire().await.unwrap().expect("free");
    let value = node.get("shared-job").await.unwrap();
    assert_eq!(
        value.as_deref(),
        Some(guard.token().as_str()),
        "a fenced acquire's key holds the plain token too"
    );
    let ttl = node.int(&["PTTL", "shared-job"]).await.unwrap();
    assert!((29_000..=30_000).contains(&ttl), "expiry set in ms: {ttl}");
    assert!(
        !node_lock(&mut node, "shared-job", "node-uuid").await,
        "Node is excluded by a guard"
    );
    assert_eq!(guard.release().await.unwrap(), Release::Released);
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

    // The fenced acquire and the forced release are scripts too.
    let (key, ttl) = (name("flushed"), Ttl::from_secs(30).unwrap());
    flush().await;
    let fenced = backend.try_acquire_fenced(&key, a.token(), ttl).await;
    assert!(
        matches!(fenced, Ok(FencedAcquire::Acquired { .. })),
        "{fenced:?}"
    );
    flush().await;
    let held = backend
        .try_acquire_fenced(&key, b.token(), ttl)
        .await
        .unwrap();
    assert!(
        matches!(held, FencedAcquire::Held { remaining: Some(_) }),
        "{held:?}"
    );
    flush().await;
    assert_eq!(b.clear(true).await.unwrap(), Cleared::Cleared);
    flush().await;
    assert_eq!(b.clear(true).await.unwrap(), Cleared::Missing);
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
/// operation (a forced clear and status included), and leaves the key alone.
pub async fn a_key_of_another_type_is_a_wrong_type_error(fx: &RedisFixture) {
    let mut other = fx.raw().await;
    assert_eq!(other.int(&["RPUSH", "queue", "job-1"]).await.unwrap(), 1);
    let lock = handle(&fx.backend().await, "queue");

    for (op, err) in [
        ("lock", lock.lock().await.map(|_| ()).unwrap_err()),
        ("update", lock.update().await.map(|_| ()).unwrap_err()),
        ("clear", lock.clear(false).await.map(|_| ()).unwrap_err()),
        (
            "fenced acquire",
            lock.try_acquire().await.map(|_| ()).unwrap_err(),
        ),
        (
            "clear(force)",
            lock.clear(true).await.map(|_| ()).unwrap_err(),
        ),
        ("status", lock.status().await.map(|_| ()).unwrap_err()),
    ] {
        assert_eq!(err.kind(), ErrorKind::WrongType, "{op}: {err}");
        assert!(
            err.to_string().contains("another Redis type"),
            "{op}: {err}"
        );
    }
    let len = other.int(&["LLEN", "queue"]).await.unwrap();
    assert_eq!(len, 1, "the list was left alone");
    let items = other.int(&["LLEN", "queue"]).await.unwrap();
    assert_eq!(items, 1, "the list is intact");
    let counter = other.get(&fence_key("queue")).await.unwrap();
    assert_eq!(counter, None, "a failed fenced acquire counts nothing");
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
    // The request that finds the connection dead is sent again on a new one.
    assert!(
        lock.update().await.unwrap(),
        "still the owner after reconnecting"
    );
    admin
        .int(&["CLIENT", "KILL", "SKIPME", "yes", "TYPE", "normal"])
        .await
        .unwrap();
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

/// A release whose reply is lost (the server applied it, then the connection broke) is sent
/// once more on a new connection, which is safe: the script compares the token, so the second
/// one finds the lock gone (`Missing`) and touches nothing. It is never sent a third time.
pub async fn a_request_whose_reply_is_lost_is_sent_again_safely(fx: &RedisFixture) {
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
    assert_eq!(lock.status().await.unwrap(), LockState::Open);
    assert!(lock.lock().await.unwrap());
    counter.take().await.unwrap();

    proxy.lose_next_reply();
    let cleared = lock.clear(false).await;
    assert_eq!(
        cleared.unwrap(),
        Cleared::Missing,
        "the second release found the first one's work done"
    );
    assert_eq!(lock.status().await.unwrap(), LockState::Open);
    let sent = counter.take().await.unwrap();
    let evalshas = sent.iter().filter(|c| *c == "evalsha").count();
    assert_eq!(evalshas, 3, "two releases and the status: {sent:?}");
}

/// Once the scripts are loaded, every operation is exactly one command: `EVALSHA` for lock,
/// a fenced acquire, update, clear, a forced clear (a script, to publish the release) and
/// status (a script, to refuse a key of another type).
pub async fn every_operation_is_one_round_trip(fx: &RedisFixture) {
    let counter = fx.counter().await;
    let backend = fx.backend().await;
    let a = handle(&backend, "counted");
    let b = handle(&backend, "counted");
    let (key, ttl) = (name("counted"), Ttl::from_secs(30).unwrap());
    // Load the scripts first: a cold script costs a SCRIPT LOAD once per server.
    assert!(a.lock().await.unwrap());
    assert!(a.update().await.unwrap());
    assert_eq!(a.status().await.unwrap(), LockState::Locked);
    assert_eq!(a.clear(false).await.unwrap(), Cleared::Cleared);
    let fenced = backend.try_acquire_fenced(&key, a.token(), ttl).await;
    assert!(
        matches!(fenced, Ok(FencedAcquire::Acquired { .. })),
        "{fenced:?}"
    );
    assert_eq!(a.clear(true).await.unwrap(), Cleared::Cleared);
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
    one(counter.take().await.unwrap(), "evalsha", "status");
    assert_eq!(b.clear(false).await.unwrap(), Cleared::NotOwner);
    one(
        counter.take().await.unwrap(),
        "evalsha",
        "clear (not owner)",
    );
    assert_eq!(a.clear(false).await.unwrap(), Cleared::Cleared);
    one(counter.take().await.unwrap(), "evalsha", "clear");
    assert_eq!(a.clear(true).await.unwrap(), Cleared::Missing);
    one(
        counter.take().await.unwrap(),
        "evalsha",
        "clear(force), missing",
    );

    let fenced = backend.try_acquire_fenced(&key, a.token(), ttl).await;
    assert!(
        matches!(fenced, Ok(FencedAcquire::Acquired { .. })),
        "{fenced:?}"
    );
    one(counter.take().await.unwrap(), "evalsha", "fenced acquire");
    let fenced = backend.try_acquire_fenced(&key, b.token(), ttl).await;
    assert!(
        matches!(fenced, Ok(FencedAcquire::Held { .. })),
        "{fenced:?}"
    );
    one(
        counter.take().await.unwrap(),
        "evalsha",
        "fenced acquire (held)",
    );
    assert_eq!(b.clear(true).await.unwrap(), Cleared::Cleared);
    one(counter.take().await.unwrap(), "evalsha", "clear(force)");
}

/// A waiter sends nothing while it waits: `acquire()` on a lock another backend holds costs one
/// `SUBSCRIBE` and one `EVALSHA` (held), then not a single command (no polling, no `PING`)
/// until the holder's release (its `EVALSHA`, whose `PUBLISH` wakes the waiter), then one
/// `EVALSHA` that takes the lock.
pub async fn a_waiter_sends_nothing_while_it_waits(fx: &RedisFixture) {
    let mut admin = fx.raw().await;
    let holder_backend = fx.backend().await;
    let waiter_backend = fx.backend().await;
    assert!(
        waiter_backend.capabilities().notify,
        "a Redis backend notifies releases"
    );
    let holder = handle(&holder_backend, "awaited");
    let waiter = handle(&waiter_backend, "awaited");
    // Warm up, so that only the waiting is counted: open the waiter's Pub/Sub connection (a
    // handshake of its own) and load every script the waiting and the holder use.
    let warm = waiter_backend.watch(&name("warm-up")).await.unwrap();
    assert!(holder.lock().await.unwrap());
    assert_eq!(holder.clear(false).await.unwrap(), Cleared::Cleared);
    let guard = waiter.try_acquire().await.unwrap().expect("free");
    assert_eq!(guard.release().await.unwrap(), Release::Released);
    let counter = fx.counter().await;

    assert!(holder.lock().await.unwrap());
    assert_eq!(
        counter.take().await.unwrap(),
        ["evalsha"],
        "the holder's lock"
    );
    let waiting = wait_for(waiter);
    let sent = sent_until(&counter, |sent| sent.last().is_some_and(|c| c == "evalsha")).await;
    // A client that drops the server's confirmation of `SUBSCRIBE` (fred) confirms it with a
    // `PING` on the Pub/Sub connection before the waiter may try.
    assert!(
        sent == ["subscribe", "evalsha"] || sent == ["subscribe", "ping", "evalsha"],
        "watch (and confirm), then one try: {sent:?}"
    );

    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(!waiting.is_finished(), "the lock is held for 30 s");
    assert_eq!(
        counter.take().await.unwrap(),
        Vec::<String>::new(),
        "the waiter sent something while waiting"
    );

    assert_eq!(holder.clear(false).await.unwrap(), Cleared::Cleared);
    let guard = acquired(waiting, Duration::from_secs(5)).await;
    assert_eq!(
        counter.take().await.unwrap(),
        ["evalsha", "evalsha"],
        "the holder's release, then the waiter's one acquire"
    );
    let value = admin.get("awaited").await.unwrap();
    assert_eq!(value.as_deref(), Some(guard.token().as_str()));
    assert_eq!(guard.release().await.unwrap(), Release::Released);
    drop(warm);
}

/// A release wakes a waiter in another process at once: a waiter on a lock with 30 s left gets
/// it within 200 ms of the holder's `clear(false)`, and another within 200 ms of a forced
/// `clear(true)`. Woken by the release's message: not by the expiry, 30 s away, and not by
/// polling, since the backend declares `notify`. The fences of the two guards grow.
pub async fn a_release_wakes_a_waiter_at_once(fx: &RedisFixture) {
    const AT_ONCE: Duration = Duration::from_millis(200);
    let counter = fx.counter().await;
    let holder_backend = fx.backend().await;
    let waiter_backend = fx.backend().await;
    assert!(waiter_backend.capabilities().notify);
    assert!(holder_backend.capabilities().notify);
    let holder = handle(&holder_backend, "wake-up");
    assert!(holder.lock().await.unwrap());
    counter.take().await.unwrap();

    let waiting = wait_for(handle(&waiter_backend, "wake-up"));
    sent_until(&counter, subscribed_then_tried).await;
    assert!(!waiting.is_finished(), "the lock is held for 30 s");
    let released = Instant::now();
    assert_eq!(holder.clear(false).await.unwrap(), Cleared::Cleared);
    let first = acquired(waiting, Duration::from_secs(5)).await;
    let took = released.elapsed();
    assert!(took < AT_ONCE, "woken {took:?} after the release");
    assert!(first.is_held());

    // Now the first waiter's backend holds it, and a waiter on the other backend is woken by
    // a third party's forced clear.
    let waiting = wait_for(handle(&holder_backend, "wake-up"));
    sent_until(&counter, subscribed_then_tried).await;
    assert!(!waiting.is_finished(), "the lock is held for 30 s");
    let released = Instant::now();
    let admin = handle(&fx.backend().await, "wake-up");
    assert_eq!(admin.clear(true).await.unwrap(), Cleared::Cleared);
    let second = acquired(waiting, Duration::from_secs(5)).await;
    let took = released.elapsed();
    assert!(took < AT_ONCE, "woken {took:?} after the forced release");
    match (first.fence(), second.fence()) {
        (Some(one), Some(two)) => assert!(one < two, "fences {one} then {two}"),
        fences => panic!("a Redis backend gives fencing tokens: {fences:?}"),
    }
    assert_eq!(second.release().await.unwrap(), Release::Released);
    assert_eq!(first.release().await.unwrap(), Release::Missing);
}

/// A waiter survives its Pub/Sub connection being killed (`CLIENT KILL TYPE pubsub`) while it
/// waits on a lock with 30 s left: the holder's release, published while the connection was
/// down or coming back, still reaches it within a few seconds (the backend reconnects,
/// subscribes again and wakes its waiters), and the new connection then carries the next
/// release's message at once.
pub async fn a_waiter_survives_its_pubsub_connection_being_killed(fx: &RedisFixture) {
    let mut admin = fx.raw().await;
    let holder_backend = fx.backend().await;
    let waiter_backend = fx.backend().await;
    let holder = handle(&holder_backend, "killed-sub");
    assert!(holder.lock().await.unwrap());

    let waiting = wait_for(handle(&waiter_backend, "killed-sub"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while subscribers(&mut admin, "killed-sub").await == 0 {
        assert!(Instant::now() < deadline, "the waiter never subscribed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "the lock is held for 30 s");
    let killed = admin
        .int(&["CLIENT", "KILL", "TYPE", "pubsub"])
        .await
        .unwrap();
    assert_eq!(killed, 1, "one Pub/Sub connection: the waiter's backend's");
    assert_eq!(holder.clear(false).await.unwrap(), Cleared::Cleared);
    let guard = acquired(waiting, Duration::from_secs(5)).await;
    assert!(guard.is_held());
    assert_eq!(
        subscribers(&mut admin, "killed-sub").await,
        1,
        "subscribed again"
    );

    // The new connection carries messages: another waiter of the same backend is woken by
    // the next release at once.
    assert_eq!(guard.release().await.unwrap(), Release::Released);
    assert!(holder.lock().await.unwrap());
    let waiting = wait_for(handle(&waiter_backend, "killed-sub"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "the lock is held for 30 s");
    let released = Instant::now();
    assert_eq!(holder.clear(false).await.unwrap(), Cleared::Cleared);
    let guard = acquired(waiting, Duration::from_secs(5)).await;
    let took = released.elapsed();
    assert!(took < Duration::from_millis(200), "woken {took:?} after");
    assert_eq!(guard.release().await.unwrap(), Release::Released);
}

/// While the network to the server is down, watching a lock (subscribing) fails at once with a
/// retryable `ErrorKind::Connection` error, within the response timeout; once the network is
/// back, the backend's Pub/Sub connection comes back by itself, wakes the watches made before
/// the outage (a release may have gone unseen), and delivers the next releases to them.
pub async fn a_broken_pubsub_connection_fails_watches_promptly_then_recovers(fx: &RedisFixture) {
    let proxy = fx.proxy().await;
    let options = RedisOptions::default().with_response_timeout(Duration::from_millis(500));
    let backend = fx
        .connect(proxy.url(), options.clone())
        .await
        .unwrap_or_else(|e| panic!("connecting through the proxy: {e:?}"));
    let mut before = backend.watch(&name("before-outage")).await.unwrap();

    proxy.set_down(true);
    for attempt in 0..3 {
        let started = Instant::now();
        let err = backend.watch(&name("during-outage")).await.unwrap_err();
        let took = started.elapsed();
        assert_eq!(
            err.kind(),
            ErrorKind::Connection,
            "attempt {attempt}: {err:?}"
        );
        assert!(err.is_retryable());
        assert!(
            took < options.response_timeout,
            "attempt {attempt}: {took:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    proxy.set_down(false);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut after = loop {
        match backend.watch(&name("after-outage")).await {
            Ok(watch) => break watch,
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Connection, "{e:?}");
                assert!(Instant::now() < deadline, "no Pub/Sub reconnection: {e:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), before.released())
        .await
        .expect("the watch made before the outage is woken once subscribed again");

    // Both watches get the next releases, published by another process.
    let other = fx.backend().await;
    for (watch, lock) in [(&mut before, "before-outage"), (&mut after, "after-outage")] {
        let lock = handle(&other, lock);
        assert!(lock.lock().await.unwrap());
        assert_eq!(lock.clear(false).await.unwrap(), Cleared::Cleared);
        tokio::time::timeout(Duration::from_secs(1), watch.released())
            .await
            .unwrap_or_else(|_| panic!("no message for {}", lock.name().as_str()));
    }
}

/// Fencing tokens on the wire: fenced acquisitions of one name, from two backends, get 1, 2, 3,
/// strictly growing also for the holder acquiring again, and never for a failed attempt. The
/// lock's key holds the plain token; the counter is the plain integer at
/// `lock_core::scripts::fence_key(key)`, without expiry, kept after release; both keys are
/// under the prefix ([`RedisOptions::prefix`]).
pub async fn fencing_tokens_grow_on_the_wire_under_the_prefix(fx: &RedisFixture) {
    let mut admin = fx.raw().await;
    let options = RedisOptions::default().with_prefix("app:");
    let a_backend = fx.backend_with(options.clone()).await;
    let b_backend = fx.backend_with(options).await;
    assert!(a_backend.capabilities().fencing, "a Redis backend fences");
    let (a, b) = (handle(&a_backend, "fenced"), handle(&b_backend, "fenced"));
    let (key, counter) = ("app:fenced", fence_key("app:fenced"));
    assert_eq!(counter, "{app:fenced}:fence");

    let clock = server_micros(&mut admin).await;
    let first = a.try_acquire().await.unwrap().expect("free");
    let one = first.fence().expect("fenced");
    assert!(
        one >= clock,
        "a new counter starts at the server's clock in microseconds: {one} < {clock}"
    );
    let value = admin.get(key).await.unwrap();
    assert_eq!(
        value.as_deref(),
        Some(first.token().as_str()),
        "the prefixed key holds the plain token (the connect function must apply \
         RedisOptions::prefix)"
    );
    let stored = admin.get(&counter).await.unwrap();
    assert_eq!(stored, Some(one.to_string()), "a plain integer");
    assert_eq!(
        admin.get("fenced").await.unwrap(),
        None,
        "no unprefixed key"
    );
    assert_eq!(admin.get(&fence_key("fenced")).await.unwrap(), None);
    let ttl = admin.int(&["PTTL", key]).await.unwrap();
    assert!((29_000..=30_000).contains(&ttl), "expiry set in ms: {ttl}");

    assert!(b.try_acquire().await.unwrap().is_none(), "a holds it");
    assert_eq!(
        admin.get(&counter).await.unwrap(),
        Some(one.to_string()),
        "a failed attempt counts nothing"
    );
    assert_eq!(first.release().await.unwrap(), Release::Released);

    let second = b.try_acquire().await.unwrap().expect("released");
    let two = second.fence().expect("fenced");
    assert!(two > one, "{two} after {one}");
    let value = admin.get(key).await.unwrap();
    assert_eq!(value.as_deref(), Some(second.token().as_str()));
    // The holder acquiring again (the primitive, with the guard's own token) counts too.
    let ttl = Ttl::from_secs(30).unwrap();
    let again = b_backend
        .try_acquire_fenced(&name("fenced"), second.token(), ttl)
        .await
        .unwrap();
    let FencedAcquire::Acquired { fence: three } = again else {
        panic!("the holder's fenced acquire: {again:?}");
    };
    assert!(three > two, "{three} after {two}");
    let stranger = Token::generate().unwrap();
    let held = a_backend
        .try_acquire_fenced(&name("fenced"), &stranger, ttl)
        .await
        .unwrap();
    match held {
        FencedAcquire::Held {
            remaining: Some(left),
        } => assert!(left > Duration::from_secs(29), "{left:?}"),
        other => panic!("held by b: {other:?}"),
    }
    assert_eq!(second.release().await.unwrap(), Release::Released);
    let fence: u64 = admin
        .get(&counter)
        .await
        .unwrap()
        .expect("the counter outlives the lock")
        .parse()
        .expect("a plain integer");
    assert_eq!(fence, three);
    // Kept for the lock's timeout plus the retention, then dropped: the clock takes over.
    let kept = admin.int(&["PTTL", &counter]).await.unwrap();
    let retention = i64::try_from(lock_core::scripts::FENCE_RETENTION.as_millis()).unwrap();
    assert!(
        (retention + 29_000..=retention + 30_000).contains(&kept),
        "the counter expires in {kept} ms"
    );
    admin.run(&["DEL", &counter]).await.unwrap();
    let after_loss = a.try_acquire().await.unwrap().expect("free");
    assert!(
        after_loss.fence().expect("fenced") > three,
        "a lost counter does not send tokens back"
    );
    assert_eq!(after_loss.release().await.unwrap(), Release::Released);
    assert_eq!(admin.get(key).await.unwrap(), None, "released");
}

/// A server that stops answering (`CLIENT PAUSE`) while a guard holds a 1 s lock: the renewals
/// time out (`ErrorKind::Timeout`, at the response timeout of 250 ms), and the guard reports
/// `LostReason::Expired` from before 1 s has passed since it was acquired, so before the server
/// could expire the lock and hand it to someone else, and says so then (within scheduling
/// slack). Once the server answers again, the backend works.
pub async fn a_paused_server_makes_a_guard_report_its_loss_before_the_lock_expires(
    fx: &RedisFixture,
) {
    const TTL: Duration = Duration::from_millis(1000);
    let mut admin = fx.raw().await;
    let options = RedisOptions::default().with_response_timeout(Duration::from_millis(250));
    let backend = fx.backend_with(options).await;
    let lock = ProcessLock::new(backend.clone(), "paused", TTL).unwrap();
    let guard = lock.acquire().await.unwrap();
    let acquired = Instant::now();

    admin
        .run(&["CLIENT", "PAUSE", "3000", "ALL"])
        .await
        .unwrap();
    let lost = tokio::time::timeout(Duration::from_secs(3), guard.lost())
        .await
        .expect("the loss is reported");
    let noticed = acquired.elapsed();
    assert_eq!(lost.reason(), LostReason::Expired, "{lost}");
    // Lost from the end of its validity, before the server's expiry (at least 1 s after the
    // acquire was sent, and it was sent before `acquired`)...
    let at = lost.at().into_std() - acquired;
    assert!(at < TTL, "lost {at:?} after acquiring");
    assert!(
        at >= TTL / 2,
        "lost {at:?} after acquiring, before renewals could fail"
    );
    // ...and said so then, give or take the scheduling of a loaded machine.
    assert!(
        noticed < TTL + Duration::from_millis(100),
        "noticed {noticed:?} after acquiring"
    );
    if let Some(cause) = lost.cause() {
        assert_eq!(cause.kind(), ErrorKind::Timeout, "{lost}");
    }
    assert!(!guard.is_held());
    // Still paused: the backend's requests end at its response timeout, as the renewals did.
    let started = Instant::now();
    let err = lock.status().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
    let took = started.elapsed();
    assert!(took < Duration::from_millis(750), "{took:?}");

    // On Redis 7.0 UNPAUSE itself waits for the pause to end.
    admin.run(&["CLIENT", "UNPAUSE"]).await.unwrap();
    let other = handle(&backend, "after-pause");
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match other.lock().await {
            Ok(taken) => {
                assert!(taken, "free");
                break;
            }
            Err(e) => {
                assert!(
                    matches!(e.kind(), ErrorKind::Timeout | ErrorKind::Connection),
                    "{e:?}"
                );
                assert!(
                    Instant::now() < deadline,
                    "no answer after the pause: {e:?}"
                );
            }
        }
    }
    assert!(other.update().await.unwrap());
    assert_eq!(other.clear(false).await.unwrap(), Cleared::Cleared);
    // The lost lock ends: released by the guard, or at its expiry.
    let deadline = Instant::now() + Duration::from_secs(3);
    while lock.status().await.unwrap() == LockState::Locked {
        assert!(Instant::now() < deadline, "the lost lock is still there");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(guard);
}

/// The server's clock, in microseconds since the epoch (`TIME`).
async fn server_micros(admin: &mut RawRedis) -> u64 {
    let Resp::Array(Some(time)) = admin.run(&["TIME"]).await.unwrap() else {
        panic!("TIME answers an array");
    };
    let part = |i: usize| -> u64 { time[i].as_str().unwrap().parse().unwrap() };
    part(0) * 1_000_000 + part(1)
}

/// The server's uptime, from `INFO server`.
async fn uptime(admin: &mut RawRedis) -> Duration {
    let info = admin.run(&["INFO", "server"]).await.unwrap();
    let info = info.as_str().unwrap_or_default().to_owned();
    let seconds = info
        .lines()
        .find_map(|line| line.strip_prefix("uptime_in_seconds:"))
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no uptime in {info:?}"));
    Duration::from_secs(seconds)
}

/// The delayed restart rule: a server that started less than the restart delay ago (here, a
/// new one) grants no free lock (fenced or not) until the delay has passed since its start;
/// by default the delay is the lock's own timeout. A lock held is unaffected, and so is a
/// server up for longer than the delay.
pub async fn a_new_server_grants_a_free_lock_only_after_the_restart_delay(fx: &RedisFixture) {
    let mut admin = fx.raw().await;
    // Well above the server's uptime, whatever the machine's speed.
    let delay = uptime(&mut admin).await + Duration::from_secs(3);
    let started = Instant::now();
    let fixed = fx
        .backend_with(RedisOptions::default().with_restart_delay(Some(delay)))
        .await;
    let by_ttl = fx
        .backend_with(RedisOptions::default().with_restart_delay(None))
        .await;
    let a = ProcessLock::new(fixed.clone(), "restarted", Duration::from_secs(1)).unwrap();
    let b = ProcessLock::new(by_ttl.clone(), "restarted-ttl", delay).unwrap();
    assert!(!a.lock().await.unwrap(), "granted on a new server");
    assert!(!b.lock().await.unwrap(), "granted before one timeout");
    assert_eq!(a.status().await.unwrap(), LockState::Open, "no key was set");
    assert_eq!(admin.get("restarted").await.unwrap(), None);
    let token = Token::generate().unwrap();
    let ttl = Ttl::from_secs(1).unwrap();
    match fixed
        .try_acquire_fenced(&name("restarted"), &token, ttl)
        .await
    {
        Ok(FencedAcquire::Held {
            remaining: Some(left),
        }) => assert!(
            left <= delay && left + Duration::from_secs(2) >= delay - started.elapsed(),
            "{left:?} left of a {delay:?} delay"
        ),
        other => panic!("a fenced acquire on a new server: {other:?}"),
    }
    let counter = admin.get(&fence_key("restarted")).await.unwrap();
    assert_eq!(counter, None, "a refused fenced acquire counts nothing");

    // A waiter is told how long to wait, and gets the lock once the delay has passed.
    let guard = tokio::time::timeout(delay + Duration::from_secs(5), a.acquire())
        .await
        .expect("granted after the delay")
        .unwrap();
    assert!(
        started.elapsed() + Duration::from_secs(2) >= delay,
        "granted {:?} after a {delay:?} delay",
        started.elapsed()
    );
    assert!(b.lock().await.unwrap(), "granted after one timeout");
    // The holder's re-acquire is never delayed; the start is kept, once read, per slot.
    assert!(b.lock().await.unwrap());
    let boot = lock_core::scripts::boot_key("", "restarted");
    let stored = admin.get(&boot).await.unwrap();
    assert!(stored.is_some_and(|ms| ms.parse::<u64>().is_ok()), "{boot}");
    assert_eq!(guard.release().await.unwrap(), Release::Released);
    assert_eq!(b.clear(false).await.unwrap(), Cleared::Cleared);
}

/// A user the ACL forbids to `PUBLISH` on the lock's channel still releases (owned or forced),
/// is told that waiters were not notified, and a waiter in another process sees the release
/// within its recheck interval, long before the holder's timeout.
pub async fn a_release_that_cannot_publish_says_so_and_waiters_still_see_it(fx: &RedisFixture) {
    let mut admin = fx.raw().await;
    admin
        .run(&[
            "ACL", "SETUSER", "nopub", "on", ">pw", "~*", "&*", "+@all", "-publish",
        ])
        .await
        .unwrap();
    let url = fx.url().replacen("redis://", "redis://nopub:pw@", 1);
    let quiet = fx
        .connect(&url, RedisOptions::default())
        .await
        .unwrap_or_else(|e| panic!("connecting as nopub: {e:?}"));
    let waiter_backend = fx.backend().await;
    let holder = ProcessLock::new(quiet.clone(), "quiet", Duration::from_secs(30)).unwrap();
    let guard = holder.acquire().await.unwrap();
    let waiter = ProcessLock::new(waiter_backend, "quiet", Duration::from_secs(30))
        .unwrap()
        .with_recheck(Duration::from_millis(300));
    let waiting = tokio::spawn(async move {
        let guard = waiter.acquire_timeout(Duration::from_secs(10)).await;
        (guard, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let released = Instant::now();
    assert_eq!(
        guard.release().await.unwrap(),
        Release::ReleasedWithoutNotice
    );
    let (guard, at) = waiting.await.unwrap();
    let guard = guard.unwrap().expect("the waiter took the lock");
    let seen = at - released;
    assert!(
        seen < Duration::from_millis(1500),
        "seen {seen:?} after the release"
    );
    // A forced clear, likewise.
    assert_eq!(
        quiet.force_release(&name("quiet")).await.unwrap(),
        lock_core::ForceRelease::ReleasedWithoutNotice
    );
    // The waiter's guard lost its lock to the forced clear.
    drop(guard);
}

/// A waiter waits through a stalled server (`CLIENT PAUSE` longer than its response timeout)
/// and through a dropped connection: it tries again until it gets the lock, never failing.
pub async fn a_waiter_waits_through_a_stall_and_a_dropped_connection(fx: &RedisFixture) {
    let mut admin = fx.raw().await;
    let options = RedisOptions::default().with_response_timeout(Duration::from_millis(200));
    let holder_backend = fx.backend().await;
    let waiter_backend = fx.backend_with(options).await;
    let holder = ProcessLock::new(holder_backend, "stalled", Duration::from_millis(1500)).unwrap();
    assert!(
        holder.lock().await.unwrap(),
        "a seed-style lock: no renewal"
    );
    let waiter = ProcessLock::new(waiter_backend, "stalled", Duration::from_secs(5)).unwrap();
    let started = Instant::now();
    let waiting =
        tokio::spawn(async move { waiter.acquire_timeout(Duration::from_secs(15)).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    admin
        .run(&["CLIENT", "PAUSE", "1000", "ALL"])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    admin
        .int(&["CLIENT", "KILL", "SKIPME", "yes", "TYPE", "normal"])
        .await
        .unwrap();
    admin
        .int(&["CLIENT", "KILL", "SKIPME", "yes", "TYPE", "pubsub"])
        .await
        .unwrap();
    let guard = waiting
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("the waiter gave up: {e:?}"))
        .expect("the waiter took the lock");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1400),
        "taken {took:?} after starting, before the holder's expiry"
    );
    assert!(took < Duration::from_secs(6), "{took:?}");
    assert_eq!(guard.release().await.unwrap(), Release::Released);
}

/// A key `SET` without an expiry by another program (`SET name value`, no `PX`) is a lock held
/// forever by someone else, never an open one: `status` says locked with no remaining time, and
/// `lock`, a guard's (fenced) acquire, `update` and an owned `clear` all leave it alone; only a
/// forced clear removes it.
pub async fn a_key_without_expiry_is_a_lock_held_by_another(fx: &RedisFixture) {
    let mut other = fx.raw().await;
    let backend = fx.backend().await;
    let lock = handle(&backend, "no-expiry");
    other
        .run(&["SET", "no-expiry", "another-program"])
        .await
        .unwrap();

    let status = backend.status(lock.name()).await.unwrap();
    assert_eq!(
        (status.state, status.remaining),
        (LockState::Locked, None),
        "a key without expiry is locked, with no remaining time"
    );
    assert!(
        !lock.lock().await.unwrap(),
        "lock takes a key without expiry"
    );
    match backend
        .try_acquire(lock.name(), lock.token(), lock.ttl())
        .await
        .unwrap()
    {
        lock_core::Acquire::Held { remaining: None } => {}
        outcome => panic!("a failed acquire on a key without expiry answered {outcome:?}"),
    }
    assert!(
        lock.try_acquire().await.unwrap().is_none(),
        "a guard takes a key without expiry"
    );
    assert!(!lock.update().await.unwrap(), "update renews another's key");
    assert_eq!(lock.clear(false).await.unwrap(), Cleared::NotOwner);
    assert_eq!(
        other.get("no-expiry").await.unwrap().as_deref(),
        Some("another-program"),
        "the value is untouched"
    );
    assert_eq!(
        other.int(&["PTTL", "no-expiry"]).await.unwrap(),
        -1,
        "no expiry was added"
    );
    assert_eq!(lock.clear(true).await.unwrap(), Cleared::Cleared);
    assert!(lock.lock().await.unwrap(), "free once force-cleared");
}

/// Checks, against the server itself, that `guard` trusts its lock no longer than the server
/// keeps it: the key is the guard's, and its expiry (read with `PTTL`, directly from the
/// server) is no earlier than the guard's validity.
async fn trusted_no_longer_than_kept(admin: &mut RawRedis, guard: &LockGuard, after: &str) {
    let valid_until = guard
        .valid_until()
        .expect("the guard holds its lock")
        .into_std();
    let key = guard.name().as_str();
    assert_eq!(
        admin.get(key).await.unwrap().as_deref(),
        Some(guard.token().as_str()),
        "after {after}, the key is the guard's"
    );
    let pttl = admin.int(&["PTTL", key]).await.unwrap();
    let answered = Instant::now();
    assert!(
        pttl > 0,
        "after {after}, the key has no expiry left: {pttl}"
    );
    assert_eq!(
        guard.valid_until().map(|v| v.into_std()),
        Some(valid_until),
        "after {after}, a renewal came in between: the check is void"
    );
    // The server answered before `answered`, when at most `pttl` + 1 ms were left.
    let expiry_at_most = answered + Duration::from_millis(pttl.unsigned_abs() + 1);
    assert!(
        valid_until <= expiry_at_most,
        "after {after}, the guard trusts its lock {:?} longer than the server keeps it: \
         validity counted from the delayed reply, not from the request",
        valid_until - expiry_at_most
    );
}

/// Behind a link that delays every reply by 200 ms (the drift allowance of a 1 s lock is
/// 12 ms), a guard counts its lock's validity from when each request was sent: after the
/// acquire and after a renewal, the server keeps the key at least as long as the guard trusts
/// it. A guard counting from the reply would trust it up to 200 ms longer than it exists.
pub async fn a_guard_behind_a_slow_link_trusts_its_lock_no_longer_than_the_server_keeps_it(
    fx: &RedisFixture,
) {
    const TTL: Duration = Duration::from_millis(1000);
    const DELAY: Duration = Duration::from_millis(200);
    let proxy = fx.proxy().await;
    let backend = fx
        .connect(proxy.url(), RedisOptions::default())
        .await
        .unwrap_or_else(|e| panic!("connecting through the proxy: {e:?}"));
    let mut admin = fx.raw().await;
    let lock = ProcessLock::new(backend.clone(), "slow-link", TTL).unwrap();
    // Before the link slows down: the Pub/Sub connection is up and every script is loaded,
    // so that the acquire and renewals below are one delayed round trip each.
    let _warm = if backend.capabilities().notify {
        Some(backend.watch(lock.name()).await.unwrap())
    } else {
        None
    };
    let warm = ProcessLock::new(backend.clone(), "warm-up", TTL).unwrap();
    let guard = warm.try_acquire().await.unwrap().expect("free");
    assert_eq!(guard.release().await.unwrap(), Release::Released);
    assert!(warm.lock().await.unwrap() && warm.update().await.unwrap());
    assert_eq!(warm.status().await.unwrap(), LockState::Locked);
    assert_eq!(warm.clear(false).await.unwrap(), Cleared::Cleared);

    proxy.delay_replies(DELAY);
    let guard = lock.acquire().await.unwrap();
    trusted_no_longer_than_kept(&mut admin, &guard, "the acquire").await;

    // The first renewal is sent a third of the timeout after the acquire was, and confirmed
    // 200 ms later.
    let acquired = guard.valid_until().unwrap();
    let deadline = Instant::now() + TTL;
    while guard.valid_until() == Some(acquired) {
        assert!(Instant::now() < deadline, "no renewal was confirmed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    trusted_no_longer_than_kept(&mut admin, &guard, "a renewal").await;

    proxy.delay_replies(Duration::ZERO);
    assert_eq!(guard.release().await.unwrap(), Release::Released);
}
