//! `process-lock run`: a program run while holding the lock.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::atomic::Ordering;
use std::time::Duration;

use nix::sys::signal::Signal;
use process_lock::{Error, ErrorKind, Lock, LockGuard, LockName, LockState, Lost, Release, Ttl};
use tokio::signal::unix::SignalKind;
use tokio::time::Instant;

use crate::cli::{Global, RunArgs};
use crate::connect::Target;
use crate::duration::{self, Human};
use crate::exit::{self, Failure};
use crate::job::Job;

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
        if ttl.as_duration() < Lock::MIN_TTL {
            return Err(bad(
                "--ttl",
                format!(
                    "a TTL of {} is too short to renew; use at least {}",
                    Human(ttl.as_duration()),
                    Human(Lock::MIN_TTL)
                ),
            ));
        }
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
    let lock = Lock::from_parts(backend, plan.name.clone(), plan.ttl)
        .map_err(|e| Failure::from_error("preparing the lock", &e))?;
    let show_progress = !global.quiet && std::io::stderr().is_terminal();
    let acquired = tokio::select! {
        acquired = acquire(&lock, plan.wait, show_progress) => acquired,
        signal = signals.recv() => return Err(interrupted(signal, &plan.name, "waiting for the lock")),
    };
    let guard = match acquired.map_err(|e| Failure::from_error("acquiring the lock", &e))? {
        Some(guard) => guard,
        None => return Err(Failure::new(exit::HELD, held(&plan, global, &lock).await)),
    };
    tracing::info!(
        name = %plan.name.as_str().escape_debug(),
        fence = ?guard.fence(),
        token = ?guard.token(),
        "acquired the lock"
    );
    // Before the program starts, so that none of its stops goes unseen.
    let job_signals = JobSignals::new()?;
    let job = match spawn(&plan, &guard) {
        Ok(job) => job,
        Err(failure) => {
            release(guard, &lock, &mut signals, global.quiet).await;
            return Err(failure);
        }
    };
    let supervisor = Supervisor {
        plan: &plan,
        lock: &lock,
        signals,
        job_signals,
        quiet: global.quiet,
    };
    supervisor.supervise(job, guard).await
}

/// Why the lock could not be had: held by another owner, or (when `status` finds it open) not
/// granted yet because the server restarted less than the restart delay ago (the delayed
/// restart rule: a lock taken before the restart may still be in use by a holder that has not
/// noticed).
async fn held(plan: &Plan, global: &Global, lock: &Lock) -> String {
    let name = plan.name.as_str();
    if let Some(Some(timeout)) = plan.wait {
        return format!(
            "lock {name:?} is still held after waiting {}",
            Human(timeout)
        );
    }
    // As `Target` reads it (already validated there): by default, the lock's TTL.
    let (delay, which) = match global.restart_delay.as_deref().map(duration::parse) {
        Some(Ok(delay)) => (delay, "--restart-delay"),
        _ => (plan.ttl.as_duration(), "the TTL"),
    };
    match lock.backend().status(&plan.name).await {
        Ok(status) if status.state == LockState::Open && !delay.is_zero() => {
            let delay = Human(delay);
            format!(
                "lock {name:?} is free but not granted yet: the Redis server restarted less \
                 than {delay} ({which}) ago, and a lock taken before the restart may still be \
                 in use; it opens at most {delay} after the restart; pass --wait to wait for it"
            )
        }
        status => {
            let left = status
                .ok()
                .and_then(|status| status.remaining)
                .map(|left| format!(", {} left", Human(left)))
                .unwrap_or_default();
            format!("lock {name:?} is held by another owner{left}; pass --wait to wait for it")
        }
    }
}

/// Takes the lock: at once (`wait` is `None`), waiting as long as it takes (`Some(None)`), or
/// waiting at most the timeout; `None` if it stayed held.
async fn acquire(
    lock: &Lock,
    wait: Option<Option<Duration>>,
    show_progress: bool,
) -> process_lock::Result<Option<LockGuard>> {
    let timeout = match wait {
        None => return lock.try_lock().await,
        Some(timeout) => timeout,
    };
    let acquiring = async {
        match timeout {
            Some(timeout) => lock.lock_timeout(timeout).await,
            None => lock.lock().await.map(Some),
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

/// Starts the program with the lock's environment, in a process group of its own.
fn spawn(plan: &Plan, guard: &LockGuard) -> Result<Job, Failure> {
    let mut command = std::process::Command::new(&plan.program);
    command
        .args(&plan.args)
        .env(env::NAME, plan.name.as_str())
        .env(env::TOKEN, guard.token().as_str())
        .env(env::TTL_MS, plan.ttl.as_millis().to_string());
    match guard.fence() {
        Some(fence) => command.env(env::FENCE, fence.to_string()),
        None => command.env_remove(env::FENCE),
    };
    let job = Job::spawn(&mut command).map_err(|e| {
        let code = match e.kind() {
            std::io::ErrorKind::NotFound => exit::NOT_FOUND,
            _ => exit::CANNOT_EXECUTE,
        };
        Failure::new(
            code,
            format!("cannot run {}: {e}", plan.program.to_string_lossy()),
        )
    })?;
    tracing::debug!(pid = %job.pid(), "started the program");
    Ok(job)
}

/// How long the processes of the program's group have to go away by themselves once the
/// program's own process has exited, before they count as left behind.
const SETTLE: Duration = Duration::from_millis(200);

/// How long processes of the program's group may take to disappear after SIGKILL before
/// process-lock gives up on them (a process in uninterruptible sleep, a zombie no one reaps).
const AFTER_KILL: Duration = Duration::from_secs(2);

/// Everything `supervise` needs besides the job and the guard.
struct Supervisor<'a> {
    plan: &'a Plan,
    lock: &'a Lock,
    signals: Signals,
    job_signals: JobSignals,
    quiet: bool,
}

impl Supervisor<'_> {
    /// Waits for the program, forwarding signals and stopping its whole process group if the
    /// lock is lost; once its own process has exited, stops what is left of its group; then
    /// releases the lock.
    async fn supervise(mut self, mut job: Job, guard: LockGuard) -> Result<u8, Failure> {
        let grace = self.plan.grace;
        let mut lost: Option<Lost> = None;
        // Set once SIGTERM went to the group: when SIGKILL is due, and when it was sent.
        let mut stopping = false;
        let mut kill_at: Option<Instant> = None;
        let mut killed_at: Option<Instant> = None;
        let mut exited_at: Option<Instant> = None;
        let status = loop {
            if let Some(status) = job.status() {
                if job.is_gone() {
                    break status;
                }
                // Members that die with the program (of the same signal) take a moment to be
                // gone (reaped): only those still there after it are left behind.
                let exited_at = *exited_at.get_or_insert_with(Instant::now);
                if !stopping && exited_at.elapsed() >= SETTLE {
                    if !self.quiet {
                        eprintln!(
                            "process-lock: the program exited, but processes it started are \
                             still running; stopping them before releasing the lock (SIGTERM, \
                             then SIGKILL after {})",
                            Human(grace),
                        );
                    }
                    job.terminate();
                    stopping = true;
                    kill_at = Some(Instant::now() + grace);
                }
                if killed_at.is_some_and(|at| at.elapsed() >= AFTER_KILL) {
                    if !self.quiet {
                        eprintln!(
                            "process-lock: processes of the program's group are still there {} \
                             after SIGKILL; releasing the lock anyway",
                            Human(AFTER_KILL),
                        );
                    }
                    break status;
                }
            }
            // SIGCHLD tells when the program's own process changes; its group's other members
            // are not process-lock's children, so their end is polled for.
            let poll_every = if job.status().is_some() {
                Duration::from_millis(20)
            } else {
                Duration::from_millis(250)
            };
            tokio::select! {
                () = tokio::time::sleep(poll_every) => {}
                event = self.job_signals.recv() => match event {
                    JobEvent::Child => {}
                    JobEvent::Stop => {
                        tracing::info!("forwarding SIGTSTP");
                        job.signal(Signal::SIGTSTP);
                    }
                    JobEvent::Continue => job.continued(),
                },
                gone = guard.lost(), if lost.is_none() => {
                    if !self.quiet {
                        eprintln!(
                            "process-lock: {gone}; stopping the program and the processes it \
                             started (SIGTERM, then SIGKILL after {})",
                            Human(grace),
                        );
                    }
                    if !stopping {
                        job.terminate();
                        stopping = true;
                        kill_at = Some(Instant::now() + grace);
                    }
                    lost = Some(gone);
                }
                () = sleep_until(kill_at), if kill_at.is_some() => {
                    tracing::info!("the grace period is over: SIGKILL to the program's group");
                    job.signal(Signal::SIGKILL);
                    kill_at = None;
                    killed_at = Some(Instant::now());
                }
                signal = self.signals.recv() => {
                    tracing::info!(?signal, "forwarding to the program's group");
                    job.signal(signal);
                }
            }
            if let Err(e) = job.poll() {
                job.signal(Signal::SIGKILL);
                drop(job);
                release(guard, self.lock, &mut self.signals, self.quiet).await;
                return Err(Failure::new(
                    exit::OS_ERROR,
                    format!("waiting for the program: {e}"),
                ));
            }
        };
        drop(job);
        let code = exit_code(status);
        tracing::info!(%status, code, "the program exited");
        let name = self.plan.name.as_str();
        let lost = lost.or_else(|| guard.try_lost());
        if let Some(lost) = lost {
            release(guard, self.lock, &mut self.signals, true).await;
            return Err(Failure::new(
                exit::LOCK_LOST,
                format!("{lost}; the program ended with {status}"),
            ));
        }
        match release(guard, self.lock, &mut self.signals, self.quiet).await {
            Released::Answered(outcome @ (Release::NotOwner | Release::Missing)) => {
                Err(Failure::new(
                    exit::LOCK_LOST,
                    format!(
                        "lock {name:?} lost: releasing it found {} ({outcome:?}); the program \
                         ended with {status}",
                        if outcome == Release::Missing {
                            "it expired or was cleared"
                        } else {
                            "another owner"
                        },
                    ),
                ))
            }
            _ => Ok(code),
        }
    }
}

/// How [`release`] went.
#[derive(Debug)]
enum Released {
    /// The first try answered this.
    Answered(Release),
    /// A later try was answered: the lock is no longer held by this run.
    Later,
    /// No try was answered: the lock expires by itself.
    Failed,
}

/// Releases the lock, warning on stderr (unless `quiet`) when waiters elsewhere could not be
/// told. After a failure that may pass, tries again until the lock's validity ends, as the
/// library would in the background (which ends with this process); a signal stops trying.
async fn release(guard: LockGuard, lock: &Lock, signals: &mut Signals, quiet: bool) -> Released {
    /// The longest one try may take.
    const TRY: Duration = Duration::from_secs(5);
    let (name, token, ttl) = (guard.name().clone(), guard.token().clone(), guard.ttl());
    let shown = name.as_str();
    let valid_until = guard.valid_until();
    let warn = |text: String| {
        if !quiet {
            eprintln!("process-lock: {}", exit::one_line(&text));
        }
    };
    let told = |outcome: Release| {
        if outcome == Release::ReleasedWithoutNotice {
            warn(format!(
                "released lock {shown:?}, but waiters in other processes were not notified (the \
                 Redis user may not PUBLISH on its channel); they find it free when they next \
                 check (every {} for process-lock)",
                Human(Lock::DEFAULT_RECHECK)
            ));
        } else {
            tracing::info!(?outcome, "released the lock");
        }
    };
    let error = match tokio::time::timeout(TRY, guard.release()).await {
        Ok(Ok(outcome)) => {
            told(outcome);
            return Released::Answered(outcome);
        }
        Ok(Err(e)) => e,
        Err(_) => Error::new(
            ErrorKind::Timeout,
            format!("no answer within {}", Human(TRY)),
        ),
    };
    // The library's error says it tries again in the background; the cause is its source.
    let cause = |e: &Error| match std::error::Error::source(e) {
        Some(source) => source.to_string(),
        None => e.to_string(),
    };
    let expires = format!("it expires by itself within {}", Human(ttl.as_duration()));
    let left = valid_until.map(|until| until.saturating_duration_since(Instant::now()));
    let Some(left) = left.filter(|left| !left.is_zero() && error.is_retryable()) else {
        warn(format!(
            "releasing lock {shown:?} failed ({}); {expires}",
            cause(&error)
        ));
        return Released::Failed;
    };
    let until = Instant::now() + left;
    warn(format!(
        "releasing lock {shown:?} failed ({}); trying again until its validity ends in {}, \
         after which it expires by itself",
        cause(&error),
        Human(left)
    ));
    let mut backoff = Duration::from_millis(50);
    loop {
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            signal = signals.recv() => {
                warn(format!("{signal}: no longer trying to release lock {shown:?}; {expires}"));
                return Released::Failed;
            }
        }
        let attempt = tokio::time::timeout(TRY, lock.backend().release(&name, &token)).await;
        match attempt {
            Ok(Ok(outcome)) => {
                warn(match outcome {
                    Release::Released | Release::ReleasedWithoutNotice => {
                        format!("released lock {shown:?} on a later try")
                    }
                    Release::Missing => format!(
                        "lock {shown:?} is free now (an earlier try got through, or it expired)"
                    ),
                    _ => format!("lock {shown:?} expired and another owner holds it now"),
                });
                told(outcome);
                return Released::Later;
            }
            Ok(Err(e)) if !e.is_retryable() || Instant::now() + backoff >= until => {
                warn(format!(
                    "releasing lock {shown:?} failed again ({}); {expires}",
                    cause(&e)
                ));
                return Released::Failed;
            }
            Err(_) if Instant::now() + backoff >= until => {
                warn(format!(
                    "releasing lock {shown:?} timed out again; {expires}"
                ));
                return Released::Failed;
            }
            _ => backoff = (backoff * 2).min(Duration::from_secs(1)),
        }
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

/// Sleeps until `at`, or forever for `None`.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
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

/// What the program's process group does, as signals to process-lock tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JobEvent {
    /// SIGCHLD: the program's own process exited, stopped or continued.
    Child,
    /// SIGTSTP: process-lock was asked to stop (Ctrl-Z); the program is asked too.
    Stop,
    /// SIGCONT: process-lock was continued; the program is continued too.
    Continue,
}

/// The signals of job control, listened to from just before the program starts (until then,
/// Ctrl-Z stops process-lock as it stops any program).
struct JobSignals {
    child: tokio::signal::unix::Signal,
    stop: tokio::signal::unix::Signal,
    cont: tokio::signal::unix::Signal,
}

impl JobSignals {
    fn new() -> Result<Self, Failure> {
        let listen = |kind: SignalKind| {
            tokio::signal::unix::signal(kind).map_err(|e| {
                Failure::new(exit::OS_ERROR, format!("setting up signal handling: {e}"))
            })
        };
        Ok(JobSignals {
            child: listen(SignalKind::child())?,
            stop: listen(SignalKind::from_raw(Signal::SIGTSTP as i32))?,
            cont: listen(SignalKind::from_raw(Signal::SIGCONT as i32))?,
        })
    }

    /// The next event.
    async fn recv(&mut self) -> JobEvent {
        async fn next(stream: &mut tokio::signal::unix::Signal, event: JobEvent) -> JobEvent {
            match stream.recv().await {
                Some(()) => event,
                // The runtime is shutting down: no more signals.
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            event = next(&mut self.child, JobEvent::Child) => event,
            event = next(&mut self.stop, JobEvent::Stop) => event,
            event = next(&mut self.cont, JobEvent::Continue) => event,
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
        crate::log::STATUS_LINE.store(true, Ordering::Relaxed);
    }
}

impl Drop for StatusLine {
    fn drop(&mut self) {
        if self.shown {
            crate::log::STATUS_LINE.store(false, Ordering::Relaxed);
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
