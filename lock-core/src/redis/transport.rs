//! [`RedisTransport`]: all a Redis client has to do for the protocol, which is written once, in
//! [`RedisBackend`](super::RedisBackend), on top of it.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::calls::ScriptCall;
use super::config::ReplicaAck;
use super::reply::Reply;
use crate::error::Result;
use crate::notify::Watch;

/// When one operation must be over: [`at`](Deadline::at), which is
/// [`within`](Deadline::within) (the response timeout) after it started.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use lock_core::redis::Deadline;
///
/// let deadline = Deadline::after(Duration::from_secs(2));
/// assert_eq!(deadline.within, Duration::from_secs(2));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// The instant the operation must be over by.
    pub at: Instant,
    /// The time the operation was allowed in all, for messages.
    pub within: Duration,
}

impl Deadline {
    /// The deadline of an operation starting now and allowed `within`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use lock_core::redis::Deadline;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let deadline = Deadline::after(Duration::from_millis(500));
    /// assert!(deadline.at > tokio::time::Instant::now());
    /// # }
    /// ```
    pub fn after(within: Duration) -> Self {
        Deadline {
            at: Instant::now() + within,
            within,
        }
    }
}

/// A connection to Redis through some client (`redis`, `fred`; a single server, a cluster): what
/// the protocol needs of it, and nothing else. Which scripts run, with which keys and arguments,
/// how their answers are read and when an operation is sent again all live in
/// [`RedisBackend`](super::RedisBackend), once for every client.
///
/// # Cancel safety
///
/// Dropping a future of [`eval`](RedisTransport::eval) may or may not have run the script, as
/// with any network request; it never runs it partially (a script is atomic). Dropping one of
/// [`watch`](RedisTransport::watch) leaves no subscription behind.
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
/// ```
#[async_trait]
pub trait RedisTransport: Send + Sync + fmt::Debug + 'static {
    /// Runs `call` once, by `EVALSHA`; after a `NOSCRIPT` answer (nothing ran) it sends the
    /// script whole (`EVAL`, which also caches it), not `SCRIPT LOAD` then `EVALSHA`: a
    /// restart between those two would lose what was loaded. Returns by `deadline.at`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Connection`](crate::ErrorKind::Connection) when the request was not sent
    /// or its connection broke (the caller may send it again: every script may safely run
    /// twice), [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) when the server did not
    /// answer in time (but [`Connection`](crate::ErrorKind::Connection) if the request was
    /// still waiting for a reconnection), and the server's errors as
    /// [`errors::server_error_kind`](super::errors::server_error_kind) maps them. Messages
    /// name the operation ([`ScriptCall::op`]) and the server, never its password.
    ///
    /// Not boxed (unlike the other methods, `async_trait`'s): it is the hot path of every
    /// operation, and [`RedisBackend`](super::RedisBackend) is generic over its transport.
    /// Implement it as a function returning an `async` block.
    fn eval(
        &self,
        call: &ScriptCall,
        deadline: Deadline,
    ) -> impl Future<Output = Result<Reply>> + Send;

    /// Whether [`watch`](RedisTransport::watch) can subscribe: the
    /// [`notify`](crate::Capabilities::notify) capability of the backend.
    fn notifies(&self) -> bool;

    /// Whether the server is a Redis Cluster: the scripts then publish releases and hand-offs
    /// with `SPUBLISH`, on channels in each lock's hash slot
    /// ([`KeySpace::sharded`](super::keys::KeySpace::sharded)), and
    /// [`watch`](RedisTransport::watch) and [`watch_grants`](RedisTransport::watch_grants)
    /// subscribe to them with `SSUBSCRIBE`, on the node that serves the slot. One server by
    /// default.
    fn sharded(&self) -> bool {
        false
    }

    /// As [`eval`](RedisTransport::eval), followed on the same connection (on a Redis
    /// Cluster, to the node of the call's first key), in one round trip, by the command of
    /// [`calls::replica_wait`](super::calls::replica_wait) (`WAIT`, or `WAITAOF`): the script's
    /// reply, and that command's, which [`calls::read_replica_wait`](super::calls::read_replica_wait)
    /// reads. A server error answered to the second command (the script ran) is
    /// [`Reply::Error`]. `deadline` covers both.
    ///
    /// # Errors
    ///
    /// As [`eval`](RedisTransport::eval); by default,
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).
    async fn eval_replicated(
        &self,
        call: &ScriptCall,
        ack: ReplicaAck,
        deadline: Deadline,
    ) -> Result<(Reply, Reply)> {
        let _ = (call, ack, deadline);
        Err(crate::Error::new(
            crate::ErrorKind::Unsupported,
            format!("{self:?} cannot wait for replicas"),
        ))
    }

    /// Subscribes to the Pub/Sub `channel` (a lock's
    /// [`release_channel`](super::keys::release_channel)), returning once the server confirmed
    /// it.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) unless
    /// [`notifies`](RedisTransport::notifies); otherwise when the subscription cannot be made.
    async fn watch(&self, channel: String) -> Result<Watch>;

    /// As [`watch`](RedisTransport::watch), for a channel of hand-offs to this process's
    /// waiters (see [`grant_channel`](super::calls::grant_channel)): messages on it are given
    /// to [`Subscriptions::deliver`](crate::notify::Subscriptions::deliver), and the
    /// subscription lingers (see
    /// [`Subscriptions::watch_lingering`](crate::notify::Subscriptions::watch_lingering)).
    ///
    /// # Errors
    ///
    /// As [`watch`](RedisTransport::watch).
    async fn watch_grants(&self, channel: String) -> Result<Watch>;
}
