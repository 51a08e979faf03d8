//! The model-based case: random sequences of calls from several handles, checked step by step
//! against a reference model of Redis's semantics.
//!
//! - [`reference`]: the model (name → owner and expiry on a logical clock, and each name's
//!   waiter queue) and what each call must answer.
//! - [`strategies`]: the random initial states and calls, with proptest-state-machine.
//! - [`sut`]: the system under test: real handles on the backend, checked after every call.
//!
//! Time is counted in ticks. Timeouts are 2, 4, 5, 7 or 8 ticks and time moves 3 or 6 ticks at
//! a time, so every check happens on a multiple of 3 while no expiry ever does: each check is at
//! least a tick from any expiry, and the model is exact on real time as well as manual time.
//! Likewise a queued waiter's place lasts 5 ticks after its last step and a lock handed to it
//! 2 ticks before it confirms.

mod reference;
mod strategies;
mod sut;

pub use sut::model_based;
