//! Real Redis servers for tests: the one at `REDIS_URL`, else a container started with
//! testcontainers from a local image (never pulled), else a `redis-server` from `PATH` on a
//! free port. Never a mock, and never a
//! silent skip: when none can be had, starting fails with a message saying how to provide one.
//!
//! Each call starts a server of its own (a container starts in well under a second), so tests
//! never share state they did not ask to share, and the server stops when the value drops.
//!
//! Besides servers, the tools the Redis cases ([`mod@crate::redis`]) are built with, for
//! any test to use: [`RawRedis`], a minimal client for playing another program or an
//! administrator; [`CommandCounter`], which counts round trips; [`FaultyProxy`], which breaks
//! the network on demand; and [`TlsRedisServer`], a TLS-only server with a private CA.

mod cluster;
mod counter;
mod process;
mod proxy;
mod resp;
mod tls;

use std::fmt;
use std::io::Write;
use std::time::Duration;

use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, ImageExt};
use testcontainers_modules::redis::{REDIS_PORT, Redis};

pub use cluster::{
    ClusterNode, NODE_TIMEOUT, NodeRole, RedisCluster, RedisSentinel, ReplicatedRedis,
    SENTINEL_SERVICE,
};
pub use counter::CommandCounter;
use process::{Ready, ServerProcess};
pub use proxy::FaultyProxy;
pub use resp::{RawRedis, Resp};
pub use tls::TlsRedisServer;

/// Names the image to start (`name:tag`).
///
/// # Examples
///
/// ```
/// use conformance::redis_server::{DEFAULT_IMAGE, IMAGE_ENV};
///
/// let image = std::env::var(IMAGE_ENV).unwrap_or_else(|_| DEFAULT_IMAGE.to_owned());
/// ```
pub const IMAGE_ENV: &str = "LOCK_TEST_REDIS_IMAGE";
/// The image started when [`IMAGE_ENV`] is unset: the one `scripts/test` (through
/// `.ci/build-redis-image.sh`) builds offline from Debian's `redis-server`. An image that is not
/// on the machine is never pulled: the tests fall back to `redis-server` from `PATH`.
///
/// # Examples
///
/// ```
/// assert_eq!(conformance::redis_server::DEFAULT_IMAGE, "process-lock-redis:7");
/// ```
pub const DEFAULT_IMAGE: &str = "process-lock-redis:7";

/// The environment variable naming the image of a Redis 7.2 or later for the tests of
/// `WAITAOF` (replica acknowledgement by the append-only file), which Debian 12's Redis 7.0
/// lacks.
///
/// # Examples
///
/// ```
/// use conformance::redis_server::{AOF_IMAGE_ENV, DEFAULT_AOF_IMAGE};
///
/// let image = std::env::var(AOF_IMAGE_ENV).unwrap_or_else(|_| DEFAULT_AOF_IMAGE.to_owned());
/// ```
pub const AOF_IMAGE_ENV: &str = "LOCK_TEST_REDIS_AOF_IMAGE";
/// The image started when [`AOF_IMAGE_ENV`] is unset: Debian 13's Redis 8, built offline by
/// `.ci/build-redis-image.sh --aof` (which `scripts/test` runs).
///
/// # Examples
///
/// ```
/// assert_eq!(conformance::redis_server::DEFAULT_AOF_IMAGE, "process-lock-redis:8");
/// ```
pub const DEFAULT_AOF_IMAGE: &str = "process-lock-redis:8";
/// When set to `1`, a container that cannot be started is an error instead of a reason to fall
/// back to `redis-server` (CI sets it, so the suite provably runs on testcontainers).
///
/// # Examples
///
/// ```
/// use conformance::redis_server::REQUIRE_DOCKER_ENV;
///
/// let strict = std::env::var(REQUIRE_DOCKER_ENV).is_ok_and(|v| v == "1");
/// ```
pub const REQUIRE_DOCKER_ENV: &str = "LOCK_TEST_REQUIRE_DOCKER";

/// A real Redis server for one test; stopped when dropped (unless it is the external one).
///
/// # Examples
///
/// ```no_run
/// # async fn f() -> Result<(), String> {
/// let server = conformance::redis_server::RedisServer::start().await?;
/// println!("testing against {}", server.url());
/// # Ok(()) }
/// ```
pub struct RedisServer {
    url: String,
    origin: String,
    _running: Running,
}

/// What keeps the server running; dropping it stops the server.
enum Running {
    External,
    Container(Box<ContainerAsync<Redis>>),
    #[expect(dead_code, reason = "held only so that dropping it kills the process")]
    Process(ServerProcess),
}

impl RedisServer {
    /// The server at `REDIS_URL` if set; otherwise one of this test's own (see
    /// [`start_own`](RedisServer::start_own)).
    ///
    /// # Errors
    ///
    /// A message saying what was tried and how to provide a server.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::RedisServer;
    ///
    /// let server = RedisServer::start().await?; // REDIS_URL's, if set
    /// println!("{}", server.origin());
    /// # Ok(()) }
    /// ```
    pub async fn start() -> Result<Self, String> {
        match std::env::var("REDIS_URL") {
            Ok(url) if !url.is_empty() => {
                let server = RedisServer {
                    origin: "REDIS_URL".to_owned(),
                    url,
                    _running: Running::External,
                };
                server.announce();
                Ok(server)
            }
            _ => Self::start_own().await,
        }
    }

    /// A server only this test uses, for tests that flush, stop or reconfigure it: a container
    /// of the image named by [`IMAGE_ENV`] (default [`DEFAULT_IMAGE`]), else `redis-server`
    /// from `PATH`.
    ///
    /// # Errors
    ///
    /// A message saying what was tried and how to provide a server.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::RedisServer;
    ///
    /// let server = RedisServer::start_own().await?;
    /// assert!(server.is_own());
    /// # Ok(()) }
    /// ```
    pub async fn start_own() -> Result<Self, String> {
        let image = std::env::var(IMAGE_ENV).unwrap_or_else(|_| DEFAULT_IMAGE.to_owned());
        let started = match image_on_this_machine(&image) {
            Ok(()) => start_container(&image).await,
            Err(e) => Err(e),
        };
        let docker_error = match started {
            Ok(server) => {
                server.announce();
                return Ok(server);
            }
            Err(e) => e,
        };
        if std::env::var(REQUIRE_DOCKER_ENV).is_ok_and(|v| v == "1") {
            return Err(format!(
                "cannot start a Redis container from {image} ({docker_error}), and \
                 {REQUIRE_DOCKER_ENV}=1 forbids falling back to redis-server"
            ));
        }
        log(&format!(
            "no Redis container ({docker_error}); falling back to redis-server from PATH"
        ));
        let started = match process::temp_dir("redis") {
            Ok(dir) => {
                let args = [
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--protected-mode",
                    "no",
                ];
                ServerProcess::start(dir, &args, "--port", Ready::Pong, "").await
            }
            Err(e) => Err(e),
        };
        match started {
            Ok(process) => {
                let url = format!("redis://127.0.0.1:{}/", process.port());
                let server = RedisServer {
                    url,
                    origin: "redis-server from PATH".to_owned(),
                    _running: Running::Process(process),
                };
                server.announce();
                Ok(server)
            }
            Err(process_error) => Err(format!(
                "no Redis server for the tests: run `scripts/test`, which installs \
                 redis-server and builds the {DEFAULT_IMAGE} image, or set \
                 REDIS_URL=redis://host:port/. Tried: REDIS_URL (unset); a container of {image} \
                 ({docker_error}); redis-server from PATH ({process_error})"
            )),
        }
    }

    /// The server's URL.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::RedisServer;
    ///
    /// let server = RedisServer::start_own().await?;
    /// assert!(server.url().starts_with("redis://"));
    /// # Ok(()) }
    /// ```
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's URL without Docker's port proxy, for benchmarks: a container's address on
    /// Docker's bridge network when this machine reaches it (each message through the proxy
    /// costs two more copies in a process that competes with the ones measured), else
    /// [`url`](Self::url).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::RedisServer;
    ///
    /// let server = RedisServer::start_own().await?;
    /// let url = server.direct_url().await;
    /// assert!(url.starts_with("redis://"));
    /// # Ok(()) }
    /// ```
    pub async fn direct_url(&self) -> String {
        let Running::Container(container) = &self._running else {
            return self.url.clone();
        };
        let Ok(ip) = container.get_bridge_ip_address().await else {
            return self.url.clone();
        };
        let address = format!("{ip}:{REDIS_PORT}");
        let reached = tokio::time::timeout(
            Duration::from_secs(1),
            tokio::net::TcpStream::connect(address.as_str()),
        )
        .await;
        match reached {
            Ok(Ok(_)) => format!("redis://{address}/"),
            _ => self.url.clone(),
        }
    }

    /// Where the server comes from, for people: the image and port, `REDIS_URL`, or
    /// `redis-server from PATH`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::RedisServer;
    ///
    /// let server = RedisServer::start().await?;
    /// eprintln!("Redis from {}", server.origin());
    /// # Ok(()) }
    /// ```
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Whether this test owns the server (it is not the shared one at `REDIS_URL`).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::RedisServer;
    ///
    /// let server = RedisServer::start().await?;
    /// if !server.is_own() {
    ///     // REDIS_URL's server: do not flush it
    /// }
    /// # Ok(()) }
    /// ```
    pub fn is_own(&self) -> bool {
        !matches!(self._running, Running::External)
    }

    fn announce(&self) {
        log(&format!("Redis from {} at {}", self.origin, self.url));
    }
}

impl fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisServer")
            .field("url", &self.url)
            .field("origin", &self.origin)
            .finish()
    }
}

/// Writes straight to stderr, past libtest's capture, so the CI log shows which server every
/// test used.
fn log(line: &str) {
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    let _ = writeln!(std::io::stderr(), "[redis-server] {test}: {line}");
}

/// Whether `image` is on this machine (`docker image inspect`), asked once per process: an
/// image that is not is never pulled (no registry may be reachable, and trying costs every
/// test).
fn image_on_this_machine(image: &str) -> Result<(), String> {
    static KNOWN: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    KNOWN
        .get_or_init(|| {
            let inspected = std::process::Command::new("docker")
                .args(["image", "inspect", "--format", "{{.Id}}", image])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
            match inspected {
                Ok(status) if status.success() => Ok(()),
                Ok(_) => Err(format!(
                    "image {image} is not on this machine (`scripts/test` builds it; it is \
                     never pulled)"
                )),
                Err(e) => Err(format!("no docker command ({e})")),
            }
        })
        .clone()
}

async fn start_container(image: &str) -> Result<RedisServer, String> {
    let (name, tag) = image.rsplit_once(':').unwrap_or((image, "latest"));
    let container = Redis::default()
        .with_name(name)
        .with_tag(tag)
        .with_startup_timeout(Duration::from_secs(30))
        // Named, so that `direct_url` finds the container's address on it.
        .with_network("bridge")
        .start()
        .await
        .map_err(|e| e.to_string())?;
    let port = container
        .get_host_port_ipv4(REDIS_PORT)
        .await
        .map_err(|e| e.to_string())?;
    Ok(RedisServer {
        url: format!("redis://127.0.0.1:{port}/"),
        origin: format!(
            "testcontainers image {image} (container {}, port 6379 mapped to {port})",
            &container.id()[..12.min(container.id().len())]
        ),
        _running: Running::Container(Box::new(container)),
    })
}
