//! [`RefreshGate`]: when a client asks a Redis Cluster for its topology again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::ErrorKind;

/// Decides when a transport asks a Redis Cluster for its topology again after a request
/// failed: only after a failure that may mean its node is gone (a timeout, a broken
/// connection), one refresh at a time, and at most once per period.
///
/// The clients learn of a new topology from the nodes they talk to (`MOVED`, a connection
/// refused). A primary that stops without closing its connections (a frozen machine, a paused
/// process, a partition) answers nothing, and a client keeps sending the requests of its slots
/// there after the cluster has failed it over to a replica: the transport has to ask.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use lock_core::ErrorKind;
/// use lock_core::redis::RefreshGate;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let gate = Arc::new(RefreshGate::new(Duration::from_secs(2)));
/// assert!(gate.after_failure(ErrorKind::WrongType).is_none()); // the node answered
/// let permit = gate.after_failure(ErrorKind::Timeout).expect("the first refresh");
/// assert!(gate.after_failure(ErrorKind::Timeout).is_none()); // one at a time
/// drop(permit); // refreshed
/// assert!(gate.after_failure(ErrorKind::Connection).is_none()); // not again so soon
/// # }
/// ```
#[derive(Debug)]
pub struct RefreshGate {
    every: Duration,
    running: AtomicBool,
    last: Mutex<Option<Instant>>,
}

impl RefreshGate {
    /// A gate that lets a refresh run at most once per `every`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use lock_core::redis::RefreshGate;
    ///
    /// let gate = RefreshGate::new(Duration::from_secs(2));
    /// ```
    pub fn new(every: Duration) -> Self {
        RefreshGate {
            every,
            running: AtomicBool::new(false),
            last: Mutex::new(None),
        }
    }

    /// After a request failed with `kind`: a permit to refresh, held while it runs, when the
    /// failure may mean a node is gone ([`ErrorKind::Timeout`], [`ErrorKind::Connection`]),
    /// no refresh runs, and none ended within the period; `None` otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use lock_core::ErrorKind;
    /// use lock_core::redis::RefreshGate;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let gate = Arc::new(RefreshGate::new(Duration::from_secs(2)));
    /// if let Some(permit) = gate.after_failure(ErrorKind::Timeout) {
    ///     tokio::spawn(async move {
    ///         // ... ask the cluster for its topology ...
    ///         drop(permit);
    ///     });
    /// }
    /// # }
    /// ```
    pub fn after_failure(self: &Arc<Self>, kind: ErrorKind) -> Option<RefreshPermit> {
        if !matches!(kind, ErrorKind::Timeout | ErrorKind::Connection) {
            return None;
        }
        let recent = self
            .last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|at| at.elapsed() < self.every);
        if recent || self.running.swap(true, Ordering::AcqRel) {
            return None;
        }
        Some(RefreshPermit(self.clone()))
    }
}

/// A refresh under way, let by a [`RefreshGate`]; the period starts again when it is dropped.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use lock_core::ErrorKind;
/// use lock_core::redis::RefreshGate;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let gate = Arc::new(RefreshGate::new(Duration::ZERO));
/// let permit = gate.after_failure(ErrorKind::Connection).unwrap();
/// drop(permit);
/// assert!(gate.after_failure(ErrorKind::Connection).is_some()); // no period
/// # }
/// ```
#[derive(Debug)]
pub struct RefreshPermit(Arc<RefreshGate>);

impl Drop for RefreshPermit {
    fn drop(&mut self) {
        *self.0.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        self.0.running.store(false, Ordering::Release);
    }
}
