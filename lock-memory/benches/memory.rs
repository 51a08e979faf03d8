//! Uncontended lock + clear cycles on the in-memory backend.
//!
//! Run with `cargo bench -p lock-memory --bench memory`. Criterion reports time per cycle and,
//! through its throughput setting, cycles per second ("elem/s").

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lock_core::{Cleared, LockBackend, LockName, ProcessLock, Token, Ttl};
use lock_memory::MemoryBackend;

fn cycles(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    let backend = Arc::new(MemoryBackend::new());

    let mut group = c.benchmark_group("memory");
    group.throughput(Throughput::Elements(1));

    // Through the user-facing handle: what an application pays.
    let lock = ProcessLock::new(backend.clone(), "bench", Duration::from_secs(30)).unwrap();
    group.bench_function("process_lock_lock_clear_cycle", |b| {
        b.to_async(&rt).iter(|| async {
            assert!(lock.lock().await.unwrap());
            assert_eq!(lock.clear(false).await.unwrap(), Cleared::Cleared);
        })
    });

    // The backend primitives alone, to show what the handle adds.
    let name = LockName::new("bench-raw").unwrap();
    let token = Token::generate().unwrap();
    let ttl = Ttl::from_secs(30).unwrap();
    group.bench_function("backend_acquire_release_cycle", |b| {
        b.to_async(&rt).iter(|| async {
            assert!(
                backend
                    .try_acquire(&name, &token, ttl)
                    .await
                    .unwrap()
                    .is_acquired()
            );
            let _ = backend.release(&name, &token).await.unwrap();
        })
    });
    group.finish();
}

criterion_group!(benches, cycles);
criterion_main!(benches);
