//! The waiter queue: what a backend with [`Capabilities::queue`](crate::Capabilities::queue)
//! keeps per lock name so that waiters of every process take turns first come, first served,
//! and a release hands the lock straight to the next one.
//!
//! [`Lock`](crate::Lock) drives it; backend authors implement the three queue methods of
//! [`LockBackend`](crate::LockBackend) with these types. How it works, its bounds and what a
//! process that knows nothing of the queue sees are in the README's "Waiting in line" section.

use std::time::Duration;

use crate::token::Token;
use crate::ttl::Ttl;

/// One waiter in a lock's queue: its own token (the lock's value once it is handed to it), the
/// timeout it will hold the lock for, how long its place is kept without a
/// [heartbeat](crate::LockBackend::queue_step) (its *lease*), and how long a lock handed to it
/// is kept for it before it confirms (its *claim*).
///
/// # Examples
///
/// ```
/// use lock_core::{Token, Ttl};
/// use lock_core::queue::{QueueTiming, Waiter};
///
/// let ttl = Ttl::from_secs(30)?;
/// let waiter = Waiter::new(Token::generate()?, ttl, QueueTiming::for_ttl(ttl));
/// assert_eq!(waiter.timing.heartbeat.as_secs(), 1);
/// # Ok::<(), lock_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Waiter {
    /// The waiter's owner token.
    pub token: Token,
    /// The timeout the waiter holds the lock for, once it has it.
    pub ttl: Ttl,
    /// Its heartbeat, lease and claim.
    pub timing: QueueTiming,
}

impl Waiter {
    /// A waiter for `token`, holding the lock for `ttl` once it has it.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::queue::{QueueTiming, Waiter};
    /// use lock_core::{Token, Ttl};
    ///
    /// let ttl = Ttl::from_secs(30)?;
    /// let waiter = Waiter::new(Token::generate()?, ttl, QueueTiming::for_ttl(ttl));
    /// # Ok::<(), lock_core::Error>(())
    /// ```
    pub fn new(token: Token, ttl: Ttl, timing: QueueTiming) -> Self {
        Waiter { token, ttl, timing }
    }
}

/// How a waiter keeps its place: it sends a [`queue_step`](crate::LockBackend::queue_step)
/// every `heartbeat`; its place is dropped once `lease` passed without one (it died, or its
/// process is paused or cut off); a lock handed to it is kept for it for `claim` (at most the
/// lock's timeout), and then handed on if it did not confirm.
///
/// These bound how long a dead waiter delays the others: at most `claim` plus a round trip
/// each, and `lease + claim` plus a round trip for any number that died together.
///
/// # Examples
///
/// ```
/// use lock_core::queue::QueueTiming;
/// use lock_core::Ttl;
///
/// let timing = QueueTiming::for_ttl(Ttl::from_secs(30)?);
/// assert!(timing.heartbeat <= QueueTiming::MAX_HEARTBEAT);
/// assert!(timing.lease > timing.heartbeat);
/// # Ok::<(), lock_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueTiming {
    /// How often a waiter renews its place and looks whether the lock was handed to it.
    pub heartbeat: Duration,
    /// How long a place is kept without a heartbeat: 3 heartbeats.
    pub lease: Duration,
    /// How long a lock handed to a waiter is kept for it before it confirms: 2 heartbeats, and
    /// never more than the lock's timeout.
    pub claim: Duration,
}

impl QueueTiming {
    /// The longest heartbeat: 1 s.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::queue::QueueTiming;
    /// use lock_core::Ttl;
    ///
    /// // However long the lock's timeout, a waiter steps at least once a second.
    /// let timing = QueueTiming::for_ttl(Ttl::from_secs(600)?);
    /// assert!(timing.heartbeat <= QueueTiming::MAX_HEARTBEAT);
    /// # Ok::<(), lock_core::Error>(())
    /// ```
    pub const MAX_HEARTBEAT: Duration = Duration::from_secs(1);

    /// The timing for a lock held for `ttl`: a heartbeat of a third of `ttl`, at most
    /// [`MAX_HEARTBEAT`](QueueTiming::MAX_HEARTBEAT), a lease of three heartbeats, and a claim
    /// of two heartbeats.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use lock_core::Ttl;
    /// use lock_core::queue::QueueTiming;
    ///
    /// let t = QueueTiming::for_ttl(Ttl::new(Duration::from_millis(300))?);
    /// assert_eq!(t.heartbeat, Duration::from_millis(100));
    /// assert_eq!(t.lease, Duration::from_millis(300));
    /// assert_eq!(t.claim, Duration::from_millis(200));
    /// # Ok::<(), lock_core::Error>(())
    /// ```
    pub fn for_ttl(ttl: Ttl) -> Self {
        let heartbeat = (ttl.as_duration() / 3)
            .min(Self::MAX_HEARTBEAT)
            .max(Duration::from_millis(10));
        QueueTiming {
            heartbeat,
            lease: heartbeat * 3,
            claim: (heartbeat * 2).min(ttl.as_duration()),
        }
    }
}

/// The outcome of [`LockBackend::queue_step`](crate::LockBackend::queue_step).
///
/// # Examples
///
/// ```
/// # use std::sync::Arc;
/// # use lock_core::{LockBackend, LockName, Token, Ttl};
/// # use lock_core::queue::{QueueStep, QueueTiming, Waiter};
/// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
/// let ttl = Ttl::from_secs(30)?;
/// let waiter = Waiter::new(Token::generate()?, ttl, QueueTiming::for_ttl(ttl));
/// match backend.queue_step(&LockName::new("jobs")?, &waiter).await? {
///     QueueStep::Acquired { fence } => println!("holding it, fencing token {fence}"),
///     QueueStep::Queued { position, .. } => println!("{position} waiters ahead"),
///     _ => {}
/// }
/// # Ok(()) }
/// ```
#[non_exhaustive]
#[must_use = "the lock may have been acquired"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueStep {
    /// The waiter holds the lock for its full timeout, with this fencing token: it was free
    /// with no one ahead, or it had been handed to the waiter (and is now confirmed).
    Acquired {
        /// The fencing token of this acquisition.
        fence: u64,
    },
    /// The waiter is queued.
    Queued {
        /// How long the holder's lock has left (or until a restarted server may grant it),
        /// when known: the first waiter sleeps until then and steps again.
        remaining: Option<Duration>,
        /// The waiter's place: 0 is next.
        position: u64,
    },
}

/// The outcome of [`LockBackend::leave_queue`](crate::LockBackend::leave_queue).
///
/// # Examples
///
/// ```
/// # use std::sync::Arc;
/// # use lock_core::{LockBackend, LockName, Token, Ttl};
/// # use lock_core::queue::{Leave, QueueTiming, Waiter};
/// # async fn example(backend: Arc<dyn LockBackend>) -> lock_core::Result<()> {
/// let ttl = Ttl::from_secs(30)?;
/// let waiter = Waiter::new(Token::generate()?, ttl, QueueTiming::for_ttl(ttl));
/// let name = LockName::new("jobs")?;
/// // Giving up, but keeping a lock handed over meanwhile.
/// if let Leave::Kept { fence } = backend.leave_queue(&name, &waiter, true).await? {
///     println!("handed the lock after all, fencing token {fence}");
/// }
/// # Ok(()) }
/// ```
#[non_exhaustive]
#[must_use = "the lock may have been kept"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leave {
    /// The waiter was queued, and is not any more.
    Left,
    /// The waiter was not queued (never was, was evicted, or already left).
    Absent,
    /// The lock had been handed to the waiter, and it keeps it for its full timeout.
    Kept {
        /// The fencing token of the hand-off.
        fence: u64,
    },
    /// The lock had been handed to the waiter, and was released and handed on.
    Released,
}

/// The message a hand-off sends to the grantee's process: `g <token> <fence>`, parsed.
///
/// # Examples
///
/// ```
/// use lock_core::queue::parse_grant;
///
/// assert_eq!(parse_grant("g abc 7"), Some(("abc", 7)));
/// assert_eq!(parse_grant(""), None);
/// ```
pub fn parse_grant(message: &str) -> Option<(&str, u64)> {
    let rest = message.strip_prefix("g ")?;
    let (token, fence) = rest.split_once(' ')?;
    Some((token, fence.parse().ok()?))
}

/// The message [`parse_grant`] reads.
///
/// # Examples
///
/// ```
/// use lock_core::queue::grant_message;
/// use lock_core::Token;
///
/// let token = Token::from_string("0123abcd")?;
/// assert_eq!(grant_message(&token, 42), "g 0123abcd 42");
/// # Ok::<(), lock_core::Error>(())
/// ```
pub fn grant_message(token: &Token, fence: u64) -> String {
    format!("g {} {fence}", token.as_str())
}
