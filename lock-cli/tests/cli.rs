//! The `process-lock` binary, run as a real process against a real Redis server (see
//! `conformance::redis_server` for where the server comes from).
//!
//! Programs under the lock are `sh -c` scripts that leave traces in files of a temporary
//! directory: the tests wait for those files (events), never for a fixed time, and bound every
//! wait generously so that a loaded machine slows them down without failing them.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use conformance::redis_server::{RawRedis, RedisServer};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// The longest any awaited event may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(60);

/// A Redis server and a scratch directory for one test.
struct Setup {
    server: RedisServer,
    dir: PathBuf,
}

impl Setup {
    async fn start() -> Setup {
        let server = RedisServer::start().await.expect("a Redis server");
        Setup {
            server,
            dir: scratch_dir(),
        }
    }

    fn url(&self) -> &str {
        self.server.url()
    }

    /// A path in the scratch directory.
    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `process-lock ARGS...` against this test's server, not started yet.
    fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = process_lock(args);
        command.env("REDIS_URL", self.url());
        command
    }

    /// Runs `process-lock ARGS...` to completion.
    async fn output<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        finish(self.command(args)).await
    }

    /// Starts `process-lock ARGS...` in the background.
    fn spawn<I, S>(&self, args: I) -> Child
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command(args).spawn().expect("process-lock starts")
    }

    async fn raw(&self) -> RawRedis {
        RawRedis::connect(self.url())
            .await
            .expect("a raw connection")
    }

    /// A fresh lock name, on a server that looks up for a day to it (see
    /// [`set_server_start`]).
    async fn name(&self, test: &str) -> String {
        let name = lock_name(test);
        let day_ago = now_ns() / 1_000_000 - 86_400_000;
        set_server_start(&mut self.raw().await, &name, day_ago).await;
        name
    }
}

/// Makes the server look as if it started at `start_ms` (milliseconds since the epoch) to the
/// lock `name`: the delayed restart rule refuses a free lock on a server that started less
/// than a TTL ago, which every server the tests start did. The scripts keep the server's start
/// in `process_lock::raw::redis::keys::boot_key`, one per hash slot.
async fn set_server_start(raw: &mut RawRedis, name: &str, start_ms: u128) {
    let boot = process_lock::raw::redis::keys::boot_key("", name);
    raw.run(&["SET", &boot, &start_ms.to_string()])
        .await
        .expect("setting the server's start");
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The binary under test, with a clean environment of its own: no REDIS_URL and no lock
/// variables inherited from the test's environment, stdin closed, output captured.
fn process_lock<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(env!("CARGO_BIN_EXE_process-lock"));
    command
        .args(args)
        .env_remove("REDIS_URL")
        .env_remove("PROCESS_LOCK_NAME")
        .env_remove("PROCESS_LOCK_TOKEN")
        .env_remove("PROCESS_LOCK_FENCE")
        .env_remove("PROCESS_LOCK_TTL_MS")
        // The tests' servers are new: the delayed restart rule would hold every first lock back
        // for its TTL (the fault suite checks the rule).
        .env("PROCESS_LOCK_RESTART_DELAY", "0s")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

async fn finish(mut command: Command) -> Output {
    let output = command.output();
    tokio::time::timeout(PATIENCE, output)
        .await
        .expect("process-lock finished in time")
        .expect("process-lock ran")
}

/// Waits for `child` to exit and returns its status, stdout and stderr.
async fn wait_output(child: Child) -> Output {
    tokio::time::timeout(PATIENCE, child.wait_with_output())
        .await
        .expect("process-lock exited in time")
        .expect("waiting for process-lock")
}

fn code(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| panic!("process-lock was killed: {status}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A fresh, empty directory for one test.
fn scratch_dir() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "process-lock-cli-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

/// A lock name no other test (or earlier run on a shared server) uses.
fn lock_name(test: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "cli-test:{test}:{}:{}:{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        now_ns()
    )
}

/// The wall clock in nanoseconds since the epoch, as `date +%s%N` prints it.
fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_nanos()
}

/// Waits until `path` exists and is not empty, and returns its content.
async fn wait_for_file(path: &Path) -> String {
    let waiting = async {
        loop {
            if let Ok(content) = std::fs::read_to_string(path)
                && !content.is_empty()
            {
                return content;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(PATIENCE, waiting)
        .await
        .unwrap_or_else(|_| panic!("{} never appeared", path.display()))
}

/// Waits until `count` processes wait for the lock `name` (are queued for it).
async fn wait_for_waiters(setup: &Setup, name: &str, count: i64) {
    let queue = process_lock::raw::redis::keys::queue_key(name);
    let mut raw = setup.raw().await;
    let waiting = async {
        loop {
            if raw.int(&["ZCARD", &queue]).await.unwrap() >= count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(PATIENCE, waiting)
        .await
        .unwrap_or_else(|_| panic!("{count} waiters never came for {name}"));
}

/// Sends `signal` to `child`.
fn signal(child: &Child, signal: Signal) {
    let pid = child.id().expect("the process is running");
    kill(Pid::from_raw(i32::try_from(pid).unwrap()), signal).expect("sending the signal");
}

/// Asserts that `output` failed with `expected` and said why in one `process-lock:` line.
fn assert_one_line_failure(output: &Output, expected: i32, says: &str) {
    let stderr = text(&output.stderr);
    assert_eq!(code(output.status), expected, "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "not one line: {stderr:?}");
    assert!(lines[0].starts_with("process-lock: "), "{stderr:?}");
    assert!(lines[0].contains(says), "{stderr:?} does not say {says:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A script that appends `start TAG NS` and `end TAG NS` to `log` around a short piece of
/// work: `sh -c SCRIPT sh TAG`.
fn recording_script(log: &Path) -> String {
    let log = log.display();
    format!(
        "echo \"start $1 $(date +%s%N)\" >> '{log}'; sleep 1; echo \"end $1 $(date +%s%N)\" >> '{log}'"
    )
}

/// `(tag, start ns, end ns)` of each run in `log`, by start.
fn intervals(log: &str) -> Vec<(String, u128, u128)> {
    let mut starts = std::collections::HashMap::new();
    let mut runs = Vec::new();
    for line in log.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [event, tag, ns] = parts[..] else {
            panic!("a bad line in the log: {line:?}")
        };
        let ns: u128 = ns.parse().expect("date +%s%N");
        match event {
            "start" => {
                starts.insert(tag.to_owned(), ns);
            }
            "end" => {
                let start = starts.remove(tag).expect("a start before the end");
                runs.push((tag.to_owned(), start, ns));
            }
            _ => panic!("a bad line in the log: {line:?}"),
        }
    }
    assert!(starts.is_empty(), "runs that never ended: {starts:?}");
    runs.sort_by_key(|run| run.1);
    runs
}

/// Requirement 1: programs run under one name never overlap, and a waiter starts right after
/// the holder ends (woken by the release, not by the TTL, which is 30 s). The three runs use
/// both backends, which exclude each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_on_one_name_never_overlap_and_hand_over_at_once() {
    let setup = Setup::start().await;
    let name = setup.name("overlap").await;
    let log = setup.file("log");
    let script = recording_script(&log);
    let backends = ["redis-rs", "fred", "redis-rs"];
    let children: Vec<Child> = backends
        .iter()
        .enumerate()
        .map(|(i, backend)| {
            let tag = format!("{backend}-{i}");
            setup.spawn([
                "--backend",
                backend,
                "run",
                "--name",
                &name,
                "--wait",
                "--",
                "sh",
                "-c",
                &script,
                "sh",
                &tag,
            ])
        })
        .collect();
    for child in children {
        let output = wait_output(child).await;
        assert_eq!(code(output.status), 0, "{}", text(&output.stderr));
    }
    let runs = intervals(&std::fs::read_to_string(&log).unwrap());
    assert_eq!(runs.len(), 3, "{runs:?}");
    for pair in runs.windows(2) {
        let ((first, _, ended), (second, started, _)) = (&pair[0], &pair[1]);
        assert!(
            started > ended,
            "{second} started at {started}, before {first} ended at {ended}: {runs:?}"
        );
        let gap = Duration::from_nanos(u64::try_from(started - ended).unwrap());
        eprintln!("{second} started {gap:?} after {first} ended");
        assert!(
            gap < Duration::from_secs(1),
            "{second} started {gap:?} after {first} ended: {runs:?}"
        );
    }
    assert_eq!(
        setup.output(["status", &name]).await.stdout,
        format!("{name}: open\n").into_bytes(),
        "every run released the lock"
    );
}

/// Requirement 2: when the holder's process-lock is killed with SIGKILL, it cannot release;
/// a waiter gets the lock once the TTL runs out, and not before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_gets_the_lock_of_a_killed_holder_when_its_ttl_runs_out() {
    let setup = Setup::start().await;
    let name = setup.name("killed").await;
    let (holder_pid, waiter_started) = (setup.file("holder.pid"), setup.file("waiter.started"));
    let mut holder = setup.spawn([
        "run",
        "--name",
        &name,
        "--ttl",
        "2s",
        "--",
        "sh",
        "-c",
        &format!("echo $$ > '{}'; exec sleep 120", holder_pid.display()),
    ]);
    let orphan: i32 = wait_for_file(&holder_pid).await.trim().parse().unwrap();
    let waiter = setup.spawn([
        "run",
        "--name",
        &name,
        "--ttl",
        "2s",
        "--wait",
        "--",
        "sh",
        "-c",
        &format!("date +%s%N > '{}'", waiter_started.display()),
    ]);

    // The waiter is waiting (subscribed to the lock's releases) before the holder dies.
    wait_for_waiters(&setup, &name, 1).await;
    signal(&holder, Signal::SIGKILL);
    // Not `wait_output`: the orphaned program keeps process-lock's stdout and stderr open.
    let killed = tokio::time::timeout(PATIENCE, holder.wait())
        .await
        .expect("the holder died in time")
        .unwrap();
    assert!(killed.code().is_none(), "{killed:?}");
    // Until when the killed holder's last renewal keeps the key.
    let before = now_ns();
    let pttl = setup.raw().await.int(&["PTTL", &name]).await.unwrap();
    assert!(
        pttl > 0,
        "the lock outlives its holder, until it expires: {pttl}"
    );
    let expires_at = before + u128::try_from(pttl).unwrap() * 1_000_000;

    let output = wait_output(waiter).await;
    assert_eq!(code(output.status), 0, "{}", text(&output.stderr));
    let started: u128 = std::fs::read_to_string(&waiter_started)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    eprintln!(
        "the waiter started {} ms after the lock expired",
        i128::try_from(started).unwrap() / 1_000_000
            - i128::try_from(expires_at).unwrap() / 1_000_000
    );
    // The key's expiry, on the same clock, give or take a few milliseconds of measurement.
    let slack = 20_000_000;
    assert!(
        started + slack >= expires_at,
        "the waiter started {} ms before the killed holder's lock expired",
        (expires_at - started) / 1_000_000
    );
    assert!(
        started < expires_at + 2_000_000_000,
        "the waiter started {} ms after the killed holder's lock expired",
        (started - expires_at) / 1_000_000
    );
    // Hygiene: the killed holder's program was orphaned.
    let _ = kill(Pid::from_raw(orphan), Signal::SIGKILL);
}

/// Requirement 3: a lock deleted under a running program is lost: the program gets SIGTERM
/// (and, exiting on it, no SIGKILL), and process-lock exits 70.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_lock_stops_the_program_with_sigterm() {
    let setup = Setup::start().await;
    let name = setup.name("deleted").await;
    let (ready, marker) = (setup.file("ready"), setup.file("marker"));
    let script = format!(
        "trap 'echo TERM > \"{}\"; exit 0' TERM; echo up > '{}'; while :; do sleep 0.1; done",
        marker.display(),
        ready.display()
    );
    let child = setup.spawn([
        "run", "--name", &name, "--ttl", "1s", "--grace", "30s", "--", "sh", "-c", &script,
    ]);
    wait_for_file(&ready).await;
    assert_eq!(setup.raw().await.int(&["DEL", &name]).await.unwrap(), 1);
    let deleted = tokio::time::Instant::now();

    let output = wait_output(child).await;
    assert_eq!(code(output.status), 70, "{}", text(&output.stderr));
    assert!(
        deleted.elapsed() < Duration::from_secs(30),
        "the program exited on SIGTERM, within the grace period"
    );
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "TERM\n");
    let stderr = text(&output.stderr);
    assert!(stderr.contains("lost"), "{stderr}");
    assert!(
        stderr.lines().last().unwrap().starts_with("process-lock: "),
        "{stderr}"
    );
}

/// Requirement 3: a lock taken over by another owner is lost; a program that ignores SIGTERM
/// gets SIGKILL once the grace period is over, and process-lock exits 70.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_ignoring_sigterm_gets_sigkill_after_the_grace_period() {
    let setup = Setup::start().await;
    let name = setup.name("taken-over").await;
    let (ready, marker) = (setup.file("ready"), setup.file("marker"));
    // The trap records SIGTERM and carries on.
    let script = format!(
        "trap 'echo TERM >> \"{}\"' TERM; echo up > '{}'; while :; do sleep 0.1; done",
        marker.display(),
        ready.display()
    );
    let child = setup.spawn([
        "run", "--name", &name, "--ttl", "1s", "--grace", "1s", "--", "sh", "-c", &script,
    ]);
    wait_for_file(&ready).await;
    setup
        .raw()
        .await
        .run(&["SET", &name, "someone-else", "PX", "60000"])
        .await
        .unwrap();
    let taken = tokio::time::Instant::now();

    wait_for_file(&marker).await;
    let output = wait_output(child).await;
    assert_eq!(code(output.status), 70, "{}", text(&output.stderr));
    assert!(
        taken.elapsed() >= Duration::from_secs(1),
        "SIGKILL came only after the grace period"
    );
    let stderr = text(&output.stderr);
    assert!(stderr.contains("SIGKILL"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "TERM\n",
        "one SIGTERM first"
    );
    assert_eq!(
        setup.raw().await.get(&name).await.unwrap().as_deref(),
        Some("someone-else"),
        "the new owner's lock was left alone"
    );
}

/// Requirement 4: SIGINT and SIGTERM sent to process-lock reach the program, whose exit code
/// process-lock then passes through, after releasing the lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_and_sigterm_are_forwarded_to_the_program() {
    let setup = Setup::start().await;
    for (sig, exit) in [(Signal::SIGINT, 5), (Signal::SIGTERM, 6)] {
        let name = setup.name("forwarded").await;
        let (ready, marker) = (
            setup.file(&format!("ready-{sig}")),
            setup.file(&format!("marker-{sig}")),
        );
        let trapped = sig.as_str().trim_start_matches("SIG");
        let script = format!(
            "trap 'echo {trapped} > \"{}\"; exit {exit}' {trapped}; echo up > '{}'; \
             while :; do sleep 0.1; done",
            marker.display(),
            ready.display()
        );
        let child = setup.spawn(["run", "--name", &name, "--", "sh", "-c", &script]);
        wait_for_file(&ready).await;
        signal(&child, sig);
        let output = wait_output(child).await;
        assert_eq!(code(output.status), exit, "{sig}: {}", text(&output.stderr));
        assert_eq!(
            std::fs::read_to_string(&marker).unwrap(),
            format!("{trapped}\n")
        );
        assert_eq!(
            setup.output(["status", &name]).await.stdout,
            format!("{name}: open\n").into_bytes(),
            "{sig}: the lock was released"
        );
    }
}

/// Requirement 4: the program's exit code (or 128 + its signal) passes through, and its
/// environment names the lock, its fencing token, owner token and TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_pass_through_and_the_environment_describes_the_lock() {
    let setup = Setup::start().await;
    let name = setup.name("env").await;
    for (script, expected) in [
        ("exit 0", 0),
        ("exit 7", 7),
        ("exit 255", 255),
        ("kill -TERM $$", 143),
    ] {
        let output = setup
            .output(["run", "--name", &name, "--", "sh", "-c", script])
            .await;
        assert_eq!(
            code(output.status),
            expected,
            "{script}: {}",
            text(&output.stderr)
        );
        assert!(
            output.stderr.is_empty(),
            "{script}: {}",
            text(&output.stderr)
        );
    }

    let print = "echo \"name=$PROCESS_LOCK_NAME\"; echo \"fence=$PROCESS_LOCK_FENCE\"; \
                 echo \"token=$PROCESS_LOCK_TOKEN\"; echo \"ttl=$PROCESS_LOCK_TTL_MS\"";
    let mut fences = Vec::new();
    for _ in 0..2 {
        let output = setup
            .output([
                "run", "--name", &name, "--ttl", "1m30s", "--", "sh", "-c", print,
            ])
            .await;
        assert_eq!(code(output.status), 0, "{}", text(&output.stderr));
        let stdout = text(&output.stdout);
        let vars: std::collections::HashMap<&str, &str> = stdout
            .lines()
            .filter_map(|line| line.split_once('='))
            .collect();
        assert_eq!(vars["name"], name);
        assert_eq!(vars["ttl"], "90000");
        assert_eq!(vars["token"].len(), 32, "{stdout}");
        assert!(
            vars["token"].chars().all(|c| c.is_ascii_hexdigit()),
            "{stdout}"
        );
        fences.push(
            vars["fence"]
                .parse::<u64>()
                .expect("a numeric fencing token"),
        );
    }
    assert!(fences[1] > fences[0], "fencing tokens increase: {fences:?}");
}

/// Requirement 4: `status` (plain and --json) and the three outcomes of `clear`, each with its
/// exit code, including a clear with the owner token a program gets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_clear_report_each_outcome() {
    let setup = Setup::start().await;
    let name = setup.name("status").await;

    let open = setup.output(["status", &name, "--json"]).await;
    assert_eq!(code(open.status), 0);
    assert_eq!(
        text(&open.stdout),
        format!("{{\"name\":\"{name}\",\"state\":\"open\",\"remaining_ms\":null}}\n")
    );
    let missing = setup.output(["clear", &name]).await;
    assert_eq!(code(missing.status), 3, "{}", text(&missing.stderr));
    assert_eq!(text(&missing.stdout), format!("{name}: did not exist\n"));

    // A holder that shows its owner token.
    let token_file = setup.file("token");
    let holder = setup.spawn([
        "run",
        "--name",
        &name,
        "--ttl",
        "20s",
        "--",
        "sh",
        "-c",
        &format!(
            "echo \"$PROCESS_LOCK_TOKEN\" > '{}'; while :; do sleep 0.1; done",
            token_file.display()
        ),
    ]);
    let token = wait_for_file(&token_file).await.trim().to_owned();

    let locked = setup.output(["status", &name, "--json"]).await;
    assert_eq!(code(locked.status), 0);
    let json = text(&locked.stdout);
    let prefix = format!("{{\"name\":\"{name}\",\"state\":\"locked\",\"remaining_ms\":");
    let remaining: u64 = json
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix("}\n"))
        .unwrap_or_else(|| panic!("{json}"))
        .parse()
        .unwrap();
    assert!(remaining > 0 && remaining <= 20_000, "{json}");
    let plain = text(&setup.output(["status", &name]).await.stdout);
    assert!(
        plain.starts_with(&format!("{name}: locked, expires in ")),
        "{plain}"
    );

    for args in [
        vec!["clear", &name],
        vec!["clear", &name, "--token", "not-the-owner"],
    ] {
        let not_owner = setup.output(&args).await;
        assert_eq!(
            code(not_owner.status),
            1,
            "{args:?}: {}",
            text(&not_owner.stderr)
        );
    }
    let json = setup.output(["clear", &name, "--json"]).await;
    assert_eq!(code(json.status), 1);
    assert_eq!(
        text(&json.stdout),
        format!("{{\"name\":\"{name}\",\"outcome\":\"not_owner\"}}\n")
    );

    let cleared = setup.output(["clear", &name, "--token", &token]).await;
    assert_eq!(code(cleared.status), 0, "{}", text(&cleared.stderr));
    assert_eq!(text(&cleared.stdout), format!("{name}: cleared\n"));
    // The holder finds its lock gone: it stops its program and says so.
    let lost = wait_output(holder).await;
    assert_eq!(code(lost.status), 70, "{}", text(&lost.stderr));

    // --force clears whoever holds it.
    setup
        .raw()
        .await
        .run(&["SET", &name, "someone", "PX", "60000"])
        .await
        .unwrap();
    let forced = setup.output(["clear", &name, "--force", "--json"]).await;
    assert_eq!(code(forced.status), 0, "{}", text(&forced.stderr));
    assert_eq!(
        text(&forced.stdout),
        format!("{{\"name\":\"{name}\",\"outcome\":\"cleared\"}}\n")
    );
    let quiet = setup.output(["-q", "clear", &name, "--force"]).await;
    assert_eq!(code(quiet.status), 3);
    assert!(quiet.stdout.is_empty());
}

/// Requirement 4: a held lock without --wait exits 75 at once, and so does a wait that times
/// out; the program never runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_lock_exits_75_without_running_the_program() {
    let setup = Setup::start().await;
    let name = setup.name("held").await;
    setup
        .raw()
        .await
        .run(&["SET", &name, "someone", "PX", "60000"])
        .await
        .unwrap();
    let ran = setup.file("ran");
    let program = format!("touch '{}'", ran.display());

    let output = setup
        .output(["run", "--name", &name, "--", "sh", "-c", &program])
        .await;
    assert_one_line_failure(&output, 75, "held by another owner");

    let started = tokio::time::Instant::now();
    let output = setup
        .output([
            "run",
            "--name",
            &name,
            "--wait",
            "--timeout",
            "500ms",
            "--",
            "sh",
            "-c",
            &program,
        ])
        .await;
    assert_one_line_failure(&output, 75, "still held after waiting 500ms");
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert!(!ran.exists(), "the program ran without the lock");
}

/// Requirement 4: bad input, a missing or malformed URL and an unreachable server each give
/// one line and their own exit code; so does a program that cannot be run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gives_one_line_and_its_exit_code() {
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "--name", "job"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "true"]);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let reachable_nowhere = "redis://127.0.0.1:1/";
    let cases: Vec<(Vec<String>, Option<&str>, i32, &str)> = vec![
        (
            run(&["--ttl", "3x"]),
            Some(reachable_nowhere),
            64,
            "--ttl: invalid duration \"3x\"",
        ),
        (
            run(&["--ttl", "30"]),
            Some(reachable_nowhere),
            64,
            "needs a unit",
        ),
        (
            run(&["--grace", "soon"]),
            Some(reachable_nowhere),
            64,
            "--grace",
        ),
        (
            run(&["--wait", "--timeout", "1y"]),
            Some(reachable_nowhere),
            64,
            "--timeout",
        ),
        (run(&["--ttl", "0s"]), Some(reachable_nowhere), 64, "zero"),
        (
            run(&["--ttl", "1ms"]),
            Some(reachable_nowhere),
            64,
            "--ttl: a TTL of 1ms is too short to renew; use at least 100ms",
        ),
        (
            run(&["--ttl", "0.099s"]),
            Some(reachable_nowhere),
            64,
            "a TTL of 99ms is too short",
        ),
        // The floor itself is fine: the error is the unreachable server's.
        (
            run(&["--ttl", "100ms"]),
            Some(reachable_nowhere),
            69,
            "connecting to Redis",
        ),
        (run(&[]), None, 78, "REDIS_URL"),
        (run(&[]), Some(""), 78, "REDIS_URL"),
        (run(&[]), Some("not a url"), 78, "invalid Redis URL"),
        (run(&[]), Some(reachable_nowhere), 69, "connecting to Redis"),
        (
            vec![
                "--backend".into(),
                "fred".into(),
                "status".into(),
                "job".into(),
            ],
            Some(reachable_nowhere),
            69,
            "connecting to Redis",
        ),
        (
            vec![
                "--connect-timeout".into(),
                "fast".into(),
                "status".into(),
                "job".into(),
            ],
            Some(reachable_nowhere),
            64,
            "--connect-timeout",
        ),
        (
            vec!["status".into(), String::new()],
            Some(reachable_nowhere),
            64,
            "lock name",
        ),
    ];
    for (args, url, expected, says) in cases {
        let mut command = process_lock(&args);
        if let Some(url) = url {
            command.env("REDIS_URL", url);
        }
        let output = finish(command).await;
        assert_one_line_failure(&output, expected, says);
    }

    // A password in the URL is never shown.
    let mut command = process_lock(["status", "job"]);
    command.env("REDIS_URL", "redis://user:hunter2@127.0.0.1:1/");
    let output = finish(command).await;
    assert_one_line_failure(&output, 69, "user:***@");
    assert!(!text(&output.stderr).contains("hunter2"));

    // Usage errors are clap's, with code 2.
    let output = finish(process_lock(["run", "--name", "job"])).await;
    assert_eq!(code(output.status), 2, "{}", text(&output.stderr));

    // A program that cannot be run, once the lock is taken.
    let setup = Setup::start().await;
    let name = setup.name("no-program").await;
    let missing = setup
        .output(["run", "--name", &name, "--", "/nonexistent/program"])
        .await;
    assert_one_line_failure(&missing, 127, "cannot run /nonexistent/program");
    let not_executable = setup.file("not-executable");
    std::fs::write(&not_executable, "#!/bin/sh\n").unwrap();
    let denied = setup
        .output([
            OsStr::new("run"),
            OsStr::new("--name"),
            OsStr::new(&name),
            OsStr::new("--"),
            not_executable.as_os_str(),
        ])
        .await;
    assert_one_line_failure(&denied, 126, "cannot run");
    assert_eq!(
        setup.output(["status", &name]).await.stdout,
        format!("{name}: open\n").into_bytes(),
        "the lock was released"
    );
}

/// The help of every command (`-h` is `--help`).
const HELPS: [&[&str]; 4] = [
    &["--help"],
    &["run", "--help"],
    &["clear", "-h"],
    &["status", "--help"],
];

/// The help `args` print, which must exit 0.
async fn help(args: &[&str]) -> String {
    let output = finish(process_lock(args)).await;
    assert_eq!(code(output.status), 0);
    text(&output.stdout)
}

/// Every exit code is documented in `--help`, for every command.
#[tokio::test]
async fn help_documents_the_exit_codes() {
    for args in HELPS {
        let help = help(args).await;
        for code in [
            "0", "1", "2", "3", "64", "69", "70", "71", "75", "76", "77", "78", "126", "127",
            "128+N",
        ] {
            assert!(
                help.lines()
                    .any(|line| line.trim_start().starts_with(&format!("{code} "))),
                "{args:?}: exit code {code} is not documented:\n{help}"
            );
        }
    }
}

/// Waits for the pid `path` holds.
async fn pid_in(path: &Path) -> Pid {
    let text = wait_for_file(path).await;
    Pid::from_raw(text.trim().parse().expect("a pid"))
}

/// Whether `pid` is a running process (not gone, and not a zombie waiting to be reaped).
fn is_running(pid: Pid) -> bool {
    if kill(pid, None).is_err() {
        return false;
    }
    // The state follows the command name, which is in parentheses.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => !Path::new("/proc/self").exists(),
    }
}

/// Whether no process (not even a zombie) is left in the process group `pgid`.
fn group_is_empty(pgid: Pid) -> bool {
    nix::sys::signal::killpg(pgid, None) == Err(nix::errno::Errno::ESRCH)
}

/// Asserts that none of `pids` runs and that the process group `pgid` is empty; kills what is
/// left, so that a failing test leaves nothing behind either.
fn assert_all_gone(what: &str, pgid: Pid, pids: &[Pid]) {
    let running: Vec<Pid> = pids
        .iter()
        .copied()
        .filter(|&pid| is_running(pid))
        .collect();
    let empty = group_is_empty(pgid);
    if !running.is_empty() || !empty {
        let _ = nix::sys::signal::killpg(pgid, Signal::SIGKILL);
        for &pid in pids {
            let _ = kill(pid, Signal::SIGKILL);
        }
    }
    assert!(running.is_empty(), "{what}: still running: {running:?}");
    assert!(
        empty,
        "{what}: the program's process group {pgid} is not empty"
    );
}

/// The program's group stops as a whole: a forwarded SIGTERM (or SIGHUP) reaches a command
/// the program started in the background too, and a forwarded SIGINT, which such a command
/// ignores (`sh` starts background commands with SIGINT ignored), ends the program, whose
/// leftover gets SIGTERM from process-lock. Nothing of the group survives process-lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_signal_stops_the_whole_process_group() {
    let setup = Setup::start().await;
    for (sig, expected, leftover) in [
        (Signal::SIGTERM, 143, false),
        (Signal::SIGHUP, 129, false),
        (Signal::SIGINT, 130, true),
    ] {
        let name = setup.name("group-signal").await;
        let (main_pid, bg_pid) = (
            setup.file(&format!("main-{sig}.pid")),
            setup.file(&format!("bg-{sig}.pid")),
        );
        let script = format!(
            "sleep 300 & echo $! > '{}'; echo $$ > '{}'; sleep 300",
            bg_pid.display(),
            main_pid.display()
        );
        let child = setup.spawn(["run", "--name", &name, "--", "sh", "-c", &script]);
        let (main, background) = (pid_in(&main_pid).await, pid_in(&bg_pid).await);
        assert!(is_running(background));
        signal(&child, sig);
        let output = wait_output(child).await;
        let stderr = text(&output.stderr);
        assert_eq!(code(output.status), expected, "{sig}: {stderr}");
        assert_all_gone(sig.as_str(), main, &[main, background]);
        assert_eq!(
            stderr.contains("processes it started are still running"),
            leftover,
            "{sig}: {stderr}"
        );
        assert_eq!(
            setup.output(["status", &name]).await.stdout,
            format!("{name}: open\n").into_bytes(),
            "{sig}: the lock was released"
        );
    }
}

/// A program that exits leaving a command running in the background: the leftover gets
/// SIGTERM, then (ignoring it) SIGKILL after --grace; only then is the lock released, and
/// process-lock exits with the program's code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_left_behind_by_the_program_are_stopped_before_the_release() {
    let setup = Setup::start().await;
    for ignores_sigterm in [false, true] {
        let name = setup.name("leftover").await;
        let (main_pid, bg_pid) = (
            setup.file(&format!("main-{ignores_sigterm}.pid")),
            setup.file(&format!("bg-{ignores_sigterm}.pid")),
        );
        let trap = if ignores_sigterm {
            "trap '' TERM; "
        } else {
            ""
        };
        let script = format!(
            "sh -c \"{trap}exec sleep 300\" & echo $! > '{}'; echo $$ > '{}'; \
             while [ ! -s '{}' ]; do sleep 0.05; done; exit 3",
            bg_pid.display(),
            main_pid.display(),
            bg_pid.display(),
        );
        let started = tokio::time::Instant::now();
        let output = setup
            .output([
                "run", "--name", &name, "--grace", "1s", "--", "sh", "-c", &script,
            ])
            .await;
        let stderr = text(&output.stderr);
        assert_eq!(code(output.status), 3, "{stderr}");
        let (main, background) = (pid_in(&main_pid).await, pid_in(&bg_pid).await);
        assert_all_gone("leftover", main, &[main, background]);
        assert!(
            stderr.contains("processes it started are still running"),
            "{stderr}"
        );
        if ignores_sigterm {
            assert!(
                started.elapsed() >= Duration::from_secs(1),
                "SIGKILL came only after the grace period"
            );
        }
        assert_eq!(
            setup.output(["status", &name]).await.stdout,
            format!("{name}: open\n").into_bytes(),
            "the lock was released"
        );
    }
}

/// A lost lock stops the whole group: the program (trapping SIGTERM and carrying on) and a
/// command it started that ignores SIGTERM both get SIGKILL once --grace is over, and
/// nothing of the group survives; process-lock exits 70.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_lock_stops_the_whole_group_with_sigkill_after_the_grace_period() {
    let setup = Setup::start().await;
    let name = setup.name("lost-group").await;
    let (main_pid, bg_pid, marker) = (
        setup.file("main.pid"),
        setup.file("bg.pid"),
        setup.file("marker"),
    );
    let script = format!(
        "sh -c \"trap '' TERM; exec sleep 300\" & echo $! > '{}'; \
         trap 'echo TERM >> \"{}\"' TERM; echo $$ > '{}'; while :; do sleep 0.1; done",
        bg_pid.display(),
        marker.display(),
        main_pid.display(),
    );
    let child = setup.spawn([
        "run", "--name", &name, "--ttl", "1s", "--grace", "1s", "--", "sh", "-c", &script,
    ]);
    let (main, background) = (pid_in(&main_pid).await, pid_in(&bg_pid).await);
    setup
        .raw()
        .await
        .run(&["SET", &name, "someone-else", "PX", "60000"])
        .await
        .unwrap();
    let taken = tokio::time::Instant::now();

    wait_for_file(&marker).await;
    assert!(
        is_running(background),
        "the background command ignores SIGTERM"
    );
    let output = wait_output(child).await;
    let stderr = text(&output.stderr);
    assert_eq!(code(output.status), 70, "{stderr}");
    assert!(
        taken.elapsed() >= Duration::from_secs(1),
        "SIGKILL came only after the grace period"
    );
    assert!(stderr.contains("SIGKILL"), "{stderr}");
    assert_all_gone("lost", main, &[main, background]);
    assert_eq!(
        setup.raw().await.get(&name).await.unwrap().as_deref(),
        Some("someone-else"),
        "the new owner's lock was left alone"
    );
}

/// A Redis user whose ACL refuses the commands process-lock runs (here `EVALSHA` and `EVAL`)
/// gets exit 77 (`EX_NOPERM`), with one line that says so, on both backends; a wrong password
/// is 78.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acl_that_refuses_the_scripts_exits_77() {
    let server = RedisServer::start_own().await.expect("a Redis server");
    let mut raw = RawRedis::connect(server.url()).await.unwrap();
    raw.run(&[
        "ACL", "SETUSER", "noscript", "on", ">pw", "~*", "&*", "+@all", "-evalsha", "-eval",
    ])
    .await
    .unwrap();
    let as_user = |user: &str, password: &str| {
        server
            .url()
            .replacen("redis://", &format!("redis://{user}:{password}@"), 1)
    };
    let name = lock_name("noperm");
    for backend in ["redis-rs", "fred"] {
        for (args, url, expected) in [
            (
                vec!["run", "--name", &name, "--", "true"],
                as_user("noscript", "pw"),
                77,
            ),
            (
                vec!["clear", &name, "--force"],
                as_user("noscript", "pw"),
                77,
            ),
            (vec!["status", &name], as_user("noscript", "wrong"), 78),
        ] {
            let mut command = process_lock(["--backend", backend]);
            command.args(&args).env("REDIS_URL", &url);
            let output = finish(command).await;
            let stderr = text(&output.stderr);
            assert_eq!(
                code(output.status),
                expected,
                "{backend} {args:?}: {stderr}"
            );
            assert!(stderr.starts_with("process-lock: "), "{stderr}");
            assert!(!stderr.contains(":pw@"), "a password was shown: {stderr}");
            if expected == 77 {
                assert!(
                    stderr.contains("NOPERM") || stderr.contains("permission"),
                    "{backend} {args:?}: {stderr}"
                );
            }
        }
    }
}

/// A Redis user that may not `PUBLISH` still releases and clears (exit 0), and process-lock
/// says on stderr that waiters in other processes were not notified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_that_cannot_notify_says_so() {
    let setup = Setup::start().await;
    let mut raw = setup.raw().await;
    raw.run(&[
        "ACL",
        "SETUSER",
        "nopublish",
        "on",
        ">pw",
        "~*",
        "&*",
        "+@all",
        "-publish",
    ])
    .await
    .unwrap();
    let url = setup.url().replacen("redis://", "redis://nopublish:pw@", 1);
    for backend in ["redis-rs", "fred"] {
        let name = setup.name("no-publish").await;
        let mut run = process_lock(["--backend", backend, "run", "--name", &name, "--", "true"]);
        run.env("REDIS_URL", &url);
        let output = finish(run).await;
        let stderr = text(&output.stderr);
        assert_eq!(code(output.status), 0, "{backend}: {stderr}");
        assert!(stderr.contains("not notified"), "{backend}: {stderr:?}");
        assert!(!stderr.contains("expires"), "{backend}: {stderr:?}");
        assert_eq!(raw.int(&["EXISTS", &name]).await.unwrap(), 0, "{backend}");

        raw.run(&["SET", &name, "someone", "PX", "60000"])
            .await
            .unwrap();
        let mut clear = process_lock(["--backend", backend, "clear", &name, "--force"]);
        clear.env("REDIS_URL", &url);
        let output = finish(clear).await;
        let stderr = text(&output.stderr);
        assert_eq!(code(output.status), 0, "{backend}: {stderr}");
        assert_eq!(text(&output.stdout), format!("{name}: cleared\n"));
        assert!(stderr.contains("not notified"), "{backend}: {stderr:?}");
        assert_eq!(raw.int(&["EXISTS", &name]).await.unwrap(), 0, "{backend}");
    }
}

/// A name with a newline and an escape sequence is printed escaped in plain text (one line,
/// no control character), and as JSON with --json.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_are_printed_escaped() {
    let setup = Setup::start().await;
    let name = setup.name("esc\nforged: open\x1b[2J\x1b[31m").await;
    let escaped = name.replace('\n', "\\n").replace('\x1b', "\\u{1b}");
    let no_control = |what: &str, bytes: &[u8]| {
        let text = text(bytes);
        assert!(
            !text.trim_end_matches('\n').chars().any(char::is_control),
            "{what}: {text:?}"
        );
    };

    let status = setup.output(["status", &name]).await;
    assert_eq!(code(status.status), 0, "{}", text(&status.stderr));
    assert_eq!(text(&status.stdout), format!("{escaped}: open\n"));
    no_control("status", &status.stdout);

    let json = setup.output(["status", &name, "--json"]).await;
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(value["name"], name.as_str());
    no_control("status --json", &json.stdout);

    let clear = setup.output(["clear", &name]).await;
    assert_eq!(code(clear.status), 3);
    assert_eq!(text(&clear.stdout), format!("{escaped}: did not exist\n"));

    // Held by someone else: the one-line failure names it escaped, too.
    setup
        .raw()
        .await
        .run(&["SET", &name, "someone", "PX", "60000"])
        .await
        .unwrap();
    let held = setup.output(["run", "--name", &name, "--", "true"]).await;
    assert_one_line_failure(&held, 75, "held by another owner");
    no_control("run", &held.stderr);
    let locked = setup.output(["status", &name]).await;
    assert!(
        text(&locked.stdout).starts_with(&format!("{escaped}: locked, expires in ")),
        "{}",
        text(&locked.stdout)
    );
}

/// A free lock on a server that (to the lock) started less than the restart delay ago is not
/// granted (the delayed restart rule): without --wait, run exits 75 saying that the server
/// restarted, not that another process holds the lock. The delay is the TTL by default, or
/// --restart-delay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_not_granted_after_a_restart_says_so() {
    let setup = Setup::start().await;
    let ran = setup.file("ran");
    for (extra, says) in [
        (&[][..], "restarted less than 1h00m (the TTL) ago"),
        (
            &["--restart-delay", "2h"][..],
            "restarted less than 2h00m (--restart-delay) ago",
        ),
    ] {
        let name = lock_name("restarted");
        let now_ms = now_ns() / 1_000_000;
        set_server_start(&mut setup.raw().await, &name, now_ms).await;
        let mut command = setup.command(extra);
        command
            .args(["run", "--name", &name, "--ttl", "1h", "--", "touch"])
            .arg(&ran)
            // The rule at its default, whatever `process_lock` sets for the other tests.
            .env_remove("PROCESS_LOCK_RESTART_DELAY");
        let output = finish(command).await;
        assert_one_line_failure(&output, 75, says);
        assert!(
            !text(&output.stderr).contains("held by another"),
            "{}",
            text(&output.stderr)
        );
        assert!(!ran.exists(), "the program ran");
    }
}

/// The long options of `text`: every `--word` in it.
fn long_options(text: &str) -> std::collections::BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|word| {
            word.len() > 2 && word.starts_with("--") && word.as_bytes()[2].is_ascii_lowercase()
        })
        .map(str::to_owned)
        .collect()
}

/// `--help` and the README say the same: every option a command's `--help` lists is in the
/// README, and every option the README names is in some command's `--help`.
#[tokio::test]
async fn help_and_readme_name_the_same_options() {
    let readme = long_options(include_str!("../README.md"));
    let mut helped = std::collections::BTreeSet::new();
    for args in HELPS {
        helped.extend(long_options(&help(args).await));
    }
    // clap's own; `--full` is an argument of the example program, `--path` one of cargo's.
    let not_ours = ["--help", "--version", "--full", "--path"];
    let missing: Vec<_> = helped
        .iter()
        .filter(|o| !readme.contains(*o) && !not_ours.contains(&o.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "in --help, not in the README: {missing:?}"
    );
    let unknown: Vec<_> = readme
        .iter()
        .filter(|o| !helped.contains(*o) && !not_ours.contains(&o.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "in the README, in no --help: {unknown:?}"
    );
}
