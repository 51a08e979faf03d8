//! The Redis backends against their own raw clients, in one run against one Redis.
//!
//! For each client, four ways to do a lock + clear cycle:
//! - `ProcessLock`: `lock()` then `clear(false)` through the backend;
//! - `raw scripts`: the same two `EVALSHA` commands sent straight through the same client
//!   connection (what the backend costs over its client): the keys and arguments come from the
//!   protocol's [`calls`], built once per task, so they are exactly what the backend sends;
//! - `raw SET NX + DEL`: the naive, non-atomic pair (what owner checks cost);
//! - `Lock guard`: `Lock::lock()` then `LockGuard::release()`, the uncontended path of the
//!   waiter queue (one `QUEUE` script when the lock is free, which also draws a fencing token)
//!   plus the guard's bookkeeping (its renewal task);
//! - `raw fenced scripts`: what the guard is measured against, `ACQUIRE_FENCED` then `RELEASE`
//!   sent straight through the client: the same work on the server as the guard's (a lock with
//!   a fencing token), the path `Lock::lock` took before the waiter queue.
//!
//! Each runs with 1 and 64 concurrent tasks on distinct names. The variants of a client take
//! turns in 200 ms slices (rotating which goes first), so a shared machine's drift falls on all
//! of them alike; the table gives each one's rate over all its slices, and ratios within this
//! one run. Then the commands each
//! operation sends, counted by MONITOR (top-level only: script-internal calls are excluded).
//!
//! ```sh
//! cargo bench --bench redis --features redis-rs,fred
//! ```
//!
//! It uses `REDIS_URL` if set, else a container of `LOCK_TEST_REDIS_IMAGE` (default
//! `process-lock-redis:7`, built by `scripts/test`; reached on Docker's bridge network, not
//! through its port proxy), else `redis-server` from `PATH`.
//! `BENCH_SECONDS` sets how long each variant is measured in all (default 6), `BENCH_TASKS` the
//! numbers of concurrent tasks (default `1,64`). `BENCH_CLUSTER=1` adds the same cycles on a
//! Redis Cluster of 3 primaries (containers of the same image), for both clients: each script
//! on the node of its lock's slot, the raw scripts through each client's cluster connection. With `BENCH_OUT` set, the rates also go to
//! `$BENCH_OUT/redis.tsv` for `scripts/bench-report`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[path = "common/results.rs"]
mod results;

use conformance::redis_server::{CommandCounter, RedisCluster, RedisServer};
use process_lock::raw::async_trait;
use process_lock::raw::redis::ScriptCall;
use process_lock::raw::redis::calls;
use process_lock::raw::redis::keys::KeySpace;
use process_lock::raw::redis::scripts::Script;
use process_lock::{Lock, LockBackend, LockName, ProcessLock, Release, Token, Ttl};
use tokio::time::Instant;

const TTL_MS: u64 = 30_000;
/// The restart delay the backends are built with, and the raw scripts send: 1 ms, so every
/// acquire runs the whole delayed restart check, as it does with the default delay on a server
/// up for long.
const RESTART_DELAY: Duration = Duration::from_millis(1);
/// One measurement slice; variants alternate slice by slice.
const SLICE: Duration = Duration::from_millis(200);

/// One lock + clear cycle for task `task`.
#[async_trait]
trait Cycle: Send + Sync {
    async fn cycle(&self, task: usize);
}

struct Handles(Vec<ProcessLock>);

#[async_trait]
impl Cycle for Handles {
    async fn cycle(&self, task: usize) {
        let lock = &self.0[task];
        assert!(lock.lock().await.unwrap());
        assert!(lock.clear(false).await.unwrap() == process_lock::Cleared::Cleared);
    }
}

/// A lock taken and released by a [`Lock`]'s guard, one per task.
struct Guards(Vec<Lock>);

#[async_trait]
impl Cycle for Guards {
    async fn cycle(&self, task: usize) {
        let guard = self.0[task].lock().await.unwrap();
        assert_eq!(guard.release().await.unwrap(), Release::Released);
    }
}

fn guards(backend: &Arc<dyn LockBackend>, variant: &str, tasks: usize) -> Arc<dyn Cycle> {
    let locks = (0..tasks)
        .map(|t| {
            Lock::new(
                backend.clone(),
                format!("bench:{variant}:{t}"),
                Duration::from_millis(TTL_MS),
            )
            .unwrap()
        })
        .collect();
    Arc::new(Guards(locks))
}

/// What one task of a raw scripts variant sends each cycle, built once by the protocol's
/// [`calls`] exactly as the backend builds it: prefix "", the bench's ttl and restart delay.
struct Prepared {
    acquire: ScriptCall,
    fenced: ScriptCall,
    release: ScriptCall,
}

/// The calls of `tasks` tasks, with lock names under `variant`; on a Redis Cluster when
/// `sharded` (releases with `SPUBLISH`, as the backend sends them there).
fn prepared_in(variant: &str, tasks: usize, sharded: bool) -> Vec<Prepared> {
    let space = KeySpace::new("").sharded(sharded);
    let ttl = Ttl::new(Duration::from_millis(TTL_MS)).unwrap();
    (0..tasks)
        .map(|t| {
            let name = LockName::new(format!("bench:{variant}:{t}")).unwrap();
            let token = Token::generate().unwrap();
            let acquire = calls::acquire(&space, &name, &token, ttl, Some(RESTART_DELAY));
            let fenced = calls::acquire_fenced(&space, &name, &token, ttl, Some(RESTART_DELAY));
            let release = calls::release(&space, &name, &token);
            Prepared {
                acquire: acquire.script().clone(),
                fenced: fenced.script().clone(),
                release: release.script().clone(),
            }
        })
        .collect()
}

/// The scripts the raw cycles run, to load ahead of time: each cycle is then two `EVALSHA`,
/// as the backend's warm path.
const RAW_SCRIPTS: [Script; 3] = [Script::Acquire, Script::AcquireFenced, Script::Release];

fn names(variant: &str, tasks: usize) -> Vec<(String, String)> {
    (0..tasks)
        .map(|t| {
            let token = process_lock::Token::generate().unwrap();
            (format!("bench:{variant}:{t}"), token.as_str().to_owned())
        })
        .collect()
}

fn handles(backend: &Arc<dyn LockBackend>, variant: &str, tasks: usize) -> Arc<dyn Cycle> {
    let locks = (0..tasks)
        .map(|t| {
            ProcessLock::new(
                backend.clone(),
                format!("bench:{variant}:{t}"),
                Duration::from_millis(TTL_MS),
            )
            .unwrap()
        })
        .collect();
    Arc::new(Handles(locks))
}

mod redis_rs_raw {
    use super::*;
    use redis::aio::ConnectionManager;

    /// Loads the raw scripts through `conn`, checking that the server names them by the
    /// protocol's SHA-1.
    pub(super) async fn load_scripts(conn: &ConnectionManager) {
        let mut conn = conn.clone();
        for script in RAW_SCRIPTS {
            let sha: String = redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(script.lua())
                .query_async(&mut conn)
                .await
                .unwrap();
            assert_eq!(sha, script.sha1());
        }
    }

    /// `EVALSHA sha numkeys keys... args...`, as the backend's transport sends it.
    fn evalsha(call: &ScriptCall) -> redis::Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(call.script.sha1())
            .arg(call.keys.len())
            .arg(&call.keys);
        for arg in &call.args {
            cmd.arg(arg.as_bytes());
        }
        cmd
    }

    /// A connection of the raw client: one server's connection manager, or a cluster
    /// connection (which routes each command by its first key).
    pub(super) trait Conn:
        redis::aio::ConnectionLike + Clone + Send + Sync + 'static
    {
    }
    impl<C: redis::aio::ConnectionLike + Clone + Send + Sync + 'static> Conn for C {}

    pub(super) struct Scripts<C> {
        pub(super) conn: C,
        pub(super) calls: Vec<Prepared>,
        /// `ACQUIRE_FENCED` instead of `ACQUIRE`.
        pub(super) fenced: bool,
    }

    #[async_trait]
    impl<C: Conn> Cycle for Scripts<C> {
        async fn cycle(&self, task: usize) {
            let calls = &self.calls[task];
            let mut conn = self.conn.clone();
            let acquire = if self.fenced {
                &calls.fenced
            } else {
                &calls.acquire
            };
            let got: Vec<i64> = evalsha(acquire).query_async(&mut conn).await.unwrap();
            assert_eq!(got[0], 1);
            let released: i64 = evalsha(&calls.release)
                .query_async(&mut conn)
                .await
                .unwrap();
            assert_eq!(released, 1);
        }
    }

    pub(super) struct SetDel<C> {
        pub(super) conn: C,
        pub(super) keys: Vec<(String, String)>,
    }

    #[async_trait]
    impl<C: Conn> Cycle for SetDel<C> {
        async fn cycle(&self, task: usize) {
            let (key, token) = &self.keys[task];
            let mut conn = self.conn.clone();
            let set: Option<String> = redis::cmd("SET")
                .arg(key)
                .arg(token)
                .arg("NX")
                .arg("PX")
                .arg(TTL_MS)
                .query_async(&mut conn)
                .await
                .unwrap();
            assert!(set.is_some());
            let deleted: i64 = redis::cmd("DEL")
                .arg(key)
                .query_async(&mut conn)
                .await
                .unwrap();
            assert_eq!(deleted, 1);
        }
    }
}

#[cfg(feature = "fred")]
mod fred_raw {
    use super::*;
    use process_lock::fred::fred::prelude::{Client, KeysInterface, LuaInterface};
    use process_lock::fred::fred::types::{Expiration, FromValue, Key, SetOptions};

    /// Loads the raw scripts through `client`, checking that the server names them by the
    /// protocol's SHA-1.
    pub(super) async fn load_scripts(client: &Client) {
        for script in RAW_SCRIPTS {
            let sha: String = client.script_load(script.lua()).await.unwrap();
            assert_eq!(sha, script.sha1());
        }
    }

    /// `EVALSHA sha numkeys keys... args...`, as the backend's transport sends it (which
    /// clones the keys and arguments for fred too).
    async fn evalsha<T: FromValue>(client: &Client, call: &ScriptCall) -> T {
        let keys: Vec<Key> = call.keys.iter().map(Key::from).collect();
        let args: Vec<&str> = call.args.iter().map(|a| a.as_str()).collect();
        client
            .evalsha(call.script.sha1(), keys, args)
            .await
            .unwrap()
    }

    pub(super) struct Scripts {
        pub(super) client: Client,
        pub(super) calls: Vec<Prepared>,
        /// `ACQUIRE_FENCED` instead of `ACQUIRE`.
        pub(super) fenced: bool,
    }

    #[async_trait]
    impl Cycle for Scripts {
        async fn cycle(&self, task: usize) {
            let calls = &self.calls[task];
            let acquire = if self.fenced {
                &calls.fenced
            } else {
                &calls.acquire
            };
            let got: Vec<i64> = evalsha(&self.client, acquire).await;
            assert_eq!(got[0], 1);
            let released: i64 = evalsha(&self.client, &calls.release).await;
            assert_eq!(released, 1);
        }
    }

    pub(super) struct SetDel {
        pub(super) client: Client,
        pub(super) keys: Vec<(String, String)>,
    }

    #[async_trait]
    impl Cycle for SetDel {
        async fn cycle(&self, task: usize) {
            let (key, token) = &self.keys[task];
            let set: Option<String> = self
                .client
                .set(
                    key.as_str(),
                    token.as_str(),
                    Some(Expiration::PX(TTL_MS as i64)),
                    Some(SetOptions::NX),
                    false,
                )
                .await
                .unwrap();
            assert!(set.is_some());
            let deleted: i64 = self.client.del(key.as_str()).await.unwrap();
            assert_eq!(deleted, 1);
        }
    }
}

/// A client, a number of tasks, and the rate of each of the client's variants.
type GroupRates = (&'static str, usize, Vec<(&'static str, f64)>);

struct Variant {
    client: &'static str,
    what: &'static str,
    make: Box<dyn Fn(usize) -> Arc<dyn Cycle>>,
}

/// The variants of `client` on the `redis` crate: `ProcessLock` and the guard on `backend`,
/// the raw scripts and `SET NX` + `DEL` on `conn`, with each task's lock names under `label`.
/// `sharded`: on a Redis Cluster.
fn redis_rs_variants<C: redis_rs_raw::Conn>(
    variants: &mut Vec<Variant>,
    (client, label): (&'static str, &'static str),
    backend: &Arc<dyn LockBackend>,
    conn: C,
    sharded: bool,
) {
    let ours = backend.clone();
    variants.push(Variant {
        client,
        what: "ProcessLock",
        make: Box::new(move |tasks| handles(&ours, &format!("{label}-ours"), tasks)),
    });
    for (what, fenced) in [("raw scripts", false), ("raw fenced scripts", true)] {
        let conn = conn.clone();
        variants.push(Variant {
            client,
            what,
            make: Box::new(move |tasks| {
                let kind = if fenced { "fenced" } else { "scripts" };
                Arc::new(redis_rs_raw::Scripts {
                    conn: conn.clone(),
                    calls: prepared_in(&format!("{label}-{kind}"), tasks, sharded),
                    fenced,
                })
            }),
        });
    }
    variants.push(Variant {
        client,
        what: "raw SET NX + DEL",
        make: Box::new(move |tasks| {
            Arc::new(redis_rs_raw::SetDel {
                conn: conn.clone(),
                keys: names(&format!("{label}-setdel"), tasks),
            })
        }),
    });
    let guarded = backend.clone();
    variants.push(Variant {
        client,
        what: "Lock guard",
        make: Box::new(move |tasks| guards(&guarded, &format!("{label}-guard"), tasks)),
    });
}

/// As [`redis_rs_variants`], on the `fred` crate: the raw cycles on `raw`.
#[cfg(feature = "fred")]
fn fred_variants(
    variants: &mut Vec<Variant>,
    (client, label): (&'static str, &'static str),
    backend: &Arc<dyn LockBackend>,
    raw: process_lock::fred::fred::prelude::Client,
    sharded: bool,
) {
    let ours = backend.clone();
    variants.push(Variant {
        client,
        what: "ProcessLock",
        make: Box::new(move |tasks| handles(&ours, &format!("{label}-ours"), tasks)),
    });
    for (what, fenced) in [("raw scripts", false), ("raw fenced scripts", true)] {
        let raw = raw.clone();
        variants.push(Variant {
            client,
            what,
            make: Box::new(move |tasks| {
                let kind = if fenced { "fenced" } else { "scripts" };
                Arc::new(fred_raw::Scripts {
                    client: raw.clone(),
                    calls: prepared_in(&format!("{label}-{kind}"), tasks, sharded),
                    fenced,
                })
            }),
        });
    }
    variants.push(Variant {
        client,
        what: "raw SET NX + DEL",
        make: Box::new(move |tasks| {
            Arc::new(fred_raw::SetDel {
                client: raw.clone(),
                keys: names(&format!("{label}-setdel"), tasks),
            })
        }),
    });
    let guarded = backend.clone();
    variants.push(Variant {
        client,
        what: "Lock guard",
        make: Box::new(move |tasks| guards(&guarded, &format!("{label}-guard"), tasks)),
    });
}

/// Cycles done, and time taken, with `tasks` tasks looping for `length`.
async fn run_for(cycle: &Arc<dyn Cycle>, tasks: usize, length: Duration) -> (u64, Duration) {
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + length;
    let mut set = tokio::task::JoinSet::new();
    for task in 0..tasks {
        let (cycle, done) = (cycle.clone(), done.clone());
        set.spawn(async move {
            while Instant::now() < deadline {
                cycle.cycle(task).await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    set.join_all().await;
    (done.load(Ordering::Relaxed), start.elapsed())
}

/// Runs the variants of one group in short alternating slices, rotating which goes first, so
/// that drift in the machine's or the network's speed falls on all of them alike; returns each
/// variant's cycles per second over all its slices.
async fn interleaved(cycles: &[Arc<dyn Cycle>], tasks: usize, total: Duration) -> Vec<f64> {
    for cycle in cycles {
        run_for(cycle, tasks, Duration::from_millis(300)).await; // warm up
    }
    let slices = (total.as_millis() / SLICE.as_millis()).max(1) as usize;
    let mut sums = vec![(0u64, Duration::ZERO); cycles.len()];
    for slice in 0..slices {
        for k in 0..cycles.len() {
            let v = (slice + k) % cycles.len();
            let (done, took) = run_for(&cycles[v], tasks, SLICE).await;
            sums[v].0 += done;
            sums[v].1 += took;
        }
    }
    sums.iter()
        .map(|(done, took)| *done as f64 / took.as_secs_f64())
        .collect()
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The commands each operation sends, as MONITOR sees them.
async fn round_trips(client: &str, backend: Arc<dyn LockBackend>, url: &str) {
    let counter = CommandCounter::start(url).await.unwrap();
    let name = format!("bench:round-trips:{client}");
    let a = ProcessLock::new(backend.clone(), &name, Duration::from_secs(30)).unwrap();
    let b = ProcessLock::new(backend.clone(), &name, Duration::from_secs(30)).unwrap();
    // Warm the script cache: a cold script costs one EVAL per server, once.
    assert!(a.lock().await.unwrap());
    assert!(a.update().await.unwrap());
    let _ = a.status().await.unwrap();
    let _ = a.clear(false).await.unwrap();
    assert!(a.lock().await.unwrap());
    let _ = a.clear(true).await.unwrap();
    let token = process_lock::Token::generate().unwrap();
    let ttl = process_lock::Ttl::from_secs(30).unwrap();
    let _ = a
        .backend()
        .try_acquire_fenced(a.name(), &token, ttl)
        .await
        .unwrap();
    let _ = a.backend().release(a.name(), &token).await.unwrap();
    // The queue script, on a name of its own, so that the counted `Lock::lock` below is the
    // first to subscribe to its lock's grant channel.
    let warm = Lock::new(
        backend.clone(),
        format!("{name}:warm"),
        Duration::from_secs(30),
    );
    let guard = warm.unwrap().lock().await.unwrap();
    assert_eq!(guard.release().await.unwrap(), Release::Released);
    let guarded = Lock::new(backend, format!("{name}:guard"), Duration::from_secs(30)).unwrap();
    counter.take().await.unwrap();

    let mut rows = Vec::new();
    macro_rules! count {
        ($what:expr, $op:expr) => {{
            let _ = count!(keep $what, $op);
        }};
        (keep $what:expr, $op:expr) => {{
            let outcome = $op.await.unwrap();
            rows.push(($what, counter.take().await.unwrap()));
            outcome
        }};
    }
    count!("lock (acquired)", a.lock());
    count!("lock (held by other)", b.lock());
    count!("update", a.update());
    count!("status", a.status());
    count!("clear (not owner)", b.clear(false));
    count!("clear", a.clear(false));
    count!("clear(force)", a.clear(true));
    count!(
        "fenced acquire",
        a.backend().try_acquire_fenced(a.name(), &token, ttl)
    );
    count!("release", a.backend().release(a.name(), &token));
    // Uncontended: the first lock subscribes to the lock's grant channel (kept 10 s after its
    // last waiter), then each lock and each release is one script.
    let guard = count!(keep "Lock::lock (first)", guarded.lock());
    let released = count!(keep "guard release", guard.release());
    assert_eq!(released, Release::Released);
    let guard = count!(keep "Lock::lock (again)", guarded.lock());
    let released = count!(keep "guard release", guard.release());
    assert_eq!(released, Release::Released);
    for (what, commands) in rows {
        println!(
            "| {client:<8} | {what:<20} | {} | {} |",
            commands.len(),
            commands.join(" ")
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let length = Duration::from_secs(env_u64("BENCH_SECONDS", 6));
    let task_counts = results::counts_from_env("BENCH_TASKS", &[1, 64]);
    let out = results::Results::new("redis");

    let server = RedisServer::start().await.unwrap_or_else(|e| panic!("{e}"));
    let url = server.direct_url().await;
    println!("Redis: {} at {url}", server.origin());

    let mut variants: Vec<Variant> = Vec::new();
    let mut backends: Vec<(&'static str, Arc<dyn LockBackend>)> = Vec::new();

    // The restart delay (`RESTART_DELAY`, 1 ms): every acquire runs the delayed restart check.
    // The server's start is read in whole seconds (rounded so as never to be early), so the new
    // server grants once it is 2 s old.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let rs = process_lock::RedisRsBackend::builder(&url)
        .restart_delay(RESTART_DELAY)
        .connect()
        .await
        .unwrap();
    let rs_conn = rs.connection_manager().expect("one server").clone();
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut rs_conn.clone())
        .await
        .unwrap();
    out.redis_version(&info);
    let rs: Arc<dyn LockBackend> = Arc::new(rs);
    backends.push(("redis-rs", rs.clone()));
    redis_rs_raw::load_scripts(&rs_conn).await;
    redis_rs_variants(&mut variants, ("redis-rs", "rs"), &rs, rs_conn, false);

    #[cfg(feature = "fred")]
    {
        let fred = process_lock::FredBackend::builder(&url)
            .restart_delay(RESTART_DELAY)
            .connect()
            .await
            .unwrap();
        let client = fred.client().clone();
        let fred: Arc<dyn LockBackend> = Arc::new(fred);
        backends.push(("fred", fred.clone()));
        fred_raw::load_scripts(&client).await;
        fred_variants(&mut variants, ("fred", "fred"), &fred, client, false);
    }

    // With BENCH_CLUSTER=1, the same cycles on a Redis Cluster of 3 primaries: each script on
    // the node of its lock's slot, releases with SPUBLISH.
    let cluster = if env_u64("BENCH_CLUSTER", 0) == 1 {
        let cluster = RedisCluster::start(3, 0)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        println!("Redis Cluster: {}", cluster.origin());
        Some(cluster)
    } else {
        None
    };
    if let Some(cluster) = &cluster {
        // As above: the new servers grant once they are 2 s old.
        tokio::time::sleep(Duration::from_millis(2100)).await;
        for url in cluster.node_urls() {
            let client = redis::Client::open(url).unwrap();
            let conn = client.get_connection_manager().await.unwrap();
            redis_rs_raw::load_scripts(&conn).await;
        }
        let rs = process_lock::RedisRsBackend::builder(&cluster.url())
            .restart_delay(RESTART_DELAY)
            .connect()
            .await
            .unwrap();
        let rs: Arc<dyn LockBackend> = Arc::new(rs);
        backends.push(("redis-rs cluster", rs.clone()));
        let raw = redis::cluster::ClusterClient::new(cluster.node_urls())
            .unwrap()
            .get_async_connection()
            .await
            .unwrap();
        redis_rs_variants(&mut variants, ("redis-rs cluster", "rsc"), &rs, raw, true);

        #[cfg(feature = "fred")]
        {
            let fred = process_lock::FredBackend::builder(&cluster.url())
                .restart_delay(RESTART_DELAY)
                .connect()
                .await
                .unwrap();
            let client = fred.client().clone();
            let fred: Arc<dyn LockBackend> = Arc::new(fred);
            backends.push(("fred cluster", fred.clone()));
            fred_variants(
                &mut variants,
                ("fred cluster", "fredc"),
                &fred,
                client,
                true,
            );
        }
    }

    let mut results: Vec<GroupRates> = Vec::new();
    for (client, _) in &backends {
        let group: Vec<&Variant> = variants.iter().filter(|v| v.client == *client).collect();
        for &tasks in &task_counts {
            let cycles: Vec<Arc<dyn Cycle>> = group.iter().map(|v| (v.make)(tasks)).collect();
            let rates = interleaved(&cycles, tasks, length).await;
            for (v, r) in group.iter().zip(&rates) {
                eprintln!("{client} {} x{tasks}: {r:.0}/s", v.what);
                let (tasks, rate) = (tasks.to_string(), format!("{r:.1}"));
                out.record(&["rate", client, v.what, &tasks, &rate]);
            }
            let named = group.iter().map(|v| v.what).zip(rates).collect();
            results.push((client, tasks, named));
        }
    }
    let rate_of = |client: &str, what: &str, tasks: usize| -> f64 {
        results
            .iter()
            .find(|(c, t, _)| *c == client && *t == tasks)
            .and_then(|(_, _, rates)| rates.iter().find(|(w, _)| *w == what))
            .map(|(_, r)| *r)
            .unwrap()
    };
    println!(
        "\nlock + clear cycles per second ({length:?} per variant, in interleaved {SLICE:?} slices)\n"
    );
    println!(
        "| client | tasks | ProcessLock | raw scripts | ours / raw scripts | Lock guard | raw fenced scripts | guard / raw fenced | raw SET NX + DEL | ours / SET NX + DEL |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (client, _) in &backends {
        for &tasks in &task_counts {
            let ours = rate_of(client, "ProcessLock", tasks);
            let raw = rate_of(client, "raw scripts", tasks);
            let naive = rate_of(client, "raw SET NX + DEL", tasks);
            let guard = rate_of(client, "Lock guard", tasks);
            let fenced = rate_of(client, "raw fenced scripts", tasks);
            println!(
                "| {client} | {tasks} | {ours:.0} | {raw:.0} | {:.3} | {guard:.0} | {fenced:.0} | {:.3} | {naive:.0} | {:.3} |",
                ours / raw,
                guard / fenced,
                ours / naive,
            );
        }
    }

    println!("\ncommands sent per operation (MONITOR, top-level only)\n");
    println!("| client | operation | round trips | commands |");
    println!("|---|---|---|---|");
    // MONITOR watches one server: the standalone backends only.
    for (client, backend) in backends {
        if !client.ends_with("cluster") {
            round_trips(client, backend, &url).await;
        }
    }
}
