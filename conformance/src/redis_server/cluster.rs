//! [`RedisCluster`]: a real Redis Cluster for tests, of containers from the local image (never
//! pulled), each node on its own address on Docker's bridge network; without Docker (and unless
//! [`REQUIRE_DOCKER_ENV`](super::REQUIRE_DOCKER_ENV) forbids it), of `redis-server` processes
//! from `PATH` on loopback.
//!
//! The cluster is made by hand, as `redis-cli --cluster create` does, with no tool but the
//! nodes themselves: every node meets the first, the primaries take equal ranges of the 16384
//! slots, each replica replicates its primary, and the cluster is ready once every node says
//! `cluster_state:ok`, knows every other node, and every replica's link to its primary is up.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use testcontainers::core::WaitFor;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};
use tokio::time::Instant;

use super::process::{self, Ready, ServerProcess};
use super::{
    AOF_IMAGE_ENV, DEFAULT_AOF_IMAGE, DEFAULT_IMAGE, IMAGE_ENV, REQUIRE_DOCKER_ENV, RawRedis, Resp,
    image_on_this_machine, log,
};

/// How long a cluster may take to form.
const FORMING: Duration = Duration::from_secs(30);

/// How long a cluster may take to fail over a primary that stopped: a node timeout before its
/// replica sees it fail, then the election (a few node timeouts in all, more on a loaded machine).
const STOPPED_FAILOVER: Duration = Duration::from_secs(60);

/// How long a Sentinel failover may take, from the replicas' catching up to the old primary's
/// demotion: the sentinels notice the old primary still calls itself one at their next
/// `INFO` (every 10 s), so a failover takes 10 to 20 s, and more on a loaded machine.
const FAILING_OVER: Duration = Duration::from_secs(90);

/// How long a node may go unanswered before the others fail it over: short, so that failover
/// tests take seconds.
///
/// # Examples
///
/// ```
/// use conformance::redis_server::NODE_TIMEOUT;
///
/// // A paused primary is failed over a few node timeouts later.
/// let wait_at_most = NODE_TIMEOUT * 5;
/// ```
pub const NODE_TIMEOUT: Duration = Duration::from_millis(2000);

/// A Redis Cluster of real servers, stopped when dropped.
///
/// # Examples
///
/// ```no_run
/// # async fn f() -> Result<(), String> {
/// use conformance::redis_server::RedisCluster;
///
/// let cluster = RedisCluster::start(3, 1).await?;
/// println!("testing against {}", cluster.url());
/// assert_eq!(cluster.nodes().len(), 6);
/// # Ok(()) }
/// ```
pub struct RedisCluster {
    nodes: Vec<ClusterNode>,
    origin: String,
}

/// One server of a [`RedisCluster`].
///
/// # Examples
///
/// ```no_run
/// # async fn f() -> Result<(), String> {
/// use conformance::redis_server::RedisCluster;
///
/// let cluster = RedisCluster::start(3, 1).await?;
/// let node = &cluster.nodes()[0];
/// let mut raw = node.raw().await?;
/// raw.run(&["CLUSTER", "MYID"]).await?;
/// # Ok(()) }
/// ```
pub struct ClusterNode {
    address: String,
    running: Node,
    /// Paused by [`ClusterNode::pause`]: not asked about the cluster meanwhile.
    paused: AtomicBool,
}

enum Node {
    Container(Box<ContainerAsync<GenericImage>>),
    Process(ServerProcess),
}

impl RedisCluster {
    /// Starts a cluster of `primaries` primaries (at least 3, as Redis asks), each with
    /// `replicas` replicas, and waits until it serves every slot and every replica is in sync.
    ///
    /// # Errors
    ///
    /// A message saying what failed: no container and no `redis-server`, or a cluster that did
    /// not form in time (with each node's view of it).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::RedisCluster;
    ///
    /// let cluster = RedisCluster::start(3, 1).await?;
    /// assert_eq!(cluster.nodes().len(), 6);
    /// # Ok(()) }
    /// ```
    pub async fn start(primaries: usize, replicas: usize) -> Result<Self, String> {
        let count = primaries * (1 + replicas);
        let (place, origin) = Place::choose("a Redis Cluster")?;
        let mut nodes = Vec::new();
        for _ in 0..count {
            nodes.push(place.start(&cluster_args()).await?);
        }
        let cluster = RedisCluster { nodes, origin };
        cluster.form(primaries).await?;
        log(&format!(
            "Redis Cluster of {primaries} primaries and {replicas} replica(s) each, from {}: {}",
            cluster.origin,
            cluster.url()
        ));
        Ok(cluster)
    }

    /// [`start`](Self::start), each node keeping an append-only file fsynced at every write
    /// (`appendonly yes`, `appendfsync always`), for acknowledgement by `WAITAOF`: containers of
    /// the image [`AOF_IMAGE_ENV`] names (default [`DEFAULT_AOF_IMAGE`], a Redis 7.2 or later).
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start); and when the image is not on this machine.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::RedisCluster;
    ///
    /// let cluster = RedisCluster::start_with_aof(3, 1).await?;
    /// cluster.fsynced("jobs").await?; // WAITAOF 1 1 now counts the replica of jobs' primary
    /// # Ok(()) }
    /// ```
    pub async fn start_with_aof(primaries: usize, replicas: usize) -> Result<Self, String> {
        let (place, origin) = aof_place()?;
        let mut args = cluster_args();
        args.extend(AOF_ARGS.map(str::to_owned));
        let mut nodes = Vec::new();
        for _ in 0..primaries * (1 + replicas) {
            nodes.push(place.start(&args).await?);
        }
        let cluster = RedisCluster { nodes, origin };
        cluster.form(primaries).await?;
        log(&format!(
            "Redis Cluster of {primaries} primaries and {replicas} replica(s) each, with \
             append-only files, from {}: {}",
            cluster.origin,
            cluster.url()
        ));
        Ok(cluster)
    }

    /// Waits until a write in `key`'s slot is fsynced to the append-only files of its primary
    /// and of each of its replicas (`WAITAOF`), on a cluster from
    /// [`start_with_aof`](Self::start_with_aof): a replica that has just synced rewrites its
    /// file first, and acknowledges no fsync until that is done.
    ///
    /// # Errors
    ///
    /// When a node does not answer, or that is not done within 30 s.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::RedisCluster;
    ///
    /// let cluster = RedisCluster::start_with_aof(3, 1).await?;
    /// cluster.fsynced("jobs").await?;
    /// # Ok(()) }
    /// ```
    pub async fn fsynced(&self, key: &str) -> Result<(), String> {
        let primary = self.primary_of(key).await?;
        let id = self
            .topology()
            .await?
            .into_iter()
            .find(|n| n.address == primary)
            .map(|n| n.id)
            .ok_or_else(|| format!("no node at {primary}"))?;
        let replicas = self
            .topology()
            .await?
            .iter()
            .filter(|n| n.primary_id.as_deref() == Some(&id))
            .count();
        // A key of the same slot, which the test's own keys do not use.
        let probe = format!("process-lock-test:aof-ready:{{{key}}}");
        fsynced_on_replicas(self.node(&primary), &probe, replicas).await
    }

    /// The cluster's URL, every node a seed: `redis-cluster://host:port?node=host:port&...`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::RedisCluster;
    ///
    /// let cluster = RedisCluster::start(3, 1).await?;
    /// let url = cluster.url(); // redis-cluster://host:port?node=host:port&...
    /// # Ok(()) }
    /// ```
    pub fn url(&self) -> String {
        let (first, rest) = self.nodes.split_first().expect("a cluster has nodes");
        let others: Vec<String> = rest.iter().map(|n| format!("node={}", n.address)).collect();
        format!("redis-cluster://{}?{}", first.address, others.join("&"))
    }

    /// One `redis://host:port/` URL per node.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::RedisCluster;
    ///
    /// let cluster = RedisCluster::start(3, 1).await?;
    /// for url in cluster.node_urls() {
    ///     println!("{url}"); // redis://host:port/
    /// }
    /// # Ok(()) }
    /// ```
    pub fn node_urls(&self) -> Vec<String> {
        self.nodes.iter().map(ClusterNode::url).collect()
    }

    /// Every node, primaries first (in the order of their slot ranges), then their replicas.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::RedisCluster;
    ///
    /// let cluster = RedisCluster::start(3, 1).await?;
    /// let primaries = &cluster.nodes()[..3];
    /// # Ok(()) }
    /// ```
    pub fn nodes(&self) -> &[ClusterNode] {
        &self.nodes
    }

    /// Where the nodes come from, for people.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::RedisCluster;
    ///
    /// let cluster = RedisCluster::start(3, 1).await?;
    /// eprintln!("a cluster of {}", cluster.origin());
    /// # Ok(()) }
    /// ```
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The address (`host:port`) of the primary that serves `key`'s slot now, as the first
    /// node that answers and is not [paused](ClusterNode::pause) sees it.
    ///
    /// # Errors
    ///
    /// When no node answers, or none serves the slot.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::RedisCluster;
    ///
    /// let cluster = RedisCluster::start(3, 1).await?;
    /// let primary = cluster.primary_of("jobs").await?;
    /// let mut raw = cluster.node(&primary).raw().await?;
    /// let holder = raw.get("jobs").await?;
    /// # Ok(()) }
    /// ```
    pub async fn primary_of(&self, key: &str) -> Result<String, String> {
        let mut last = String::from("every node is paused");
        for node in self.nodes.iter().filter(|n| !n.is_paused()) {
            match Self::primary_of_asking(node, key).await {
                Ok(primary) => return Ok(primary),
                Err(e) => last = format!("{}: {e}", node.address),
            }
        }
        Err(last)
    }

    /// The primary that serves `key`'s slot in `node`'s view.
    async fn primary_of_asking(node: &ClusterNode, key: &str) -> Result<String, String> {
        let mut raw = node.raw().await?;
        let slot = raw.int(&["CLUSTER", "KEYSLOT", key]).await?;
        let slots = raw.run(&["CLUSTER", "SLOTS"]).await?;
        let Resp::Array(Some(ranges)) = slots else {
            return Err(format!("CLUSTER SLOTS answered {slots:?}"));
        };
        for range in ranges {
            let Resp::Array(Some(items)) = range else {
                continue;
            };
            let (Some(low), Some(high)) = (items[0].as_int(), items[1].as_int()) else {
                continue;
            };
            if (low..=high).contains(&slot)
                && let Some(Resp::Array(Some(primary))) = items.get(2)
                && let (Some(host), Some(port)) = (primary[0].as_str(), primary[1].as_int())
            {
                return Ok(format!("{host}:{port}"));
            }
        }
        Err(format!("no node serves slot {slot} of {key:?}"))
    }

    /// Every node as the cluster sees it now (`CLUSTER NODES`, asked of the first node that
    /// answers and is not [paused](ClusterNode::pause)).
    ///
    /// # Errors
    ///
    /// When no node answers.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::RedisCluster;
    ///
    /// let cluster = RedisCluster::start(3, 1).await?;
    /// let primaries = cluster.topology().await?.into_iter().filter(|n| n.primary_id.is_none()).count();
    /// assert_eq!(primaries, 3);
    /// # Ok(()) }
    /// ```
    pub async fn topology(&self) -> Result<Vec<NodeRole>, String> {
        let mut last = String::from("every node is paused");
        for node in self.nodes.iter().filter(|n| !n.is_paused()) {
            let text = match node.raw().await {
                Ok(mut raw) => raw.run(&["CLUSTER", "NODES"]).await,
                Err(e) => Err(e),
            };
            match text {
                Ok(text) => return Ok(parse_nodes(text.as_str().unwrap_or_default())),
                Err(e) => last = e,
            }
        }
        Err(format!("no node answered CLUSTER NODES: {last}"))
    }

    /// The address of a replica of the primary at `primary`.
    ///
    /// # Errors
    ///
    /// When no node answers, or the primary has no replica.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::RedisCluster;
    ///
    /// let cluster = RedisCluster::start(3, 1).await?;
    /// let primary = cluster.primary_of("jobs").await?;
    /// let replica = cluster.replica_of(&primary).await?;
    /// # Ok(()) }
    /// ```
    pub async fn replica_of(&self, primary: &str) -> Result<String, String> {
        let topology = self.topology().await?;
        let id = topology
            .iter()
            .find(|n| n.address == primary)
            .map(|n| n.id.clone())
            .ok_or_else(|| format!("no node at {primary}"))?;
        topology
            .into_iter()
            .find(|n| n.primary_id.as_deref() == Some(&id))
            .map(|n| n.address)
            .ok_or_else(|| format!("the primary at {primary} has no replica"))
    }

    /// The node at `address`.
    ///
    /// # Panics
    ///
    /// When no node of this cluster is at `address`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::RedisCluster;
    ///
    /// let cluster = RedisCluster::start(3, 1).await?;
    /// let primary = cluster.primary_of("jobs").await?;
    /// cluster.node(&primary).pause().await?;
    /// # Ok(()) }
    /// ```
    pub fn node(&self, address: &str) -> &ClusterNode {
        self.nodes
            .iter()
            .find(|n| n.address == address)
            .unwrap_or_else(|| panic!("no node of the cluster at {address}"))
    }

    /// Makes the replica at `replica` its primary's primary, as an operator does before
    /// maintenance (`CLUSTER FAILOVER`: the primary stops taking writes until the replica has
    /// them all, so nothing is lost), and waits until the replica says it is a primary.
    ///
    /// # Errors
    ///
    /// When the command fails, or the failover is not done within 20 s.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::RedisCluster;
    ///
    /// let cluster = RedisCluster::start(3, 1).await?;
    /// let primary = cluster.primary_of("jobs").await?;
    /// let replica = cluster.replica_of(&primary).await?;
    /// cluster.failover(&replica).await?;
    /// assert_eq!(cluster.primary_of("jobs").await?, replica);
    /// # Ok(()) }
    /// ```
    pub async fn failover(&self, replica: &str) -> Result<(), String> {
        let mut raw = self.node(replica).raw().await?;
        raw.run(&["CLUSTER", "FAILOVER"]).await?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let role = raw.run(&["ROLE"]).await?;
            if let Resp::Array(Some(items)) = &role
                && items.first().and_then(Resp::as_str) == Some("master")
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("{replica} is still not a primary: ROLE {role:?}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the primary at `primary` without warning, as a crash or a frozen machine would
    /// (its processes paused: it neither answers nor closes a connection), and waits until
    /// the cluster has failed it over: its replica says it is a primary and the other nodes
    /// name it for the slots. Nothing is synchronised first, unlike
    /// [`failover`](Self::failover): what the replica had not received is lost. The node stays
    /// paused until [`resume`](Self::resume); the address of the new primary is returned.
    ///
    /// # Errors
    ///
    /// When pausing fails, the primary has no replica, or the failover is not done within
    /// 60 s.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::RedisCluster;
    ///
    /// let cluster = RedisCluster::start(3, 1).await?;
    /// let primary = cluster.primary_of("jobs").await?;
    /// let promoted = cluster.stop_primary(&primary).await?;
    /// assert_eq!(cluster.primary_of("jobs").await?, promoted);
    /// cluster.resume(&primary).await?; // back as a replica of `promoted`
    /// # Ok(()) }
    /// ```
    pub async fn stop_primary(&self, primary: &str) -> Result<String, String> {
        let replica = self.replica_of(primary).await?;
        self.node(primary).pause().await?;
        let deadline = Instant::now() + STOPPED_FAILOVER;
        let mut raw = self.node(&replica).raw().await?;
        loop {
            let role = raw.run(&["ROLE"]).await?;
            let promoted = matches!(&role, Resp::Array(Some(items))
                if items.first().and_then(Resp::as_str) == Some("master"));
            // Every live node names it for the old primary's slots (the others learn of the
            // promotion by gossip, a little after the replica itself).
            if promoted && self.all_name_primary(primary, &replica).await {
                return Ok(replica);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{primary} stopped {STOPPED_FAILOVER:?} ago and {replica} is still not the \
                     primary of its slots: ROLE {role:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether every live node's `CLUSTER NODES` marks `old` as failed and `new` as a primary.
    async fn all_name_primary(&self, old: &str, new: &str) -> bool {
        for node in self.nodes.iter().filter(|n| !n.is_paused()) {
            let Ok(mut raw) = node.raw().await else {
                return false;
            };
            let Ok(text) = raw.run(&["CLUSTER", "NODES"]).await else {
                return false;
            };
            let view = parse_nodes(text.as_str().unwrap_or_default());
            let failed = view.iter().any(|n| n.address == old && n.failed);
            let primary = view
                .iter()
                .any(|n| n.address == new && n.primary_id.is_none());
            if !(failed && primary) {
                return false;
            }
        }
        true
    }

    /// Resumes the node at `address` paused by [`stop_primary`](Self::stop_primary) and waits
    /// until the cluster is whole again: it has rejoined as a replica of the primary that took
    /// its slots, in sync, and every node says the cluster is ok.
    ///
    /// # Errors
    ///
    /// When resuming fails, or the cluster is not whole within 30 s.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::RedisCluster;
    ///
    /// let cluster = RedisCluster::start(3, 1).await?;
    /// let primary = cluster.primary_of("jobs").await?;
    /// cluster.stop_primary(&primary).await?;
    /// cluster.resume(&primary).await?;
    /// # Ok(()) }
    /// ```
    pub async fn resume(&self, address: &str) -> Result<(), String> {
        self.node(address).unpause().await?;
        self.settled(Instant::now() + FORMING)
            .await
            .map_err(|e| format!("{address} resumed, but within {FORMING:?} {e}"))
    }

    /// Moves the hash slot of `key`, with every key in it, from the primary that serves it to
    /// the primary at `to`, as `redis-cli --cluster reshard` does: `IMPORTING` on the target,
    /// `MIGRATING` on the source, `MIGRATE` of the keys in batches, then the slot assigned to
    /// the target on every primary. Clients meanwhile get `ASK` and `TRYAGAIN`, for `pause`
    /// before the keys move and `pause` after (a migration of many keys takes that long): a
    /// client that sends a command of several keys of the slot in that time gets `TRYAGAIN`
    /// while some of them are on one node and the others on the other or nowhere.
    ///
    /// # Errors
    ///
    /// When a step fails.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use std::time::Duration;
    /// use conformance::redis_server::RedisCluster;
    ///
    /// let cluster = RedisCluster::start(3, 0).await?;
    /// let from = cluster.primary_of("jobs").await?;
    /// let to = cluster.node_urls().iter().map(|u| u.trim_start_matches("redis://").trim_end_matches('/').to_owned()).find(|a| *a != from).unwrap();
    /// cluster.move_slot("jobs", &to, Duration::from_millis(500)).await?;
    /// assert_eq!(cluster.primary_of("jobs").await?, to);
    /// # Ok(()) }
    /// ```
    pub async fn move_slot(&self, key: &str, to: &str, pause: Duration) -> Result<(), String> {
        let from = self.primary_of(key).await?;
        let topology = self.topology().await?;
        let id_of = |address: &str| {
            topology
                .iter()
                .find(|n| n.address == address)
                .map(|n| n.id.clone())
                .ok_or_else(|| format!("no node at {address}"))
        };
        let (from_id, to_id) = (id_of(&from)?, id_of(to)?);
        let mut source = self.node(&from).raw().await?;
        let mut target = self.node(to).raw().await?;
        let slot = source.int(&["CLUSTER", "KEYSLOT", key]).await?.to_string();
        target
            .run(&["CLUSTER", "SETSLOT", &slot, "IMPORTING", &from_id])
            .await?;
        source
            .run(&["CLUSTER", "SETSLOT", &slot, "MIGRATING", &to_id])
            .await?;
        let (host, port) = to
            .rsplit_once(':')
            .ok_or_else(|| format!("no port in {to}"))?;
        tokio::time::sleep(pause).await;
        loop {
            let keys = source
                .run(&["CLUSTER", "GETKEYSINSLOT", &slot, "100"])
                .await?;
            let Resp::Array(Some(keys)) = keys else {
                return Err(format!("GETKEYSINSLOT answered {keys:?}"));
            };
            if keys.is_empty() {
                break;
            }
            let keys: Vec<&str> = keys.iter().filter_map(Resp::as_str).collect();
            let mut migrate = vec!["MIGRATE", host, port, "", "0", "5000", "KEYS"];
            migrate.extend(keys);
            source.run(&migrate).await?;
        }
        tokio::time::sleep(pause).await;
        for node in &topology {
            if node.primary_id.is_none() {
                let mut raw = self.node(&node.address).raw().await?;
                raw.run(&["CLUSTER", "SETSLOT", &slot, "NODE", &to_id])
                    .await?;
            }
        }
        Ok(())
    }

    async fn form(&self, primaries: usize) -> Result<(), String> {
        if primaries < 3 {
            return Err(format!(
                "a cluster needs 3 primaries or more, not {primaries}"
            ));
        }
        let first = &self.nodes[0];
        let (host, port) = first
            .address
            .rsplit_once(':')
            .ok_or_else(|| format!("no port in {}", first.address))?;
        let mut ids = Vec::new();
        for node in &self.nodes {
            let mut raw = node.raw().await?;
            let id = raw.run(&["CLUSTER", "MYID"]).await?;
            ids.push(id.as_str().unwrap_or_default().to_owned());
            if node.address != first.address {
                raw.run(&["CLUSTER", "MEET", host, port]).await?;
            }
        }
        for (n, node) in self.nodes[..primaries].iter().enumerate() {
            let low = 16384 * n / primaries;
            let high = 16384 * (n + 1) / primaries - 1;
            let mut raw = node.raw().await?;
            raw.run(&[
                "CLUSTER",
                "ADDSLOTSRANGE",
                &low.to_string(),
                &high.to_string(),
            ])
            .await?;
        }
        let deadline = Instant::now() + FORMING;
        // A replica can replicate a primary only once it knows it.
        for (n, node) in self.nodes[primaries..].iter().enumerate() {
            let primary = &ids[n % primaries];
            let mut raw = node.raw().await?;
            loop {
                match raw.command(&["CLUSTER", "REPLICATE", primary]).await? {
                    Resp::Error(_) if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Resp::Error(e) => {
                        return Err(format!("CLUSTER REPLICATE on {}: {e}", node.address));
                    }
                    _ => break,
                }
            }
        }
        self.settled(deadline)
            .await
            .map_err(|e| format!("the cluster did not form within {FORMING:?}: {e}"))
    }

    /// Waits until every node says the cluster is ok, knows every node, and, for a replica,
    /// has its link to its primary up, or `deadline` passes.
    async fn settled(&self, deadline: Instant) -> Result<(), String> {
        loop {
            let mut waiting_for = None;
            for node in &self.nodes {
                if let Some(why) = node.not_ready(self.nodes.len()).await? {
                    waiting_for = Some(format!("{}: {why}", node.address));
                    break;
                }
            }
            match waiting_for {
                None => return Ok(()),
                Some(why) if Instant::now() >= deadline => {
                    return Err(format!("not every node is ready: {why}"));
                }
                Some(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

/// One node as `CLUSTER NODES` describes it.
///
/// # Examples
///
/// ```no_run
/// # async fn f() -> Result<(), String> {
/// use conformance::redis_server::RedisCluster;
///
/// let cluster = RedisCluster::start(3, 1).await?;
/// for node in cluster.topology().await? {
///     println!("{} {} primary of {:?}", node.id, node.address, node.primary_id);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeRole {
    /// Its node id.
    pub id: String,
    /// `host:port`.
    pub address: String,
    /// The id of its primary, for a replica; `None` for a primary.
    pub primary_id: Option<String>,
    /// Whether the others consider it failed.
    pub failed: bool,
}

fn parse_nodes(text: &str) -> Vec<NodeRole> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (id, address, flags, primary) = (
                fields.first()?,
                fields.get(1)?,
                fields.get(2)?,
                fields.get(3)?,
            );
            let address = address.split('@').next()?.to_owned();
            Some(NodeRole {
                id: (*id).to_owned(),
                address,
                primary_id: (*primary != "-").then(|| (*primary).to_owned()),
                failed: flags.split(',').any(|f| f == "fail" || f == "fail?"),
            })
        })
        .collect()
}

impl ClusterNode {
    /// `host:port`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::RedisCluster;
    ///
    /// let cluster = RedisCluster::start(3, 1).await?;
    /// let node = &cluster.nodes()[0];
    /// println!("{}", node.address()); // host:port
    /// # Ok(()) }
    /// ```
    pub fn address(&self) -> &str {
        &self.address
    }

    /// `redis://host:port/`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::RedisCluster;
    ///
    /// let cluster = RedisCluster::start(3, 1).await?;
    /// let node = &cluster.nodes()[0];
    /// assert!(node.url().starts_with("redis://"));
    /// # Ok(()) }
    /// ```
    pub fn url(&self) -> String {
        format!("redis://{}/", self.address)
    }

    /// A raw connection to this node.
    ///
    /// # Errors
    ///
    /// When it cannot connect.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::RedisCluster;
    ///
    /// let cluster = RedisCluster::start(3, 1).await?;
    /// let mut raw = cluster.nodes()[0].raw().await?;
    /// raw.run(&["CLUSTER", "INFO"]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn raw(&self) -> Result<RawRedis, String> {
        RawRedis::connect_to(&self.address).await
    }

    /// Stops the node (`SIGSTOP` of a container's processes, `docker pause`) until
    /// [`unpause`](Self::unpause): it neither answers nor fails a connection.
    ///
    /// # Errors
    ///
    /// When Docker or the signal fails.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::RedisCluster;
    ///
    /// let cluster = RedisCluster::start(3, 1).await?;
    /// let node = &cluster.nodes()[0];
    /// node.pause().await?;
    /// // ... it neither answers nor fails a connection ...
    /// node.unpause().await?;
    /// # Ok(()) }
    /// ```
    pub async fn pause(&self) -> Result<(), String> {
        match &self.running {
            Node::Container(c) => c.pause().await.map_err(|e| e.to_string())?,
            Node::Process(p) => p.signal("STOP")?,
        }
        self.paused.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Resumes a paused node.
    ///
    /// # Errors
    ///
    /// When Docker or the signal fails.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::RedisCluster;
    ///
    /// let cluster = RedisCluster::start(3, 1).await?;
    /// let node = &cluster.nodes()[0];
    /// node.pause().await?;
    /// node.unpause().await?;
    /// # Ok(()) }
    /// ```
    pub async fn unpause(&self) -> Result<(), String> {
        match &self.running {
            Node::Container(c) => c.unpause().await.map_err(|e| e.to_string())?,
            Node::Process(p) => p.signal("CONT")?,
        }
        self.paused.store(false, Ordering::Relaxed);
        Ok(())
    }

    /// Whether it is [paused](Self::pause) now.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::RedisCluster;
    ///
    /// let cluster = RedisCluster::start(3, 1).await?;
    /// let node = &cluster.nodes()[0];
    /// node.pause().await?;
    /// assert!(node.is_paused());
    /// # Ok(()) }
    /// ```
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    /// Why this node is not ready yet, or `None`.
    async fn not_ready(&self, count: usize) -> Result<Option<String>, String> {
        let mut raw = self.raw().await?;
        let info = raw.run(&["CLUSTER", "INFO"]).await?;
        let info = info.as_str().unwrap_or_default().to_owned();
        if !info.contains("cluster_state:ok") {
            return Ok(Some("cluster_state is not ok".to_owned()));
        }
        let known = info
            .lines()
            .find_map(|l| l.strip_prefix("cluster_known_nodes:"))
            .and_then(|n| n.trim().parse::<usize>().ok());
        if known != Some(count) {
            return Ok(Some(format!("knows {known:?} nodes of {count}")));
        }
        let replication = raw.run(&["INFO", "replication"]).await?;
        let replication = replication.as_str().unwrap_or_default();
        if replication.contains("role:slave") && !replication.contains("master_link_status:up") {
            return Ok(Some("its link to its primary is not up".to_owned()));
        }
        Ok(None)
    }
}

impl fmt::Debug for RedisCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCluster")
            .field("nodes", &self.nodes)
            .field("origin", &self.origin)
            .finish()
    }
}

impl fmt::Debug for ClusterNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterNode")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// What makes a server keep an append-only file, fsynced at every write.
const AOF_ARGS: [&str; 6] = [
    "--appendonly",
    "yes",
    "--appendfsync",
    "always",
    "--dir",
    "/data",
];

/// Containers of the image [`AOF_IMAGE_ENV`] names (a Redis with `WAITAOF`), and where they run.
fn aof_place() -> Result<(Place, String), String> {
    let image = std::env::var(AOF_IMAGE_ENV).unwrap_or_else(|_| DEFAULT_AOF_IMAGE.to_owned());
    image_on_this_machine(&image).map_err(|e| {
        format!(
            "WAITAOF needs Redis 7.2 or later, from the image {image}: {e} (build it with \
             `.ci/build-redis-image.sh --aof`, as scripts/test does)"
        )
    })?;
    let origin = format!("containers of {image} on Docker's bridge network");
    Ok((Place::Containers(image), origin))
}

/// Waits until a write of `key` on `primary` is fsynced to its append-only file and to its
/// `replicas` replicas' (`WAITAOF`). In sync is not enough: a replica that has just loaded its
/// primary's data rewrites its append-only file, and acknowledges no fsync until that is done.
async fn fsynced_on_replicas(
    primary: &ClusterNode,
    key: &str,
    replicas: usize,
) -> Result<(), String> {
    let mut raw = primary.raw().await?;
    let want = [Some(1), i64::try_from(replicas).ok()];
    let replicas = replicas.to_string();
    let deadline = Instant::now() + FORMING;
    loop {
        raw.run(&["SET", key, "1"]).await?;
        let answer = raw.run(&["WAITAOF", "1", &replicas, "1500"]).await?;
        if let Resp::Array(Some(counts)) = &answer
            && counts.iter().map(Resp::as_int).collect::<Vec<_>>() == want
        {
            break;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{} and its replicas did not fsync a write to their append-only files within \
                 {FORMING:?}: WAITAOF answered {answer:?}",
                primary.address
            ));
        }
    }
    raw.run(&["DEL", key]).await?;
    Ok(())
}

fn cluster_args() -> Vec<String> {
    let timeout = NODE_TIMEOUT.as_millis().to_string();
    [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        &timeout,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// Where a test's nodes run: containers of an image, or processes from `PATH`.
#[derive(Debug, Clone)]
enum Place {
    Containers(String),
    Processes,
}

impl Place {
    /// Containers of the local image if it is there, else processes (unless
    /// [`REQUIRE_DOCKER_ENV`] forbids it); and where they come from, for people.
    fn choose(what: &str) -> Result<(Place, String), String> {
        let image = std::env::var(IMAGE_ENV).unwrap_or_else(|_| DEFAULT_IMAGE.to_owned());
        match image_on_this_machine(&image) {
            Ok(()) => {
                let origin = format!("containers of {image} on Docker's bridge network");
                Ok((Place::Containers(image), origin))
            }
            Err(e) if std::env::var(REQUIRE_DOCKER_ENV).is_ok_and(|v| v == "1") => Err(format!(
                "cannot start {what} of containers of {image} ({e}), and \
                 {REQUIRE_DOCKER_ENV}=1 forbids falling back to redis-server"
            )),
            Err(e) => {
                log(&format!(
                    "no {what} of containers ({e}); falling back to redis-server from PATH"
                ));
                Ok((
                    Place::Processes,
                    "redis-server processes from PATH on loopback".to_owned(),
                ))
            }
        }
    }

    /// Starts a sentinel with `config` as its (writable) configuration file.
    async fn start_sentinel(&self, config: &str) -> Result<ClusterNode, String> {
        match self {
            Place::Containers(image) => {
                let cmd = ["/usr/bin/redis-server", "/data/sentinel.conf", "--sentinel"]
                    .into_iter()
                    .chain([
                        "--bind",
                        "0.0.0.0",
                        "--port",
                        "6379",
                        "--protected-mode",
                        "no",
                    ])
                    .map(str::to_owned)
                    .collect::<Vec<_>>();
                // A sentinel never says "Ready to accept connections".
                let ready = WaitFor::message_on_stdout("+monitor master");
                let config = ("/data/sentinel.conf", config.as_bytes().to_vec());
                container(image, cmd, ready, Some(config)).await
            }
            Place::Processes => {
                let dir = process::temp_dir("redis-sentinel")?;
                std::fs::write(dir.join("sentinel.conf"), config)
                    .map_err(|e| format!("writing sentinel.conf: {e}"))?;
                let args = ["sentinel.conf", "--sentinel", "--bind", "127.0.0.1"];
                let process = ServerProcess::start(dir, &args, "--port", Ready::Pong, "").await?;
                Ok(ClusterNode {
                    address: format!("127.0.0.1:{}", process.port()),
                    running: Node::Process(process),
                    paused: AtomicBool::new(false),
                })
            }
        }
    }

    /// Starts a node with `args` (besides those every test server has).
    async fn start(&self, args: &[String]) -> Result<ClusterNode, String> {
        let mut common: Vec<String> =
            ["--protected-mode", "no", "--save", "", "--appendonly", "no"]
                .map(str::to_owned)
                .to_vec();
        common.extend_from_slice(args);
        match self {
            Place::Containers(image) => {
                let mut cmd = vec!["/usr/bin/redis-server".to_owned()];
                cmd.extend(common);
                cmd.extend(["--bind", "0.0.0.0", "--port", "6379"].map(str::to_owned));
                let ready = WaitFor::message_on_stdout("Ready to accept connections");
                container(image, cmd, ready, None).await
            }
            Place::Processes => {
                let dir = process::temp_dir("redis-node")?;
                common.extend(["--bind".to_owned(), "127.0.0.1".to_owned()]);
                if common.iter().any(|a| a == "--cluster-enabled") {
                    // The cluster bus on a port of its own (by default the port + 10000, which
                    // may not exist or be free).
                    let bus = process::free_port()?;
                    common.extend(["--cluster-port".to_owned(), bus.to_string()]);
                }
                let args: Vec<&str> = common.iter().map(String::as_str).collect();
                let process = ServerProcess::start(dir, &args, "--port", Ready::Pong, "").await?;
                Ok(ClusterNode {
                    address: format!("127.0.0.1:{}", process.port()),
                    running: Node::Process(process),
                    paused: AtomicBool::new(false),
                })
            }
        }
    }
}

/// Starts a container of `image` running `cmd` on Docker's bridge network, ready once it
/// prints `ready`, with `file` (path, content) copied in first.
async fn container(
    image: &str,
    cmd: Vec<String>,
    ready: WaitFor,
    file: Option<(&str, Vec<u8>)>,
) -> Result<ClusterNode, String> {
    let (name, tag) = image.rsplit_once(':').unwrap_or((image, "latest"));
    let mut request = GenericImage::new(name, tag)
        .with_wait_for(ready)
        .with_cmd(cmd)
        .with_network("bridge")
        .with_startup_timeout(Duration::from_secs(30));
    if let Some((path, content)) = file {
        request = request.with_copy_to(path, content);
    }
    let container = request.start().await.map_err(|e| e.to_string())?;
    let ip = container
        .get_bridge_ip_address()
        .await
        .map_err(|e| e.to_string())?;
    let address = format!("{ip}:6379");
    answering(&address).await?;
    Ok(ClusterNode {
        address,
        running: Node::Container(Box::new(container)),
        paused: AtomicBool::new(false),
    })
}

/// How long a new container may stay unreachable from the host after it said it was ready.
const REACHABLE: Duration = Duration::from_secs(20);

/// Waits until the server at `address` answers `PING` from this host. A container that printed
/// its ready line can still be unreachable for a moment: CI saw "No route to host" for a new
/// container at a bridge address that another, just removed, had used (the host's neighbour
/// entry for it was stale).
async fn answering(address: &str) -> Result<(), String> {
    let deadline = Instant::now() + REACHABLE;
    loop {
        let attempt = async {
            let mut raw = RawRedis::connect_to(address).await?;
            raw.run(&["PING"]).await.map(drop)
        };
        match attempt.await {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!(
                    "{address} did not answer within {REACHABLE:?} of its start: {e}"
                ));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// A primary with one replica: real servers, for replica acknowledgement. Stopped when
/// dropped.
///
/// # Examples
///
/// ```no_run
/// # async fn f() -> Result<(), String> {
/// use conformance::redis_server::ReplicatedRedis;
///
/// let servers = ReplicatedRedis::start().await?;
/// servers.replica().pause().await?; // WAIT now times out
/// # Ok(()) }
/// ```
pub struct ReplicatedRedis {
    primary: ClusterNode,
    replica: ClusterNode,
}

impl ReplicatedRedis {
    /// Starts a primary and a replica of it, and waits until the replica is in sync.
    ///
    /// # Errors
    ///
    /// When no server can be started, or the replica does not sync within 30 s.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::ReplicatedRedis;
    ///
    /// let servers = ReplicatedRedis::start().await?;
    /// servers.replica().pause().await?; // WAIT now times out
    /// # Ok(()) }
    /// ```
    pub async fn start() -> Result<Self, String> {
        let (place, origin) = Place::choose("a primary and a replica")?;
        Self::start_on(place, &origin, &[]).await
    }

    /// As [`start`](ReplicatedRedis::start), with servers that can acknowledge by their
    /// append-only file (`WAITAOF`): containers of the image [`AOF_IMAGE_ENV`] names (default
    /// [`DEFAULT_AOF_IMAGE`], a Redis 7.2 or later), each with `appendonly yes` and
    /// `appendfsync always`.
    ///
    /// # Errors
    ///
    /// When the image is not on this machine (no fallback: Debian 12's `redis-server` lacks
    /// `WAITAOF`), or as [`start`](ReplicatedRedis::start).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::ReplicatedRedis;
    ///
    /// let servers = ReplicatedRedis::start_with_aof().await?;
    /// servers.replica().pause().await?; // WAITAOF now times out
    /// # Ok(()) }
    /// ```
    pub async fn start_with_aof() -> Result<Self, String> {
        let (place, origin) = aof_place()?;
        let servers = Self::start_on(place, &origin, &AOF_ARGS).await?;
        fsynced_on_replicas(&servers.primary, "process-lock-test:aof-ready", 1).await?;
        Ok(servers)
    }

    async fn start_on(place: Place, origin: &str, args: &[&str]) -> Result<Self, String> {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let primary = place.start(&args).await?;
        let (host, port) = primary
            .address
            .rsplit_once(':')
            .ok_or_else(|| format!("no port in {}", primary.address))?;
        let mut replica_args = args.clone();
        replica_args.extend(["--replicaof".to_owned(), host.to_owned(), port.to_owned()]);
        let replica = place.start(&replica_args).await?;
        let deadline = Instant::now() + FORMING;
        loop {
            let mut raw = replica.raw().await?;
            let info = raw.run(&["INFO", "replication"]).await?;
            if info
                .as_str()
                .unwrap_or_default()
                .contains("master_link_status:up")
            {
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the replica did not sync within {FORMING:?}: {info:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        log(&format!(
            "a primary at {} and its replica at {}, from {origin}",
            primary.address, replica.address
        ));
        Ok(ReplicatedRedis { primary, replica })
    }

    /// The primary's URL, `redis://host:port/`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::ReplicatedRedis;
    ///
    /// let servers = ReplicatedRedis::start().await?;
    /// let url = servers.url(); // the primary's
    /// # Ok(()) }
    /// ```
    pub fn url(&self) -> String {
        self.primary.url()
    }

    /// The primary.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::ReplicatedRedis;
    ///
    /// let servers = ReplicatedRedis::start().await?;
    /// let mut raw = servers.primary().raw().await?;
    /// raw.run(&["INFO", "replication"]).await?;
    /// # Ok(()) }
    /// ```
    pub fn primary(&self) -> &ClusterNode {
        &self.primary
    }

    /// The replica.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::ReplicatedRedis;
    ///
    /// let servers = ReplicatedRedis::start().await?;
    /// servers.replica().pause().await?;
    /// servers.replica().unpause().await?;
    /// # Ok(()) }
    /// ```
    pub fn replica(&self) -> &ClusterNode {
        &self.replica
    }
}

impl fmt::Debug for ReplicatedRedis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicatedRedis")
            .field("primary", &self.primary)
            .field("replica", &self.replica)
            .finish()
    }
}

/// The service name the sentinels of a [`RedisSentinel`] watch.
///
/// # Examples
///
/// ```
/// use conformance::redis_server::SENTINEL_SERVICE;
///
/// let url = format!("redis-sentinel://127.0.0.1:26379/0?sentinelServiceName={SENTINEL_SERVICE}");
/// ```
pub const SENTINEL_SERVICE: &str = "mymaster";

/// A primary with two replicas, watched by three sentinels (quorum 2, a primary is down after
/// 1 s): real servers, stopped when dropped.
///
/// # Examples
///
/// ```no_run
/// # async fn f() -> Result<(), String> {
/// use conformance::redis_server::RedisSentinel;
///
/// let sentinel = RedisSentinel::start().await?;
/// let before = sentinel.primary().await?;
/// sentinel.failover().await?;
/// assert_ne!(sentinel.primary().await?, before);
/// # Ok(()) }
/// ```
pub struct RedisSentinel {
    servers: Vec<ClusterNode>,
    sentinels: Vec<ClusterNode>,
}

impl RedisSentinel {
    /// Starts the servers and the sentinels, and waits until every sentinel knows the primary,
    /// both replicas and the other sentinels.
    ///
    /// # Errors
    ///
    /// When a server cannot be started, or the set does not settle within 30 s.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::RedisSentinel;
    ///
    /// let set = RedisSentinel::start().await?;
    /// assert_eq!(set.sentinels().len(), 3);
    /// # Ok(()) }
    /// ```
    pub async fn start() -> Result<Self, String> {
        let (place, origin) = Place::choose("a Sentinel set")?;
        let primary = place.start(&[]).await?;
        let (host, port) = primary
            .address
            .rsplit_once(':')
            .ok_or_else(|| format!("no port in {}", primary.address))?;
        let (host, port) = (host.to_owned(), port.to_owned());
        let mut servers = vec![primary];
        for _ in 0..2 {
            let args = ["--replicaof".to_owned(), host.clone(), port.clone()];
            servers.push(place.start(&args).await?);
        }
        let config = format!(
            "sentinel monitor {SENTINEL_SERVICE} {host} {port} 2\n\
             sentinel down-after-milliseconds {SENTINEL_SERVICE} 1000\n\
             sentinel failover-timeout {SENTINEL_SERVICE} 5000\n\
             sentinel parallel-syncs {SENTINEL_SERVICE} 1\n"
        );
        let mut sentinels = Vec::new();
        for _ in 0..3 {
            sentinels.push(place.start_sentinel(&config).await?);
        }
        let set = RedisSentinel { servers, sentinels };
        let deadline = Instant::now() + FORMING;
        loop {
            match set.not_settled().await {
                Ok(None) => break,
                Ok(Some(why)) | Err(why) if Instant::now() >= deadline => {
                    return Err(format!(
                        "the Sentinel set did not settle within {FORMING:?}: {why}"
                    ));
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        log(&format!(
            "a primary, 2 replicas and 3 sentinels from {origin}: {}",
            set.url()
        ));
        Ok(set)
    }

    /// The URL of the set, in the form `fred` reads: every sentinel a seed,
    /// `redis-sentinel://host:port/0?sentinelServiceName=mymaster&node=host:port&...`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::RedisSentinel;
    ///
    /// let set = RedisSentinel::start().await?;
    /// let url = set.url(); // redis-sentinel://...?sentinelServiceName=mymaster&node=...
    /// # Ok(()) }
    /// ```
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self.sentinels[1..]
            .iter()
            .map(|n| format!("&node={}", n.address))
            .collect();
        format!(
            "redis-sentinel://{}/0?sentinelServiceName={SENTINEL_SERVICE}{}",
            self.sentinels[0].address,
            nodes.concat()
        )
    }

    /// The data servers: the first primary, then its two replicas.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::RedisSentinel;
    ///
    /// let set = RedisSentinel::start().await?;
    /// assert_eq!(set.servers().len(), 3); // a primary and two replicas
    /// # Ok(()) }
    /// ```
    pub fn servers(&self) -> &[ClusterNode] {
        &self.servers
    }

    /// The sentinels.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::RedisSentinel;
    ///
    /// let set = RedisSentinel::start().await?;
    /// for sentinel in set.sentinels() {
    ///     println!("{}", sentinel.address());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn sentinels(&self) -> &[ClusterNode] {
        &self.sentinels
    }

    /// The server at `address`.
    ///
    /// # Panics
    ///
    /// When no server of the set is there.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::RedisSentinel;
    ///
    /// let set = RedisSentinel::start().await?;
    /// let primary = set.primary().await?;
    /// let mut raw = set.server(&primary).raw().await?;
    /// # Ok(()) }
    /// ```
    pub fn server(&self, address: &str) -> &ClusterNode {
        self.servers
            .iter()
            .find(|n| n.address == address)
            .unwrap_or_else(|| panic!("no server of the set at {address}"))
    }

    /// The primary's address as the first sentinel that answers says.
    ///
    /// # Errors
    ///
    /// When no sentinel answers.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::RedisSentinel;
    ///
    /// let set = RedisSentinel::start().await?;
    /// let primary = set.primary().await?; // host:port, as the sentinels name it
    /// # Ok(()) }
    /// ```
    pub async fn primary(&self) -> Result<String, String> {
        let mut last = String::new();
        for sentinel in &self.sentinels {
            let answer = match sentinel.raw().await {
                Ok(mut raw) => {
                    raw.run(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", SENTINEL_SERVICE])
                        .await
                }
                Err(e) => Err(e),
            };
            match answer {
                Ok(Resp::Array(Some(items))) if items.len() == 2 => {
                    let host = items[0].as_str().unwrap_or_default();
                    let port = items[1].as_str().unwrap_or_default();
                    return Ok(format!("{host}:{port}"));
                }
                Ok(other) => last = format!("{other:?}"),
                Err(e) => last = e,
            }
        }
        Err(format!("no sentinel named the primary: {last}"))
    }

    /// Has the sentinels fail the primary over to a replica (`SENTINEL FAILOVER`) once both
    /// replicas have all it wrote, and waits until the failover is over: every sentinel names
    /// the new primary, which says it is one, and the old primary says it is a replica.
    ///
    /// # Errors
    ///
    /// When the command fails, or the failover is not done within 90 s.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::RedisSentinel;
    ///
    /// let set = RedisSentinel::start().await?;
    /// let before = set.primary().await?;
    /// set.failover().await?;
    /// assert_ne!(set.primary().await?, before);
    /// # Ok(()) }
    /// ```
    pub async fn failover(&self) -> Result<(), String> {
        let before = self.primary().await?;
        let deadline = Instant::now() + FAILING_OVER;
        self.in_sync(&before, deadline).await?;
        let mut raw = self.sentinels[0].raw().await?;
        // The last failover may still be settling (its replicas being reconfigured, and
        // syncing with the new primary).
        loop {
            match raw
                .command(&["SENTINEL", "FAILOVER", SENTINEL_SERVICE])
                .await?
            {
                Resp::Error(e)
                    if (e.starts_with("INPROG") || e.starts_with("NOGOODSLAVE"))
                        && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Resp::Error(e) => return Err(format!("SENTINEL FAILOVER: {e}")),
                _ => break,
            }
        }
        // Done once every sentinel names the new primary, it says it is one, and the old one
        // says it is a replica: until then a client may still be sent to the old primary,
        // which takes writes that the failover then loses.
        loop {
            let now = self.primary().await?;
            if now != before
                && self.all_name(&now).await
                && self.role_of(&now).await.as_deref() == Some("master")
                && self.role_of(&before).await.as_deref() == Some("slave")
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("no failover from {before} within {FAILING_OVER:?}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the primary without warning, as a crash or a frozen machine would (its processes
    /// paused: it neither answers nor closes a connection), once both replicas have all it
    /// wrote, and waits until the sentinels have failed it over: every one names a replica
    /// the primary, and that replica says it is one. The old primary stays paused until
    /// [`resume`](Self::resume). Returns the old primary's address and the new one's.
    ///
    /// # Errors
    ///
    /// When pausing fails, or the failover is not done within 90 s.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::RedisSentinel;
    ///
    /// let set = RedisSentinel::start().await?;
    /// let (old, new) = set.stop_primary().await?;
    /// assert_eq!(set.primary().await?, new);
    /// set.resume(&old).await?; // back as a replica of `new`
    /// # Ok(()) }
    /// ```
    pub async fn stop_primary(&self) -> Result<(String, String), String> {
        let before = self.primary().await?;
        let deadline = Instant::now() + FAILING_OVER;
        self.in_sync(&before, deadline).await?;
        self.server(&before).pause().await?;
        loop {
            let now = self.primary().await?;
            if now != before
                && self.all_name(&now).await
                && self.role_of(&now).await.as_deref() == Some("master")
            {
                return Ok((before, now));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{before} stopped {FAILING_OVER:?} ago and the sentinels still name {now}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Resumes the old primary at `address` stopped by [`stop_primary`](Self::stop_primary)
    /// and waits until the sentinels have made it a replica of the new primary, in sync with
    /// it.
    ///
    /// # Errors
    ///
    /// When resuming fails, or that is not done within 90 s.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), String> {
    /// use conformance::redis_server::RedisSentinel;
    ///
    /// let set = RedisSentinel::start().await?;
    /// let (old, _) = set.stop_primary().await?;
    /// set.resume(&old).await?;
    /// # Ok(()) }
    /// ```
    pub async fn resume(&self, address: &str) -> Result<(), String> {
        self.server(address).unpause().await?;
        let deadline = Instant::now() + FAILING_OVER;
        while self.role_of(address).await.as_deref() != Some("slave") {
            if Instant::now() >= deadline {
                return Err(format!(
                    "{address} resumed, and is still not a replica after {FAILING_OVER:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let primary = self.primary().await?;
        self.in_sync(&primary, deadline).await
    }

    /// Whether every sentinel names `primary` the primary.
    async fn all_name(&self, primary: &str) -> bool {
        for sentinel in &self.sentinels {
            let Ok(mut raw) = sentinel.raw().await else {
                return false;
            };
            let named = raw
                .run(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", SENTINEL_SERVICE])
                .await;
            let Ok(Resp::Array(Some(items))) = named else {
                return false;
            };
            let address = format!(
                "{}:{}",
                items.first().and_then(Resp::as_str).unwrap_or_default(),
                items.get(1).and_then(Resp::as_str).unwrap_or_default()
            );
            if address != primary {
                return false;
            }
        }
        true
    }

    /// What the server at `address` says it is (`master`, `slave`), if it answers.
    async fn role_of(&self, address: &str) -> Option<String> {
        let mut raw = self.server(address).raw().await.ok()?;
        match raw.run(&["ROLE"]).await.ok()? {
            Resp::Array(Some(items)) => items.first().and_then(Resp::as_str).map(str::to_owned),
            _ => None,
        }
    }

    /// Waits until both replicas of the primary at `primary` are online and have everything it
    /// wrote (their offset is its own), as a planned failover would.
    async fn in_sync(&self, primary: &str, deadline: Instant) -> Result<(), String> {
        let mut raw = self.server(primary).raw().await?;
        loop {
            let info = raw.run(&["INFO", "replication"]).await?;
            let info = info.as_str().unwrap_or_default().to_owned();
            let offset = info
                .lines()
                .find_map(|l| l.strip_prefix("master_repl_offset:"))
                .map(str::trim);
            let replicas: Vec<&str> = info.lines().filter(|l| l.starts_with("slave")).collect();
            let synced = replicas.len() == 2
                && replicas.iter().all(|r| {
                    r.contains("state=online")
                        && offset.is_some_and(|o| r.contains(&format!("offset={o},")))
                });
            if synced {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("the replicas of {primary} are not in sync: {info}"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Why the set has not settled yet, or `None`.
    async fn not_settled(&self) -> Result<Option<String>, String> {
        for sentinel in &self.sentinels {
            let mut raw = sentinel.raw().await?;
            let master = raw.run(&["SENTINEL", "MASTER", SENTINEL_SERVICE]).await?;
            let Resp::Array(Some(fields)) = master else {
                return Ok(Some(format!("{}: no master yet", sentinel.address)));
            };
            let field = |name: &str| {
                fields
                    .chunks(2)
                    .find(|kv| kv[0].as_str() == Some(name))
                    .and_then(|kv| kv[1].as_str().map(str::to_owned))
            };
            let replicas = field("num-slaves").unwrap_or_default();
            let others = field("num-other-sentinels").unwrap_or_default();
            if replicas != "2" || others != "2" {
                return Ok(Some(format!(
                    "{} knows {replicas} replicas and {others} other sentinels",
                    sentinel.address
                )));
            }
        }
        Ok(None)
    }
}

impl fmt::Debug for RedisSentinel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSentinel")
            .field("servers", &self.servers)
            .field("sentinels", &self.sentinels)
            .finish()
    }
}
