//! The contract of process-lock: the [`LockBackend`] trait every store implements, the two
//! handles users hold ([`Lock`], used as tokio's `Mutex`, and [`ProcessLock`], the API of
//! `process-lock-node`), the [`Error`] every operation returns, and the validated inputs
//! ([`LockName`], [`Ttl`], [`Token`]) they exchange.
//!
//! Users normally depend on the `process-lock` crate, which re-exports the user API at its root,
//! what backend authors need under `process_lock::raw`, and the backends its features enable.
//! Backend authors implement [`LockBackend`] and prove it with the `conformance` crate's suite.
//!
//! [`layer`] wraps any backend in cross-cutting behaviour; [`layers`] has two ready-made ones,
//! tracing and (with the `metrics` feature) metrics.
#![deny(missing_docs)]
#![warn(unreachable_pub, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod backend;
mod error;
mod guard;
pub mod layer;
pub mod layers;
mod lock;
mod name;
pub mod notify;
mod process_lock;
pub mod queue;
pub mod quorum;
pub mod redis;
mod renewals;
mod token;
mod ttl;

pub use async_trait::async_trait;
pub use backend::{
    Acquire, Capabilities, FencedAcquire, ForceRelease, LockBackend, LockState,
    ParseLockStateError, Release, Status,
};
pub use error::{Error, ErrorKind, Result, redact_url};
pub use guard::{LockGuard, Lost, LostReason, Renewal};
pub use lock::Lock;
pub use name::LockName;
pub use notify::Watch;
pub use process_lock::{Cleared, ProcessLock};
pub use token::Token;
pub use ttl::Ttl;
