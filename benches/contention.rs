//! Contention: eight tasks take turns on one lock, each holding it for about a millisecond,
//! with our waiting acquire and with `rslock`'s (a Redlock that polls), in one run against one
//! Redis.
//!
//! Variants:
//! - `process-lock`: `Lock::lock` on one shared redis-rs backend (one process with
//!   eight tasks: its waiters queue in turn, and other processes' are woken by Pub/Sub);
//! - `process-lock, 8 clients`: each task with its own backend (its own connections and
//!   subscription), as eight processes would be: waiters compete, woken by Pub/Sub;
//! - `rslock`: `LockManager::acquire` (default settings: up to 3 tries 0..200 ms apart, then
//!   again) on one shared manager, `release` after the hold.
//!
//! Measured per variant: acquisitions per second; hand-over, the time from a release being
//! sent to the next acquisition by a *different* task (p50, p99), and how often the releasing
//! task took the lock back itself; each waiter's time inside the waiting acquire (p50, p99,
//! max); acquisitions per task (min, max); then, in a separate pass under MONITOR, Redis
//! commands per acquisition with 2, 4 and 8 tasks (top-level commands only).
//!
//! ```sh
//! cargo bench --bench contention --features redis-rs
//! ```
//!
//! It uses `REDIS_URL` if set, else a container of `LOCK_TEST_REDIS_IMAGE` (reached on Docker's
//! bridge network, not through its port proxy), else `redis-server`
//! from `PATH`. `BENCH_SECONDS` sets how long each variant runs (default 5).
//!
//! `BENCH_REDLOCK=1` measures Redlock instead, on 3 servers of the bench's own: the uncontended
//! cycle (acquire, release: one task) of our [`Quorum`](process_lock::Quorum) over redis-rs and
//! over fred, of rslock's Redlock on the same servers, and of our lock on one of them; then the
//! contention table above with a client per task (each task its own 3 connections, as
//! processes would be), ours against rslock's.
//!
//! ```sh
//! BENCH_REDLOCK=1 cargo bench --bench contention --features redis-rs,fred
//! ```
//!
//! With `BENCH_OUT` set, the Redlock figures also go to `$BENCH_OUT/redlock.tsv` for
//! `scripts/bench-report`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

// The task counts of this bench are fixed: `counts_from_env` goes unused here.
#[allow(dead_code)]
#[path = "common/results.rs"]
mod results;

use conformance::redis_server::{CommandCounter, RedisServer};
use process_lock::redis_rs::RedisRsBackend;
use process_lock::{Lock, LockBackend};
use tokio::task::JoinSet;
use tokio::time::Instant;

const TASKS: usize = 8;
const HOLD: Duration = Duration::from_millis(1);
const TTL: Duration = Duration::from_secs(10);

/// One acquisition: who, when its acquire began and returned, and when its release was sent.
#[derive(Debug, Clone, Copy)]
struct Turn {
    task: usize,
    asked: Instant,
    got: Instant,
    released: Instant,
}

/// A lock under test: each task gets a `Locker` and loops acquire, hold, release.
trait Locker: Send + 'static {
    /// Acquires, holds for `HOLD`, releases; returns (acquired at, release sent at).
    fn turn(&mut self) -> impl std::future::Future<Output = (Instant, Instant)> + Send;
}

struct Ours(Lock);

impl Locker for Ours {
    async fn turn(&mut self) -> (Instant, Instant) {
        let guard = self.0.lock().await.expect("acquire");
        let got = Instant::now();
        tokio::time::sleep(HOLD).await;
        let released = Instant::now();
        let lost = guard.try_lost();
        let fence = guard.fence();
        let outcome = guard.release().await.expect("release");
        assert_eq!(
            outcome,
            process_lock::Release::Released,
            "lost before the release: {lost:?}, fence {fence:?}"
        );
        (got, released)
    }
}

struct Rslock(rslock::LockManager, String);

impl Locker for Rslock {
    async fn turn(&mut self) -> (Instant, Instant) {
        let guard = self
            .0
            .acquire(self.1.as_bytes(), TTL)
            .await
            .expect("acquire");
        let got = Instant::now();
        tokio::time::sleep(HOLD).await;
        let released = Instant::now();
        guard.release().await;
        (got, released)
    }
}

/// Runs `lockers` (one per task) for `length`; every turn, in the order taken.
async fn run<L: Locker>(lockers: Vec<L>, length: Duration) -> Vec<Turn> {
    let turns = Arc::new(Mutex::new(Vec::new()));
    let end = Instant::now() + length;
    let mut tasks = JoinSet::new();
    for (task, mut locker) in lockers.into_iter().enumerate() {
        let turns = turns.clone();
        tasks.spawn(async move {
            while Instant::now() < end {
                let asked = Instant::now();
                let (got, released) = locker.turn().await;
                turns.lock().unwrap().push(Turn {
                    task,
                    asked,
                    got,
                    released,
                });
            }
        });
    }
    // Waiters still waiting at the end finish their turn: bounded by the slowest lock.
    tasks.join_all().await;
    let mut turns = Arc::try_unwrap(turns).unwrap().into_inner().unwrap();
    turns.sort_by_key(|t| t.got);
    turns
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

struct Summary {
    name: &'static str,
    per_second: f64,
    handover_p50: Duration,
    handover_p99: Duration,
    same_task: f64,
    wait_p50: Duration,
    wait_p99: Duration,
    wait_max: Duration,
    min_per_task: usize,
    max_per_task: usize,
}

/// Writes `turns`' hand-over and wait times (µs) and figures to `out`, as `variant` with
/// `tasks` tasks (the records `benches/processes.rs` writes for processes).
fn record(out: &results::Results, variant: &str, tasks: usize, turns: &[Turn], length: Duration) {
    let (handovers, same) = handovers(turns);
    let waits: Vec<Duration> = turns.iter().map(|t| t.got - t.asked).collect();
    let tasks = tasks.to_string();
    for (what, values) in [("handover", &handovers), ("wait", &waits)] {
        let values: Vec<String> = values.iter().map(|d| d.as_micros().to_string()).collect();
        out.record(&["samples", what, variant, &tasks, &values.join(" ")]);
    }
    let per_second = turns.len() as f64 / length.as_secs_f64();
    let same = same as f64 / turns.len().saturating_sub(1).max(1) as f64;
    for (what, value) in [("per_second", per_second), ("same_process", same)] {
        out.record(&["value", what, variant, &tasks, &format!("{value:.4}")]);
    }
}

/// The hand-overs of `turns` (from a release to the next acquisition by another task), and
/// how many times a task took the lock again right after its own release.
fn handovers(turns: &[Turn]) -> (Vec<Duration>, usize) {
    let mut handovers = Vec::new();
    let mut same = 0usize;
    for pair in turns.windows(2) {
        if pair[1].task == pair[0].task {
            same += 1;
        } else {
            handovers.push(pair[1].got.saturating_duration_since(pair[0].released));
        }
    }
    (handovers, same)
}

fn summarise(name: &'static str, turns: &[Turn], length: Duration) -> Summary {
    let (mut handovers, same) = handovers(turns);
    handovers.sort();
    let mut waits: Vec<Duration> = turns.iter().map(|t| t.got - t.asked).collect();
    waits.sort();
    let mut per_task = [0usize; TASKS];
    for t in turns {
        per_task[t.task] += 1;
    }
    Summary {
        name,
        per_second: turns.len() as f64 / length.as_secs_f64(),
        handover_p50: percentile(&handovers, 0.50),
        handover_p99: percentile(&handovers, 0.99),
        same_task: same as f64 / turns.len().saturating_sub(1).max(1) as f64,
        wait_p50: percentile(&waits, 0.50),
        wait_p99: percentile(&waits, 0.99),
        wait_max: waits.last().copied().unwrap_or_default(),
        min_per_task: per_task.iter().copied().min().unwrap_or(0),
        max_per_task: per_task.iter().copied().max().unwrap_or(0),
    }
}

/// The contention table: a row per variant.
fn print_rows(rows: &[Summary]) {
    println!(
        "| variant | acq/s | hand-over p50 | hand-over p99 | same task again | wait p50 | wait p99 | wait max | per task min..max |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {:.0} | {} | {} | {:.1}% | {} | {} | {} | {}..{} |",
            r.name,
            r.per_second,
            ms(r.handover_p50),
            ms(r.handover_p99),
            r.same_task * 100.0,
            ms(r.wait_p50),
            ms(r.wait_p99),
            ms(r.wait_max),
            r.min_per_task,
            r.max_per_task,
        );
    }
}

/// A backend of its own on the bench's new server (so the delayed restart rule is off).
async fn backend(url: &str) -> Arc<dyn LockBackend> {
    let builder = RedisRsBackend::builder(url).restart_delay(std::time::Duration::ZERO);
    Arc::new(builder.connect().await.unwrap())
}

async fn ours_shared(url: &str, name: &str, tasks: usize) -> Vec<Ours> {
    let backend = backend(url).await;
    (0..tasks)
        .map(|_| Ours(Lock::new(backend.clone(), name, TTL).unwrap()))
        .collect()
}

async fn ours_separate(url: &str, name: &str, tasks: usize) -> Vec<Ours> {
    let mut lockers = Vec::new();
    for _ in 0..tasks {
        let backend = backend(url).await;
        lockers.push(Ours(Lock::new(backend, name, TTL).unwrap()));
    }
    lockers
}

fn rslocks(url: &str, name: &str, tasks: usize) -> Vec<Rslock> {
    let manager = rslock::LockManager::new(vec![url.to_owned()]);
    (0..tasks)
        .map(|_| Rslock(manager.clone(), name.to_owned()))
        .collect()
}

/// Top-level Redis commands per acquisition for `tasks` tasks over `length`, and the commands.
async fn commands<L: Locker>(
    url: &str,
    lockers: Vec<L>,
    length: Duration,
) -> (f64, Vec<(String, usize)>) {
    let counter = CommandCounter::start(url).await.unwrap();
    let turns = run(lockers, length).await;
    // Let the last releases and unsubscribes arrive.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = counter.take().await.unwrap();
    let mut by_name: Vec<(String, usize)> = Vec::new();
    for command in &sent {
        match by_name.iter_mut().find(|(c, _)| c == command) {
            Some((_, n)) => *n += 1,
            None => by_name.push((command.clone(), 1)),
        }
    }
    by_name.sort_by_key(|entry| std::cmp::Reverse(entry.1));
    (sent.len() as f64 / turns.len().max(1) as f64, by_name)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let seconds: u64 = std::env::var("BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(5);
        let length = Duration::from_secs(seconds);
        if std::env::var("BENCH_REDLOCK").is_ok_and(|v| v == "1") {
            redlock::run(length).await;
            return;
        }
        let server = RedisServer::start().await.expect("a Redis server");
        let url = server.direct_url().await;
        eprintln!("contention bench against {} at {url}", server.origin());

        let mut rows = Vec::new();
        let turns = run(ours_shared(&url, "bench:contention:a", TASKS).await, length).await;
        rows.push(summarise("process-lock", &turns, length));
        let turns = run(
            ours_separate(&url, "bench:contention:b", TASKS).await,
            length,
        )
        .await;
        rows.push(summarise("process-lock, a client per task", &turns, length));
        let turns = run(rslocks(&url, "bench:contention:c", TASKS), length).await;
        rows.push(summarise("rslock", &turns, length));

        println!(
            "\n{TASKS} tasks, one lock, hold {HOLD:?}, {seconds} s per variant (times in ms)\n"
        );
        print_rows(&rows);
        let (ours, peer) = (&rows[0], &rows[2]);
        println!(
            "\nwait p99: rslock / process-lock = {:.1}x; 8 clients: {:.1}x",
            peer.wait_p99.as_secs_f64() / ours.wait_p99.as_secs_f64().max(1e-9),
            peer.wait_p99.as_secs_f64() / rows[1].wait_p99.as_secs_f64().max(1e-9),
        );

        println!("\nRedis commands per acquisition (MONITOR, top-level only), 2 s each\n");
        println!("| variant | 2 tasks | 4 tasks | 8 tasks | commands at 8 tasks |");
        println!("|---|---:|---:|---:|---|");
        let short = Duration::from_secs(2);
        let line = |name: &str, per: Vec<(f64, Vec<(String, usize)>)>| {
            let detail: Vec<String> = per[2].1.iter().map(|(c, n)| format!("{c} {n}")).collect();
            println!(
                "| {name} | {:.2} | {:.2} | {:.2} | {} |",
                per[0].0,
                per[1].0,
                per[2].0,
                detail.join(", ")
            );
        };
        let mut per = Vec::new();
        for tasks in [2, 4, 8] {
            let name = format!("bench:rt:a{tasks}");
            per.push(commands(&url, ours_shared(&url, &name, tasks).await, short).await);
        }
        line("process-lock", per);
        let mut per = Vec::new();
        for tasks in [2, 4, 8] {
            let name = format!("bench:rt:b{tasks}");
            per.push(commands(&url, ours_separate(&url, &name, tasks).await, short).await);
        }
        line("process-lock, a client per task", per);
        let mut per = Vec::new();
        for tasks in [2, 4, 8] {
            let name = format!("bench:rt:c{tasks}");
            per.push(commands(&url, rslocks(&url, &name, tasks), short).await);
        }
        line("rslock", per);
    });
}

/// `BENCH_REDLOCK=1`: Redlock on 3 servers, ours and rslock's.
mod redlock {
    use super::*;
    use process_lock::{ProcessLock, Quorum};

    /// The Redlock's nodes: a backend per server, on redis-rs or fred.
    async fn quorum(urls: &[String], fred: bool) -> Arc<dyn LockBackend> {
        let mut nodes: Vec<Arc<dyn LockBackend>> = Vec::new();
        for url in urls {
            if fred {
                #[cfg(feature = "fred")]
                {
                    let builder =
                        process_lock::fred::FredBackend::builder(url).restart_delay(Duration::ZERO);
                    nodes.push(Arc::new(builder.connect().await.unwrap()));
                }
            } else {
                nodes.push(backend(url).await);
            }
        }
        Arc::new(Quorum::new(nodes).unwrap())
    }

    /// Uncontended cycles per second: one task, acquire and release, for `length`.
    async fn cycles(lock: &ProcessLock, length: Duration) -> f64 {
        let (start, mut n) = (Instant::now(), 0u64);
        while start.elapsed() < length {
            assert!(lock.lock().await.unwrap());
            assert_eq!(
                lock.clear(false).await.unwrap(),
                process_lock::Cleared::Cleared
            );
            n += 1;
        }
        n as f64 / start.elapsed().as_secs_f64()
    }

    async fn rslock_cycles(urls: &[String], length: Duration) -> f64 {
        let manager = rslock::LockManager::new(urls.to_vec());
        let (start, mut n) = (Instant::now(), 0u64);
        while start.elapsed() < length {
            let lock = manager.lock(b"bench:redlock:rslock", TTL).await.unwrap();
            manager.unlock(&lock).await;
            n += 1;
        }
        n as f64 / start.elapsed().as_secs_f64()
    }

    async fn ours_per_task(urls: &[String], name: &str, tasks: usize) -> Vec<Ours> {
        let mut lockers = Vec::new();
        for _ in 0..tasks {
            let backend = quorum(urls, false).await;
            lockers.push(Ours(Lock::new(backend, name, TTL).unwrap()));
        }
        lockers
    }

    fn rslock_per_task(urls: &[String], name: &str, tasks: usize) -> Vec<Rslock> {
        (0..tasks)
            .map(|_| Rslock(rslock::LockManager::new(urls.to_vec()), name.to_owned()))
            .collect()
    }

    pub(super) async fn run(length: Duration) {
        let out = results::Results::new("redlock");
        let mut servers = Vec::new();
        for _ in 0..3 {
            servers.push(RedisServer::start_own().await.expect("a Redis server"));
        }
        let mut urls: Vec<String> = Vec::new();
        for server in &servers {
            urls.push(server.direct_url().await);
        }
        eprintln!("Redlock bench on {}", servers[0].origin());
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(
                &mut redis::Client::open(urls[0].as_str())
                    .unwrap()
                    .get_multiplexed_async_connection()
                    .await
                    .unwrap(),
            )
            .await
            .unwrap();
        out.redis_version(&info);
        let slice = length / 2;
        let single = ProcessLock::new(backend(&urls[0]).await, "bench:redlock:one", TTL).unwrap();
        let rs = ProcessLock::new(quorum(&urls, false).await, "bench:redlock:rs", TTL).unwrap();
        let mut variants: Vec<(&str, Option<ProcessLock>)> = vec![
            ("process-lock, one server (redis-rs)", Some(single)),
            ("process-lock Quorum of 3 (redis-rs)", Some(rs)),
        ];
        if cfg!(feature = "fred") {
            let fred = quorum(&urls, true).await;
            variants.push((
                "process-lock Quorum of 3 (fred)",
                Some(ProcessLock::new(fred, "bench:redlock:fred", TTL).unwrap()),
            ));
        }
        variants.push(("rslock Redlock on the same 3", None));
        // Two alternating slices per variant, so that a noisy moment does not hit one alone.
        let mut rates = vec![0.0; variants.len()];
        for _ in 0..2 {
            for (i, (_, lock)) in variants.iter().enumerate() {
                rates[i] += match lock {
                    Some(lock) => cycles(lock, slice).await,
                    None => rslock_cycles(&urls, slice).await,
                } / 2.0;
            }
        }
        println!("\nUncontended cycle (acquire + release), one task, {length:?} per variant\n");
        println!("| variant | cycles/s | vs rslock |");
        println!("|---|---:|---:|");
        let peer = rates[rates.len() - 1];
        for ((name, _), rate) in variants.iter().zip(&rates) {
            println!("| {name} | {rate:.0} | {:.2}x |", rate / peer);
            out.record(&["rate", "uncontended", name, "1", &format!("{rate:.1}")]);
        }

        let ours = "process-lock Quorum of 3, a client per task";
        let turns = super::run(ours_per_task(&urls, "bench:redlock:a", TASKS).await, length).await;
        record(&out, ours, TASKS, &turns, length);
        let first = summarise(ours, &turns, length);
        let peer = "rslock Redlock, a manager per task";
        let turns = super::run(rslock_per_task(&urls, "bench:redlock:b", TASKS), length).await;
        record(&out, peer, TASKS, &turns, length);
        let rows = [first, summarise(peer, &turns, length)];
        println!(
            "\n{TASKS} tasks, one lock on a quorum of 3, hold {HOLD:?}, {length:?} per variant \
             (times in ms)\n"
        );
        print_rows(&rows);
        println!(
            "\nwait p99: rslock / process-lock = {:.1}x",
            rows[1].wait_p99.as_secs_f64() / rows[0].wait_p99.as_secs_f64().max(1e-9)
        );
    }
}
