//! Public futures and types can cross threads: a lock is used from spawned tasks.
#![cfg(feature = "memory")]

use std::sync::Arc;
use std::time::Duration;

use process_lock::{Lock, LockBackend, LockGuard, MemoryBackend, ProcessLock};

fn is_send<T: Send>(_: &T) {}
fn is_send_sync<T: Send + Sync>() {}

#[test]
fn types_are_send_and_sync() {
    is_send_sync::<ProcessLock>();
    is_send_sync::<Lock>();
    is_send_sync::<LockGuard>();
    is_send_sync::<MemoryBackend>();
    is_send_sync::<Arc<dyn LockBackend>>();
    is_send_sync::<process_lock::Error>();
}

#[test]
fn futures_are_send() {
    let lock = ProcessLock::new(
        Arc::new(MemoryBackend::new()),
        "send",
        Duration::from_secs(1),
    )
    .unwrap();
    is_send(&lock.lock());
    is_send(&lock.update());
    is_send(&lock.clear(false));
    is_send(&lock.status());
    is_send(&lock.holds());

    let lock = Lock::new(
        Arc::new(MemoryBackend::new()),
        "send",
        Duration::from_secs(1),
    )
    .unwrap();
    is_send(&lock.lock());
    is_send(&lock.try_lock());
    is_send(&lock.lock_timeout(Duration::from_secs(1)));
    is_send(&lock.lock_until(tokio::time::Instant::now()));
    is_send(&lock.with_lock(async |guard| guard.fence()));
    is_send(&lock.status());
}
