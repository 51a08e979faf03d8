//! The contract of process-lock: the [`LockBackend`] trait every store implements, the
//! [`ProcessLock`] handle users hold, the [`Error`] every operation returns, and the validated
//! inputs ([`LockName`], [`Ttl`], [`Token`]) they exchange.
//!
//! Users normally depend on the `process-lock` crate, which re-exports this one together with the
//! backends its features enable. Backend authors implement [`LockBackend`] and prove it with the
//! `conformance` crate's suite.
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
pub mod redis;
pub mod scripts;
mod token;
mod ttl;

pub use async_trait::async_trait;
pub use backend::{
    Acquire, Capabilities, FencedAcquire, ForceRelease, LockBackend, LockState,
    ParseLockStateError, Release, Status,
};
pub use error::{Error, ErrorKind, Result, redact_url};
pub use guard::{LockGuard, Lost, LostReason, Renewal};
pub use lock::{Cleared, ProcessLock};
pub use name::LockName;
pub use notify::Watch;
pub use token::Token;
pub use ttl::Ttl;
