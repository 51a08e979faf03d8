//! Reading the scripts' answers: [`Reply`], what a transport hands back whatever its client's
//! value type, and the strict readers that turn each script's answer into an outcome
//! ([`Acquire`], [`Release`], ...), or into nothing at all for an answer that makes no sense
//! (which the operation reports as [`ErrorKind::UnexpectedReply`](crate::ErrorKind)).

use std::time::Duration;

use crate::backend::{Acquire, FencedAcquire, ForceRelease, Release, Status};
use crate::queue::{Leave, QueueStep};

#[cfg(doc)]
use super::scripts::{ACQUIRE, ACQUIRE_FENCED, FORCE_RELEASE, IS_HELD_BY, RELEASE, RENEW, STATUS};

/// A script's answer, in the few shapes the scripts give (Lua numbers become integers, tables
/// arrays): a transport converts its client's value into this.
///
/// # Examples
///
/// ```
/// use lock_core::redis::Reply;
///
/// let reply = Reply::Array(vec![Reply::Int(0), Reply::Int(1200)]);
/// assert_eq!(reply.as_ints(), Some(vec![0, 1200]));
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// An integer.
    Int(i64),
    /// An array.
    Array(Vec<Reply>),
    /// Anything else (nil, a string, a map, a double...), as the client shows it: never a valid
    /// answer, kept for the error message.
    Other(String),
    /// The server's error answer to one command of a pipeline whose other commands ran (the
    /// `WAIT` or `WAITAOF` after a script), with its message.
    Error(String),
}

impl Reply {
    /// The integer, if this is one.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::redis::Reply;
    ///
    /// assert_eq!(Reply::Int(3).as_int(), Some(3));
    /// assert_eq!(Reply::Other("OK".into()).as_int(), None);
    /// ```
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Reply::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The integers, if this is an array of integers only.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::redis::Reply;
    ///
    /// assert_eq!(Reply::Array(vec![Reply::Int(1)]).as_ints(), Some(vec![1]));
    /// assert_eq!(Reply::Int(1).as_ints(), None);
    /// ```
    pub fn as_ints(&self) -> Option<Vec<i64>> {
        match self {
            Reply::Array(items) => items.iter().map(Reply::as_int).collect(),
            _ => None,
        }
    }
}

/// Reads [`ACQUIRE`]'s answer: `{1}` or `{0, ms}` with `ms >= -1`; `None` for anything else.
///
/// # Examples
///
/// ```
/// use lock_core::Acquire;
/// use lock_core::redis::reply::acquire_reply;
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
///
/// # Examples
///
/// ```
/// use lock_core::redis::reply::renew_reply;
///
/// assert_eq!(renew_reply(1), Some(true));
/// assert_eq!(renew_reply(0), Some(false));
/// assert_eq!(renew_reply(5), None);
/// ```
pub fn renew_reply(reply: i64) -> Option<bool> {
    match reply {
        1 => Some(true),
        0 => Some(false),
        _ => None,
    }
}

/// Reads [`IS_HELD_BY`]'s answer: whether the token holds the lock; `None` for anything but 1
/// or 0.
///
/// # Examples
///
/// ```
/// use lock_core::redis::reply::is_held_by_reply;
///
/// assert_eq!(is_held_by_reply(1), Some(true));
/// assert_eq!(is_held_by_reply(2), None);
/// ```
pub fn is_held_by_reply(reply: i64) -> Option<bool> {
    renew_reply(reply)
}

/// Reads [`RELEASE`]'s answer; `None` for anything but 1, 2, 0 or -1.
///
/// # Examples
///
/// ```
/// use lock_core::Release;
/// use lock_core::redis::reply::release_reply;
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
///
/// # Examples
///
/// ```
/// use lock_core::ForceRelease;
/// use lock_core::redis::reply::force_release_reply;
///
/// assert_eq!(force_release_reply(1), Some(ForceRelease::Released));
/// assert_eq!(force_release_reply(0), Some(ForceRelease::Missing));
/// ```
pub fn force_release_reply(reply: i64) -> Option<ForceRelease> {
    match reply {
        1 => Some(ForceRelease::Released),
        2 => Some(ForceRelease::ReleasedWithoutNotice),
        0 => Some(ForceRelease::Missing),
        _ => None,
    }
}

/// Reads [`STATUS`]'s answer (a `PTTL`); `None` below -2.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use lock_core::{LockState, Status};
/// use lock_core::redis::reply::status_reply;
///
/// assert_eq!(status_reply(-2), Some(Status::open()));
/// assert_eq!(status_reply(1500), Some(Status::locked(Some(Duration::from_millis(1500)))));
/// assert_eq!(status_reply(-1).map(|s| s.state), Some(LockState::Locked));
/// ```
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
/// use lock_core::redis::reply::fenced_reply;
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

/// Reads [`QUEUE`](super::scripts::QUEUE)'s answer: `{1, fence}` acquired (fence at least 1),
/// `{0, ms, rank}` queued; `None` for anything else.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use lock_core::queue::QueueStep;
/// use lock_core::redis::reply::queue_reply;
///
/// assert_eq!(queue_reply(&[1, 7]), Some(QueueStep::Acquired { fence: 7 }));
/// assert!(matches!(queue_reply(&[0, 1500, 0]), Some(QueueStep::Queued { position: 0, .. })));
/// assert_eq!(queue_reply(&[0, 1500]), None);
/// ```
pub fn queue_reply(reply: &[i64]) -> Option<QueueStep> {
    match *reply {
        [1, fence] if fence >= 1 => Some(QueueStep::Acquired {
            fence: fence.unsigned_abs(),
        }),
        [0, pttl, rank] if pttl >= -1 && rank >= 0 => Some(QueueStep::Queued {
            remaining: remaining(pttl),
            position: rank.unsigned_abs(),
        }),
        _ => None,
    }
}

/// Reads [`LEAVE`](super::scripts::LEAVE)'s answer: `{1}` left, `{0}` absent, `{2, fence}`
/// kept, `{3}` released; `None` for anything else.
///
/// # Examples
///
/// ```
/// use lock_core::queue::Leave;
/// use lock_core::redis::reply::leave_reply;
///
/// assert_eq!(leave_reply(&[1]), Some(Leave::Left));
/// assert_eq!(leave_reply(&[2, 9]), Some(Leave::Kept { fence: 9 }));
/// assert_eq!(leave_reply(&[4]), None);
/// ```
pub fn leave_reply(reply: &[i64]) -> Option<Leave> {
    match *reply {
        [0] => Some(Leave::Absent),
        [1] => Some(Leave::Left),
        [2, fence] if fence >= 0 => Some(Leave::Kept {
            fence: fence.unsigned_abs(),
        }),
        [3] => Some(Leave::Released),
        _ => None,
    }
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
        // What transports hand over: only integers, and arrays of integers only, are read.
        let ints = Reply::Array(vec![Reply::Int(0), Reply::Int(-1)]);
        assert_eq!(ints.as_ints(), Some(vec![0, -1]));
        assert_eq!(ints.as_int(), None);
        assert_eq!(Reply::Int(1).as_ints(), None);
        let mixed = Reply::Array(vec![Reply::Int(1), Reply::Other("Nil".into())]);
        assert_eq!(mixed.as_ints(), None);
    }
}
