//! Contention: many owners racing for one name, and mutual exclusion over many hand-overs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use lock_core::{Cleared, LockState};
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use crate::Fixture;

const TASKS: usize = 100;
const TIMEOUT: Duration = Duration::from_secs(30);
/// No contention case may take longer than this, whatever the backend does.
const DEADLINE: Duration = Duration::from_secs(120);

/// 100 owners race `lock` on one name at once: exactly one wins.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::contention_one_winner(&fixture).await;
/// # }
/// ```
pub async fn contention_one_winner(fx: &Fixture) {
    let name = fx.unique_name("one-winner");
    let barrier = Arc::new(Barrier::new(TASKS));
    let mut tasks = JoinSet::new();
    for _ in 0..TASKS {
        let lock = fx.handle(&name, TIMEOUT);
        let barrier = barrier.clone();
        tasks.spawn(async move {
            barrier.wait().await;
            let won = lock.lock().await.unwrap();
            (won, lock)
        });
    }
    let results = tokio::time::timeout(DEADLINE, tasks.join_all())
        .await
        .expect("100 lock calls finish in time");
    let winners: Vec<_> = results.iter().filter(|(won, _)| *won).collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one of {TASKS} racing owners wins"
    );
    let (_, winner) = winners[0];
    assert_eq!(winner.status().await.unwrap(), LockState::Locked);
    for (_, loser) in results.iter().filter(|(won, _)| !*won) {
        assert_eq!(loser.clear(false).await.unwrap(), Cleared::NotOwner);
    }
    assert_eq!(winner.clear(false).await.unwrap(), Cleared::Cleared);
}

/// 100 owners take turns on one name until 300 critical sections have run. Each critical
/// section reads a counter, yields, and writes it back plus one: if two owners ever held the
/// lock together, an increment is lost. The number inside at once must never exceed one.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::contention_counter(&fixture).await;
/// # }
/// ```
pub async fn contention_counter(fx: &Fixture) {
    const SECTIONS: u64 = 300;
    let name = fx.unique_name("counter");
    let counter = Arc::new(AtomicU64::new(0));
    let sections = Arc::new(AtomicU64::new(0));
    let inside = Arc::new(AtomicUsize::new(0));
    let most_inside = Arc::new(AtomicUsize::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..TASKS {
        let lock = fx.handle(&name, TIMEOUT);
        let (counter, sections) = (counter.clone(), sections.clone());
        let (inside, most_inside) = (inside.clone(), most_inside.clone());
        tasks.spawn(async move {
            while sections.load(Ordering::SeqCst) < SECTIONS {
                if !lock.lock().await.unwrap() {
                    tokio::task::yield_now().await;
                    continue;
                }
                let now_inside = inside.fetch_add(1, Ordering::SeqCst) + 1;
                most_inside.fetch_max(now_inside, Ordering::SeqCst);
                let seen = counter.load(Ordering::SeqCst);
                tokio::task::yield_now().await;
                counter.store(seen + 1, Ordering::SeqCst);
                sections.fetch_add(1, Ordering::SeqCst);
                inside.fetch_sub(1, Ordering::SeqCst);
                assert_eq!(lock.clear(false).await.unwrap(), Cleared::Cleared);
            }
        });
    }
    tokio::time::timeout(DEADLINE, tasks.join_all())
        .await
        .expect("the critical sections finish in time");
    let sections = sections.load(Ordering::SeqCst);
    assert!(sections >= SECTIONS);
    assert_eq!(
        most_inside.load(Ordering::SeqCst),
        1,
        "two owners held the lock together"
    );
    assert_eq!(
        counter.load(Ordering::SeqCst),
        sections,
        "an increment was lost: overlap"
    );
    let probe = fx.handle(&name, TIMEOUT);
    assert_eq!(probe.status().await.unwrap(), LockState::Open);
}
