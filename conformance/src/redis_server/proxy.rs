//! [`FaultyProxy`]: a TCP proxy in front of a Redis server that breaks the network on demand.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

use super::resp::address_of;

/// A TCP proxy in front of a Redis server, to break the network between a backend and the
/// server on demand, for real:
///
/// - after [`lose_next_reply`](FaultyProxy::lose_next_reply), the next reply closes the connection
///   instead of reaching the client, *after* the server applied the request, as when the
///   network fails at the worst moment;
/// - while [`set_down`](FaultyProxy::set_down) is on, every connection is cut and new ones are
///   closed at once, as if the server were gone;
/// - after [`delay_replies`](FaultyProxy::delay_replies), every reply reaches the client that
///   long after the server sent it (requests are not delayed), in order, as on a slow link;
/// - [`switch_to`](FaultyProxy::switch_to) cuts every connection and sends new ones to another
///   server: to the clients, the server at the proxy's address restarted (with that server's
///   data, start time and all).
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
    upstream: watch::Sender<String>,
    /// Bumped to cut every connection open.
    cuts: watch::Sender<u64>,
    lose: Arc<AtomicBool>,
    delay_micros: Arc<AtomicU64>,
    down: watch::Sender<bool>,
    /// The connections carried now (both sides open).
    open: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultyProxy {
    /// Starts a proxy on a free port of 127.0.0.1 to the server at `upstream_url`
    /// (`redis://host:port/`, without credentials).
    ///
    /// # Errors
    ///
    /// When the URL is not one of those, or no port can be bound.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(server_url: &str) -> Result<(), String> {
    /// use std::time::Duration;
    /// use conformance::redis_server::FaultyProxy;
    ///
    /// let proxy = FaultyProxy::start(server_url).await?;
    /// // ... connect the backend under test to proxy.url() ...
    /// # Ok(()) }
    /// ```
    pub async fn start(upstream_url: &str) -> Result<FaultyProxy, String> {
        let upstream = address_of(upstream_url)?;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("no port for the proxy: {e}"))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        let url = format!("redis://{address}/");
        let lose = Arc::new(AtomicBool::new(false));
        let losing = lose.clone();
        let delay_micros = Arc::new(AtomicU64::new(0));
        let delaying = delay_micros.clone();
        let (down, is_down) = watch::channel(false);
        let (upstream, target) = watch::channel(upstream);
        let (cuts, cut) = watch::channel(0_u64);
        let open = Arc::new(AtomicUsize::new(0));
        let opened = open.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *is_down.borrow() {
                    continue; // dropped: closed at once
                }
                let address = target.borrow().clone();
                let Ok(server) = TcpStream::connect(&address).await else {
                    continue;
                };
                let mut cut = cut.clone();
                cut.mark_unchanged();
                opened.fetch_add(1, Ordering::SeqCst);
                let closed = opened.clone();
                let forwarding = forward(
                    client,
                    server,
                    losing.clone(),
                    delaying.clone(),
                    (is_down.clone(), cut),
                );
                tokio::spawn(async move {
                    forwarding.await;
                    closed.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Ok(FaultyProxy {
            url,
            upstream,
            cuts,
            lose,
            delay_micros,
            down,
            open,
            task,
        })
    }

    /// The proxy's URL, `redis://127.0.0.1:port/`, for the backend under test.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(server_url: &str) -> Result<(), String> {
    /// use std::time::Duration;
    /// use conformance::redis_server::FaultyProxy;
    ///
    /// let proxy = FaultyProxy::start(server_url).await?;
    /// assert!(proxy.url().starts_with("redis://127.0.0.1:"));
    /// # Ok(()) }
    /// ```
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Loses the next reply from the server (on any connection): it closes its connection
    /// instead of reaching the client; later replies pass again.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(server_url: &str) -> Result<(), String> {
    /// use std::time::Duration;
    /// use conformance::redis_server::FaultyProxy;
    ///
    /// let proxy = FaultyProxy::start(server_url).await?;
    /// proxy.lose_next_reply(); // the next request runs, and its reply never comes
    /// # Ok(()) }
    /// ```
    pub fn lose_next_reply(&self) {
        self.lose.store(true, Ordering::SeqCst);
    }

    /// While `down` is true, every connection is cut and new ones are closed at once.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(server_url: &str) -> Result<(), String> {
    /// use std::time::Duration;
    /// use conformance::redis_server::FaultyProxy;
    ///
    /// let proxy = FaultyProxy::start(server_url).await?;
    /// proxy.set_down(true);
    /// // ... requests fail with Connection errors ...
    /// proxy.set_down(false);
    /// # Ok(()) }
    /// ```
    pub fn set_down(&self, down: bool) {
        self.down.send_replace(down);
    }

    /// [`set_down`](Self::set_down) on, and returns once every connection it carried is
    /// closed (cutting them is asynchronous: a request sent just after `set_down` may still be
    /// carried, and its reply then never comes).
    ///
    /// # Errors
    ///
    /// When a connection is still open after `within`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(server_url: &str) -> Result<(), String> {
    /// use std::time::Duration;
    /// use conformance::redis_server::FaultyProxy;
    ///
    /// let proxy = FaultyProxy::start(server_url).await?;
    /// proxy.cut_off(Duration::from_secs(5)).await?;
    /// // Every request through the proxy now finds no connection.
    /// # Ok(()) }
    /// ```
    pub async fn cut_off(&self, within: Duration) -> Result<(), String> {
        self.set_down(true);
        let deadline = Instant::now() + within;
        while self.open.load(Ordering::SeqCst) > 0 {
            if Instant::now() >= deadline {
                return Err(format!(
                    "{} connections through the proxy still open {within:?} after it went down",
                    self.open.load(Ordering::SeqCst)
                ));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    /// Cuts every connection and sends the new ones to the server at `upstream_url`
    /// (`redis://host:port/`, without credentials), as a restart of the server behind the
    /// proxy's address would look to its clients.
    ///
    /// # Errors
    ///
    /// When the URL is not one of those.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(server_url: &str) -> Result<(), String> {
    /// use std::time::Duration;
    /// use conformance::redis_server::FaultyProxy;
    ///
    /// let proxy = FaultyProxy::start(server_url).await?;
    /// // A restart without persistence behind the same address:
    /// proxy.switch_to("redis://127.0.0.1:6380/")?;
    /// # Ok(()) }
    /// ```
    pub fn switch_to(&self, upstream_url: &str) -> Result<(), String> {
        let address = address_of(upstream_url)?;
        self.upstream.send_replace(address);
        self.cuts.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Holds every reply from the server (on any connection) back by `delay` before passing it
    /// on, in order; requests still go through at once. `Duration::ZERO` ends the delay (for
    /// replies read from then on).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f(server_url: &str) -> Result<(), String> {
    /// use std::time::Duration;
    /// use conformance::redis_server::FaultyProxy;
    ///
    /// let proxy = FaultyProxy::start(server_url).await?;
    /// proxy.delay_replies(Duration::from_millis(300)); // a slow link
    /// # Ok(()) }
    /// ```
    pub fn delay_replies(&self, delay: Duration) {
        let micros = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.delay_micros.store(micros, Ordering::SeqCst);
    }
}

/// Carries one connection's bytes both ways until either side closes, a reply is to be lost,
/// or the proxy goes down; replies reach the client `delay_micros` after they were read.
async fn forward(
    client: TcpStream,
    server: TcpStream,
    losing: Arc<AtomicBool>,
    delay_micros: Arc<AtomicU64>,
    (mut is_down, mut cuts): (watch::Receiver<bool>, watch::Receiver<u64>),
) {
    let (mut client_reader, mut client_writer) = client.into_split();
    let (mut server_reader, mut server_writer) = server.into_split();
    let requests = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_reader, &mut server_writer).await;
    });
    // Replies go out in order, each at its time: when it was read plus the delay then.
    let (replies, mut due) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((at, reply)) = due.recv().await {
            tokio::time::sleep_until(at).await;
            if client_writer.write_all(&reply).await.is_err() {
                break;
            }
        }
    });
    let mut buf = vec![0; 16 * 1024];
    let mut cut = false;
    loop {
        let read = tokio::select! {
            read = server_reader.read(&mut buf) => read,
            _ = is_down.wait_for(|down| *down) => {
                cut = true;
                break;
            }
            _ = cuts.changed() => {
                cut = true;
                break;
            }
        };
        match read {
            Ok(0) | Err(_) => break,
            Ok(_) if losing.swap(false, Ordering::SeqCst) => break,
            Ok(n) => {
                let delay = Duration::from_micros(delay_micros.load(Ordering::SeqCst));
                if replies
                    .send((Instant::now() + delay, buf[..n].to_vec()))
                    .is_err()
                {
                    break;
                }
            }
        }
    }
    drop(replies);
    if cut {
        writer.abort();
    }
    // The replies read before are delivered (late, if delayed), unless cut; then the
    // connection closes.
    let _ = writer.await;
    // Dropping every half closes both connections: done once the aborted tasks have ended.
    requests.abort();
    let _ = requests.await;
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
            .field("upstream", &*self.upstream.borrow())
            .field("losing_replies", &self.lose.load(Ordering::SeqCst))
            .field(
                "reply_delay",
                &Duration::from_micros(self.delay_micros.load(Ordering::SeqCst)),
            )
            .field("down", &*self.down.borrow())
            .finish()
    }
}
