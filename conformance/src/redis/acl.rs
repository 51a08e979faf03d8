//! Users the server's ACL restricts: a refused `SUBSCRIBE` or `EVALSHA` is
//! `ErrorKind::PermissionDenied` every time and changes nothing, a refused password is a
//! configuration error, and a release refused its `PUBLISH` says so while waiters still see it.
//! The first two repeat what they check [`TRIES`] times: a race that shows in 1 run of 5 must
//! show here.

use std::time::{Duration, Instant};

use lock_core::redis::keys::release_channel;
use lock_core::{ErrorKind, Lock, LockName, Release, Token, Ttl};

use super::fixture::{RedisFixture, name};
use super::options::RedisOptions;
use crate::redis_server::{RawRedis, Resp};

/// How many times each ACL case repeats what it checks.
pub(crate) const TRIES: usize = 12;

/// Adds the ACL user `u` (password `pw`) with `rules`, and returns the server's URL for it.
async fn acl_user(fx: &RedisFixture, admin: &mut RawRedis, rules: &[&str]) -> String {
    let mut command = vec!["ACL", "SETUSER", "u", "reset", "on", ">pw"];
    command.extend_from_slice(rules);
    admin.run(&command).await.unwrap();
    fx.url().replacen("redis://", "redis://u:pw@", 1)
}

/// The ids of the server's Pub/Sub connections.
async fn pubsub_clients(admin: &mut RawRedis) -> Vec<String> {
    let list = admin
        .run(&["CLIENT", "LIST", "TYPE", "pubsub"])
        .await
        .unwrap();
    let list = list.as_str().unwrap_or_default().to_owned();
    list.lines()
        .filter_map(|line| line.split(' ').find_map(|f| f.strip_prefix("id=")))
        .map(str::to_owned)
        .collect()
}

/// A `SUBSCRIBE` the ACL refuses fails the watch with `PermissionDenied`, every time, in RESP2
/// and RESP3: on a backend's first watch (a new Pub/Sub connection, as separate processes
/// have) and again and again on one connection already subscribed elsewhere, which still
/// serves afterwards (no reconnection, messages on the allowed channel arrive).
///
/// # Examples
///
/// ```no_run
/// # async fn check(redis: &conformance::redis::RedisFixture) {
/// conformance::redis::a_refused_subscribe_is_an_error_every_time(redis).await;
/// # }
/// ```
pub async fn a_refused_subscribe_is_an_error_every_time(fx: &RedisFixture) {
    let mut admin = fx.raw().await;
    // Every channel refused but the lock `allowed`'s.
    let allowed = release_channel("allowed");
    let url = acl_user(
        fx,
        &mut admin,
        &["~*", "resetchannels", &format!("&{allowed}"), "+@all"],
    )
    .await;
    let refused = LockName::new("refused").unwrap();
    let check = |err: lock_core::Error, attempt: &str| {
        assert_eq!(
            err.kind(),
            ErrorKind::PermissionDenied,
            "{attempt}: {err:?}"
        );
        let shown = err.to_string();
        assert!(
            shown.contains("Redis user lacks the permission"),
            "{attempt}: {shown}"
        );
        assert!(!shown.contains("pw@"), "{attempt}: {shown}");
    };

    for protocol in ["resp2", "resp3"] {
        let url = format!("{url}?protocol={protocol}");
        for attempt in 0..TRIES {
            let backend = fx.connect(&url, RedisOptions::default()).await.unwrap();
            let err = backend.watch(&refused).await.unwrap_err();
            check(err, &format!("{protocol}, new backend, try {attempt}"));
        }

        let backend = fx.connect(&url, RedisOptions::default()).await.unwrap();
        let mut watch = backend
            .watch(&LockName::new("allowed").unwrap())
            .await
            .unwrap();
        let subscriber = pubsub_clients(&mut admin).await;
        assert_eq!(subscriber.len(), 1, "{protocol}: {subscriber:?}");
        for attempt in 0..TRIES {
            let err = backend.watch(&refused).await.unwrap_err();
            check(err, &format!("{protocol}, same backend, try {attempt}"));
        }
        // The same connection still serves: a new subscription is confirmed, messages arrive.
        let _again = backend
            .watch(&LockName::new("allowed").unwrap())
            .await
            .unwrap();
        assert_eq!(pubsub_clients(&mut admin).await, subscriber, "{protocol}");
        let numsub = admin
            .run(&["PUBSUB", "NUMSUB", &release_channel("refused")])
            .await
            .unwrap();
        assert!(
            matches!(&numsub, Resp::Array(Some(items)) if items.get(1) == Some(&Resp::Int(0))),
            "{protocol}: {numsub:?}"
        );
        admin.run(&["PUBLISH", &allowed, ""]).await.unwrap();
        tokio::time::timeout(Duration::from_secs(1), watch.released())
            .await
            .unwrap_or_else(|_| panic!("{protocol}: the message on the allowed channel"));
        drop((watch, _again, backend));
        // Wait for the Pub/Sub connection to close before the next protocol counts them.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !pubsub_clients(&mut admin).await.is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{protocol}: still subscribed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A user without `EVALSHA` (and `EVAL`) gets `PermissionDenied`, not retryable, for every
/// acquire, fenced or not, and nothing is written.
///
/// # Examples
///
/// ```no_run
/// # async fn check(redis: &conformance::redis::RedisFixture) {
/// conformance::redis::a_user_without_evalsha_gets_permission_denied_and_nothing_changes(redis).await;
/// # }
/// ```
pub async fn a_user_without_evalsha_gets_permission_denied_and_nothing_changes(fx: &RedisFixture) {
    let mut admin = fx.raw().await;
    let url = acl_user(fx, &mut admin, &["~*", "&*", "+@all", "-evalsha", "-eval"]).await;
    let backend = fx.connect(&url, RedisOptions::default()).await.unwrap();
    let name = LockName::new("denied").unwrap();
    let ttl = Ttl::new(Duration::from_secs(30)).unwrap();
    for attempt in 0..TRIES {
        let token = Token::generate().unwrap();
        let err = backend.try_acquire(&name, &token, ttl).await.unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::PermissionDenied,
            "try {attempt}: {err:?}"
        );
        let shown = err.to_string();
        assert!(
            shown.contains("acquire") && shown.contains("Redis user lacks the permission"),
            "try {attempt}: {shown}"
        );
        assert!(!err.is_retryable());
        let err = backend
            .try_acquire_fenced(&name, &token, ttl)
            .await
            .unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::PermissionDenied,
            "try {attempt}: {err:?}"
        );
    }
    assert_eq!(admin.int(&["DBSIZE"]).await.unwrap(), 0, "nothing changed");
}

/// A refused password is a configuration error (not retried as a connection error), and is
/// never shown.
///
/// # Examples
///
/// ```no_run
/// # async fn check(redis: &conformance::redis::RedisFixture) {
/// conformance::redis::a_wrong_password_is_a_config_error(redis).await;
/// # }
/// ```
pub async fn a_wrong_password_is_a_config_error(fx: &RedisFixture) {
    let mut admin = fx.raw().await;
    let url = acl_user(fx, &mut admin, &["~*", "&*", "+@all"]).await;
    assert!(fx.connect(&url, RedisOptions::default()).await.is_ok());
    let wrong = url.replace("u:pw@", "u:wrong-pw@");
    let options = RedisOptions::default().with_reconnect_attempts(0);
    let err = fx.connect(&wrong, options).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err:?}");
    assert!(!format!("{err} {err:?}").contains("wrong-pw"), "{err:?}");
}

/// A user the ACL forbids to `PUBLISH` on the lock's channel still releases (owned or forced),
/// is told that waiters were not notified, and a waiter in another process sees the release
/// within its recheck interval, long before the holder's timeout.
///
/// # Examples
///
/// ```no_run
/// # async fn check(redis: &conformance::redis::RedisFixture) {
/// conformance::redis::a_release_that_cannot_publish_says_so_and_waiters_still_see_it(redis).await;
/// # }
/// ```
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
    let holder = Lock::new(quiet.clone(), "quiet", Duration::from_secs(30)).unwrap();
    let guard = holder.lock().await.unwrap();
    let waiter = Lock::new(waiter_backend, "quiet", Duration::from_secs(30))
        .unwrap()
        .with_recheck(Duration::from_millis(300));
    let waiting = tokio::spawn(async move {
        let guard = waiter.lock_timeout(Duration::from_secs(10)).await;
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
