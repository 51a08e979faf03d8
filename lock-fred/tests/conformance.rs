//! The conformance suite against a real Redis: each case on a server of its own (the one at
//! `REDIS_URL` if set, else a testcontainers container, else `redis-server` from `PATH`).

use std::sync::Arc;

use conformance::Fixture;
use conformance::redis_server::RedisServer;
use lock_fred::FredBackend;

async fn fixture() -> Fixture {
    let server = RedisServer::start().await.unwrap_or_else(|e| panic!("{e}"));
    // A new server: the delayed restart rule (checked by the Redis suite) is turned off.
    let backend = FredBackend::builder(server.url())
        .restart_delay(std::time::Duration::ZERO)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connecting to {}: {e}", server.origin()));
    Fixture::new(Arc::new(backend)).keep_alive(server)
}

conformance::suite!(fixture);
