//! The names a lock uses in Redis: its key, its fencing counter's key, the key of the server's
//! start time for its hash slot, and the channel its releases are announced on; and the Redis
//! Cluster hash slot they all share, so that one script (on one node) can touch them together.

use std::sync::OnceLock;

use crate::name::LockName;

/// The key of the lock `name` under `prefix`: `prefix + name`, as `process-lock-node` names it
/// (with no prefix).
///
/// # Examples
///
/// ```
/// use lock_core::LockName;
/// use lock_core::redis::keys::key;
///
/// assert_eq!(key("app:", &LockName::new("jobs")?), "app:jobs");
/// # Ok::<(), lock_core::Error>(())
/// ```
pub fn key(prefix: &str, name: &LockName) -> String {
    let mut key = String::with_capacity(prefix.len() + name.as_str().len());
    key.push_str(prefix);
    key.push_str(name.as_str());
    key
}

/// The channel the releases of the lock at `key` are published on (a Pub/Sub channel name, not
/// a key: it takes no space in the database).
///
/// # Examples
///
/// ```
/// use lock_core::redis::keys::release_channel;
///
/// assert_eq!(release_channel("jobs"), "process-lock:released:jobs");
/// ```
pub fn release_channel(key: &str) -> String {
    format!("process-lock:released:{key}")
}

/// The channel the releases of the lock at `key` are published on in a Redis Cluster, with
/// sharded Pub/Sub (`SPUBLISH`): in the lock key's hash slot, as a shard channel must be for a
/// script on that slot to publish on it, so that a release reaches only the subscribers of
/// that slot's shard (see [`KeySpace::sharded`]).
///
/// # Examples
///
/// ```
/// use lock_core::redis::keys::{hash_slot, shard_release_channel};
///
/// assert_eq!(shard_release_channel("jobs"), "{jobs}:pl-r");
/// assert_eq!(hash_slot(&shard_release_channel("a}b")), hash_slot("a}b"));
/// ```
pub fn shard_release_channel(key: &str) -> String {
    slot_key(key, "pl-r")
}

/// Where a backend's locks live on the server: the prefix of their keys, and whether releases
/// go out on sharded Pub/Sub (`SPUBLISH`, on a [`shard_release_channel`]) as on a Redis
/// Cluster, or on plain Pub/Sub (`PUBLISH`, on a [`release_channel`]) as on one server.
///
/// Every function of [`calls`](super::calls) takes one: a `&str` is a prefix on one server.
///
/// # Examples
///
/// ```
/// use lock_core::redis::keys::{AsKeySpace, KeySpace};
///
/// let cluster = KeySpace::new("app:").sharded(true);
/// assert_eq!(cluster.prefix(), "app:");
/// assert!(cluster.is_sharded());
/// assert!(!"app:".is_sharded());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct KeySpace {
    prefix: std::sync::Arc<str>,
    sharded: bool,
}

impl KeySpace {
    /// Keys under `prefix`, on one server (plain Pub/Sub).
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::redis::keys::{AsKeySpace, KeySpace};
    ///
    /// assert_eq!(KeySpace::new("app:").prefix(), "app:");
    /// ```
    pub fn new(prefix: &str) -> Self {
        KeySpace {
            prefix: prefix.into(),
            sharded: false,
        }
    }

    /// The same keys, with releases on sharded Pub/Sub when `sharded` (a Redis Cluster).
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::redis::keys::{AsKeySpace, KeySpace};
    ///
    /// assert!(KeySpace::new("").sharded(true).is_sharded());
    /// ```
    #[must_use]
    pub fn sharded(mut self, sharded: bool) -> Self {
        self.sharded = sharded;
        self
    }
}

/// What [`calls`](super::calls) reads of a [`KeySpace`]; a `str` is a prefix on one server.
///
/// # Examples
///
/// ```
/// use lock_core::redis::keys::{AsKeySpace, KeySpace};
///
/// fn describe(space: &(impl AsKeySpace + ?Sized)) -> String {
///     format!("{}{}", space.prefix(), if space.is_sharded() { " (cluster)" } else { "" })
/// }
/// assert_eq!(describe("app:"), "app:");
/// assert_eq!(describe(&KeySpace::new("app:").sharded(true)), "app: (cluster)");
/// ```
pub trait AsKeySpace {
    /// The prefix of every key.
    fn prefix(&self) -> &str;

    /// Whether releases go out on sharded Pub/Sub (a Redis Cluster).
    fn is_sharded(&self) -> bool;
}

impl AsKeySpace for str {
    fn prefix(&self) -> &str {
        self
    }

    fn is_sharded(&self) -> bool {
        false
    }
}

impl AsKeySpace for KeySpace {
    fn prefix(&self) -> &str {
        &self.prefix
    }

    fn is_sharded(&self) -> bool {
        self.sharded
    }
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
/// use lock_core::redis::keys::{fence_key, hash_slot};
///
/// assert_eq!(fence_key("jobs"), "{jobs}:fence");
/// assert_eq!(fence_key("{user1}.jobs"), "{user1}.jobs:fence");
/// assert_eq!(hash_slot(&fence_key("a}b")), hash_slot("a}b"));
/// ```
pub fn fence_key(key: &str) -> String {
    slot_key(key, "fence")
}

/// A name for something of the lock at `key` (a key or a channel) that lives in `key`'s Redis
/// Cluster hash slot: `key` + `:` + `suffix`, with a hash tag that keeps the slot, as
/// [`fence_key`] describes (`fence_key(k)` is `slot_key(k, "fence")`). The waiter queue's keys
/// and channels are named this way.
///
/// # Examples
///
/// ```
/// use lock_core::redis::keys::{hash_slot, slot_key};
///
/// assert_eq!(slot_key("jobs", "pl-q"), "{jobs}:pl-q");
/// assert_eq!(hash_slot(&slot_key("a}b", "pl-q")), hash_slot("a}b"));
/// ```
pub fn slot_key(key: &str, suffix: &str) -> String {
    if hash_tag(key).is_some() {
        format!("{key}:{suffix}")
    } else if !key.is_empty() && !key.contains('}') {
        format!("{{{key}}}:{suffix}")
    } else {
        let slot = hash_slot(key);
        let tag = (0u32..)
            .map(|n| format!("fence-{n}"))
            .find(|tag| hash_slot(tag) == slot)
            .expect("every slot is reached by some short string");
        format!("{{{tag}}}:{key}:{suffix}")
    }
}

/// The key of the lock at `key`'s waiter queue: a sorted set of the waiting members, scored by
/// their ticket (arrival order). See [`scripts`](super::scripts).
///
/// # Examples
///
/// ```
/// use lock_core::redis::keys::{hash_slot, queue_key};
///
/// assert_eq!(hash_slot(&queue_key("jobs")), hash_slot("jobs"));
/// ```
pub fn queue_key(key: &str) -> String {
    slot_key(key, "pl-q")
}

/// The key of the leases of the lock at `key`'s waiters: a sorted set of the same members,
/// scored by the server time (ms) at which each one's lease runs out.
///
/// # Examples
///
/// ```
/// use lock_core::redis::keys::{hash_slot, lease_key};
///
/// assert_eq!(hash_slot(&lease_key("jobs")), hash_slot("jobs"));
/// ```
pub fn lease_key(key: &str) -> String {
    slot_key(key, "pl-l")
}

/// The start of the channels on which the lock at `key` is handed to this process's waiters:
/// the channel of a backend instance is this followed by its id, in `key`'s slot.
///
/// # Examples
///
/// ```
/// use lock_core::redis::keys::{grant_channel_prefix, hash_slot};
///
/// let channel = grant_channel_prefix("jobs") + "ff00";
/// assert_eq!(hash_slot(&channel), hash_slot("jobs"));
/// ```
pub fn grant_channel_prefix(key: &str) -> String {
    slot_key(key, "pl-g:")
}

/// The key holding the start time of the server (for the delayed restart rule, see the
/// [scripts](super::scripts)) that the scripts read for the lock at `key`: one per hash slot, in
/// `key`'s slot, under the same `prefix` as the lock's key (`key` includes it), so that at most
/// 16384 such keys exist and an ACL pattern on the prefix covers them.
///
/// # Examples
///
/// ```
/// use lock_core::redis::keys::{boot_key, hash_slot};
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

/// The number of hash slots of a Redis Cluster.
const SLOTS: usize = 16384;

/// Builds [`SLOT_TAGS`]: the tags `pl-0`, `pl-1`, ... in increasing order until every slot has
/// one (about 170,000 of them), each CRC carried on from its prefix's, so that a tag costs one
/// table step rather than a string and a CRC of its own. It runs once per process, at its first
/// lock: formatting each tag, as a first version did, cost about 120 million instructions
/// there (tens of milliseconds for a command-line run).
fn slot_tags() -> Vec<u32> {
    let mut table = vec![u32::MAX; SLOTS];
    let mut missing = SLOTS;
    let prefix = b"pl-".iter().fold(0, |crc, &byte| crc16_step(crc, byte));
    // Tags by number of digits, then in lexicographic (here: numeric) order: increasing `n`.
    for digits in 1..=9 {
        tags_of_length(&mut table, &mut missing, prefix, 0, digits, true);
        if missing == 0 {
            break;
        }
    }
    table
}

/// Fills the slots of the tags that extend the one whose CRC is `crc` and number `n` with
/// `left` more digits (no leading zero: `first` says whether the next digit is the first),
/// smallest first, until none is `missing`.
fn tags_of_length(
    table: &mut [u32],
    missing: &mut usize,
    crc: u16,
    n: u32,
    left: u32,
    first: bool,
) {
    if *missing == 0 {
        return;
    }
    if left == 0 {
        let slot = usize::from(crc) % SLOTS;
        if table[slot] == u32::MAX {
            table[slot] = n;
            *missing -= 1;
        }
        return;
    }
    let lowest = if first && left > 1 { 1 } else { 0 };
    for digit in lowest..=9u8 {
        let crc = crc16_step(crc, b'0' + digit);
        tags_of_length(
            table,
            missing,
            crc,
            n * 10 + u32::from(digit),
            left - 1,
            false,
        );
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
///
/// # Examples
///
/// ```
/// use lock_core::redis::keys::hash_slot;
///
/// assert_eq!(hash_slot("foo"), 12182); // as CLUSTER KEYSLOT foo
/// assert_eq!(hash_slot("{user1}.a"), hash_slot("{user1}.b"));
/// ```
pub fn hash_slot(key: &str) -> u16 {
    let hashed = hash_tag(key).unwrap_or(key);
    crc16(hashed.as_bytes()) % 16384
}

/// CRC-16/XMODEM, the checksum Redis Cluster slots are computed with.
fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0, |crc, &byte| crc16_step(crc, byte))
}

/// `crc` (CRC-16/XMODEM, as Redis Cluster uses) carried on over `byte`.
fn crc16_step(crc: u16, byte: u8) -> u16 {
    let [high, _] = crc.to_be_bytes();
    (crc << 8) ^ CRC16_TABLE[usize::from(high ^ byte)]
}

/// CRC-16/XMODEM (polynomial 0x1021) of each byte value shifted into the high byte.
const CRC16_TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

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
            for other in [
                queue_key(key),
                lease_key(key),
                grant_channel_prefix(key) + "0123abcd",
                shard_release_channel(key),
            ] {
                assert_ne!(other, key);
                assert_eq!(hash_slot(&other), hash_slot(key), "{key:?} -> {other:?}");
            }
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
    fn every_slot_has_its_smallest_tag() {
        let table = slot_tags();
        assert!(table.iter().all(|&n| n != u32::MAX));
        for (slot, &n) in table.iter().enumerate() {
            assert_eq!(usize::from(hash_slot(&format!("pl-{n}"))), slot);
        }
        // No smaller tag hashes to any slot: every tag up to the largest in the table finds
        // its slot's at or below it.
        let largest = table.iter().copied().max().unwrap_or(0);
        for n in 0..=largest {
            let slot = usize::from(crc16(format!("pl-{n}").as_bytes())) % SLOTS;
            assert!(
                table[slot] <= n,
                "pl-{n} hashes to {slot}, whose tag is pl-{}",
                table[slot]
            );
        }
    }

    #[test]
    fn fence_keys_of_different_locks_differ() {
        let keys = ["a}b", "a}c", "b}a", "x", "{y}", "{x}:fence"];
        let fences: std::collections::HashSet<_> = keys.iter().map(|k| fence_key(k)).collect();
        assert_eq!(fences.len(), keys.len());
    }
}
