//! `process-lock run`: a program run while holding the lock.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use process_lock::{LockGuard, LockName, Lost, ProcessLock, Release, Ttl};
use tokio::process::{Child, Command};
use tokio::signal::unix::SignalKind;
use tokio::time::Instant;

use crate::cli::{Global, RunArgs};
use crate::connect::Target;
use crate::duration::{self, Human};
use crate::exit::{self, Failure};

/// The environment variables the program gets.
pub(crate) mod env {
    /// The lock's name.
    pub(crate) const NAME: &str = "PROCESS_LOCK_NAME";
    /// The fencing token of this acquisition.
    pub(crate) const FENCE: &str = "PROCESS_LOCK_FENCE";
    /// The owner token (the value of the lock's key).
    pub(crate) const TOKEN: &str = "PROCESS_LOCK_TOKEN";
    /// The lock's time to live, in milliseconds.
    pub(crate) const TTL_MS: &str = "PROCESS_LOCK_TTL_MS";
}

/// `run`'s arguments, validated.
#[derive(Debug)]
struct Plan {
    name: LockName,
    ttl: Ttl,
    wait: Option<Option<Duration>>,
    grace: Duration,
    program: OsString,
    args: Vec<OsString>,
}

impl Plan {
    fn new(args: RunArgs) -> Result<Self, Failure> {
        let bad = |what: &str, e: String| Failure::new(exit::BAD_INPUT, format!("{what}: {e}"));
        let name = LockName::new(&args.name).map_err(|e| bad("--name", e.to_string()))?;
        let ttl = duration::parse(&args.ttl).map_err(|e| bad("--ttl", e))?;
        let ttl = Ttl::new(ttl).map_err(|e| bad("--ttl", e.to_string()))?;
        let timeout = match &args.timeout {
            Some(text) => Some(duration::parse(text).map_err(|e| bad("--timeout", e))?),
            None => None,
        };
        let grace = duration::parse(&args.grace).map_err(|e| bad("--grace", e))?;
        let mut command = args.command.into_iter();
        let program = command
            .next()
            .ok_or_else(|| Failure::new(exit::USAGE, "no program to run"))?;
        Ok(Plan {
            name,
            ttl,
            wait: args.wait.then_some(timeout),
            grace,
            program,
            args: command.collect(),
        })
    }
}

/// Runs `args`; the exit code, or why there is none.
pub(crate) async fn run(global: &Global, args: RunArgs) -> Result<u8, Failure> {
    let plan = Plan::new(args)?;
    let target = Target::from_options(global)?;
    // Before anything can be taken, so that no signal goes unanswered.
    let mut signals = Signals::new()?;
    let backend = tokio::select! {
        connected = target.connect() => connected?,
        signal = signals.recv() => return Err(interrupted(signal, &plan.name, "connecting")),
    };
    let lock = ProcessLock::from_parts(
        backend.clone(),
        plan.name.clone(),
        process_lock::Token::generate()
            .map_err(|e| Failure::from_error("making an owner token", &e))?,
        plan.ttl,
    );
    let show_progress = !global.quiet && std::io::stderr().is_terminal();
    let acquired = tokio::select! {
        acquired = acquire(&lock, plan.wait, show_progress) => acquired,
        signal = signals.recv() => return Err(interrupted(signal, &plan.name, "waiting for the lock")),
    };
    let guard = match acquired.map_err(|e| Failure::from_error("acquiring the lock", &e))? {
        Some(guard) => guard,
        None => {
            let held = match plan.wait {
                Some(Some(timeout)) => format!("still held after waiting {}", Human(timeout)),
                _ => {
                    let left = backend
                        .status(&plan.name)
                        .await
                        .ok()
                        .and_then(|status| status.remaining)
                        .map(|left| format!(", {} left", Human(left)))
                        .unwrap_or_default();
                    format!("held by another owner{left}; pass --wait to wait for it")
                }
            };
            return Err(Failure::new(
                exit::HELD,
                format!("lock {:?} is {held}", plan.name.as_str()),
            ));
        }
    };
    tracing::info!(name = plan.name.as_str(), fence = ?guard.fence(), token = ?guard.token(), "acquired the lock");
    let child = match spawn(&plan, &guard) {
        Ok(child) => child,
        Err(failure) => {
            release(guard, global.quiet).await;
            return Err(failure);
        }
    };
    supervise(child, guard, &plan, signals, global.quiet).await
}

/// Takes the lock: at once (`wait` is `None`), waiting as long as it takes (`Some(None)`), or
/// waiting at most the timeout; `None` if it stayed held.
async fn acquire(
    lock: &ProcessLock,
    wait: Option<Option<Duration>>,
    show_progress: bool,
) -> process_lock::Result<Option<LockGuard>> {
    let timeout = match wait {
        None => return lock.try_acquire().await,
        Some(timeout) => timeout,
    };
    let acquiring = async {
        match timeout {
            Some(timeout) => lock.acquire_timeout(timeout).await,
            None => lock.acquire().await.map(Some),
        }
    };
    if !show_progress {
        return acquiring.await;
    }
    tokio::pin!(acquiring);
    let started = Instant::now();
    // Nothing is shown for a lock that comes at once.
    let mut tick = tokio::time::interval_at(
        started + Duration::from_millis(100),
        Duration::from_millis(200),
    );
    let mut line = StatusLine::default();
    let until = timeout
        .map(|t| format!(" (giving up after {})", Human(t)))
        .unwrap_or_default();
    loop {
        tokio::select! {
            acquired = &mut acquiring => return acquired,
            _ = tick.tick() => line.show(&format!(
                "process-lock: waiting for lock {:?}: {}{until}",
                lock.name().as_str(),
                Human(started.elapsed()),
            )),
        }
    }
}

/// Starts the program with the lock's environment.
fn spawn(plan: &Plan, guard: &LockGuard) -> Result<Child, Failure> {
    let mut command = Command::new(&plan.program);
    command
        .args(&plan.args)
        .env(env::NAME, plan.name.as_str())
        .env(env::TOKEN, guard.token().as_str())
        .env(env::TTL_MS, plan.ttl.as_millis().to_string());
    match guard.fence() {
        Some(fence) => command.env(env::FENCE, fence.to_string()),
        None => command.env_remove(env::FENCE),
    };
    let child = command.spawn().map_err(|e| {
        let code = match e.kind() {
            std::io::ErrorKind::NotFound => exit::NOT_FOUND,
            _ => exit::CANNOT_EXECUTE,
        };
        Failure::new(
            code,
            format!("cannot run {}: {e}", plan.program.to_string_lossy()),
        )
    })?;
    tracing::debug!(pid = ?child.id(), "started the program");
    Ok(child)
}

/// Waits for the program, forwarding signals and stopping it if the lock is lost; then releases
/// the lock.
async fn supervise(
    mut child: Child,
    guard: LockGuard,
    plan: &Plan,
    mut signals: Signals,
    quiet: bool,
) -> Result<u8, Failure> {
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);
    let mut lost: Option<Lost> = None;
    let mut kill_at: Option<Instant> = None;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            gone = guard.lost(), if lost.is_none() => {
                if !quiet {
                    eprintln!(
                        "process-lock: {gone}; stopping the program (SIGTERM, then SIGKILL after {})",
                        Human(plan.grace),
                    );
                }
                send(pid, Signal::SIGTERM);
                kill_at = Some(Instant::now() + plan.grace);
                lost = Some(gone);
            }
            () = sleep_until(kill_at), if kill_at.is_some() => {
                tracing::info!("the grace period is over: SIGKILL");
                if let Err(e) = child.start_kill() {
                    tracing::warn!("sending SIGKILL: {e}");
                }
                kill_at = None;
            }
            signal = signals.recv() => {
                if signal == Signal::SIGINT && terminal_sent_it_too() {
                    tracing::info!("SIGINT from the terminal: the program got it too");
                } else {
                    tracing::info!(?signal, "forwarding");
                    send(pid, signal);
                }
            }
        }
    };
    let status = match status {
        Ok(status) => status,
        Err(e) => {
            let _ = child.start_kill();
            release(guard, quiet).await;
            return Err(Failure::new(
                exit::OS_ERROR,
                format!("waiting for the program: {e}"),
            ));
        }
    };
    let code = exit_code(status);
    tracing::info!(%status, code, "the program exited");
    let lost = lost.or_else(|| guard.try_lost());
    if let Some(lost) = lost {
        release(guard, true).await;
        return Err(Failure::new(
            exit::LOCK_LOST,
            format!("{lost}; the program ended with {status}"),
        ));
    }
    match guard.release().await {
        Ok(Release::Released) => {
            tracing::info!("released the lock");
            Ok(code)
        }
        Ok(outcome) => Err(Failure::new(
            exit::LOCK_LOST,
            format!(
                "lock {:?} lost: releasing it found {} ({outcome:?}); the program ended with \
                 {status}",
                plan.name.as_str(),
                if outcome == Release::Missing {
                    "it expired or was cleared"
                } else {
                    "another owner"
                },
            ),
        )),
        Err(e) => {
            if !quiet {
                eprintln!(
                    "process-lock: releasing lock {:?}: {}; it expires within {}",
                    plan.name.as_str(),
                    exit::one_line(&e.to_string()),
                    Human(plan.ttl.as_duration()),
                );
            }
            Ok(code)
        }
    }
}

/// Releases the lock, best effort and within a bound: for the paths that end in a failure.
async fn release(guard: LockGuard, quiet: bool) {
    let name = guard.name().as_str().to_owned();
    let ttl = guard.ttl();
    match tokio::time::timeout(Duration::from_secs(5), guard.release()).await {
        Ok(Ok(_)) => tracing::info!("released the lock"),
        Ok(Err(e)) if !quiet => eprintln!(
            "process-lock: releasing lock {name:?}: {}; it expires within {}",
            exit::one_line(&e.to_string()),
            Human(ttl.as_duration()),
        ),
        Err(_) if !quiet => eprintln!(
            "process-lock: releasing lock {name:?} timed out; it expires within {}",
            Human(ttl.as_duration()),
        ),
        _ => {}
    }
}

/// The code a shell would report for `status`: the exit code, or 128 + the signal.
fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(exit::OS_ERROR),
        (None, Some(signal)) => {
            u8::try_from(i32::from(exit::SIGNAL_BASE) + signal).unwrap_or(u8::MAX)
        }
        (None, None) => exit::OS_ERROR,
    }
}

/// The failure for `signal` received before the program started.
fn interrupted(signal: Signal, name: &LockName, doing: &str) -> Failure {
    Failure::new(
        exit::SIGNAL_BASE + signal as u8,
        format!("{signal} while {doing} (lock {:?})", name.as_str()),
    )
}

/// Sends `signal` to the program, unless it has already been reaped.
fn send(pid: Option<Pid>, signal: Signal) {
    if let Some(pid) = pid
        && let Err(e) = nix::sys::signal::kill(pid, signal)
    {
        tracing::warn!(%pid, ?signal, "sending the signal: {e}");
    }
}

/// Sleeps until `at`, or forever for `None`.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Whether a SIGINT most likely came from a terminal's Ctrl-C: process-lock is in the
/// foreground process group of its terminal, which the kernel signals as a whole, the program
/// included. Forwarding it would make the program see it twice.
fn terminal_sent_it_too() -> bool {
    let ours = nix::unistd::getpgrp();
    let foreground = |fd: BorrowedFd<'_>| nix::unistd::tcgetpgrp(fd).ok();
    [
        std::io::stdin()
            .is_terminal()
            .then(|| foreground(std::io::stdin().as_fd())),
        std::io::stdout()
            .is_terminal()
            .then(|| foreground(std::io::stdout().as_fd())),
        std::io::stderr()
            .is_terminal()
            .then(|| foreground(std::io::stderr().as_fd())),
    ]
    .into_iter()
    .flatten()
    .flatten()
    .next()
    .is_some_and(|group| group == ours)
}

/// The signals process-lock answers instead of dying: SIGINT, SIGTERM and SIGHUP.
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Self, Failure> {
        let listen = |kind: SignalKind| {
            tokio::signal::unix::signal(kind).map_err(|e| {
                Failure::new(exit::OS_ERROR, format!("setting up signal handling: {e}"))
            })
        };
        Ok(Signals {
            interrupt: listen(SignalKind::interrupt())?,
            terminate: listen(SignalKind::terminate())?,
            hangup: listen(SignalKind::hangup())?,
        })
    }

    /// The next signal received.
    async fn recv(&mut self) -> Signal {
        async fn next(stream: &mut tokio::signal::unix::Signal, signal: Signal) -> Signal {
            match stream.recv().await {
                Some(()) => signal,
                // The runtime is shutting down: no more signals.
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            signal = next(&mut self.interrupt, Signal::SIGINT) => signal,
            signal = next(&mut self.terminate, Signal::SIGTERM) => signal,
            signal = next(&mut self.hangup, Signal::SIGHUP) => signal,
        }
    }
}

/// A status line on stderr, rewritten in place and erased when done.
#[derive(Default)]
struct StatusLine {
    shown: bool,
}

impl StatusLine {
    fn show(&mut self, text: &str) {
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "\r\x1b[K{text}");
        let _ = stderr.flush();
        self.shown = true;
    }
}

impl Drop for StatusLine {
    fn drop(&mut self) {
        if self.shown {
            let mut stderr = std::io::stderr().lock();
            let _ = write!(stderr, "\r\x1b[K");
            let _ = stderr.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    #[test]
    fn exit_codes_as_shells_report_them() {
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(7 << 8)), 7);
        assert_eq!(exit_code(ExitStatus::from_raw(255 << 8)), 255);
        // Killed by SIGTERM (15) and SIGKILL (9).
        assert_eq!(exit_code(ExitStatus::from_raw(15)), 143);
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
    }

    #[test]
    fn interrupted_codes() {
        let name = LockName::new("job").unwrap();
        assert_eq!(interrupted(Signal::SIGINT, &name, "waiting").code, 130);
        assert_eq!(interrupted(Signal::SIGTERM, &name, "waiting").code, 143);
    }
}
