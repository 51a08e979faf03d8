//! A guard's renewal under faults the store itself does not show: renewals that fail now and
//! then, and replies that come late. These check `lock_core`'s guard on every backend: it must
//! retry a failed renewal while its lock is still valid, and count that validity from when
//! each request was sent, never from when its reply came.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lock_core::queue::{Leave, QueueStep, Waiter};
use lock_core::{
    Acquire, Capabilities, Cleared, Error, ErrorKind, FencedAcquire, ForceRelease, Lock,
    LockBackend, LockName, Release, Renewal, Result, Status, Token, Ttl, Watch, async_trait,
};
use tokio::time::Instant;

use crate::Fixture;

/// Lets `by` pass for the guard (real time) and for the store (its own clock, manual or real).
async fn pass(fx: &Fixture, by: Duration) {
    let mut clock = fx.clock();
    tokio::time::sleep(by).await;
    if fx.is_manual_time() {
        clock.advance(by).await;
    }
}

/// Passes requests through to the wrapped backend, except that the next `failures` renewals
/// fail at once with [`ErrorKind::Connection`] (a retryable error, as a dropped connection
/// gives), and that, once [`delay`](Faulty::delay) is set, every acquire's and renewal's reply
/// is held back that long after the store answered, as a slow network would. It notes when it
/// handed each such reply over.
#[derive(Debug)]
struct Faulty {
    inner: Arc<dyn LockBackend>,
    failures: AtomicUsize,
    renewals: AtomicUsize,
    delay: Mutex<Duration>,
    replied: Mutex<Option<Instant>>,
}

impl Faulty {
    fn new(inner: Arc<dyn LockBackend>) -> Arc<Self> {
        Arc::new(Faulty {
            inner,
            failures: AtomicUsize::new(0),
            renewals: AtomicUsize::new(0),
            delay: Mutex::new(Duration::ZERO),
            replied: Mutex::new(None),
        })
    }

    fn fail_renewals(&self, failures: usize) {
        self.failures.store(failures, Ordering::SeqCst);
    }

    fn delay(&self, delay: Duration) {
        *self.delay.lock().unwrap() = delay;
    }

    /// When the last delayed reply was handed over.
    fn replied(&self) -> Option<Instant> {
        *self.replied.lock().unwrap()
    }

    async fn late<T>(&self, reply: T) -> T {
        let delay = *self.delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
            *self.replied.lock().unwrap() = Some(Instant::now());
        }
        reply
    }
}

#[async_trait]
impl LockBackend for Faulty {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn try_acquire(&self, name: &LockName, token: &Token, ttl: Ttl) -> Result<Acquire> {
        let reply = self.inner.try_acquire(name, token, ttl).await;
        self.late(reply).await
    }

    async fn renew(&self, name: &LockName, token: &Token, ttl: Ttl) -> Result<bool> {
        self.renewals.fetch_add(1, Ordering::SeqCst);
        let failing = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(Error::new(
                ErrorKind::Connection,
                "the test failed this renewal",
            ));
        }
        let reply = self.inner.renew(name, token, ttl).await;
        self.late(reply).await
    }

    async fn release(&self, name: &LockName, token: &Token) -> Result<Release> {
        self.inner.release(name, token).await
    }

    async fn force_release(&self, name: &LockName) -> Result<ForceRelease> {
        self.inner.force_release(name).await
    }

    async fn status(&self, name: &LockName) -> Result<Status> {
        self.inner.status(name).await
    }

    async fn is_held_by(&self, name: &LockName, token: &Token) -> Result<bool> {
        self.inner.is_held_by(name, token).await
    }

    async fn try_acquire_fenced(
        &self,
        name: &LockName,
        token: &Token,
        ttl: Ttl,
    ) -> Result<FencedAcquire> {
        let reply = self.inner.try_acquire_fenced(name, token, ttl).await;
        self.late(reply).await
    }

    async fn watch(&self, name: &LockName) -> Result<Watch> {
        self.inner.watch(name).await
    }

    async fn queue_step(&self, name: &LockName, waiter: &Waiter) -> Result<QueueStep> {
        let reply = self.inner.queue_step(name, waiter).await;
        self.late(reply).await
    }

    async fn leave_queue(&self, name: &LockName, waiter: &Waiter, keep: bool) -> Result<Leave> {
        self.inner.leave_queue(name, waiter, keep).await
    }

    async fn queue_watch(&self, name: &LockName) -> Result<Watch> {
        self.inner.queue_watch(name).await
    }
}

/// A guard whose renewals fail (twice in a row, with a retryable error) while its lock is
/// still valid tries again and keeps the lock: past the timeout of its acquire, it still holds
/// it and no one else can take it. A guard that gave the lock up after one failed renewal
/// fails.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::guard_keeps_its_lock_through_failed_renewals(&fixture).await;
/// # }
/// ```
pub async fn guard_keeps_its_lock_through_failed_renewals(fx: &Fixture) {
    let name = fx.unique_name("failed-renewals");
    let ttl = fx.ticks(6);
    let link = Faulty::new(fx.backend().clone());
    let guard = Lock::new(link.clone(), &name, ttl)
        .unwrap()
        .lock()
        .await
        .unwrap();
    link.fail_renewals(2);
    let other = fx.handle(&name, ttl);
    // Past the acquire's timeout by 2 ticks: only renewals after the failures kept it.
    for _ in 0..8 {
        pass(fx, fx.tick()).await;
        assert!(
            guard.is_held(),
            "the guard gave its lock up after a failed renewal: {:?}",
            guard.try_lost()
        );
        assert!(!other.lock().await.unwrap(), "the guard's lock was taken");
    }
    assert_eq!(
        link.failures.load(Ordering::SeqCst),
        0,
        "the renewals were due and failed"
    );
    assert!(
        link.renewals.load(Ordering::SeqCst) >= 3,
        "a renewal after the failures"
    );
    assert_eq!(guard.release().await.unwrap(), Release::Released);
    assert!(other.lock().await.unwrap(), "released, so free");
    assert_eq!(other.clear(false).await.unwrap(), Cleared::Cleared);
}

/// With every acquire's and renewal's reply 2 ticks late (a third of the timeout, far more than
/// the drift allowance), a guard trusts its lock only until a timeout, less the drift
/// allowance, from when the request was *sent*: at least the delay before the reply came. A
/// guard counting from the reply would trust the lock up to the delay longer than the store
/// keeps it.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::guard_validity_counts_from_the_request_not_the_reply(&fixture).await;
/// # }
/// ```
pub async fn guard_validity_counts_from_the_request_not_the_reply(fx: &Fixture) {
    let name = fx.unique_name("late-replies");
    let ttl = fx.ticks(6);
    let delay = fx.ticks(2);
    let trusted = ttl - Renewal::drift(Ttl::new(ttl).unwrap());
    let link = Faulty::new(fx.backend().clone());
    let lock = Lock::new(link.clone(), &name, ttl).unwrap();
    link.delay(delay);
    let guard = lock.lock().await.unwrap();
    let replied = link.replied().expect("the acquire's reply was delayed");
    let valid_until = guard.valid_until().expect("held");
    // Counted from the request: sent at least `delay` before the reply came.
    assert!(
        valid_until + delay / 2 <= replied + trusted,
        "after the acquire, trusted until {:?} after the reply came: counted from the reply",
        valid_until - replied
    );

    // The first renewal is due a third of the timeout after the acquire was sent; its reply
    // comes `delay` later. Wait for it, then check the same of it.
    let deadline = Instant::now() + ttl;
    let renewed = loop {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let now = guard.valid_until().expect("the guard kept its lock");
        if now != valid_until {
            break now;
        }
        assert!(Instant::now() < deadline, "no renewal was confirmed");
    };
    let replied = link.replied().expect("the renewal's reply was delayed");
    assert!(
        renewed + delay / 2 <= replied + trusted,
        "after a renewal, trusted until {:?} after the reply came: counted from the reply",
        renewed - replied
    );
    link.delay(Duration::ZERO);
    assert_eq!(guard.release().await.unwrap(), Release::Released);
}
