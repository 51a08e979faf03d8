//! Isolation: names are compared byte for byte, and no name touches another.

use std::time::Duration;

use lock_core::{Cleared, LockState};

use crate::Fixture;

/// Names with spaces, colons, braces, unicode, and names that are prefixes of each other never
/// interfere.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::isolation(&fixture).await;
/// # }
/// ```
pub async fn isolation(fx: &Fixture) {
    let base = fx.unique_name("isolation");
    let suffixes = [
        "", " ", ":", ":x", "{", "}", "{tag}", "{tag}:x", "x y", "ключ", "🔒", "*", "?", "\\",
    ];
    let names: Vec<String> = suffixes.iter().map(|s| format!("{base}{s}")).collect();
    let timeout = Duration::from_secs(30);
    let holders: Vec<_> = names.iter().map(|n| fx.handle(n, timeout)).collect();
    let others: Vec<_> = names.iter().map(|n| fx.handle(n, timeout)).collect();

    // Take every other name; the rest must stay open.
    for (i, holder) in holders.iter().enumerate().step_by(2) {
        assert!(holder.lock().await.unwrap(), "lock {:?}", names[i]);
    }
    for (i, other) in others.iter().enumerate() {
        let expected = if i % 2 == 0 {
            LockState::Locked
        } else {
            LockState::Open
        };
        assert_eq!(
            other.status().await.unwrap(),
            expected,
            "status of {:?}",
            names[i]
        );
    }
    // Now the odd ones, by other owners: every name has its own owner.
    for (i, other) in others.iter().enumerate().skip(1).step_by(2) {
        assert!(other.lock().await.unwrap(), "lock {:?}", names[i]);
    }
    for (i, (holder, other)) in holders.iter().zip(&others).enumerate() {
        let (owner, stranger) = if i % 2 == 0 {
            (holder, other)
        } else {
            (other, holder)
        };
        assert!(!stranger.lock().await.unwrap(), "{:?} is held", names[i]);
        assert_eq!(
            stranger.clear(false).await.unwrap(),
            Cleared::NotOwner,
            "{:?}",
            names[i]
        );
        assert!(owner.update().await.unwrap(), "{:?}", names[i]);
    }
    // Clearing one name leaves its neighbours held.
    assert_eq!(holders[0].clear(false).await.unwrap(), Cleared::Cleared);
    assert_eq!(holders[0].status().await.unwrap(), LockState::Open);
    for (i, h) in holders.iter().enumerate().skip(1) {
        assert_eq!(
            h.status().await.unwrap(),
            LockState::Locked,
            "{:?}",
            names[i]
        );
    }
    for h in holders.iter().skip(1) {
        assert_eq!(h.clear(true).await.unwrap(), Cleared::Cleared);
    }
}
