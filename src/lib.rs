#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![warn(unreachable_pub, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod connect;
mod select;

pub use connect::BackendBuilder;
pub use lock_core::layer::{Layer, LockBackendExt};
pub use lock_core::quorum::{self, Quorum};
pub use lock_core::redis::{REDIS_URL_ENV, ReplicaAck};
pub use lock_core::{
    Cleared, Error, ErrorKind, Lock, LockBackend, LockGuard, LockName, LockState, Lost, LostReason,
    ParseLockStateError, ProcessLock, Release, Renewal, Result, Token, Ttl, layers, redact_url,
};

/// For backend authors: what implementing [`LockBackend`] takes, apart from what users call.
///
/// Users of the locks need nothing from here. A backend author implements [`LockBackend`] with
/// the outcome types below, declares [`Capabilities`](raw::Capabilities), proves the backend
/// with the `conformance` crate's suite, and may reuse the Redis protocol
/// ([`redis`](raw::redis): scripts, keys, replies, a transport trait) or the bookkeeping of release notifications
/// ([`notify`](raw::notify)). A layer author implements [`layer::LayeredBackend`](raw::layer).
///
/// This split follows opendal's `raw` module: the crate's root stays the user's API.
pub mod raw {
    pub use lock_core::{
        Acquire, Capabilities, FencedAcquire, ForceRelease, Status, Watch, async_trait, layer,
        notify, queue, redis,
    };
}
pub use select::{BACKEND_ENV, Backend, backend_from_env};

/// The in-memory backend: locks that live in this process, with exactly Redis's semantics, for
/// unit tests and single-process use.
#[cfg(feature = "memory")]
#[cfg_attr(docsrs, doc(cfg(feature = "memory")))]
pub mod memory {
    pub use lock_memory::*;
}

#[cfg(feature = "memory")]
#[cfg_attr(docsrs, doc(cfg(feature = "memory")))]
pub use lock_memory::MemoryBackend;

/// The Redis backend on the `redis` crate.
#[cfg(feature = "redis-rs")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis-rs")))]
pub mod redis_rs {
    pub use lock_redis_rs::*;
}

#[cfg(feature = "redis-rs")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis-rs")))]
pub use lock_redis_rs::RedisRsBackend;

/// The Redis backend on the `fred` crate.
#[cfg(feature = "fred")]
#[cfg_attr(docsrs, doc(cfg(feature = "fred")))]
pub mod fred {
    pub use lock_fred::*;
}

#[cfg(feature = "fred")]
#[cfg_attr(docsrs, doc(cfg(feature = "fred")))]
pub use lock_fred::FredBackend;
