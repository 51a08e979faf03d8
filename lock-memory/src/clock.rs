//! Clocks for the in-memory backend: tokio's (pausable) clock by default, or a manual one that
//! only moves when told to.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A monotonic clock: how much time has passed since some fixed origin.
///
/// [`MemoryBackend`](crate::MemoryBackend) reads it to decide when locks expire. Implement it to
/// drive expiry from your own notion of time.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use lock_memory::{Clock, MemoryBackend};
///
/// /// A clock that runs ten times faster than real time.
/// #[derive(Debug)]
/// struct Fast(std::time::Instant);
///
/// impl Clock for Fast {
///     fn now(&self) -> Duration {
///         self.0.elapsed() * 10
///     }
/// }
///
/// let backend = MemoryBackend::with_clock(Fast(std::time::Instant::now()));
/// ```
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Time elapsed since this clock's origin; never decreases.
    fn now(&self) -> Duration;
}

/// tokio's clock: real time, or, in a runtime started with `start_paused = true` (tokio's
/// `test-util` feature), time that advances only when all tasks sleep or on
/// `tokio::time::advance`. Outside a runtime it is the system's monotonic clock.
///
/// # Examples
///
/// ```
/// use lock_memory::{MemoryBackend, TokioClock};
///
/// let backend = MemoryBackend::with_clock(TokioClock::new()); // as MemoryBackend::new()
/// ```
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    origin: tokio::time::Instant,
}

impl TokioClock {
    /// A clock whose origin is now.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use lock_memory::{Clock, ManualClock};
    ///
    /// assert_eq!(ManualClock::new().now(), Duration::ZERO);
    /// ```
    pub fn new() -> Self {
        TokioClock {
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        TokioClock::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Duration {
        tokio::time::Instant::now().saturating_duration_since(self.origin)
    }
}

/// A clock that stands still until [`advance`](ManualClock::advance) moves it, so expiry tests
/// are instant and deterministic. Clones share one time.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use lock_memory::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(clock.now(), Duration::from_secs(5));
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock at its origin.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use lock_memory::{Clock, ManualClock};
    ///
    /// assert_eq!(ManualClock::new().now(), Duration::ZERO);
    /// ```
    pub fn new() -> Self {
        ManualClock::default()
    }

    /// Moves the clock forward by `by` (saturating at about 584 years).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use lock_memory::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let shared = clock.clone();
    /// clock.advance(Duration::from_millis(1500));
    /// assert_eq!(shared.now(), Duration::from_millis(1500));
    /// ```
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        // fetch_update never fails with a closure that always returns Some.
        let _ = self
            .nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_add(by))
            });
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::Acquire))
    }
}
