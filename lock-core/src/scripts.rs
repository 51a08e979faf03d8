//! The Redis wire protocol of process-lock, as Lua: the scripts every Redis backend runs, so
//! that backends on different clients (and programs in other languages) share one behaviour.
//!
//! Keys and values are those of `process-lock-node`: the key is the lock name (plus an optional
//! prefix), the value the owner's token as plain text, the expiry a `PX` in milliseconds.
//! Force release is a plain `DEL key` and status a plain `PTTL key` (-2: open; -1: locked with no
//! expiry; otherwise locked with that many milliseconds left).

/// Acquire. `KEYS[1]` lock key, `ARGV[1]` token, `ARGV[2]` ttl in milliseconds.
///
/// Returns `{1}` when the token holds the lock afterwards (taken with `SET NX PX`, or already
/// held and its expiry reset), `{0, pttl}` when another token holds it (`pttl` is -1 for a key
/// without expiry). A key of another type fails with `WRONGTYPE` (from `GET`).
pub const ACQUIRE: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1}
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1}
end
return {0, redis.call('PTTL', KEYS[1])}
";

/// Renew. `KEYS[1]` lock key, `ARGV[1]` token, `ARGV[2]` ttl in milliseconds.
///
/// Returns 1 renewed, 0 not the owner (free, expired or held by another token).
pub const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Release. `KEYS[1]` lock key, `ARGV[1]` token.
///
/// Returns 1 released, 0 not the owner (left alone), -1 did not exist.
pub const RELEASE: &str = r"
local holder = redis.call('GET', KEYS[1])
if not holder then
  return -1
end
if holder == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
";
