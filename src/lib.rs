#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![warn(unreachable_pub, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod select;

pub use lock_core::*;
pub use select::{BACKEND_ENV, Backend, REDIS_URL_ENV, backend_from_env};

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
