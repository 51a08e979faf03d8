//! [`RedisOptions`]: the settings every Redis backend has, which the cases connect it with.

use std::time::Duration;

/// How a [`RedisFixture`](super::RedisFixture) asks the backend under test to connect: the
/// settings every Redis backend has, under whatever names its builder gives them.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conformance::redis::RedisOptions;
///
/// let options = RedisOptions::default().with_response_timeout(Duration::from_millis(300));
/// assert_eq!(options.connect_timeout, Duration::from_secs(2));
/// assert_eq!(options.prefix, "");
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisOptions {
    /// How long to wait for a connection, all attempts together.
    pub connect_timeout: Duration,
    /// How long one operation may take, waiting for a reconnection included.
    pub response_timeout: Duration,
    /// How many more times to try connecting after a failed attempt.
    pub reconnect_attempts: usize,
    /// The prefix of every lock's key (and fencing counter's): `""`, none, by default.
    pub prefix: String,
    /// The delayed restart rule's delay (the backends' `restart_delay`), or `None` for the
    /// backend's default (the lock's timeout). The suite's servers are new, so the suite turns
    /// the rule off (zero) except in the cases that check it.
    pub restart_delay: Option<Duration>,
    /// Replica acknowledgement (`wait_for_replicas`); `None` by default.
    pub replicas: Option<lock_core::redis::ReplicaAck>,
}

impl RedisOptions {
    /// The default connect timeout: 2 s, as both Redis backends'.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conformance::redis::RedisOptions;
    ///
    /// assert_eq!(RedisOptions::default().connect_timeout, RedisOptions::DEFAULT_CONNECT_TIMEOUT);
    /// ```
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
    /// The default response timeout: 2 s, as both Redis backends'.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conformance::redis::RedisOptions;
    ///
    /// assert_eq!(RedisOptions::default().response_timeout, RedisOptions::DEFAULT_RESPONSE_TIMEOUT);
    /// ```
    pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
    /// The default number of reconnection attempts: 3, as both Redis backends'.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conformance::redis::RedisOptions;
    ///
    /// assert_eq!(RedisOptions::default().reconnect_attempts, RedisOptions::DEFAULT_RECONNECT_ATTEMPTS);
    /// ```
    pub const DEFAULT_RECONNECT_ATTEMPTS: usize = 3;

    /// With `timeout` as the connect timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conformance::redis::RedisOptions;
    ///
    /// let options = RedisOptions::default().with_connect_timeout(Duration::from_millis(300));
    /// assert_eq!(options.connect_timeout, Duration::from_millis(300));
    /// ```
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// With `timeout` as the response timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conformance::redis::RedisOptions;
    ///
    /// let options = RedisOptions::default().with_response_timeout(Duration::from_millis(300));
    /// assert_eq!(options.response_timeout, Duration::from_millis(300));
    /// ```
    #[must_use]
    pub fn with_response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// With `attempts` reconnection attempts.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conformance::redis::RedisOptions;
    ///
    /// assert_eq!(RedisOptions::default().with_reconnect_attempts(0).reconnect_attempts, 0);
    /// ```
    #[must_use]
    pub fn with_reconnect_attempts(mut self, attempts: usize) -> Self {
        self.reconnect_attempts = attempts;
        self
    }

    /// With every key under `prefix`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conformance::redis::RedisOptions;
    ///
    /// assert_eq!(RedisOptions::default().with_prefix("app:").prefix, "app:");
    /// ```
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// With replica acknowledgement.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conformance::redis::RedisOptions;
    /// use lock_core::redis::ReplicaAck;
    ///
    /// let ack = ReplicaAck::new(1, Duration::from_millis(300))?;
    /// assert_eq!(RedisOptions::default().with_replicas(ack).replicas, Some(ack));
    /// # Ok::<(), lock_core::Error>(())
    /// ```
    #[must_use]
    pub fn with_replicas(mut self, ack: lock_core::redis::ReplicaAck) -> Self {
        self.replicas = Some(ack);
        self
    }

    /// With the delayed restart rule's delay `delay` (`None`: the backend's default).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use conformance::redis::RedisOptions;
    ///
    /// let options = RedisOptions::default().with_restart_delay(Some(Duration::ZERO));
    /// assert_eq!(options.restart_delay, Some(Duration::ZERO));
    /// ```
    #[must_use]
    pub fn with_restart_delay(mut self, delay: Option<Duration>) -> Self {
        self.restart_delay = delay;
        self
    }
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            response_timeout: Self::DEFAULT_RESPONSE_TIMEOUT,
            reconnect_attempts: Self::DEFAULT_RECONNECT_ATTEMPTS,
            prefix: String::new(),
            restart_delay: Some(Duration::ZERO),
            replicas: None,
        }
    }
}
