//! The Redis wire protocol of process-lock, as Lua: the scripts every Redis backend runs, so
//! that backends on different clients (and programs in other languages) share one behaviour.
//!
//! Keys and values are those of `process-lock-node`: the key is the lock name (plus an optional
//! prefix), the value the owner's token as plain text, the expiry a `PX` in milliseconds.
//! Status is a plain `PTTL key` (-2: open; -1: locked with no expiry; otherwise locked with that
//! many milliseconds left).
//!
//! Two additions, invisible to `process-lock-node`:
//! - every release (owned or forced) `PUBLISH`es on the lock's [`release_channel`], so that
//!   waiters sleep until a release instead of polling;
//! - [`ACQUIRE_FENCED`] counts acquisitions in a second key, the [`fence_key`], in the same
//!   cluster hash slot as the lock's key, and returns the count as the fencing token.

use std::time::Duration;

use crate::backend::FencedAcquire;

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
/// `ARGV[2]` the lock's [`release_channel`].
///
/// Returns 1 released (and published), 0 not the owner (left alone), -1 did not exist.
pub const RELEASE: &str = r"
local holder = redis.call('GET', KEYS[1])
if not holder then
  return -1
end
if holder == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], '')
  return 1
end
return 0
";

/// Force release. `KEYS[1]` lock key, `ARGV[1]` the lock's [`release_channel`].
///
/// Returns 1 released (and published), 0 did not exist.
pub const FORCE_RELEASE: &str = r"
if redis.call('DEL', KEYS[1]) == 1 then
  redis.call('PUBLISH', ARGV[1], '')
  return 1
end
return 0
";

/// Acquire with a fencing token. `KEYS[1]` lock key, `KEYS[2]` its [`fence_key`], `ARGV[1]`
/// token, `ARGV[2]` ttl in milliseconds.
///
/// Returns `{1, fence}` when the token holds the lock afterwards (as [`ACQUIRE`]), `fence` being
/// the counter after an `INCR`; `{0, pttl}` when another token holds it. Both reads that can
/// fail (`GET` of a key of another type, `INCR` of a counter that is not a number) come before
/// any write, so a failed script changes nothing.
pub const ACQUIRE_FENCED: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  local fence = redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {1, fence}
end
return {0, redis.call('PTTL', KEYS[1])}
";

/// Reads [`ACQUIRE_FENCED`]'s answer, as integers: `{1, fence}` with a fence from 1, or
/// `{0, pttl}` with the `PTTL` of a key that exists (-1: no expiry); `None` for anything else,
/// which a backend reports as an unexpected reply.
///
/// # Examples
///
/// ```
/// use lock_core::FencedAcquire;
/// use lock_core::scripts::fenced_reply;
///
/// assert_eq!(fenced_reply(&[1, 7]), Some(FencedAcquire::Acquired { fence: 7 }));
/// assert_eq!(fenced_reply(&[0, -1]), Some(FencedAcquire::Held { remaining: None }));
/// assert_eq!(fenced_reply(&[1, 0]), None);
/// ```
pub fn fenced_reply(reply: &[i64]) -> Option<FencedAcquire> {
    match *reply {
        [1, fence] if fence >= 1 => Some(FencedAcquire::Acquired {
            fence: fence.unsigned_abs(),
        }),
        [0, pttl] if pttl >= -1 => Some(FencedAcquire::Held {
            remaining: u64::try_from(pttl).ok().map(Duration::from_millis),
        }),
        _ => None,
    }
}

/// The channel the releases of the lock at `key` are published on (a Pub/Sub channel name, not
/// a key: it takes no space in the database).
pub fn release_channel(key: &str) -> String {
    format!("process-lock:released:{key}")
}

/// The key of the fencing counter of the lock at `key`: in the same Redis Cluster hash slot,
/// so that one script can touch both.
///
/// - A key with a hash tag (`{...}`, non-empty) keeps it: the counter is `key` + `:fence`.
/// - A key without `}` is wrapped whole in a tag: `{key}:fence`.
/// - Any other key (a `}` but no tag, such as `a}b`) gets the tag of a short string found to
///   have the same slot, and the key after it: `{fence-N}:key:fence`.
///
/// Two names can share a counter (`x` and `{x}` both count in `{x}:fence`): each still sees
/// its fences strictly increase. A lock must not be named like a fence key (ending in
/// `:fence`), since that key holds a number.
///
/// # Examples
///
/// ```
/// use lock_core::scripts::{fence_key, hash_slot};
///
/// assert_eq!(fence_key("jobs"), "{jobs}:fence");
/// assert_eq!(fence_key("{user1}.jobs"), "{user1}.jobs:fence");
/// assert_eq!(hash_slot(&fence_key("a}b")), hash_slot("a}b"));
/// ```
pub fn fence_key(key: &str) -> String {
    if hash_tag(key).is_some() {
        format!("{key}:fence")
    } else if !key.is_empty() && !key.contains('}') {
        format!("{{{key}}}:fence")
    } else {
        let slot = hash_slot(key);
        let tag = (0u32..)
            .map(|n| format!("fence-{n}"))
            .find(|tag| hash_slot(tag) == slot)
            .expect("every slot is reached by some short string");
        format!("{{{tag}}}:{key}:fence")
    }
}

/// The part of `key` Redis Cluster hashes: the content of the first `{...}` if non-empty.
fn hash_tag(key: &str) -> Option<&str> {
    let open = key.find('{')?;
    let rest = &key[open + 1..];
    let close = rest.find('}')?;
    (close > 0).then(|| &rest[..close])
}

/// The Redis Cluster hash slot of `key` (0..16384): CRC16 (XMODEM) of its hash tag, or of the
/// whole key without one.
pub fn hash_slot(key: &str) -> u16 {
    let hashed = hash_tag(key).unwrap_or(key);
    crc16(hashed.as_bytes()) % 16384
}

/// CRC-16/XMODEM, the checksum Redis Cluster slots are computed with.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fenced_replies_are_read_strictly() {
        assert_eq!(
            fenced_reply(&[0, 1500]),
            Some(FencedAcquire::Held {
                remaining: Some(Duration::from_millis(1500))
            })
        );
        for wrong in [
            &[1][..],
            &[1, 0],
            &[1, -3],
            &[0, -2],
            &[0],
            &[],
            &[2, 1],
            &[1, 2, 3],
        ] {
            assert_eq!(fenced_reply(wrong), None, "{wrong:?}");
        }
    }

    #[test]
    fn slots_match_redis() {
        // From the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(hash_slot("foo"), 12182);
        assert_eq!(hash_slot("bar"), 5061);
        assert_eq!(hash_slot("{user1000}.following"), hash_slot("user1000"));
        assert_eq!(hash_slot("foo{}{bar}"), hash_slot("foo{}{bar}"));
        assert_eq!(hash_tag("foo{}{bar}"), None);
        assert_eq!(hash_tag("foo{{bar}}zap"), Some("{bar"));
    }

    #[test]
    fn the_fence_key_shares_the_lock_keys_slot() {
        for key in [
            "jobs",
            "a{b",
            "{t}x",
            "x{t}y{u}",
            "a}b",
            "}",
            "a{}b",
            "{}",
            "pre:{}}{",
            "ünïcødé}",
            "",
        ] {
            let fence = fence_key(key);
            assert_ne!(fence, key);
            assert_eq!(hash_slot(&fence), hash_slot(key), "{key:?} -> {fence:?}");
        }
    }

    #[test]
    fn fence_keys_of_different_locks_differ() {
        let keys = ["a}b", "a}c", "b}a", "x", "{y}", "{x}:fence"];
        let fences: std::collections::HashSet<_> = keys.iter().map(|k| fence_key(k)).collect();
        assert_eq!(fences.len(), keys.len());
    }
}
