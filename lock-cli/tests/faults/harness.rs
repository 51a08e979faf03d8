//! The machinery of the fault suite: `redis-server` processes the suite owns (on fixed loopback
//! ports, so that they can be stopped, killed and started again on the same port), the
//! `process-lock` binary run as real processes, a critical section that records itself in a
//! log, and the checks on that log.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use conformance::redis_server::{RawRedis, Resp};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

/// The backends compiled into the binary under test: each scenario runs on every one.
pub(crate) const BACKENDS: &[&str] = &[
    #[cfg(feature = "redis-rs")]
    "redis-rs",
    #[cfg(feature = "fred")]
    "fred",
];

/// How long a `process-lock` process may take to exit before the test gives up on it.
pub(crate) const WITHIN: Duration = Duration::from_secs(45);

/// How long the test waits for an event it caused (a program starting, a waiter subscribing).
const PATIENCE: Duration = Duration::from_secs(30);

/// One millisecond, in nanoseconds (the unit of every timestamp here).
pub(crate) const MS: u128 = 1_000_000;

/// The wall clock in nanoseconds since the epoch, as `date +%s%N` prints it.
pub(crate) fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_nanos()
}

/// `later - earlier` in milliseconds, signed (for messages and bounds).
pub(crate) fn ms_between(earlier: u128, later: u128) -> i64 {
    let difference = i128::try_from(later).unwrap() - i128::try_from(earlier).unwrap();
    i64::try_from(difference / 1_000_000).unwrap()
}

/// A fresh, empty directory.
fn scratch(label: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "process-lock-faults-{label}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

// ---------------------------------------------------------------------------------------------
// Servers.

/// Fails the test, loudly, when `redis-server` is not on `PATH`: the suite never skips.
fn require_redis_server() {
    static CHECKED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let checked = CHECKED.get_or_init(|| {
        match std::process::Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
        {
            Ok(status) if status.success() => Ok(()),
            Ok(status) => Err(format!("`redis-server --version` exited with {status}")),
            Err(e) => Err(format!("cannot run redis-server: {e}")),
        }
    });
    if let Err(e) = checked {
        panic!(
            "the fault suite needs `redis-server` on PATH, since it starts, stops, kills and \
             restarts servers of its own ({e}); install it (Debian/Ubuntu: apt-get install \
             redis-server)"
        );
    }
}

/// A port to try for a new server: below the kernel's ephemeral range, so that a client's own
/// outgoing connection can never take the port of a server that is down (and so that a client
/// reconnecting to a dead port cannot connect to itself).
fn candidate_port() -> u16 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(32768)
        .clamp(12_000, 65_000);
    let (low, span) = (10_000, ephemeral_low - 10_000);
    let seed = u64::from(std::process::id()).wrapping_mul(7919)
        ^ u64::try_from(now_ns() % 1_000_003).unwrap()
        ^ NEXT.fetch_add(1, Ordering::Relaxed).wrapping_mul(104_729);
    u16::try_from(low + seed % span).unwrap()
}

/// A `redis-server` of the suite's own, on 127.0.0.1, without persistence (`--save ''
/// --appendonly no`), so that a restart loses every key. Killed when dropped.
pub(crate) struct Server {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Server {
    /// Starts a server on a free port.
    pub(crate) async fn start() -> Server {
        require_redis_server();
        let dir = scratch("redis");
        let mut errors = Vec::new();
        for _ in 0..20 {
            let port = candidate_port();
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
                continue;
            }
            match spawn_server(port, &dir).await {
                Ok(child) => {
                    return Server {
                        port,
                        dir,
                        child: Some(child),
                    };
                }
                Err(e) => errors.push(e),
            }
        }
        panic!("cannot start a redis-server: {errors:?}");
    }

    /// The server's URL, for the default user.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The server's URL for `user` with `password`.
    pub(crate) fn url_as(&self, user: &str, password: &str) -> String {
        format!("redis://{user}:{password}@127.0.0.1:{}/", self.port)
    }

    /// A connection as the default user, for the test to play administrator.
    pub(crate) async fn raw(&self) -> RawRedis {
        RawRedis::connect_to(&format!("127.0.0.1:{}", self.port))
            .await
            .unwrap_or_else(|e| panic!("an admin connection: {e}"))
    }

    /// Runs one command as the default user; an error reply fails the test.
    pub(crate) async fn admin(&self, args: &[&str]) -> Resp {
        self.raw()
            .await
            .run(args)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Makes the server look as if it had been up for a day to the lock `name` (the restart
    /// delay rule refuses a free lock on a server that started less than a TTL ago, which
    /// every server the suite starts did): writes a start time a day ago into the key the
    /// scripts keep the server's start in (`process_lock::raw::redis::keys::boot_key`). A restart loses
    /// that key with the rest, and the rule applies again, as in production.
    pub(crate) async fn pretend_up_for_a_day(&self, name: &str) {
        let boot = process_lock::raw::redis::keys::boot_key("", name);
        let day_ago_ms = (now_ns() / MS - 86_400_000).to_string();
        self.admin(&["SET", &boot, &day_ago_ms]).await;
    }

    fn pid(&self) -> Pid {
        let id = self
            .child
            .as_ref()
            .and_then(Child::id)
            .expect("the server is running");
        Pid::from_raw(i32::try_from(id).unwrap())
    }

    /// SIGKILL, and waits until it is gone; returns when it was killed.
    pub(crate) async fn kill(&mut self) -> u128 {
        let mut child = self.child.take().expect("the server is running");
        let at = now_ns();
        child.start_kill().expect("SIGKILL to redis-server");
        tokio::time::timeout(PATIENCE, child.wait())
            .await
            .expect("redis-server died in time")
            .expect("waiting for redis-server");
        at
    }

    /// Starts the server again on the same port, empty; returns when it was started (before
    /// it answers: every key a client sees afterwards was written after this time).
    pub(crate) async fn restart(&mut self) -> u128 {
        assert!(self.child.is_none(), "restarting a running server");
        let at = now_ns();
        let mut errors = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match spawn_server(self.port, &self.dir).await {
                Ok(child) => {
                    self.child = Some(child);
                    return at;
                }
                Err(e) => errors.push(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "cannot start redis-server again on port {}: {errors:?}",
            self.port
        );
    }

    /// SIGSTOP: the server stalls, connections stay open; returns when it was stopped.
    pub(crate) fn stop(&self) -> u128 {
        let at = now_ns();
        kill(self.pid(), Signal::SIGSTOP).expect("SIGSTOP to redis-server");
        at
    }

    /// SIGCONT after [`stop`](Server::stop); returns the time just before it was sent, which
    /// nothing the server answers can precede (a time read after `kill` returns can: this
    /// thread may be descheduled in between, while the server already serves).
    pub(crate) fn resume(&self) -> u128 {
        let at = now_ns();
        kill(self.pid(), Signal::SIGCONT).expect("SIGCONT to redis-server");
        at
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            // SIGKILL ends a stopped process too; tokio reaps it.
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts `redis-server` on `port` with `dir` as its directory and waits until it answers PING.
async fn spawn_server(port: u16, dir: &Path) -> Result<Child, String> {
    let log_path = dir.join("redis.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("{}: {e}", log_path.display()))?;
    let log_err = log.try_clone().map_err(|e| e.to_string())?;
    let port_text = port.to_string();
    let mut child = Command::new("redis-server")
        .args(["--save", "", "--appendonly", "no", "--port", &port_text])
        .args(["--bind", "127.0.0.1", "--dir"])
        .arg(dir)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run redis-server: {e}"))?;
    let address = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(3).collect();
            return Err(format!(
                "redis-server on port {port} exited with {status}: {tail:?}"
            ));
        }
        if let Ok(mut raw) = RawRedis::connect_to(&address).await
            && matches!(raw.command(&["PING"]).await, Ok(Resp::Simple(pong)) if pong == "PONG")
        {
            return Ok(child);
        }
        if Instant::now() >= deadline {
            let _ = child.start_kill();
            return Err(format!(
                "redis-server on port {port} did not answer in 10 s"
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `count` waiters are queued for lock `name` (they found it held and wait in
/// line for it).
pub(crate) async fn wait_for_waiters(server: &Server, name: &str, count: i64) {
    let queue = process_lock::raw::redis::keys::queue_key(name);
    let mut raw = server.raw().await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let queued = raw
            .int(&["ZCARD", &queue])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        if queued >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{count} waiter(s) never queued in {queue:?} within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Processes.

/// The critical section run under the lock: `sh -c CRITICAL_SECTION sh LOG TAG SECONDS COUNTER
/// [GATE]`. It appends `start TAG NS FENCE PID` to LOG, reads COUNTER, waits for the file GATE
/// to exist (if given), works for SECONDS, writes COUNTER + 1 and appends `end TAG NS done`.
/// On SIGTERM it stops at once, appends `end TAG NS term` and exits 143 without writing the
/// counter. The work is a `sleep` in the background (its pid appended as `pid TAG PID`), so
/// that the shell takes the trap at once; its output goes nowhere, so that an orphaned sleep
/// never holds process-lock's output open.
const CRITICAL_SECTION: &str = r#"log=$1 tag=$2 secs=$3 counter=$4 gate=$5 s=
trap 'if [ -n "$s" ]; then kill "$s" 2>/dev/null; fi; echo "end $tag $(date +%s%N) term" >> "$log"; exit 143' TERM
echo "start $tag $(date +%s%N) ${PROCESS_LOCK_FENCE:-none} $$" >> "$log"
n=$(cat "$counter" 2>/dev/null || echo 0)
if [ -n "$gate" ]; then while [ ! -e "$gate" ]; do sleep 0.05; done; fi
sleep "$secs" </dev/null >/dev/null 2>&1 &
s=$!
echo "pid $tag $s" >> "$log"
wait "$s"
echo $((n + 1)) > "$counter"
echo "end $tag $(date +%s%N) done" >> "$log"
"#;

/// One repetition of a scenario on one backend: a lock name of its own, a scratch directory
/// with the critical sections' log and counter, and the `process-lock` processes it started.
pub(crate) struct Case {
    pub(crate) backend: &'static str,
    pub(crate) name: String,
    dir: PathBuf,
    log: PathBuf,
    counter: PathBuf,
}

impl Case {
    pub(crate) fn new(backend: &'static str, scenario: &str) -> Case {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = scratch(scenario);
        let name = format!(
            "faults:{scenario}:{}:{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        Case {
            backend,
            name,
            log: dir.join("sections.log"),
            counter: dir.join("counter"),
            dir,
        }
    }

    /// A path in the scratch directory.
    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Starts `process-lock --backend BACKEND ARGS...` with `REDIS_URL=url`, its stdout and
    /// stderr going to `TAG.out` and `TAG.err`.
    pub(crate) fn spawn<S: AsRef<OsStr>>(&self, tag: &str, url: &str, args: &[S]) -> Run {
        let (out, err) = (
            self.file(&format!("{tag}.out")),
            self.file(&format!("{tag}.err")),
        );
        let create = |path: &Path| {
            std::fs::File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        };
        let child = Command::new(env!("CARGO_BIN_EXE_process-lock"))
            .args(["--backend", self.backend])
            .args(args)
            .env("REDIS_URL", url)
            .env_remove("PROCESS_LOCK_NAME")
            .env_remove("PROCESS_LOCK_TOKEN")
            .env_remove("PROCESS_LOCK_FENCE")
            .env_remove("PROCESS_LOCK_TTL_MS")
            .stdin(Stdio::null())
            .stdout(create(&out))
            .stderr(create(&err))
            .kill_on_drop(true)
            .spawn()
            .expect("process-lock starts");
        Run {
            tag: tag.to_owned(),
            child,
            out,
            err,
        }
    }

    /// Runs `process-lock ARGS...` to completion.
    pub(crate) async fn output<S: AsRef<OsStr>>(&self, tag: &str, url: &str, args: &[S]) -> Exit {
        self.spawn(tag, url, args).finish(WITHIN).await
    }

    /// Starts `process-lock run --name NAME RUN_ARGS... -- sh -c CRITICAL_SECTION ...`: a
    /// critical section `tag` that works `seconds` once `gate` exists.
    pub(crate) fn section(
        &self,
        tag: &str,
        url: &str,
        run_args: &[&str],
        seconds: &str,
        gate: Option<&Path>,
    ) -> Run {
        let mut args: Vec<&OsStr> = vec!["run".as_ref(), "--name".as_ref(), self.name.as_ref()];
        args.extend(run_args.iter().map(OsStr::new));
        args.extend(["--", "sh", "-c", CRITICAL_SECTION, "sh"].map(OsStr::new));
        args.extend([self.log.as_os_str(), tag.as_ref(), seconds.as_ref()]);
        args.push(self.counter.as_os_str());
        args.push(gate.map_or("".as_ref(), Path::as_os_str));
        self.spawn(tag, url, &args)
    }

    /// The log of critical sections, as written so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the critical section of `run` has started; returns when it did.
    pub(crate) async fn wait_started(&self, run: &mut Run) -> u128 {
        let deadline = Instant::now() + PATIENCE;
        let tag = run.tag.clone();
        let prefix = format!("start {tag} ");
        loop {
            if let Some(line) = self.log().lines().find(|line| line.starts_with(&prefix)) {
                return line
                    .split_whitespace()
                    .nth(2)
                    .and_then(|ns| ns.parse().ok())
                    .unwrap_or_else(|| panic!("a bad start line: {line:?}"));
            }
            let exited = run.child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() >= deadline {
                let stderr = std::fs::read_to_string(&run.err).unwrap_or_default();
                let why = exited.map_or(format!("within {PATIENCE:?}"), |status| {
                    format!("(its process-lock exited with {status})")
                });
                panic!(
                    "[{}] critical section {tag} never started {why}; its process-lock's \
                     stderr: {stderr:?}",
                    self.backend
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The critical sections in the log, by start. A section without an end (its shell was
    /// killed) ends, at the latest, when its `process-lock` exited (`exits`); without that,
    /// it never ends.
    pub(crate) fn sections(&self, exits: &[&Exit]) -> Vec<Section> {
        let log = self.log();
        let mut sections: Vec<Section> = Vec::new();
        for line in log.lines() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let ns = |text: &str| -> u128 {
                text.parse()
                    .unwrap_or_else(|_| panic!("a bad time in the log: {line:?}\n{log}"))
            };
            match parts[..] {
                ["start", tag, start, fence, _shell] => sections.push(Section {
                    tag: tag.to_owned(),
                    start: ns(start),
                    end: None,
                    how: "unended",
                    fence_text: fence.to_owned(),
                    fence: fence.parse().ok(),
                }),
                ["pid", _, _] => {}
                ["end", tag, end, how] => {
                    let section = sections
                        .iter_mut()
                        .find(|s| s.tag == tag && s.end.is_none())
                        .unwrap_or_else(|| panic!("an end without a start: {line:?}\n{log}"));
                    section.end = Some(ns(end));
                    section.how = if how == "term" { "term" } else { "done" };
                }
                _ => panic!("a bad line in the log: {line:?}\n{log}"),
            }
        }
        for section in &mut sections {
            if section.end.is_none() {
                section.end = exits.iter().find(|e| e.tag == section.tag).map(|e| e.at);
            }
        }
        sections.sort_by_key(|s| s.start);
        sections
    }

    /// The critical section `tag`.
    pub(crate) fn one<'a>(&self, sections: &'a [Section], tag: &str) -> &'a Section {
        let mut found = sections.iter().filter(|s| s.tag == tag);
        let section = found.next().unwrap_or_else(|| {
            panic!(
                "[{}] critical section {tag} never ran; the log:\n{}",
                self.backend,
                self.log()
            )
        });
        assert!(
            found.next().is_none(),
            "[{}] {tag} ran twice:\n{}",
            self.backend,
            self.log()
        );
        section
    }

    /// The checks every scenario makes on its critical sections: no two overlap; the fencing
    /// tokens strictly increase in the order the sections started; the counter the sections
    /// increment read-modify-write counts every section that completed (no lost update).
    pub(crate) fn check_exclusion(&self, sections: &[Section]) {
        let shown = show(sections);
        let backend = self.backend;
        let mut latest_end: Option<&Section> = None;
        for section in sections {
            if let Some(before) = latest_end {
                let end = before.end.unwrap_or(u128::MAX);
                assert!(
                    section.start > end,
                    "[{backend}] OVERLAP: {} started {} ms before {} ended\n{shown}",
                    section.tag,
                    ms_between(section.start, end),
                    before.tag,
                );
            }
            if latest_end.is_none_or(|before| {
                section.end.unwrap_or(u128::MAX) > before.end.unwrap_or(u128::MAX)
            }) {
                latest_end = Some(section);
            }
        }
        for section in sections {
            assert!(
                section.fence.is_some(),
                "[{backend}] {} got PROCESS_LOCK_FENCE={:?}, not a number\n{shown}",
                section.tag,
                section.fence_text
            );
        }
        for pair in sections.windows(2) {
            assert!(
                pair[1].fence > pair[0].fence,
                "[{backend}] fencing tokens went backwards or repeated: {} got {}, after {} got \
                 {}\n{shown}",
                pair[1].tag,
                pair[1].fence_text,
                pair[0].tag,
                pair[0].fence_text
            );
        }
        let done = sections.iter().filter(|s| s.how == "done").count();
        let counter: usize = std::fs::read_to_string(&self.counter)
            .map(|text| text.trim().parse().expect("a number in the counter"))
            .unwrap_or(0);
        assert_eq!(
            counter, done,
            "[{backend}] LOST UPDATE: {done} sections completed but the counter says \
             {counter}\n{shown}"
        );
    }

    /// Ends what the sections left running (a shell killed with SIGKILL leaves its sleep), by
    /// pid, and only processes that still look like ours.
    fn kill_leftovers(&self) {
        let log = self.log();
        let mut ended: HashMap<&str, bool> = HashMap::new();
        let mut pids: Vec<(&str, i32)> = Vec::new();
        for line in log.lines() {
            match line.split_whitespace().collect::<Vec<_>>()[..] {
                ["start", tag, _, _, shell] => {
                    ended.insert(tag, false);
                    pids.extend(shell.parse().ok().map(|pid| (tag, pid)));
                }
                ["pid", tag, pid] => pids.extend(pid.parse().ok().map(|pid| (tag, pid))),
                ["end", tag, ..] => {
                    ended.insert(tag, true);
                }
                _ => {}
            }
        }
        for (tag, pid) in pids {
            if ended.get(tag) == Some(&true) {
                continue;
            }
            let ours = std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
                cmdline.starts_with(b"sh\0") || cmdline.starts_with(b"sleep\0")
            });
            if ours {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        self.kill_leftovers();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A critical section, from the log.
#[derive(Debug)]
pub(crate) struct Section {
    pub(crate) tag: String,
    /// When it started (ns since the epoch).
    pub(crate) start: u128,
    /// When it ended, or at the latest when its process-lock exited.
    pub(crate) end: Option<u128>,
    /// `done` (completed), `term` (stopped by SIGTERM) or `unended`.
    pub(crate) how: &'static str,
    pub(crate) fence_text: String,
    pub(crate) fence: Option<u64>,
}

impl Section {
    /// When it ended; a section that never did fails the test.
    pub(crate) fn end(&self) -> u128 {
        self.end
            .unwrap_or_else(|| panic!("{} never ended: {self:?}", self.tag))
    }
}

/// The sections, one a line, times relative to the first start, for messages.
fn show(sections: &[Section]) -> String {
    let origin = sections.first().map_or(0, |s| s.start);
    let mut text = String::from("critical sections (ms from the first start):\n");
    for s in sections {
        let end = s.end.map_or("never".to_owned(), |end| {
            ms_between(origin, end).to_string()
        });
        let _ = writeln!(
            text,
            "  {:<8} {:>6} .. {:>6} {:<7} fence {}",
            s.tag,
            ms_between(origin, s.start),
            end,
            s.how,
            s.fence_text
        );
    }
    text
}

/// A `process-lock` process the test started; killed if dropped before it exited.
pub(crate) struct Run {
    tag: String,
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Run {
    /// Waits for it to exit, at most `within`.
    pub(crate) async fn finish(mut self, within: Duration) -> Exit {
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(status) => {
                let at = now_ns();
                let status = status.expect("waiting for process-lock");
                Exit {
                    tag: self.tag,
                    code: status.code(),
                    status: status.to_string(),
                    at,
                    stdout: std::fs::read_to_string(&self.out).unwrap_or_default(),
                    stderr: std::fs::read_to_string(&self.err).unwrap_or_default(),
                }
            }
            Err(_) => {
                let _ = self.child.start_kill();
                panic!(
                    "process-lock ({}) did not exit within {within:?}; its stderr: {:?}",
                    self.tag,
                    std::fs::read_to_string(&self.err).unwrap_or_default()
                );
            }
        }
    }
}

/// How a `process-lock` process ended.
#[derive(Debug)]
pub(crate) struct Exit {
    pub(crate) tag: String,
    pub(crate) code: Option<i32>,
    status: String,
    /// When the test saw it exit (ns since the epoch).
    pub(crate) at: u128,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Exit {
    /// Fails the test unless it exited with `expected`.
    pub(crate) fn expect_code(&self, expected: i32, backend: &str) {
        assert_eq!(
            self.code,
            Some(expected),
            "[{backend}] {} exited with {}, expected {expected}; stdout: {:?}; stderr: {:?}",
            self.tag,
            self.status,
            self.stdout,
            self.stderr
        );
        assert!(
            !self.stderr.contains("panicked"),
            "[{backend}] {} panicked: {}",
            self.tag,
            self.stderr
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Repetitions and the report.

/// The repetitions of a scenario on one backend (one lane), run one after another, each in a
/// task of its own so that a failed one does not hide the others.
pub(crate) struct Lane {
    label: String,
    repeats: usize,
    task: JoinHandle<Vec<(usize, String)>>,
}

/// Starts `times` repetitions of `body` (given the repetition's number, from 1), in the
/// background; the lanes of a scenario run concurrently, each with servers of its own.
pub(crate) fn lane<F, Fut>(label: impl Into<String>, times: usize, body: F) -> Lane
where
    F: Fn(usize) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let label = label.into();
    let shown = label.clone();
    let task = tokio::spawn(async move {
        let mut failures = Vec::new();
        for i in 1..=times {
            let started = Instant::now();
            match tokio::spawn(body(i)).await {
                Ok(()) => eprintln!(
                    "[faults] {shown}: run {i}/{times} passed in {:.1?}",
                    started.elapsed()
                ),
                Err(e) => {
                    let message = panic_message(e);
                    eprintln!(
                        "[faults] {shown}: run {i}/{times} FAILED in {:.1?}: {message}",
                        started.elapsed()
                    );
                    failures.push((i, message));
                }
            }
        }
        failures
    });
    Lane {
        label,
        repeats: times,
        task,
    }
}

fn panic_message(error: tokio::task::JoinError) -> String {
    match error.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "a panic without a message".to_owned()),
        Err(error) => error.to_string(),
    }
}

/// Waits for every lane of scenario `title`; prints how each did, and fails with every
/// failure (on which backend, in which run) if any failed.
pub(crate) async fn report(title: &str, lanes: Vec<Lane>) {
    let started = Instant::now();
    let mut summary = String::new();
    let mut failed = 0;
    for lane in lanes {
        let failures = lane.task.await.expect("a lane's task");
        let _ = writeln!(
            summary,
            "  {}: {}/{} passed",
            lane.label,
            lane.repeats - failures.len(),
            lane.repeats
        );
        for (i, message) in &failures {
            failed += 1;
            let _ = writeln!(summary, "    run {i}: {message}");
        }
    }
    eprintln!("[faults] {title} ({:.1?}):\n{summary}", started.elapsed());
    assert!(failed == 0, "{title}: {failed} failed run(s):\n{summary}");
}
