//! `process-lock-node`'s usage flow, in Rust: wait for the lock (retrying while someone else
//! holds it), refresh it at half the timeout while the work runs, and clear it on exit, Ctrl-C
//! and SIGTERM included, so the next process need not wait for the timeout.
//!
//! ```sh
//! cargo run --example original_flow                   # in memory
//! REDIS_URL=redis://127.0.0.1:6379/ cargo run --example original_flow --features redis-rs
//! ```
//!
//! Start it in two terminals on Redis: the second waits until the first finishes or is stopped.
//! `WORK_SECONDS` sets how long the work takes (default 10).

use std::time::Duration;

use process_lock::{Backend, ProcessLock};
use tokio::time::{interval, sleep};

const TIMEOUT: Duration = Duration::from_secs(10);
const RETRY: Duration = Duration::from_secs(1);

#[tokio::main]
async fn main() -> process_lock::Result<()> {
    let backend = Backend::from_env()?;
    let lock = ProcessLock::new(backend.connect().await?, "original-flow", TIMEOUT)?;
    let work = Duration::from_secs(
        std::env::var("WORK_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10),
    );
    println!("backend {backend}; waiting for lock {}", lock.name());

    // Wait for the lock, retrying; a signal while waiting just exits (nothing is held).
    tokio::select! {
        acquired = wait_for(&lock) => acquired?,
        () = stopped() => {
            println!("stopped while waiting");
            return Ok(());
        }
    }
    println!("locked; working for {work:?}");

    // Work, refreshing at half the timeout; stop early on a signal or if the lock is lost.
    let outcome = tokio::select! {
        result = work_under(&lock, work) => result,
        () = stopped() => {
            println!("signal received: stopping the work");
            Ok(())
        }
    };

    // Clear on every way out, so the next process need not wait for the timeout.
    let cleared = lock.clear(false).await?;
    println!("cleared: {:?}", cleared.as_option());
    outcome
}

async fn wait_for(lock: &ProcessLock) -> process_lock::Result<()> {
    while !lock.lock().await? {
        println!("held by someone else; retrying in {RETRY:?}");
        sleep(RETRY).await;
    }
    Ok(())
}

async fn work_under(lock: &ProcessLock, work: Duration) -> process_lock::Result<()> {
    let mut refresh = interval(TIMEOUT / 2);
    refresh.tick().await; // the first tick is immediate
    let done = sleep(work);
    tokio::pin!(done);
    loop {
        tokio::select! {
            () = &mut done => return Ok(()),
            _ = refresh.tick() => {
                if !lock.update().await? {
                    println!("lock lost: stopping the work");
                    return Ok(());
                }
                println!("refreshed");
            }
        }
    }
}

/// Completes on Ctrl-C (SIGINT) or, on Unix, SIGTERM.
async fn stopped() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
