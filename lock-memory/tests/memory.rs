//! Behaviour specific to the in-memory backend: clocks, sharing, and bounded memory.

use std::sync::Arc;
use std::time::Duration;

use lock_core::{Acquire, LockBackend, LockName, LockState, ProcessLock, Status, Token, Ttl};
use lock_memory::{ManualClock, MemoryBackend};

fn name(s: &str) -> LockName {
    LockName::new(s).unwrap()
}

#[tokio::test]
async fn alive_up_to_and_including_expiry_like_redis() {
    let clock = ManualClock::new();
    let backend = MemoryBackend::with_clock(clock.clone());
    let (n, t) = (name("edge"), Token::generate().unwrap());
    let ttl = Ttl::from_millis(100).unwrap();
    assert!(
        backend
            .try_acquire(&n, &t, ttl)
            .await
            .unwrap()
            .is_acquired()
    );
    clock.advance(Duration::from_millis(100));
    assert_eq!(
        backend.status(&n).await.unwrap(),
        Status::locked(Some(Duration::ZERO))
    );
    clock.advance(Duration::from_nanos(1));
    assert_eq!(backend.status(&n).await.unwrap(), Status::open());
    assert!(!backend.renew(&n, &t, ttl).await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn tokio_paused_clock_drives_expiry() {
    let backend = Arc::new(MemoryBackend::new());
    let lock = ProcessLock::new(backend, "paused", Duration::from_secs(60)).unwrap();
    assert!(lock.lock().await.unwrap());
    tokio::time::advance(Duration::from_secs(59)).await;
    assert_eq!(lock.status().await.unwrap(), LockState::Locked);
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(lock.status().await.unwrap(), LockState::Open);
}

#[tokio::test]
async fn clones_share_locks() {
    let a = MemoryBackend::new();
    let b = a.clone();
    let n = name("shared");
    let ttl = Ttl::from_secs(10).unwrap();
    assert!(
        a.try_acquire(&n, &Token::generate().unwrap(), ttl)
            .await
            .unwrap()
            .is_acquired()
    );
    let other = b
        .try_acquire(&n, &Token::generate().unwrap(), ttl)
        .await
        .unwrap();
    assert!(matches!(other, Acquire::Held { remaining: Some(_) }));
    assert_eq!(b.len(), 1);
}

#[tokio::test]
async fn expired_locks_do_not_accumulate() {
    let clock = ManualClock::new();
    let backend = MemoryBackend::with_clock(clock.clone());
    let ttl = Ttl::from_millis(10).unwrap();
    for round in 0..100 {
        for i in 0..100 {
            let n = name(&format!("n{round}-{i}"));
            let _ = backend
                .try_acquire(&n, &Token::generate().unwrap(), ttl)
                .await
                .unwrap();
        }
        clock.advance(Duration::from_millis(20));
    }
    assert!(backend.is_empty());
    // 10,000 names were taken; the sweep keeps the map near the number alive, not the total.
    let debug = format!("{backend:?}");
    let entries = debug.matches("Entry").count();
    assert!(entries <= 256, "{entries} entries kept after all expired");
}

#[test]
fn usable_across_threads_without_a_runtime_of_its_own() {
    let backend = MemoryBackend::new();
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let backend = backend.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let n = name(&format!("thread-{i}"));
                    let t = Token::generate().unwrap();
                    let ttl = Ttl::from_secs(5).unwrap();
                    backend
                        .try_acquire(&n, &t, ttl)
                        .await
                        .unwrap()
                        .is_acquired()
                })
            })
        })
        .collect();
    for h in handles {
        assert!(h.join().unwrap());
    }
    assert_eq!(backend.len(), 4);
}
