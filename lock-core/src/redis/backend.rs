//! [`RedisBackend`]: the [`LockBackend`] of every Redis client, written once over a
//! [`RedisTransport`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::calls::{self, Call};
use super::config::{ReplicaAck, Settings};
use super::keys::{AsKeySpace, KeySpace};
use super::transport::{Deadline, RedisTransport};
use crate::backend::{
    Acquire, Capabilities, FencedAcquire, ForceRelease, LockBackend, Release, Status,
};
use crate::error::{ErrorKind, Result};
use crate::name::LockName;
use crate::notify::Watch;
use crate::queue::{Leave, QueueStep, Waiter};
use crate::token::Token;
use crate::ttl::Ttl;

/// The first pause before sending a request again after its connection broke.
const FIRST_RETRY: Duration = Duration::from_millis(10);
/// The longest pause between two sends of one request.
const MAX_RETRY: Duration = Duration::from_millis(250);

/// Locks in Redis over any [`RedisTransport`]: each operation is one of the
/// [calls](super::calls), run by the transport within the response timeout and read into its
/// outcome.
///
/// A request that meets a broken connection ([`ErrorKind::Connection`]) is sent again, with a
/// backoff from 10 ms doubling up to 250 ms, while the response timeout lasts: every script is
/// idempotent for one token (acquiring again what the token holds only resets its expiry; a
/// release that already landed answers [`Release::Missing`]), so a lock is never taken twice
/// behind the caller's back.
///
/// A client crate builds one from its transport and the [`Settings`] of its builder, and its
/// public backend type wraps it and hands it every operation
/// ([`backend_api!`](crate::redis::backend_api)).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use lock_core::redis::{Deadline, RedisTransport, Reply, ScriptCall};
/// use lock_core::{Watch, async_trait};
///
/// /// A transport that answers every script with 1 (for a unit test of a caller).
/// #[derive(Debug)]
/// struct AlwaysOne;
///
/// #[async_trait]
/// impl RedisTransport for AlwaysOne {
///     fn eval(
///         &self,
///         _call: &ScriptCall,
///         _deadline: Deadline,
///     ) -> impl Future<Output = lock_core::Result<Reply>> + Send {
///         async { Ok(Reply::Int(1)) }
///     }
///
///     fn notifies(&self) -> bool {
///         false
///     }
///
///     async fn watch(&self, _channel: String) -> lock_core::Result<Watch> {
///         Err(lock_core::Error::new(lock_core::ErrorKind::Unsupported, "no Pub/Sub"))
///     }
///
///     async fn watch_grants(&self, channel: String) -> lock_core::Result<Watch> {
///         self.watch(channel).await
///     }
/// }
///
/// use lock_core::redis::{RedisBackend, Settings};
/// let backend = RedisBackend::new(AlwaysOne, &Settings::default());
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> lock_core::Result<()> {
/// # let backend = RedisBackend::new(AlwaysOne, &Settings::default());
/// use lock_core::{LockBackend, LockName, Token};
/// let held = backend.is_held_by(&LockName::new("jobs")?, &Token::generate()?).await?;
/// assert!(held); // AlwaysOne answers 1
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RedisBackend<T> {
    transport: T,
    /// The prefix, and whether releases go out on sharded Pub/Sub (the transport's
    /// [`sharded`](RedisTransport::sharded)).
    space: KeySpace,
    response_timeout: Duration,
    /// The delayed restart rule's delay; `None`: the lock's timeout.
    restart_delay: Option<Duration>,
    /// Replica acknowledgement of every lock taken or renewed.
    replicas: Option<ReplicaAck>,
    /// This backend's id in its waiters' queue members: hand-offs to them are published on
    /// the lock's grant channel for this id.
    grant_id: Arc<str>,
}

impl<T: RedisTransport> RedisBackend<T> {
    /// A backend on `transport`, with the prefix, response timeout and restart delay of
    /// `settings`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use lock_core::redis::{Deadline, RedisTransport, Reply, ScriptCall};
    /// use lock_core::{Watch, async_trait};
    ///
    /// /// A transport that answers every script with 1 (for a unit test of a caller).
    /// #[derive(Debug)]
    /// struct AlwaysOne;
    ///
    /// #[async_trait]
    /// impl RedisTransport for AlwaysOne {
    ///     fn eval(
    ///         &self,
    ///         _call: &ScriptCall,
    ///         _deadline: Deadline,
    ///     ) -> impl Future<Output = lock_core::Result<Reply>> + Send {
    ///         async { Ok(Reply::Int(1)) }
    ///     }
    ///
    ///     fn notifies(&self) -> bool {
    ///         false
    ///     }
    ///
    ///     async fn watch(&self, _channel: String) -> lock_core::Result<Watch> {
    ///         Err(lock_core::Error::new(lock_core::ErrorKind::Unsupported, "no Pub/Sub"))
    ///     }
    ///
    ///     async fn watch_grants(&self, channel: String) -> lock_core::Result<Watch> {
    ///         self.watch(channel).await
    ///     }
    /// }
    ///
    /// use lock_core::redis::{RedisBackend, Settings};
    /// let backend = RedisBackend::new(AlwaysOne, &Settings::default());
    /// assert_eq!(backend.prefix(), "");
    /// ```
    pub fn new(transport: T, settings: &Settings) -> Self {
        RedisBackend {
            space: KeySpace::new(&settings.prefix).sharded(transport.sharded()),
            transport,
            response_timeout: settings.response_timeout,
            restart_delay: settings.restart_delay,
            replicas: settings.replicas,
            grant_id: grant_id().into(),
        }
    }

    /// The transport.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use lock_core::redis::{Deadline, RedisTransport, Reply, ScriptCall};
    /// use lock_core::{Watch, async_trait};
    ///
    /// /// A transport that answers every script with 1 (for a unit test of a caller).
    /// #[derive(Debug)]
    /// struct AlwaysOne;
    ///
    /// #[async_trait]
    /// impl RedisTransport for AlwaysOne {
    ///     fn eval(
    ///         &self,
    ///         _call: &ScriptCall,
    ///         _deadline: Deadline,
    ///     ) -> impl Future<Output = lock_core::Result<Reply>> + Send {
    ///         async { Ok(Reply::Int(1)) }
    ///     }
    ///
    ///     fn notifies(&self) -> bool {
    ///         false
    ///     }
    ///
    ///     async fn watch(&self, _channel: String) -> lock_core::Result<Watch> {
    ///         Err(lock_core::Error::new(lock_core::ErrorKind::Unsupported, "no Pub/Sub"))
    ///     }
    ///
    ///     async fn watch_grants(&self, channel: String) -> lock_core::Result<Watch> {
    ///         self.watch(channel).await
    ///     }
    /// }
    ///
    /// use lock_core::redis::{RedisBackend, Settings};
    /// let backend = RedisBackend::new(AlwaysOne, &Settings::default());
    /// let _: &AlwaysOne = backend.transport();
    /// ```
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The key prefix (empty by default).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use lock_core::redis::{Deadline, RedisTransport, Reply, ScriptCall};
    /// use lock_core::{Watch, async_trait};
    ///
    /// /// A transport that answers every script with 1 (for a unit test of a caller).
    /// #[derive(Debug)]
    /// struct AlwaysOne;
    ///
    /// #[async_trait]
    /// impl RedisTransport for AlwaysOne {
    ///     fn eval(
    ///         &self,
    ///         _call: &ScriptCall,
    ///         _deadline: Deadline,
    ///     ) -> impl Future<Output = lock_core::Result<Reply>> + Send {
    ///         async { Ok(Reply::Int(1)) }
    ///     }
    ///
    ///     fn notifies(&self) -> bool {
    ///         false
    ///     }
    ///
    ///     async fn watch(&self, _channel: String) -> lock_core::Result<Watch> {
    ///         Err(lock_core::Error::new(lock_core::ErrorKind::Unsupported, "no Pub/Sub"))
    ///     }
    ///
    ///     async fn watch_grants(&self, channel: String) -> lock_core::Result<Watch> {
    ///         self.watch(channel).await
    ///     }
    /// }
    ///
    /// use lock_core::redis::{RedisBackend, Settings};
    /// let mut settings = Settings::default();
    /// settings.prefix = "app:".into();
    /// assert_eq!(RedisBackend::new(AlwaysOne, &settings).prefix(), "app:");
    /// ```
    pub fn prefix(&self) -> &str {
        self.space.prefix()
    }

    /// How long one operation may take, sending it again included.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use lock_core::redis::{Deadline, RedisTransport, Reply, ScriptCall};
    /// use lock_core::{Watch, async_trait};
    ///
    /// /// A transport that answers every script with 1 (for a unit test of a caller).
    /// #[derive(Debug)]
    /// struct AlwaysOne;
    ///
    /// #[async_trait]
    /// impl RedisTransport for AlwaysOne {
    ///     fn eval(
    ///         &self,
    ///         _call: &ScriptCall,
    ///         _deadline: Deadline,
    ///     ) -> impl Future<Output = lock_core::Result<Reply>> + Send {
    ///         async { Ok(Reply::Int(1)) }
    ///     }
    ///
    ///     fn notifies(&self) -> bool {
    ///         false
    ///     }
    ///
    ///     async fn watch(&self, _channel: String) -> lock_core::Result<Watch> {
    ///         Err(lock_core::Error::new(lock_core::ErrorKind::Unsupported, "no Pub/Sub"))
    ///     }
    ///
    ///     async fn watch_grants(&self, channel: String) -> lock_core::Result<Watch> {
    ///         self.watch(channel).await
    ///     }
    /// }
    ///
    /// use lock_core::redis::{RedisBackend, Settings};
    /// let backend = RedisBackend::new(AlwaysOne, &Settings::default());
    /// assert_eq!(backend.response_timeout(), lock_core::redis::DEFAULT_RESPONSE_TIMEOUT);
    /// ```
    pub fn response_timeout(&self) -> Duration {
        self.response_timeout
    }

    /// The delayed restart rule's delay; `None`: each lock's own timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use lock_core::redis::{Deadline, RedisTransport, Reply, ScriptCall};
    /// use lock_core::{Watch, async_trait};
    ///
    /// /// A transport that answers every script with 1 (for a unit test of a caller).
    /// #[derive(Debug)]
    /// struct AlwaysOne;
    ///
    /// #[async_trait]
    /// impl RedisTransport for AlwaysOne {
    ///     fn eval(
    ///         &self,
    ///         _call: &ScriptCall,
    ///         _deadline: Deadline,
    ///     ) -> impl Future<Output = lock_core::Result<Reply>> + Send {
    ///         async { Ok(Reply::Int(1)) }
    ///     }
    ///
    ///     fn notifies(&self) -> bool {
    ///         false
    ///     }
    ///
    ///     async fn watch(&self, _channel: String) -> lock_core::Result<Watch> {
    ///         Err(lock_core::Error::new(lock_core::ErrorKind::Unsupported, "no Pub/Sub"))
    ///     }
    ///
    ///     async fn watch_grants(&self, channel: String) -> lock_core::Result<Watch> {
    ///         self.watch(channel).await
    ///     }
    /// }
    ///
    /// use lock_core::redis::{RedisBackend, Settings};
    /// let backend = RedisBackend::new(AlwaysOne, &Settings::default());
    /// assert_eq!(backend.restart_delay(), None); // each lock's own timeout
    /// ```
    pub fn restart_delay(&self) -> Option<Duration> {
        self.restart_delay
    }

    /// This backend with the delayed restart rule's delay `delay` (`None`: each lock's own
    /// timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use lock_core::redis::{Deadline, RedisTransport, Reply, ScriptCall};
    /// use lock_core::{Watch, async_trait};
    ///
    /// /// A transport that answers every script with 1 (for a unit test of a caller).
    /// #[derive(Debug)]
    /// struct AlwaysOne;
    ///
    /// #[async_trait]
    /// impl RedisTransport for AlwaysOne {
    ///     fn eval(
    ///         &self,
    ///         _call: &ScriptCall,
    ///         _deadline: Deadline,
    ///     ) -> impl Future<Output = lock_core::Result<Reply>> + Send {
    ///         async { Ok(Reply::Int(1)) }
    ///     }
    ///
    ///     fn notifies(&self) -> bool {
    ///         false
    ///     }
    ///
    ///     async fn watch(&self, _channel: String) -> lock_core::Result<Watch> {
    ///         Err(lock_core::Error::new(lock_core::ErrorKind::Unsupported, "no Pub/Sub"))
    ///     }
    ///
    ///     async fn watch_grants(&self, channel: String) -> lock_core::Result<Watch> {
    ///         self.watch(channel).await
    ///     }
    /// }
    ///
    /// use lock_core::redis::{RedisBackend, Settings};
    /// let backend = RedisBackend::new(AlwaysOne, &Settings::default());
    /// let backend = backend.with_restart_delay(Some(std::time::Duration::ZERO));
    /// assert_eq!(backend.restart_delay(), Some(std::time::Duration::ZERO));
    /// ```
    #[must_use]
    pub fn with_restart_delay(mut self, delay: Option<Duration>) -> Self {
        self.restart_delay = delay;
        self
    }

    /// Runs `call` within the response timeout, sending it again after a broken connection
    /// (see the [type's docs](RedisBackend)), and reads its answer.
    ///
    /// # Errors
    ///
    /// The transport's (see [`RedisTransport::eval`]), or
    /// [`ErrorKind::UnexpectedReply`] for an answer the script never gives.
    ///
    /// # Cancel safety
    ///
    /// As [`RedisTransport::eval`]'s: the script may or may not have run.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use lock_core::redis::{Deadline, RedisTransport, Reply, ScriptCall};
    /// use lock_core::{Watch, async_trait};
    ///
    /// /// A transport that answers every script with 1 (for a unit test of a caller).
    /// #[derive(Debug)]
    /// struct AlwaysOne;
    ///
    /// #[async_trait]
    /// impl RedisTransport for AlwaysOne {
    ///     fn eval(
    ///         &self,
    ///         _call: &ScriptCall,
    ///         _deadline: Deadline,
    ///     ) -> impl Future<Output = lock_core::Result<Reply>> + Send {
    ///         async { Ok(Reply::Int(1)) }
    ///     }
    ///
    ///     fn notifies(&self) -> bool {
    ///         false
    ///     }
    ///
    ///     async fn watch(&self, _channel: String) -> lock_core::Result<Watch> {
    ///         Err(lock_core::Error::new(lock_core::ErrorKind::Unsupported, "no Pub/Sub"))
    ///     }
    ///
    ///     async fn watch_grants(&self, channel: String) -> lock_core::Result<Watch> {
    ///         self.watch(channel).await
    ///     }
    /// }
    ///
    /// use lock_core::redis::{RedisBackend, Settings};
    /// let backend = RedisBackend::new(AlwaysOne, &Settings::default());
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> lock_core::Result<()> {
    /// # let backend = RedisBackend::new(AlwaysOne, &Settings::default());
    /// use lock_core::redis::calls;
    /// use lock_core::{LockName, Token, Ttl};
    /// let call = calls::renew("", &LockName::new("jobs")?, &Token::generate()?, Ttl::from_secs(30)?);
    /// assert!(backend.run(&call).await?);
    /// # Ok(()) }
    /// ```
    pub async fn run<R>(&self, call: &Call<R>) -> Result<R> {
        let deadline = Deadline::after(self.response_timeout);
        let reply = resend(deadline, || self.transport.eval(call.script(), deadline)).await?;
        call.read(reply)
    }
}

/// The answer of `send`, sent again (with backoff) after a connection error while `deadline`
/// leaves time: every script may safely run twice.
async fn resend<T, F>(deadline: Deadline, mut send: impl FnMut() -> F) -> Result<T>
where
    F: Future<Output = Result<T>>,
{
    let mut backoff = FIRST_RETRY;
    loop {
        match send().await {
            Ok(answer) => return Ok(answer),
            Err(e)
                if e.kind() == ErrorKind::Connection && Instant::now() + backoff < deadline.at =>
            {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_RETRY);
            }
            Err(e) => return Err(e),
        }
    }
}

impl<T: RedisTransport> RedisBackend<T> {
    /// Runs `call` as [`run`](Self::run) does, and then, with replica acknowledgement and an
    /// outcome that `wrote` the lock for `token`, checks that enough replicas have it: with
    /// fewer, fails with [`ErrorKind::NotReplicated`], after releasing the lock again when
    /// `undo` (an acquisition).
    async fn run_replicated<R>(
        &self,
        call: &Call<R>,
        (name, token): (&LockName, &Token),
        wrote: fn(&R) -> bool,
        undo: bool,
    ) -> Result<R> {
        let Some(ack) = self.replicas else {
            return self.run(call).await;
        };
        // Two waits: the `WAIT` pipelined after a script the server does not have yet (a first
        // use, a restart, a `SCRIPT FLUSH`) runs although the script was refused, and waits
        // for the connection's earlier writes; the script is then sent again whole (`EVAL`)
        // with its own `WAIT`.
        let deadline = Deadline::after(self.response_timeout + ack.timeout() * 2);
        let send = || self.transport.eval_replicated(call.script(), ack, deadline);
        let (reply, waited) = resend(deadline, send).await?;
        let outcome = call.read(reply)?;
        if !wrote(&outcome) {
            return Ok(outcome);
        }
        let Err((kind, what)) = calls::read_replica_wait(ack, &waited) else {
            return Ok(outcome);
        };
        let then = if !undo {
            "the renewal counts as failed"
        } else if self.release(name, token).await.is_ok() {
            "the lock was released again"
        } else {
            "releasing it again failed too: it expires at its timeout"
        };
        Err(crate::Error::new(
            kind,
            format!("{} of {name}: {what}; {then}", call.script().op),
        ))
    }
}

/// 16 random hex digits: a backend's id among the waiters of a lock (see
/// [`calls::member`]).
fn grant_id() -> String {
    Token::generate().map_or_else(
        |_| format!("{:016x}", std::process::id()),
        |token| token.as_str()[..16].to_owned(),
    )
}

#[async_trait]
impl<T: RedisTransport> LockBackend for RedisBackend<T> {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            remaining_ttl: true,
            notify: self.transport.notifies(),
            fencing: true,
            queue: self.transport.notifies(),
            raise_fence: true,
        }
    }

    async fn try_acquire(&self, name: &LockName, token: &Token, ttl: Ttl) -> Result<Acquire> {
        let call = calls::acquire(&self.space, name, token, ttl, self.restart_delay);
        let wrote: fn(&Acquire) -> bool = |a| a.is_acquired();
        self.run_replicated(&call, (name, token), wrote, true).await
    }

    async fn renew(&self, name: &LockName, token: &Token, ttl: Ttl) -> Result<bool> {
        let call = calls::renew(&self.space, name, token, ttl);
        let wrote: fn(&bool) -> bool = |renewed| *renewed;
        self.run_replicated(&call, (name, token), wrote, false)
            .await
    }

    async fn release(&self, name: &LockName, token: &Token) -> Result<Release> {
        self.run(&calls::release(&self.space, name, token)).await
    }

    async fn force_release(&self, name: &LockName) -> Result<ForceRelease> {
        self.run(&calls::force_release(&self.space, name)).await
    }

    async fn status(&self, name: &LockName) -> Result<Status> {
        self.run(&calls::status(&self.space, name)).await
    }

    async fn is_held_by(&self, name: &LockName, token: &Token) -> Result<bool> {
        let call = calls::is_held_by(&self.space, name, token);
        self.run(&call).await
    }

    async fn try_acquire_fenced(
        &self,
        name: &LockName,
        token: &Token,
        ttl: Ttl,
    ) -> Result<FencedAcquire> {
        let call = calls::acquire_fenced(&self.space, name, token, ttl, self.restart_delay);
        let wrote: fn(&FencedAcquire) -> bool = |a| matches!(a, FencedAcquire::Acquired { .. });
        self.run_replicated(&call, (name, token), wrote, true).await
    }

    async fn watch(&self, name: &LockName) -> Result<Watch> {
        let channel = calls::watch_channel(&self.space, name);
        self.transport.watch(channel).await
    }

    async fn queue_step(&self, name: &LockName, waiter: &Waiter) -> Result<QueueStep> {
        let (prefix, id) = (&self.space, &self.grant_id);
        let call = calls::queue_step(prefix, name, waiter, id, self.restart_delay);
        let wrote: fn(&QueueStep) -> bool = |step| matches!(step, QueueStep::Acquired { .. });
        let token = &waiter.token;
        self.run_replicated(&call, (name, token), wrote, true).await
    }

    async fn leave_queue(&self, name: &LockName, waiter: &Waiter, keep: bool) -> Result<Leave> {
        let call = calls::leave_queue(&self.space, name, waiter, &self.grant_id, keep);
        self.run(&call).await
    }

    async fn queue_watch(&self, name: &LockName) -> Result<Watch> {
        if !self.transport.notifies() {
            return Err(crate::Error::new(
                ErrorKind::Unsupported,
                "this backend was built without notification, which its waiter queue needs",
            ));
        }
        let channel = calls::grant_channel(&self.space, name, &self.grant_id);
        self.transport.watch_grants(channel).await
    }

    async fn raise_fence(&self, name: &LockName, token: &Token, floor: u64) -> Result<bool> {
        self.run(&calls::raise_fence(&self.space, name, token, floor))
            .await
    }
}
