//! [`Fixture`]: what a backend hands the suite: the backend itself, and how to move time.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use lock_core::{Lock, LockBackend, ProcessLock, Token};

type Advance = Arc<dyn Fn(Duration) + Send + Sync>;

/// How a backend is tested: the backend, how its time moves, and how hard the model-based test
/// works.
///
/// A networked backend runs on real time ([`Fixture::new`]): the cases sleep, so the unit of
/// time ([`tick`](Fixture::with_tick)) is kept short and the model-based test runs fewer cases.
/// A backend whose clock the test controls ([`with_manual_time`](Fixture::with_manual_time))
/// runs instantly, however long the timeouts.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use conformance::Fixture;
/// use lock_memory::{ManualClock, MemoryBackend};
///
/// let clock = ManualClock::new();
/// let backend = Arc::new(MemoryBackend::with_clock(clock.clone()));
/// let fixture = Fixture::new(backend).with_manual_time(move |by| clock.advance(by));
/// ```
#[derive(Clone)]
pub struct Fixture {
    backend: Option<Arc<dyn LockBackend>>,
    advance: Option<Advance>,
    tick: Duration,
    model_cases: u32,
    keep_alive: Vec<Arc<dyn Any + Send + Sync>>,
}

impl Fixture {
    /// The unit of time on real time: long enough that scheduling delays on a loaded machine
    /// stay well inside it.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use conformance::Fixture;
    /// # use lock_memory::MemoryBackend;
    /// let fixture = Fixture::new(Arc::new(MemoryBackend::new()));
    /// assert_eq!(fixture.tick(), Fixture::REAL_TICK);
    /// ```
    pub const REAL_TICK: Duration = Duration::from_millis(100);
    /// Model-based cases on real time, where each case sleeps.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use conformance::Fixture;
    /// # use lock_memory::MemoryBackend;
    /// let fixture = Fixture::new(Arc::new(MemoryBackend::new()));
    /// assert_eq!(fixture.model_cases(), Fixture::REAL_MODEL_CASES);
    /// ```
    pub const REAL_MODEL_CASES: u32 = 16;
    /// Model-based cases on manual time, where they cost nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use conformance::Fixture;
    /// # use lock_memory::MemoryBackend;
    /// let fixture = Fixture::new(Arc::new(MemoryBackend::new())).with_manual_time(|_| {});
    /// assert_eq!(fixture.model_cases(), Fixture::MANUAL_MODEL_CASES);
    /// ```
    pub const MANUAL_MODEL_CASES: u32 = 512;

    /// A fixture on real time: the cases sleep to let locks expire.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use conformance::Fixture;
    /// # use lock_memory::MemoryBackend;
    /// let fixture = Fixture::new(Arc::new(MemoryBackend::new()));
    /// assert!(!fixture.is_manual_time());
    /// ```
    pub fn new(backend: Arc<dyn LockBackend>) -> Self {
        Fixture {
            backend: Some(backend),
            ..Self::without_backend()
        }
    }

    /// A fixture without a backend, on real time, for cases that connect their own: those that
    /// need a Redis server find theirs among the resources it keeps alive
    /// ([`resource`](Fixture::resource)).
    ///
    /// # Examples
    ///
    /// ```
    /// use conformance::Fixture;
    ///
    /// // For a case that starts and connects to a server of its own.
    /// let fixture = Fixture::without_backend().keep_alive(String::from("a server"));
    /// assert_eq!(fixture.resource::<String>().map(String::as_str), Some("a server"));
    /// ```
    pub fn without_backend() -> Self {
        Fixture {
            backend: None,
            advance: None,
            tick: Self::REAL_TICK,
            model_cases: Self::REAL_MODEL_CASES,
            keep_alive: Vec::new(),
        }
    }

    /// Keeps `resource` (for example the Redis server the backend talks to) alive as long as
    /// the fixture: it is dropped after the case, inside the case's runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use conformance::Fixture;
    /// # use lock_memory::MemoryBackend;
    /// struct Server; // a server the backend talks to, stopped when dropped
    /// let fixture = Fixture::new(Arc::new(MemoryBackend::new())).keep_alive(Server);
    /// assert!(fixture.resource::<Server>().is_some());
    /// ```
    #[must_use]
    pub fn keep_alive(mut self, resource: impl Any + Send + Sync) -> Self {
        self.keep_alive.push(Arc::new(resource));
        self
    }

    /// Time moves only when the suite calls `advance` (for example a
    /// `lock_memory::ManualClock`'s), so no case sleeps.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use conformance::Fixture;
    /// use lock_memory::{ManualClock, MemoryBackend};
    ///
    /// let clock = ManualClock::new();
    /// let backend = Arc::new(MemoryBackend::with_clock(clock.clone()));
    /// let fixture = Fixture::new(backend).with_manual_time(move |by| clock.advance(by));
    /// assert!(fixture.is_manual_time());
    /// ```
    #[must_use]
    pub fn with_manual_time(mut self, advance: impl Fn(Duration) + Send + Sync + 'static) -> Self {
        self.advance = Some(Arc::new(advance));
        self.model_cases = Self::MANUAL_MODEL_CASES;
        self
    }

    /// The unit of time the cases count in (timeouts of a few ticks).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use conformance::Fixture;
    /// # use lock_memory::MemoryBackend;
    /// # use std::time::Duration;
    /// let fixture = Fixture::new(Arc::new(MemoryBackend::new())).with_tick(Duration::from_millis(250));
    /// assert_eq!(fixture.ticks(4), Duration::from_secs(1));
    /// ```
    #[must_use]
    pub fn with_tick(mut self, tick: Duration) -> Self {
        self.tick = tick;
        self
    }

    /// How many random sequences the model-based test runs.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use conformance::Fixture;
    /// # use lock_memory::MemoryBackend;
    /// let fixture = Fixture::new(Arc::new(MemoryBackend::new())).with_model_cases(64);
    /// assert_eq!(fixture.model_cases(), 64);
    /// ```
    #[must_use]
    pub fn with_model_cases(mut self, cases: u32) -> Self {
        self.model_cases = cases;
        self
    }

    /// The backend under test.
    ///
    /// # Panics
    ///
    /// If the fixture has none ([`without_backend`](Fixture::without_backend)).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use conformance::Fixture;
    /// # use lock_memory::MemoryBackend;
    /// let fixture = Fixture::new(Arc::new(MemoryBackend::new()));
    /// assert!(fixture.backend().capabilities().fencing);
    /// ```
    pub fn backend(&self) -> &Arc<dyn LockBackend> {
        self.backend
            .as_ref()
            .expect("this fixture has no backend: its case connects its own")
    }

    /// The first resource of type `T` the fixture keeps alive
    /// ([`keep_alive`](Fixture::keep_alive)), if any.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use conformance::Fixture;
    /// # use lock_memory::MemoryBackend;
    /// let fixture = Fixture::new(Arc::new(MemoryBackend::new())).keep_alive(7_u16);
    /// assert_eq!(fixture.resource::<u16>(), Some(&7));
    /// assert_eq!(fixture.resource::<u32>(), None);
    /// ```
    pub fn resource<T: Any>(&self) -> Option<&T> {
        self.keep_alive
            .iter()
            .find_map(|resource| (**resource).downcast_ref::<T>())
    }

    /// The unit of time.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use conformance::Fixture;
    /// # use lock_memory::MemoryBackend;
    /// let fixture = Fixture::new(Arc::new(MemoryBackend::new()));
    /// let timeout = fixture.tick() * 3; // a lock that expires three ticks from now
    /// ```
    pub fn tick(&self) -> Duration {
        self.tick
    }

    /// `n` ticks.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use conformance::Fixture;
    /// # use lock_memory::MemoryBackend;
    /// let fixture = Fixture::new(Arc::new(MemoryBackend::new()));
    /// assert_eq!(fixture.ticks(3), fixture.tick() * 3);
    /// ```
    pub fn ticks(&self, n: u32) -> Duration {
        self.tick * n
    }

    /// How many random sequences the model-based test runs.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use conformance::Fixture;
    /// # use lock_memory::MemoryBackend;
    /// let fixture = Fixture::new(Arc::new(MemoryBackend::new())).with_model_cases(8);
    /// assert_eq!(fixture.model_cases(), 8);
    /// ```
    pub fn model_cases(&self) -> u32 {
        self.model_cases
    }

    /// Whether time is manual (no case sleeps).
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use conformance::Fixture;
    /// # use lock_memory::MemoryBackend;
    /// let fixture = Fixture::new(Arc::new(MemoryBackend::new()));
    /// assert!(!fixture.is_manual_time());
    /// assert!(fixture.with_manual_time(|_| {}).is_manual_time());
    /// ```
    pub fn is_manual_time(&self) -> bool {
        self.advance.is_some()
    }

    /// A clock starting now, to move time forward by exact amounts.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use conformance::Fixture;
    /// # use lock_memory::MemoryBackend;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let fixture = Fixture::new(Arc::new(MemoryBackend::new())).with_manual_time(|_| {});
    /// let mut clock = fixture.clock();
    /// clock.advance(fixture.ticks(2)).await;
    /// assert_eq!(clock.elapsed(), fixture.ticks(2));
    /// # }
    /// ```
    pub fn clock(&self) -> TestClock {
        TestClock {
            advance: self.advance.clone(),
            origin: tokio::time::Instant::now(),
            elapsed: Duration::ZERO,
        }
    }

    /// A lock name no other case, test run or process uses, with `label` in it for people
    /// reading the store.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use conformance::Fixture;
    /// # use lock_memory::MemoryBackend;
    /// let fixture = Fixture::new(Arc::new(MemoryBackend::new()));
    /// let (a, b) = (fixture.unique_name("jobs"), fixture.unique_name("jobs"));
    /// assert!(a.contains("jobs") && a != b);
    /// ```
    pub fn unique_name(&self, label: &str) -> String {
        let token = Token::generate().expect("the system random generator works");
        format!("conformance:{label}:{}", &token.as_str()[..16])
    }

    /// A new handle (a new owner) on `name` with `timeout`.
    ///
    /// # Panics
    ///
    /// If `name` or `timeout` is invalid: the cases only pass valid ones.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use conformance::Fixture;
    /// # use lock_memory::MemoryBackend;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> lock_core::Result<()> {
    /// let fixture = Fixture::new(Arc::new(MemoryBackend::new()));
    /// let name = fixture.unique_name("handle");
    /// let (first, second) = (fixture.handle(&name, fixture.ticks(5)), fixture.handle(&name, fixture.ticks(5)));
    /// assert!(first.lock().await?);
    /// assert!(!second.lock().await?);
    /// # Ok(()) }
    /// ```
    pub fn handle(&self, name: &str, timeout: Duration) -> ProcessLock {
        ProcessLock::new(self.backend().clone(), name, timeout)
            .unwrap_or_else(|e| panic!("a valid name and timeout were rejected: {e}"))
    }

    /// A [`Lock`] on `name` over this fixture's backend, whose guards keep it for `timeout`.
    ///
    /// # Panics
    ///
    /// If `name` or `timeout` is invalid (see [`Lock::new`]): cases pass valid ones.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use conformance::Fixture;
    /// # use lock_memory::MemoryBackend;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> lock_core::Result<()> {
    /// let fixture = Fixture::new(Arc::new(MemoryBackend::new()));
    /// let lock = fixture.guarded(&fixture.unique_name("guarded"), fixture.ticks(5));
    /// let guard = lock.lock().await?;
    /// assert_eq!(guard.release().await?, lock_core::Release::Released);
    /// # Ok(()) }
    /// ```
    pub fn guarded(&self, name: &str, timeout: Duration) -> Lock {
        Lock::new(self.backend().clone(), name, timeout)
            .unwrap_or_else(|e| panic!("a valid name and timeout were rejected: {e}"))
    }
}

impl fmt::Debug for Fixture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fixture")
            .field("backend", &self.backend)
            .field("manual_time", &self.is_manual_time())
            .field("tick", &self.tick)
            .field("model_cases", &self.model_cases)
            .finish()
    }
}

/// Moves time forward for one case: on manual time by calling the fixture's `advance`, on real
/// time by sleeping until `start + total advanced`, so delays do not add up over a case.
///
/// # Examples
///
/// ```
/// # use std::sync::Arc;
/// # use conformance::Fixture;
/// # use lock_memory::MemoryBackend;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let fixture = Fixture::new(Arc::new(MemoryBackend::new())).with_manual_time(|_| {});
/// let mut clock = fixture.clock();
/// clock.advance(fixture.tick()).await;
/// assert_eq!(clock.elapsed(), fixture.tick());
/// # }
/// ```
pub struct TestClock {
    advance: Option<Advance>,
    origin: tokio::time::Instant,
    elapsed: Duration,
}

impl TestClock {
    /// Moves time forward by `by`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use conformance::Fixture;
    /// # use lock_memory::MemoryBackend;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// // On real time, it sleeps until the total advanced since the clock's start.
    /// let fixture = Fixture::new(Arc::new(MemoryBackend::new())).with_tick(std::time::Duration::from_millis(1));
    /// let mut clock = fixture.clock();
    /// clock.advance(fixture.ticks(2)).await;
    /// # }
    /// ```
    pub async fn advance(&mut self, by: Duration) {
        self.elapsed += by;
        match &self.advance {
            Some(advance) => advance(by),
            None => tokio::time::sleep_until(self.origin + self.elapsed).await,
        }
    }

    /// Total time advanced so far.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use conformance::Fixture;
    /// # use lock_memory::MemoryBackend;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let fixture = Fixture::new(Arc::new(MemoryBackend::new())).with_manual_time(|_| {});
    /// let mut clock = fixture.clock();
    /// clock.advance(fixture.ticks(1)).await;
    /// clock.advance(fixture.ticks(2)).await;
    /// assert_eq!(clock.elapsed(), fixture.ticks(3));
    /// # }
    /// ```
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }
}

impl fmt::Debug for TestClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestClock")
            .field("manual", &self.advance.is_some())
            .field("elapsed", &self.elapsed)
            .finish()
    }
}
