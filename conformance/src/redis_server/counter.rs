//! [`CommandCounter`]: counts the commands clients send, through `MONITOR`.

use std::fmt;
use std::time::Duration;

use super::resp::{RawRedis, Resp};

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
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(url: &str) -> Result<(), String> {
    /// use conformance::redis_server::CommandCounter;
    ///
    /// let counter = CommandCounter::start(url).await?;
    /// // ... operations through the backend under test ...
    /// let sent = counter.take().await?;
    /// # Ok(()) }
    /// ```
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
                if client_command(&line).is_some() {
                    sink.lock().unwrap_or_else(|p| p.into_inner()).push(line);
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
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(url: &str) -> Result<(), String> {
    /// use conformance::redis_server::CommandCounter;
    ///
    /// let counter = CommandCounter::start(url).await?;
    /// // ... operations through the backend under test ...
    /// let sent = counter.take().await?;
    /// assert!(sent.iter().all(|name| name == "evalsha"));
    /// # Ok(()) }
    /// ```
    pub async fn take(&self) -> Result<Vec<String>, String> {
        let lines = self.take_lines().await?;
        Ok(lines.iter().filter_map(|l| client_command(l)).collect())
    }

    /// The `MONITOR` lines of the commands clients sent since the last call, in the order the
    /// server ran them: `+<time> [<db> <client>] "<command>" "<arg>" ...`.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(url: &str) -> Result<(), String> {
    /// use conformance::redis_server::CommandCounter;
    ///
    /// let counter = CommandCounter::start(url).await?;
    /// // ... operations through the backend under test ...
    /// for line in counter.take_lines().await? {
    ///     println!("{line}"); // 1700000000.123456 [0 127.0.0.1:5000] "EVALSHA" ...
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn take_lines(&self) -> Result<Vec<String>, String> {
        // MONITOR reports commands in execution order: once a marker sent now shows up, every
        // command executed before it has been seen.
        let marker = format!("process-lock-marker-{}", std::process::id());
        let mut raw = RawRedis::connect_to(&self.address).await?;
        raw.run(&["ECHO", &marker]).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            {
                let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
                let is_marker = |l: &String| {
                    client_command(l).as_deref() == Some("echo") && l.contains(&marker)
                };
                if let Some(at) = seen.iter().position(is_marker) {
                    let lines: Vec<String> = seen.drain(..=at).collect();
                    return Ok(lines[..lines.len() - 1].to_vec());
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
    use crate::redis_server::resp::address_of;

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
}
