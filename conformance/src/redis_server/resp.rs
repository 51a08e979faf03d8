//! [`RawRedis`]: a minimal RESP2 client, and [`Resp`], its replies.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A reply of Redis, in RESP2 (what a connection speaks unless it sends `HELLO 3`).
///
/// # Examples
///
/// ```
/// use conformance::redis_server::Resp;
///
/// let reply = Resp::Bulk(Some(b"owner-token".to_vec()));
/// assert_eq!(reply.as_str(), Some("owner-token"));
/// assert!(Resp::Bulk(None).is_nil());
/// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use conformance::redis_server::Resp;
    ///
    /// assert_eq!(Resp::Simple("OK".to_owned()).as_str(), Some("OK"));
    /// assert_eq!(Resp::Int(1).as_str(), None);
    /// ```
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Resp::Simple(text) => Some(text),
            Resp::Bulk(Some(bytes)) => std::str::from_utf8(bytes).ok(),
            _ => None,
        }
    }

    /// The integer of an integer reply.
    ///
    /// # Examples
    ///
    /// ```
    /// use conformance::redis_server::Resp;
    ///
    /// assert_eq!(Resp::Int(-2).as_int(), Some(-2));
    /// assert_eq!(Resp::Simple("OK".to_owned()).as_int(), None);
    /// ```
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Resp::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// Whether this is the null bulk string or the null array.
    ///
    /// # Examples
    ///
    /// ```
    /// use conformance::redis_server::Resp;
    ///
    /// assert!(Resp::Array(None).is_nil());
    /// assert!(!Resp::Bulk(Some(Vec::new())).is_nil());
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(url: &str) -> Result<(), String> {
    /// use conformance::redis_server::{RawRedis, Resp};
    ///
    /// let mut raw = RawRedis::connect(url).await?;
    /// assert_eq!(raw.run(&["PING"]).await?, Resp::Simple("PONG".to_owned()));
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str) -> Result<Self, String> {
        Self::connect_to(&address_of(url)?).await
    }

    /// Connects to `host:port`.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::RawRedis;
    ///
    /// let mut raw = RawRedis::connect_to("127.0.0.1:6379").await?;
    /// # Ok(()) }
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(url: &str) -> Result<(), String> {
    /// use conformance::redis_server::{RawRedis, Resp};
    ///
    /// let mut raw = RawRedis::connect(url).await?;
    /// println!("talking to {}", raw.address());
    /// # Ok(()) }
    /// ```
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Sends `args` as one command and returns the reply; an error reply is
    /// [`Resp::Error`], not an `Err`.
    ///
    /// # Errors
    ///
    /// When the connection fails or the server does not answer within 10 s.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(url: &str) -> Result<(), String> {
    /// use conformance::redis_server::{RawRedis, Resp};
    ///
    /// let mut raw = RawRedis::connect(url).await?;
    /// let reply = raw.command(&["INCR", "not-a-number-key"]).await?;
    /// assert!(matches!(reply, Resp::Int(_) | Resp::Error(_)));
    /// # Ok(()) }
    /// ```
    pub async fn command(&mut self, args: &[&str]) -> Result<Resp, String> {
        self.send(args).await?;
        self.reply().await
    }

    /// As [`command`](RawRedis::command), with an error reply as an `Err`.
    ///
    /// # Errors
    ///
    /// As [`command`](RawRedis::command), and for an error reply.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(url: &str) -> Result<(), String> {
    /// use conformance::redis_server::{RawRedis, Resp};
    ///
    /// let mut raw = RawRedis::connect(url).await?;
    /// raw.run(&["SET", "jobs", "token", "PX", "30000"]).await?;
    /// # Ok(()) }
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(url: &str) -> Result<(), String> {
    /// use conformance::redis_server::{RawRedis, Resp};
    ///
    /// let mut raw = RawRedis::connect(url).await?;
    /// assert_eq!(raw.get("no-such-key").await?, None);
    /// # Ok(()) }
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(url: &str) -> Result<(), String> {
    /// use conformance::redis_server::{RawRedis, Resp};
    ///
    /// let mut raw = RawRedis::connect(url).await?;
    /// let ttl = raw.int(&["PTTL", "jobs"]).await?;
    /// # Ok(()) }
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(url: &str) -> Result<(), String> {
    /// use conformance::redis_server::{RawRedis, Resp};
    ///
    /// let mut raw = RawRedis::connect(url).await?;
    /// raw.send(&["CLIENT", "PAUSE", "500"]).await?;
    /// let ok = raw.reply().await?;
    /// # Ok(()) }
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(url: &str) -> Result<(), String> {
    /// use conformance::redis_server::{RawRedis, Resp};
    ///
    /// let mut raw = RawRedis::connect(url).await?;
    /// raw.send(&["PING"]).await?;
    /// assert_eq!(raw.reply().await?, Resp::Simple("PONG".to_owned()));
    /// # Ok(()) }
    /// ```
    pub async fn reply(&mut self) -> Result<Resp, String> {
        tokio::time::timeout(RAW_REPLY_TIMEOUT, read_reply(&mut self.stream))
            .await
            .map_err(|_| format!("{}: no reply within {RAW_REPLY_TIMEOUT:?}", self.address))?
            .map_err(|e| format!("reading a reply from {}: {e}", self.address))
    }

    /// Reads the next reply, however long it takes (for feeds such as `MONITOR`).
    pub(super) async fn reply_untimed(&mut self) -> Result<Resp, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
