//! Picking a backend at run time from the features compiled in and the environment, so one
//! program runs on Redis in production and in memory on a developer's machine.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use lock_core::redis::REDIS_URL_ENV;
use lock_core::{Error, ErrorKind, LockBackend, Result};

/// Names the backend to use when several could apply: `memory`, `redis-rs` or `fred`.
///
/// # Examples
///
/// ```
/// use process_lock::BACKEND_ENV;
///
/// // PROCESS_LOCK_BACKEND=fred picks the fred backend (when compiled in).
/// assert_eq!(BACKEND_ENV, "PROCESS_LOCK_BACKEND");
/// ```
pub const BACKEND_ENV: &str = "PROCESS_LOCK_BACKEND";

/// A backend this crate can be built with, named as in [`BACKEND_ENV`], in features and on the
/// command line; parsed with [`FromStr`] and shown with [`Display`](fmt::Display).
///
/// # Examples
///
/// ```
/// use process_lock::Backend;
///
/// let backend: Backend = "fred".parse()?;
/// assert_eq!(backend, Backend::Fred);
/// assert_eq!(backend.to_string(), "fred");
/// assert!(backend.is_redis());
/// assert!("etcd".parse::<Backend>().is_err());
/// # Ok::<(), process_lock::Error>(())
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// `MemoryBackend` (feature `memory`).
    Memory,
    /// `RedisRsBackend` (feature `redis-rs`).
    RedisRs,
    /// `FredBackend` (feature `fred`).
    Fred,
}

impl Backend {
    /// Every backend, whether compiled in or not.
    ///
    /// # Examples
    ///
    /// ```
    /// use process_lock::Backend;
    ///
    /// for backend in Backend::ALL {
    ///     println!("{backend}: compiled in: {}", backend.is_enabled());
    /// }
    /// ```
    pub const ALL: [Backend; 3] = [Backend::Memory, Backend::RedisRs, Backend::Fred];

    /// The Redis backend to use when none is named: `redis-rs` when compiled in, otherwise
    /// `fred` (and `redis-rs` when neither is, which connecting then reports as not compiled
    /// in). The `process-lock` command's `--backend` default.
    ///
    /// # Examples
    ///
    /// ```
    /// use process_lock::Backend;
    ///
    /// assert!(Backend::DEFAULT_REDIS.is_redis());
    /// if Backend::RedisRs.is_enabled() {
    ///     assert_eq!(Backend::DEFAULT_REDIS, Backend::RedisRs);
    /// }
    /// ```
    pub const DEFAULT_REDIS: Backend = if cfg!(feature = "redis-rs") || !cfg!(feature = "fred") {
        Backend::RedisRs
    } else {
        Backend::Fred
    };

    /// The name used by [`BACKEND_ENV`], in features and by [`FromStr`].
    ///
    /// # Examples
    ///
    /// ```
    /// use process_lock::Backend;
    ///
    /// let names: Vec<&str> = Backend::ALL.iter().map(|b| b.name()).collect();
    /// assert_eq!(names, ["memory", "redis-rs", "fred"]);
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::RedisRs => "redis-rs",
            Backend::Fred => "fred",
        }
    }

    /// What the backend is built on, in a few words for a help text: "The `redis` crate".
    ///
    /// # Examples
    ///
    /// ```
    /// use process_lock::Backend;
    ///
    /// assert_eq!(Backend::Fred.description(), "The `fred` crate");
    /// ```
    pub fn description(self) -> &'static str {
        match self {
            Backend::Memory => "This process's memory",
            Backend::RedisRs => "The `redis` crate",
            Backend::Fred => "The `fred` crate",
        }
    }

    /// Whether this backend's feature is enabled.
    ///
    /// # Examples
    ///
    /// ```
    /// use process_lock::Backend;
    ///
    /// assert_eq!(Backend::Memory.is_enabled(), cfg!(feature = "memory"));
    /// ```
    pub fn is_enabled(self) -> bool {
        match self {
            Backend::Memory => cfg!(feature = "memory"),
            Backend::RedisRs => cfg!(feature = "redis-rs"),
            Backend::Fred => cfg!(feature = "fred"),
        }
    }

    /// Whether this backend talks to Redis (and so needs `REDIS_URL`).
    ///
    /// # Examples
    ///
    /// ```
    /// use process_lock::Backend;
    ///
    /// assert!(Backend::Fred.is_redis());
    /// assert!(!Backend::Memory.is_redis());
    /// ```
    pub fn is_redis(self) -> bool {
        matches!(self, Backend::RedisRs | Backend::Fred)
    }

    /// The backends compiled in.
    ///
    /// # Examples
    ///
    /// ```
    /// use process_lock::Backend;
    ///
    /// assert!(Backend::enabled().iter().all(|b| b.is_enabled()));
    /// ```
    pub fn enabled() -> Vec<Backend> {
        Backend::ALL
            .into_iter()
            .filter(|b| b.is_enabled())
            .collect()
    }

    /// Picks the backend from the environment: the one named by [`BACKEND_ENV`] if set;
    /// otherwise, when `REDIS_URL` is set, the one Redis backend compiled in; otherwise the
    /// memory backend.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when the named backend is unknown or not compiled in, when
    /// `REDIS_URL` is set but no Redis backend, or both, are compiled in (and
    /// [`BACKEND_ENV`] does not choose), or when nothing applies.
    ///
    /// # Examples
    ///
    /// ```
    /// use process_lock::Backend;
    ///
    /// match Backend::from_env() {
    ///     Ok(backend) => println!("using {backend}"),
    ///     Err(e) => eprintln!("{e}"),
    /// }
    /// ```
    pub fn from_env() -> Result<Backend> {
        let requested = std::env::var(BACKEND_ENV).ok().filter(|s| !s.is_empty());
        let redis_url = std::env::var(REDIS_URL_ENV).ok().filter(|s| !s.is_empty());
        choose(
            requested.as_deref(),
            redis_url.is_some(),
            &Backend::enabled(),
        )
    }
}

/// Connects the backend [`Backend::from_env`] picks.
///
/// # Errors
///
/// As [`Backend::from_env`] and [`Backend::connect`].
///
/// # Cancel safety
///
/// Safe: dropping the future drops the connection being made.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> process_lock::Result<()> {
/// // With REDIS_URL unset and the default features, this is the memory backend.
/// # if std::env::var("REDIS_URL").is_err() {
/// let backend = process_lock::backend_from_env().await?;
/// let lock = process_lock::ProcessLock::new(backend, "job", std::time::Duration::from_secs(5))?;
/// assert!(lock.lock().await?);
/// # }
/// # Ok(()) }
/// ```
pub async fn backend_from_env() -> Result<Arc<dyn LockBackend>> {
    Backend::from_env()?.connect().await
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = Error;

    fn from_str(s: &str) -> Result<Backend> {
        Backend::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Config,
                    format!("unknown backend {s:?}: expected memory, redis-rs or fred"),
                )
            })
    }
}

pub(crate) fn not_compiled(backend: Backend) -> Error {
    Error::new(
        ErrorKind::Config,
        format!(
            "the {backend} backend is not compiled in: enable process-lock's `{backend}` feature"
        ),
    )
}

fn choose(requested: Option<&str>, redis_url: bool, enabled: &[Backend]) -> Result<Backend> {
    if let Some(name) = requested {
        let backend: Backend = name.parse()?;
        return if enabled.contains(&backend) {
            Ok(backend)
        } else {
            Err(not_compiled(backend))
        };
    }
    let redis: Vec<Backend> = enabled.iter().copied().filter(|b| b.is_redis()).collect();
    match (redis_url, redis.as_slice()) {
        (true, [only]) => Ok(*only),
        (true, []) => Err(Error::new(
            ErrorKind::Config,
            "REDIS_URL is set but no Redis backend is compiled in: enable process-lock's \
             `redis-rs` or `fred` feature",
        )),
        (true, _) => Err(Error::new(
            ErrorKind::Config,
            format!("both Redis backends are compiled in: set {BACKEND_ENV}=redis-rs or fred"),
        )),
        (false, _) if enabled.contains(&Backend::Memory) => Ok(Backend::Memory),
        (false, _) => Err(Error::new(
            ErrorKind::Config,
            format!("{REDIS_URL_ENV} is not set and the memory backend is not compiled in"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Backend::*;

    #[test]
    fn picks_the_one_that_applies() {
        assert_eq!(choose(None, false, &[Memory]).unwrap(), Memory);
        assert_eq!(choose(None, false, &[Memory, RedisRs]).unwrap(), Memory);
        assert_eq!(choose(None, true, &[Memory, RedisRs]).unwrap(), RedisRs);
        assert_eq!(choose(None, true, &[Fred]).unwrap(), Fred);
        assert_eq!(choose(Some("fred"), true, &[RedisRs, Fred]).unwrap(), Fred);
        assert_eq!(
            choose(Some("memory"), true, &[Memory, Fred]).unwrap(),
            Memory
        );
    }

    #[test]
    fn says_why_when_none_or_several_apply() {
        let cases: [(Option<&str>, bool, &[Backend], &str); 5] = [
            (None, true, &[Memory], "no Redis backend"),
            (None, true, &[RedisRs, Fred], "PROCESS_LOCK_BACKEND"),
            (None, false, &[RedisRs], "memory backend is not compiled in"),
            (
                Some("fred"),
                true,
                &[RedisRs],
                "enable process-lock's `fred` feature",
            ),
            (Some("etcd"), true, &[RedisRs], "unknown backend"),
        ];
        for (requested, url, enabled, says) in cases {
            let err = choose(requested, url, enabled).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config);
            assert!(err.to_string().contains(says), "{err}");
        }
    }
}
