//! The whole conformance suite against a real Redis, in one call: the backend-agnostic cases on
//! a server (the one at `REDIS_URL` if set, else a testcontainers container, else
//! `redis-server` from `PATH`), and the cases that need a server of their own on one each.

use std::sync::Arc;

use conformance::redis::RedisOptions;
use lock_core::LockBackend;
use lock_redis_rs::RedisRsBackend;

/// The backend on `url`, with the suite's options.
async fn connect(url: String, options: RedisOptions) -> lock_core::Result<Arc<dyn LockBackend>> {
    let builder = RedisRsBackend::builder(&url)
        .connect_timeout(options.connect_timeout)
        .response_timeout(options.response_timeout)
        .reconnect_attempts(options.reconnect_attempts)
        .prefix(options.prefix);
    let builder = match options.restart_delay {
        Some(delay) => builder.restart_delay(delay),
        None => builder,
    };
    let builder = match options.replicas {
        Some(ack) => builder.wait_for_replicas(ack),
        None => builder,
    };
    let backend = builder.connect().await?;
    Ok(Arc::new(backend))
}

conformance::suite!(redis = connect);

/// The same cases (those that need no server of their own) on a Redis Cluster of 3 primaries
/// with a replica each.
#[test]
fn the_suite_on_a_cluster() {
    conformance::redis::cluster_suite(connect);
}

/// The same cases through sentinels (a primary, two replicas, three sentinels), and a Sentinel
/// failover while a lock is held and another backend waits.
#[test]
fn the_suite_through_sentinels() {
    conformance::redis::sentinel_suite(connect);
}

/// Replica acknowledgement on a primary with one replica, which the test pauses.
#[test]
fn replica_acknowledgement() {
    conformance::redis::replica_suite(connect);
}

/// The same cases on a Redlock quorum of 3 independent servers, and the quorum's own faults
/// (nodes down, slow, partitioned, losing their data; fencing across changing majorities).
#[test]
fn the_suite_on_a_quorum_of_three() {
    conformance::redis::quorum_suite(connect, 3);
}

/// As [`the_suite_on_a_quorum_of_three`], on 5 servers.
#[test]
fn the_suite_on_a_quorum_of_five() {
    conformance::redis::quorum_suite(connect, 5);
}
