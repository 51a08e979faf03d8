//! The shared Lua scripts (`lock_core::scripts`), hashed once for `EVALSHA`.
//!
//! `redis::Script` sends `EVALSHA` (one round trip) and, after a `NOSCRIPT` (a `SCRIPT FLUSH` or
//! a server restart), loads the script and sends it again; `NOSCRIPT` means nothing ran, so the
//! retry cannot apply an operation twice.

use std::sync::LazyLock;

pub(crate) static ACQUIRE: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(lock_core::scripts::ACQUIRE));

pub(crate) static ACQUIRE_FENCED: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(lock_core::scripts::ACQUIRE_FENCED));

pub(crate) static RENEW: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(lock_core::scripts::RENEW));

pub(crate) static RELEASE: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(lock_core::scripts::RELEASE));

pub(crate) static STATUS: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(lock_core::scripts::STATUS));

pub(crate) static FORCE_RELEASE: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(lock_core::scripts::FORCE_RELEASE));
