//! A backend without an optional capability: its cases are reported as ignored by name, and a
//! case it does not declare, but is not excused from, fails.

use std::sync::Arc;

use conformance::{Fixture, capability, check_lacks, run_case};
use lock_core::{
    Acquire, Capabilities, ForceRelease, LockBackend, LockName, Release, Result, Status, Token,
    Ttl, async_trait,
};
use lock_memory::{ManualClock, MemoryBackend};

/// The memory backend with every optional capability hidden, like a store that cannot report
/// remaining times, notify waiters or count acquisitions: waiting falls back to polling, and
/// guards get no fence.
#[derive(Debug)]
struct NoRemainingTtl(MemoryBackend);

#[async_trait]
impl LockBackend for NoRemainingTtl {
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    async fn try_acquire(&self, name: &LockName, token: &Token, ttl: Ttl) -> Result<Acquire> {
        Ok(match self.0.try_acquire(name, token, ttl).await? {
            Acquire::Held { .. } => Acquire::Held { remaining: None },
            other => other,
        })
    }

    async fn renew(&self, name: &LockName, token: &Token, ttl: Ttl) -> Result<bool> {
        self.0.renew(name, token, ttl).await
    }

    async fn release(&self, name: &LockName, token: &Token) -> Result<Release> {
        self.0.release(name, token).await
    }

    async fn force_release(&self, name: &LockName) -> Result<ForceRelease> {
        self.0.force_release(name).await
    }

    async fn is_held_by(&self, name: &LockName, token: &Token) -> Result<bool> {
        self.0.is_held_by(name, token).await
    }

    async fn status(&self, name: &LockName) -> Result<Status> {
        let status = self.0.status(name).await?;
        Ok(match status.state {
            lock_core::LockState::Open => Status::open(),
            lock_core::LockState::Locked => Status::locked(None),
        })
    }
}

async fn fixture() -> Fixture {
    let clock = ManualClock::new();
    let backend = Arc::new(NoRemainingTtl(MemoryBackend::with_clock(clock.clone())));
    Fixture::new(backend).with_manual_time(move |by| clock.advance(by))
}

// `remaining_ttl` is generated with #[ignore = "the backend lacks the remaining_ttl capability"],
// and so on.
conformance::suite!(fixture, without = [remaining_ttl, notify, fencing, queue]);

#[test]
fn the_skipped_cases_really_are_unsupported() {
    check_lacks(fixture, capability::remaining_ttl);
    check_lacks(fixture, capability::notify);
    check_lacks(fixture, capability::fencing);
    check_lacks(fixture, capability::queue);
}

#[test]
fn guards_of_a_backend_without_fencing_have_no_fence() {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let fx = fixture().await;
        let guard = fx
            .guarded("no-fence", std::time::Duration::from_secs(5))
            .lock()
            .await
            .unwrap();
        assert_eq!(guard.fence(), None);
        let err = fx
            .backend()
            .watch(guard.name())
            .await
            .expect_err("no notification");
        assert_eq!(err.kind(), lock_core::ErrorKind::Unsupported);
        assert!(err.to_string().contains("notification"), "{err}");
        assert_eq!(guard.release().await.unwrap(), lock_core::Release::Released);
    });
}

#[test]
#[should_panic(expected = "add `without = [remaining_ttl]`")]
fn an_undeclared_capability_fails_instead_of_passing() {
    run_case(fixture, "remaining_ttl");
}

#[test]
#[should_panic(expected = "declares the remaining_ttl capability")]
fn excusing_a_backend_that_has_the_capability_fails() {
    check_lacks(
        || async { Fixture::new(Arc::new(MemoryBackend::new())) },
        capability::remaining_ttl,
    );
}
