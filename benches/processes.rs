//! Contention between real OS processes: P copies of this bench binary (each with its own
//! backend, connections and current-thread runtime) take turns on one lock, each holding it for
//! about a millisecond, with our waiting acquire (on the redis-rs and on the fred backend) and
//! with `rslock`'s (a Redlock that polls), against one Redis.
//!
//! Variants, for each P in `BENCH_PROCESSES`:
//! - `process-lock (redis-rs)`: `Lock::lock` on a `RedisRsBackend` per process;
//! - `process-lock (fred)`: `Lock::lock` on a `FredBackend` per process;
//! - `rslock`: `LockManager::acquire` (default settings: up to 3 tries 0..200 ms apart, then
//!   again) on a manager per process, `release` after the hold.
//!
//! Each worker process connects (and takes and releases a lock of its own once, so that the
//! first connection and script loading are not measured), waits for a common start time, then
//! loops until a common end time: note the time (`asked`), acquire, note the time (`got`),
//! hold 1 ms, note the time (`released`), release. It writes its turns (wall-clock µs) to a
//! file of its own; the parent merges them, sorted by `got`, once every worker has exited.
//!
//! Measured per variant and P: acquisitions per second (turns acquired before the end time);
//! how often the same process took the lock twice in a row; hand-over, the time from a release
//! being sent to the next acquisition by a *different* process (p50, p99); each turn's time
//! inside the waiting acquire (p50, p99, max; each process's first is left out, as all P ask
//! at one instant and a first wait subscribes to the lock's hand-offs); the least and most served processes' turns, over
//! the whole run and while every process asks (from the last process's first request to the
//! first process's last one: a process ready late, or the first to stop at the end time, is
//! served less for reasons that are not the lock's);
//! top-level Redis commands per acquisition (through `MONITOR`, from the start time until every
//! worker has exited: commands a script runs inside are not counted), in a 2 s run of its own
//! after the timed one (a server that copies every command to a `MONITOR` client, and the bench
//! process that reads them, take the time of the very processes measured: with `MONITOR` on,
//! hand-over p50 / p99 at 32 processes were 0.31 / 0.68 ms, without 0.23 / 0.46 ms); and
//! overlaps, consecutive turns where the next holder acquired before the previous one had even
//! sent its release (there must be none). Under each table, the issue's target for the wait:
//! `(P-1) × (hold + hand-over p50) + 5 ms`.
//!
//! ```sh
//! cargo bench --bench processes --features redis-rs,fred
//! ```
//!
//! With `BENCH_CLUSTER=1` it then runs our two variants again on a Redis Cluster of 3 primaries
//! (containers of the same image): every key and channel of the lock in one slot, releases
//! published to that shard with `SPUBLISH`, the commands counted on the slot's primary.
//!
//! It uses `REDIS_URL` if set, else a container of `LOCK_TEST_REDIS_IMAGE` (reached on Docker's
//! bridge network, not through its port proxy), else `redis-server`
//! from `PATH`. `BENCH_SECONDS` sets how long each variant runs (default 5), `BENCH_PROCESSES`
//! the numbers of processes (default `2,8,32`). With `BENCH_OUT` set, each variant's hand-over
//! and wait times and its figures also go to `$BENCH_OUT/processes.tsv` for
//! `scripts/bench-report`. With `BENCH_KEEP` set, the workers' files of turns stay in the
//! temporary directory (`process-lock-bench-processes-*`) for a closer look.
//!
//! The workers are this same binary with `PL_BENCH_WORKER` set.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[path = "common/results.rs"]
mod results;

use conformance::redis_server::{CommandCounter, RedisCluster, RedisServer};
use process_lock::{FredBackend, Lock, LockBackend, RedisRsBackend, Release};

const HOLD: Duration = Duration::from_millis(1);
const TTL: Duration = Duration::from_secs(10);
/// Time for the workers to start and connect before the common start time.
const SETUP: Duration = Duration::from_millis(1500);
/// How long the run that counts the commands (with `MONITOR`) lasts, after the timed run.
const COUNTED: Duration = Duration::from_secs(2);
/// How long after the end time the workers stay, idle, before writing their turns and
/// exiting: the queue drains in well under it (P turns).
const DRAIN: Duration = Duration::from_secs(2);
/// How long after the end time the workers may take to exit before they are killed.
const GRACE: Duration = Duration::from_secs(60);
/// The environment variable that makes this binary a worker.
const WORKER_ENV: &str = "PL_BENCH_WORKER";

/// The variants: label for people, and the worker's `PL_VARIANT`.
const VARIANTS: [(&str, &str); 3] = [
    ("process-lock (redis-rs)", "redis-rs"),
    ("process-lock (fred)", "fred"),
    ("rslock", "rslock"),
];

/// The variants on a Redis Cluster (`BENCH_CLUSTER=1`): ours only, as rslock takes its URLs
/// for independent servers (a Redlock), not for the nodes of one Cluster.
const CLUSTER_VARIANTS: [(&str, &str); 2] = [
    ("process-lock (redis-rs) cluster", "redis-rs"),
    ("process-lock (fred) cluster", "fred"),
];

fn main() {
    if std::env::var_os(WORKER_ENV).is_some() {
        return worker();
    }
    parent();
}

fn now_us() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros(),
    )
    .unwrap()
}

/// Sleeps until the wall-clock time `at_us`.
async fn sleep_until_us(at_us: u64) {
    let now = now_us();
    if at_us > now {
        tokio::time::sleep(Duration::from_micros(at_us - now)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Worker
// ---------------------------------------------------------------------------------------------

/// A lock under test, in one worker process.
enum Locker {
    Ours(Lock),
    Rslock(rslock::LockManager, String),
}

impl Locker {
    async fn new(variant: &str, url: &str, name: &str) -> Locker {
        let backend: Arc<dyn LockBackend> = match variant {
            "redis-rs" => Arc::new(
                RedisRsBackend::builder(url)
                    .restart_delay(Duration::ZERO)
                    .connect()
                    .await
                    .expect("connect (redis-rs)"),
            ),
            "fred" => Arc::new(
                FredBackend::builder(url)
                    .restart_delay(Duration::ZERO)
                    .connect()
                    .await
                    .expect("connect (fred)"),
            ),
            "rslock" => {
                let manager = rslock::LockManager::new(vec![url.to_owned()]);
                return Locker::Rslock(manager, name.to_owned());
            }
            other => panic!("unknown variant {other}"),
        };
        Locker::Ours(Lock::new(backend, name, TTL).expect("lock name"))
    }

    /// The same kind of lock on another name, on the same connections.
    fn other(&self, name: &str) -> Locker {
        match self {
            Locker::Ours(lock) => {
                Locker::Ours(Lock::new(lock.backend().clone(), name, TTL).expect("lock name"))
            }
            Locker::Rslock(manager, _) => Locker::Rslock(manager.clone(), name.to_owned()),
        }
    }

    /// Acquires, holds for `HOLD`, releases; returns (acquired at, release sent at), in µs.
    ///
    /// The hold blocks the thread (`hold()`): a tokio timer of 1 ms lasts 2 ms (the timer wheel
    /// rounds up to its next millisecond), which would double the hold the targets count on.
    async fn turn(&self) -> (u64, u64) {
        match self {
            Locker::Ours(lock) => {
                let guard = lock.lock().await.expect("acquire");
                let got = now_us();
                hold();
                let released = now_us();
                let lost = guard.try_lost();
                let fence = guard.fence();
                let outcome = guard.release().await.expect("release");
                assert_eq!(
                    outcome,
                    Release::Released,
                    "lost before the release: {lost:?}, fence {fence:?}"
                );
                (got, released)
            }
            Locker::Rslock(manager, name) => {
                let guard = manager
                    .acquire(name.as_bytes(), TTL)
                    .await
                    .expect("acquire");
                let got = now_us();
                hold();
                let released = now_us();
                guard.release().await;
                (got, released)
            }
        }
    }
}

/// Holds the lock for `HOLD`, blocking the worker's one thread: nothing else of the worker
/// needs to run meanwhile (no renewal is due within a millisecond, and no hand-off comes to a
/// process that holds the lock).
fn hold() {
    std::thread::sleep(HOLD);
}

/// A worker: connects, warms up on a lock of its own, waits for `PL_START_US`, then loops
/// acquire / hold / release on `PL_NAME` until `PL_END_US`, and writes its turns to `PL_OUT`:
/// a line `#ready <µs>`, then one line `<worker> <asked> <got> <released>` per turn.
fn worker() {
    let env = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is set"));
    let (url, variant, name) = (env("PL_URL"), env("PL_VARIANT"), env("PL_NAME"));
    let id: usize = env("PL_ID").parse().unwrap();
    let out = PathBuf::from(env("PL_OUT"));
    let start: u64 = env("PL_START_US").parse().unwrap();
    let end: u64 = env("PL_END_US").parse().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (ready, turns) = runtime.block_on(async {
        let locker = Locker::new(&variant, &url, &name).await;
        // Connections, subscriptions and scripts ready before the start.
        locker.other(&format!("{name}:warm-up:{id}")).turn().await;
        let ready = now_us();
        sleep_until_us(start).await;
        let mut turns = Vec::new();
        while now_us() < end {
            let asked = now_us();
            let (got, released) = locker.turn().await;
            turns.push((asked, got, released));
        }
        // Idle until every worker is done: a worker that exits (writing its file, closing its
        // connections) takes the CPU from the last turns of the others.
        sleep_until_us(end + u64::try_from(DRAIN.as_micros()).unwrap()).await;
        (ready, turns)
    });
    let mut file = std::io::BufWriter::new(std::fs::File::create(&out).unwrap());
    writeln!(file, "#ready {ready}").unwrap();
    for (asked, got, released) in turns {
        writeln!(file, "{id} {asked} {got} {released}").unwrap();
    }
    file.flush().unwrap();
}

// ---------------------------------------------------------------------------------------------
// Parent
// ---------------------------------------------------------------------------------------------

/// The worker processes of one run: any still running when this is dropped (the parent
/// panicked or returned early) are killed.
struct Children(Vec<Child>);

impl Children {
    /// Waits until every worker has exited, each successfully, or `deadline` has passed.
    fn wait_all(&mut self, deadline: u64) -> Result<(), String> {
        let mut running: Vec<usize> = (0..self.0.len()).collect();
        while !running.is_empty() {
            let mut still = Vec::new();
            for i in running {
                match self.0[i].try_wait() {
                    Ok(Some(status)) if status.success() => {}
                    Ok(Some(status)) => return Err(format!("worker {i} failed: {status}")),
                    Ok(None) => still.push(i),
                    Err(e) => return Err(format!("worker {i}: {e}")),
                }
            }
            running = still;
            if !running.is_empty() {
                if now_us() > deadline {
                    return Err(format!(
                        "workers {running:?} still running past the deadline"
                    ));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Ok(())
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// One acquisition, as a worker wrote it down (wall-clock µs).
#[derive(Debug, Clone, Copy)]
struct Turn {
    worker: usize,
    asked: u64,
    got: u64,
    released: u64,
}

/// What one run yields.
struct Outcome {
    turns: Vec<Turn>,
    /// Workers ready (connected and warmed up) only after the start time, and by how much.
    late: Vec<(usize, Duration)>,
    end_us: u64,
}

/// The commands of a run with `MONITOR` on (see [`COUNTED`]), and its number of turns.
struct Counted {
    commands: Vec<String>,
    turns: usize,
}

/// Runs `processes` workers of `variant` on lock `name` for `length`, the workers connecting
/// to `url`, the timed run (no `MONITOR` on); then again for [`COUNTED`], on lock
/// `{<name>}:counted` (in `name`'s hash slot), with the commands counted with `MONITOR` on `monitored` (the server, or
/// on a Cluster the primary of the lock's slot, where every command of the lock goes).
async fn run(
    (url, monitored): (&str, &str),
    variant: &str,
    name: &str,
    processes: usize,
    length: Duration,
) -> (Outcome, Counted) {
    let (outcome, _) = run_once((url, None), variant, name, processes, length).await;
    // In the timed lock's slot (the name in braces is its hash tag), so on the node monitored.
    let counted_name = format!("{{{name}}}:counted");
    let counting = (url, Some(monitored));
    let (counted, commands) = run_once(counting, variant, &counted_name, processes, COUNTED).await;
    let counted = Counted {
        commands: commands.unwrap_or_default(),
        turns: counted.turns.len(),
    };
    (outcome, counted)
}

/// One run of [`run`]: the commands too, when `monitored` names a server to `MONITOR`.
async fn run_once(
    (url, monitored): (&str, Option<&str>),
    variant: &str,
    name: &str,
    processes: usize,
    length: Duration,
) -> (Outcome, Option<Vec<String>>) {
    let dir = std::env::temp_dir().join(format!(
        "process-lock-bench-processes-{}-{variant}-{processes}{}",
        std::process::id(),
        if monitored.is_some() { "-counted" } else { "" }
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let counter = match monitored {
        Some(server) => Some(CommandCounter::start(server).await.expect("MONITOR")),
        None => None,
    };
    let start_us = now_us() + u64::try_from(SETUP.as_micros()).unwrap();
    let end_us = start_us + u64::try_from(length.as_micros()).unwrap();
    let me = std::env::current_exe().unwrap();
    let mut children = Children(Vec::with_capacity(processes));
    for i in 0..processes {
        let child = Command::new(&me)
            .env(WORKER_ENV, "1")
            .env("PL_URL", url)
            .env("PL_VARIANT", variant)
            .env("PL_NAME", name)
            .env("PL_ID", i.to_string())
            .env("PL_OUT", dir.join(format!("worker-{i}")))
            .env("PL_START_US", start_us.to_string())
            .env("PL_END_US", end_us.to_string())
            .spawn()
            .expect("start a worker");
        children.0.push(child);
    }
    // Setup (connecting, loading scripts, the warm-up turn) is not counted.
    sleep_until_us(start_us).await;
    if let Some(counter) = &counter {
        counter.take().await.expect("MONITOR");
    }
    let deadline = end_us + u64::try_from(GRACE.as_micros()).unwrap();
    let label = format!("{variant}, {processes} processes");
    tokio::task::spawn_blocking(move || {
        if let Err(e) = children.wait_all(deadline) {
            panic!("{label}: {e}");
        }
    })
    .await
    .unwrap();
    let commands = match &counter {
        Some(counter) => Some(counter.take().await.expect("MONITOR")),
        None => None,
    };
    let (turns, late) = read_turns(&dir, processes, start_us);
    if std::env::var_os("BENCH_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let outcome = Outcome {
        turns,
        late,
        end_us,
    };
    (outcome, commands)
}

/// Every worker's turns, sorted by `got`, and the workers that were ready late.
fn read_turns(dir: &Path, processes: usize, start_us: u64) -> (Vec<Turn>, Vec<(usize, Duration)>) {
    let mut turns = Vec::new();
    let mut late = Vec::new();
    for i in 0..processes {
        let path = dir.join(format!("worker-{i}"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for line in text.lines() {
            if let Some(ready) = line.strip_prefix("#ready ") {
                let ready: u64 = ready.parse().unwrap();
                if ready > start_us {
                    late.push((i, Duration::from_micros(ready - start_us)));
                }
                continue;
            }
            let parts: Vec<u64> = line.split(' ').map(|p| p.parse().unwrap()).collect();
            let [worker, asked, got, released] = parts[..] else {
                panic!("{}: bad line {line:?}", path.display());
            };
            turns.push(Turn {
                worker: usize::try_from(worker).unwrap(),
                asked,
                got,
                released,
            });
        }
    }
    turns.sort_by_key(|t| t.got);
    (turns, late)
}

fn percentile(sorted: &[u64], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    Duration::from_micros(sorted[rank])
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// One row of a table.
struct Summary {
    name: &'static str,
    processes: usize,
    per_second: f64,
    same_process: f64,
    handover_p50: Duration,
    handover_p99: Duration,
    hold_p50: Duration,
    wait_p50: Duration,
    wait_p99: Duration,
    wait_max: Duration,
    least: usize,
    most: usize,
    /// Turns of the least and most served processes while every process was asking: from the
    /// last first request to the first last request.
    steady_least: usize,
    steady_most: usize,
    commands_per_acquisition: f64,
    /// Each command's count, in the run that counted them, of `counted_turns` turns.
    commands: Vec<(String, usize)>,
    counted_turns: usize,
    overlaps: usize,
    late: Vec<(usize, Duration)>,
    /// Acquisitions by other processes during one wait, p99 and max: at most P - 1 when the
    /// waiters are served in arrival order.
    passed_p99: usize,
    passed_max: usize,
    /// The longest turn while every process asks (from one acquisition to the next): one slow
    /// turn lengthens the wait of every process queued behind it.
    longest_turn: Duration,
}

/// Records `values` (µs) as the samples of `what` for `variant` with `processes` processes.
fn record_samples(
    out: &results::Results,
    what: &str,
    variant: &str,
    processes: usize,
    values: &[u64],
) {
    let values: Vec<String> = values.iter().map(u64::to_string).collect();
    out.record(&[
        "samples",
        what,
        variant,
        &processes.to_string(),
        &values.join(" "),
    ]);
}

fn summarise(
    out: &results::Results,
    name: &'static str,
    processes: usize,
    (outcome, counted): (Outcome, Counted),
    length: Duration,
) -> Summary {
    let turns = &outcome.turns;
    let mut handovers = Vec::new();
    let (mut same, mut overlaps) = (0usize, 0usize);
    for pair in turns.windows(2) {
        if pair[0].released > pair[1].got {
            overlaps += 1;
        }
        if pair[1].worker == pair[0].worker {
            same += 1;
        } else {
            handovers.push(pair[1].got.saturating_sub(pair[0].released));
        }
    }
    handovers.sort_unstable();
    // Each process's first wait is left out: all P ask at one instant, and the first wait
    // subscribes to the lock's hand-offs.
    let mut first_asked = vec![u64::MAX; processes];
    for t in turns {
        first_asked[t.worker] = first_asked[t.worker].min(t.asked);
    }
    let mut waits: Vec<u64> = turns
        .iter()
        .filter(|t| t.asked != first_asked[t.worker])
        .map(|t| t.got - t.asked)
        .collect();
    waits.sort_unstable();
    let mut holds: Vec<u64> = turns.iter().map(|t| t.released - t.got).collect();
    holds.sort_unstable();
    let mut per_worker = vec![0usize; processes];
    for t in turns {
        per_worker[t.worker] += 1;
    }
    // Fairness while everyone asks: a process ready late, or one that stops asking first at
    // the end time, is served less for reasons that are not the lock's.
    let mut last_asked = vec![0u64; processes];
    for t in turns {
        last_asked[t.worker] = last_asked[t.worker].max(t.asked);
    }
    let all_asking = first_asked.iter().copied().max().unwrap_or(0);
    let one_stopped = last_asked.iter().copied().min().unwrap_or(0);
    let mut steady = vec![0usize; processes];
    for t in turns {
        if (all_asking..=one_stopped).contains(&t.got) {
            steady[t.worker] += 1;
        }
    }
    let mut by_name: BTreeMap<String, usize> = BTreeMap::new();
    for command in &counted.commands {
        *by_name.entry(command.clone()).or_default() += 1;
    }
    let mut commands: Vec<(String, usize)> = by_name.into_iter().collect();
    commands.sort_by_key(|entry| std::cmp::Reverse(entry.1));
    // Turns are sorted by `got`: the acquisitions by others while one waited are those
    // between its request and its acquisition.
    let gots: Vec<u64> = turns.iter().map(|t| t.got).collect();
    let mut passed: Vec<usize> = turns
        .iter()
        .enumerate()
        .map(|(i, t)| i - gots.partition_point(|&got| got <= t.asked).min(i))
        .collect();
    passed.sort_unstable();
    let longest_turn = gots
        .windows(2)
        .filter(|pair| (all_asking..=one_stopped).contains(&pair[0]))
        .map(|pair| pair[1] - pair[0])
        .max()
        .unwrap_or(0);
    let in_time = turns.iter().filter(|t| t.got < outcome.end_us).count();
    record_samples(out, "handover", name, processes, &handovers);
    record_samples(out, "wait", name, processes, &waits);
    let value = |what: &str, v: f64| {
        out.record(&[
            "value",
            what,
            name,
            &processes.to_string(),
            &format!("{v:.4}"),
        ]);
    };
    value("per_second", in_time as f64 / length.as_secs_f64());
    value(
        "same_process",
        same as f64 / turns.len().saturating_sub(1).max(1) as f64,
    );
    value(
        "commands_per_acquisition",
        counted.commands.len() as f64 / counted.turns.max(1) as f64,
    );
    value(
        "least_most_while_all_ask",
        steady.iter().copied().min().unwrap_or(0) as f64
            / steady.iter().copied().max().unwrap_or(0).max(1) as f64,
    );
    value("hold_p50_us", percentile(&holds, 0.50).as_micros() as f64);
    value("passed_max", passed.last().copied().unwrap_or(0) as f64);
    value("longest_turn_us", longest_turn as f64);
    // The mean turn (hold, release, hand-over) while every process asks: what a FIFO waiter
    // with P - 1 processes ahead of it waits for, P - 1 times, whatever the turns' spread.
    let steady_gots: Vec<u64> = turns
        .iter()
        .map(|t| t.got)
        .filter(|got| (all_asking..=one_stopped).contains(got))
        .collect();
    if let (Some(first), Some(last)) = (steady_gots.first(), steady_gots.last())
        && steady_gots.len() > 1
    {
        value(
            "turn_mean_us",
            (last - first) as f64 / (steady_gots.len() - 1) as f64,
        );
    }
    Summary {
        name,
        processes,
        per_second: in_time as f64 / length.as_secs_f64(),
        same_process: same as f64 / turns.len().saturating_sub(1).max(1) as f64,
        handover_p50: percentile(&handovers, 0.50),
        handover_p99: percentile(&handovers, 0.99),
        hold_p50: percentile(&holds, 0.50),
        wait_p50: percentile(&waits, 0.50),
        wait_p99: percentile(&waits, 0.99),
        wait_max: Duration::from_micros(waits.last().copied().unwrap_or_default()),
        least: per_worker.iter().copied().min().unwrap_or(0),
        most: per_worker.iter().copied().max().unwrap_or(0),
        steady_least: steady.iter().copied().min().unwrap_or(0),
        steady_most: steady.iter().copied().max().unwrap_or(0),
        commands_per_acquisition: counted.commands.len() as f64 / counted.turns.max(1) as f64,
        commands,
        counted_turns: counted.turns,
        overlaps,
        late: outcome.late,
        passed_p99: passed
            .get((passed.len().saturating_sub(1) * 99) / 100)
            .copied()
            .unwrap_or(0),
        passed_max: passed.last().copied().unwrap_or(0),
        longest_turn: Duration::from_micros(longest_turn),
    }
}

fn print_table(processes: usize, seconds: u64, rows: &[Summary]) {
    println!(
        "\n{processes} processes, one lock, hold {HOLD:?}, {seconds} s per variant (times in ms)\n"
    );
    println!(
        "| variant | P | acq/s | same process again | hand-over p50 | hand-over p99 | wait p50 | wait p99 | wait max | least/most | least/most while all ask | commands/acq | overlaps |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {:.0} | {:.1}% | {} | {} | {} | {} | {} | {}/{} ({:.2}) | {}/{} ({:.2}) | {:.2} | {} |",
            r.name,
            r.processes,
            r.per_second,
            r.same_process * 100.0,
            ms(r.handover_p50),
            ms(r.handover_p99),
            ms(r.wait_p50),
            ms(r.wait_p99),
            ms(r.wait_max),
            r.least,
            r.most,
            r.least as f64 / r.most.max(1) as f64,
            r.steady_least,
            r.steady_most,
            r.steady_least as f64 / r.steady_most.max(1) as f64,
            r.commands_per_acquisition,
            r.overlaps,
        );
    }
    println!(
        "\nTarget for the wait: (P-1) × (hold + hand-over p50) + 5 ms, with hold = {HOLD:?} \
         (and, in brackets, with the measured hold p50):"
    );
    for r in rows {
        let factor = u32::try_from(r.processes.saturating_sub(1)).unwrap();
        let target = |hold: Duration| (hold + r.handover_p50) * factor + Duration::from_millis(5);
        let (nominal, measured) = (target(HOLD), target(r.hold_p50));
        let verdict = |wait: Duration| match (wait <= nominal, wait <= measured) {
            (true, _) => "within",
            (false, true) => "within the measured-hold target only",
            (false, false) => "over",
        };
        println!(
            "- {}: target {} ms ({} ms with hold p50 {} ms); wait p99 {} ms: {}; max {} ms: {}",
            r.name,
            ms(nominal),
            ms(measured),
            ms(r.hold_p50),
            ms(r.wait_p99),
            verdict(r.wait_p99),
            ms(r.wait_max),
            verdict(r.wait_max),
        );
    }
    println!(
        "\nAcquisitions by other processes during one wait (at most P-1 = served in arrival \
         order), and the longest turn:"
    );
    for r in rows {
        println!(
            "- {}: p99 {}, max {} (P-1 = {}); longest turn {} ms",
            r.name,
            r.passed_p99,
            r.passed_max,
            r.processes - 1,
            ms(r.longest_turn),
        );
    }
    println!("\nTop-level commands per acquisition (MONITOR, in a run of its own):");
    for r in rows {
        let detail: Vec<String> = r
            .commands
            .iter()
            .map(|(c, n)| format!("{c} {:.2}", *n as f64 / r.counted_turns.max(1) as f64))
            .collect();
        let turns = r.counted_turns;
        println!("- {} ({turns} turns): {}", r.name, detail.join(", "));
    }
    for r in rows.iter().filter(|r| !r.late.is_empty()) {
        let worst = r.late.iter().map(|l| l.1).max().unwrap_or_default();
        println!(
            "- note: {}: {} workers were ready only after the start time (up to {} ms late)",
            r.name,
            r.late.len(),
            ms(worst)
        );
    }
}

fn parent() {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let processes = results::counts_from_env("BENCH_PROCESSES", &[2, 8, 32]);
    let length = Duration::from_secs(seconds);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let server = RedisServer::start().await.expect("a Redis server");
        let url = server.direct_url().await;
        eprintln!("processes bench against {} at {url}", server.origin());
        let out = results::Results::new("processes");
        let mut conn = redis::Client::open(url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut conn)
            .await
            .unwrap();
        out.redis_version(&info);
        for &p in &processes {
            let mut rows = Vec::new();
            for (label, variant) in VARIANTS {
                let name = format!("bench:processes:{variant}:{p}:{}", std::process::id());
                let outcome = run((&url, &url), variant, &name, p, length).await;
                rows.push(summarise(&out, label, p, outcome, length));
            }
            print_table(p, seconds, &rows);
        }
        drop(server);
        if std::env::var("BENCH_CLUSTER").is_ok_and(|v| v == "1") {
            on_a_cluster(&out, &processes, length).await;
        }
    });
}

/// The same turns on a Redis Cluster of 3 primaries (`BENCH_CLUSTER=1`): every key and channel
/// of the lock in its slot, on one primary; releases published with `SPUBLISH` to that shard.
async fn on_a_cluster(out: &results::Results, processes: &[usize], length: Duration) {
    let cluster = RedisCluster::start(3, 0)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let url = cluster.url();
    eprintln!("processes bench on a Redis Cluster: {}", cluster.origin());
    for &p in processes {
        let mut rows = Vec::new();
        for (label, variant) in CLUSTER_VARIANTS {
            let name = format!(
                "bench:processes:cluster:{variant}:{p}:{}",
                std::process::id()
            );
            let primary = cluster
                .primary_of(&name)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let monitored = format!("redis://{primary}/");
            let outcome = run((&url, &monitored), variant, &name, p, length).await;
            rows.push(summarise(out, label, p, outcome, length));
        }
        print_table(p, length.as_secs(), &rows);
    }
}
