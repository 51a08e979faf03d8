//! [`FaultyProxy`]: a TCP proxy in front of a Redis server that breaks the network on demand.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::redis_server::address_of;

/// A TCP proxy in front of a Redis server, to break the network between a backend and the
/// server on demand, for real:
///
/// - after [`lose_next_reply`](FaultyProxy::lose_next_reply), the next reply closes the connection
///   instead of reaching the client, *after* the server applied the request, as when the
///   network fails at the worst moment;
/// - while [`set_down`](FaultyProxy::set_down) is on, every connection is cut and new ones are
///   closed at once, as if the server were gone.
///
/// The proxy runs on the current tokio runtime and stops when dropped.
///
/// # Examples
///
/// ```no_run
/// # async fn f(server_url: &str) -> Result<(), String> {
/// use conformance::redis_server::FaultyProxy;
///
/// let proxy = FaultyProxy::start(server_url).await?;
/// // ... connect the backend to proxy.url() ...
/// proxy.set_down(true);
/// // ... every operation fails with a Connection error ...
/// proxy.set_down(false);
/// # Ok(()) }
/// ```
pub struct FaultyProxy {
    url: String,
    upstream: String,
    lose: Arc<AtomicBool>,
    down: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultyProxy {
    /// Starts a proxy on a free port of 127.0.0.1 to the server at `upstream_url`
    /// (`redis://host:port/`, without credentials).
    ///
    /// # Errors
    ///
    /// When the URL is not one of those, or no port can be bound.
    pub async fn start(upstream_url: &str) -> Result<FaultyProxy, String> {
        let upstream = address_of(upstream_url)?;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("no port for the proxy: {e}"))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        let url = format!("redis://{address}/");
        let lose = Arc::new(AtomicBool::new(false));
        let losing = lose.clone();
        let (down, is_down) = watch::channel(false);
        let target = upstream.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *is_down.borrow() {
                    continue; // dropped: closed at once
                }
                let Ok(server) = TcpStream::connect(&target).await else {
                    continue;
                };
                tokio::spawn(forward(client, server, losing.clone(), is_down.clone()));
            }
        });
        Ok(FaultyProxy {
            url,
            upstream,
            lose,
            down,
            task,
        })
    }

    /// The proxy's URL, `redis://127.0.0.1:port/`, for the backend under test.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Loses the next reply from the server (on any connection): it closes its connection
    /// instead of reaching the client; later replies pass again.
    pub fn lose_next_reply(&self) {
        self.lose.store(true, Ordering::SeqCst);
    }

    /// While `down` is true, every connection is cut and new ones are closed at once.
    pub fn set_down(&self, down: bool) {
        self.down.send_replace(down);
    }
}

/// Carries one connection's bytes both ways until either side closes, a reply is to be lost,
/// or the proxy goes down.
async fn forward(
    client: TcpStream,
    server: TcpStream,
    losing: Arc<AtomicBool>,
    mut is_down: watch::Receiver<bool>,
) {
    let (mut client_reader, mut client_writer) = client.into_split();
    let (mut server_reader, mut server_writer) = server.into_split();
    let requests = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_reader, &mut server_writer).await;
    });
    let mut buf = vec![0; 16 * 1024];
    loop {
        let read = tokio::select! {
            read = server_reader.read(&mut buf) => read,
            _ = is_down.wait_for(|down| *down) => break,
        };
        match read {
            Ok(0) | Err(_) => break,
            Ok(_) if losing.swap(false, Ordering::SeqCst) => break,
            Ok(n) => {
                if client_writer.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    // Dropping every half closes both connections.
    requests.abort();
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl fmt::Debug for FaultyProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyProxy")
            .field("url", &self.url)
            .field("upstream", &self.upstream)
            .field("losing_replies", &self.lose.load(Ordering::SeqCst))
            .field("down", &*self.down.borrow())
            .finish()
    }
}
