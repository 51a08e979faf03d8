//! Two workers contend for one lock, as two processes running `process-lock-node` would: each
//! tries to lock, retries later when someone else holds it, refreshes at half the timeout while
//! working, and clears on exit. The second worker crashes mid-job without clearing: its lock
//! expires by itself and the first takes over.
//!
//! ```sh
//! cargo run --example demo                      # both workers, in memory
//! REDIS_URL=redis://127.0.0.1:6379/ cargo run --example demo --features redis-rs
//! # or one worker per terminal, contending through Redis:
//! REDIS_URL=redis://127.0.0.1:6379/ cargo run --example demo --features redis-rs -- alpha
//! REDIS_URL=redis://127.0.0.1:6379/ cargo run --example demo --features redis-rs -- beta --crash
//! ```

use std::sync::Arc;
use std::time::Duration;

use process_lock::{Backend, Cleared, LockBackend, ProcessLock};
use tokio::time::{Instant, sleep};

const NAME: &str = "process-lock-demo";
const TIMEOUT: Duration = Duration::from_secs(2);
const RETRY: Duration = Duration::from_millis(500);

#[tokio::main]
async fn main() -> process_lock::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let choice = Backend::from_env()?;
    let backend = choice.connect().await?;
    println!("backend: {choice}; lock {NAME:?} with a {TIMEOUT:?} timeout");
    let start = Instant::now();

    if let Some(me) = args.first() {
        // One worker in this process; start another in a second terminal.
        let crash = args.iter().any(|a| a == "--crash");
        let me: &'static str = Box::leak(me.clone().into_boxed_str());
        return worker(me, backend, start, 3, crash).await;
    }

    let alpha = tokio::spawn(worker("alpha", backend.clone(), start, 2, false));
    sleep(Duration::from_millis(100)).await;
    let beta = tokio::spawn(worker("beta", backend.clone(), start, 1, true));
    alpha.await.expect("alpha runs")?;
    beta.await.expect("beta runs")?;
    let probe = ProcessLock::new(backend, NAME, TIMEOUT)?;
    println!(
        "{:>5.1}s  both workers done; the lock is {}",
        start.elapsed().as_secs_f64(),
        probe.status().await?
    );
    Ok(())
}

/// Runs `jobs` jobs of 3 seconds under the lock; with `crash`, abandons its lock mid-job.
async fn worker(
    me: &'static str,
    backend: Arc<dyn LockBackend>,
    start: Instant,
    jobs: u32,
    crash: bool,
) -> process_lock::Result<()> {
    let say = |what: String| println!("{:>5.1}s  {me:<5}  {what}", start.elapsed().as_secs_f64());
    let lock = ProcessLock::new(backend, NAME, TIMEOUT)?;
    for job in 1..=jobs {
        while !lock.lock().await? {
            say(format!(
                "lock is {}; retrying in {RETRY:?}",
                lock.status().await?
            ));
            sleep(RETRY).await;
        }
        say(format!("holds the lock: job {job} starts"));
        for step in 1..=6 {
            sleep(TIMEOUT / 4).await;
            if crash && step == 3 {
                say("crashes without clearing; the lock will expire by itself".into());
                return Ok(());
            }
            if step % 2 == 0 {
                // Refresh at half the timeout; false means the lock was lost.
                if !lock.update().await? {
                    say("lost the lock! stopping this job".into());
                    break;
                }
                say("refreshed".into());
            }
        }
        match lock.clear(false).await? {
            Cleared::Cleared => say(format!("job {job} done, lock cleared")),
            other => say(format!(
                "job {job} done, clear said {:?}",
                other.as_option()
            )),
        }
        sleep(RETRY + Duration::from_millis(100)).await; // let the other worker in
    }
    Ok(())
}
