//! Connecting the chosen backend to the server the options name.

use std::sync::Arc;
use std::time::Duration;

use process_lock::LockBackend;
use process_lock::layer::LockBackendExt;
use process_lock::layers::TracingLayer;

use crate::cli::{BackendChoice, Global};
use crate::duration;
use crate::exit::{self, Failure};

/// What connecting needs, validated before anything is sent.
#[derive(Debug)]
pub(crate) struct Target {
    backend: BackendChoice,
    url: String,
    connect_timeout: Duration,
    /// `None`: the backend's default, the lock's timeout.
    restart_delay: Option<Duration>,
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
        let url = global
            .redis_url
            .as_deref()
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .ok_or_else(|| {
                Failure::new(
                    exit::CONFIG,
                    "no Redis server given: set REDIS_URL or pass --redis-url \
                     (for example redis://127.0.0.1:6379/)",
                )
            })?;
        let restart_delay = global
            .restart_delay
            .as_deref()
            .map(duration::parse)
            .transpose()
            .map_err(|e| Failure::new(exit::BAD_INPUT, format!("--restart-delay: {e}")))?;
        Ok(Target {
            backend: global.backend,
            url: url.to_owned(),
            connect_timeout,
            restart_delay,
        })
    }

    /// Connects, within the connect timeout.
    pub(crate) async fn connect(&self) -> Result<Arc<dyn LockBackend>, Failure> {
        let shown = process_lock::redact_url(&self.url);
        tracing::info!(backend = %self.backend, url = %shown, "connecting");
        // The two builders have the same methods, not a common trait.
        #[allow(unused_macros)]
        macro_rules! connect {
            ($builder:expr) => {{
                let builder = $builder.connect_timeout(self.connect_timeout);
                let builder = match self.restart_delay {
                    Some(delay) => builder.restart_delay(delay),
                    None => builder,
                };
                builder
                    .connect()
                    .await
                    .map(|backend| Arc::new(backend) as Arc<dyn LockBackend>)
            }};
        }
        let connected: process_lock::Result<Arc<dyn LockBackend>> = match self.backend {
            #[cfg(feature = "redis-rs")]
            BackendChoice::RedisRs => {
                connect!(process_lock::redis_rs::RedisRsBackend::builder(&self.url))
            }
            #[cfg(feature = "fred")]
            BackendChoice::Fred => connect!(process_lock::fred::FredBackend::builder(&self.url)),
            #[allow(unreachable_patterns)]
            other => {
                return Err(Failure::new(
                    exit::CONFIG,
                    format!(
                        "the {other} backend is not compiled in: install with \
                         `--features {other}`"
                    ),
                ));
            }
        };
        let backend = connected.map_err(|e| Failure::from_error("connecting to Redis", &e))?;
        // A span per operation, shown with -v.
        let backend: Arc<dyn LockBackend> = Arc::new(backend.layer(TracingLayer::new()));
        tracing::debug!(?backend, "connected");
        Ok(backend)
    }
}

#[cfg(not(any(feature = "redis-rs", feature = "fred")))]
compile_error!("enable at least one backend: the `redis-rs` or `fred` feature of lock-cli");
