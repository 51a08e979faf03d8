//! [`Cuttable`]: a backend wrapper whose link to the store can be cut, to test what the lock
//! does when its store cannot be reached, on every backend alike.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use lock_core::queue::{Leave, QueueStep, Waiter};
use lock_core::{
    Acquire, Capabilities, Error, ErrorKind, FencedAcquire, ForceRelease, LockBackend, LockName,
    Release, Result, Status, Token, Ttl, Watch, async_trait,
};

/// How a cut link fails.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> lock_core::Result<()> {
/// use std::sync::Arc;
/// use conformance::faults::{Cut, Cuttable};
/// use lock_core::{ErrorKind, ProcessLock};
/// use lock_memory::MemoryBackend;
///
/// let link = Cuttable::new(Arc::new(MemoryBackend::new()));
/// let lock = ProcessLock::new(link.clone(), "jobs", std::time::Duration::from_secs(5))?;
/// link.cut(Cut::Refuse);
/// assert_eq!(lock.lock().await.unwrap_err().kind(), ErrorKind::Connection);
/// link.mend();
/// assert!(lock.lock().await?);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cut {
    /// Every request fails at once with [`ErrorKind::Connection`] (a refused connection).
    Refuse,
    /// Every request waits forever (a paused server, a partition that drops packets).
    Hang,
}

/// Passes every request through to the wrapped backend until [`cut`](Cuttable::cut), then
/// fails them as told; [`mend`](Cuttable::mend) restores the link.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> lock_core::Result<()> {
/// use std::sync::Arc;
/// use conformance::faults::{Cut, Cuttable};
/// use lock_core::{ErrorKind, ProcessLock};
/// use lock_memory::MemoryBackend;
///
/// let link = Cuttable::new(Arc::new(MemoryBackend::new()));
/// let lock = ProcessLock::new(link.clone(), "jobs", std::time::Duration::from_secs(5))?;
/// link.cut(Cut::Refuse);
/// assert_eq!(lock.lock().await.unwrap_err().kind(), ErrorKind::Connection);
/// link.mend();
/// assert!(lock.lock().await?);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Cuttable {
    inner: Arc<dyn LockBackend>,
    state: AtomicU8,
}

const OPEN: u8 = 0;
const REFUSE: u8 = 1;
const HANG: u8 = 2;

impl Cuttable {
    /// Wraps `inner`, with the link open.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> lock_core::Result<()> {
    /// use std::sync::Arc;
    /// use conformance::faults::{Cut, Cuttable};
    /// use lock_core::{ErrorKind, ProcessLock};
    /// use lock_memory::MemoryBackend;
    ///
    /// let link = Cuttable::new(Arc::new(MemoryBackend::new()));
    /// let lock = ProcessLock::new(link.clone(), "jobs", std::time::Duration::from_secs(5))?;
    /// link.cut(Cut::Refuse);
    /// assert_eq!(lock.lock().await.unwrap_err().kind(), ErrorKind::Connection);
    /// link.mend();
    /// assert!(lock.lock().await?);
    /// # Ok(()) }
    /// ```
    pub fn new(inner: Arc<dyn LockBackend>) -> Arc<Self> {
        Arc::new(Cuttable {
            inner,
            state: AtomicU8::new(OPEN),
        })
    }

    /// Cuts the link: requests from now on fail as `how` says.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> lock_core::Result<()> {
    /// use std::sync::Arc;
    /// use conformance::faults::{Cut, Cuttable};
    /// use lock_core::{ErrorKind, ProcessLock};
    /// use lock_memory::MemoryBackend;
    ///
    /// let link = Cuttable::new(Arc::new(MemoryBackend::new()));
    /// let lock = ProcessLock::new(link.clone(), "jobs", std::time::Duration::from_secs(5))?;
    /// link.cut(Cut::Refuse);
    /// assert_eq!(lock.lock().await.unwrap_err().kind(), ErrorKind::Connection);
    /// link.mend();
    /// assert!(lock.lock().await?);
    /// # Ok(()) }
    /// ```
    pub fn cut(&self, how: Cut) {
        let state = match how {
            Cut::Refuse => REFUSE,
            Cut::Hang => HANG,
        };
        self.state.store(state, Ordering::SeqCst);
    }

    /// Restores the link.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> lock_core::Result<()> {
    /// use std::sync::Arc;
    /// use conformance::faults::{Cut, Cuttable};
    /// use lock_core::{ErrorKind, ProcessLock};
    /// use lock_memory::MemoryBackend;
    ///
    /// let link = Cuttable::new(Arc::new(MemoryBackend::new()));
    /// let lock = ProcessLock::new(link.clone(), "jobs", std::time::Duration::from_secs(5))?;
    /// link.cut(Cut::Refuse);
    /// assert_eq!(lock.lock().await.unwrap_err().kind(), ErrorKind::Connection);
    /// link.mend();
    /// assert!(lock.lock().await?);
    /// # Ok(()) }
    /// ```
    pub fn mend(&self) {
        self.state.store(OPEN, Ordering::SeqCst);
    }

    async fn pass(&self) -> Result<()> {
        match self.state.load(Ordering::SeqCst) {
            OPEN => Ok(()),
            REFUSE => Err(Error::new(
                ErrorKind::Connection,
                "the test cut the link to the store",
            )),
            _ => std::future::pending().await,
        }
    }
}

#[async_trait]
impl LockBackend for Cuttable {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn try_acquire(&self, name: &LockName, token: &Token, ttl: Ttl) -> Result<Acquire> {
        self.pass().await?;
        self.inner.try_acquire(name, token, ttl).await
    }

    async fn renew(&self, name: &LockName, token: &Token, ttl: Ttl) -> Result<bool> {
        self.pass().await?;
        self.inner.renew(name, token, ttl).await
    }

    async fn release(&self, name: &LockName, token: &Token) -> Result<Release> {
        self.pass().await?;
        self.inner.release(name, token).await
    }

    async fn force_release(&self, name: &LockName) -> Result<ForceRelease> {
        self.pass().await?;
        self.inner.force_release(name).await
    }

    async fn status(&self, name: &LockName) -> Result<Status> {
        self.pass().await?;
        self.inner.status(name).await
    }

    async fn is_held_by(&self, name: &LockName, token: &Token) -> Result<bool> {
        self.pass().await?;
        self.inner.is_held_by(name, token).await
    }

    async fn try_acquire_fenced(
        &self,
        name: &LockName,
        token: &Token,
        ttl: Ttl,
    ) -> Result<FencedAcquire> {
        self.pass().await?;
        self.inner.try_acquire_fenced(name, token, ttl).await
    }

    async fn watch(&self, name: &LockName) -> Result<Watch> {
        self.pass().await?;
        self.inner.watch(name).await
    }

    async fn queue_step(&self, name: &LockName, waiter: &Waiter) -> Result<QueueStep> {
        self.pass().await?;
        self.inner.queue_step(name, waiter).await
    }

    async fn leave_queue(&self, name: &LockName, waiter: &Waiter, keep: bool) -> Result<Leave> {
        self.pass().await?;
        self.inner.leave_queue(name, waiter, keep).await
    }

    async fn queue_watch(&self, name: &LockName) -> Result<Watch> {
        self.pass().await?;
        self.inner.queue_watch(name).await
    }
}
