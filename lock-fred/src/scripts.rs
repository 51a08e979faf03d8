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

pub(crate) static ACQUIRE_FENCED: LazyLock<Script> =
    LazyLock::new(|| Script::from_lua(lock_core::scripts::ACQUIRE_FENCED));

pub(crate) static RENEW: LazyLock<Script> =
    LazyLock::new(|| Script::from_lua(lock_core::scripts::RENEW));

pub(crate) static RELEASE: LazyLock<Script> =
    LazyLock::new(|| Script::from_lua(lock_core::scripts::RELEASE));

pub(crate) static STATUS: LazyLock<Script> =
    LazyLock::new(|| Script::from_lua(lock_core::scripts::STATUS));

pub(crate) static FORCE_RELEASE: LazyLock<Script> =
    LazyLock::new(|| Script::from_lua(lock_core::scripts::FORCE_RELEASE));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_carry_their_source_and_sha1() {
        let all = [
            &*ACQUIRE,
            &*ACQUIRE_FENCED,
            &*RENEW,
            &*RELEASE,
            &*FORCE_RELEASE,
        ];
        for script in all {
            assert!(script.lua().is_some());
            assert_eq!(script.sha1().len(), 40);
        }
        let shas: std::collections::HashSet<_> = all.iter().map(|s| s.sha1().clone()).collect();
        assert_eq!(shas.len(), all.len(), "every script is distinct");
    }
}
