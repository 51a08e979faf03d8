//! The hand-over histogram on the waiter queue's paths (issue 12): a waiter woken by the
//! hand-off message, and a waiter that takes the lock with a step after the holder's expiry,
//! each record one hand-over; an acquisition that never waited records none.

use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use process_lock::raw::queue::{Leave, QueueStep, QueueTiming, Waiter};
use process_lock::{Lock, LockBackend, LockName, MemoryBackend, Release, Token, Ttl};

/// Waits until someone queues for `name`: a probe joins the queue, reads its place, leaves.
async fn until_someone_queues(backend: &Arc<dyn LockBackend>, name: &LockName) {
    let ttl = Ttl::new(Duration::from_secs(30)).unwrap();
    loop {
        let probe = Waiter::new(Token::generate().unwrap(), ttl, QueueTiming::for_ttl(ttl));
        let step = backend.queue_step(name, &probe).await.unwrap();
        let left = backend.leave_queue(name, &probe, false).await.unwrap();
        assert_eq!(left, Leave::Left);
        match step {
            QueueStep::Queued { position, .. } if position > 0 => return,
            QueueStep::Queued { .. } => tokio::task::yield_now().await,
            other => panic!("the probe got {other:?}"),
        }
    }
}

/// The `_count` of the hand-over histogram in Prometheus's text, 0 before the first record.
fn handovers(text: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix("process_lock_handover_seconds_count "))
        .map_or(0, |count| count.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_hand_overs_are_recorded() {
    // The only test of this binary: the recorder is global.
    let prometheus = PrometheusBuilder::new().install_recorder().unwrap();
    let backend: Arc<dyn LockBackend> = Arc::new(MemoryBackend::new());
    assert!(backend.capabilities().queue, "the memory backend queues");
    let lock = Lock::new(backend.clone(), "jobs", Duration::from_secs(30)).unwrap();

    let held = lock.lock().await.unwrap();
    assert_eq!(handovers(&prometheus.render()), 0, "a lock taken at once");

    // Handed over by the release, the waiter is told by the hand-off message.
    let waiter = lock.clone();
    let waiting = tokio::spawn(async move { waiter.lock().await });
    until_someone_queues(&backend, &LockName::new("jobs").unwrap()).await;
    assert_eq!(held.release().await.unwrap(), Release::Released);
    let second = waiting.await.unwrap().unwrap();
    assert_eq!(handovers(&prometheus.render()), 1, "the hand-off");

    // A holder that never renews nor releases: the first waiter takes the lock with its step
    // once the holder's time has run out.
    let short = LockName::new("short").unwrap();
    let ttl = Ttl::new(Duration::from_millis(300)).unwrap();
    let holder = Token::generate().unwrap();
    let taken_by_holder = backend
        .try_acquire_fenced(&short, &holder, ttl)
        .await
        .unwrap();
    assert!(matches!(
        taken_by_holder,
        process_lock::raw::FencedAcquire::Acquired { .. }
    ));
    let lock = Lock::new(backend.clone(), "short", Duration::from_secs(30)).unwrap();
    let taken = lock.lock_timeout(Duration::from_secs(5)).await.unwrap();
    let taken = taken.expect("taken after the holder's expiry");
    assert_eq!(taken.release().await.unwrap(), Release::Released);
    assert_eq!(
        handovers(&prometheus.render()),
        2,
        "the step after the expiry"
    );
    assert_eq!(second.release().await.unwrap(), Release::Released);
}
