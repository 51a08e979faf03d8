//! The Redis backend of process-lock on the [`redis`] crate: [`RedisRsBackend`].
//!
//! Not intended to be used directly: depend on `process-lock` with its `redis-rs` feature, which
//! re-exports this crate. Its behaviour is the same as the `fred` backend's, and both pass the
//! `conformance` suite against a real Redis: the protocol is [`lock_core::redis`]'s, and this
//! crate is only its transport ([`RedisRsTransport`]).
#![deny(missing_docs)]
#![warn(unreachable_pub, missing_debug_implementations)]

mod backend;
mod builder;
mod cluster;
mod connect;
mod error;
mod pubsub;
mod sentinel;
mod transport;

pub use backend::RedisRsBackend;
pub use builder::RedisRsBuilder;
pub use lock_core::redis::REDIS_URL_ENV;
pub use redis;
pub use transport::RedisRsTransport;
