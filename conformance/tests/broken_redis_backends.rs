//! The Redis cases test themselves: a Redis backend that reads a key without expiry as an
//! open lock must fail the case that checks it, and the same backend without the flaw must pass
//! it.
//!
//! The backend here is the smallest one that speaks the wire protocol: `lock_core::redis::calls`
//! run with `EVAL` over the suite's own [`RawRedis`] connection (no notification, no fencing),
//! so that a flaw can be put in a script. It needs a Redis server (`REDIS_URL`,
//! testcontainers or `redis-server` from `PATH`), as the Redis cases do.
#![cfg(feature = "redis-server")]

use std::sync::Arc;
use std::time::Duration;

use conformance::redis::{RedisOptions, server_fixture};
use conformance::redis_server::{RawRedis, Resp};
use conformance::run_case;
use lock_core::redis::calls::{self, Call};
use lock_core::redis::reply::Reply;
use lock_core::{
    Acquire, Capabilities, Error, ErrorKind, ForceRelease, LockBackend, LockName, Release, Result,
    Status, Token, Ttl, async_trait,
};
use tokio::sync::Mutex;

/// An acquire that reads the key's `PTTL` to decide whether it is held: a key without expiry
/// (`PTTL` -1) counts as free and is overwritten.
const ACQUIRE_READING_NO_EXPIRY_AS_OPEN: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1}
end
local pttl = redis.call('PTTL', KEYS[1])
if pttl > 0 then
  return {0, pttl}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1}
";

/// `lock_core::redis::calls` over one raw connection; with `flawed`, a key without expiry is read
/// as open by `status` and taken by `try_acquire`.
#[derive(Debug)]
struct ScriptBackend {
    redis: Mutex<RawRedis>,
    flawed: bool,
}

impl ScriptBackend {
    /// Runs `call` by `EVAL` of its script's text, or of `lua` instead.
    async fn run<T>(&self, call: Call<T>, lua: Option<&str>) -> Result<T> {
        let script = call.script();
        let count = script.keys.len().to_string();
        let mut command = vec!["EVAL", lua.unwrap_or(script.script.lua()), &count];
        command.extend(script.keys.iter().map(String::as_str));
        command.extend(script.args.iter().map(lock_core::redis::Arg::as_str));
        let resp = self
            .redis
            .lock()
            .await
            .run(&command)
            .await
            .map_err(|e| Error::new(ErrorKind::Backend, e))?;
        call.read(reply(&resp))
    }
}

fn reply(resp: &Resp) -> Reply {
    match resp {
        Resp::Int(n) => Reply::Int(*n),
        Resp::Array(Some(items)) => Reply::Array(items.iter().map(reply).collect()),
        other => Reply::Other(format!("{other:?}")),
    }
}

#[async_trait]
impl LockBackend for ScriptBackend {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            remaining_ttl: true,
            ..Capabilities::default()
        }
    }

    async fn try_acquire(&self, name: &LockName, token: &Token, ttl: Ttl) -> Result<Acquire> {
        let call = calls::acquire("", name, token, ttl, Some(Duration::ZERO));
        let flaw = self.flawed.then_some(ACQUIRE_READING_NO_EXPIRY_AS_OPEN);
        self.run(call, flaw).await
    }

    async fn renew(&self, name: &LockName, token: &Token, ttl: Ttl) -> Result<bool> {
        self.run(calls::renew("", name, token, ttl), None).await
    }

    async fn release(&self, name: &LockName, token: &Token) -> Result<Release> {
        self.run(calls::release("", name, token), None).await
    }

    async fn force_release(&self, name: &LockName) -> Result<ForceRelease> {
        self.run(calls::force_release("", name), None).await
    }

    async fn is_held_by(&self, name: &LockName, token: &Token) -> Result<bool> {
        self.run(calls::is_held_by("", name, token), None).await
    }

    async fn status(&self, name: &LockName) -> Result<Status> {
        let status = self.run(calls::status("", name), None).await?;
        // The flaw: only a key with time left counts as held.
        Ok(match status.remaining {
            None if self.flawed => Status::open(),
            _ => status,
        })
    }
}

async fn connect(url: String, flawed: bool) -> Result<Arc<dyn LockBackend>> {
    let redis = RawRedis::connect(&url)
        .await
        .map_err(|e| Error::new(ErrorKind::Connection, e))?;
    Ok(Arc::new(ScriptBackend {
        redis: Mutex::new(redis),
        flawed,
    }))
}

async fn correct(url: String, _: RedisOptions) -> Result<Arc<dyn LockBackend>> {
    connect(url, false).await
}

async fn flawed(url: String, _: RedisOptions) -> Result<Arc<dyn LockBackend>> {
    connect(url, true).await
}

const CASE: &str = "a_key_without_expiry_is_a_lock_held_by_another";

#[test]
fn the_script_backend_passes_the_case() {
    run_case(|| server_fixture(correct), CASE);
}

#[test]
fn a_key_without_expiry_read_as_open_is_rejected() {
    let outcome = std::panic::catch_unwind(|| run_case(|| server_fixture(flawed), CASE));
    let panic = outcome.expect_err("a backend reading a key without expiry as open passed");
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    assert!(
        message.contains("a key without expiry is locked"),
        "rejected for another reason: {message}"
    );
}
