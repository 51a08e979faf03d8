//! The Redis wire protocol of process-lock, as Lua: the scripts every Redis backend runs, so
//! that backends on different clients (and programs in other languages) share one behaviour.
//!
//! Keys and values are those of `process-lock-node`: the key is the lock name (plus an optional
//! prefix), the value the owner's token as plain text, the expiry a `PX` in milliseconds.
//!
//! Additions, invisible to `process-lock-node`:
//! - every release (owned or forced) `PUBLISH`es on the lock's [`release_channel`] (on a Redis
//!   Cluster, `SPUBLISH`es on its [`shard_release_channel`], in the key's slot), so that
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
//!   before any write;
//! - the *waiter queue*: waiters queue in two sorted sets in the lock key's slot, the
//!   [`queue_key`] (members by ticket: arrival order) and the [`lease_key`] (members by the
//!   server time their place lapses). [`QUEUE`] joins, keeps a place, takes a free lock with no
//!   one ahead, and confirms a lock handed over; [`LEAVE`] leaves. A lock that frees up with
//!   live waiters queued ([`RELEASE`], [`FORCE_RELEASE`], or an expiry seen by [`QUEUE`],
//!   [`ACQUIRE`] or [`ACQUIRE_FENCED`]) is handed to the first of them in the same script: the
//!   key is set to its token for its claim time, the fencing counter moves on, and its process
//!   is told on its [`grant_channel_prefix`] channel with `g <token> <fence>`. A try-once never
//!   takes a free lock while live waiters queue. No client clock is ever compared: leases and
//!   tickets are the server's `TIME`.
//!
//! Storage per lock name: the lock's key while held; the fence key for the timeout plus
//! [`FENCE_RETENTION`] after the last fenced acquisition; the two queue keys while waiters
//! queue (they expire twice a lease after the last waiter's step); and one boot key per hash
//! slot in use (at most 16384 in all, a few bytes each, never expiring).
//!
//! Each script's documentation gives its keys and arguments in order; [`calls`](super::calls)
//! builds them, and [`reply`](super::reply) reads the answers. [`Script`] names each one with
//! the SHA-1 `EVALSHA` runs it by.

use std::sync::LazyLock;
use std::time::Duration;

#[cfg(doc)]
use super::keys::{
    boot_key, fence_key, grant_channel_prefix, lease_key, queue_key, release_channel,
    shard_release_channel,
};

/// How long a fencing counter is kept after the timeout of the lock it fenced: past that, the
/// next token is drawn from the server's clock alone (see the [module docs](self)). A server
/// clock stepped back by more than this between two acquisitions of a name could repeat a
/// token.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use lock_core::redis::scripts::FENCE_RETENTION;
///
/// assert_eq!(FENCE_RETENTION, Duration::from_secs(600));
/// ```
pub const FENCE_RETENTION: Duration = Duration::from_secs(600);

/// The Lua functions the acquiring scripts share, after the [queue functions](self) (they use
/// `clock`, `fast_read` and `next_fence`):
/// - `restart_wait`: how many milliseconds remain before a free lock may be granted on this
///   server under the delayed restart rule (0 or less: now), given the server's time `now` in
///   ms (`nil`: read it when needed) and the value of the [`boot_key`], `KEYS[3]` (`nil` when
///   missing: it is written then);
/// - `take_free`: the fenced scripts' fast path, five commands for a free lock with no one
///   queued (`MGET`, `EXISTS`, `TIME`, two `SET`s).
macro_rules! restart_wait {
    () => {
        r"
local function restart_wait(delay, now, boot)
  delay = tonumber(delay)
  if delay <= 0 then
    return 0
  end
  now = now or clock()
  boot = tonumber(boot)
  if not boot then
    local info = redis.pcall('INFO', 'server')
    local up = nil
    if type(info) == 'string' then
      up = tonumber(string.match(info, 'uptime_in_seconds:(%d+)'))
    end
    -- Redis counts whole seconds from its start, rounded up: one less is never too early.
    boot = now - math.max((up or 0) - 1, 0) * 1000
    redis.call('SET', KEYS[3], string.format('%.0f', boot))
  end
  return boot + delay - now
end
-- The fast path of the fenced acquiring scripts: with the lock free, no one queued and the
-- restart delay over, takes the lock for token and returns its fence. Otherwise returns nil
-- (the script goes the slow way), and the restart wait in ms if that is what stopped it.
local function take_free(token, ttl, delay, retention)
  local v, free_now = fast_read()
  if not free_now or (v[2] and not tonumber(v[2])) then
    return nil
  end
  local now_ms, now_us = clock()
  local wait = restart_wait(delay, now_ms, v[3])
  if wait > 0 then
    return nil, wait
  end
  local fence = next_fence(tonumber(v[2]) or 0, now_us, ttl, retention)
  redis.call('SET', KEYS[1], token, 'PX', ttl)
  return fence
end
"
    };
}

/// The Lua functions of the waiter queue, which every script but [`RENEW`], [`STATUS`] and
/// [`IS_HELD_BY`] shares. Their keys are always `KEYS[1]` the lock key, `KEYS[2]` its
/// [`fence_key`], `KEYS[3]` its [`boot_key`], `KEYS[4]` its [`queue_key`] (members by ticket),
/// `KEYS[5]` its [`lease_key`] (members by lease deadline, server ms).
///
/// A member is `"<token> <ttl ms> <claim ms> <backend id>"`: what a release needs to hand the
/// lock to it and to tell its process, on the channel `grant prefix .. backend id`.
macro_rules! queue_lua {
    () => {
        r"
local function wrong_type(key, kind)
  local t = redis.call('TYPE', key)['ok']
  return t ~= 'none' and t ~= kind
end
-- 'none' without waiters (the fast path: one EXISTS), 'some' with, or 'wrong' if a queue key
-- holds another type.
local function queue_state()
  if redis.call('EXISTS', KEYS[4], KEYS[5]) == 0 then
    return 'none'
  end
  if wrong_type(KEYS[4], 'zset') or wrong_type(KEYS[5], 'zset') then
    return 'wrong'
  end
  return 'some'
end
local WRONGTYPE = 'WRONGTYPE Operation against a key holding the wrong kind of value'
-- The fast path of the fenced acquiring scripts: the lock key, its fencing counter and the server's
-- start (KEYS[1..3]) in one MGET. Returns them, and whether the lock is free with no one
-- queued and every key MGET found missing really is missing (MGET answers nil for a key of
-- another type too: those take the slow path, which fails with WRONGTYPE).
local function fast_read()
  local v = redis.call('MGET', KEYS[1], KEYS[2], KEYS[3])
  if v[1] then
    return v, false
  end
  local found = (v[2] and 1 or 0) + (v[3] and 1 or 0)
  return v, redis.call('EXISTS', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]) == found
end
local function int(x)
  return string.format('%.0f', x)
end
local function clock()
  local t = redis.call('TIME')
  local us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  return math.floor(us / 1000), us
end
-- The last fencing token, 0 without a counter, nil for a counter that is not a number.
local function read_fence()
  local last = redis.call('GET', KEYS[2])
  if not last then
    return 0
  end
  return tonumber(last)
end
-- The last fencing token (0 without a counter), or nil and an error reply for a counter that
-- is not a number.
local function fence_or_error()
  local last = read_fence()
  if not last then
    return nil, redis.error_reply('ERR process-lock: the fencing counter ' .. KEYS[2] .. ' is not a number')
  end
  return last
end
local function next_fence(last, now_us, ttl, retention)
  local fence = math.max(last + 1, now_us)
  redis.call('SET', KEYS[2], int(fence), 'PX', int(tonumber(ttl) + tonumber(retention)))
  return fence
end
-- PUBLISH on one server, SPUBLISH on a Redis Cluster: the last of the common arguments.
local PUB = ARGV[#ARGV] == 'SPUBLISH' and 'SPUBLISH' or 'PUBLISH'
local function tell(channel, message)
  -- The whole command, message included: Redis 8 checks its number of arguments.
  if redis.acl_check_cmd and not redis.acl_check_cmd(PUB, channel, message) then
    return false
  end
  redis.call(PUB, channel, message)
  return true
end
local function announce(channel)
  return tell(channel, '')
end
-- Drops at most cap waiters whose lease ran out.
local function evict(now_ms, cap)
  local gone = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', '(' .. int(now_ms), 'LIMIT', 0, cap)
  for _, m in ipairs(gone) do
    redis.call('ZREM', KEYS[4], m)
    redis.call('ZREM', KEYS[5], m)
  end
end
-- Queues member m (keeping its ticket if queued) with a lease of lease ms; returns its rank.
local function enqueue(m, now_ms, now_us, lease)
  if not redis.call('ZSCORE', KEYS[4], m) then
    local ticket = now_us
    local tail = redis.call('ZRANGE', KEYS[4], -1, -1, 'WITHSCORES')
    if tail[2] then
      ticket = math.max(ticket, tonumber(tail[2]) + 1)
    end
    redis.call('ZADD', KEYS[4], int(ticket), m)
  end
  redis.call('ZADD', KEYS[5], int(now_ms + lease), m)
  for _, key in ipairs({KEYS[4], KEYS[5]}) do
    if redis.call('PTTL', key) < 2 * lease then
      redis.call('PEXPIRE', key, int(2 * lease))
    end
  end
  return redis.call('ZRANK', KEYS[4], m)
end
-- With the lock free: grants it to the first queued waiter whose lease is alive, for its claim
-- time, with the next fence, and tells its process (unless it is me, the caller). Looks at no
-- more than cap heads. Returns the grantee's token, its fence and whether it was told, or nil.
local function hand_on(last, now_ms, now_us, cap, retention, prefix, me)
  for _ = 1, cap do
    local head = redis.call('ZRANGE', KEYS[4], 0, 0)[1]
    if not head then
      redis.call('DEL', KEYS[5])
      return nil
    end
    local lease = tonumber(redis.call('ZSCORE', KEYS[5], head))
    redis.call('ZREM', KEYS[4], head)
    redis.call('ZREM', KEYS[5], head)
    local tok, ttl, claim, id = string.match(head, '^(%x+) (%d+) (%d+) (%x+)$')
    if tok and lease and lease >= now_ms then
      local fence = next_fence(last, now_us, ttl, retention)
      redis.call('SET', KEYS[1], tok, 'PX', int(math.min(tonumber(ttl), tonumber(claim))))
      local told = true
      if head ~= me then
        told = tell(prefix .. id, 'g ' .. tok .. ' ' .. int(fence))
      end
      return tok, fence, told
    end
  end
  return nil
end
-- Frees the lock and hands it on to the queue's first live waiter; with no one to hand it to,
-- announces the release on channel. Returns 1, or 2 when no one could be told.
local function free(q, channel, retention, cap, prefix)
  local last = q == 'some' and read_fence()
  redis.call('DEL', KEYS[1])
  if last then
    local now_ms, now_us = clock()
    evict(now_ms, cap)
    local tok, _, told = hand_on(last, now_ms, now_us, cap, retention, prefix, nil)
    if tok then
      if told then
        return 1
      end
      return 2
    end
  end
  if announce(channel) then
    return 1
  end
  return 2
end
"
    };
}

/// The common arguments of the scripts that may hand the lock on, after their own: how long
/// to keep the fencing counter past the ttl ([`FENCE_RETENTION`], ms), how many queue entries
/// one call may drop ([`EVICT_CAP`]), the prefix of the grant channels
/// ([`grant_channel_prefix`]), and the command releases and hand-offs are published with:
/// `PUBLISH` on one server, `SPUBLISH` on a Redis Cluster, where every channel of a lock is in
/// its key's hash slot (see [`KeySpace`](super::keys::KeySpace)).
///
/// # Examples
///
/// ```
/// use lock_core::redis::scripts::EVICT_CAP;
///
/// assert_eq!(EVICT_CAP, 16);
/// ```
pub const EVICT_CAP: u32 = 16;

/// Acquire, trying once. `KEYS` as the [queue functions](self) (lock, fence, boot, queue,
/// leases); `ARGV[1]` token, `ARGV[2]` ttl in milliseconds, `ARGV[3]` restart delay in
/// milliseconds (0: none), then the [common arguments](EVICT_CAP).
///
/// Returns `{1}` when the token holds the lock afterwards (taken, or already held and its
/// expiry reset), `{0, ms}` when another token holds it (`ms` its `PTTL`, -1 for a key without
/// expiry) or when the lock is free but the server started less than the restart delay ago
/// (`ms` until it may be granted). **No barging:** a free lock with live waiters queued goes
/// to the first of them, and the caller gets `{0, ms}`. A key of another type fails with
/// `WRONGTYPE`, unchanged.
///
/// # Examples
///
/// ```
/// use lock_core::redis::scripts::{ACQUIRE, Script};
///
/// assert_eq!(Script::Acquire.lua(), ACQUIRE);
/// ```
pub const ACQUIRE: &str = concat!(
    queue_lua!(),
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
local q = queue_state()
if q == 'wrong' then
  return redis.error_reply(WRONGTYPE)
end
local wait = restart_wait(ARGV[3], nil, redis.call('GET', KEYS[3]))
if wait > 0 then
  return {0, wait}
end
if q == 'some' then
  local last = read_fence()
  if last then
    local now_ms, now_us = clock()
    evict(now_ms, tonumber(ARGV[5]))
    if hand_on(last, now_ms, now_us, tonumber(ARGV[5]), ARGV[4], ARGV[6], nil) then
      return {0, redis.call('PTTL', KEYS[1])}
    end
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1}
"
);

/// Renew. `KEYS[1]` lock key, `ARGV[1]` token, `ARGV[2]` ttl in milliseconds.
///
/// Returns 1 renewed, 0 not the owner (free, expired or held by another token). A key of
/// another type fails with `WRONGTYPE`. It is also how a waiter the lock was handed to
/// confirms it: a hand-off sets only the waiter's claim time.
///
/// # Examples
///
/// ```
/// use lock_core::redis::scripts::{RENEW, Script};
///
/// assert_eq!(Script::Renew.lua(), RENEW);
/// assert!(RENEW.contains("PEXPIRE"));
/// ```
pub const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Release. `KEYS` as the [queue functions](self); `ARGV[1]` token, `ARGV[2]` the lock's
/// [`release_channel`], then the [common arguments](EVICT_CAP).
///
/// Returns 1 released (and handed to the first live queued waiter, who was told, or announced
/// on the release channel when no one queues), 2 released but no one could be told (the user
/// may not publish there), 0 not the owner (left alone), -1 did not exist. A key of another
/// type fails with `WRONGTYPE`, unchanged.
///
/// # Examples
///
/// ```
/// use lock_core::redis::scripts::{RELEASE, Script};
///
/// assert_eq!(Script::Release.lua(), RELEASE);
/// ```
pub const RELEASE: &str = concat!(
    queue_lua!(),
    r"
local holder = redis.call('GET', KEYS[1])
if not holder then
  return -1
end
if holder ~= ARGV[1] then
  return 0
end
local q = queue_state()
if q == 'wrong' then
  return redis.error_reply(WRONGTYPE)
end
return free(q, ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5])
"
);

/// Force release. `KEYS` as the [queue functions](self); `ARGV[1]` the lock's
/// [`release_channel`], then the [common arguments](EVICT_CAP).
///
/// Returns 1 released (handed on or announced), 2 released but no one could be told, 0 did
/// not exist. A key of another type fails with `WRONGTYPE` and is left alone.
///
/// # Examples
///
/// ```
/// use lock_core::redis::scripts::{FORCE_RELEASE, Script};
///
/// assert_eq!(Script::ForceRelease.lua(), FORCE_RELEASE);
/// ```
pub const FORCE_RELEASE: &str = concat!(
    queue_lua!(),
    r"
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' then
  return 0
end
local q = queue_state()
if kind ~= 'string' or q == 'wrong' then
  return redis.error_reply(WRONGTYPE)
end
return free(q, ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4])
"
);
/// Status. `KEYS[1]` lock key.
///
/// Returns the key's `PTTL`: -2 open, -1 locked with no expiry, otherwise locked with that many
/// milliseconds left. A key of another type fails with `WRONGTYPE`.
///
/// # Examples
///
/// ```
/// use lock_core::redis::scripts::{STATUS, Script};
///
/// assert_eq!(Script::Status.lua(), STATUS);
/// assert!(STATUS.contains("PTTL"));
/// ```
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
///
/// # Examples
///
/// ```
/// use lock_core::redis::scripts::{IS_HELD_BY, Script};
///
/// assert_eq!(Script::IsHeldBy.lua(), IS_HELD_BY);
/// ```
pub const IS_HELD_BY: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return 1
end
return 0
";

/// Raise the fencing counter. `KEYS` as the [queue functions](self) (only the lock key and its
/// [`fence_key`] are used); `ARGV[1]` token, `ARGV[2]` the floor, `ARGV[3]` how long to keep
/// the counter past the lock's expiry ([`FENCE_RETENTION`], ms).
///
/// Returns 1 when the token holds the lock, after setting the counter to the floor if it was
/// missing or below it (kept for the longer of its own time left and the lock's plus the
/// retention); 0 otherwise, changing nothing. A key of another type fails with `WRONGTYPE`,
/// a counter that is not a number with an error, both before any write.
///
/// # Examples
///
/// ```
/// use lock_core::redis::scripts::{RAISE_FENCE, Script};
///
/// assert_eq!(Script::RaiseFence.lua(), RAISE_FENCE);
/// ```
pub const RAISE_FENCE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local last = redis.call('GET', KEYS[2])
if last and not tonumber(last) then
  return redis.error_reply('ERR process-lock: the fencing counter ' .. KEYS[2] .. ' is not a number')
end
if not last or tonumber(last) < tonumber(ARGV[2]) then
  local keep = math.max(redis.call('PTTL', KEYS[1]), 0) + tonumber(ARGV[3])
  keep = math.max(keep, redis.call('PTTL', KEYS[2]))
  redis.call('SET', KEYS[2], ARGV[2], 'PX', string.format('%.0f', keep))
end
return 1
";

/// Acquire with a fencing token, trying once. `KEYS` as the [queue functions](self); `ARGV[1]`
/// token, `ARGV[2]` ttl in milliseconds, `ARGV[3]` restart delay in milliseconds, then the
/// [common arguments](EVICT_CAP).
///
/// Returns `{1, fence}` when the token holds the lock afterwards (as [`ACQUIRE`]), `fence`
/// being the larger of the last token plus 1 and the server's clock in microseconds; `{0, ms}`
/// as [`ACQUIRE`], which includes not barging ahead of queued waiters. Every read that can
/// fail (a key of another type, a counter that is not a number) comes before any write, so a
/// failed script changes nothing.
///
/// # Examples
///
/// ```
/// use lock_core::redis::scripts::{ACQUIRE_FENCED, Script};
///
/// assert_eq!(Script::AcquireFenced.lua(), ACQUIRE_FENCED);
/// ```
pub const ACQUIRE_FENCED: &str = concat!(
    queue_lua!(),
    restart_wait!(),
    r"
local fence, wait = take_free(ARGV[1], ARGV[2], ARGV[3], ARGV[4])
if fence then
  return {1, fence}
elseif wait then
  return {0, wait}
end
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  return {0, redis.call('PTTL', KEYS[1])}
end
local q = queue_state()
if q == 'wrong' then
  return redis.error_reply(WRONGTYPE)
end
local last, bad = fence_or_error()
if bad then
  return bad
end
local now_ms, now_us = clock()
if not holder then
  local wait = restart_wait(ARGV[3], now_ms, redis.call('GET', KEYS[3]))
  if wait > 0 then
    return {0, wait}
  end
  if q == 'some' then
    evict(now_ms, tonumber(ARGV[5]))
    if hand_on(last, now_ms, now_us, tonumber(ARGV[5]), ARGV[4], ARGV[6], nil) then
      return {0, redis.call('PTTL', KEYS[1])}
    end
  end
end
local fence = next_fence(last, now_us, ARGV[2], ARGV[4])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1, fence}
"
);

/// One step of a queued waiter: enqueue, heartbeat, promote and "do I hold it?" in one.
/// `KEYS` as the [queue functions](self); `ARGV[1]` the waiter's member, `ARGV[2]` its token,
/// `ARGV[3]` ttl in milliseconds, `ARGV[4]` restart delay in milliseconds, `ARGV[5]` the
/// waiter's lease in milliseconds, then the [common arguments](EVICT_CAP).
///
/// First drops at most [`EVICT_CAP`] waiters whose lease ran out. Then:
/// - the lock was handed to this token (its message may be late or lost): confirms it for the
///   full ttl and returns `{1, fence}`, the fence of that hand-off;
/// - the lock is held by another, or the restart delay runs: queues the member (a member
///   already queued keeps its ticket and renews its lease) and returns `{0, ms, rank}`, `ms`
///   the holder's `PTTL` (or the restart wait) and `rank` the member's place, 0 first;
/// - the lock is free and no live waiter is ahead: takes it for the full ttl, `{1, fence}`;
/// - the lock is free with live waiters ahead: hands it to the first of them, queues the
///   member, and returns `{0, ms, rank}` (or `{1, fence}` if it was the member's turn after all).
///
/// A ticket is the larger of the tail's plus 1 and the server's clock in microseconds, so
/// tickets only grow. Leases are server time: no client clock is ever compared.
///
/// # Examples
///
/// ```
/// use lock_core::redis::scripts::{QUEUE, Script};
///
/// assert_eq!(Script::Queue.lua(), QUEUE);
/// ```
pub const QUEUE: &str = concat!(
    queue_lua!(),
    restart_wait!(),
    r"
local fence = take_free(ARGV[2], ARGV[3], ARGV[4], ARGV[6])
if fence then
  return {1, fence}
end
local holder = redis.call('GET', KEYS[1])
local q = queue_state()
if q == 'wrong' then
  return redis.error_reply(WRONGTYPE)
end
local last, bad = fence_or_error()
if bad then
  return bad
end
local me, token, ttl = ARGV[1], ARGV[2], ARGV[3]
local lease, retention, cap, prefix = tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7]), ARGV[8]
local now_ms, now_us = clock()
if q == 'some' then
  evict(now_ms, cap)
end
if holder == token then
  if q == 'some' then
    redis.call('ZREM', KEYS[4], me)
    redis.call('ZREM', KEYS[5], me)
  end
  redis.call('PEXPIRE', KEYS[1], ttl)
  if last == 0 then
    -- The counter was deleted since the hand-off: a fresh token, later than the one handed.
    last = next_fence(0, now_us, ttl, retention)
  end
  return {1, last}
end
if holder then
  local rank = enqueue(me, now_ms, now_us, lease)
  return {0, redis.call('PTTL', KEYS[1]), rank}
end
local wait = restart_wait(ARGV[4], now_ms, redis.call('GET', KEYS[3]))
if wait > 0 then
  local rank = enqueue(me, now_ms, now_us, lease)
  return {0, wait, rank}
end
if q == 'some' then
  local head = redis.call('ZRANGE', KEYS[4], 0, 0)[1]
  if head and head ~= me then
    enqueue(me, now_ms, now_us, lease)
    local tok, fence = hand_on(last, now_ms, now_us, cap, retention, prefix, me)
    if tok == token then
      redis.call('PEXPIRE', KEYS[1], ttl)
      return {1, fence}
    end
    local rank = redis.call('ZRANK', KEYS[4], me) or 0
    return {0, math.max(redis.call('PTTL', KEYS[1]), 0), rank}
  end
  redis.call('ZREM', KEYS[4], me)
  redis.call('ZREM', KEYS[5], me)
end
local fence = next_fence(last, now_us, ttl, retention)
redis.call('SET', KEYS[1], token, 'PX', ttl)
return {1, fence}
"
);

/// A waiter leaves the queue. `KEYS` as the [queue functions](self); `ARGV[1]` its member,
/// `ARGV[2]` its token, `ARGV[3]` ttl in milliseconds, `ARGV[4]` `1` to keep a lock handed to
/// it meanwhile (`0`: release it), `ARGV[5]` the lock's [`release_channel`], then the
/// [common arguments](EVICT_CAP).
///
/// Returns `{1}` left the queue, `{0}` was not queued, `{2, fence}` the lock had been handed
/// to it and is kept (confirmed for the full ttl), `{3}` it had been handed to it and is now
/// released and handed on.
///
/// # Examples
///
/// ```
/// use lock_core::redis::scripts::{LEAVE, Script};
///
/// assert_eq!(Script::Leave.lua(), LEAVE);
/// ```
pub const LEAVE: &str = concat!(
    queue_lua!(),
    r"
local holder = redis.call('GET', KEYS[1])
local q = queue_state()
if q == 'wrong' then
  return redis.error_reply(WRONGTYPE)
end
local removed = 0
if q == 'some' then
  removed = redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('ZREM', KEYS[5], ARGV[1])
end
if holder == ARGV[2] then
  if ARGV[4] == '1' then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    local last = read_fence()
    if last == 0 then
      -- As in QUEUE: the counter was deleted since the hand-off.
      local _, now_us = clock()
      last = next_fence(0, now_us, ARGV[3], ARGV[6])
    end
    return {2, last or 0}
  end
  free(queue_state(), ARGV[5], ARGV[6], tonumber(ARGV[7]), ARGV[8])
  return {3}
end
return {removed}
"
);

/// One of the scripts, as a transport runs it: by its SHA-1 (`EVALSHA`), or by its text after
/// the server answered `NOSCRIPT` (a `SCRIPT FLUSH`, a restart, a node that never saw it).
///
/// The SHA-1 is that of the Lua text, as Redis computes it (`SCRIPT LOAD` answers the same), so
/// every client, and every program in another language, runs the same script under the same
/// name.
///
/// # Examples
///
/// ```
/// use lock_core::redis::Script;
///
/// // What `SCRIPT LOAD` answers for the script's text, so any client can call it by name.
/// assert_eq!(Script::Renew.sha1().len(), 40);
/// ```
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
    /// [`QUEUE`].
    Queue,
    /// [`LEAVE`].
    Leave,
    /// [`RAISE_FENCE`].
    RaiseFence,
}

impl Script {
    /// Every script, in declaration order: to load them all on a server ahead of time.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::redis::Script;
    ///
    /// // Load every script on a new server ahead of time: SCRIPT LOAD <lua> for each.
    /// for script in Script::ALL {
    ///     println!("{:?}: {} bytes of Lua", script, script.lua().len());
    /// }
    /// ```
    pub const ALL: [Script; 10] = [
        Script::Acquire,
        Script::AcquireFenced,
        Script::Renew,
        Script::Release,
        Script::ForceRelease,
        Script::Status,
        Script::IsHeldBy,
        Script::Queue,
        Script::Leave,
        Script::RaiseFence,
    ];

    /// The Lua text.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::redis::Script;
    ///
    /// assert!(Script::Status.lua().contains("PTTL"));
    /// ```
    pub fn lua(self) -> &'static str {
        match self {
            Script::Acquire => ACQUIRE,
            Script::AcquireFenced => ACQUIRE_FENCED,
            Script::Renew => RENEW,
            Script::Release => RELEASE,
            Script::ForceRelease => FORCE_RELEASE,
            Script::Status => STATUS,
            Script::IsHeldBy => IS_HELD_BY,
            Script::Queue => QUEUE,
            Script::Leave => LEAVE,
            Script::RaiseFence => RAISE_FENCE,
        }
    }

    /// The SHA-1 of the Lua text, in lowercase hex: the name `EVALSHA` runs it by. Computed
    /// once per process.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::redis::Script;
    ///
    /// assert!(Script::Acquire.sha1().chars().all(|c| c.is_ascii_hexdigit()));
    /// ```
    pub fn sha1(self) -> &'static str {
        static SHA1S: LazyLock<[String; 10]> = LazyLock::new(|| {
            Script::ALL.map(|script| sha1_smol::Sha1::from(script.lua()).digest().to_string())
        });
        // `ALL` lists the variants in declaration order.
        &SHA1S[self as usize]
    }
}
