//! Redlock: each node sees one name's requests in the order the quorum made them, even when a
//! request lands late, after the quorum has moved on.
//!
//! An acquisition returns once a majority granted it; its request to a slow node is still
//! under way (a script the node must load first takes three round trips; a request resent
//! after a broken connection lands later still), and nothing can recall it. If a later
//! request on the same name overtook it there (a forced release, say), the node would take the
//! lock after its release and keep it until its timeout: a CI run once found the lock set
//! again on one node of five right after a forced release. Here a node whose acquisitions land
//! late (a task started by the request, which runs to the end whatever the caller does, as a
//! request in flight does) is sent a forced release right after the quorum was granted the
//! lock: the node must end free, every round.

use std::sync::Arc;
use std::time::Duration;

use lock_core::quorum::Quorum;
use lock_core::{
    Acquire, Capabilities, FencedAcquire, ForceRelease, LockBackend, LockName, LockState, Release,
    Status, Token, Ttl, Watch, async_trait,
};
use lock_memory::MemoryBackend;

/// How late a slow node's acquisitions land: well within the quorum's per-node timeout, well
/// past its majority's answers.
const LATE: Duration = Duration::from_millis(150);

/// A node whose acquisitions land [`LATE`]; every other request lands at once.
#[derive(Debug)]
struct LateNode {
    store: Arc<MemoryBackend>,
}

impl LateNode {
    /// `request` on the store, after [`LATE`], in a task of its own: once sent, it lands,
    /// whether or not anyone still waits for the answer.
    async fn late<T, F>(&self, request: impl FnOnce(Arc<MemoryBackend>) -> F) -> T
    where
        T: Send + 'static,
        F: Future<Output = T> + Send + 'static,
    {
        let landing = request(self.store.clone());
        let task = tokio::spawn(async move {
            tokio::time::sleep(LATE).await;
            landing.await
        });
        task.await.expect("the late request's task")
    }
}

#[async_trait]
impl LockBackend for LateNode {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            queue: false,
            ..self.store.capabilities()
        }
    }
    async fn try_acquire(&self, n: &LockName, t: &Token, ttl: Ttl) -> lock_core::Result<Acquire> {
        let (n, t) = (n.clone(), t.clone());
        self.late(|store| async move { store.try_acquire(&n, &t, ttl).await })
            .await
    }
    async fn try_acquire_fenced(
        &self,
        n: &LockName,
        t: &Token,
        ttl: Ttl,
    ) -> lock_core::Result<FencedAcquire> {
        let (n, t) = (n.clone(), t.clone());
        self.late(|store| async move { store.try_acquire_fenced(&n, &t, ttl).await })
            .await
    }
    async fn renew(&self, n: &LockName, t: &Token, ttl: Ttl) -> lock_core::Result<bool> {
        self.store.renew(n, t, ttl).await
    }
    async fn release(&self, n: &LockName, t: &Token) -> lock_core::Result<Release> {
        self.store.release(n, t).await
    }
    async fn force_release(&self, n: &LockName) -> lock_core::Result<ForceRelease> {
        self.store.force_release(n).await
    }
    async fn status(&self, n: &LockName) -> lock_core::Result<Status> {
        self.store.status(n).await
    }
    async fn is_held_by(&self, n: &LockName, t: &Token) -> lock_core::Result<bool> {
        self.store.is_held_by(n, t).await
    }
    async fn watch(&self, n: &LockName) -> lock_core::Result<Watch> {
        self.store.watch(n).await
    }
    async fn raise_fence(&self, n: &LockName, t: &Token, floor: u64) -> lock_core::Result<bool> {
        self.store.raise_fence(n, t, floor).await
    }
}

/// Three nodes, the last of them slow; the quorum over them, and the slow node's store.
fn quorum() -> (Quorum, Arc<MemoryBackend>) {
    let slow = Arc::new(MemoryBackend::new());
    let nodes: Vec<Arc<dyn LockBackend>> = vec![
        Arc::new(MemoryBackend::new()),
        Arc::new(MemoryBackend::new()),
        Arc::new(LateNode {
            store: slow.clone(),
        }),
    ];
    let quorum = Quorum::new(nodes)
        .and_then(|q| q.with_node_timeout(Duration::from_secs(1)))
        .expect("three nodes");
    (quorum, slow)
}

/// Acquires (plain or fenced), then force-releases at once, five times: the slow node gets
/// the acquisition late, after the quorum has sent its forced release, and must still end free.
async fn a_late_acquisition_never_outlives_a_later_forced_release(fenced: bool) {
    let (quorum, slow) = quorum();
    let ttl = Ttl::from_secs(30).expect("ttl");
    for round in 0..5 {
        let name = LockName::new(format!("lanes-{fenced}-{round}")).expect("name");
        let token = Token::generate().expect("token");
        let started = tokio::time::Instant::now();
        let granted = if fenced {
            matches!(
                quorum.try_acquire_fenced(&name, &token, ttl).await,
                Ok(FencedAcquire::Acquired { .. })
            )
        } else {
            quorum
                .try_acquire(&name, &token, ttl)
                .await
                .expect("acquire")
                .is_acquired()
        };
        assert!(granted, "round {round}: the majority granted it");
        assert!(
            started.elapsed() < LATE,
            "round {round}: the quorum answered before the slow node (after {:?})",
            started.elapsed()
        );
        assert_eq!(
            quorum.force_release(&name).await.expect("force release"),
            ForceRelease::Released,
            "round {round}"
        );
        // Past the late acquisition's landing.
        tokio::time::sleep(LATE * 2).await;
        let node = slow.status(&name).await.expect("status");
        assert_eq!(
            node.state,
            LockState::Open,
            "round {round}: the slow node took the lock after its forced release"
        );
        assert_eq!(
            quorum.status(&name).await.expect("status").state,
            LockState::Open,
            "round {round}"
        );
    }
}

#[tokio::test]
async fn a_late_acquisition_never_outlives_a_later_forced_release_plain() {
    a_late_acquisition_never_outlives_a_later_forced_release(false).await;
}

#[tokio::test]
async fn a_late_acquisition_never_outlives_a_later_forced_release_fenced() {
    a_late_acquisition_never_outlives_a_later_forced_release(true).await;
}
