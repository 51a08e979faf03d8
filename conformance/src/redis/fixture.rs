//! [`RedisFixture`]: what a Redis-server case runs on, and the two fixtures a Redis backend's
//! suite builds from its connect function.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use lock_core::{Lock, LockBackend, LockName, ProcessLock};

use super::options::RedisOptions;
use crate::Fixture;
use crate::redis_server::{CommandCounter, FaultyProxy, RawRedis, RedisServer};

/// What a backend's connect function returns, boxed.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use conformance::redis::{ConnectFuture, RedisOptions};
/// use lock_core::LockBackend;
///
/// # async fn connect(url: String, options: RedisOptions) -> lock_core::Result<Arc<dyn LockBackend>> {
/// #     unimplemented!()
/// # }
/// fn boxed(url: String, options: RedisOptions) -> ConnectFuture {
///     Box::pin(connect(url, options))
/// }
/// ```
pub type ConnectFuture =
    Pin<Box<dyn Future<Output = lock_core::Result<Arc<dyn LockBackend>>> + Send>>;

type Connect = Box<dyn Fn(String, RedisOptions) -> ConnectFuture + Send + Sync>;

/// What a case that needs a Redis server runs on: a real Redis server of its own (which the
/// case may flush, pause or reconfigure) and the backend's connect function.
///
/// Its helpers panic, with a message, when the server cannot be reached: a case has nothing to
/// test then.
///
/// # Examples
///
/// ```no_run
/// # use std::sync::Arc;
/// # use conformance::redis::{RedisFixture, RedisOptions};
/// # use lock_core::LockBackend;
/// # async fn connect(url: String, options: RedisOptions) -> lock_core::Result<Arc<dyn LockBackend>> {
/// #     unimplemented!()
/// # }
/// # async fn example() -> Result<(), String> {
/// let redis = RedisFixture::start(connect).await?;
/// let backend = redis.backend().await;
/// let mut admin = redis.raw().await;
/// admin.run(&["FLUSHALL"]).await?;
/// # Ok(()) }
/// ```
pub struct RedisFixture {
    server: RedisServer,
    connect: Connect,
}

impl RedisFixture {
    /// A fixture on `server`, connecting backends with `connect`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # use conformance::redis::{RedisFixture, RedisOptions};
    /// # use conformance::redis_server::RedisServer;
    /// # use lock_core::LockBackend;
    /// # async fn connect(url: String, options: RedisOptions) -> lock_core::Result<Arc<dyn LockBackend>> {
    /// #     unimplemented!()
    /// # }
    /// # async fn example() -> Result<(), String> {
    /// let redis = RedisFixture::new(RedisServer::start_own().await?, connect);
    /// # Ok(()) }
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # use conformance::redis::{RedisFixture, RedisOptions};
    /// # use lock_core::LockBackend;
    /// # async fn connect(url: String, options: RedisOptions) -> lock_core::Result<Arc<dyn LockBackend>> {
    /// #     unimplemented!()
    /// # }
    /// # async fn example() -> Result<(), String> {
    /// let redis = RedisFixture::start(connect).await?;
    /// assert!(redis.url().starts_with("redis://"));
    /// # Ok(()) }
    /// ```
    pub async fn start<F, Fut>(connect: F) -> Result<Self, String>
    where
        F: Fn(String, RedisOptions) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = lock_core::Result<Arc<dyn LockBackend>>> + Send + 'static,
    {
        Ok(Self::new(RedisServer::start_own().await?, connect))
    }

    /// The server.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # use conformance::redis::{RedisFixture, RedisOptions};
    /// # use lock_core::LockBackend;
    /// # async fn connect(url: String, options: RedisOptions) -> lock_core::Result<Arc<dyn LockBackend>> {
    /// #     unimplemented!()
    /// # }
    /// # async fn example() -> Result<(), String> {
    /// let redis = RedisFixture::start(connect).await?;
    /// println!("{}", redis.server().origin());
    /// # Ok(()) }
    /// ```
    pub fn server(&self) -> &RedisServer {
        &self.server
    }

    /// The server's URL, `redis://127.0.0.1:port/`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # use conformance::redis::{RedisFixture, RedisOptions};
    /// # use lock_core::LockBackend;
    /// # async fn connect(url: String, options: RedisOptions) -> lock_core::Result<Arc<dyn LockBackend>> {
    /// #     unimplemented!()
    /// # }
    /// # async fn example() -> Result<(), String> {
    /// let redis = RedisFixture::start(connect).await?;
    /// assert!(redis.url().starts_with("redis://"));
    /// # Ok(()) }
    /// ```
    pub fn url(&self) -> &str {
        self.server.url()
    }

    /// The backend connected to the server with the default options.
    ///
    /// # Panics
    ///
    /// If it cannot connect.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # use conformance::redis::{RedisFixture, RedisOptions};
    /// # use lock_core::LockBackend;
    /// # async fn connect(url: String, options: RedisOptions) -> lock_core::Result<Arc<dyn LockBackend>> {
    /// #     unimplemented!()
    /// # }
    /// # async fn example() -> Result<(), String> {
    /// let redis = RedisFixture::start(connect).await?;
    /// let backend = redis.backend().await;
    /// let lock = lock_core::ProcessLock::new(backend, "jobs", std::time::Duration::from_secs(5)).unwrap();
    /// # Ok(()) }
    /// ```
    pub async fn backend(&self) -> Arc<dyn LockBackend> {
        self.backend_with(RedisOptions::default()).await
    }

    /// The backend connected to the server with `options`.
    ///
    /// # Panics
    ///
    /// If it cannot connect.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # use conformance::redis::{RedisFixture, RedisOptions};
    /// # use lock_core::LockBackend;
    /// # async fn connect(url: String, options: RedisOptions) -> lock_core::Result<Arc<dyn LockBackend>> {
    /// #     unimplemented!()
    /// # }
    /// # async fn example() -> Result<(), String> {
    /// let redis = RedisFixture::start(connect).await?;
    /// let backend = redis.backend_with(RedisOptions::default().with_prefix("app:")).await;
    /// # Ok(()) }
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # use conformance::redis::{RedisFixture, RedisOptions};
    /// # use lock_core::LockBackend;
    /// # async fn connect(url: String, options: RedisOptions) -> lock_core::Result<Arc<dyn LockBackend>> {
    /// #     unimplemented!()
    /// # }
    /// # async fn example() -> Result<(), String> {
    /// let redis = RedisFixture::start(connect).await?;
    /// let refused = redis.connect("redis://127.0.0.1:1/", RedisOptions::default()).await;
    /// assert!(refused.is_err());
    /// # Ok(()) }
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # use conformance::redis::{RedisFixture, RedisOptions};
    /// # use lock_core::LockBackend;
    /// # async fn connect(url: String, options: RedisOptions) -> lock_core::Result<Arc<dyn LockBackend>> {
    /// #     unimplemented!()
    /// # }
    /// # async fn example() -> Result<(), String> {
    /// let redis = RedisFixture::start(connect).await?;
    /// let mut admin = redis.raw().await;
    /// admin.run(&["SCRIPT", "FLUSH"]).await?;
    /// # Ok(()) }
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # use conformance::redis::{RedisFixture, RedisOptions};
    /// # use lock_core::LockBackend;
    /// # async fn connect(url: String, options: RedisOptions) -> lock_core::Result<Arc<dyn LockBackend>> {
    /// #     unimplemented!()
    /// # }
    /// # async fn example() -> Result<(), String> {
    /// let redis = RedisFixture::start(connect).await?;
    /// let counter = redis.counter().await;
    /// // ... run operations through a backend ...
    /// let commands = counter.take().await?;
    /// # Ok(()) }
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # use conformance::redis::{RedisFixture, RedisOptions};
    /// # use lock_core::LockBackend;
    /// # async fn connect(url: String, options: RedisOptions) -> lock_core::Result<Arc<dyn LockBackend>> {
    /// #     unimplemented!()
    /// # }
    /// # async fn example() -> Result<(), String> {
    /// let redis = RedisFixture::start(connect).await?;
    /// let proxy = redis.proxy().await;
    /// let backend = redis.connect(proxy.url(), RedisOptions::default()).await;
    /// # Ok(()) }
    /// ```
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

impl RedisFixture {
    /// The Redis server part of `fixture`: present in a [`server_fixture`], absent elsewhere.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use conformance::Fixture;
    /// use conformance::redis::RedisFixture;
    /// use lock_memory::MemoryBackend;
    ///
    /// let fixture = Fixture::new(Arc::new(MemoryBackend::new()));
    /// assert!(RedisFixture::of(&fixture).is_none());
    /// ```
    pub fn of(fixture: &Fixture) -> Option<&RedisFixture> {
        fixture.resource::<RedisFixture>()
    }
}

/// The fixture a backend-agnostic case runs on for a Redis backend: the backend `connect` gives
/// with [`RedisOptions::default()`] (the restart rule off), on [`RedisServer::start`] (the
/// server at `REDIS_URL` if set, else one of the test's own), kept alive by the fixture.
///
/// # Panics
///
/// When no server can be started, or the backend cannot connect to it.
///
/// # Examples
///
/// ```no_run
/// # use std::sync::Arc;
/// # use conformance::redis::{RedisOptions, backend_fixture};
/// # use lock_core::LockBackend;
/// # async fn connect(url: String, options: RedisOptions) -> lock_core::Result<Arc<dyn LockBackend>> {
/// #     unimplemented!()
/// # }
/// // A backend's test of one case, as `conformance::suite!(redis = connect)` writes it.
/// conformance::run_case(|| backend_fixture(connect), "lock_values");
/// ```
pub async fn backend_fixture<F, Fut>(connect: F) -> Fixture
where
    F: Fn(String, RedisOptions) -> Fut,
    Fut: Future<Output = lock_core::Result<Arc<dyn LockBackend>>>,
{
    let server = RedisServer::start().await.unwrap_or_else(|e| panic!("{e}"));
    let backend = connect(server.url().to_owned(), RedisOptions::default())
        .await
        .unwrap_or_else(|e| panic!("connecting to {}: {e}", server.origin()));
    Fixture::new(backend).keep_alive(server)
}

/// The fixture a case that needs a Redis server runs on: a [`RedisFixture`] on a server of its
/// own ([`RedisServer::start_own`]), which the case may flush, pause, kill clients of or
/// reconfigure, connecting its own backends with `connect`. It has no backend of its own.
///
/// # Panics
///
/// When no server can be started.
///
/// # Examples
///
/// ```no_run
/// # use std::sync::Arc;
/// # use conformance::redis::{RedisOptions, server_fixture};
/// # use lock_core::LockBackend;
/// # async fn connect(url: String, options: RedisOptions) -> lock_core::Result<Arc<dyn LockBackend>> {
/// #     unimplemented!()
/// # }
/// conformance::run_case(|| server_fixture(connect), "every_operation_is_one_round_trip");
/// ```
pub async fn server_fixture<F, Fut>(connect: F) -> Fixture
where
    F: Fn(String, RedisOptions) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = lock_core::Result<Arc<dyn LockBackend>>> + Send + 'static,
{
    let redis = RedisFixture::start(connect)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    Fixture::without_backend().keep_alive(redis)
}

/// A handle on `name` with a 30 s timeout.
pub(super) fn handle(backend: &Arc<dyn LockBackend>, name: &str) -> ProcessLock {
    ProcessLock::new(backend.clone(), name, Duration::from_secs(30)).unwrap()
}

/// A [`Lock`] on the lock of `handle`, with its timeout: its guards are owners of their own,
/// excluded by `handle` as by any other owner.
pub(super) fn guards(handle: &ProcessLock) -> Lock {
    Lock::from_parts(
        handle.backend().clone(),
        handle.name().clone(),
        handle.ttl(),
    )
    .unwrap()
}

/// A [`Lock`] on `name` whose guards keep it for 30 s.
pub(super) fn guarded(backend: &Arc<dyn LockBackend>, name: &str) -> Lock {
    Lock::new(backend.clone(), name, Duration::from_secs(30)).unwrap()
}

/// `name` as a [`LockName`].
pub(super) fn name(name: &str) -> LockName {
    LockName::new(name).unwrap()
}
