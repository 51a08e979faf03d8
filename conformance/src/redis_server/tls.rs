//! [`TlsRedisServer`]: a real TLS-only `redis-server` with a certificate from a throwaway CA.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::process::{self, Ready, ServerProcess};

/// A real `redis-server` that accepts only TLS, on a free port of 127.0.0.1, with a server
/// certificate (for `127.0.0.1` and `localhost`) signed by a CA made for it alone: for testing
/// `rediss://`. Killed, and its files removed, when dropped.
///
/// Needs `openssl` and a `redis-server` built with TLS (Debian's is) on `PATH`.
///
/// A client must trust [`ca_pem`](TlsRedisServer::ca_pem) to connect; one trusting only the
/// system's roots is refused with an unknown-issuer error.
///
/// # Examples
///
/// ```no_run
/// # async fn f() -> Result<(), String> {
/// use conformance::redis_server::TlsRedisServer;
///
/// let server = TlsRedisServer::start().await?;
/// let url = server.url(); // rediss://127.0.0.1:port/
/// let ca = server.ca_pem(); // trust this, and only this, to connect
/// # Ok(()) }
/// ```
pub struct TlsRedisServer {
    process: ServerProcess,
    url: String,
    ca_pem: Vec<u8>,
}

impl TlsRedisServer {
    /// Makes a CA and a server certificate signed by it, and starts `redis-server` on a
    /// TLS-only port.
    ///
    /// # Errors
    ///
    /// When `openssl` or `redis-server` is missing or fails, or the server does not listen
    /// within 5 s.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::TlsRedisServer;
    ///
    /// let server = TlsRedisServer::start().await?;
    /// let url = server.url();
    /// # Ok(()) }
    /// ```
    pub async fn start() -> Result<Self, String> {
        let dir = process::temp_dir("tls")?;
        let ca_pem = tokio::task::spawn_blocking({
            let dir = dir.clone();
            move || make_certificates(&dir)
        })
        .await
        .map_err(|e| format!("making certificates: {e}"))??;
        let args = [
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--tls-cert-file",
            "server.crt",
            "--tls-key-file",
            "server.key",
            "--tls-ca-cert-file",
            "ca.crt",
            "--tls-auth-clients",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
        ];
        let hint = " (one built with TLS must be on PATH)";
        let process =
            ServerProcess::start(dir, &args, "--tls-port", Ready::Listening, hint).await?;
        Ok(TlsRedisServer {
            url: format!("rediss://127.0.0.1:{}/", process.port()),
            process,
            ca_pem,
        })
    }

    /// The server's URL, `rediss://127.0.0.1:port/`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::TlsRedisServer;
    ///
    /// let server = TlsRedisServer::start().await?;
    /// assert!(server.url().starts_with("rediss://"));
    /// # Ok(()) }
    /// ```
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The TLS port.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::TlsRedisServer;
    ///
    /// let server = TlsRedisServer::start().await?;
    /// let plain_text_url = format!("redis://127.0.0.1:{}/", server.port()); // refused: TLS only
    /// # Ok(()) }
    /// ```
    pub fn port(&self) -> u16 {
        self.process.port()
    }

    /// The CA's certificate, in PEM: the one root a client must trust.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::TlsRedisServer;
    ///
    /// let server = TlsRedisServer::start().await?;
    /// let ca = server.ca_pem(); // the only certificate to trust
    /// # Ok(()) }
    /// ```
    pub fn ca_pem(&self) -> &[u8] {
        &self.ca_pem
    }

    /// The file holding [`ca_pem`](TlsRedisServer::ca_pem), for clients that read one.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::TlsRedisServer;
    ///
    /// let server = TlsRedisServer::start().await?;
    /// let ca_file = server.ca_path(); // for clients that read a file
    /// # Ok(()) }
    /// ```
    pub fn ca_path(&self) -> PathBuf {
        self.process.dir().join("ca.crt")
    }
}

impl fmt::Debug for TlsRedisServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsRedisServer")
            .field("url", &self.url)
            .field("dir", &self.process.dir())
            .finish_non_exhaustive()
    }
}

/// In `dir`: a CA (`ca.crt`), and a key and certificate for 127.0.0.1 signed by it
/// (`server.key`, `server.crt`). Returns the CA's certificate.
fn make_certificates(dir: &Path) -> Result<Vec<u8>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let made = (|| {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=process-lock test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
            ],
        )?;
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
            ],
        )?;
        std::fs::write(
            dir.join("san.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .map_err(|e| e.to_string())?;
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "1",
                "-extfile",
                "san.ext",
                "-out",
                "server.crt",
            ],
        )?;
        std::fs::read(dir.join("ca.crt")).map_err(|e| format!("reading ca.crt: {e}"))
    })();
    if made.is_err() {
        let _ = std::fs::remove_dir_all(dir);
    }
    made
}

/// Runs `openssl args` in `dir`.
fn openssl(dir: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run openssl (it must be on PATH): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
