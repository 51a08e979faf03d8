//! The shared Redis suite: what every Redis backend must do beyond the backend-agnostic
//! [`suite!`](crate::suite), against a real server of each test's own. The key and value
//! `process-lock-node` uses, scripts that survive `SCRIPT FLUSH`, typed errors that never show
//! the password, timeouts, reconnection, requests never replayed, one round trip per
//! operation, waiting by notification over Pub/Sub (silent while waiting, woken at once,
//! surviving a lost connection), fencing tokens on the wire, a guard's loss reported in time
//! on a stalled server, a key without expiry read as held, and a guard behind a slow link
//! trusting its lock no longer than the server keeps it.
//!
//! A Redis backend runs it all with one [`redis_suite!`](crate::redis_suite) call, given a
//! function that connects the backend to a URL with [`RedisOptions`]; see [`cases`] for what
//! each case checks.

pub mod acl;
pub mod cases;
pub mod plain_text;
pub(crate) mod process;
pub(crate) mod proxy;
pub(crate) mod tls;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use lock_core::LockBackend;

use crate::CaseFuture;
use crate::redis_server::{CommandCounter, FaultyProxy, RawRedis, RedisServer};

/// How a [`RedisFixture`] asks the backend under test to connect: the settings every Redis
/// backend has, under whatever names its builder gives them.
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
}

impl RedisOptions {
    /// The default connect timeout: 2 s, as both Redis backends'.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
    /// The default response timeout: 2 s, as both Redis backends'.
    pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
    /// The default number of reconnection attempts: 3, as both Redis backends'.
    pub const DEFAULT_RECONNECT_ATTEMPTS: usize = 3;

    /// With `timeout` as the connect timeout.
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// With `timeout` as the response timeout.
    #[must_use]
    pub fn with_response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// With `attempts` reconnection attempts.
    #[must_use]
    pub fn with_reconnect_attempts(mut self, attempts: usize) -> Self {
        self.reconnect_attempts = attempts;
        self
    }

    /// With every key under `prefix`.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// With the delayed restart rule's delay `delay` (`None`: the backend's default).
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
        }
    }
}

/// What a backend's connect function returns, boxed.
pub type ConnectFuture =
    Pin<Box<dyn Future<Output = lock_core::Result<Arc<dyn LockBackend>>> + Send>>;

type Connect = Box<dyn Fn(String, RedisOptions) -> ConnectFuture + Send + Sync>;

/// What a case of the shared Redis suite runs on: a real Redis server of its own (which the
/// case may flush, pause or reconfigure) and the backend's connect function.
///
/// Its helpers panic, with a message, when the server cannot be reached: a case has nothing to
/// test then.
pub struct RedisFixture {
    server: RedisServer,
    connect: Connect,
}

impl RedisFixture {
    /// A fixture on `server`, connecting backends with `connect`.
    pub fn new<F, Fut>(server: RedisServer, connect: F) -> Self
    where
        F: Fn(String, RedisOptions) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = lock_core::Result<Arc<dyn LockBackend>>> + Send + 'static,
    {
        RedisFixture {
            server,
            connect: Box::new(move |url, options| Box::pin(connect(url, options))),
        }
    }

    /// A fixture on a server of its own ([`RedisServer::start_own`]).
    ///
    /// # Errors
    ///
    /// When no server can be started, saying how to provide one.
    pub async fn start<F, Fut>(connect: F) -> Result<Self, String>
    where
        F: Fn(String, RedisOptions) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = lock_core::Result<Arc<dyn LockBackend>>> + Send + 'static,
    {
        Ok(Self::new(RedisServer::start_own().await?, connect))
    }

    /// The server.
    pub fn server(&self) -> &RedisServer {
        &self.server
    }

    /// The server's URL, `redis://127.0.0.1:port/`.
    pub fn url(&self) -> &str {
        self.server.url()
    }

    /// The backend connected to the server with the default options.
    ///
    /// # Panics
    ///
    /// If it cannot connect.
    pub async fn backend(&self) -> Arc<dyn LockBackend> {
        self.backend_with(RedisOptions::default()).await
    }

    /// The backend connected to the server with `options`.
    ///
    /// # Panics
    ///
    /// If it cannot connect.
    pub async fn backend_with(&self, options: RedisOptions) -> Arc<dyn LockBackend> {
        let url = self.url().to_owned();
        self.connect(&url, options).await.unwrap_or_else(|e| {
            panic!(
                "the backend cannot connect to {url} ({}): {e:?}",
                self.server.origin()
            )
        })
    }

    /// The backend connected to `url` with `options`, or the error it gives: for URLs other
    /// than the server's (a refused port, a malformed URL, credentials, a proxy).
    ///
    /// # Errors
    ///
    /// Whatever the backend's connect function returns.
    pub async fn connect(
        &self,
        url: &str,
        options: RedisOptions,
    ) -> lock_core::Result<Arc<dyn LockBackend>> {
        (self.connect)(url.to_owned(), options).await
    }

    /// A plain connection to the server, to play another program or an administrator.
    ///
    /// # Panics
    ///
    /// If the server cannot be reached.
    pub async fn raw(&self) -> RawRedis {
        RawRedis::connect(self.url())
            .await
            .unwrap_or_else(|e| panic!("a raw connection to the test server: {e}"))
    }

    /// A [`CommandCounter`] on the server.
    ///
    /// # Panics
    ///
    /// If the server cannot be reached.
    pub async fn counter(&self) -> CommandCounter {
        CommandCounter::start(self.url())
            .await
            .unwrap_or_else(|e| panic!("monitoring the test server: {e}"))
    }

    /// A [`FaultyProxy`] in front of the server.
    ///
    /// # Panics
    ///
    /// If the proxy cannot start.
    pub async fn proxy(&self) -> FaultyProxy {
        FaultyProxy::start(self.url())
            .await
            .unwrap_or_else(|e| panic!("a proxy to the test server: {e}"))
    }
}

impl fmt::Debug for RedisFixture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisFixture")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// One case of the shared Redis suite.
#[derive(Clone, Copy)]
pub struct RedisCase {
    /// The case's name, as in [`cases`].
    pub name: &'static str,
    /// Runs the case; it panics when the backend misbehaves.
    pub run: for<'a> fn(&'a RedisFixture) -> CaseFuture<'a>,
}

impl fmt::Debug for RedisCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCase")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The one list of the shared Redis suite's cases. Every Redis backend's tests, and
/// [`redis_cases`], expand from it, so a case added here runs for every Redis backend.
#[doc(hidden)]
#[macro_export]
macro_rules! __with_redis_cases {
    ($callback:path { $($args:tt)* }) => {
        $callback! { $($args)*
            a_node_lock_excludes_rust_and_rust_cannot_touch_it
            a_rust_lock_excludes_node_with_the_plain_token_as_value
            every_operation_survives_script_flush
            a_flushed_script_costs_evalsha_script_load_evalsha_once
            a_key_of_another_type_is_a_wrong_type_error
            connection_refused_is_a_connection_error_without_the_password
            an_unanswering_server_times_out_within_the_connect_timeout
            malformed_urls_are_config_errors_without_the_password
            debug_output_hides_the_password
            a_stalled_server_gives_a_timeout_then_answers_stay_in_order
            reconnects_after_the_connection_is_killed
            an_outage_gives_connection_errors_then_the_backend_recovers
            a_request_whose_reply_is_lost_is_sent_again_safely
            every_operation_is_one_round_trip
            a_waiter_sends_nothing_while_it_waits
            a_release_wakes_a_waiter_at_once
            a_waiter_survives_its_pubsub_connection_being_killed
            a_broken_pubsub_connection_fails_watches_promptly_then_recovers
            fencing_tokens_grow_on_the_wire_under_the_prefix
            a_paused_server_makes_a_guard_report_its_loss_before_the_lock_expires
            a_new_server_grants_a_free_lock_only_after_the_restart_delay
            a_release_that_cannot_publish_says_so_and_waiters_still_see_it
            a_waiter_waits_through_a_stall_and_a_dropped_connection
            a_refused_subscribe_is_an_error_every_time
            a_user_without_evalsha_gets_permission_denied_and_nothing_changes
            a_wrong_password_is_a_config_error
            rediss_to_a_plain_text_server_is_a_config_error_at_once
            a_key_without_expiry_is_a_lock_held_by_another
            a_guard_behind_a_slow_link_trusts_its_lock_no_longer_than_the_server_keeps_it
        }
    };
}

macro_rules! redis_case_list {
    ($($name:ident)*) => {
        /// Every case of the shared Redis suite, in order.
        pub fn redis_cases() -> Vec<RedisCase> {
            vec![$(
                RedisCase {
                    name: stringify!($name),
                    run: |fx| Box::pin(cases::$name(fx)),
                },
            )*]
        }
    };
}

__with_redis_cases!(redis_case_list {});

/// Generates one test per case of the shared Redis suite for a Redis backend, in a module named
/// `redis_suite`: the whole suite in one call.
///
/// The first argument is a function (or closure) `(url: String, options: RedisOptions)`
/// returning a future of `lock_core::Result<Arc<dyn LockBackend>>`: the backend connected to
/// `url` with every one of the [`RedisOptions`] applied (the prefix too: a case checks it), or
/// the error connecting gives. Each test starts a Redis server of its own
/// ([`RedisServer::start_own`]) and runs its case in its own multi-thread tokio runtime; it is
/// named after the case, so `cargo test redis_suite::` runs the suite and
/// `cargo test every_operation_is_one_round_trip` runs one case.
///
/// A case the backend is known to fail is named in `ignore = [case = "reason", ...]`: its test
/// is then `#[ignore]`d with the reason, reported as ignored by name and never counted as
/// passed, until the backend is fixed; `cargo test -- --ignored` runs it. A name that is not a
/// case is a compile error.
///
/// # Examples
///
/// In a Redis backend crate's `tests/redis.rs`:
///
/// ```ignore
/// use std::sync::Arc;
/// use conformance::redis::RedisOptions;
/// use lock_core::LockBackend;
///
/// async fn connect(url: String, options: RedisOptions) -> lock_core::Result<Arc<dyn LockBackend>> {
///     let backend = MyRedisBackend::builder(&url)
///         .connect_timeout(options.connect_timeout)
///         .response_timeout(options.response_timeout)
///         .reconnect_attempts(options.reconnect_attempts)
///         .prefix(options.prefix)
///         .connect()
///         .await?;
///     Ok(Arc::new(backend))
/// }
///
/// conformance::redis_suite!(connect);
/// ```
///
/// With a known bug:
///
/// ```ignore
/// conformance::redis_suite!(
///     connect,
///     ignore = [every_operation_is_one_round_trip = "status costs two commands: issue #12"],
/// );
/// ```
#[macro_export]
macro_rules! redis_suite {
    ($connect:expr $(, ignore = [$($case:ident = $reason:literal),* $(,)?])? $(,)?) => {
        // `$` is passed along for the per-case macro the tests are generated with.
        $crate::__with_redis_cases!($crate::__redis_suite_tests {
            [$] ($connect) [$($($case = $reason),*)?]
        });
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __redis_suite_tests {
    ([$d:tt] $connect:tt [$($ignored:ident = $reason:literal),*] $($name:ident)*) => {
        /// The shared Redis suite (`conformance::redis::cases`), one test per case.
        mod redis_suite {
            #[allow(unused_imports)]
            use super::*;

            // A misspelled case in `ignore` is a compile error, not a silently ignored word.
            $( use $crate::redis::cases::$ignored as _; )*

            // One arm per ignored case, then one for the others: `macro_rules` compares
            // identifiers only against literal ones.
            macro_rules! __redis_case_test {
                $(
                    ($ignored) => {
                        #[test]
                        #[ignore = $reason]
                        fn $ignored() {
                            $crate::redis::run_redis_case($connect, stringify!($ignored));
                        }
                    };
                )*
                ($d case:ident) => {
                    #[test]
                    fn $d case() {
                        $crate::redis::run_redis_case($connect, stringify!($d case));
                    }
                };
            }

            $( __redis_case_test!($name); )*
        }
    };
}

/// Runs the shared Redis case `name` on a server of its own, with backends from `connect`, in
/// a fresh multi-thread tokio runtime. This is what [`redis_suite!`](crate::redis_suite)'s tests
/// call.
///
/// # Panics
///
/// When the case fails, when `name` is not a case, and when no Redis server can be started.
pub fn run_redis_case<F, Fut>(connect: F, name: &str)
where
    F: Fn(String, RedisOptions) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = lock_core::Result<Arc<dyn LockBackend>>> + Send + 'static,
{
    let case = redis_cases()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no shared Redis case is named {name:?}"));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime for the Redis case")
        .block_on(async {
            let fx = RedisFixture::start(connect)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            (case.run)(&fx).await;
        });
}
