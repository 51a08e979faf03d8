//! The suite on a Redis Cluster: [`cluster_suite`] runs every case that needs no server of its
//! own against one real cluster, shared by the cases as a shared server is.

use std::future::Future;
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use lock_core::LockBackend;

use super::options::RedisOptions;
use crate::redis_server::RedisCluster;
use crate::{Capability, Fixture, cases, run_case};

/// How many cases run at once: most of a case's time is spent waiting for timeouts.
const PARALLEL: usize = 4;

/// Runs every case of the suite that needs no Redis server of its own on a Redis Cluster of 3
/// primaries with a replica each, started for the call and stopped after it: each case on a
/// backend of its own, made by `connect` from the cluster's URL
/// (`redis-cluster://host:port?node=...`) and the default options, in a runtime of its own, as
/// [`suite!`](crate::suite)'s tests run; [`PARALLEL`] at a time.
///
/// The cases that need a server of their own (restarts, ACLs, the wire format, faults through
/// a proxy) are not run on the cluster; they are listed on stderr, as is every case run.
///
/// # Panics
///
/// When the cluster cannot be started, and, after all cases ran, when any failed (with the
/// list of those that did).
///
/// # Examples
///
/// ```no_run
/// use std::sync::Arc;
/// use conformance::redis::{RedisOptions, cluster_suite};
/// use lock_core::LockBackend;
///
/// # async fn connect(url: String, options: RedisOptions) -> lock_core::Result<Arc<dyn LockBackend>> {
/// #     unimplemented!()
/// # }
/// #[test]
/// fn the_suite_on_a_cluster() {
///     cluster_suite(connect);
/// }
/// ```
pub fn cluster_suite<F, Fut>(connect: F)
where
    F: Fn(String, RedisOptions) -> Fut + Sync,
    Fut: Future<Output = lock_core::Result<Arc<dyn LockBackend>>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime for the cluster");
    let cluster = runtime
        .block_on(RedisCluster::start(3, 1))
        .unwrap_or_else(|e| panic!("{e}"));
    let url = cluster.url();
    let (run, skipped): (Vec<_>, Vec<_>) = cases()
        .into_iter()
        .partition(|case| case.needs != Some(Capability::RedisServer));
    let next = AtomicUsize::new(0);
    let failed = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL {
            scope.spawn(|| {
                while let Some(case) = run.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let fixture = || async {
                        let backend = connect(url.clone(), RedisOptions::default())
                            .await
                            .unwrap_or_else(|e| panic!("connecting to the cluster {url}: {e}"));
                        Fixture::new(backend)
                    };
                    let outcome =
                        std::panic::catch_unwind(AssertUnwindSafe(|| run_case(fixture, case.name)));
                    let verdict = if outcome.is_ok() { "ok" } else { "FAILED" };
                    say(&format!("{} ... {verdict}", case.name));
                    if outcome.is_err() {
                        failed
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(case.name);
                    }
                }
            });
        }
    });
    runtime.block_on(async move { drop(cluster) });
    let failed = failed
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let names: Vec<&str> = skipped.iter().map(|case| case.name).collect();
    say(&format!(
        "{} of {} cases passed on the cluster; not run on a cluster (each needs a server of \
         its own): {}",
        run.len() - failed.len(),
        run.len(),
        names.join(", ")
    ));
    assert!(failed.is_empty(), "cases failed on the cluster: {failed:?}");
}

/// Writes past libtest's capture, so that the log shows each case.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "[cluster] {line}");
}
