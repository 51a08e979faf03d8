//! Layers: the in-memory backend wrapped in the tracing and metrics layers, a few workers
//! contending for locks, one lock cleared by force under its holder, and the metrics printed in
//! Prometheus's text format.
//!
//! ```sh
//! cargo run --example metrics --features metrics
//! ```
//!
//! Any exporter of the `metrics` facade works the same way; this one only renders text (no HTTP
//! listener). The spans of the tracing layer go to whatever `tracing` subscriber the program
//! installs (none here; see `process-lock -v` for them on a terminal).

use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use process_lock::LockBackendExt;
use process_lock::layers::{MetricsLayer, TracingLayer};
use process_lock::{Lock, LockBackend, MemoryBackend, ProcessLock};
use tokio::time::sleep;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let prometheus = PrometheusBuilder::new()
        .set_buckets(&[0.000_01, 0.000_1, 0.001, 0.01, 0.1])?
        .install_recorder()?;

    // Per-name labels are fine here: two fixed names.
    let backend: Arc<dyn LockBackend> = Arc::new(
        MemoryBackend::new()
            .layer(TracingLayer::new())
            .layer(MetricsLayer::new().with_name_labels(true)),
    );

    // Four workers, three jobs each, one lock: each first tries without waiting, and waits its
    // turn when the lock is busy.
    let mut workers = Vec::new();
    for worker in 0..4 {
        let lock = Lock::new(backend.clone(), "jobs", Duration::from_secs(5))?;
        workers.push(tokio::spawn(async move {
            let mut waited = 0;
            for _ in 0..3 {
                let guard = match lock.try_lock().await? {
                    Some(guard) => guard,
                    None => {
                        waited += 1;
                        lock.lock().await?
                    }
                };
                sleep(Duration::from_millis(10)).await;
                let _ = guard.release().await?;
            }
            println!("worker {worker}: 3 jobs done, waited {waited} times");
            Ok::<_, process_lock::Error>(())
        }));
    }
    for worker in workers {
        worker.await??;
    }

    // A holder whose lock is cleared by force: its next renewal finds the lock gone.
    let report = Lock::new(backend.clone(), "report", Duration::from_millis(300))?;
    let guard = report.lock().await?;
    let admin = ProcessLock::new(backend.clone(), "report", Duration::from_millis(300))?;
    let _ = admin.clear(true).await?;
    let lost = guard.lost().await;
    println!("report: {lost}\n");

    print!("{}", prometheus.render());
    Ok(())
}
