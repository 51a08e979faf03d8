//! The program `run` starts, as a job of its own: a process group that is signalled as a whole,
//! so that the processes the program starts (`sh -c 'a & b'`) stop with it, and that gets the
//! terminal when it needs it.
//!
//! **Process group.** The program is the leader of a new process group; every signal
//! process-lock sends (forwarded, or to stop the program when the lock is lost) goes to the
//! whole group. Its own process is reaped here (not by tokio), so that its stops are seen too.
//! On Linux, process-lock is also a *child subreaper*: the program's orphaned descendants
//! become its children rather than init's, and it reaps them, so that a group's members that
//! died do not linger as zombies (which still count as members) where init does not reap, as
//! in many containers.
//!
//! **Terminal.** A background process group that reads the terminal is stopped (`SIGTTIN`).
//! When that happens and process-lock is in its terminal's foreground, the program's group is
//! made the foreground (so it reads, and Ctrl-C and Ctrl-Z reach it directly) and continued;
//! the terminal goes back to process-lock's group when the program exits. When the program is
//! stopped from the terminal (Ctrl-Z) or needs the terminal while process-lock is in the
//! background, process-lock stops itself too, so that the shell shows the job as stopped; when
//! it is continued (`fg`, `bg`), it continues the program, lending it the terminal again if it
//! had it. Without a controlling terminal, none of this happens.

use std::fs::File;
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus};

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// A program started as the leader of its own process group.
#[derive(Debug)]
pub(crate) struct Job {
    /// The program's process ID, which is also its process group's ID.
    pid: Pid,
    /// process-lock's controlling terminal, if it has one.
    terminal: Option<File>,
    /// Whether the program's group is the terminal's foreground group, by our doing.
    lent: bool,
    /// Whether to lend the terminal again when process-lock is continued.
    lend_on_continue: bool,
    /// How the program's own process ended, once it has.
    status: Option<ExitStatus>,
}

impl Job {
    /// Starts `command` as the leader of a new process group.
    pub(crate) fn spawn(command: &mut Command) -> io::Result<Job> {
        #[cfg(target_os = "linux")]
        if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
            tracing::debug!("becoming a child subreaper: {e}");
        }
        let child = command.process_group(0).spawn()?;
        let pid = i32::try_from(child.id())
            .map(Pid::from_raw)
            .map_err(io::Error::other)?;
        // Dropping a `std::process::Child` neither kills nor reaps it: `poll` reaps it.
        drop(child);
        Ok(Job {
            pid,
            // Only a process with a controlling terminal can open it.
            terminal: File::open("/dev/tty").ok(),
            lent: false,
            lend_on_continue: false,
            status: None,
        })
    }

    /// The program's process ID (and its group's).
    pub(crate) fn pid(&self) -> Pid {
        self.pid
    }

    /// How the program's own process ended, once `poll` saw it end.
    pub(crate) fn status(&self) -> Option<ExitStatus> {
        self.status
    }

    /// Looks at the program without blocking: records its exit, and answers its stops (see the
    /// module docs). Also reaps every other child of process-lock: the program's orphaned
    /// descendants, when process-lock is their subreaper (or PID 1); process-lock starts no
    /// other process.
    pub(crate) fn poll(&mut self) -> Result<(), Errno> {
        let flags = WaitPidFlag::WNOHANG | WaitPidFlag::WUNTRACED;
        loop {
            match nix::sys::wait::waitpid(None, Some(flags)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == self.pid => {
                    self.exited(ExitStatus::from_raw((code & 0xff) << 8));
                }
                Ok(WaitStatus::Signaled(pid, signal, core)) if pid == self.pid => {
                    self.exited(ExitStatus::from_raw(
                        signal as i32 | if core { 0x80 } else { 0 },
                    ));
                }
                Ok(WaitStatus::Stopped(pid, signal)) if pid == self.pid => self.stopped(signal),
                Ok(WaitStatus::StillAlive) => return Ok(()),
                Ok(other) => tracing::trace!(?other, "reaped a descendant of the program"),
                Err(Errno::EINTR) => {}
                // No child left at all: the program's own process was reaped earlier.
                Err(Errno::ECHILD) if self.status.is_some() => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    fn exited(&mut self, status: ExitStatus) {
        tracing::debug!(%status, "the program's process exited");
        self.status = Some(status);
        self.take_back_terminal();
    }

    /// Sends `signal` to every process of the program's group; `false` if none is left.
    pub(crate) fn signal(&self, signal: Signal) -> bool {
        match nix::sys::signal::killpg(self.pid, signal) {
            Ok(()) => true,
            Err(Errno::ESRCH) => {
                tracing::debug!(?signal, "no process of the program's group is left");
                false
            }
            Err(e) => {
                tracing::warn!(?signal, "signalling the program's process group: {e}");
                true
            }
        }
    }

    /// Asks every process of the group to stop: SIGTERM, then SIGCONT so that a stopped one
    /// gets it too.
    pub(crate) fn terminate(&self) {
        if self.signal(Signal::SIGTERM) {
            self.signal(Signal::SIGCONT);
        }
    }

    /// Whether no process of the program's group is left. Only meaningful once the program's
    /// own process was reaped (until then, it keeps the group alive).
    pub(crate) fn is_gone(&self) -> bool {
        matches!(
            nix::sys::signal::killpg(self.pid, None::<Signal>),
            Err(Errno::ESRCH)
        )
    }

    /// process-lock was continued (SIGCONT): continues the program, with the terminal if it
    /// had it when it was stopped and process-lock is in the foreground now.
    pub(crate) fn continued(&mut self) {
        if std::mem::take(&mut self.lend_on_continue) && self.status.is_none() {
            self.lend_terminal();
        }
        self.signal(Signal::SIGCONT);
    }

    /// The program's process was stopped by `signal`.
    fn stopped(&mut self, signal: Signal) {
        tracing::debug!(?signal, "the program was stopped");
        if self.terminal.is_none()
            || !matches!(signal, Signal::SIGTTIN | Signal::SIGTTOU | Signal::SIGTSTP)
        {
            // Stopped by someone's SIGSTOP, or without a terminal: not a job-control matter.
            return;
        }
        let wants_terminal = matches!(signal, Signal::SIGTTIN | Signal::SIGTTOU);
        if wants_terminal && !self.lent && self.lend_terminal() {
            self.signal(Signal::SIGCONT);
            return;
        }
        // Ctrl-Z, or the terminal is not ours to lend: process-lock stops too, and the shell
        // shows the job stopped. `continued` carries on from there.
        self.lend_on_continue = self.lent || wants_terminal;
        self.take_back_terminal();
        tracing::debug!("stopping process-lock with the program");
        if let Err(e) = nix::sys::signal::kill(Pid::this(), Signal::SIGSTOP) {
            tracing::warn!("stopping process-lock: {e}");
        }
    }

    /// Makes the program's group the terminal's foreground group, if process-lock's group is
    /// the foreground now; whether it did.
    fn lend_terminal(&mut self) -> bool {
        let Some(terminal) = &self.terminal else {
            return false;
        };
        if nix::unistd::tcgetpgrp(terminal) != Ok(nix::unistd::getpgrp()) {
            return false;
        }
        match nix::unistd::tcsetpgrp(terminal, self.pid) {
            Ok(()) => {
                tracing::debug!("the program has the terminal");
                self.lent = true;
                true
            }
            Err(e) => {
                tracing::warn!("giving the terminal to the program: {e}");
                false
            }
        }
    }

    /// Makes process-lock's group the terminal's foreground group again, if it lent it.
    pub(crate) fn take_back_terminal(&mut self) {
        if !std::mem::take(&mut self.lent) {
            return;
        }
        let Some(terminal) = &self.terminal else {
            return;
        };
        // From a background group, tcsetpgrp raises SIGTTOU (which would stop process-lock)
        // unless this thread blocks it.
        let mut ttou = SigSet::empty();
        ttou.add(Signal::SIGTTOU);
        let mut previous = SigSet::empty();
        let blocked = nix::sys::signal::pthread_sigmask(
            SigmaskHow::SIG_BLOCK,
            Some(&ttou),
            Some(&mut previous),
        );
        if let Err(e) = nix::unistd::tcsetpgrp(terminal, nix::unistd::getpgrp()) {
            tracing::warn!("taking the terminal back from the program: {e}");
        }
        if blocked.is_ok() {
            let _ =
                nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&previous), None);
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        self.take_back_terminal();
    }
}
