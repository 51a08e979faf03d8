//! Guards: three workers wait for one lock without polling, each gets a larger fencing token,
//! and the lock of one is cleared by force mid-job: its guard reports the loss at its next
//! renewal and its work is cancelled, while a fenced store rejects its stale writes.
//!
//! ```sh
//! cargo run --example guards                    # in memory
//! REDIS_URL=redis://127.0.0.1:6379/ cargo run --example guards --features redis-rs
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use process_lock::{Backend, Lock, LockBackend, ProcessLock};
use tokio::time::{Instant, sleep};

const NAME: &str = "process-lock-guards-demo";
const TIMEOUT: Duration = Duration::from_millis(900);

/// A store that keeps the largest fencing token it has seen and rejects writes with a smaller
/// one, as a database with a `WHERE fence <= $new` condition would.
#[derive(Default)]
struct FencedStore {
    highest: Mutex<u64>,
}

impl FencedStore {
    fn write(&self, who: &str, fence: u64) -> bool {
        let mut highest = self.highest.lock().unwrap();
        if fence < *highest {
            println!("        store: rejected a write from {who} (fence {fence} < {highest})");
            return false;
        }
        *highest = fence;
        true
    }
}

#[tokio::main]
async fn main() -> process_lock::Result<()> {
    let choice = Backend::from_env()?;
    let backend = choice.connect().await?;
    println!("backend: {choice}; lock {NAME:?} with a {TIMEOUT:?} timeout");
    let start = Instant::now();
    let store = Arc::new(FencedStore::default());

    let mut workers = Vec::new();
    for (me, victim) in [("alpha", false), ("beta", true), ("gamma", false)] {
        let (backend, store) = (backend.clone(), store.clone());
        workers.push(tokio::spawn(worker(me, victim, backend, store, start)));
        sleep(Duration::from_millis(50)).await;
    }
    for worker in workers {
        worker.await.expect("the worker runs")?;
    }
    Ok(())
}

async fn worker(
    me: &'static str,
    victim: bool,
    backend: Arc<dyn LockBackend>,
    store: Arc<FencedStore>,
    start: Instant,
) -> process_lock::Result<()> {
    let at = || start.elapsed().as_secs_f64();
    let lock = Lock::new(backend.clone(), NAME, TIMEOUT)?;
    println!("{:>5.2}s  {me}: waiting", at());
    let guard = lock.lock().await?;
    let fence = guard.fence().unwrap_or(0);
    println!("{:>5.2}s  {me}: acquired, fencing token {fence}", at());
    if victim {
        // An operator clears the lock by force while beta works (beta was paused, say).
        let operator = ProcessLock::new(backend, NAME, TIMEOUT)?;
        tokio::spawn(async move {
            sleep(Duration::from_millis(500)).await;
            let _ = operator.clear(true).await;
        });
    }
    // A job of 1.5 s, longer than the timeout: the guard keeps renewing it.
    let job = async {
        for step in 1..=3 {
            sleep(Duration::from_millis(500)).await;
            store.write(me, fence);
            println!("{:>5.2}s  {me}: step {step} written", at());
        }
    };
    match guard.run(job).await {
        Ok(()) => {
            let outcome = guard.release().await?;
            println!("{:>5.2}s  {me}: done, release: {outcome:?}", at());
        }
        Err(lost) => {
            println!("{:>5.2}s  {me}: stopped: {lost}", at());
            // A write it might still attempt (a paused process waking up) is rejected once a
            // later holder has written.
            sleep(Duration::from_millis(1500)).await;
            store.write(me, fence);
        }
    }
    Ok(())
}
