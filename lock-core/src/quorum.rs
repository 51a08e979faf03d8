//! Redlock: one lock over several independent stores, held while a majority of them grant it.
//!
//! A [`Quorum`] is a [`LockBackend`] made of other backends (its *nodes*: for Redlock,
//! independent Redis primaries, on either client), usable wherever a backend is:
//! [`ProcessLock`](crate::ProcessLock), [`Lock`](crate::Lock) and its guards, waiting, the
//! command. Each operation goes to every node at once, each bounded by a per-node timeout, and
//! is decided by a majority (`N / 2 + 1` of `N` nodes):
//!
//! - **Acquire**: held when a majority granted it and the time taken, counted on this
//!   process's monotonic clock from before the requests went out, plus an allowance for clock
//!   drift ([`Renewal::drift`]: 1% of the timeout plus 2 ms) is below the timeout. The lock's
//!   validity is what is left, never negative: a guard counts it from the same instant. As
//!   soon as a majority can no longer grant it, the attempt stops and every node is released
//!   again (also those that did not answer: their grant may arrive later, and is released
//!   then); nothing is left behind.
//! - **Why it failed** is told apart: another holder on a majority (or a split vote, where no
//!   one has a majority: two contenders took some nodes each) is contention, an
//!   [`Acquire::Held`] as on one store; nodes that did not answer, so that no majority could,
//!   are an [`ErrorKind::Connection`] (or [`ErrorKind::Timeout`]) error that says how many did
//!   not and why.
//! - **Renew** on every node, with the owner check of each; held while a majority renewed. A
//!   node that lost the key (restarted without persistence) gets it back, with the owner's
//!   token, only when a majority still holds it, and only if that node grants it (on Redis,
//!   not before its restart delay: a node restarted empty stays out for a timeout).
//! - **Release** and **force release** on every node; **status** and
//!   [`is_held_by`](LockBackend::is_held_by) by majority.
//! - **Waiting** by notification: a waiter watches every node and is woken by a release on any
//!   of them (it then tries again on all).
//! - **No waiter queue**: each node's queue orders its own waiters only, and a majority of
//!   queues could hand the lock to different waiters. Waiters of one process still take turns;
//!   between processes they race, as in every Redlock.
//!
//! # Fencing tokens that keep increasing
//!
//! Each node counts fencing tokens on its own, so the largest of the tokens the granting nodes
//! gave is not enough: a later majority may not include the node that gave it. A fenced
//! acquisition therefore takes two steps: it acquires on the nodes (each yields a token above
//! its own counter), takes `F` = the largest token of the granting nodes, and then raises the
//! counter of every granting node below `F` to `F` ([`LockBackend::raise_fence`], which
//! checks that the caller still holds the lock there). It succeeds only when a majority of the
//! nodes hold the lock for it *and* count at least `F`.
//!
//! *Argument.* Let acquisition A succeed with token `F_A` and a later one B with `F_B`. A
//! majority `M_A` counted at least `F_A` while A held the lock there, and B was granted by a
//! majority `M_B`; two majorities share a node `n`. On `n`, B's grant came after A's raise:
//! A held the lock on `n` when it raised the counter, and `n` grants B only once A's key there
//! is gone (released or expired; had it expired before A's raise, the raise would have failed
//! and `n` would not be in `M_A`). A node's tokens exceed its counter, so B's token from `n`
//! is above `F_A`, and `F_B`, the largest of B's, is too. Hence tokens increase in the order
//! the acquisitions succeed.
//!
//! The argument needs the node in both majorities to remember its counter: a node restarted
//! without persistence forgets it, and then draws tokens from its clock (on Redis, a token is
//! at least the server's time in microseconds), which keeps them increasing only while the
//! servers' clocks agree to within the time between two acquisitions. Run the nodes with
//! persistence (`appendonly yes`), or keep their clocks synchronised, where tokens must never
//! repeat.
//!
//! # Guarantees and limits
//!
//! Redlock is safe under its timing assumptions: bounded clock drift between this process and
//! the nodes, and requests that take much less than the timeout. A process paused longer than
//! its validity (a GC pause, a stopped VM) may still act as holder when the lock is already
//! someone else's; the guard's loss signal comes too late in that case. Only fencing tokens
//! protect the resource then: pass the token to the storage you write to, and have it refuse
//! a smaller one than it has seen.
//!
//! # Examples
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> lock_core::Result<()> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use lock_core::quorum::Quorum;
//! use lock_core::{LockBackend, ProcessLock};
//! # #[derive(Debug, Default)] struct Node(std::sync::Mutex<Option<(String, std::time::Instant)>>);
//! # #[lock_core::async_trait]
//! # impl LockBackend for Node {
//! #     fn capabilities(&self) -> lock_core::Capabilities { Default::default() }
//! #     async fn try_acquire(&self, _: &lock_core::LockName, t: &lock_core::Token, ttl: lock_core::Ttl) -> lock_core::Result<lock_core::Acquire> {
//! #         let mut held = self.0.lock().unwrap();
//! #         let now = std::time::Instant::now();
//! #         match &*held { Some((h, until)) if h != t.as_str() && *until > now => Ok(lock_core::Acquire::Held { remaining: None }),
//! #             _ => { *held = Some((t.as_str().to_owned(), now + ttl.as_duration())); Ok(lock_core::Acquire::Acquired) } }
//! #     }
//! #     async fn renew(&self, _: &lock_core::LockName, _: &lock_core::Token, _: lock_core::Ttl) -> lock_core::Result<bool> { Ok(false) }
//! #     async fn release(&self, _: &lock_core::LockName, t: &lock_core::Token) -> lock_core::Result<lock_core::Release> {
//! #         let mut held = self.0.lock().unwrap();
//! #         if held.as_ref().is_some_and(|(h, _)| h == t.as_str()) { *held = None; Ok(lock_core::Release::Released) } else { Ok(lock_core::Release::Missing) }
//! #     }
//! #     async fn force_release(&self, _: &lock_core::LockName) -> lock_core::Result<lock_core::ForceRelease> { Ok(lock_core::ForceRelease::Missing) }
//! #     async fn status(&self, _: &lock_core::LockName) -> lock_core::Result<lock_core::Status> { Ok(lock_core::Status::open()) }
//! #     async fn is_held_by(&self, _: &lock_core::LockName, _: &lock_core::Token) -> lock_core::Result<bool> { Ok(false) }
//! # }
//! # fn connect(_url: &str) -> Arc<dyn LockBackend> { Arc::new(Node::default()) }
//! // Three independent Redis primaries, each a backend of its own (redis-rs or fred).
//! let nodes = ["redis://a:6379", "redis://b:6379", "redis://c:6379"].map(connect);
//! let quorum: Arc<dyn LockBackend> = Arc::new(Quorum::new(nodes.to_vec())?);
//! let job = ProcessLock::new(quorum, "nightly-report", Duration::from_secs(30))?;
//! assert!(job.lock().await?);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use crate::backend::{
    Acquire, Capabilities, FencedAcquire, ForceRelease, LockBackend, Release, Status,
};
use crate::error::{Error, ErrorKind, Result};
use crate::guard::Renewal;
use crate::name::LockName;
use crate::notify::Watch;
use crate::token::Token;
use crate::ttl::Ttl;

/// The shortest per-node timeout [`Quorum`] derives from a lock's timeout.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use lock_core::quorum::MIN_NODE_TIMEOUT;
///
/// assert_eq!(MIN_NODE_TIMEOUT, Duration::from_millis(100));
/// ```
pub const MIN_NODE_TIMEOUT: Duration = Duration::from_millis(100);
/// The longest per-node timeout [`Quorum`] derives from a lock's timeout, and the one of
/// requests without a lock's timeout (release, status, watching).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use lock_core::quorum::MAX_NODE_TIMEOUT;
///
/// assert_eq!(MAX_NODE_TIMEOUT, Duration::from_secs(1));
/// ```
pub const MAX_NODE_TIMEOUT: Duration = Duration::from_secs(1);

/// A lock held while a majority of independent backends hold it: Redlock, with fencing tokens
/// that keep increasing and a loss signal (see the [module docs](self) for the algorithm, the
/// fencing argument and the limits).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use lock_core::quorum::Quorum;
/// use lock_core::LockBackend;
///
/// fn redlock(nodes: Vec<Arc<dyn LockBackend>>) -> lock_core::Result<Quorum> {
///     Ok(Quorum::new(nodes)?.with_node_timeout(Duration::from_millis(50))?)
/// }
/// ```
#[derive(Clone)]
pub struct Quorum {
    nodes: Arc<[Arc<dyn LockBackend>]>,
    node_timeout: Option<Duration>,
    /// The clean-ups of given-up acquisitions still running, by name and token: the next
    /// attempt of the same token waits for them, so that a late release never removes the
    /// lock that attempt takes.
    cleanups: Arc<Mutex<Cleanups>>,
    /// Per node and name, the requests under way, in turn (see [`Lane`]).
    lanes: Arc<Mutex<Lanes>>,
}

impl fmt::Debug for Quorum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Quorum")
            .field("nodes", &self.nodes)
            .field("majority", &self.majority())
            .field("node_timeout", &self.node_timeout)
            .finish()
    }
}

/// One node's request, bounded by its timeout, with the node's index.
type Request<T> = std::pin::Pin<Box<dyn Future<Output = (usize, Result<T>)> + Send>>;

/// The requests of one fan-out still running, polled together where they are awaited.
/// Every poll polls them all, so that each is sent at once (and, on one connection, before
/// anything the caller sends next), whichever answers first.
struct InFlight<T> {
    requests: Vec<Option<Request<T>>>,
    /// Answers that came while another was being returned.
    ready: std::collections::VecDeque<(usize, Result<T>)>,
}

impl<T> InFlight<T> {
    /// The next answer to come, or `None` when all have.
    async fn next(&mut self) -> Option<(usize, Result<T>)> {
        std::future::poll_fn(|cx| {
            for slot in &mut self.requests {
                if let Some(request) = slot
                    && let std::task::Poll::Ready(answer) = request.as_mut().poll(cx)
                {
                    *slot = None;
                    self.ready.push_back(answer);
                }
            }
            match self.ready.pop_front() {
                Some(answer) => std::task::Poll::Ready(Some(answer)),
                None if self.requests.iter().all(Option::is_none) => std::task::Poll::Ready(None),
                None => std::task::Poll::Pending,
            }
        })
        .await
    }

    fn is_empty(&self) -> bool {
        self.ready.is_empty() && self.requests.iter().all(Option::is_none)
    }

    /// Runs the rest to their end, their answers dropped.
    async fn finish(mut self) {
        while self.next().await.is_some() {}
    }
}

/// The clean-ups running, by name and token; each receiver errs once its clean-up is done.
type Cleanups = HashMap<(LockName, Token), watch::Receiver<()>>;

/// Per node and name, the turn its requests take.
type Lanes = HashMap<(usize, LockName), Arc<tokio::sync::Mutex<()>>>;

/// One request's place in its node's and name's lane: it is sent once the request before it on
/// that node and name has ended (answered, failed or timed out), so each node sees one name's
/// requests in the order they were made, as on one connection. Without it, a request that
/// takes several round trips (`NOSCRIPT`, then `EVAL`), or one sent
/// again after a broken connection, could land after a later request: an acquisition still
/// running in the background after its majority granted it could set the key again on a node
/// after a forced release had cleared it (CI saw a forced release find the lock again).
struct Lane {
    lanes: Arc<Mutex<Lanes>>,
    key: (usize, LockName),
    lane: Arc<tokio::sync::Mutex<()>>,
    turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Lane {
    /// The place of a request to node `node` on `name`, behind those made before it.
    fn join(lanes: &Arc<Mutex<Lanes>>, node: usize, name: &LockName) -> Lane {
        let key = (node, name.clone());
        let lane = lanes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.clone())
            .or_default()
            .clone();
        Lane {
            lanes: lanes.clone(),
            key,
            lane,
            turn: None,
        }
    }

    /// Waits for the requests before this one to end.
    async fn wait(&mut self) {
        self.turn = Some(self.lane.clone().lock_owned().await);
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        self.turn = None;
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        // No other request holds or waits for it (clones are made under this lock): the lane
        // goes, so that the map holds only names with requests under way.
        if Arc::strong_count(&self.lane) == 2
            && lanes
                .get(&self.key)
                .is_some_and(|lane| Arc::ptr_eq(lane, &self.lane))
        {
            lanes.remove(&self.key);
        }
    }
}

/// What every node answered to one fan-out, by node.
struct Answers<T> {
    answers: Vec<Option<Result<T>>>,
}

impl<T> Answers<T> {
    fn errors(&self) -> impl Iterator<Item = (usize, &Error)> {
        self.answers
            .iter()
            .enumerate()
            .filter_map(|(i, a)| match a {
                Some(Err(e)) => Some((i, e)),
                _ => None,
            })
    }

    fn oks(&self) -> impl Iterator<Item = &T> {
        self.answers.iter().filter_map(|a| match a {
            Some(Ok(v)) => Some(v),
            _ => None,
        })
    }

    fn error_count(&self) -> usize {
        self.errors().count()
    }

    fn count(&self, what: impl Fn(&T) -> bool) -> usize {
        self.oks().filter(|&a| what(a)).count()
    }
}

impl Quorum {
    /// A quorum of `nodes`, each an independent store (for Redlock, a Redis primary with no
    /// replication between them). A lock is held while `nodes.len() / 2 + 1` of them hold it;
    /// an odd number (3, 5) tolerates the most failures for its size.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] without nodes.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::quorum::Quorum;
    /// use lock_core::ErrorKind;
    ///
    /// let none = Quorum::new(Vec::new()).unwrap_err();
    /// assert_eq!(none.kind(), ErrorKind::InvalidInput);
    /// ```
    pub fn new(nodes: Vec<Arc<dyn LockBackend>>) -> Result<Self> {
        if nodes.is_empty() {
            return Err(Error::invalid_input("a quorum needs at least one node"));
        }
        Ok(Quorum {
            nodes: nodes.into(),
            node_timeout: None,
            cleanups: Arc::default(),
            lanes: Arc::default(),
        })
    }

    /// A quorum of the outcomes of connecting to each node, in order. A node that could not
    /// be reached (a [retryable](Error::is_retryable) error) stays in the quorum as a node
    /// that fails every request, so that a majority is still counted over all the nodes: what
    /// a short-lived process (the command) wants when one node of three is down at its start.
    /// A long-lived one may rather retry connecting.
    ///
    /// # Errors
    ///
    /// The first error that is not retryable (a malformed URL, refused credentials), or, when
    /// fewer than a majority connected, an error of the first one's kind that lists them all;
    /// [`ErrorKind::InvalidInput`] without nodes.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> lock_core::Result<()> {
    /// # use std::sync::Arc;
    /// use lock_core::quorum::Quorum;
    /// use lock_core::{Error, ErrorKind, LockBackend, LockName, Token, Ttl};
    /// # async fn connect(url: &str) -> lock_core::Result<Arc<dyn LockBackend>> {
    /// #     Err(Error::new(ErrorKind::Connection, format!("{url}: connection refused")))
    /// # }
    ///
    /// let mut connected = Vec::new();
    /// for url in ["redis://a:6379", "redis://b:6379", "redis://c:6379"] {
    ///     connected.push(connect(url).await);
    /// }
    /// match Quorum::from_connections(connected) {
    ///     Ok(quorum) => println!("{} nodes", quorum.nodes().len()),
    ///     Err(e) => println!("no majority: {e}"),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn from_connections(connected: Vec<Result<Arc<dyn LockBackend>>>) -> Result<Self> {
        let total = connected.len();
        let mut nodes = Vec::with_capacity(total);
        let mut failed = Vec::new();
        for (i, outcome) in connected.into_iter().enumerate() {
            match outcome {
                Ok(node) => nodes.push(node),
                Err(e) if e.is_retryable() => {
                    failed.push((i, e.kind(), e.to_string()));
                    let node = Unreachable {
                        kind: e.kind(),
                        message: e.to_string(),
                    };
                    nodes.push(Arc::new(node));
                }
                Err(e) => return Err(e),
            }
        }
        let quorum = Quorum::new(nodes)?;
        if total - failed.len() < quorum.majority() {
            let mut message = format!(
                "connecting a quorum: {} of {total} nodes could not be reached, and a majority \
                 of {} is needed",
                failed.len(),
                quorum.majority()
            );
            for (i, _, e) in &failed {
                let _ = write!(message, "; node {i}: {e}");
            }
            return Err(Error::new(failed[0].1, message));
        }
        Ok(quorum)
    }

    /// How long each node may take to answer one request before it counts as failed. By
    /// default a fifth of the lock's timeout, between [`MIN_NODE_TIMEOUT`] and
    /// [`MAX_NODE_TIMEOUT`] (1 s for locks of 5 s and more); watching for releases, which has
    /// no timeout of its own, uses [`MAX_NODE_TIMEOUT`]. Keep it well below the timeout: an
    /// acquisition that takes longer than the timeout less the drift fails.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for zero.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use lock_core::{LockBackend, quorum::Quorum};
    /// # fn f(nodes: Vec<Arc<dyn LockBackend>>) -> lock_core::Result<()> {
    /// let quorum = Quorum::new(nodes)?.with_node_timeout(Duration::from_millis(50))?;
    /// # Ok(()) }
    /// ```
    pub fn with_node_timeout(mut self, timeout: Duration) -> Result<Self> {
        if timeout.is_zero() {
            return Err(Error::invalid_input(
                "a per-node timeout must be above zero",
            ));
        }
        self.node_timeout = Some(timeout);
        Ok(self)
    }

    /// The nodes, in the order given.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use lock_core::{LockBackend, quorum::Quorum};
    /// # fn f(nodes: Vec<Arc<dyn LockBackend>>) -> lock_core::Result<()> {
    /// let quorum = Quorum::new(nodes)?;
    /// println!("{} nodes", quorum.nodes().len());
    /// # Ok(()) }
    /// ```
    pub fn nodes(&self) -> &[Arc<dyn LockBackend>] {
        &self.nodes
    }

    /// How many nodes make a majority: `nodes / 2 + 1`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use lock_core::{LockBackend, quorum::Quorum};
    /// # fn f(three: Vec<Arc<dyn LockBackend>>) -> lock_core::Result<()> {
    /// assert_eq!(Quorum::new(three)?.majority(), 2);
    /// # Ok(()) }
    /// ```
    pub fn majority(&self) -> usize {
        self.nodes.len() / 2 + 1
    }

    /// The per-node timeout for a lock of `ttl`.
    fn node_timeout(&self, ttl: Option<Ttl>) -> Duration {
        match (self.node_timeout, ttl) {
            (Some(timeout), _) => timeout,
            (None, Some(ttl)) => (ttl.as_duration() / 5).clamp(MIN_NODE_TIMEOUT, MAX_NODE_TIMEOUT),
            (None, None) => MAX_NODE_TIMEOUT,
        }
    }

    /// Sends `op` to every node at once, each bounded by `timeout`; the answers come from
    /// [`InFlight::next`] as they arrive, by node. The requests run where they are polled (no
    /// task each, which would cost more than the request on loopback); those still running
    /// when the caller stops waiting are dropped, or handed to a task with
    /// [`InFlight::finish`].
    fn fan_out<T, F, Fut>(&self, name: &LockName, timeout: Duration, op: F) -> Result<InFlight<T>>
    where
        T: Send + 'static,
        F: Fn(Arc<dyn LockBackend>) -> Fut,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::new(
                ErrorKind::Config,
                "a quorum of backends needs a tokio runtime",
            ));
        }
        let all: Vec<usize> = (0..self.nodes.len()).collect();
        Ok(self.fan_out_to(name, &all, timeout, op))
    }

    /// As [`fan_out`](Quorum::fan_out), to the nodes `to` only (in a runtime). Each node's
    /// request waits, within its timeout, for that node's earlier ones on `name` (see
    /// [`Lane`]).
    fn fan_out_to<T, F, Fut>(
        &self,
        name: &LockName,
        to: &[usize],
        timeout: Duration,
        op: F,
    ) -> InFlight<T>
    where
        T: Send + 'static,
        F: Fn(Arc<dyn LockBackend>) -> Fut,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        let requests = to
            .iter()
            .map(|&i| {
                let request = op(self.nodes[i].clone());
                let mut lane = Lane::join(&self.lanes, i, name);
                let bounded: Request<T> = Box::pin(async move {
                    let in_turn = async {
                        lane.wait().await;
                        request.await
                    };
                    let answer = match tokio::time::timeout(timeout, in_turn).await {
                        Ok(answer) => answer,
                        Err(_) => Err(Error::new(
                            ErrorKind::Timeout,
                            format!("no answer within {timeout:?}"),
                        )),
                    };
                    (i, answer)
                });
                Some(bounded)
            })
            .collect();
        InFlight {
            requests,
            ready: std::collections::VecDeque::new(),
        }
    }

    /// The nodes' answers to `op` (or their errors, or timeouts): all of them, or as many as
    /// came until `enough` of them did; the others finish in the background, and, for an
    /// operation that changes `token`'s lock (`of` is `Some`), the next acquisition of that
    /// token waits for them (see [`settle`](Quorum::settle)).
    async fn ask<T, F, Fut>(
        &self,
        name: &LockName,
        timeout: Duration,
        op: F,
        enough: impl Fn(&Answers<T>) -> bool,
        of: Option<(&LockName, &Token)>,
    ) -> Result<Answers<T>>
    where
        T: Send + 'static,
        F: Fn(Arc<dyn LockBackend>) -> Fut,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        let mut requests = self.fan_out(name, timeout, op)?;
        let mut answers = Answers {
            answers: (0..self.nodes.len()).map(|_| None).collect(),
        };
        while let Some((i, answer)) = requests.next().await {
            answers.answers[i] = Some(answer);
            if !requests.is_empty() && enough(&answers) {
                match of {
                    Some((name, token)) => {
                        let cleanup = self.cleanup_started(name, token);
                        tokio::spawn(async move {
                            requests.finish().await;
                            cleanup.done();
                        });
                    }
                    // Reads: the rest are not needed.
                    None => drop(requests),
                }
                break;
            }
        }
        Ok(answers)
    }

    /// Registers a clean-up of `token`'s lock on `name` running in the background, until
    /// [`Cleanup::done`].
    fn cleanup_started(&self, name: &LockName, token: &Token) -> Cleanup {
        let (done, running) = watch::channel(());
        let key = (name.clone(), token.clone());
        self.cleanups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.clone(), running.clone());
        Cleanup {
            cleanups: self.cleanups.clone(),
            key,
            running,
            _done: done,
        }
    }

    /// The error of an operation that no majority could answer: how many nodes failed, and
    /// each one's error. Of the kind all of them share, else [`ErrorKind::Connection`].
    fn no_majority<T>(&self, what: &str, answers: &Answers<T>) -> Error {
        let errors: Vec<(usize, &Error)> = answers.errors().collect();
        let kind = match errors.first() {
            Some((_, first)) if errors.iter().all(|(_, e)| e.kind() == first.kind()) => {
                first.kind()
            }
            _ => ErrorKind::Connection,
        };
        let mut message = format!(
            "{what}: {} of {} nodes did not answer, and a majority of {} is needed",
            errors.len(),
            self.nodes.len(),
            self.majority()
        );
        for (i, e) in errors {
            let _ = write!(message, "; node {i}: {e}");
        }
        Error::new(kind, message)
    }

    /// Waits (bounded) for the clean-up of an earlier attempt of `token` on `name`.
    async fn settle(&self, name: &LockName, token: &Token, timeout: Duration) {
        let key = (name.clone(), token.clone());
        let running = self
            .cleanups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .cloned();
        if let Some(mut done) = running {
            // Ends (with an error) when the clean-up drops its sender.
            let _ = tokio::time::timeout(4 * timeout, done.changed()).await;
        }
    }

    /// One acquisition on every node (fenced: with the fencing steps of the module docs).
    async fn acquire(
        &self,
        name: &LockName,
        token: &Token,
        ttl: Ttl,
        fenced: bool,
    ) -> Result<FencedAcquire> {
        let timeout = self.node_timeout(Some(ttl));
        self.settle(name, token, timeout).await;
        let started = Instant::now();
        let majority = self.majority();
        let op = |node: Arc<dyn LockBackend>| {
            let (name, token) = (name.clone(), token.clone());
            async move {
                if fenced {
                    node.try_acquire_fenced(&name, &token, ttl).await
                } else {
                    node.try_acquire(&name, &token, ttl).await.map(|a| match a {
                        Acquire::Acquired => FencedAcquire::Acquired { fence: 0 },
                        Acquire::Held { remaining } => FencedAcquire::Held { remaining },
                    })
                }
            }
        };
        // A grant that arrives after a success is kept: the lock is ours there too.
        let requests = self.fan_out(name, timeout, op)?;
        let mut undo = Undo {
            quorum: self.clone(),
            name: name.clone(),
            token: token.clone(),
            timeout,
            requests: Some(requests),
            answered: Vec::new(),
        };
        let mut answers = Answers {
            answers: (0..self.nodes.len()).map(|_| None).collect(),
        };
        let (mut granted, mut pending) = (Vec::new(), self.nodes.len());
        while let Some((i, answer)) = undo.next().await {
            pending -= 1;
            if let Ok(FencedAcquire::Acquired { fence }) = &answer {
                granted.push((i, *fence));
            }
            answers.answers[i] = Some(answer);
            if granted.len() >= majority || granted.len() + pending < majority {
                break;
            }
        }
        let drift = Renewal::drift(ttl);
        if granted.len() >= majority {
            let fence = if fenced {
                match self.raise_majority(name, token, timeout, &granted).await {
                    Ok(fence) => fence,
                    Err(e) => {
                        undo.now().await;
                        return Err(e);
                    }
                }
            } else {
                0
            };
            let took = started.elapsed();
            if took + drift < ttl.as_duration() {
                undo.disarm();
                return Ok(FencedAcquire::Acquired { fence });
            }
            undo.now().await;
            return Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "a majority granted {name}, but only after {took:?}, which with {drift:?} \
                     for clock drift leaves nothing of its {ttl} timeout; it was released again"
                ),
            ));
        }
        undo.now().await;
        let held: Vec<Option<Duration>> = answers
            .oks()
            .filter_map(|a| match a {
                FencedAcquire::Held { remaining } => Some(*remaining),
                FencedAcquire::Acquired { .. } => None,
            })
            .collect();
        // Contention (a majority held by others, or a split vote) unless failures alone kept
        // a majority from answering.
        let errors = answers.error_count();
        if errors > self.nodes.len() - majority && held.len() < majority {
            return Err(self.no_majority(&format!("acquiring {name}"), &answers));
        }
        if held.len() < majority {
            tracing::debug!(
                lock = %name,
                granted = granted.len(),
                held = held.len(),
                failed = errors,
                nodes = self.nodes.len(),
                "split vote: no one has a majority; released again"
            );
        }
        // Nodes that did not answer (or failed) may free up first: counting them as free
        // soonest keeps this a lower bound, so a waiter never sleeps past the lock's end.
        let unknown = pending + errors;
        let need = majority
            .saturating_sub(granted.len())
            .saturating_sub(unknown)
            .max(1);
        Ok(FencedAcquire::Held {
            remaining: until_free(held, need),
        })
    }

    /// The fencing token of an acquisition `granted` by a majority (node, token): the largest,
    /// after raising the counter of every granting node below it, so that a majority counts
    /// at least that far.
    async fn raise_majority(
        &self,
        name: &LockName,
        token: &Token,
        timeout: Duration,
        granted: &[(usize, u64)],
    ) -> Result<u64> {
        let fence = granted.iter().map(|&(_, f)| f).max().unwrap_or(0);
        let mut counted = granted.iter().filter(|&&(_, f)| f == fence).count();
        let behind: Vec<usize> = granted
            .iter()
            .filter(|&&(_, f)| f < fence)
            .map(|&(i, _)| i)
            .collect();
        if counted >= self.majority() || behind.is_empty() {
            return Ok(fence);
        }
        let mut raised = self.fan_out_to(name, &behind, timeout, |node| {
            let (name, token) = (name.clone(), token.clone());
            async move { node.raise_fence(&name, &token, fence).await }
        });
        let mut failures = Vec::new();
        while let Some((i, answer)) = raised.next().await {
            match answer {
                Ok(true) => counted += 1,
                Ok(false) => failures.push(format!("node {i}: no longer held there")),
                Err(e) => failures.push(format!("node {i}: {e}")),
            }
        }
        if counted >= self.majority() {
            return Ok(fence);
        }
        Err(Error::new(
            ErrorKind::Connection,
            format!(
                "acquiring {name}: a majority granted it, but only {counted} of {} nodes count \
                 its fencing token {fence} (a majority must, for tokens to keep increasing); it \
                 was released again: {}",
                self.nodes.len(),
                failures.join("; ")
            ),
        ))
    }
}

/// An acquisition under way, given up unless [`disarm`](Undo::disarm)ed: then (or when
/// dropped, if the attempt is cancelled) its token is released on every node that may have
/// granted it: at once on those that answered, and on the others once they answered (each is
/// bounded by the per-node timeout), so that no grant is left behind. The next attempt of the
/// same token waits for that (see [`Quorum::settle`]).
struct Undo {
    quorum: Quorum,
    name: LockName,
    token: Token,
    timeout: Duration,
    requests: Option<InFlight<FencedAcquire>>,
    /// The nodes that answered: whether each granted the lock, and whether it failed (a
    /// failed request, a timeout above all, may still have been applied).
    answered: Vec<(usize, Answered)>,
}

impl Undo {
    /// The next answer, noted.
    async fn next(&mut self) -> Option<(usize, Result<FencedAcquire>)> {
        let (i, answer) = self.requests.as_mut()?.next().await?;
        let answered = match answer {
            Ok(FencedAcquire::Acquired { .. }) => Answered::Granted,
            Ok(FencedAcquire::Held { .. }) => Answered::Held,
            Err(_) => Answered::Failed,
        };
        self.answered.push((i, answered));
        Some((i, answer))
    }

    fn disarm(&mut self) {
        // The requests still on their way run to their end: a grant there is the holder's
        // too, one more node that holds its lock (a bare majority would be lost with any one
        // node), and its release covers it.
        if let Some(rest) = self.requests.take()
            && !rest.is_empty()
        {
            tokio::spawn(rest.finish());
        }
    }

    /// Gives the attempt up, returning once the nodes that granted it are released; those
    /// that failed are released in the background, and those yet to answer once they do.
    async fn now(&mut self) {
        if let Some(answered) = self.start() {
            let _ = answered.await;
        }
    }

    /// Starts the clean-up; the receiver says when the nodes that granted it are released.
    fn start(&mut self) -> Option<oneshot::Receiver<()>> {
        let mut requests = self.requests.take()?;
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let cleanup = self.quorum.cleanup_started(&self.name, &self.token);
        let (first, answered) = oneshot::channel();
        let with = |kind: Answered| -> Vec<usize> {
            self.answered
                .iter()
                .filter(|&&(_, a)| a == kind)
                .map(|&(i, _)| i)
                .collect()
        };
        let (now, mut late) = (with(Answered::Granted), with(Answered::Failed));
        let (quorum, timeout) = (self.quorum.clone(), self.timeout);
        runtime.spawn(async move {
            let (name, token) = &cleanup.key;
            quorum.release_on(&now, name, token, timeout).await;
            let _ = first.send(());
            while let Some((i, answer)) = requests.next().await {
                if !matches!(answer, Ok(FencedAcquire::Held { .. })) {
                    late.push(i);
                }
            }
            quorum.release_on(&late, name, token, timeout).await;
            cleanup.done();
        });
        Some(answered)
    }
}

/// A clean-up running in the background (see [`Quorum::cleanup_started`]); the next attempt
/// of its token waits until it is done (or dropped).
struct Cleanup {
    cleanups: Arc<Mutex<Cleanups>>,
    key: (LockName, Token),
    running: watch::Receiver<()>,
    _done: watch::Sender<()>,
}

impl Cleanup {
    /// Ends the clean-up: its entry goes (unless a newer one took its place), and whoever
    /// waits for it goes on.
    fn done(self) {
        let mut cleanups = self.cleanups.lock().unwrap_or_else(PoisonError::into_inner);
        if cleanups
            .get(&self.key)
            .is_some_and(|r| r.same_channel(&self.running))
        {
            cleanups.remove(&self.key);
        }
    }
}

/// What a node answered to an acquisition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answered {
    Granted,
    Held,
    Failed,
}

impl Drop for Undo {
    fn drop(&mut self) {
        // Cancelled mid-way: clean up in the background.
        let _ = self.start();
    }
}

impl Quorum {
    /// Releases `token`'s lock on `nodes`, at once, each bounded by `timeout`.
    async fn release_on(&self, nodes: &[usize], name: &LockName, token: &Token, timeout: Duration) {
        self.fan_out_to(name, nodes, timeout, |node| {
            let (name, token) = (name.clone(), token.clone());
            async move { node.release(&name, &token).await }
        })
        .finish()
        .await;
    }
}

/// A node that could not be reached when the quorum was made: every request fails with the
/// error of that attempt.
#[derive(Debug)]
struct Unreachable {
    kind: ErrorKind,
    message: String,
}

impl Unreachable {
    fn error(&self) -> Error {
        Error::new(
            self.kind,
            format!("not connected at the start: {}", self.message),
        )
    }
}

#[async_trait]
impl LockBackend for Unreachable {
    fn capabilities(&self) -> Capabilities {
        // Whatever the others offer: this node fails every request anyway.
        Capabilities {
            remaining_ttl: true,
            notify: true,
            fencing: true,
            queue: false,
            raise_fence: true,
        }
    }

    async fn try_acquire(&self, _: &LockName, _: &Token, _: Ttl) -> Result<Acquire> {
        Err(self.error())
    }

    async fn renew(&self, _: &LockName, _: &Token, _: Ttl) -> Result<bool> {
        Err(self.error())
    }

    async fn release(&self, _: &LockName, _: &Token) -> Result<Release> {
        Err(self.error())
    }

    async fn force_release(&self, _: &LockName) -> Result<ForceRelease> {
        Err(self.error())
    }

    async fn status(&self, _: &LockName) -> Result<Status> {
        Err(self.error())
    }

    async fn is_held_by(&self, _: &LockName, _: &Token) -> Result<bool> {
        Err(self.error())
    }

    async fn try_acquire_fenced(&self, _: &LockName, _: &Token, _: Ttl) -> Result<FencedAcquire> {
        Err(self.error())
    }

    async fn watch(&self, _: &LockName) -> Result<Watch> {
        Err(self.error())
    }

    async fn raise_fence(&self, _: &LockName, _: &Token, _: u64) -> Result<bool> {
        Err(self.error())
    }
}

/// How long until `need` more of the nodes whose holders have `remaining` time left are free:
/// the `need`-th shortest; `None` when unknown (a holder without expiry, or not enough
/// holders).
fn until_free(mut remaining: Vec<Option<Duration>>, need: usize) -> Option<Duration> {
    if need == 0 || remaining.iter().any(Option::is_none) {
        return None;
    }
    remaining.sort();
    remaining.get(need - 1).copied().flatten()
}

#[async_trait]
impl LockBackend for Quorum {
    fn capabilities(&self) -> Capabilities {
        let all =
            |f: fn(&Capabilities) -> bool| self.nodes.iter().all(|node| f(&node.capabilities()));
        Capabilities {
            remaining_ttl: all(|c| c.remaining_ttl),
            notify: all(|c| c.notify),
            fencing: all(|c| c.fencing && c.raise_fence),
            queue: false,
            raise_fence: false,
        }
    }

    async fn try_acquire(&self, name: &LockName, token: &Token, ttl: Ttl) -> Result<Acquire> {
        Ok(match self.acquire(name, token, ttl, false).await? {
            FencedAcquire::Acquired { .. } => Acquire::Acquired,
            FencedAcquire::Held { remaining } => Acquire::Held { remaining },
        })
    }

    async fn try_acquire_fenced(
        &self,
        name: &LockName,
        token: &Token,
        ttl: Ttl,
    ) -> Result<FencedAcquire> {
        if !self.capabilities().fencing {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("{self:?}: a node does not offer fencing tokens or raising them"),
            ));
        }
        self.acquire(name, token, ttl, true).await
    }

    async fn renew(&self, name: &LockName, token: &Token, ttl: Ttl) -> Result<bool> {
        let started = Instant::now();
        let timeout = self.node_timeout(Some(ttl));
        let answers = self
            .ask(
                name,
                timeout,
                |node| {
                    let (name, token) = (name.clone(), token.clone());
                    async move { node.renew(&name, &token, ttl).await }
                },
                |_| false,
                None,
            )
            .await?;
        let renewed = answers.oks().filter(|&&r| r).count();
        if renewed < self.majority() {
            if renewed + answers.error_count() >= self.majority() {
                return Err(self.no_majority(&format!("renewing {name}"), &answers));
            }
            return Ok(false);
        }
        // Repair: a node that lost the key (restarted empty) gets it back while a majority
        // still holds it, if it grants it.
        let lost: Vec<usize> = answers
            .answers
            .iter()
            .enumerate()
            .filter(|(_, a)| matches!(a, Some(Ok(false))))
            .map(|(i, _)| i)
            .collect();
        self.fan_out_to(name, &lost, timeout, |node| {
            let (name, token) = (name.clone(), token.clone());
            async move { node.try_acquire(&name, &token, ttl).await }
        })
        .finish()
        .await;
        Ok(started.elapsed() + Renewal::drift(ttl) < ttl.as_duration())
    }

    async fn release(&self, name: &LockName, token: &Token) -> Result<Release> {
        let majority = self.majority();
        let answers = self
            .ask(
                name,
                self.node_timeout(None),
                |node| {
                    let (name, token) = (name.clone(), token.clone());
                    async move { node.release(&name, &token).await }
                },
                // Freed, and a majority answered: the rest finish in the background.
                |a| a.oks().count() >= majority && a.count(|r| r.is_released()) > 0,
                Some((name, token)),
            )
            .await?;
        if answers.error_count() >= self.majority() {
            return Err(self.no_majority(&format!("releasing {name}"), &answers));
        }
        let count = |r: Release| answers.count(|&a| a == r);
        Ok(if count(Release::ReleasedWithoutNotice) > 0 {
            Release::ReleasedWithoutNotice
        } else if count(Release::Released) > 0 {
            Release::Released
        } else if count(Release::NotOwner) >= self.majority() {
            Release::NotOwner
        } else {
            Release::Missing
        })
    }

    async fn force_release(&self, name: &LockName) -> Result<ForceRelease> {
        let answers = self
            .ask(
                name,
                self.node_timeout(None),
                |node| {
                    let name = name.clone();
                    async move { node.force_release(&name).await }
                },
                // Every node: a forced release that lands late would free a later holder's
                // lock.
                |_| false,
                None,
            )
            .await?;
        if answers.error_count() >= self.majority() {
            return Err(self.no_majority(&format!("clearing {name}"), &answers));
        }
        let count = |r: ForceRelease| answers.count(|&a| a == r);
        Ok(if count(ForceRelease::ReleasedWithoutNotice) > 0 {
            ForceRelease::ReleasedWithoutNotice
        } else if count(ForceRelease::Released) > 0 {
            ForceRelease::Released
        } else {
            ForceRelease::Missing
        })
    }

    async fn status(&self, name: &LockName) -> Result<Status> {
        let majority = self.majority();
        let answers = self
            .ask(
                name,
                self.node_timeout(None),
                |node| {
                    let name = name.clone();
                    async move { node.status(&name).await }
                },
                |a| {
                    a.count(|s| s.state == crate::LockState::Open) >= majority
                        || a.count(|s| s.state == crate::LockState::Locked) >= majority
                },
                None,
            )
            .await?;
        let locked: Vec<Option<Duration>> = answers
            .oks()
            .filter(|s| s.state == crate::LockState::Locked)
            .map(|s| s.remaining)
            .collect();
        let open = answers.oks().count() - locked.len();
        if open >= majority {
            return Ok(Status::open());
        }
        if open + locked.len() < majority {
            return Err(self.no_majority(&format!("the status of {name}"), &answers));
        }
        // No majority free: locked, until enough holders' time runs out. Nodes that did not
        // answer (or failed) count as freeing up soonest: a lower bound.
        let unknown = self.nodes.len() - open - locked.len();
        let need = (majority - open).saturating_sub(unknown).max(1);
        Ok(Status::locked(until_free(locked, need)))
    }

    async fn is_held_by(&self, name: &LockName, token: &Token) -> Result<bool> {
        let (nodes, majority) = (self.nodes.len(), self.majority());
        let answers = self
            .ask(
                name,
                self.node_timeout(None),
                |node| {
                    let (name, token) = (name.clone(), token.clone());
                    async move { node.is_held_by(&name, &token).await }
                },
                |a| a.count(|&held| held) >= majority || a.count(|&held| !held) > nodes - majority,
                None,
            )
            .await?;
        let held = answers.oks().filter(|&&h| h).count();
        if held >= majority {
            return Ok(true);
        }
        if held + answers.error_count() >= majority {
            return Err(self.no_majority(&format!("asking who holds {name}"), &answers));
        }
        Ok(false)
    }

    async fn watch(&self, name: &LockName) -> Result<Watch> {
        if !self.capabilities().notify {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("{self:?}: a node does not offer notification of releases"),
            ));
        }
        let answers = self
            .ask(
                name,
                self.node_timeout(None),
                |node| {
                    let name = name.clone();
                    async move { node.watch(&name).await }
                },
                |_| false,
                None,
            )
            .await?;
        let errors = answers.error_count();
        let watches: Vec<Watch> = answers
            .answers
            .into_iter()
            .filter_map(|a| a.and_then(Result::ok))
            .collect();
        if watches.is_empty() {
            return Err(Error::new(
                ErrorKind::Connection,
                format!("watching {name}: none of the {errors} nodes could be watched"),
            ));
        }
        // Releases on the nodes that could not be watched are seen at the next recheck.
        Watch::any(watches).ok_or_else(|| Error::new(ErrorKind::Backend, "no watch"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_free_is_the_need_th_shortest() {
        let ms = |n| Some(Duration::from_millis(n));
        assert_eq!(until_free(vec![ms(30), ms(10), ms(20)], 2), ms(20));
        assert_eq!(until_free(vec![ms(30), ms(10)], 1), ms(10));
        assert_eq!(until_free(vec![ms(30)], 2), None);
        assert_eq!(until_free(vec![ms(30), None], 1), None);
        assert_eq!(until_free(vec![ms(30)], 0), None);
    }
}
