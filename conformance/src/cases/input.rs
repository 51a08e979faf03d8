//! Bad input: each invalid name and timeout gives its typed error, and nothing reaches the store.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lock_core::Watch;
use lock_core::queue::{Leave, QueueStep, Waiter};
use lock_core::{
    Acquire, Capabilities, ErrorKind, ForceRelease, LockBackend, LockName, LockState, ProcessLock,
    Release, Result, Status, Token, Ttl, async_trait,
};

use crate::Fixture;

/// Invalid names and timeouts are rejected with [`ErrorKind::InvalidInput`] and a message that
/// says what is wrong, before any request reaches the backend.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::bad_input(&fixture).await;
/// # }
/// ```
pub async fn bad_input(fx: &Fixture) {
    let counting = Arc::new(Counting {
        inner: fx.backend().clone(),
        calls: AtomicUsize::new(0),
    });
    let backend: Arc<dyn LockBackend> = counting.clone();
    let good = fx.unique_name("bad-input");
    let too_long = "x".repeat(LockName::MAX_LEN + 1);
    let valid = Duration::from_secs(30);

    let cases: [(&str, Result<ProcessLock>, &str); 7] = [
        (
            "empty name",
            ProcessLock::new(backend.clone(), "", valid),
            "empty",
        ),
        (
            "long name",
            ProcessLock::new(backend.clone(), &too_long, valid),
            "limit",
        ),
        (
            "zero timeout",
            ProcessLock::new(backend.clone(), &good, Duration::ZERO),
            "zero",
        ),
        (
            "huge timeout",
            ProcessLock::new(backend.clone(), &good, Duration::MAX),
            "too large",
        ),
        (
            "timeout one ms over the limit",
            ProcessLock::new(
                backend.clone(),
                &good,
                Duration::from_millis(Ttl::MAX_MILLIS + 1),
            ),
            "too large",
        ),
        (
            "zero seconds",
            ProcessLock::with_secs(backend.clone(), &good, 0),
            "zero",
        ),
        (
            "seconds overflowing milliseconds",
            ProcessLock::with_secs(backend.clone(), &good, u64::MAX),
            "too large",
        ),
    ];
    for (what, result, says) in cases {
        let err = result.expect_err(what);
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{what}: {err}");
        assert!(
            err.to_string().contains(says),
            "{what}: {err:?} should say {says:?}"
        );
    }
    assert_eq!(
        counting.calls.load(Ordering::SeqCst),
        0,
        "bad input reached the backend"
    );

    // The valid name used above was never written.
    let probe = fx.handle(&good, valid);
    assert_eq!(probe.status().await.unwrap(), LockState::Open);
}

/// Forwards to the backend under test, counting calls.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn LockBackend>,
    calls: AtomicUsize,
}

impl Counting {
    fn count(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl LockBackend for Counting {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn try_acquire(&self, name: &LockName, token: &Token, ttl: Ttl) -> Result<Acquire> {
        self.count();
        self.inner.try_acquire(name, token, ttl).await
    }

    async fn renew(&self, name: &LockName, token: &Token, ttl: Ttl) -> Result<bool> {
        self.count();
        self.inner.renew(name, token, ttl).await
    }

    async fn release(&self, name: &LockName, token: &Token) -> Result<Release> {
        self.count();
        self.inner.release(name, token).await
    }

    async fn force_release(&self, name: &LockName) -> Result<ForceRelease> {
        self.count();
        self.inner.force_release(name).await
    }

    async fn status(&self, name: &LockName) -> Result<Status> {
        self.count();
        self.inner.status(name).await
    }

    async fn is_held_by(&self, name: &LockName, token: &Token) -> Result<bool> {
        self.count();
        self.inner.is_held_by(name, token).await
    }

    async fn queue_step(&self, name: &LockName, waiter: &Waiter) -> Result<QueueStep> {
        self.count();
        self.inner.queue_step(name, waiter).await
    }

    async fn leave_queue(&self, name: &LockName, waiter: &Waiter, keep: bool) -> Result<Leave> {
        self.count();
        self.inner.leave_queue(name, waiter, keep).await
    }

    async fn queue_watch(&self, name: &LockName) -> Result<Watch> {
        self.count();
        self.inner.queue_watch(name).await
    }
}
