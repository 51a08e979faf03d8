//! The Redis backend of process-lock on the [`redis`] crate: [`RedisRsBackend`].
//!
//! Not intended to be used directly: depend on `process-lock` with its `redis-rs` feature, which
//! re-exports this crate. Its behaviour is the same as the `fred` backend's, and both pass the
//! `conformance` suite against a real Redis.
#![deny(missing_docs)]
#![warn(unreachable_pub, missing_debug_implementations)]

mod backend;
mod error;
mod pubsub;
mod scripts;

pub use backend::{REDIS_URL_ENV, RedisRsBackend, RedisRsBuilder};
pub use redis;
