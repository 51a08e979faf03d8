//! The shared Lua scripts (`lock_core::scripts`), hashed once for `EVALSHA`.
//!
//! The same scripts as the `redis-rs` backend's, so both load under the same SHA-1. The backend
//! sends `EVALSHA` (one round trip) and, after a `NOSCRIPT` (a `SCRIPT FLUSH` or a server
//! restart), loads the script and sends it again; `NOSCRIPT` means nothing ran, so the retry
//! cannot apply an operation twice.

use std::sync::LazyLock;

use fred::types::scripts::Script;

pub(crate) static ACQUIRE: LazyLock<Script> =
    LazyLock::new(|| Script::from_lua(lock_core::scripts::ACQUIRE));

pub(crate) static RENEW: LazyLock<Script> =
    LazyLock::new(|| Script::from_lua(lock_core::scripts::RENEW));

pub(crate) static RELEASE: LazyLock<Script> =
    LazyLock::new(|| Script::from_lua(lock_core::scripts::RELEASE));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_carry_their_source_and_sha1() {
        for script in [&*ACQUIRE, &*RENEW, &*RELEASE] {
            assert!(script.lua().is_some());
            assert_eq!(script.sha1().len(), 40);
        }
    }
}
