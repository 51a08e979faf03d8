//! The scripts: every operation is one `EVALSHA`, and survives `SCRIPT FLUSH` (or a restart)
//! emptying the script cache, for one `EVAL`.

use lock_core::{Cleared, FencedAcquire, LockState, Ttl};

use super::fixture::{RedisFixture, handle, name};

/// Every operation gives its usual answer right after `SCRIPT FLUSH` (or a restart) emptied
/// the script cache.
///
/// # Examples
///
/// ```no_run
/// # async fn check(redis: &conformance::redis::RedisFixture) {
/// conformance::redis::every_operation_survives_script_flush(redis).await;
/// # }
/// ```
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
    assert!(a.holds().await.unwrap());
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

/// After `SCRIPT FLUSH`, a script costs `EVALSHA` (refused) and `EVAL` (the script whole,
/// which the server caches) once, then one `EVALSHA` again.
///
/// # Examples
///
/// ```no_run
/// # async fn check(redis: &conformance::redis::RedisFixture) {
/// conformance::redis::a_flushed_script_costs_evalsha_then_eval_once(redis).await;
/// # }
/// ```
pub async fn a_flushed_script_costs_evalsha_then_eval_once(fx: &RedisFixture) {
    let mut admin = fx.raw().await;
    let counter = fx.counter().await;
    let backend = fx.backend().await;
    let lock = handle(&backend, "reloaded");
    assert!(lock.lock().await.unwrap());
    admin.run(&["SCRIPT", "FLUSH"]).await.unwrap();
    counter.take().await.unwrap();

    assert!(lock.update().await.unwrap());
    assert_eq!(counter.take().await.unwrap(), ["evalsha", "eval"]);
    assert!(lock.update().await.unwrap());
    assert_eq!(counter.take().await.unwrap(), ["evalsha"]);
}

/// Once the scripts are loaded, every operation is exactly one command: `EVALSHA` for lock,
/// a fenced acquire, update, clear, a forced clear (a script, to publish the release) and
/// status (a script, to refuse a key of another type).
///
/// # Examples
///
/// ```no_run
/// # async fn check(redis: &conformance::redis::RedisFixture) {
/// conformance::redis::every_operation_is_one_round_trip(redis).await;
/// # }
/// ```
pub async fn every_operation_is_one_round_trip(fx: &RedisFixture) {
    let counter = fx.counter().await;
    let backend = fx.backend().await;
    let a = handle(&backend, "counted");
    let b = handle(&backend, "counted");
    let (key, ttl) = (name("counted"), Ttl::from_secs(30).unwrap());
    // Load the scripts first: a cold script costs an EVAL once per server.
    assert!(a.lock().await.unwrap());
    assert!(a.update().await.unwrap());
    assert_eq!(a.status().await.unwrap(), LockState::Locked);
    assert!(a.holds().await.unwrap());
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
    assert!(a.holds().await.unwrap());
    one(counter.take().await.unwrap(), "evalsha", "holds");
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
