//! The Redis backend of process-lock on the [`fred`] crate: [`FredBackend`].
//!
//! Not intended to be used directly: depend on `process-lock` with its `fred` feature, which
//! re-exports this crate. Its behaviour is the same as the `redis-rs` backend's (same keys and
//! values, scripts, release channels, fencing counters, errors and defaults, so either can
//! replace the other: the protocol is [`lock_core::redis`]'s, and this crate is only its
//! transport, [`FredTransport`]), and both pass the `conformance` suite against a real Redis.
//! Waiters are woken by releases over a Pub/Sub connection of the backend's own, opened on the
//! first watch.
//!
//! # Features
//!
//! - `tls`: `rediss://` URLs, with rustls (on `ring`) and the system's root certificates.
//!   Without it a `rediss://` URL is a [`Config`](lock_core::ErrorKind::Config) error, never a
//!   plaintext connection.
#![deny(missing_docs)]
#![warn(unreachable_pub, missing_debug_implementations)]

mod backend;
mod builder;
mod config;
mod connect;
mod error;
mod pubsub;
mod request;
mod sentinel;
mod transport;

pub use backend::FredBackend;
pub use builder::FredBuilder;
pub use fred;
pub use lock_core::redis::REDIS_URL_ENV;
pub use transport::FredTransport;
