//! [`ServerProcess`]: a `redis-server` child process on a free port of 127.0.0.1, in a
//! temporary directory of its own, killed and its directory removed when dropped. Both the
//! plain fallback server and the TLS server run on it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::resp::{RawRedis, Resp};

/// When a started server counts as ready.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ready {
    /// It answers `PING` in plain RESP.
    Pong,
    /// It accepts TCP connections (a TLS port, which plain RESP cannot probe).
    Listening,
}

/// A running `redis-server`; see the module docs.
#[derive(Debug)]
pub(crate) struct ServerProcess {
    child: Child,
    dir: PathBuf,
    port: u16,
}

/// A fresh, empty directory for one server (unique within this process).
/// A port free on loopback now (it may be taken before it is bound).
pub(crate) fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|address| address.port())
        .map_err(|e| format!("no free port: {e}"))
}

pub(crate) fn temp_dir(label: &str) -> Result<PathBuf, String> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "process-lock-{label}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

impl ServerProcess {
    /// Starts `redis-server args... PORT_FLAG PORT` in `dir` (its working, and so its data,
    /// directory), which it then owns. A free port can be taken between finding and binding
    /// it, so this tries a few. `hint` is added to errors about the binary.
    pub(crate) async fn start(
        dir: PathBuf,
        args: &[&str],
        port_flag: &str,
        ready: Ready,
        hint: &str,
    ) -> Result<Self, String> {
        let mut last_error = String::new();
        for _ in 0..3 {
            let port = match TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
                Ok(address) => address.port(),
                Err(e) => {
                    last_error = format!("no free port: {e}");
                    continue;
                }
            };
            let child = match Command::new("redis-server")
                .args(args)
                .args([port_flag, &port.to_string()])
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
            {
                Ok(child) => child,
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&dir);
                    return Err(format!("cannot run redis-server{hint}: {e}"));
                }
            };
            let mut child = child;
            match wait_ready(&mut child, port, ready, Duration::from_secs(10), hint).await {
                Ok(()) => return Ok(ServerProcess { child, dir, port }),
                Err(e) => last_error = e,
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&dir);
        Err(last_error)
    }

    /// Sends it the signal `name` (`STOP`, `CONT`), with `kill`.
    pub(crate) fn signal(&self, name: &str) -> Result<(), String> {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .map_err(|e| format!("kill -{name}: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("kill -{name} {} failed: {status}", self.child.id()))
        }
    }

    /// The port it listens on.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Its directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}

async fn wait_ready(
    child: &mut Child,
    port: u16,
    ready: Ready,
    within: Duration,
    hint: &str,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + within;
    let address = format!("127.0.0.1:{port}");
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("redis-server exited with {status}{hint}"));
        }
        let up = match ready {
            Ready::Pong => match RawRedis::connect_to(&address).await {
                Ok(mut raw) => {
                    matches!(raw.command(&["PING"]).await, Ok(Resp::Simple(p)) if p == "PONG")
                }
                Err(_) => false,
            },
            Ready::Listening => tokio::net::TcpStream::connect(&address).await.is_ok(),
        };
        if up {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "redis-server was not ready on {address} within {within:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
