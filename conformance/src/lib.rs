#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![warn(unreachable_pub, missing_debug_implementations)]

pub mod cases;
pub mod faults;
mod fixture;
mod macros;
mod model;
#[cfg(feature = "redis-server")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis-server")))]
pub mod redis;
#[cfg(feature = "redis-server")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis-server")))]
pub mod redis_server;
mod suite;

pub use fixture::{Fixture, TestClock};
pub use suite::{Capability, Case, CaseFuture, capability, cases, check_lacks, run_case};
