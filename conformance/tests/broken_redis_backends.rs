//! The Redis cases test themselves: a Redis backend that reads a key without expiry as an
//! open lock must fail the case that checks it, and the same backend without the flaw must pass
//! it.
//!
//! The backend here is the smallest one that speaks the wire protocol: `lock_core::redis::scripts`
//! run with `EVAL` over the suite's own [`RawRedis`] connection (no notification, no fencing),
//! so that a flaw can be put in a script. It needs a Redis server (`REDIS_URL`,
//! testcontainers or `redis-server` from `PATH`), as the Redis cases do.
#![cfg(feature = "redis-server")]

use std::sync::Arc;

use conformance::redis::{RedisOptions, server_fixture};
use conformance::redis_server::{RawRedis, Resp};
use conformance::run_case;
use lock_core::redis::keys::{boot_key, release_channel};
use lock_core::redis::{reply, scripts};
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

/// `lock_core::redis::scripts` over one raw connection; with `flawed`, a key without expiry is read
/// as open by `status` and taken by `try_acquire`.
#[derive(Debug)]
struct ScriptBackend {
    redis: Mutex<RawRedis>,
    flawed: bool,
}

impl ScriptBackend {
    async fn eval(&self, script: &str, keys: &[&str], args: &[&str]) -> Result<Resp> {
        let count = keys.len().to_string();
        let mut command = vec!["EVAL", script, &count];
        command.extend_from_slice(keys);
        command.extend_from_slice(args);
        self.redis
            .lock()
            .await
            .run(&command)
            .await
            .map_err(|e| Error::new(ErrorKind::Backend, e))
    }

    async fn int(&self, script: &str, keys: &[&str], args: &[&str]) -> Result<i64> {
        let reply = self.eval(script, keys, args).await?;
        reply.as_int().ok_or_else(|| unexpected(&reply))
    }
}

fn unexpected(reply: &Resp) -> Error {
    Error::new(ErrorKind::Backend, format!("unexpected reply {reply:?}"))
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
        let key = name.as_str();
        let script = if self.flawed {
            ACQUIRE_READING_NO_EXPIRY_AS_OPEN
        } else {
            scripts::ACQUIRE
        };
        let boot = boot_key("", key);
        let ttl = ttl.as_millis().to_string();
        let reply = self
            .eval(script, &[key, &boot], &[token.as_str(), &ttl, "0"])
            .await?;
        let numbers: Option<Vec<i64>> = match &reply {
            Resp::Array(Some(items)) => items.iter().map(Resp::as_int).collect(),
            _ => None,
        };
        numbers
            .as_deref()
            .and_then(reply::acquire_reply)
            .ok_or_else(|| unexpected(&reply))
    }

    async fn renew(&self, name: &LockName, token: &Token, ttl: Ttl) -> Result<bool> {
        let ttl = ttl.as_millis().to_string();
        let reply = self
            .int(scripts::RENEW, &[name.as_str()], &[token.as_str(), &ttl])
            .await?;
        reply::renew_reply(reply).ok_or_else(|| unexpected(&Resp::Int(reply)))
    }

    async fn release(&self, name: &LockName, token: &Token) -> Result<Release> {
        let channel = release_channel(name.as_str());
        let reply = self
            .int(
                scripts::RELEASE,
                &[name.as_str()],
                &[token.as_str(), &channel],
            )
            .await?;
        reply::release_reply(reply).ok_or_else(|| unexpected(&Resp::Int(reply)))
    }

    async fn force_release(&self, name: &LockName) -> Result<ForceRelease> {
        let channel = release_channel(name.as_str());
        let reply = self
            .int(scripts::FORCE_RELEASE, &[name.as_str()], &[&channel])
            .await?;
        reply::force_release_reply(reply).ok_or_else(|| unexpected(&Resp::Int(reply)))
    }

    async fn is_held_by(&self, name: &LockName, token: &Token) -> Result<bool> {
        let reply = self
            .int(scripts::IS_HELD_BY, &[name.as_str()], &[token.as_str()])
            .await?;
        reply::is_held_by_reply(reply).ok_or_else(|| unexpected(&Resp::Int(reply)))
    }

    async fn status(&self, name: &LockName) -> Result<Status> {
        let pttl = self.int(scripts::STATUS, &[name.as_str()], &[]).await?;
        // The flaw: only a key with time left counts as held.
        let pttl = if self.flawed && pttl == -1 { -2 } else { pttl };
        reply::status_reply(pttl).ok_or_else(|| unexpected(&Resp::Int(pttl)))
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
