//! Real Redis servers for tests: the one at `REDIS_URL`, else a container started with
//! testcontainers from a local image (never pulled), else a `redis-server` from `PATH` on a
//! free port. Never a mock, and never a
//! silent skip: when none can be had, starting fails with a message saying how to provide one.
//!
//! Each call starts a server of its own (a container starts in well under a second), so tests
//! never share state they did not ask to share, and the server stops when the value drops.
//!
//! Besides servers, the tools the shared Redis suite ([`mod@crate::redis`]) is built with, for
//! any test to use: [`RawRedis`], a minimal client for playing another program or an
//! administrator; [`CommandCounter`], which counts round trips; [`FaultyProxy`], which breaks
//! the network on demand; and [`TlsRedisServer`], a TLS-only server with a private CA.

use std::fmt;
use std::future::Future;
use std::io::Write;
use std::time::Duration;

use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, ImageExt};
use testcontainers_modules::redis::{REDIS_PORT, Redis};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::redis::process::{self, Ready, ServerProcess};
pub use crate::redis::proxy::FaultyProxy;
pub use crate::redis::tls::TlsRedisServer;

/// Names the image to start (`name:tag`).
pub const IMAGE_ENV: &str = "LOCK_TEST_REDIS_IMAGE";
/// The image started when [`IMAGE_ENV`] is unset: the one `scripts/test` (through
/// `.ci/build-redis-image.sh`) builds offline from Debian's `redis-server`. An image that is not
/// on the machine is never pulled: the tests fall back to `redis-server` from `PATH`.
pub const DEFAULT_IMAGE: &str = "process-lock-redis:7";
/// When set to `1`, a container that cannot be started is an error instead of a reason to fall
/// back to `redis-server` (CI sets it, so the suite provably runs on testcontainers).
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
    #[expect(
        dead_code,
        reason = "held only so that dropping it removes the container"
    )]
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
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where the server comes from, for people: the image and port, `REDIS_URL`, or
    /// `redis-server from PATH`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Whether this test owns the server (it is not the shared one at `REDIS_URL`).
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

/// A reply of Redis, in RESP2 (what a connection speaks unless it sends `HELLO 3`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resp {
    /// A simple string, such as `OK` or `PONG`.
    Simple(String),
    /// An error reply, such as `WRONGTYPE Operation against a key holding the wrong kind of
    /// value`.
    Error(String),
    /// An integer.
    Int(i64),
    /// A bulk string; `None` for the null bulk string (`GET` of a missing key).
    Bulk(Option<Vec<u8>>),
    /// An array; `None` for the null array.
    Array(Option<Vec<Resp>>),
}

impl Resp {
    /// The text of a simple string or of a bulk string that is UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Resp::Simple(text) => Some(text),
            Resp::Bulk(Some(bytes)) => std::str::from_utf8(bytes).ok(),
            _ => None,
        }
    }

    /// The integer of an integer reply.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Resp::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// Whether this is the null bulk string or the null array.
    pub fn is_nil(&self) -> bool {
        matches!(self, Resp::Bulk(None) | Resp::Array(None))
    }
}

/// How long [`RawRedis`] waits for a reply before giving up, so that a broken test fails
/// instead of hanging.
const RAW_REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// A minimal Redis client speaking RESP2 over one TCP connection, with no dependency on a Redis
/// crate: for a test to play another program (such as `process-lock-node`) or an
/// administrator (`SCRIPT FLUSH`, `CLIENT PAUSE`, `CONFIG SET`) beside the backend under test.
///
/// One command at a time, in order; no pipelining, no TLS, no credentials.
///
/// # Examples
///
/// ```no_run
/// # async fn f(url: &str) -> Result<(), String> {
/// use conformance::redis_server::{RawRedis, Resp};
///
/// let mut raw = RawRedis::connect(url).await?;
/// raw.run(&["SET", "job", "node-uuid", "NX", "EX", "30"]).await?;
/// assert_eq!(raw.get("job").await?.as_deref(), Some("node-uuid"));
/// assert_eq!(raw.command(&["RPUSH", "job", "x"]).await?, Resp::Error(
///     "WRONGTYPE Operation against a key holding the wrong kind of value".to_owned(),
/// ));
/// # Ok(()) }
/// ```
pub struct RawRedis {
    address: String,
    stream: tokio::io::BufStream<tokio::net::TcpStream>,
}

impl RawRedis {
    /// Connects to the server at `url` (`redis://host:port/`, without credentials; a database
    /// in the path is ignored).
    ///
    /// # Errors
    ///
    /// When the URL has credentials or is not `redis://`, or the server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, String> {
        Self::connect_to(&address_of(url)?).await
    }

    /// Connects to `host:port`.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached.
    pub async fn connect_to(address: &str) -> Result<Self, String> {
        let stream =
            tokio::time::timeout(RAW_REPLY_TIMEOUT, tokio::net::TcpStream::connect(address))
                .await
                .map_err(|_| {
                    format!("connecting to {address}: no connection within {RAW_REPLY_TIMEOUT:?}")
                })?
                .map_err(|e| format!("connecting to {address}: {e}"))?;
        Ok(RawRedis {
            address: address.to_owned(),
            stream: tokio::io::BufStream::new(stream),
        })
    }

    /// The server's `host:port`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Sends `args` as one command and returns the reply; an error reply is
    /// [`Resp::Error`], not an `Err`.
    ///
    /// # Errors
    ///
    /// When the connection fails or the server does not answer within 10 s.
    pub async fn command(&mut self, args: &[&str]) -> Result<Resp, String> {
        self.send(args).await?;
        self.reply().await
    }

    /// As [`command`](RawRedis::command), with an error reply as an `Err`.
    ///
    /// # Errors
    ///
    /// As [`command`](RawRedis::command), and for an error reply.
    pub async fn run(&mut self, args: &[&str]) -> Result<Resp, String> {
        match self.command(args).await? {
            Resp::Error(e) => Err(format!("{args:?} on {}: {e}", self.address)),
            reply => Ok(reply),
        }
    }

    /// `GET key`, as text.
    ///
    /// # Errors
    ///
    /// As [`run`](RawRedis::run), and when the reply is not a string or nil.
    pub async fn get(&mut self, key: &str) -> Result<Option<String>, String> {
        match self.run(&["GET", key]).await? {
            Resp::Bulk(None) => Ok(None),
            reply => reply
                .as_str()
                .map(|text| Some(text.to_owned()))
                .ok_or_else(|| format!("GET {key} answered {reply:?}")),
        }
    }

    /// Sends `args` and an integer reply back.
    ///
    /// # Errors
    ///
    /// As [`run`](RawRedis::run), and when the reply is not an integer.
    pub async fn int(&mut self, args: &[&str]) -> Result<i64, String> {
        let reply = self.run(args).await?;
        reply
            .as_int()
            .ok_or_else(|| format!("{args:?} answered {reply:?}"))
    }

    /// Writes `args` as one command (a RESP array of bulk strings) without reading its reply.
    ///
    /// # Errors
    ///
    /// When the connection fails.
    pub async fn send(&mut self, args: &[&str]) -> Result<(), String> {
        self.stream
            .write_all(&encode(args))
            .await
            .and(self.stream.flush().await)
            .map_err(|e| format!("sending {args:?} to {}: {e}", self.address))
    }

    /// Reads the next reply (or, after `MONITOR`, the next line of the feed).
    ///
    /// # Errors
    ///
    /// When the connection fails or closes, or no reply comes within 10 s.
    pub async fn reply(&mut self) -> Result<Resp, String> {
        tokio::time::timeout(RAW_REPLY_TIMEOUT, read_reply(&mut self.stream))
            .await
            .map_err(|_| format!("{}: no reply within {RAW_REPLY_TIMEOUT:?}", self.address))?
            .map_err(|e| format!("reading a reply from {}: {e}", self.address))
    }

    /// Reads the next reply, however long it takes (for feeds such as `MONITOR`).
    async fn reply_untimed(&mut self) -> Result<Resp, String> {
        read_reply(&mut self.stream).await
    }
}

impl fmt::Debug for RawRedis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawRedis")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// `args` as a RESP array of bulk strings.
fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// One RESP2 reply from `stream`.
fn read_reply<R: tokio::io::AsyncBufRead + Unpin + Send>(
    stream: &mut R,
) -> std::pin::Pin<Box<dyn Future<Output = Result<Resp, String>> + Send + '_>> {
    Box::pin(async move {
        let mut line = Vec::new();
        let read = tokio::io::AsyncBufReadExt::read_until(stream, b'\n', &mut line)
            .await
            .map_err(|e| e.to_string())?;
        if read == 0 {
            return Err("the connection was closed".to_owned());
        }
        let text = String::from_utf8_lossy(&line);
        let text = text
            .strip_suffix("\r\n")
            .ok_or_else(|| format!("a line without CRLF: {text:?}"))?;
        let (kind, rest) = text.split_at_checked(1).unwrap_or(("", ""));
        let number = || {
            rest.parse::<i64>()
                .map_err(|_| format!("not a RESP length or integer: {text:?}"))
        };
        Ok(match kind {
            "+" => Resp::Simple(rest.to_owned()),
            "-" => Resp::Error(rest.to_owned()),
            ":" => Resp::Int(number()?),
            "$" => match usize::try_from(number()?) {
                Err(_) => Resp::Bulk(None),
                Ok(len) => {
                    let mut bytes = vec![0; len + 2];
                    stream
                        .read_exact(&mut bytes)
                        .await
                        .map_err(|e| e.to_string())?;
                    bytes.truncate(len);
                    Resp::Bulk(Some(bytes))
                }
            },
            "*" => match usize::try_from(number()?) {
                Err(_) => Resp::Array(None),
                Ok(len) => {
                    let mut items = Vec::with_capacity(len.min(1024));
                    for _ in 0..len {
                        items.push(read_reply(stream).await?);
                    }
                    Resp::Array(Some(items))
                }
            },
            _ => return Err(format!("not a RESP2 reply: {text:?}")),
        })
    })
}

/// Counts the commands clients send to a Redis server, through `MONITOR`: each command a client
/// sends is one round trip, while those a script runs inside (`[0 lua]` in the feed) are not.
/// `INFO commandstats` counts both, so it cannot tell them apart.
///
/// # Examples
///
/// ```no_run
/// # async fn f(url: &str) -> Result<(), String> {
/// use conformance::redis_server::CommandCounter;
///
/// let counter = CommandCounter::start(url).await?;
/// // ... one operation ...
/// assert_eq!(counter.take().await?, vec!["evalsha".to_owned()]);
/// # Ok(()) }
/// ```
pub struct CommandCounter {
    address: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    reader: tokio::task::JoinHandle<()>,
}

impl CommandCounter {
    /// Starts monitoring the server at `url` (`redis://host:port/`, without credentials).
    ///
    /// # Errors
    ///
    /// When the URL has credentials or the server cannot be reached.
    pub async fn start(url: &str) -> Result<Self, String> {
        let mut monitor = RawRedis::connect(url).await?;
        let address = monitor.address().to_owned();
        match monitor.command(&["MONITOR"]).await? {
            Resp::Simple(ok) if ok == "OK" => {}
            other => return Err(format!("MONITOR answered {other:?}")),
        }
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = seen.clone();
        let reader = tokio::spawn(async move {
            // Each command executed is one simple-string line of the feed.
            while let Ok(Resp::Simple(line)) = monitor.reply_untimed().await {
                if let Some(command) = client_command(&line) {
                    sink.lock().unwrap_or_else(|p| p.into_inner()).push(command);
                }
            }
        });
        Ok(CommandCounter {
            address,
            seen,
            reader,
        })
    }

    /// The names (lowercase) of the commands clients sent since the last call, in order.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached.
    pub async fn take(&self) -> Result<Vec<String>, String> {
        // MONITOR reports commands in execution order: once a marker sent now shows up, every
        // command executed before it has been seen.
        let marker = format!("process-lock-marker-{}", std::process::id());
        let mut raw = RawRedis::connect_to(&self.address).await?;
        raw.run(&["ECHO", &marker]).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            {
                let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(at) = seen.iter().position(|c| c == "echo") {
                    let commands: Vec<String> = seen.drain(..=at).collect();
                    return Ok(commands[..commands.len() - 1].to_vec());
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err("the MONITOR feed did not show the marker within 10 s".to_owned());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for CommandCounter {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl fmt::Debug for CommandCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandCounter")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// `host:port` of a `redis://host:port/db` URL without credentials.
pub(crate) fn address_of(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("redis://")
        .ok_or_else(|| format!("{url}: only redis:// URLs are supported"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.contains('@') {
        return Err("a server that needs credentials is not supported".to_owned());
    }
    Ok(if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:6379")
    })
}

/// The command name of a MONITOR line sent by a client, `None` for one a script ran:
/// `+1700000000.123456 [0 127.0.0.1:54321] "evalsha" "..."` vs `... [0 lua] "get" ...`.
fn client_command(line: &str) -> Option<String> {
    let (source, rest) = line.split_once(']')?;
    if source.ends_with(" lua") {
        return None;
    }
    let name = rest.trim_start().strip_prefix('"')?.split('"').next()?;
    Some(name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_lines() {
        let client = "+1764131412.123456 [0 127.0.0.1:54321] \"EVALSHA\" \"ab\" \"1\" \"k\"\r\n";
        let script = "+1764131412.123460 [0 lua] \"GET\" \"k\"\r\n";
        assert_eq!(client_command(client).as_deref(), Some("evalsha"));
        assert_eq!(client_command(script), None);
        assert_eq!(
            address_of("redis://127.0.0.1:32768/").unwrap(),
            "127.0.0.1:32768"
        );
        assert_eq!(address_of("redis://h").unwrap(), "h:6379");
        assert!(address_of("redis://u:p@h:1/").is_err());
    }

    #[tokio::test]
    async fn resp2_replies() {
        let mut input: &[u8] =
            b"+OK\r\n-ERR no\r\n:-2\r\n$5\r\nab\r\nc\r\n$-1\r\n*2\r\n:1\r\n*-1\r\n*0\r\n";
        let mut replies = Vec::new();
        while !input.is_empty() {
            replies.push(read_reply(&mut input).await.unwrap());
        }
        assert_eq!(
            replies,
            [
                Resp::Simple("OK".to_owned()),
                Resp::Error("ERR no".to_owned()),
                Resp::Int(-2),
                Resp::Bulk(Some(b"ab\r\nc".to_vec())),
                Resp::Bulk(None),
                Resp::Array(Some(vec![Resp::Int(1), Resp::Array(None)])),
                Resp::Array(Some(vec![])),
            ]
        );
        assert_eq!(replies[3].as_str(), Some("ab\r\nc"));
        assert!(replies[4].is_nil());
        assert!(read_reply(&mut &b"+OK"[..]).await.is_err(), "no CRLF");
        assert!(read_reply(&mut &b""[..]).await.is_err(), "closed");
        assert_eq!(
            encode(&["GET", "k"]),
            b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n".to_vec()
        );
    }
}
