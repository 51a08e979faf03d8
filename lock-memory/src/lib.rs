//! The in-memory backend of process-lock: locks that live in this process, with exactly the
//! semantics of the Redis backends (a lock disappears at its expiry, a renewal of an expired lock
//! fails, only the owner can release), so code written against Redis can be unit-tested without
//! a server. The `conformance` suite proves the equivalence.
//!
//! Users normally reach it through the `process-lock` crate's `memory` feature.
//!
//! # Examples
//!
//! Expiry tested instantly with a [`ManualClock`]:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use lock_core::{LockState, ProcessLock};
//! use lock_memory::{ManualClock, MemoryBackend};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> lock_core::Result<()> {
//! let clock = ManualClock::new();
//! let backend = Arc::new(MemoryBackend::with_clock(clock.clone()));
//! let lock = ProcessLock::new(backend, "job", Duration::from_secs(30))?;
//!
//! assert!(lock.lock().await?);
//! clock.advance(Duration::from_secs(31));
//! assert_eq!(lock.status().await?, LockState::Open);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![warn(unreachable_pub, missing_debug_implementations)]

mod backend;
mod clock;

pub use backend::MemoryBackend;
pub use clock::{Clock, ManualClock, TokioClock};
