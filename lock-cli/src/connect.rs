//! Connecting the chosen backend to the server the options name.

use std::sync::Arc;

use process_lock::LockBackendExt;
use process_lock::layers::TracingLayer;
use process_lock::{BackendBuilder, LockBackend};

use crate::cli::Global;
use crate::duration;
use crate::exit::{self, Failure};

/// What connecting needs, validated before anything is sent.
pub(crate) struct Target {
    /// The backend, URL and settings.
    builder: BackendBuilder,
    /// With several servers, their URLs: Redlock over them.
    urls: Option<Vec<String>>,
    /// The URL (or URLs) without passwords, for the log.
    shown: String,
}

// Never a password: the URLs as shown.
impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("builder", &self.builder)
            .field("servers", &self.shown)
            .finish()
    }
}

impl Target {
    /// Validates the global options: a duration for `--connect-timeout`, a URL present.
    pub(crate) fn from_options(global: &Global) -> Result<Self, Failure> {
        let connect_timeout = duration::parse(&global.connect_timeout)
            .map_err(|e| Failure::new(exit::BAD_INPUT, format!("--connect-timeout: {e}")))?;
        if connect_timeout.is_zero() {
            return Err(Failure::new(
                exit::BAD_INPUT,
                "--connect-timeout: must be longer than zero",
            ));
        }
        let urls: Vec<&str> = global
            .redis_url
            .iter()
            .map(|url| url.trim())
            .filter(|url| !url.is_empty())
            .collect();
        if urls.is_empty() {
            return Err(Failure::new(
                exit::CONFIG,
                "no Redis server given: set REDIS_URL or pass --redis-url \
                 (for example redis://127.0.0.1:6379/)",
            ));
        }
        let restart_delay = global
            .restart_delay
            .as_deref()
            .map(duration::parse)
            .transpose()
            .map_err(|e| Failure::new(exit::BAD_INPUT, format!("--restart-delay: {e}")))?;
        let mut builder = global
            .backend
            .builder()
            .url(urls[0])
            .connect_timeout(connect_timeout);
        // Unset: the backend's default, the lock's timeout.
        if let Some(delay) = restart_delay {
            builder = builder.restart_delay(delay);
        }
        if let Some(replicas) = global.wait_replicas {
            let timeout = duration::parse(&global.replica_timeout)
                .map_err(|e| Failure::new(exit::BAD_INPUT, format!("--replica-timeout: {e}")))?;
            let mut ack = process_lock::ReplicaAck::new(replicas, timeout)
                .map_err(|e| Failure::new(exit::BAD_INPUT, format!("--wait-replicas: {e}")))?;
            if global.replica_aof {
                ack = ack.with_aof();
            }
            builder = builder.wait_for_replicas(ack);
        }
        let shown: Vec<String> = urls
            .iter()
            .map(|url| process_lock::redact_url(url))
            .collect();
        Ok(Target {
            builder,
            urls: (urls.len() > 1).then(|| urls.iter().map(|url| (*url).to_owned()).collect()),
            shown: shown.join(", "),
        })
    }

    /// Connects, within the connect timeout.
    pub(crate) async fn connect(&self) -> Result<Arc<dyn LockBackend>, Failure> {
        let backend = self.builder.backend();
        tracing::info!(%backend, url = %self.shown, "connecting");
        // Said here rather than by the library, whose advice names its own features.
        if !backend.is_enabled() {
            return Err(Failure::new(
                exit::CONFIG,
                format!(
                    "the {backend} backend is not compiled in: install with \
                     `--features {backend}`"
                ),
            ));
        }
        let builder = self.builder.clone();
        let backend = match &self.urls {
            Some(urls) => builder.connect_quorum(urls.clone()).await,
            None => builder.connect().await,
        }
        .map_err(|e| Failure::from_error("connecting to Redis", &e))?;
        // A span per operation, shown with -v.
        let backend: Arc<dyn LockBackend> = Arc::new(backend.layer(TracingLayer::new()));
        tracing::debug!(?backend, "connected");
        Ok(backend)
    }
}

#[cfg(not(any(feature = "redis-rs", feature = "fred")))]
compile_error!("enable at least one backend: the `redis-rs` or `fred` feature of lock-cli");
