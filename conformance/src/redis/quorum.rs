//! The suite on a Redlock [`Quorum`] of independent Redis servers, and the faults a quorum is
//! for: nodes down, slow, partitioned from one client, or losing their data.

use std::future::Future;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use lock_core::quorum::Quorum;
use lock_core::redis::keys::fence_key;
use lock_core::{
    Cleared, ErrorKind, FencedAcquire, Lock, LockBackend, LockName, ProcessLock, Token, Ttl,
};
use tokio::time::Instant;

use super::cluster::{passes, run_cases, shared_cases, topology_slot};
use super::options::RedisOptions;
use crate::Fixture;
use crate::redis_server::{FaultyProxy, RawRedis, RedisServer};

/// How many times each fault case runs, each on a lock of its own: a race that shows once in
/// a few runs shows here.
const ROUNDS: usize = 5;
/// The per-node timeout of the fault cases' clients.
const NODE_TIMEOUT: Duration = Duration::from_millis(300);
/// How long a fault case waits for something that should happen at once, on a loaded machine.
const SLACK: Duration = Duration::from_secs(2);

/// Runs every case of the suite that needs no server of its own on a [`Quorum`] of `nodes`
/// independent Redis servers (containers of the local image, or `redis-server` processes),
/// each case on a quorum of backends of its own, made by `connect` from each server's URL; then
/// the quorum's own fault cases, each 5 times, on clients whose every node is behind
/// a [`FaultyProxy`] of its own (so that one client can be cut off alone):
///
/// - a minority of nodes down: locks, renewals, waiting and fencing work as before;
/// - a majority down: an acquisition fails within the per-node timeout with an error that
///   says how many nodes did not answer, and leaves no key on the live nodes;
/// - a slow node: the per-node timeout bounds the acquisition; a majority slow fails it;
/// - a partition that cuts the holder off from a majority: the holder is told its lock is lost
///   no later than the moment the other client, waiting meanwhile, gets it;
/// - a node restarted without its data while a lock is held (a new, empty server behind its
///   address): it grants nothing for a timeout, then the renewal puts the key back; a
///   majority losing the lock is reported to the holder within the timeout;
/// - fencing tokens keep increasing while different nodes are down at each acquisition, with
///   one node's counter far ahead of the others (as a server with a fast clock would be).
///
/// The cases that need a server of their own, and those of the waiter queue (a quorum has
/// none), are listed on stderr, not run.
///
/// # Panics
///
/// When the servers cannot be started, and, after all cases ran, when any failed.
///
/// # Examples
///
/// ```no_run
/// use std::sync::Arc;
/// use conformance::redis::{RedisOptions, quorum_suite};
/// use lock_core::LockBackend;
///
/// # async fn connect(url: String, options: RedisOptions) -> lock_core::Result<Arc<dyn LockBackend>> {
/// #     unimplemented!()
/// # }
/// #[test]
/// fn the_suite_on_a_quorum_of_three() {
///     quorum_suite(connect, 3);
/// }
/// ```
pub fn quorum_suite<F, Fut>(connect: F, nodes: usize)
where
    F: Fn(String, RedisOptions) -> Fut + Sync,
    Fut: Future<Output = lock_core::Result<Arc<dyn LockBackend>>> + 'static,
{
    assert!(nodes >= 3, "a quorum suite needs at least 3 nodes");
    let _slot = topology_slot();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime for the quorum");
    let servers = runtime.block_on(async {
        let mut servers = Vec::new();
        for _ in 0..nodes {
            servers.push(
                RedisServer::start_own()
                    .await
                    .unwrap_or_else(|e| panic!("{e}")),
            );
        }
        servers
    });
    let urls: Vec<String> = servers.iter().map(|s| s.url().to_owned()).collect();
    let make = || async {
        let mut backends = Vec::new();
        for url in &urls {
            let backend = connect(url.clone(), RedisOptions::default())
                .await
                .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
            backends.push(backend);
        }
        Fixture::new(Arc::new(Quorum::new(backends).expect("nodes")))
    };
    let capabilities = runtime.block_on(make()).backend().capabilities();
    let (shared, _) = shared_cases();
    let (run, lacking): (Vec<_>, Vec<_>) = shared
        .into_iter()
        .partition(|case| case.needs.is_none_or(|cap| cap.is_in(&capabilities)));
    let mut failed = run_cases(&run, &make);
    let set = QuorumSet {
        servers: &servers,
        connect: &connect,
    };
    let own: [(&'static str, QuorumCase<F>); 6] = [
        ("a_minority_of_nodes_down_changes_nothing", |s| {
            Box::pin(a_minority_of_nodes_down_changes_nothing(s))
        }),
        ("a_majority_down_fails_fast_and_leaves_nothing", |s| {
            Box::pin(a_majority_down_fails_fast_and_leaves_nothing(s))
        }),
        ("a_slow_node_is_cut_off_by_the_node_timeout", |s| {
            Box::pin(a_slow_node_is_cut_off_by_the_node_timeout(s))
        }),
        ("a_partition_never_gives_two_holders", |s| {
            Box::pin(a_partition_never_gives_two_holders(s))
        }),
        ("a_node_restarted_empty_is_repaired", |s| {
            Box::pin(a_node_restarted_empty_is_repaired(s))
        }),
        ("fencing_tokens_increase_whichever_nodes_answer", |s| {
            Box::pin(fencing_tokens_increase_whichever_nodes_answer(s))
        }),
    ];
    for (name, case) in own {
        if !passes(name, || runtime.block_on(case(&set))) {
            failed.push(name);
        }
    }
    runtime.block_on(async move { drop(servers) });
    let names: Vec<&str> = lacking.iter().map(|case| case.name).collect();
    say(&format!(
        "{} of {} cases passed on a quorum of {nodes}; not run (a quorum has no waiter \
         queue): {}",
        run.len() + own.len() - failed.len(),
        run.len() + own.len(),
        names.join(", ")
    ));
    assert!(
        failed.is_empty(),
        "cases failed on a quorum of {nodes}: {failed:?}"
    );
}

type QuorumCase<F> =
    for<'a> fn(&'a QuorumSet<'a, F>) -> std::pin::Pin<Box<dyn Future<Output = ()> + 'a>>;

/// The servers of a quorum, and how the backend under test connects to one.
struct QuorumSet<'a, F> {
    servers: &'a [RedisServer],
    connect: &'a F,
}

/// One client of the quorum, as a process of its own: a backend per node, each through a
/// proxy of its own.
struct Client {
    proxies: Vec<FaultyProxy>,
    backend: Arc<dyn LockBackend>,
}

impl<F, Fut> QuorumSet<'_, F>
where
    F: Fn(String, RedisOptions) -> Fut,
    Fut: Future<Output = lock_core::Result<Arc<dyn LockBackend>>>,
{
    async fn client(&self) -> Client {
        self.client_with(RedisOptions::default()).await
    }

    /// A client whose node backends have `options`, with the per-node timeout as their
    /// connect and response timeouts.
    async fn client_with(&self, options: RedisOptions) -> Client {
        let mut proxies = Vec::new();
        let mut backends = Vec::new();
        for server in self.servers {
            let proxy = FaultyProxy::start(server.url()).await.unwrap();
            let options = options
                .clone()
                .with_connect_timeout(NODE_TIMEOUT)
                .with_response_timeout(NODE_TIMEOUT);
            let backend = (self.connect)(proxy.url().to_owned(), options)
                .await
                .unwrap_or_else(|e| panic!("connecting through {}: {e}", proxy.url()));
            backends.push(backend);
            proxies.push(proxy);
        }
        let quorum = Quorum::new(backends)
            .and_then(|q| q.with_node_timeout(NODE_TIMEOUT))
            .unwrap();
        Client {
            proxies,
            backend: Arc::new(quorum),
        }
    }

    fn majority(&self) -> usize {
        self.servers.len() / 2 + 1
    }

    async fn raw(&self, node: usize) -> RawRedis {
        RawRedis::connect(self.servers[node].url()).await.unwrap()
    }
}

/// A server's uptime, from `INFO server`.
async fn uptime(raw: &mut RawRedis) -> Duration {
    let info = raw.run(&["INFO", "server"]).await.unwrap();
    let seconds = info
        .as_str()
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("uptime_in_seconds:"))
        .and_then(|s| s.trim().parse::<u64>().ok())
        .expect("an uptime in INFO");
    Duration::from_secs(seconds)
}

fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "[quorum] {line}");
}

/// Long enough that no lock of these cases expires unless it is let go.
const LONG: Duration = Duration::from_secs(30);

async fn a_minority_of_nodes_down_changes_nothing<F, Fut>(set: &QuorumSet<'_, F>)
where
    F: Fn(String, RedisOptions) -> Fut,
    Fut: Future<Output = lock_core::Result<Arc<dyn LockBackend>>>,
{
    let (a, b) = (set.client().await, set.client().await);
    let minority = set.servers.len() - set.majority();
    for round in 0..ROUNDS {
        let name = format!("quorum-minority-{round}");
        // A different minority each round.
        let down: Vec<usize> = (0..minority)
            .map(|k| (round + k) % set.servers.len())
            .collect();
        for &i in &down {
            a.proxies[i].set_down(true);
            b.proxies[i].set_down(true);
        }
        let ttl = Duration::from_millis(1500);
        let holder = Lock::new(a.backend.clone(), &name, ttl).unwrap();
        let guard = holder.lock().await.unwrap();
        let first = guard.fence().expect("a quorum of Redis servers fences");
        // Renewed at least twice over, with the minority still down.
        tokio::time::sleep(ttl * 2).await;
        assert!(guard.is_held(), "round {round}: the holder lost its lock");
        let other = Lock::new(b.backend.clone(), &name, ttl).unwrap();
        assert!(
            other.try_lock().await.unwrap().is_none(),
            "round {round}: taken while held"
        );
        let waiting = tokio::spawn(async move { other.lock_timeout(LONG).await });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let released = Instant::now();
        assert!(guard.release().await.unwrap().is_released());
        let next = waiting
            .await
            .unwrap()
            .unwrap()
            .expect("the waiter is served");
        let woke = released.elapsed();
        assert!(
            next.fence().unwrap() > first,
            "round {round}: fence {:?} after {first}",
            next.fence()
        );
        // Woken by a release on a node, not by the recheck or an expiry.
        assert!(woke < SLACK, "round {round}: the waiter took {woke:?}");
        say(&format!(
            "minority {down:?} down: waiter served {woke:?} after the release"
        ));
        assert!(next.release().await.unwrap().is_released());
        for &i in &down {
            a.proxies[i].set_down(false);
            b.proxies[i].set_down(false);
        }
    }
}

async fn a_majority_down_fails_fast_and_leaves_nothing<F, Fut>(set: &QuorumSet<'_, F>)
where
    F: Fn(String, RedisOptions) -> Fut,
    Fut: Future<Output = lock_core::Result<Arc<dyn LockBackend>>>,
{
    let a = set.client().await;
    let nodes = set.servers.len();
    let down = nodes - set.majority() + 1;
    for round in 0..ROUNDS {
        let name = format!("quorum-majority-down-{round}");
        let down_nodes: Vec<usize> = (0..down).map(|k| (round + k) % nodes).collect();
        for &i in &down_nodes {
            a.proxies[i].set_down(true);
        }
        let lock = ProcessLock::new(a.backend.clone(), &name, LONG).unwrap();
        let started = Instant::now();
        let err = lock
            .lock()
            .await
            .expect_err("acquired with a majority down");
        let took = started.elapsed();
        assert!(
            matches!(err.kind(), ErrorKind::Connection | ErrorKind::Timeout),
            "round {round}: {err}"
        );
        let said = format!("{down} of {nodes} nodes did not answer");
        assert!(err.to_string().contains(&said), "round {round}: {err}");
        assert!(
            took < NODE_TIMEOUT + SLACK,
            "round {round}: failing took {took:?}"
        );
        for live in (0..nodes).filter(|i| !down_nodes.contains(i)) {
            let left = set.raw(live).await.get(&name).await.unwrap();
            assert_eq!(left, None, "round {round}: a key left on node {live}");
        }
        say(&format!(
            "{down} of {nodes} down: failed in {took:?}: {err}"
        ));
        for &i in &down_nodes {
            a.proxies[i].set_down(false);
        }
        assert!(
            lock.lock().await.unwrap(),
            "round {round}: not after healing"
        );
        assert_eq!(lock.clear(false).await.unwrap(), Cleared::Cleared);
    }
}

async fn a_slow_node_is_cut_off_by_the_node_timeout<F, Fut>(set: &QuorumSet<'_, F>)
where
    F: Fn(String, RedisOptions) -> Fut,
    Fut: Future<Output = lock_core::Result<Arc<dyn LockBackend>>>,
{
    let nodes = set.servers.len();
    for round in 0..ROUNDS {
        let a = set.client().await;
        let name = format!("quorum-slow-{round}");
        let slow = (nodes - set.majority()).max(1);
        for k in 0..slow {
            a.proxies[(round + k) % nodes].delay_replies(Duration::from_secs(5));
        }
        let lock = ProcessLock::new(a.backend.clone(), &name, LONG).unwrap();
        let started = Instant::now();
        assert!(lock.lock().await.unwrap(), "round {round}: not acquired");
        let took = started.elapsed();
        assert!(took < NODE_TIMEOUT + SLACK, "round {round}: took {took:?}");
        assert_eq!(lock.clear(false).await.unwrap(), Cleared::Cleared);
        // A majority slow: the acquisition fails, bounded by the per-node timeout.
        a.proxies[(round + slow) % nodes].delay_replies(Duration::from_secs(5));
        let other = ProcessLock::new(a.backend.clone(), format!("{name}-b"), LONG).unwrap();
        let started = Instant::now();
        let outcome = other.lock().await;
        let failed_in = started.elapsed();
        assert!(
            matches!(&outcome, Err(e) if e.kind() == ErrorKind::Timeout),
            "round {round}: {outcome:?}"
        );
        assert!(
            failed_in < NODE_TIMEOUT + SLACK,
            "round {round}: failing took {failed_in:?}"
        );
        say(&format!(
            "{slow} slow of {nodes}: acquired in {took:?}; a majority slow failed in \
             {failed_in:?}"
        ));
    }
}

async fn a_partition_never_gives_two_holders<F, Fut>(set: &QuorumSet<'_, F>)
where
    F: Fn(String, RedisOptions) -> Fut,
    Fut: Future<Output = lock_core::Result<Arc<dyn LockBackend>>>,
{
    let (a, b) = (set.client().await, set.client().await);
    let nodes = set.servers.len();
    for round in 0..ROUNDS {
        let name = format!("quorum-partition-{round}");
        let ttl = Duration::from_millis(1200);
        let holder = Lock::new(a.backend.clone(), &name, ttl).unwrap();
        let guard = holder.lock().await.unwrap();
        let waiter = Lock::new(b.backend.clone(), &name, ttl).unwrap();
        let waiting = tokio::spawn(async move {
            let guard = waiter.lock_timeout(LONG).await;
            (Instant::now(), guard)
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        // The holder keeps a minority only.
        let cut: Vec<usize> = (0..set.majority()).map(|k| (round + k) % nodes).collect();
        for &i in &cut {
            a.proxies[i].set_down(true);
        }
        let lost = tokio::time::timeout(ttl + SLACK, guard.lost())
            .await
            .expect("the cut-off holder is told");
        let (served_at, next) = waiting.await.unwrap();
        let next = next.unwrap().expect("the other client is served");
        assert!(
            lost.at() <= served_at,
            "round {round}: the other client held the lock {:?} before the holder's \
             validity ended",
            lost.at() - served_at
        );
        assert!(next.fence() > guard.fence(), "round {round}: fences");
        say(&format!(
            "holder cut from {cut:?}: told {:?} before the other client was served",
            served_at - lost.at()
        ));
        for &i in &cut {
            a.proxies[i].set_down(false);
        }
        drop(guard);
        assert!(next.release().await.unwrap().is_released());
    }
}

async fn a_node_restarted_empty_is_repaired<F, Fut>(set: &QuorumSet<'_, F>)
where
    F: Fn(String, RedisOptions) -> Fut,
    Fut: Future<Output = lock_core::Result<Arc<dyn LockBackend>>>,
{
    // The delayed restart rule, with a delay that outlasts a new server's start.
    let delay = Duration::from_secs(4);
    let a = set
        .client_with(RedisOptions::default().with_restart_delay(Some(delay)))
        .await;
    let nodes = set.servers.len();
    // Where each node is now: a restarted node is a new server at the same proxy address.
    let mut current: Vec<String> = set.servers.iter().map(|s| s.url().to_owned()).collect();
    let mut restarted = Vec::new();
    for round in 0..ROUNDS {
        let name = format!("quorum-restart-{round}");
        let ttl = Duration::from_millis(1500);
        let holder = Lock::new(a.backend.clone(), &name, ttl).unwrap();
        let guard = holder.lock().await.unwrap();
        let token = guard.token().as_str().to_owned();
        let victim = round % nodes;
        // Every node holds it first (a request late at the acquisition, or a node still in
        // its own restart delay, has it at a renewal), so that a majority is left below.
        let deadline = Instant::now() + delay + ttl + SLACK;
        for url in &current {
            let mut raw = RawRedis::connect(url).await.unwrap();
            while raw.get(&name).await.unwrap().as_deref() != Some(token.as_str()) {
                assert!(
                    Instant::now() < deadline,
                    "round {round}: {url} never held it"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        // The victim restarts without its data: a new, empty server behind its address. It
        // grants nothing for a timeout (the delayed restart rule); then the holder's renewal
        // puts the key back, with the holder's token, while a majority still holds it.
        let fresh = RedisServer::start_own().await.unwrap();
        let mut raw = RawRedis::connect(fresh.url()).await.unwrap();
        let up = uptime(&mut raw).await;
        current[victim] = fresh.url().to_owned();
        a.proxies[victim].switch_to(fresh.url()).unwrap();
        restarted.push(fresh);
        let started = Instant::now();
        let deadline = started + delay + ttl + SLACK;
        loop {
            if raw.get(&name).await.unwrap().as_deref() == Some(token.as_str()) {
                break;
            }
            if let Some(lost) = guard.try_lost() {
                panic!(
                    "round {round}: lost with a majority left: {lost} ({:?})",
                    lost.cause()
                );
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: node {victim} not repaired"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let repaired = started.elapsed();
        assert!(guard.is_held());
        // Not before the restart delay: the server counts whole seconds of uptime.
        let earliest = delay.saturating_sub(up + Duration::from_secs(1));
        assert!(
            repaired >= earliest,
            "round {round}: repaired {repaired:?} after a restart {up:?} before, delay {delay:?}"
        );
        // A majority lose it and another holder takes it there (restarts without
        // persistence past the delay, then another client): the holder is told within its
        // timeout. Each node in one step, so that a renewal in between cannot put it back.
        let lost_nodes: Vec<usize> = (0..set.majority()).map(|k| (round + k) % nodes).collect();
        let took = Instant::now();
        let stranger = Token::generate().unwrap();
        let px = LONG.as_millis().to_string();
        for &i in &lost_nodes {
            let mut raw = RawRedis::connect(&current[i]).await.unwrap();
            raw.run(&["SET", &name, stranger.as_str(), "PX", &px])
                .await
                .unwrap();
        }
        let lost = tokio::time::timeout(ttl + SLACK, guard.lost())
            .await
            .expect("the holder is told");
        say(&format!(
            "node {victim} restarted empty ({up:?} up): repaired after {repaired:?} (restart \
             delay {delay:?}); a majority {lost_nodes:?} lost: the holder was told in {:?} \
             ({:?})",
            took.elapsed(),
            lost.reason()
        ));
        drop(guard);
        for url in &current {
            RawRedis::connect(url)
                .await
                .unwrap()
                .run(&["DEL", &name])
                .await
                .unwrap();
        }
    }
}

async fn fencing_tokens_increase_whichever_nodes_answer<F, Fut>(set: &QuorumSet<'_, F>)
where
    F: Fn(String, RedisOptions) -> Fut,
    Fut: Future<Output = lock_core::Result<Arc<dyn LockBackend>>>,
{
    let a = set.client().await;
    let nodes = set.servers.len();
    let name = LockName::new("quorum-fences").unwrap();
    let ttl = Ttl::new(LONG).unwrap();
    // The last node counts far ahead of the others, as one with a fast clock would.
    let ahead: u64 = 1 << 52;
    set.raw(nodes - 1)
        .await
        .run(&["SET", &fence_key(name.as_str()), &ahead.to_string()])
        .await
        .unwrap();
    let mut last = 0;
    // One token, as one holder taking the lock again and again: a request that reached a
    // node only once it came back (fred queues commands while it reconnects) left a key of
    // this token, which counts as this holder's.
    let token = Token::generate().unwrap();
    // Each round a minority is down, a different one each time: in the first, the nodes
    // left are exactly a majority with the one far ahead among them; later the one far ahead
    // is down too.
    let minority = nodes - set.majority();
    for round in 0..ROUNDS.max(2 * nodes) {
        let down: Vec<usize> = (0..minority).map(|k| (round + k) % nodes).collect();
        for &i in &down {
            a.proxies[i].set_down(true);
        }
        let fence = match a
            .backend
            .try_acquire_fenced(&name, &token, ttl)
            .await
            .unwrap()
        {
            FencedAcquire::Acquired { fence } => fence,
            other => panic!("round {round}: {other:?}"),
        };
        assert!(
            fence > last,
            "round {round}, nodes {down:?} down: fence {fence} after {last}"
        );
        if round == 0 {
            assert!(fence > ahead, "the node far ahead was not counted: {fence}");
        }
        last = fence;
        assert!(
            a.backend
                .release(&name, &token)
                .await
                .unwrap()
                .is_released()
        );
        for &i in &down {
            a.proxies[i].set_down(false);
        }
    }
    say(&format!(
        "{} acquisitions, each with another node down: tokens increased, to {last}",
        ROUNDS.max(2 * nodes)
    ));
}
