//! The command on other topologies than one server, as separate processes: a Redis Cluster
//! (`redis-cluster://` URLs), and a primary with a replica (`--wait-replicas`), with each
//! backend compiled in.

use std::ffi::OsStr;
use std::process::{Output, Stdio};
use std::time::Duration;

use conformance::redis_server::{RawRedis, RedisCluster, RedisServer, ReplicatedRedis};
use tokio::process::Command;

const PATIENCE: Duration = Duration::from_secs(60);

/// The backends this build has.
fn backends() -> Vec<&'static str> {
    let mut backends = Vec::new();
    if cfg!(feature = "redis-rs") {
        backends.push("redis-rs");
    }
    if cfg!(feature = "fred") {
        backends.push("fred");
    }
    assert!(
        !backends.is_empty(),
        "the command is built without a backend"
    );
    backends
}

async fn process_lock<I, S>(url: &str, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(env!("CARGO_BIN_EXE_process-lock"));
    command
        .args(args)
        .env("REDIS_URL", url)
        .env("PROCESS_LOCK_RESTART_DELAY", "0s")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    tokio::time::timeout(PATIENCE, command.output())
        .await
        .expect("process-lock finished in time")
        .expect("process-lock ran")
}

fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

fn say(output: &Output) -> String {
    format!(
        "exit {:?}, stdout {:?}, stderr {:?}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `--backend backend`, then `extra`.
fn with_backend(backend: &str, extra: &[&str]) -> Vec<String> {
    ["--backend", backend]
        .iter()
        .chain(extra)
        .map(|arg| (*arg).to_owned())
        .collect()
}

/// Starts a process that holds `name` for 2 s; returns once another sees it locked.
async fn a_holder(url: &str, backend: &str, name: &str) -> tokio::task::JoinHandle<Output> {
    let holder_args = with_backend(backend, &["run", "--name", name, "--", "sleep", "2"]);
    let holder = tokio::spawn({
        let url = url.to_owned();
        async move { process_lock(&url, holder_args).await }
    });
    for _ in 0..100 {
        let status = process_lock(url, with_backend(backend, &["status", name])).await;
        if String::from_utf8_lossy(&status.stdout).contains("locked") {
            return holder;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{backend}: the holder never held the lock");
}

/// With `holder` holding `name`: a waiting process gets it once the holder is done, the
/// holder exits 0, and the lock is open again.
async fn a_waiter_follows(
    url: &str,
    backend: &str,
    name: &str,
    holder: tokio::task::JoinHandle<Output>,
) {
    let wait = [
        "run",
        "--name",
        name,
        "--wait",
        "--timeout",
        "30s",
        "--",
        "true",
    ];
    let waited = process_lock(url, with_backend(backend, &wait)).await;
    assert_eq!(code(&waited), 0, "{backend}: {}", say(&waited));
    let held = holder.await.unwrap();
    assert_eq!(code(&held), 0, "{backend}: {}", say(&held));
    let status = process_lock(url, with_backend(backend, &["status", name])).await;
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("open"),
        "{backend}: {}",
        say(&status)
    );
}

/// On a cluster, one process holds a lock while another is refused it (75) and a third sees
/// it locked; once the first is done, the lock is open, and a waiting process gets it.
#[tokio::test(flavor = "multi_thread")]
async fn the_command_works_on_a_cluster() {
    let cluster = RedisCluster::start(3, 0).await.expect("a Redis Cluster");
    let url = cluster.url();
    for backend in backends() {
        let name = format!("cli-cluster-{backend}-{}", std::process::id());
        let holder = a_holder(&url, backend, &name).await;
        let refuse = ["run", "--name", &name, "--", "true"];
        let refused = process_lock(&url, with_backend(backend, &refuse)).await;
        assert_eq!(code(&refused), 75, "{backend}: {}", say(&refused));
        a_waiter_follows(&url, backend, &name, holder).await;
    }
}

/// `--wait-replicas 1`: with the replica running, `run` runs the program; with it paused, it
/// exits 69 within the replica timeout and leaves the lock open.
#[tokio::test(flavor = "multi_thread")]
async fn wait_replicas_refuses_a_lock_no_replica_acknowledged() {
    let servers = ReplicatedRedis::start()
        .await
        .expect("a primary and a replica");
    let url = servers.url();
    for backend in backends() {
        let name = format!("cli-replicas-{backend}-{}", std::process::id());
        let run = [
            "--backend",
            backend,
            "--wait-replicas",
            "1",
            "--replica-timeout",
            "200ms",
            "run",
            "--name",
            &name,
            "--",
            "true",
        ];
        let ran = process_lock(&url, run).await;
        assert_eq!(code(&ran), 0, "{backend}: {}", say(&ran));
        servers.replica().pause().await.unwrap();
        let refused = process_lock(&url, run).await;
        servers.replica().unpause().await.unwrap();
        assert_eq!(code(&refused), 69, "{backend}: {}", say(&refused));
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("replica"),
            "{backend}: {}",
            say(&refused)
        );
        let status = process_lock(&url, ["--backend", backend, "status", &name]).await;
        assert!(
            String::from_utf8_lossy(&status.stdout).contains("open"),
            "{backend}: {}",
            say(&status)
        );
    }
}

/// Redlock from the command, as separate processes: with three servers (in `REDIS_URL`,
/// separated by commas, or `--redis-url` given three times), one process holds a lock (its key
/// on a majority of the servers) while another is refused it (75) and a third sees it
/// locked; a waiting process gets it once the first is done. With one server gone, the
/// command still works on the other two; with two gone, it fails with the servers' error
/// (exit 69) and says how many did not answer.
#[tokio::test(flavor = "multi_thread")]
async fn the_command_runs_redlock_over_several_servers() {
    let mut servers = Vec::new();
    for _ in 0..3 {
        servers.push(RedisServer::start_own().await.expect("a Redis server"));
    }
    let urls: Vec<String> = servers.iter().map(|s| s.url().to_owned()).collect();
    let list = urls.join(",");
    for backend in backends() {
        let name = format!("cli-redlock-{backend}-{}", std::process::id());
        let holder = a_holder(&list, backend, &name).await;
        let mut holding = 0;
        for url in &urls {
            let mut raw = RawRedis::connect(url).await.unwrap();
            if raw.get(&name).await.unwrap().is_some() {
                holding += 1;
            }
        }
        assert!(
            holding >= 2,
            "{backend}: the key is on {holding} of 3 servers"
        );
        // The URLs as repeated options this time (REDIS_URL is ignored then).
        let mut refuse = Vec::new();
        for url in &urls {
            refuse.extend(["--redis-url", url.as_str()]);
        }
        refuse.extend(["run", "--name", &name, "--", "true"]);
        let refused = process_lock("redis://127.0.0.1:1/", with_backend(backend, &refuse)).await;
        assert_eq!(code(&refused), 75, "{backend}: {}", say(&refused));
        a_waiter_follows(&list, backend, &name, holder).await;
    }
    // One server gone: the other two are a majority.
    drop(servers.pop());
    for backend in backends() {
        let name = format!("cli-redlock-down-{backend}-{}", std::process::id());
        let ran = process_lock(
            &list,
            ["--backend", backend, "run", "--name", &name, "--", "true"],
        )
        .await;
        assert_eq!(code(&ran), 0, "{backend}: {}", say(&ran));
    }
    // Two gone: no majority.
    drop(servers.pop());
    for backend in backends() {
        let name = format!("cli-redlock-gone-{backend}-{}", std::process::id());
        let failed = process_lock(
            &list,
            ["--backend", backend, "run", "--name", &name, "--", "true"],
        )
        .await;
        assert_ne!(code(&failed), 0, "{backend}: {}", say(&failed));
        assert!(
            String::from_utf8_lossy(&failed.stderr).contains("2 of 3 nodes"),
            "{backend}: {}",
            say(&failed)
        );
    }
}
