//! What each operation sends: the [script](super::scripts), its keys and its arguments in the
//! order the script reads them, and how its [answer](super::reply) is read. Written once here, so
//! that every transport (and anything built on them: a quorum of servers, a cluster) sends the
//! same bytes for the same operation.
//!
//! A [`Call`] is an operation ready to send: its [`ScriptCall`] goes to
//! [`RedisTransport::eval`](super::RedisTransport::eval), and [`Call::read`] turns the answer
//! into the outcome.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::arg::Arg;
use super::config::ReplicaAck;
use super::errors::unexpected;
use super::keys::{
    AsKeySpace, boot_key, fence_key, grant_channel_prefix, key, lease_key, queue_key,
    release_channel, shard_release_channel,
};
use super::reply::{self, Reply};
use super::scripts::{EVICT_CAP, FENCE_RETENTION, Script};
use crate::backend::{Acquire, FencedAcquire, ForceRelease, Release, Status};
use crate::error::Result;
use crate::name::LockName;
use crate::queue::{Leave, QueueStep, Waiter};
use crate::token::Token;
use crate::ttl::Ttl;

#[cfg(doc)]
use super::scripts::{ACQUIRE, ACQUIRE_FENCED};

/// One script to run: what a transport sends, as `EVALSHA sha1 numkeys keys... args...`.
///
/// `Debug` shows the keys but only the number of arguments: one of them may be the owner's
/// token, which lets anyone release the lock.
///
/// # Examples
///
/// ```
/// use lock_core::redis::calls;
/// use lock_core::{LockName, Token, Ttl};
///
/// let (name, token, ttl) = (LockName::new("jobs")?, Token::from_string("0123abcd")?, Ttl::from_secs(30)?);
/// let call = calls::acquire("", &name, &token, ttl, None);
/// let script = call.script();
/// assert_eq!(script.op, "acquire");
/// assert_eq!(script.keys[0], "jobs");
/// assert_eq!(script.args[0], "0123abcd");
/// # Ok::<(), lock_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ScriptCall {
    /// The operation, for messages (`"acquire"`, `"force release"`, ...).
    pub op: &'static str,
    /// The script.
    pub script: Script,
    /// `KEYS`, in the script's order: all in one hash slot. Shared by every call on one
    /// [`LockName`] (derived once per name).
    pub keys: Arc<[String]>,
    /// `ARGV`, in the script's order.
    pub args: Vec<Arg>,
}

impl fmt::Debug for ScriptCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScriptCall")
            .field("op", &self.op)
            .field("script", &self.script)
            .field("keys", &self.keys)
            .field("args", &self.args.len())
            .finish()
    }
}

/// An operation of the protocol: the [`ScriptCall`] to send, and how to read its answer into a
/// `T`. Made by the functions of [this module](self).
///
/// # Examples
///
/// ```
/// use lock_core::redis::calls;
/// use lock_core::{LockName, Token, Ttl};
///
/// let (name, token, ttl) = (LockName::new("jobs")?, Token::from_string("0123abcd")?, Ttl::from_secs(30)?);
/// use lock_core::redis::Reply;
///
/// let call = calls::renew("", &name, &token, ttl);
/// assert_eq!(call.read(Reply::Int(1))?, true);
/// assert!(call.read(Reply::Int(7)).is_err());
/// # Ok::<(), lock_core::Error>(())
/// ```
#[must_use = "a call does nothing until a transport runs it"]
#[derive(Clone)]
pub struct Call<T> {
    script: ScriptCall,
    read: fn(&Reply) -> Option<T>,
}

impl<T> Call<T> {
    fn new(
        op: &'static str,
        script: Script,
        keys: Arc<[String]>,
        args: Vec<Arg>,
        read: fn(&Reply) -> Option<T>,
    ) -> Self {
        let script = ScriptCall {
            op,
            script,
            keys,
            args,
        };
        Call { script, read }
    }

    /// What to send.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::redis::calls;
    /// use lock_core::{LockName, Token, Ttl};
    ///
    /// let (name, token, ttl) = (LockName::new("jobs")?, Token::from_string("0123abcd")?, Ttl::from_secs(30)?);
    /// let call = calls::status("", &name);
    /// assert_eq!(&call.script().keys[..], ["jobs"]);
    /// # Ok::<(), lock_core::Error>(())
    /// ```
    pub fn script(&self) -> &ScriptCall {
        &self.script
    }

    /// The outcome `reply` stands for.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::UnexpectedReply`](crate::ErrorKind::UnexpectedReply) for an answer the
    /// script never gives.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::redis::calls;
    /// use lock_core::{LockName, Token, Ttl};
    ///
    /// let (name, token, ttl) = (LockName::new("jobs")?, Token::from_string("0123abcd")?, Ttl::from_secs(30)?);
    /// use lock_core::Release;
    /// use lock_core::redis::Reply;
    ///
    /// let call = calls::release("", &name, &token);
    /// assert_eq!(call.read(Reply::Int(0))?, Release::NotOwner);
    /// # Ok::<(), lock_core::Error>(())
    /// ```
    pub fn read(&self, reply: Reply) -> Result<T> {
        (self.read)(&reply).ok_or_else(|| unexpected(self.script.op, reply))
    }
}

impl<T> fmt::Debug for Call<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.script.fmt(f)
    }
}

/// The restart delay to pass to [`ACQUIRE`] and [`ACQUIRE_FENCED`], in milliseconds: the
/// configured one, or by default the lock's own timeout (the longest a holder from before a
/// restart can go on believing it holds the lock, if every process uses the same timeout).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use lock_core::Ttl;
/// use lock_core::redis::calls::restart_delay_ms;
///
/// let ttl = Ttl::from_secs(30)?;
/// assert_eq!(restart_delay_ms(None, ttl), 30_000);
/// assert_eq!(restart_delay_ms(Some(Duration::ZERO), ttl), 0);
/// # Ok::<(), lock_core::Error>(())
/// ```
pub fn restart_delay_ms(configured: Option<Duration>, ttl: Ttl) -> u64 {
    configured.map_or(ttl.as_millis(), |d| {
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
    })
}

/// How many names' [`NameKeys`] each thread keeps for key spaces other than the names' first.
const KEPT_SLOTS: usize = 256;

thread_local! {
    /// The [`NameKeys`] this thread derived last for names used in a key space other than
    /// their first (whose keys the name keeps itself), by where their name lives: a `Lock` or
    /// a `ProcessLock` passes the same name (a clone of it) at every call. A kept name is kept
    /// alive, so a slot never answers for another name at the same place.
    static KEPT: RefCell<Vec<Option<(LockName, NameKeys)>>> = const { RefCell::new(Vec::new()) };
}

/// What the scripts of one lock send that depends only on its name and the prefix: derived
/// once per name (kept by the name, for the first key space it is used in) or, in another key
/// space, once per name and thread (kept in [`KEPT`]), not at every call.
pub(crate) struct NameKeys {
    prefix: Box<str>,
    /// Whether releases go out on sharded Pub/Sub (see [`KeySpace`](super::keys::KeySpace)).
    sharded: bool,
    /// The five keys of every script that may touch the queue, in their order: the lock's key,
    /// its fence key, its boot key, its queue key and its lease key.
    keys: Arc<[String]>,
    /// The lock's key alone, for the scripts that read only it.
    lock_key: Arc<[String]>,
    /// The lock's [`release_channel`] (its [`shard_release_channel`] when sharded).
    release_channel: Arc<str>,
    /// The arguments every script that may hand the lock on ends with (see
    /// [`EVICT_CAP`](super::scripts::EVICT_CAP)).
    common_args: [Arg; 4],
}

impl NameKeys {
    fn new(prefix: &str, sharded: bool, name: &LockName) -> Self {
        let key = key(prefix, name);
        let (fence, boot) = (fence_key(&key), boot_key(prefix, &key));
        let (queue, leases) = (queue_key(&key), lease_key(&key));
        let (release_channel, publish) = if sharded {
            (shard_release_channel(&key), "SPUBLISH")
        } else {
            (release_channel(&key), "PUBLISH")
        };
        NameKeys {
            prefix: prefix.into(),
            sharded,
            release_channel: release_channel.into(),
            common_args: [
                Arg::from(u64::try_from(FENCE_RETENTION.as_millis()).unwrap_or(u64::MAX)),
                Arg::from(u64::from(EVICT_CAP)),
                Arg::from(grant_channel_prefix(&key)),
                Arg::from(publish),
            ],
            lock_key: Arc::new([key.clone()]),
            keys: Arc::new([key, fence, boot, queue, leases]),
        }
    }

    /// `f` of `name`'s keys in `space`: those this thread derived for this very name (a
    /// clone of it) in this space, or new ones, then kept.
    fn with<R>(
        space: &(impl AsKeySpace + ?Sized),
        name: &LockName,
        f: impl FnOnce(&NameKeys) -> R,
    ) -> R {
        let (prefix, sharded) = (space.prefix(), space.is_sharded());
        let own = name
            .redis_keys()
            .get_or_init(|| Box::new(NameKeys::new(prefix, sharded, name)));
        if *own.prefix == *prefix && own.sharded == sharded {
            return f(own);
        }
        // A name used in a second key space (another prefix, or both a server and a cluster).
        KEPT.with_borrow_mut(|kept| {
            if kept.is_empty() {
                kept.resize_with(KEPT_SLOTS, || None);
            }
            // Names live in separate allocations of at least 16 bytes.
            let slot = &mut kept[(name.addr() >> 4) % KEPT_SLOTS];
            match slot {
                Some((kept_name, keys))
                    if kept_name.same_as(name)
                        && *keys.prefix == *prefix
                        && keys.sharded == sharded =>
                {
                    f(keys)
                }
                _ => f(&slot
                    .insert((name.clone(), NameKeys::new(prefix, sharded, name)))
                    .1),
            }
        })
    }

    fn lock_key(&self) -> Arc<[String]> {
        self.lock_key.clone()
    }

    fn queue_keys(&self) -> Arc<[String]> {
        self.keys.clone()
    }

    /// The start of the lock's grant channels (the last of the common arguments).
    fn grant_channel_prefix(&self) -> &str {
        self.common_args[2].as_str()
    }

    fn push_common_args(&self, args: &mut Vec<Arg>) {
        args.extend_from_slice(&self.common_args);
    }

    fn release_channel(&self) -> Arg {
        Arg::from(&self.release_channel)
    }
}

/// The key of `name` in `space`, as a script's only key.
fn lock_key(space: &(impl AsKeySpace + ?Sized), name: &LockName) -> Arc<[String]> {
    NameKeys::with(space, name, NameKeys::lock_key)
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis().max(1)).unwrap_or(u64::MAX)
}

/// A waiter's member in the queue: `"<token> <ttl ms> <claim ms> <backend id>"`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use lock_core::{Token, Ttl};
/// use lock_core::queue::{QueueTiming, Waiter};
/// use lock_core::redis::calls::member;
///
/// let ttl = Ttl::from_secs(30)?;
/// let token = Token::from_string("0123abcd")?;
/// let waiter = Waiter::new(token, ttl, QueueTiming::for_ttl(ttl));
/// assert_eq!(member(&waiter, "ff00"), "0123abcd 30000 2000 ff00");
/// # Ok::<(), lock_core::Error>(())
/// ```
pub fn member(waiter: &Waiter, grant_id: &str) -> String {
    let token = waiter.token.as_str().as_bytes();
    let ttl = Arg::from(waiter.ttl.as_millis());
    let claim = Arg::from(ms(waiter.timing.claim.min(waiter.ttl.as_duration())));
    let parts = [token, ttl.as_bytes(), claim.as_bytes(), grant_id.as_bytes()];
    let mut member = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (n, part) in parts.into_iter().enumerate() {
        if n > 0 {
            member.push(b' ');
        }
        member.extend_from_slice(part);
    }
    // Text and ASCII digits joined by spaces: always UTF-8 (checked once, for all parts).
    String::from_utf8(member).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The channel on which the waiters of a backend with id `grant_id` are told that `name`
/// (in `space`) was handed to one of them.
///
/// # Examples
///
/// ```
/// use lock_core::redis::calls::grant_channel;
/// use lock_core::LockName;
///
/// let channel = grant_channel("app:", &LockName::new("jobs")?, "ff00");
/// assert!(channel.ends_with("ff00"));
/// # Ok::<(), lock_core::Error>(())
/// ```
pub fn grant_channel(
    space: &(impl AsKeySpace + ?Sized),
    name: &LockName,
    grant_id: &str,
) -> String {
    NameKeys::with(space, name, |k| {
        k.grant_channel_prefix().to_owned() + grant_id
    })
}

/// [`LockBackend::try_acquire`](crate::LockBackend::try_acquire) of `name` in `space` (a `&str` is a prefix on one server);
/// `restart_delay` as configured (`None`: the lock's timeout).
///
/// # Examples
///
/// ```
/// use lock_core::redis::calls;
/// use lock_core::{LockName, Token, Ttl};
///
/// let (name, token, ttl) = (LockName::new("jobs")?, Token::from_string("0123abcd")?, Ttl::from_secs(30)?);
/// use lock_core::redis::scripts::Script;
///
/// let call = calls::acquire("app:", &name, &token, ttl, None);
/// assert_eq!(call.script().script, Script::Acquire);
/// assert_eq!(call.script().keys[0], "app:jobs");
/// # Ok::<(), lock_core::Error>(())
/// ```
pub fn acquire(
    space: &(impl AsKeySpace + ?Sized),
    name: &LockName,
    token: &Token,
    ttl: Ttl,
    restart_delay: Option<Duration>,
) -> Call<Acquire> {
    let mut args = Vec::with_capacity(7);
    args.extend([
        Arg::from(token),
        Arg::from(ttl.as_millis()),
        Arg::from(restart_delay_ms(restart_delay, ttl)),
    ]);
    let keys = NameKeys::with(space, name, |k| {
        k.push_common_args(&mut args);
        k.queue_keys()
    });
    Call::new("acquire", Script::Acquire, keys, args, |r| {
        reply::acquire_reply(&r.as_ints()?)
    })
}

/// [`LockBackend::try_acquire_fenced`](crate::LockBackend::try_acquire_fenced); as
/// [`acquire`].
///
/// # Examples
///
/// ```
/// use lock_core::redis::calls;
/// use lock_core::{LockName, Token, Ttl};
///
/// let (name, token, ttl) = (LockName::new("jobs")?, Token::from_string("0123abcd")?, Ttl::from_secs(30)?);
/// use lock_core::FencedAcquire;
/// use lock_core::redis::Reply;
///
/// let call = calls::acquire_fenced("", &name, &token, ttl, None);
/// let answer = Reply::Array(vec![Reply::Int(1), Reply::Int(17)]);
/// assert_eq!(call.read(answer)?, FencedAcquire::Acquired { fence: 17 });
/// # Ok::<(), lock_core::Error>(())
/// ```
pub fn acquire_fenced(
    space: &(impl AsKeySpace + ?Sized),
    name: &LockName,
    token: &Token,
    ttl: Ttl,
    restart_delay: Option<Duration>,
) -> Call<FencedAcquire> {
    let mut args = Vec::with_capacity(7);
    args.extend([
        Arg::from(token),
        Arg::from(ttl.as_millis()),
        Arg::from(restart_delay_ms(restart_delay, ttl)),
    ]);
    let keys = NameKeys::with(space, name, |k| {
        k.push_common_args(&mut args);
        k.queue_keys()
    });
    Call::new("fenced acquire", Script::AcquireFenced, keys, args, |r| {
        reply::fenced_reply(&r.as_ints()?)
    })
}

/// [`LockBackend::queue_step`](crate::LockBackend::queue_step) of `waiter`, a waiter of the
/// backend with id `grant_id`.
///
/// # Examples
///
/// ```
/// use lock_core::redis::calls;
/// use lock_core::{LockName, Token, Ttl};
///
/// let (name, token, ttl) = (LockName::new("jobs")?, Token::from_string("0123abcd")?, Ttl::from_secs(30)?);
/// use lock_core::queue::{QueueTiming, Waiter};
///
/// let waiter = Waiter::new(token, ttl, QueueTiming::for_ttl(ttl));
/// let call = calls::queue_step("", &name, &waiter, "ff00", None);
/// assert_eq!(call.script().keys.len(), 5);
/// # Ok::<(), lock_core::Error>(())
/// ```
pub fn queue_step(
    space: &(impl AsKeySpace + ?Sized),
    name: &LockName,
    waiter: &Waiter,
    grant_id: &str,
    restart_delay: Option<Duration>,
) -> Call<QueueStep> {
    let mut args = Vec::with_capacity(9);
    args.extend([
        Arg::from(member(waiter, grant_id)),
        Arg::from(&waiter.token),
        Arg::from(waiter.ttl.as_millis()),
        Arg::from(restart_delay_ms(restart_delay, waiter.ttl)),
        Arg::from(ms(waiter.timing.lease)),
    ]);
    let keys = NameKeys::with(space, name, |k| {
        k.push_common_args(&mut args);
        k.queue_keys()
    });
    Call::new("queue step", Script::Queue, keys, args, |r| {
        reply::queue_reply(&r.as_ints()?)
    })
}

/// [`LockBackend::leave_queue`](crate::LockBackend::leave_queue) of `waiter`, a waiter of the
/// backend with id `grant_id`.
///
/// # Examples
///
/// ```
/// use lock_core::redis::calls;
/// use lock_core::{LockName, Token, Ttl};
///
/// let (name, token, ttl) = (LockName::new("jobs")?, Token::from_string("0123abcd")?, Ttl::from_secs(30)?);
/// use lock_core::queue::{Leave, QueueTiming, Waiter};
/// use lock_core::redis::Reply;
///
/// let waiter = Waiter::new(token, ttl, QueueTiming::for_ttl(ttl));
/// let call = calls::leave_queue("", &name, &waiter, "ff00", false);
/// assert_eq!(call.read(Reply::Array(vec![Reply::Int(1)]))?, Leave::Left);
/// # Ok::<(), lock_core::Error>(())
/// ```
pub fn leave_queue(
    space: &(impl AsKeySpace + ?Sized),
    name: &LockName,
    waiter: &Waiter,
    grant_id: &str,
    keep: bool,
) -> Call<Leave> {
    let mut args = Vec::with_capacity(9);
    args.extend([
        Arg::from(member(waiter, grant_id)),
        Arg::from(&waiter.token),
        Arg::from(waiter.ttl.as_millis()),
        Arg::from(if keep { "1" } else { "0" }),
    ]);
    let keys = NameKeys::with(space, name, |k| {
        args.push(k.release_channel());
        k.push_common_args(&mut args);
        k.queue_keys()
    });
    Call::new("leave queue", Script::Leave, keys, args, |r| {
        reply::leave_reply(&r.as_ints()?)
    })
}

/// [`LockBackend::raise_fence`](crate::LockBackend::raise_fence).
///
/// # Examples
///
/// ```
/// use lock_core::redis::{Reply, calls};
/// use lock_core::{LockName, Token};
///
/// let (name, token) = (LockName::new("jobs")?, Token::from_string("0123abcd")?);
/// let call = calls::raise_fence("", &name, &token, 1_700_000_000_000_000);
/// assert_eq!(call.script().args, ["0123abcd", "1700000000000000", "600000"]);
/// assert_eq!(call.read(Reply::Int(0))?, false);
/// # Ok::<(), lock_core::Error>(())
/// ```
pub fn raise_fence(
    space: &(impl AsKeySpace + ?Sized),
    name: &LockName,
    token: &Token,
    floor: u64,
) -> Call<bool> {
    let args = vec![
        Arg::from(token),
        Arg::from(floor),
        Arg::from(u64::try_from(FENCE_RETENTION.as_millis()).unwrap_or(u64::MAX)),
    ];
    let keys = NameKeys::with(space, name, NameKeys::queue_keys);
    Call::new("raise fence", Script::RaiseFence, keys, args, |r| {
        reply::renew_reply(r.as_int()?)
    })
}

/// [`LockBackend::renew`](crate::LockBackend::renew).
///
/// # Examples
///
/// ```
/// use lock_core::redis::calls;
/// use lock_core::{LockName, Token, Ttl};
///
/// let (name, token, ttl) = (LockName::new("jobs")?, Token::from_string("0123abcd")?, Ttl::from_secs(30)?);
/// let call = calls::renew("", &name, &token, ttl);
/// assert_eq!(call.script().args, ["0123abcd", "30000"]);
/// # Ok::<(), lock_core::Error>(())
/// ```
pub fn renew(
    space: &(impl AsKeySpace + ?Sized),
    name: &LockName,
    token: &Token,
    ttl: Ttl,
) -> Call<bool> {
    let args = vec![Arg::from(token), Arg::from(ttl.as_millis())];
    Call::new("renew", Script::Renew, lock_key(space, name), args, |r| {
        reply::renew_reply(r.as_int()?)
    })
}

/// [`LockBackend::release`](crate::LockBackend::release), announced on the lock's
/// [`release_channel`].
///
/// # Examples
///
/// ```
/// use lock_core::redis::calls;
/// use lock_core::{LockName, Token, Ttl};
///
/// let (name, token, ttl) = (LockName::new("jobs")?, Token::from_string("0123abcd")?, Ttl::from_secs(30)?);
/// let call = calls::release("", &name, &token);
/// assert_eq!(call.script().args[0], "0123abcd");
/// # Ok::<(), lock_core::Error>(())
/// ```
pub fn release(
    space: &(impl AsKeySpace + ?Sized),
    name: &LockName,
    token: &Token,
) -> Call<Release> {
    let mut args = Vec::with_capacity(6);
    args.push(Arg::from(token));
    let keys = NameKeys::with(space, name, |k| {
        args.push(k.release_channel());
        k.push_common_args(&mut args);
        k.queue_keys()
    });
    Call::new("release", Script::Release, keys, args, |r| {
        reply::release_reply(r.as_int()?)
    })
}

/// [`LockBackend::force_release`](crate::LockBackend::force_release), announced on the lock's
/// [`release_channel`].
///
/// # Examples
///
/// ```
/// use lock_core::redis::calls;
/// use lock_core::{LockName, Token, Ttl};
///
/// let (name, token, ttl) = (LockName::new("jobs")?, Token::from_string("0123abcd")?, Ttl::from_secs(30)?);
/// use lock_core::ForceRelease;
/// use lock_core::redis::Reply;
///
/// let call = calls::force_release("", &name);
/// assert_eq!(call.read(Reply::Int(0))?, ForceRelease::Missing);
/// # Ok::<(), lock_core::Error>(())
/// ```
pub fn force_release(space: &(impl AsKeySpace + ?Sized), name: &LockName) -> Call<ForceRelease> {
    let mut args = Vec::with_capacity(5);
    let keys = NameKeys::with(space, name, |k| {
        args.push(k.release_channel());
        k.push_common_args(&mut args);
        k.queue_keys()
    });
    Call::new("force release", Script::ForceRelease, keys, args, |r| {
        reply::force_release_reply(r.as_int()?)
    })
}

/// [`LockBackend::status`](crate::LockBackend::status).
///
/// # Examples
///
/// ```
/// use lock_core::redis::calls;
/// use lock_core::{LockName, Token, Ttl};
///
/// let (name, token, ttl) = (LockName::new("jobs")?, Token::from_string("0123abcd")?, Ttl::from_secs(30)?);
/// use lock_core::LockState;
/// use lock_core::redis::Reply;
///
/// let call = calls::status("", &name);
/// assert_eq!(call.read(Reply::Int(-2))?.state, LockState::Open);
/// # Ok::<(), lock_core::Error>(())
/// ```
pub fn status(space: &(impl AsKeySpace + ?Sized), name: &LockName) -> Call<Status> {
    Call::new(
        "status",
        Script::Status,
        lock_key(space, name),
        vec![],
        |r| reply::status_reply(r.as_int()?),
    )
}

/// [`LockBackend::is_held_by`](crate::LockBackend::is_held_by).
///
/// # Examples
///
/// ```
/// use lock_core::redis::calls;
/// use lock_core::{LockName, Token, Ttl};
///
/// let (name, token, ttl) = (LockName::new("jobs")?, Token::from_string("0123abcd")?, Ttl::from_secs(30)?);
/// use lock_core::redis::Reply;
///
/// let call = calls::is_held_by("", &name, &token);
/// assert_eq!(call.read(Reply::Int(1))?, true);
/// # Ok::<(), lock_core::Error>(())
/// ```
pub fn is_held_by(
    space: &(impl AsKeySpace + ?Sized),
    name: &LockName,
    token: &Token,
) -> Call<bool> {
    let args = vec![Arg::from(token)];
    Call::new(
        "is held by",
        Script::IsHeldBy,
        lock_key(space, name),
        args,
        |r| reply::is_held_by_reply(r.as_int()?),
    )
}

/// The command a transport sends after a script, on the same connection, for replica
/// acknowledgement `ack`: `WAIT replicas timeout`, or with [`ReplicaAck::aof`]
/// `WAITAOF 1 replicas timeout` (the primary's own append-only file, and `replicas` replicas',
/// fsynced). Its answer goes to [`read_replica_wait`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use lock_core::redis::{ReplicaAck, calls};
///
/// let ack = ReplicaAck::new(2, Duration::from_millis(300))?;
/// let (command, args) = calls::replica_wait(ack);
/// assert_eq!(command, "WAIT");
/// assert_eq!(args, ["2", "300"]);
/// let (command, args) = calls::replica_wait(ack.with_aof());
/// assert_eq!(command, "WAITAOF");
/// assert_eq!(args, ["1", "2", "300"]);
/// # Ok::<(), lock_core::Error>(())
/// ```
pub fn replica_wait(ack: ReplicaAck) -> (&'static str, Vec<Arg>) {
    let replicas = Arg::from(u64::from(ack.replicas()));
    let timeout = Arg::from(u64::try_from(ack.timeout().as_millis()).unwrap_or(u64::MAX));
    if ack.aof() {
        ("WAITAOF", vec![Arg::from("1"), replicas, timeout])
    } else {
        ("WAIT", vec![replicas, timeout])
    }
}

/// Whether the answer to [`replica_wait`]'s command says `ack` was met: `Ok(())`, or the kind
/// of error and what happened. Too few acknowledgements are
/// [`ErrorKind::NotReplicated`](crate::ErrorKind::NotReplicated); a server without `WAITAOF`
/// (before Redis 7.2) is [`Unsupported`](crate::ErrorKind::Unsupported); `WAITAOF` on a server
/// without an append-only file is [`Config`](crate::ErrorKind::Config); any other error
/// answer is [`Backend`](crate::ErrorKind::Backend).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use lock_core::ErrorKind;
/// use lock_core::redis::{ReplicaAck, Reply, calls};
///
/// let ack = ReplicaAck::new(1, Duration::from_millis(300))?;
/// assert!(calls::read_replica_wait(ack, &Reply::Int(1)).is_ok());
/// let (kind, what) = calls::read_replica_wait(ack, &Reply::Int(0)).unwrap_err();
/// assert_eq!(kind, ErrorKind::NotReplicated);
/// assert_eq!(what, "0 of 1 replica(s) acknowledged it within 300ms");
///
/// let aof = ack.with_aof();
/// let fsynced = |local, replicas| Reply::Array(vec![Reply::Int(local), Reply::Int(replicas)]);
/// assert!(calls::read_replica_wait(aof, &fsynced(1, 1)).is_ok());
/// assert_eq!(calls::read_replica_wait(aof, &fsynced(0, 1)).unwrap_err().0, ErrorKind::NotReplicated);
/// let old = Reply::Error("ERR unknown command 'WAITAOF', with args beginning with: ".into());
/// assert_eq!(calls::read_replica_wait(aof, &old).unwrap_err().0, ErrorKind::Unsupported);
/// # Ok::<(), lock_core::Error>(())
/// ```
pub fn read_replica_wait(ack: ReplicaAck, reply: &Reply) -> Result<(), (crate::ErrorKind, String)> {
    let (wanted, within) = (i64::from(ack.replicas()), ack.timeout());
    let (local, replicas) = match (ack.aof(), reply) {
        (false, Reply::Int(replicas)) => (None, *replicas),
        (true, Reply::Array(answer)) => match answer[..] {
            [Reply::Int(local), Reply::Int(replicas)] => (Some(local), replicas),
            _ => return Err(unexpected_wait("WAITAOF", reply)),
        },
        (aof, Reply::Error(message)) => {
            let command = if aof { "WAITAOF" } else { "WAIT" };
            let lower = message.to_ascii_lowercase();
            let (kind, hint) = if aof && lower.contains("unknown command") {
                (
                    crate::ErrorKind::Unsupported,
                    " (WAITAOF needs Redis 7.2 or later)",
                )
            } else if aof && lower.contains("appendonly") {
                (
                    crate::ErrorKind::Config,
                    " (WAITAOF needs `appendonly yes` on the primary)",
                )
            } else {
                (crate::ErrorKind::Backend, "")
            };
            return Err((kind, format!("{command} failed{hint}: {message}")));
        }
        (aof, other) => return Err(unexpected_wait(if aof { "WAITAOF" } else { "WAIT" }, other)),
    };
    if let Some(local) = local
        && local < 1
    {
        return Err((
            crate::ErrorKind::NotReplicated,
            format!("the primary did not write it to its append-only file within {within:?}"),
        ));
    }
    if replicas >= wanted {
        return Ok(());
    }
    let did = if local.is_some() {
        "wrote it to their append-only file"
    } else {
        "acknowledged it"
    };
    Err((
        crate::ErrorKind::NotReplicated,
        format!("{replicas} of {wanted} replica(s) {did} within {within:?}"),
    ))
}

fn unexpected_wait(command: &str, reply: &Reply) -> (crate::ErrorKind, String) {
    (
        crate::ErrorKind::UnexpectedReply,
        format!("unexpected answer to {command}: {reply:?}"),
    )
}

/// The channel [`LockBackend::watch`](crate::LockBackend::watch) subscribes to for `name` under
/// `space`: where [`release`] and [`force_release`] announce it (on a Redis Cluster, a shard
/// channel in the lock's slot: see [`KeySpace`](super::keys::KeySpace)).
///
/// # Examples
///
/// ```
/// use lock_core::redis::calls::watch_channel;
/// use lock_core::LockName;
///
/// assert_eq!(watch_channel("", &LockName::new("jobs")?), "process-lock:released:jobs");
/// # Ok::<(), lock_core::Error>(())
/// ```
pub fn watch_channel(space: &(impl AsKeySpace + ?Sized), name: &LockName) -> String {
    NameKeys::with(space, name, |k| k.release_channel.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::keys::KeySpace;

    /// A name keeps the keys of its first key space itself: however many other names this
    /// thread used since (more than it keeps for other spaces), its calls send the keys derived
    /// at its first call, not keys derived again.
    #[test]
    fn a_name_keeps_its_first_spaces_keys() {
        let (token, space) = (Token::from_string("0123abcd").unwrap(), KeySpace::new(""));
        let name = LockName::new("jobs").unwrap();
        let first = release(&space, &name, &token).script().keys.clone();
        for n in 0..4 * KEPT_SLOTS {
            let other = LockName::new(format!("other-{n}")).unwrap();
            let _ = release(&space, &other, &token);
            let _ = release(&KeySpace::new("app:"), &name, &token);
        }
        let again = release(&space, &name.clone(), &token).script().keys.clone();
        assert!(Arc::ptr_eq(&first, &again), "{first:?} derived again");
    }

    /// The keys a call sends are always its own name's in its own key space, whether this
    /// thread kept them, kept another name's in the same slot, or kept them in another
    /// space.
    #[test]
    fn kept_keys_are_always_the_names_own() {
        let token = Token::from_string("0123abcd").unwrap();
        let names: Vec<LockName> = (0..2 * KEPT_SLOTS)
            .map(|n| LockName::new(format!("jobs-{n}")).unwrap())
            .collect();
        for round in 0..3 {
            for name in &names {
                for (prefix, sharded) in [("", false), ("app:", false), ("app:", true)] {
                    let space = KeySpace::new(prefix).sharded(sharded);
                    let expected = NameKeys::new(prefix, sharded, name);
                    let call = release(&space, name, &token);
                    assert_eq!(&call.script().keys[..], &expected.keys[..], "round {round}");
                    assert_eq!(call.script().args[1], *expected.release_channel);
                    let publish = if sharded { "SPUBLISH" } else { "PUBLISH" };
                    assert_eq!(call.script().args.last().map(Arg::as_str), Some(publish));
                    assert_eq!(*watch_channel(&space, name), *expected.release_channel);
                    if !sharded {
                        assert_eq!(*watch_channel(prefix, name), *expected.release_channel);
                    }
                    // A new name with the same text is not the same name, but has the same keys.
                    let again = LockName::new(name.as_str()).unwrap();
                    assert_eq!(
                        &status(&space, &again).script().keys[..],
                        &expected.lock_key[..]
                    );
                }
            }
        }
    }
}
