//! The suite on a Redis Cluster: [`cluster_suite`] runs every case that needs no server of its
//! own against one real cluster, shared by the cases as a shared server is.

use std::future::Future;
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use std::time::Duration;

use lock_core::redis::ReplicaAck;
use lock_core::{Cleared, ErrorKind, Lock, LockBackend, LockState, ProcessLock, Release, Token};
use tokio::time::Instant;

use super::options::RedisOptions;
use crate::redis_server::{
    ClusterNode, RawRedis, RedisCluster, RedisSentinel, ReplicatedRedis, Resp,
};
use crate::{Capability, Fixture, cases, run_case};

/// How many cases run at once: most of a case's time is spent waiting for timeouts.
const PARALLEL: usize = 4;

/// How many topologies (a cluster, a Sentinel set, a quorum, a replicated pair) a test
/// process runs at once. Each starts several containers and runs [`PARALLEL`] cases: more
/// at once starved a 2-core CI machine into timeouts and unreachable containers.
const TOPOLOGIES_AT_ONCE: usize = 2;

/// A turn to run a topology, held for the suite's length (see [`TOPOLOGIES_AT_ONCE`]).
pub(super) struct TopologySlot;

static RUNNING: (Mutex<usize>, std::sync::Condvar) = (Mutex::new(0), std::sync::Condvar::new());

/// Waits for a turn to run a topology.
pub(super) fn topology_slot() -> TopologySlot {
    let (count, freed) = &RUNNING;
    let mut running = count
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    while *running >= TOPOLOGIES_AT_ONCE {
        running = freed
            .wait(running)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
    }
    *running += 1;
    TopologySlot
}

impl Drop for TopologySlot {
    fn drop(&mut self) {
        let (count, freed) = &RUNNING;
        *count
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) -= 1;
        freed.notify_one();
    }
}

/// Runs every case of the suite that needs no Redis server of its own on a Redis Cluster of 3
/// primaries with a replica each, started for the call and stopped after it: each case on a
/// backend of its own, made by `connect` from the cluster's URL
/// (`redis-cluster://host:port?node=...`) and the default options, in a runtime of its own, as
/// [`suite!`](crate::suite)'s tests run; 4 at a time.
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
    Fut: Future<Output = lock_core::Result<Arc<dyn LockBackend>>> + 'static,
{
    let _slot = topology_slot();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime for the cluster");
    let cluster = runtime
        .block_on(RedisCluster::start(3, 1))
        .unwrap_or_else(|e| panic!("{e}"));
    let url = cluster.url();
    let (run, skipped) = shared_cases();
    let mut failed = run_shared_cases(&run, &url, &connect);
    // Then the cases of a cluster's own, one after another: they change its topology.
    let connect = &connect;
    let own: [(&'static str, ClusterCase<F>); 5] = [
        ("releases_go_out_on_the_shard_of_the_lock_only", |c, k| {
            Box::pin(releases_go_out_on_the_shard_of_the_lock_only(c, k))
        }),
        ("a_failover_keeps_the_lock_and_serves_the_waiter", |c, k| {
            Box::pin(a_failover_keeps_the_lock_and_serves_the_waiter(c, k))
        }),
        (
            "a_slot_migration_keeps_the_lock_and_serves_the_waiter",
            |c, k| Box::pin(a_slot_migration_keeps_the_lock_and_serves_the_waiter(c, k)),
        ),
        (REPLICA_ACK_CASE, |c, k| {
            Box::pin(replicas_acknowledged_on_a_cluster(c, k))
        }),
        // Last: a round that fails may leave a primary stopped.
        ("a_stopped_primary_is_failed_over", |c, k| {
            Box::pin(a_stopped_primary_is_failed_over(c, k))
        }),
    ];
    for (name, case) in own {
        if !passes(name, || runtime.block_on(case(&cluster, connect))) {
            failed.push(name);
        }
    }
    runtime.block_on(async move { drop(cluster) });
    let names: Vec<&str> = skipped.iter().map(|case| case.name).collect();
    say(&format!(
        "{} of {} cases passed on the cluster; not run on a cluster (each needs a server of \
         its own): {}",
        run.len() + own.len() - failed.len(),
        run.len() + own.len(),
        names.join(", ")
    ));
    assert!(failed.is_empty(), "cases failed on the cluster: {failed:?}");
}

/// The cases that run on a shared topology, and those that need a server of their own.
pub(super) fn shared_cases() -> (Vec<crate::Case>, Vec<crate::Case>) {
    cases()
        .into_iter()
        .partition(|case| case.needs != Some(Capability::RedisServer))
}

/// Runs `run` on backends `connect` makes for `url`, [`PARALLEL`] at a time, each in a runtime
/// of its own; the names of those that failed.
fn run_shared_cases<F, Fut>(run: &[crate::Case], url: &str, connect: &F) -> Vec<&'static str>
where
    F: Fn(String, RedisOptions) -> Fut + Sync,
    Fut: Future<Output = lock_core::Result<Arc<dyn LockBackend>>>,
{
    run_cases(run, &|| async {
        let backend = connect(url.to_owned(), RedisOptions::default())
            .await
            .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
        Fixture::new(backend)
    })
}

/// Runs `run` on fixtures `make` makes, one per case, [`PARALLEL`] at a time, each in a
/// runtime of its own; the names of those that failed.
pub(super) fn run_cases<M, Fut>(run: &[crate::Case], make: &M) -> Vec<&'static str>
where
    M: Fn() -> Fut + Sync,
    Fut: Future<Output = Fixture>,
{
    let next = AtomicUsize::new(0);
    let failed = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL {
            scope.spawn(|| {
                while let Some(case) = run.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if !passes(case.name, || run_case(make, case.name)) {
                        failed
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(case.name);
                    }
                }
            });
        }
    });
    failed
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs the suite's cases that need no server of their own on a Sentinel set (a primary, two
/// replicas, three sentinels), on backends `connect` makes from its
/// `redis-sentinel://` URL, then [`a_sentinel_failover_is_followed`] (4 times).
///
/// # Panics
///
/// When the set cannot be started, and, after all cases ran, when any failed.
///
/// # Examples
///
/// ```no_run
/// use std::sync::Arc;
/// use conformance::redis::{RedisOptions, sentinel_suite};
/// use lock_core::LockBackend;
///
/// # async fn connect(url: String, options: RedisOptions) -> lock_core::Result<Arc<dyn LockBackend>> {
/// #     unimplemented!()
/// # }
/// #[test]
/// fn the_suite_through_sentinels() {
///     sentinel_suite(connect);
/// }
/// ```
pub fn sentinel_suite<F, Fut>(connect: F)
where
    F: Fn(String, RedisOptions) -> Fut + Sync,
    Fut: Future<Output = lock_core::Result<Arc<dyn LockBackend>>> + 'static,
{
    let _slot = topology_slot();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime for the sentinels");
    let set = runtime
        .block_on(RedisSentinel::start())
        .unwrap_or_else(|e| panic!("{e}"));
    let url = set.url();
    let (run, _) = shared_cases();
    let mut failed = run_shared_cases(&run, &url, &connect);
    let name = "a_backend_listens_to_every_sentinel_until_dropped";
    if !passes(name, || {
        runtime.block_on(a_backend_listens_to_every_sentinel_until_dropped(
            &set, &connect,
        ));
    }) {
        failed.push(name);
    }
    let name = "a_sentinel_failover_is_followed";
    if !passes(name, || {
        runtime.block_on(a_sentinel_failover_is_followed(&set, &connect));
    }) {
        failed.push(name);
    }
    // Last: a round that fails may leave the primary stopped.
    let name = "a_stopped_primary_is_failed_over_by_the_sentinels";
    if !passes(name, || {
        runtime.block_on(a_stopped_primary_is_failed_over_by_the_sentinels(
            &set, &connect,
        ));
    }) {
        failed.push(name);
    }
    runtime.block_on(async move { drop(set) });
    say(&format!(
        "{} of {} cases passed through sentinels",
        run.len() + 3 - failed.len(),
        run.len() + 3
    ));
    assert!(
        failed.is_empty(),
        "cases failed through sentinels: {failed:?}"
    );
}

/// A backend hears failovers from every sentinel (one Pub/Sub connection to each, subscribed
/// to `+switch-master`), and closes those connections once dropped.
async fn a_backend_listens_to_every_sentinel_until_dropped<F, Fut>(set: &RedisSentinel, connect: &F)
where
    F: Fn(String, RedisOptions) -> Fut,
    Fut: Future<Output = lock_core::Result<Arc<dyn LockBackend>>>,
{
    let before = settled_subscribers(set).await;
    let backend = connected(&set.url(), connect).await;
    let deadline = Instant::now() + WAKE;
    loop {
        let now = switch_subscribers(set).await;
        if now.iter().zip(&before).all(|(now, before)| *now > *before) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{WAKE:?} after connecting, subscribers to +switch-master per sentinel: {now:?}, \
             before: {before:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(backend);
    let deadline = Instant::now() + WAKE;
    loop {
        let now = switch_subscribers(set).await;
        if now.iter().zip(&before).all(|(now, before)| *now <= *before) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{WAKE:?} after the backend was dropped, subscribers to +switch-master per \
             sentinel: {now:?}, before it was made: {before:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How many clients each sentinel has subscribed to a channel (`+switch-master`).
async fn switch_subscribers(set: &RedisSentinel) -> Vec<i64> {
    let mut counts = Vec::new();
    for sentinel in set.sentinels() {
        let mut raw = sentinel.raw().await.unwrap();
        // A sentinel knows no `PUBSUB`: its Pub/Sub clients are counted instead (a sentinel
        // subscribes to nothing on another sentinel, so they are the backends' watchers).
        let reply = raw.run(&["CLIENT", "LIST", "TYPE", "pubsub"]).await;
        let count = match &reply {
            Ok(reply) => reply.as_str().map(|list| {
                let subscribed = list.lines().filter(|client| client.contains(" sub=1 "));
                i64::try_from(subscribed.count()).unwrap_or(i64::MAX)
            }),
            Err(_) => None,
        };
        counts.push(count.unwrap_or_else(|| {
            panic!(
                "CLIENT LIST TYPE pubsub on {}: {reply:?}",
                sentinel.address()
            )
        }));
    }
    counts
}

/// [`switch_subscribers`] once it stays the same for 200 ms (the connections of backends
/// dropped just before have closed), 2 s at most.
async fn settled_subscribers(set: &RedisSentinel) -> Vec<i64> {
    let deadline = Instant::now() + WAKE;
    let mut last = switch_subscribers(set).await;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = switch_subscribers(set).await;
        if now == last || Instant::now() >= deadline {
            return now;
        }
        last = now;
    }
}

/// How long after a Sentinel failover the clients may take to work on the new primary: a
/// sentinel announces it (`+switch-master`), or they notice the old primary is gone (a reset,
/// `READONLY`, or a response timeout) and ask the sentinels again.
///
/// # Examples
///
/// ```
/// use conformance::redis::SENTINEL_FOLLOW;
///
/// assert!(SENTINEL_FOLLOW >= std::time::Duration::from_secs(5));
/// ```
pub const SENTINEL_FOLLOW: Duration = Duration::from_secs(10);

/// A Sentinel failover (`SENTINEL FAILOVER` once the replicas are in sync, 4 times) while a
/// lock is held and another backend waits: the waiter's subscription moves to the new primary
/// (the old one still answers, as a replica) within 5 s of the sentinels naming it; within
/// [`SENTINEL_FOLLOW`], the holder's lock is on the new primary with its token and not
/// reported lost, a new backend takes other locks there, the waiter does not get the lock
/// meanwhile, and once the holder lets go it is served.
///
/// # Examples
///
/// ```no_run
/// # use std::sync::Arc;
/// # use conformance::redis::{RedisOptions, a_sentinel_failover_is_followed};
/// # use conformance::redis_server::RedisSentinel;
/// # use lock_core::LockBackend;
/// # async fn connect(url: String, options: RedisOptions) -> lock_core::Result<Arc<dyn LockBackend>> {
/// #     unimplemented!()
/// # }
/// # async fn f() -> Result<(), String> {
/// let set = RedisSentinel::start().await?;
/// a_sentinel_failover_is_followed(&set, &connect).await;
/// # Ok(()) }
/// ```
pub async fn a_sentinel_failover_is_followed<F, Fut>(set: &RedisSentinel, connect: &F)
where
    F: Fn(String, RedisOptions) -> Fut,
    Fut: Future<Output = lock_core::Result<Arc<dyn LockBackend>>>,
{
    let url = set.url();
    let backend = || connected(&url, connect);
    for _ in 0..REPEATS {
        let name = unique("sentinel");
        let guard = Lock::new(backend().await, &name, LONG)
            .unwrap()
            .lock()
            .await
            .unwrap();
        let waiter = Lock::new(backend().await, &name, LONG).unwrap();
        let waiting = tokio::spawn(async move {
            let guard = waiter.lock().await.unwrap();
            (guard, Instant::now())
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        set.failover().await.unwrap();
        let primary = set.primary().await.unwrap();
        let failed_over = Instant::now();
        // The old primary answers on, as a replica: the waiter's subscription moves anyway.
        subscribed_on_the_new_primary(set.server(&primary), &name, &waiting).await;
        // The holder: on the new primary with its token. The replicas had the lock when the
        // failover began (`RedisSentinel::failover` waits for that), so it is never lost.
        let mut raw = set.server(&primary).raw().await.unwrap();
        loop {
            if let Some(lost) = guard.try_lost() {
                panic!("the holder lost a lock the replicas had: {lost:?}");
            }
            let on_primary = raw.get(&name).await.unwrap();
            if on_primary.as_deref() == Some(guard.token().as_str()) {
                break;
            }
            assert!(
                failed_over.elapsed() < SENTINEL_FOLLOW,
                "{SENTINEL_FOLLOW:?} after the failover, the lock on {primary} is {on_primary:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // A fresh process takes a lock of its own on the new primary.
        let other = ProcessLock::new(backend().await, unique("sentinel-other"), LONG).unwrap();
        assert!(other.lock().await.unwrap());
        assert_eq!(other.clear(false).await.unwrap(), Cleared::Cleared);
        let followed = failed_over.elapsed();
        assert!(
            !waiting.is_finished(),
            "the waiter got the lock while it was held"
        );
        let released = Instant::now();
        assert_eq!(guard.release().await.unwrap(), Release::Released);
        let (next, served) = tokio::time::timeout(SENTINEL_FOLLOW, waiting)
            .await
            .expect("the waiter was not served after the failover")
            .unwrap();
        assert!(
            served >= released,
            "the waiter was served before the release"
        );
        say(&format!(
            "  the clients were on the new primary {followed:?} after the failover; the waiter \
             was served {:?} after the release",
            served - released
        ));
        assert_eq!(next.release().await.unwrap(), Release::Released);
    }
}

/// The primary behind the sentinels stops without warning (paused: no answer, no closed
/// connection) while a lock is held and another backend waits, and the sentinels fail it over
/// (down after 1 s): as [`a_stopped_primary_is_failed_over`] on a cluster, 4 rounds, a lock that
/// outlives the failover and one of 3 s that does not. Unlike a cluster, the sentinels announce
/// the failover: the waiter's subscription is on the new primary within 5 s of their naming
/// it, and the holder's release, its first request since, does not time out on the stopped
/// one.
async fn a_stopped_primary_is_failed_over_by_the_sentinels<F, Fut>(set: &RedisSentinel, connect: &F)
where
    F: Fn(String, RedisOptions) -> Fut,
    Fut: Future<Output = lock_core::Result<Arc<dyn LockBackend>>>,
{
    let url = set.url();
    let backend = || connected(&url, connect);
    for round in 0..STOPS {
        let ttl = if round % 2 == 0 { LONG } else { SHORT_TTL };
        let name = unique("sentinel-stopped");
        let processes = (backend().await, backend().await);
        let guard = Lock::new(processes.0.clone(), &name, ttl)
            .unwrap()
            .lock()
            .await
            .unwrap();
        let waiter = Lock::new(processes.1.clone(), &name, LONG).unwrap();
        let waiting = tokio::spawn(async move {
            let guard = waiter.lock().await?;
            Ok((guard, Instant::now()))
        });
        let primary = set.primary().await.unwrap();
        let mut raw = set.server(&primary).raw().await.unwrap();
        let deadline = Instant::now() + WAKE;
        while channels(&mut raw, "CHANNELS", &name).await.is_empty() {
            assert!(Instant::now() < deadline, "the waiter did not queue");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let stopped = Instant::now();
        let (old, new) = set.stop_primary().await.unwrap_or_else(|e| panic!("{e}"));
        say(&format!(
            "  round {round} (ttl {ttl:?}): {old} stopped, {new} the primary after {:?}",
            stopped.elapsed()
        ));
        if ttl == LONG {
            // Still held: the waiter waits on.
            subscribed_on_the_new_primary(set.server(&new), &name, &waiting).await;
        }
        let stopped = Stopped {
            promoted: set.server(&new),
            announced: true,
        };
        after_the_primary_stopped(stopped, &name, guard, waiting, ttl, processes).await;
        set.resume(&old).await.unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Runs the case `name` (`run` panics when it fails), says how it went and how long it took,
/// and whether it passed.
pub(super) fn passes(name: &str, run: impl FnOnce()) -> bool {
    let started = Instant::now();
    let passed = std::panic::catch_unwind(AssertUnwindSafe(run)).is_ok();
    let verdict = if passed { "ok" } else { "FAILED" };
    say(&format!("{name} ... {verdict} ({:?})", started.elapsed()));
    passed
}

/// Writes past libtest's capture, so that the log shows each case.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "[cluster] {line}");
}

type ClusterCase<F> =
    for<'a> fn(&'a RedisCluster, &'a F) -> std::pin::Pin<Box<dyn Future<Output = ()> + 'a>>;

/// Long enough that no lock of these cases expires unless it is let go.
const LONG: Duration = Duration::from_secs(30);
/// How long a wake-up may take on a loaded machine: far below [`LONG`].
const WAKE: Duration = Duration::from_secs(2);
/// How many times the cases that change the topology run (each on a lock of its own): a race
/// that shows once in a few runs shows here.
const REPEATS: usize = 4;
/// How many times a primary is stopped (each round waits for a failover, a few seconds).
const STOPS: usize = 4;
/// A time to live shorter than a failover takes.
const SHORT_TTL: Duration = Duration::from_secs(3);
/// How long a waiter may take to be served after a topology change: its queue heartbeat finds
/// a lock handed to it even if no notification reached it.
const AFTER_CHANGE: Duration = Duration::from_secs(10);

async fn backend<F, Fut>(cluster: &RedisCluster, connect: &F) -> Arc<dyn LockBackend>
where
    F: Fn(String, RedisOptions) -> Fut,
    Fut: Future<Output = lock_core::Result<Arc<dyn LockBackend>>>,
{
    connected(&cluster.url(), connect).await
}

/// A backend `connect` makes for `url` with the default options.
async fn connected<F, Fut>(url: &str, connect: &F) -> Arc<dyn LockBackend>
where
    F: Fn(String, RedisOptions) -> Fut,
    Fut: Future<Output = lock_core::Result<Arc<dyn LockBackend>>>,
{
    connect(url.to_owned(), RedisOptions::default())
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}"))
}

fn unique(label: &str) -> String {
    let token = Token::generate().expect("the system random generator works");
    format!("cluster:{label}:{}", &token.as_str()[..16])
}

async fn channels(raw: &mut RawRedis, kind: &str, name: &str) -> Vec<String> {
    let pattern = format!("*{name}*");
    match raw.run(&["PUBSUB", kind, &pattern]).await {
        Ok(Resp::Array(Some(items))) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        other => panic!("PUBSUB {kind} on {}: {other:?}", raw.address()),
    }
}

/// A lock's key is its name and its value the owner's token, on the primary of its slot (as
/// `process-lock-node` reads it); its waiter subscribes to a shard channel on that primary only
/// (nothing on the other shards, no plain channel anywhere), and a release wakes it at once.
async fn releases_go_out_on_the_shard_of_the_lock_only<F, Fut>(cluster: &RedisCluster, connect: &F)
where
    F: Fn(String, RedisOptions) -> Fut,
    Fut: Future<Output = lock_core::Result<Arc<dyn LockBackend>>>,
{
    let name = unique("shard");
    let holder = ProcessLock::new(backend(cluster, connect).await, &name, LONG).unwrap();
    assert!(holder.lock().await.unwrap());
    let primary = cluster.primary_of(&name).await.unwrap();
    let mut on_primary = cluster.node(&primary).raw().await.unwrap();
    assert_eq!(
        on_primary.get(&name).await.unwrap().as_deref(),
        Some(holder.token().as_str()),
        "the key is the name and its value the owner's token, on the slot's primary"
    );
    let waiter = Lock::new(backend(cluster, connect).await, &name, LONG)
        .unwrap()
        .with_recheck(LONG);
    let waiting = tokio::spawn(async move { waiter.lock().await });
    let deadline = Instant::now() + WAKE;
    while channels(&mut on_primary, "SHARDCHANNELS", &name)
        .await
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "the waiter did not subscribe to a shard channel of {name} on {primary}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let topology = cluster.topology().await.unwrap();
    let shard_id = topology
        .iter()
        .find(|n| n.address == primary)
        .unwrap()
        .id
        .clone();
    for node in &topology {
        let mut raw = cluster.node(&node.address).raw().await.unwrap();
        assert_eq!(
            channels(&mut raw, "CHANNELS", &name).await,
            Vec::<String>::new(),
            "a plain channel of {name} on {}",
            node.address
        );
        let in_shard = node.id == shard_id || node.primary_id.as_deref() == Some(&shard_id);
        if !in_shard {
            assert_eq!(
                channels(&mut raw, "SHARDCHANNELS", &name).await,
                Vec::<String>::new(),
                "a shard channel of {name} on {}, outside its shard",
                node.address
            );
        }
    }
    let released = Instant::now();
    assert_eq!(holder.clear(false).await.unwrap(), Cleared::Cleared);
    let guard = tokio::time::timeout(WAKE, waiting)
        .await
        .expect("the waiter was not woken by the release")
        .unwrap()
        .unwrap();
    say(&format!(
        "  a release woke the waiter in {:?}",
        released.elapsed()
    ));
    assert!(guard.is_held());
    assert_eq!(
        on_primary.get(&name).await.unwrap().as_deref(),
        Some(guard.token().as_str())
    );
    assert_eq!(guard.release().await.unwrap(), Release::Released);
}

/// Holds a lock on a fresh backend and starts a waiter for it on another (two processes), and
/// returns when the waiter has queued.
async fn held_and_awaited<F, Fut>(
    cluster: &RedisCluster,
    connect: &F,
    name: &str,
) -> (
    lock_core::LockGuard,
    tokio::task::JoinHandle<lock_core::Result<(lock_core::LockGuard, Instant)>>,
)
where
    F: Fn(String, RedisOptions) -> Fut,
    Fut: Future<Output = lock_core::Result<Arc<dyn LockBackend>>>,
{
    let (guard, waiting, _) = held_for_and_awaited(cluster, connect, name, LONG).await;
    (guard, waiting)
}

/// The backends of the holder and the waiter: two processes.
type Processes = (Arc<dyn LockBackend>, Arc<dyn LockBackend>);

/// [`held_and_awaited`], the lock held with a time to live of `ttl`.
async fn held_for_and_awaited<F, Fut>(
    cluster: &RedisCluster,
    connect: &F,
    name: &str,
    ttl: Duration,
) -> (
    lock_core::LockGuard,
    tokio::task::JoinHandle<lock_core::Result<(lock_core::LockGuard, Instant)>>,
    Processes,
)
where
    F: Fn(String, RedisOptions) -> Fut,
    Fut: Future<Output = lock_core::Result<Arc<dyn LockBackend>>>,
{
    let processes = (
        backend(cluster, connect).await,
        backend(cluster, connect).await,
    );
    let holder = Lock::new(processes.0.clone(), name, ttl).unwrap();
    let guard = holder.lock().await.unwrap();
    let waiter = Lock::new(processes.1.clone(), name, LONG).unwrap();
    let waiting = tokio::spawn(async move {
        let guard = waiter.lock().await?;
        Ok((guard, Instant::now()))
    });
    let primary = cluster.primary_of(name).await.unwrap();
    let mut raw = cluster.node(&primary).raw().await.unwrap();
    let deadline = Instant::now() + WAKE;
    while channels(&mut raw, "SHARDCHANNELS", name).await.is_empty() {
        assert!(Instant::now() < deadline, "the waiter did not queue");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (guard, waiting, processes)
}

/// After a topology change: the holder still holds the lock (its key, on the slot's primary
/// now, is its token, and the guard reports no loss), the waiter has not got it, and once the
/// holder releases it the waiter is served.
async fn still_held_then_handed_over(
    cluster: &RedisCluster,
    name: &str,
    guard: lock_core::LockGuard,
    waiting: tokio::task::JoinHandle<lock_core::Result<(lock_core::LockGuard, Instant)>>,
) {
    let primary = cluster.primary_of(name).await.unwrap();
    handed_over(cluster.node(&primary), name, guard, waiting, false).await;
}

/// [`still_held_then_handed_over`]; when `release_may_time_out`, the holder's release may fail
/// with a timeout (the first request its client sends after a primary stopped goes to that
/// primary), and the release then done in the background must reach the waiter.
async fn handed_over(
    primary: &ClusterNode,
    name: &str,
    guard: lock_core::LockGuard,
    waiting: tokio::task::JoinHandle<lock_core::Result<(lock_core::LockGuard, Instant)>>,
    release_may_time_out: bool,
) {
    // A few renewals' worth of time on the new topology.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        guard.try_lost().is_none(),
        "the holder was told its lock is lost"
    );
    let mut raw = primary.raw().await.unwrap();
    assert_eq!(
        raw.get(name).await.unwrap().as_deref(),
        Some(guard.token().as_str()),
        "the lock on the primary now ({}) is the holder's",
        primary.address()
    );
    if waiting.is_finished() {
        match waiting.await {
            Ok(Ok(_)) => panic!("the waiter got the lock while it was held"),
            // A waiter must ride out a topology change, as it does a dropped connection.
            Ok(Err(e)) => panic!("the waiter failed while the lock was held: {e}"),
            Err(e) => panic!("the waiter's task failed: {e}"),
        }
    }
    let released = Instant::now();
    match guard.release().await {
        Ok(release) => assert_eq!(release, Release::Released),
        Err(e) if release_may_time_out && e.kind() == ErrorKind::Timeout => {
            say(&format!(
                "  the release timed out, to go on in the background: {e}"
            ));
        }
        Err(e) => panic!("the release failed: {e}"),
    }
    let (next, served) = tokio::time::timeout(AFTER_CHANGE, waiting)
        .await
        .expect("the waiter was not served after the release")
        .unwrap()
        .unwrap_or_else(|e| panic!("the waiter failed: {e}"));
    assert!(
        served >= released,
        "the waiter was served before the release"
    );
    say(&format!(
        "  the waiter was served {:?} after the release",
        served - released
    ));
    assert_eq!(next.release().await.unwrap(), Release::Released);
}

/// A primary failover (`CLUSTER FAILOVER` on the replica of the lock's primary) while a lock
/// is held and a waiter waits: the holder keeps renewing on the new primary, and the waiter is
/// served once it releases.
async fn a_failover_keeps_the_lock_and_serves_the_waiter<F, Fut>(
    cluster: &RedisCluster,
    connect: &F,
) where
    F: Fn(String, RedisOptions) -> Fut,
    Fut: Future<Output = lock_core::Result<Arc<dyn LockBackend>>>,
{
    for _ in 0..REPEATS {
        let name = unique("failover");
        let (guard, waiting) = held_and_awaited(cluster, connect, &name).await;
        let primary = cluster.primary_of(&name).await.unwrap();
        let replica = cluster.replica_of(&primary).await.unwrap();
        cluster.failover(&replica).await.unwrap();
        assert_eq!(cluster.primary_of(&name).await.unwrap(), replica);
        still_held_then_handed_over(cluster, &name, guard, waiting).await;
    }
}

/// The lock's hash slot moves to another primary (keys migrated, `ASK` and `TRYAGAIN` on the
/// way, for over a heartbeat before and after the keys move) while a lock is held and a waiter
/// waits: as after a failover, and the waiter, whose
/// shard channel the old node dropped, subscribes again on the new one before the release.
async fn a_slot_migration_keeps_the_lock_and_serves_the_waiter<F, Fut>(
    cluster: &RedisCluster,
    connect: &F,
) where
    F: Fn(String, RedisOptions) -> Fut,
    Fut: Future<Output = lock_core::Result<Arc<dyn LockBackend>>>,
{
    for _ in 0..REPEATS {
        let name = unique("migration");
        let (guard, waiting) = held_and_awaited(cluster, connect, &name).await;
        let primary = cluster.primary_of(&name).await.unwrap();
        let target = cluster
            .topology()
            .await
            .unwrap()
            .into_iter()
            .find(|n| n.primary_id.is_none() && n.address != primary && !n.failed)
            .expect("another primary")
            .address;
        // Longer than a waiter's heartbeat (1 s) in each half of the migration, so that the
        // waiter's steps meet `TRYAGAIN` (its keys split between the nodes, or some nowhere).
        cluster
            .move_slot(&name, &target, Duration::from_millis(1200))
            .await
            .unwrap();
        assert_eq!(cluster.primary_of(&name).await.unwrap(), target);
        // The old node dropped the waiter's shard channel with the slot: the waiter subscribes
        // again, on the new node, before any release (within its first heartbeat, whose
        // `MOVED` tells its client of the move).
        let mut raw = cluster.node(&target).raw().await.unwrap();
        let moved = Instant::now();
        while channels(&mut raw, "SHARDCHANNELS", &name).await.is_empty() {
            if waiting.is_finished() {
                // Said below: the waiter failed, or was served while the lock was held.
                break;
            }
            if moved.elapsed() >= AFTER_CHANGE {
                let mut seen = Vec::new();
                for node in cluster.nodes() {
                    if let Ok(mut raw) = node.raw().await {
                        let on = channels(&mut raw, "SHARDCHANNELS", &name).await;
                        seen.push(format!("{}: {on:?}", node.address()));
                    }
                }
                panic!(
                    "the waiter did not subscribe again on the slot's new node {target} within \
                     {AFTER_CHANGE:?} of the move; its channels by node: {}",
                    seen.join(", ")
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if !waiting.is_finished() {
            say(&format!(
                "  the waiter subscribed again on the new node {:?} after the move",
                moved.elapsed()
            ));
        }
        still_held_then_handed_over(cluster, &name, guard, waiting).await;
    }
}

/// The primary of a lock's slot stops without warning (paused, as a crash or a frozen machine
/// would leave it: no answer, no closed connection) while the lock is held and a waiter waits,
/// and the cluster fails it over to its replica a few node timeouts later. The holder either
/// keeps the lock (renewing on the new primary, then releasing it there) or is told it is lost,
/// and the waiter is served, never while the holder still counts on the lock. Both clients
/// must find the new primary by themselves: the old one does not answer until the round ends.
///
/// Rounds alternate a time to live that outlasts the failover (the holder keeps the lock) and
/// one of 3 s that does not (it expires while its primary is stopped: the holder is told, and
/// the waiter is served by the new primary).
async fn a_stopped_primary_is_failed_over<F, Fut>(cluster: &RedisCluster, connect: &F)
where
    F: Fn(String, RedisOptions) -> Fut,
    Fut: Future<Output = lock_core::Result<Arc<dyn LockBackend>>>,
{
    for round in 0..STOPS {
        let ttl = if round % 2 == 0 { LONG } else { SHORT_TTL };
        let name = unique("stopped");
        let (guard, waiting, processes) = held_for_and_awaited(cluster, connect, &name, ttl).await;
        let primary = cluster.primary_of(&name).await.unwrap();
        let stopped = Instant::now();
        let promoted = cluster
            .stop_primary(&primary)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        say(&format!(
            "  round {round} (ttl {ttl:?}): {primary} stopped, {promoted} its primary after {:?}",
            stopped.elapsed()
        ));
        let stopped = Stopped {
            promoted: cluster.node(&promoted),
            announced: false,
        };
        after_the_primary_stopped(stopped, &name, guard, waiting, ttl, processes).await;
        cluster
            .resume(&primary)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

/// After the primary of `name` stopped and `promoted` took over, while `guard` (of `ttl`) held
/// the lock and `waiting` waited for it: the holder keeps the lock (its key on the new primary,
/// its release passed on to the waiter, the release possibly timing out once) or is told it is
/// lost, and the waiter is served, never while the holder still counts on the lock.
async fn after_the_primary_stopped(
    stopped: Stopped<'_>,
    name: &str,
    guard: lock_core::LockGuard,
    mut waiting: tokio::task::JoinHandle<lock_core::Result<(lock_core::LockGuard, Instant)>>,
    ttl: Duration,
    processes: Processes,
) {
    let promoted = stopped.promoted;
    // Settled once the holder has had the time to renew on the new primary, or to see its
    // validity run out.
    let settle = Instant::now() + Duration::from_secs(2);
    let outcome = loop {
        if waiting.is_finished() {
            let (next, served) = (&mut waiting)
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("the waiter failed: {e}"));
            break Outcome::Served(next, served);
        }
        if let Some(lost) = guard.try_lost() {
            break Outcome::HolderLost(lost);
        }
        if Instant::now() >= settle {
            break Outcome::Kept;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let next = match outcome {
        Outcome::Kept => {
            say("  the holder kept the lock");
            // Told of the new primary, the holder's first request goes there, so its release
            // cannot time out on the stopped one.
            handed_over(promoted, name, guard, waiting, !stopped.announced).await;
            None
        }
        Outcome::HolderLost(lost) => {
            let (next, served) = tokio::time::timeout(AFTER_CHANGE + ttl, waiting)
                .await
                .expect("the waiter was not served after the holder lost the lock")
                .unwrap()
                .unwrap_or_else(|e| panic!("the waiter failed: {e}"));
            not_two_holders(&lost, served);
            say(&format!(
                "  the holder was told ({:?}); the waiter was served {:?} after the \
                     validity ended",
                lost.reason(),
                served - lost.at()
            ));
            release_lost(guard).await;
            Some(next)
        }
        Outcome::Served(next, served) => {
            let lost = guard.try_lost().unwrap_or_else(|| {
                panic!(
                    "two holders: the waiter was served while the holder still counts on \
                         the lock, valid until {:?} from its view",
                    guard.valid_until().map(|v| v - served)
                )
            });
            not_two_holders(&lost, served);
            say(&format!(
                "  the waiter was served {:?} after the holder's validity ended",
                served - lost.at()
            ));
            release_lost(guard).await;
            Some(next)
        }
    };
    if let Some(next) = next {
        // The waiter holds it on the new primary.
        let mut raw = promoted.raw().await.unwrap();
        assert_eq!(
            raw.get(name).await.unwrap().as_deref(),
            Some(next.token().as_str())
        );
        assert_eq!(next.release().await.unwrap(), Release::Released);
    }
    // Both processes lived through the failover: the waiter's takes the lock again, and the
    // holder's waits for it (subscribed since the failover) and is served once it is released.
    let (holder, waiter) = processes;
    let again = Lock::new(waiter, name, LONG)
        .unwrap()
        .lock_timeout(AFTER_CHANGE)
        .await
        .unwrap_or_else(|e| panic!("taking the lock again after the failover: {e}"))
        .expect("the lock was free");
    let behind = Lock::new(holder, name, LONG).unwrap();
    let waiting = tokio::spawn(async move {
        let guard = behind.lock_timeout(AFTER_CHANGE).await;
        (guard, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "served while the lock was held");
    let released = Instant::now();
    assert_eq!(again.release().await.unwrap(), Release::Released);
    let (guard, served) = waiting.await.unwrap();
    let guard = guard
        .unwrap_or_else(|e| panic!("waiting again after the failover: {e}"))
        .expect("the holder's process was not served again after the failover");
    say(&format!(
        "  then the holder's process waited again and was served {:?} after a release",
        served - released
    ));
    assert_eq!(guard.release().await.unwrap(), Release::Released);
}

/// The primary that took over from a stopped one.
struct Stopped<'a> {
    promoted: &'a ClusterNode,
    /// Whether the clients were told of it (the sentinels announce a failover; a Cluster
    /// tells its clients nothing).
    announced: bool,
}

/// How long after the sentinels named a new primary a backend's subscriptions may take to be
/// on it: they announce it (`+switch-master`), and the backend connects there at once.
const ANNOUNCED: Duration = Duration::from_secs(5);

/// The sentinels named `primary` the new primary while `waiting` waits for `name`: its
/// subscription is made again there within [`ANNOUNCED`], whether or not the old primary still
/// answers (without the announcement it would stay on the old one, stopped or demoted).
async fn subscribed_on_the_new_primary<T>(
    primary: &ClusterNode,
    name: &str,
    waiting: &tokio::task::JoinHandle<T>,
) {
    let named = Instant::now();
    let mut raw = primary.raw().await.unwrap();
    while channels(&mut raw, "CHANNELS", name).await.is_empty() {
        assert!(
            !waiting.is_finished(),
            "the waiter stopped waiting for a lock still held"
        );
        assert!(
            named.elapsed() < ANNOUNCED,
            "the waiter's subscription is not on the new primary {} {ANNOUNCED:?} after the \
             sentinels named it",
            primary.address()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    say(&format!(
        "  the waiter was subscribed on the new primary {:?} after the sentinels named it",
        named.elapsed()
    ));
}

/// How a round of [`a_stopped_primary_is_failed_over`] went once its primary was replaced.
enum Outcome {
    /// The holder renewed on the new primary.
    Kept,
    /// The holder was told the lock is lost; the waiter not served yet.
    HolderLost(lock_core::Lost),
    /// The waiter was served, at that instant.
    Served(lock_core::LockGuard, Instant),
}

/// Releases the guard of a lost lock: that leaves the waiter's lock alone (checked after), or
/// times out (the holder's first request since the primary stopped).
async fn release_lost(guard: lock_core::LockGuard) {
    match guard.release().await {
        Ok(Release::NotOwner | Release::Missing) => {}
        Err(e) if e.kind() == ErrorKind::Timeout => {}
        other => panic!("the release of a lost lock: {other:?}"),
    }
}

/// The waiter, served at `served`, got the lock only once the holder could no longer count on
/// it.
fn not_two_holders(lost: &lock_core::Lost, served: Instant) {
    assert!(
        lost.at() <= served,
        "two holders: the waiter was served {:?} before the holder's lock ended ({:?})",
        lost.at() - served,
        lost.reason()
    );
}

/// Replica acknowledgement on a primary with one replica: [`REPLICA_ACK_CASE`]'s checks, by
/// `WAIT` (Redis 7.0, where `WAITAOF` is refused) and by `WAITAOF` (Redis 8, with append-only
/// files), then by `WAITAOF` on a Redis Cluster of 3 primaries with a replica each; the servers
/// started and stopped for the call.
///
/// # Panics
///
/// When the servers cannot be started, or a check fails.
///
/// # Examples
///
/// ```no_run
/// use std::sync::Arc;
/// use conformance::redis::{RedisOptions, replica_suite};
/// use lock_core::LockBackend;
///
/// # async fn connect(url: String, options: RedisOptions) -> lock_core::Result<Arc<dyn LockBackend>> {
/// #     unimplemented!()
/// # }
/// #[test]
/// fn replica_acknowledgement() {
///     replica_suite(connect);
/// }
/// ```
pub fn replica_suite<F, Fut>(connect: F)
where
    F: Fn(String, RedisOptions) -> Fut,
    Fut: Future<Output = lock_core::Result<Arc<dyn LockBackend>>>,
{
    let _slot = topology_slot();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let servers = ReplicatedRedis::start()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        replicas_acknowledge_or_the_lock_is_not_taken(servers.url(), servers.replica(), &connect)
            .await;
        say(&format!(
            "{REPLICA_ACK_CASE} ... ok on a primary with one replica"
        ));
        waitaof_refused_by_an_older_server(&servers, &connect).await;
        drop(servers);

        let servers = ReplicatedRedis::start_with_aof()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // Replicas report their fsyncs with their acknowledgement of every second: on Redis
        // 8.0 a `WAITAOF` that counts a replica takes about that long.
        let ack = ReplicaAck::new(1, Duration::from_secs(2))
            .unwrap()
            .with_aof();
        replicas_acknowledge_named(
            servers.url(),
            servers.replica(),
            &connect,
            &unique("aof"),
            ack,
        )
        .await;
        waitaof_without_an_append_only_file(&servers, &connect).await;
        say(&format!(
            "{REPLICA_ACK_CASE} ... ok by the append-only file (WAITAOF) on a primary with one \
             replica"
        ));
        drop(servers);

        // The same on a Cluster: the wait goes to the node of the lock's slot, pipelined
        // after its script.
        let cluster = RedisCluster::start_with_aof(3, 1)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let name = unique("aof");
        cluster
            .fsynced(&name)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let primary = cluster.primary_of(&name).await.unwrap();
        let replica = cluster.replica_of(&primary).await.unwrap();
        replicas_acknowledge_named(cluster.url(), cluster.node(&replica), &connect, &name, ack)
            .await;
        say(&format!(
            "{REPLICA_ACK_CASE} ... ok by the append-only file (WAITAOF) on a Redis Cluster of \
             3 primaries with a replica each"
        ));
    });
}

/// The server's version, as `INFO server` gives it: (major, minor).
async fn version_of(node: &ClusterNode) -> (u32, u32) {
    let info = node
        .raw()
        .await
        .unwrap()
        .run(&["INFO", "server"])
        .await
        .unwrap();
    let info = info.as_str().unwrap_or_default().to_owned();
    let version = info
        .lines()
        .find_map(|line| line.strip_prefix("redis_version:"))
        .unwrap_or_else(|| panic!("no redis_version in {info}"));
    let mut parts = version
        .trim()
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// A handle on a new name under `label`, on a backend connected to `servers`' primary with
/// acknowledgement by the append-only file (1 replica, 300 ms: for the cases that fail at once).
async fn aof_handle<F, Fut>(servers: &ReplicatedRedis, connect: &F, label: &str) -> ProcessLock
where
    F: Fn(String, RedisOptions) -> Fut,
    Fut: Future<Output = lock_core::Result<Arc<dyn LockBackend>>>,
{
    let ack = ReplicaAck::new(1, Duration::from_millis(300))
        .unwrap()
        .with_aof();
    let url = servers.url();
    let backend = connect(url.clone(), RedisOptions::default().with_replicas(ack))
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
    ProcessLock::new(backend, unique(label), LONG).unwrap()
}

/// Acknowledgement by the append-only file on a server without `WAITAOF` (before 7.2): the
/// acquisition fails with `Unsupported`, saying so, and the lock is released again.
async fn waitaof_refused_by_an_older_server<F, Fut>(servers: &ReplicatedRedis, connect: &F)
where
    F: Fn(String, RedisOptions) -> Fut,
    Fut: Future<Output = lock_core::Result<Arc<dyn LockBackend>>>,
{
    let version = version_of(servers.primary()).await;
    if version >= (7, 2) {
        say(&format!(
            "  the test image's Redis {}.{} has WAITAOF: no server here refuses it",
            version.0, version.1
        ));
        return;
    }
    let handle = aof_handle(servers, connect, "aof-old").await;
    let err = handle
        .lock()
        .await
        .expect_err("WAITAOF on Redis before 7.2");
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert!(err.to_string().contains("7.2"), "{err}");
    assert!(err.to_string().contains("released again"), "{err}");
    assert_eq!(handle.status().await.unwrap(), LockState::Open);
    say(&format!(
        "  Redis {}.{} refuses WAITAOF: {err}",
        version.0, version.1
    ));
}

/// Acknowledgement by the append-only file on a primary whose append-only file is switched
/// off: the acquisition fails with `Config`, and the lock is released again.
async fn waitaof_without_an_append_only_file<F, Fut>(servers: &ReplicatedRedis, connect: &F)
where
    F: Fn(String, RedisOptions) -> Fut,
    Fut: Future<Output = lock_core::Result<Arc<dyn LockBackend>>>,
{
    let handle = aof_handle(servers, connect, "aof-off").await;
    let mut admin = servers.primary().raw().await.unwrap();
    admin
        .run(&["CONFIG", "SET", "appendonly", "no"])
        .await
        .unwrap();
    let refused = handle.lock().await;
    let state = handle.status().await;
    admin
        .run(&["CONFIG", "SET", "appendonly", "yes"])
        .await
        .unwrap();
    let err = refused.expect_err("WAITAOF without an append-only file");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("appendonly"), "{err}");
    assert_eq!(
        state.unwrap(),
        LockState::Open,
        "the lock was released again"
    );
    say(&format!("  without an append-only file: {err}"));
}

/// The name of the replica acknowledgement case, as the log shows it.
///
/// # Examples
///
/// ```
/// assert_eq!(conformance::redis::REPLICA_ACK_CASE, "replicas_acknowledge_or_the_lock_is_not_taken");
/// ```
pub const REPLICA_ACK_CASE: &str = "replicas_acknowledge_or_the_lock_is_not_taken";

async fn replicas_acknowledged_on_a_cluster<F, Fut>(cluster: &RedisCluster, connect: &F)
where
    F: Fn(String, RedisOptions) -> Fut,
    Fut: Future<Output = lock_core::Result<Arc<dyn LockBackend>>>,
{
    // A name whose primary has a replica (after the failovers above, every one has).
    let name = unique("replicas");
    let primary = cluster.primary_of(&name).await.unwrap();
    let replica = cluster.replica_of(&primary).await.unwrap();
    let ack = ReplicaAck::new(1, Duration::from_millis(300)).unwrap();
    replicas_acknowledge_named(cluster.url(), cluster.node(&replica), connect, &name, ack).await;
}

async fn replicas_acknowledge_or_the_lock_is_not_taken<F, Fut>(
    url: String,
    replica: &ClusterNode,
    connect: &F,
) where
    F: Fn(String, RedisOptions) -> Fut,
    Fut: Future<Output = lock_core::Result<Arc<dyn LockBackend>>>,
{
    let ack = ReplicaAck::new(1, Duration::from_millis(300)).unwrap();
    replicas_acknowledge_named(url, replica, connect, &unique("replicas"), ack).await;
}

/// With replica acknowledgement `ack` (1 replica): with the replica running, a lock is taken
/// and renewed; with it paused, taking the lock fails with `NotReplicated` within the
/// acknowledgement's timeout and leaves the lock free, for a handle and for a guard alike;
/// running again, the lock is taken again.
async fn replicas_acknowledge_named<F, Fut>(
    url: String,
    replica: &ClusterNode,
    connect: &F,
    name: &str,
    ack: ReplicaAck,
) where
    F: Fn(String, RedisOptions) -> Fut,
    Fut: Future<Output = lock_core::Result<Arc<dyn LockBackend>>>,
{
    let backend = connect(url.clone(), RedisOptions::default().with_replicas(ack))
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
    let handle = ProcessLock::new(backend.clone(), name, LONG).unwrap();
    assert!(
        handle.lock().await.unwrap(),
        "acknowledged by a running replica"
    );
    assert!(handle.update().await.unwrap(), "renewal acknowledged");
    assert_eq!(handle.clear(false).await.unwrap(), Cleared::Cleared);

    replica.pause().await.unwrap();
    let started = Instant::now();
    let refused = handle.lock().await;
    let took = started.elapsed();
    let guarded = Lock::new(backend.clone(), name, LONG)
        .unwrap()
        .try_lock()
        .await;
    let state = handle.status().await;
    replica.unpause().await.unwrap();
    let err = refused.expect_err("a lock taken with its replica paused");
    assert_eq!(err.kind(), ErrorKind::NotReplicated, "{err}");
    assert!(
        took >= ack.timeout(),
        "failed before WAIT's timeout: {took:?}"
    );
    assert!(took < ack.timeout() + WAKE, "took {took:?}");
    let err = guarded.expect_err("a guard taken with its replica paused");
    assert_eq!(err.kind(), ErrorKind::NotReplicated, "{err}");
    assert_eq!(
        state.unwrap(),
        LockState::Open,
        "the lock was released again"
    );
    say(&format!("  refused in {took:?}: {err}"));

    // The replica catches up within a few seconds.
    let deadline = Instant::now() + AFTER_CHANGE;
    loop {
        match handle.lock().await {
            Ok(true) => break,
            Err(e) if e.kind() == ErrorKind::NotReplicated && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => panic!("taking the lock after the replica came back: {other:?}"),
        }
    }
    assert_eq!(handle.clear(false).await.unwrap(), Cleared::Cleared);
}
