//! The keys and values on the server: the key and value `process-lock-node` uses (both ways),
//! fencing tokens as plain integers under the prefix, and keys another program wrote (a key
//! without expiry, a key of another type), which the backend reads as held and leaves alone.

use std::time::Duration;

use lock_core::redis::keys::fence_key;
use lock_core::{Cleared, ErrorKind, FencedAcquire, LockState, Release, Token, Ttl};

use super::fixture::{RedisFixture, guards, handle, name};
use super::options::RedisOptions;
use crate::redis_server::{RawRedis, Resp};

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
///
/// # Examples
///
/// ```no_run
/// # async fn check(redis: &conformance::redis::RedisFixture) {
/// conformance::redis::a_node_lock_excludes_rust_and_rust_cannot_touch_it(redis).await;
/// # }
/// ```
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
        guards(&lock).try_lock().await.unwrap().is_none(),
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
///
/// # Examples
///
/// ```no_run
/// # async fn check(redis: &conformance::redis::RedisFixture) {
/// conformance::redis::a_rust_lock_excludes_node_with_the_plain_token_as_value(redis).await;
/// # }
/// ```
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
    let guard = guards(&lock).try_lock().await.unwrap().expect("free");
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

/// Fencing tokens on the wire: fenced acquisitions of one name, from two backends, get 1, 2, 3,
/// strictly growing also for the holder acquiring again, and never for a failed attempt. The
/// lock's key holds the plain token; the counter is the plain integer at
/// `lock_core::redis::keys::fence_key(key)`, without expiry, kept after release; both keys are
/// under the prefix ([`RedisOptions::prefix`]).
///
/// # Examples
///
/// ```no_run
/// # async fn check(redis: &conformance::redis::RedisFixture) {
/// conformance::redis::fencing_tokens_grow_on_the_wire_under_the_prefix(redis).await;
/// # }
/// ```
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
    let first = guards(&a).try_lock().await.unwrap().expect("free");
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

    assert!(guards(&b).try_lock().await.unwrap().is_none(), "a holds it");
    assert_eq!(
        admin.get(&counter).await.unwrap(),
        Some(one.to_string()),
        "a failed attempt counts nothing"
    );
    assert_eq!(first.release().await.unwrap(), Release::Released);

    let second = guards(&b).try_lock().await.unwrap().expect("released");
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
    let retention = i64::try_from(lock_core::redis::scripts::FENCE_RETENTION.as_millis()).unwrap();
    assert!(
        (retention + 29_000..=retention + 30_000).contains(&kept),
        "the counter expires in {kept} ms"
    );
    admin.run(&["DEL", &counter]).await.unwrap();
    let after_loss = guards(&a).try_lock().await.unwrap().expect("free");
    assert!(
        after_loss.fence().expect("fenced") > three,
        "a lost counter does not send tokens back"
    );
    assert_eq!(after_loss.release().await.unwrap(), Release::Released);
    assert_eq!(admin.get(key).await.unwrap(), None, "released");
}

/// The server's clock, in microseconds since the epoch (`TIME`).
async fn server_micros(admin: &mut RawRedis) -> u64 {
    let Resp::Array(Some(time)) = admin.run(&["TIME"]).await.unwrap() else {
        panic!("TIME answers an array");
    };
    let part = |i: usize| -> u64 { time[i].as_str().unwrap().parse().unwrap() };
    part(0) * 1_000_000 + part(1)
}

/// A key `SET` without an expiry by another program (`SET name value`, no `PX`) is a lock held
/// forever by someone else, never an open one: `status` says locked with no remaining time, and
/// `lock`, a guard's (fenced) acquire, `update` and an owned `clear` all leave it alone; only a
/// forced clear removes it.
///
/// # Examples
///
/// ```no_run
/// # async fn check(redis: &conformance::redis::RedisFixture) {
/// conformance::redis::a_key_without_expiry_is_a_lock_held_by_another(redis).await;
/// # }
/// ```
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
        guards(&lock).try_lock().await.unwrap().is_none(),
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

/// A name whose key holds another type (here a list) gives `ErrorKind::WrongType` for every
/// operation (a forced clear, status and holds included), and leaves the key alone.
///
/// # Examples
///
/// ```no_run
/// # async fn check(redis: &conformance::redis::RedisFixture) {
/// conformance::redis::a_key_of_another_type_is_a_wrong_type_error(redis).await;
/// # }
/// ```
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
            guards(&lock).try_lock().await.map(|_| ()).unwrap_err(),
        ),
        (
            "clear(force)",
            lock.clear(true).await.map(|_| ()).unwrap_err(),
        ),
        ("status", lock.status().await.map(|_| ()).unwrap_err()),
        ("holds", lock.holds().await.map(|_| ()).unwrap_err()),
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
