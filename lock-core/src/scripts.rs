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

use std::sync::OnceLock;
use std::time::Duration;

use crate::backend::{Acquire, FencedAcquire, ForceRelease, Release, Status};

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

/// The restart delay to pass to [`ACQUIRE`] and [`ACQUIRE_FENCED`], in milliseconds: the
/// configured one, or by default the lock's own timeout (the longest a holder from before a
/// restart can go on believing it holds the lock, if every process uses the same timeout).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use lock_core::Ttl;
/// use lock_core::scripts::restart_delay_ms;
///
/// let ttl = Ttl::from_secs(30)?;
/// assert_eq!(restart_delay_ms(None, ttl), 30_000);
/// assert_eq!(restart_delay_ms(Some(Duration::ZERO), ttl), 0);
/// # Ok::<(), lock_core::Error>(())
/// ```
pub fn restart_delay_ms(configured: Option<Duration>, ttl: crate::Ttl) -> u64 {
    configured.map_or(ttl.as_millis(), |d| {
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
    })
}

/// Reads [`ACQUIRE`]'s answer: `{1}` or `{0, ms}` with `ms >= -1`; `None` for anything else.
///
/// # Examples
///
/// ```
/// use lock_core::Acquire;
/// use lock_core::scripts::acquire_reply;
///
/// assert_eq!(acquire_reply(&[1]), Some(Acquire::Acquired));
/// assert_eq!(acquire_reply(&[0, -1]), Some(Acquire::Held { remaining: None }));
/// assert_eq!(acquire_reply(&[2]), None);
/// ```
pub fn acquire_reply(reply: &[i64]) -> Option<Acquire> {
    match *reply {
        [1] => Some(Acquire::Acquired),
        [0, pttl] if pttl >= -1 => Some(Acquire::Held {
            remaining: remaining(pttl),
        }),
        _ => None,
    }
}

/// Reads [`RENEW`]'s answer: whether the lock was renewed; `None` for anything but 1 or 0.
pub fn renew_reply(reply: i64) -> Option<bool> {
    match reply {
        1 => Some(true),
        0 => Some(false),
        _ => None,
    }
}

/// Reads [`RELEASE`]'s answer; `None` for anything but 1, 2, 0 or -1.
///
/// # Examples
///
/// ```
/// use lock_core::Release;
/// use lock_core::scripts::release_reply;
///
/// assert_eq!(release_reply(2), Some(Release::ReleasedWithoutNotice));
/// assert_eq!(release_reply(-1), Some(Release::Missing));
/// ```
pub fn release_reply(reply: i64) -> Option<Release> {
    match reply {
        1 => Some(Release::Released),
        2 => Some(Release::ReleasedWithoutNotice),
        0 => Some(Release::NotOwner),
        -1 => Some(Release::Missing),
        _ => None,
    }
}

/// Reads [`FORCE_RELEASE`]'s answer; `None` for anything but 1, 2 or 0.
pub fn force_release_reply(reply: i64) -> Option<ForceRelease> {
    match reply {
        1 => Some(ForceRelease::Released),
        2 => Some(ForceRelease::ReleasedWithoutNotice),
        0 => Some(ForceRelease::Missing),
        _ => None,
    }
}

/// Reads [`STATUS`]'s answer (a `PTTL`); `None` below -2.
pub fn status_reply(pttl: i64) -> Option<Status> {
    match pttl {
        -2 => Some(Status::open()),
        pttl if pttl >= -1 => Some(Status::locked(remaining(pttl))),
        _ => None,
    }
}

/// Redis's `PTTL` answer as a remaining time: `None` for a key without expiry (-1).
fn remaining(pttl: i64) -> Option<Duration> {
    u64::try_from(pttl).ok().map(Duration::from_millis)
}

/// Reads [`ACQUIRE_FENCED`]'s answer, as integers: `{1, fence}` with a fence of at least 1, or
/// `{0, ms}` as [`acquire_reply`]; `None` for anything else, which a backend reports as an
/// unexpected reply.
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
            remaining: remaining(pttl),
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

/// The key holding the start time of the server (for the delayed restart rule, see the
/// [module docs](self)) that the scripts read for the lock at `key`: one per hash slot, in
/// `key`'s slot, under the same `prefix` as the lock's key (`key` includes it), so that at most
/// 16384 such keys exist and an ACL pattern on the prefix covers them.
///
/// # Examples
///
/// ```
/// use lock_core::scripts::{boot_key, hash_slot};
///
/// let key = "app:jobs";
/// let boot = boot_key("app:", key);
/// assert!(boot.starts_with("app:process-lock:boot:{"));
/// assert_eq!(hash_slot(&boot), hash_slot(key));
/// ```
pub fn boot_key(prefix: &str, key: &str) -> String {
    let slot = hash_slot(key);
    let table = SLOT_TAGS.get_or_init(slot_tags);
    let candidate = format!(
        "{prefix}process-lock:boot:{{pl-{}}}",
        table[usize::from(slot)]
    );
    if hash_slot(&candidate) == slot {
        return candidate;
    }
    // A prefix with braces of its own decides the slot (or spoils the tag): search.
    (0u32..)
        .map(|n| format!("{prefix}process-lock:boot:{{pl-{n}}}"))
        .take(1 << 20)
        .find(|candidate| hash_slot(candidate) == slot)
        .unwrap_or_else(|| format!("{prefix}process-lock:boot"))
}

/// For each hash slot, the smallest `n` such that the tag `pl-n` hashes to it.
static SLOT_TAGS: OnceLock<Vec<u32>> = OnceLock::new();

fn slot_tags() -> Vec<u32> {
    let mut table = vec![u32::MAX; 16384];
    let mut missing = table.len();
    let mut n = 0u32;
    while missing > 0 {
        let slot = usize::from(crc16(format!("pl-{n}").as_bytes()) % 16384);
        if table[slot] == u32::MAX {
            table[slot] = n;
            missing -= 1;
        }
        n += 1;
    }
    table
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
    fn the_boot_key_shares_the_lock_keys_slot() {
        for (prefix, key) in [
            ("", "jobs"),
            ("", "a}b"),
            ("", "{t}x"),
            ("app:", "app:jobs"),
            ("{app}:", "{app}:jobs"),
            ("a{", "a{jobs}"),
            ("", ""),
        ] {
            let boot = boot_key(prefix, key);
            assert!(boot.starts_with(prefix), "{boot}");
            assert_ne!(boot, key);
            assert_eq!(hash_slot(&boot), hash_slot(key), "{key:?} -> {boot:?}");
        }
        // One per slot: names in the same slot share it.
        assert_eq!(boot_key("", "{x}a"), boot_key("", "{x}b"));
    }

    #[test]
    fn replies_are_read_strictly() {
        assert_eq!(
            acquire_reply(&[0, 1500]).unwrap(),
            Acquire::Held {
                remaining: Some(Duration::from_millis(1500))
            }
        );
        for wrong in [&[][..], &[1, 1], &[0, -2], &[2]] {
            assert_eq!(acquire_reply(wrong), None, "{wrong:?}");
        }
        assert_eq!(renew_reply(2), None);
        assert_eq!(release_reply(3), None);
        assert_eq!(force_release_reply(-1), None);
        assert_eq!(status_reply(-3), None);
        assert_eq!(status_reply(-1), Some(Status::locked(None)));
    }

    #[test]
    fn fence_keys_of_different_locks_differ() {
        let keys = ["a}b", "a}c", "b}a", "x", "{y}", "{x}:fence"];
        let fences: std::collections::HashSet<_> = keys.iter().map(|k| fence_key(k)).collect();
        assert_eq!(fences.len(), keys.len());
    }
}
