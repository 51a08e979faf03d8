//! The Redis wire protocol of process-lock, as Lua: the scripts every Redis backend runs, so
//! that backends on different clients (and programs in other languages) share one behaviour.
//!
//! Keys and values are those of `process-lock-node`: the key is the lock name (plus an optional
//! prefix), the value the owner's token as plain text, the expiry a `PX` in milliseconds.
//!
//! Additions, invisible to `process-lock-node`:
//! - every release (owned or forced) `PUBLISH`es on the lock's [`release_channel`], so that
//!   waiters sleep until a release instead of polling; a user the ACL forbids to publish there
//!   still releases, and is told that no one was notified;
//! - [`ACQUIRE_FENCED`] keeps the last fencing token in a second key, the [`fence_key`], in the
//!   same cluster hash slot as the lock's key. A token is the larger of the last one plus 1 and
//!   the server's clock in microseconds (`TIME`), so tokens keep growing even after the counter
//!   is lost (a restart without persistence, a flush) or has expired: the counter is kept only
//!   [`FENCE_RETENTION`] past the lock's timeout, so a name costs no storage once unused;
//! - the *delayed restart* rule: a free lock is not granted on a server that started less than
//!   a restart delay ago (by default the lock's own timeout), since a lock held before a restart
//!   that lost the data may still be in use by a holder that has not yet noticed. The server's
//!   start is read once per hash slot from `INFO server` (`uptime_in_seconds`) and kept in a
//!   [`boot_key`]; a server restarted with its data (RDB, AOF) keeps the old start, and grants
//!   at once;
//! - a key of another type than a string is never touched: every script fails with `WRONGTYPE`
//!   before any write.
//!
//! Storage per lock name: the lock's key while held; the fence key for the timeout plus
//! [`FENCE_RETENTION`] after the last fenced acquisition; and one boot key per hash slot in use
//! (at most 16384 in all, a few bytes each, never expiring).
//!
//! Each script's documentation gives its keys and arguments in order; [`calls`](super::calls)
//! builds them, and [`reply`](super::reply) reads the answers. [`Script`] names each one with
//! the SHA-1 `EVALSHA` runs it by.

use std::sync::LazyLock;
use std::time::Duration;

#[cfg(doc)]
use super::keys::{boot_key, fence_key, release_channel};

/// How long a fencing counter is kept after the timeout of the lock it fenced: past that, the
/// next token is drawn from the server's clock alone (see the [module docs](self)). A server
/// clock stepped back by more than this between two acquisitions of a name could repeat a
/// token.
pub const FENCE_RETENTION: Duration = Duration::from_secs(600);

/// The Lua function the acquiring scripts share: how many milliseconds remain before a free
/// lock may be granted on this server under the delayed restart rule (0 or less: now).
macro_rules! restart_wait {
    () => {
        r"
local function restart_wait(marker, delay)
  delay = tonumber(delay)
  if delay <= 0 then
    return 0
  end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local boot = tonumber(redis.call('GET', marker))
  if not boot then
    local info = redis.pcall('INFO', 'server')
    local up = nil
    if type(info) == 'string' then
      up = tonumber(string.match(info, 'uptime_in_seconds:(%d+)'))
    end
    -- Redis counts whole seconds from its start, rounded up: one less is never too early.
    boot = now - math.max((up or 0) - 1, 0) * 1000
    redis.call('SET', marker, string.format('%.0f', boot))
  end
  return boot + delay - now
end
"
    };
}

/// The Lua function the releasing scripts share: deletes the lock and announces it, returning
/// 1, or 2 when the user may not publish on the channel (Redis 7's `acl_check_cmd`).
macro_rules! free_and_publish {
    () => {
        r"
local function free_and_publish(key, channel)
  redis.call('DEL', key)
  if redis.acl_check_cmd and not redis.acl_check_cmd('PUBLISH', channel) then
    return 2
  end
  redis.call('PUBLISH', channel, '')
  return 1
end
"
    };
}

/// Acquire. `KEYS[1]` lock key, `KEYS[2]` its [`boot_key`]; `ARGV[1]` token, `ARGV[2]` ttl in
/// milliseconds, `ARGV[3]` restart delay in milliseconds (0: none).
///
/// Returns `{1}` when the token holds the lock afterwards (taken, or already held and its
/// expiry reset), `{0, ms}` when another token holds it (`ms` its `PTTL`, -1 for a key without
/// expiry) or when the lock is free but the server started less than the restart delay ago
/// (`ms` until it may be granted). A key of another type fails with `WRONGTYPE`, unchanged.
pub const ACQUIRE: &str = concat!(
    restart_wait!(),
    r"
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1}
end
if holder then
  return {0, redis.call('PTTL', KEYS[1])}
end
local wait = restart_wait(KEYS[2], ARGV[3])
if wait > 0 then
  return {0, wait}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1}
"
);

/// Renew. `KEYS[1]` lock key, `ARGV[1]` token, `ARGV[2]` ttl in milliseconds.
///
/// Returns 1 renewed, 0 not the owner (free, expired or held by another token). A key of
/// another type fails with `WRONGTYPE`.
pub const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Release. `KEYS[1]` lock key; `ARGV[1]` token, `ARGV[2]` the lock's [`release_channel`].
///
/// Returns 1 released (and published), 2 released but not published (the user may not
/// publish there), 0 not the owner (left alone), -1 did not exist. A key of another type fails
/// with `WRONGTYPE`, unchanged.
pub const RELEASE: &str = concat!(
    free_and_publish!(),
    r"
local holder = redis.call('GET', KEYS[1])
if not holder then
  return -1
end
if holder == ARGV[1] then
  return free_and_publish(KEYS[1], ARGV[2])
end
return 0
"
);

/// Force release. `KEYS[1]` lock key, `ARGV[1]` the lock's [`release_channel`].
///
/// Returns 1 released (and published), 2 released but not published, 0 did not exist. A key
/// of another type fails with `WRONGTYPE` and is left alone.
pub const FORCE_RELEASE: &str = concat!(
    free_and_publish!(),
    r"
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' then
  return 0
end
if kind ~= 'string' then
  return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
end
return free_and_publish(KEYS[1], ARGV[1])
"
);

/// Status. `KEYS[1]` lock key.
///
/// Returns the key's `PTTL`: -2 open, -1 locked with no expiry, otherwise locked with that many
/// milliseconds left. A key of another type fails with `WRONGTYPE`.
pub const STATUS: &str = r"
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'none' and kind ~= 'string' then
  return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
end
return redis.call('PTTL', KEYS[1])
";

/// Is held by. `KEYS[1]` lock key, `ARGV[1]` token.
///
/// Returns 1 when the token holds the lock, 0 otherwise; reads only (no expiry is reset). A
/// key of another type fails with `WRONGTYPE`.
pub const IS_HELD_BY: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return 1
end
return 0
";

/// Acquire with a fencing token. `KEYS[1]` lock key, `KEYS[2]` its [`fence_key`], `KEYS[3]`
/// its [`boot_key`]; `ARGV[1]` token, `ARGV[2]` ttl in milliseconds, `ARGV[3]` restart delay in
/// milliseconds, `ARGV[4]` how long to keep the counter past the ttl, in milliseconds
/// ([`FENCE_RETENTION`]).
///
/// Returns `{1, fence}` when the token holds the lock afterwards (as [`ACQUIRE`]), `fence`
/// being the larger of the last token plus 1 and the server's clock in microseconds; `{0, ms}`
/// as [`ACQUIRE`]. Every read that can fail (`GET` of a key of another type, a counter that is
/// not a number) comes before any write, so a failed script changes nothing.
pub const ACQUIRE_FENCED: &str = concat!(
    restart_wait!(),
    r"
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  return {0, redis.call('PTTL', KEYS[1])}
end
local last = redis.call('GET', KEYS[2])
if last then
  last = tonumber(last)
  if not last then
    return redis.error_reply('ERR process-lock: the fencing counter ' .. KEYS[2] .. ' is not a number')
  end
else
  last = 0
end
if not holder then
  local wait = restart_wait(KEYS[3], ARGV[3])
  if wait > 0 then
    return {0, wait}
  end
end
local t = redis.call('TIME')
local fence = math.max(last + 1, tonumber(t[1]) * 1000000 + tonumber(t[2]))
redis.call('SET', KEYS[2], string.format('%.0f', fence), 'PX',
  string.format('%.0f', tonumber(ARGV[2]) + tonumber(ARGV[4])))
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1, fence}
"
);

/// One of the scripts, as a transport runs it: by its SHA-1 (`EVALSHA`), or by its text after
/// the server answered `NOSCRIPT` (a `SCRIPT FLUSH`, a restart, a node that never saw it).
///
/// The SHA-1 is that of the Lua text, as Redis computes it (`SCRIPT LOAD` answers the same), so
/// every client, and every program in another language, runs the same script under the same
/// name.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Script {
    /// [`ACQUIRE`].
    Acquire,
    /// [`ACQUIRE_FENCED`].
    AcquireFenced,
    /// [`RENEW`].
    Renew,
    /// [`RELEASE`].
    Release,
    /// [`FORCE_RELEASE`].
    ForceRelease,
    /// [`STATUS`].
    Status,
    /// [`IS_HELD_BY`].
    IsHeldBy,
}

impl Script {
    /// Every script, in declaration order: to load them all on a server ahead of time.
    pub const ALL: [Script; 7] = [
        Script::Acquire,
        Script::AcquireFenced,
        Script::Renew,
        Script::Release,
        Script::ForceRelease,
        Script::Status,
        Script::IsHeldBy,
    ];

    /// The Lua text.
    pub fn lua(self) -> &'static str {
        match self {
            Script::Acquire => ACQUIRE,
            Script::AcquireFenced => ACQUIRE_FENCED,
            Script::Renew => RENEW,
            Script::Release => RELEASE,
            Script::ForceRelease => FORCE_RELEASE,
            Script::Status => STATUS,
            Script::IsHeldBy => IS_HELD_BY,
        }
    }

    /// The SHA-1 of the Lua text, in lowercase hex: the name `EVALSHA` runs it by. Computed
    /// once per process.
    pub fn sha1(self) -> &'static str {
        static SHA1S: LazyLock<[String; 7]> = LazyLock::new(|| {
            Script::ALL.map(|script| sha1_smol::Sha1::from(script.lua()).digest().to_string())
        });
        // `ALL` lists the variants in declaration order.
        &SHA1S[self as usize]
    }
}
