//! What each operation sends: the [script](super::scripts), its keys and its arguments in the
//! order the script reads them, and how its [answer](super::reply) is read. Written once here, so
//! that every transport (and anything built on them: a quorum of servers, a cluster) sends the
//! same bytes for the same operation.
//!
//! A [`Call`] is an operation ready to send: its [`ScriptCall`] goes to
//! [`RedisTransport::eval`](super::RedisTransport::eval), and [`Call::read`] turns the answer
//! into the outcome.

use std::fmt;
use std::time::Duration;

use super::errors::unexpected;
use super::keys::{boot_key, fence_key, key, release_channel};
use super::reply::{self, Reply};
use super::scripts::{FENCE_RETENTION, Script};
use crate::backend::{Acquire, FencedAcquire, ForceRelease, Release, Status};
use crate::error::Result;
use crate::name::LockName;
use crate::token::Token;
use crate::ttl::Ttl;

#[cfg(doc)]
use super::scripts::{ACQUIRE, ACQUIRE_FENCED};

/// One script to run: what a transport sends, as `EVALSHA sha1 numkeys keys... args...`.
///
/// `Debug` shows the keys but only the number of arguments: one of them may be the owner's
/// token, which lets anyone release the lock.
#[derive(Clone, PartialEq, Eq)]
pub struct ScriptCall {
    /// The operation, for messages (`"acquire"`, `"force release"`, ...).
    pub op: &'static str,
    /// The script.
    pub script: Script,
    /// `KEYS`, in the script's order: all in one hash slot.
    pub keys: Vec<String>,
    /// `ARGV`, in the script's order.
    pub args: Vec<String>,
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
        keys: Vec<String>,
        args: Vec<String>,
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
    pub fn script(&self) -> &ScriptCall {
        &self.script
    }

    /// The outcome `reply` stands for.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::UnexpectedReply`](crate::ErrorKind::UnexpectedReply) for an answer the
    /// script never gives.
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

/// [`LockBackend::try_acquire`](crate::LockBackend::try_acquire) of `name` under `prefix`;
/// `restart_delay` as configured (`None`: the lock's timeout).
pub fn acquire(
    prefix: &str,
    name: &LockName,
    token: &Token,
    ttl: Ttl,
    restart_delay: Option<Duration>,
) -> Call<Acquire> {
    let key = key(prefix, name);
    let boot = boot_key(prefix, &key);
    let args = vec![
        token.as_str().to_owned(),
        ttl.as_millis().to_string(),
        restart_delay_ms(restart_delay, ttl).to_string(),
    ];
    Call::new("acquire", Script::Acquire, vec![key, boot], args, |r| {
        reply::acquire_reply(&r.as_ints()?)
    })
}

/// [`LockBackend::try_acquire_fenced`](crate::LockBackend::try_acquire_fenced); as
/// [`acquire`].
pub fn acquire_fenced(
    prefix: &str,
    name: &LockName,
    token: &Token,
    ttl: Ttl,
    restart_delay: Option<Duration>,
) -> Call<FencedAcquire> {
    let key = key(prefix, name);
    let (fence, boot) = (fence_key(&key), boot_key(prefix, &key));
    let args = vec![
        token.as_str().to_owned(),
        ttl.as_millis().to_string(),
        restart_delay_ms(restart_delay, ttl).to_string(),
        FENCE_RETENTION.as_millis().to_string(),
    ];
    let keys = vec![key, fence, boot];
    Call::new("fenced acquire", Script::AcquireFenced, keys, args, |r| {
        reply::fenced_reply(&r.as_ints()?)
    })
}

/// [`LockBackend::renew`](crate::LockBackend::renew).
pub fn renew(prefix: &str, name: &LockName, token: &Token, ttl: Ttl) -> Call<bool> {
    let args = vec![token.as_str().to_owned(), ttl.as_millis().to_string()];
    Call::new("renew", Script::Renew, vec![key(prefix, name)], args, |r| {
        reply::renew_reply(r.as_int()?)
    })
}

/// [`LockBackend::release`](crate::LockBackend::release), announced on the lock's
/// [`release_channel`].
pub fn release(prefix: &str, name: &LockName, token: &Token) -> Call<Release> {
    let key = key(prefix, name);
    let args = vec![token.as_str().to_owned(), release_channel(&key)];
    Call::new("release", Script::Release, vec![key], args, |r| {
        reply::release_reply(r.as_int()?)
    })
}

/// [`LockBackend::force_release`](crate::LockBackend::force_release), announced on the lock's
/// [`release_channel`].
pub fn force_release(prefix: &str, name: &LockName) -> Call<ForceRelease> {
    let key = key(prefix, name);
    let args = vec![release_channel(&key)];
    Call::new(
        "force release",
        Script::ForceRelease,
        vec![key],
        args,
        |r| reply::force_release_reply(r.as_int()?),
    )
}

/// [`LockBackend::status`](crate::LockBackend::status).
pub fn status(prefix: &str, name: &LockName) -> Call<Status> {
    Call::new(
        "status",
        Script::Status,
        vec![key(prefix, name)],
        vec![],
        |r| reply::status_reply(r.as_int()?),
    )
}

/// [`LockBackend::is_held_by`](crate::LockBackend::is_held_by).
pub fn is_held_by(prefix: &str, name: &LockName, token: &Token) -> Call<bool> {
    let args = vec![token.as_str().to_owned()];
    Call::new(
        "is held by",
        Script::IsHeldBy,
        vec![key(prefix, name)],
        args,
        |r| reply::is_held_by_reply(r.as_int()?),
    )
}

/// The channel [`LockBackend::watch`](crate::LockBackend::watch) subscribes to for `name` under
/// `prefix`: where [`release`] and [`force_release`] announce it.
pub fn watch_channel(prefix: &str, name: &LockName) -> String {
    release_channel(&key(prefix, name))
}
