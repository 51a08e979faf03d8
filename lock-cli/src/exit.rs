//! Every exit code of `process-lock`, in one place: the constants the commands return, the table
//! `--help` prints, and [`Failure`], an exit code with its one-line message.
//!
//! The codes of process-lock itself come from `sysexits.h` (64 and up), as `consul lock` and
//! other wrappers do, so that they rarely clash with a wrapped program's own codes, which
//! `run` passes through.

use std::fmt;

use process_lock::{Error, ErrorKind};

/// Success: `run`'s program exited 0, `status` answered (open or locked), `clear` cleared.
pub(crate) const OK: u8 = 0;
/// `clear` without `--force`: another owner holds the lock; it was left alone.
pub(crate) const NOT_OWNER: u8 = 1;
/// Usage error: an unknown option, a missing argument (clap's own code).
pub(crate) const USAGE: u8 = 2;
/// `clear`: no one held the lock.
pub(crate) const MISSING: u8 = 3;
/// Bad input (`EX_USAGE`): a malformed duration, a TTL too short to renew, a lock name or
/// owner token.
pub(crate) const BAD_INPUT: u8 = 64;
/// The Redis server cannot be reached or does not answer in time, or too few replicas
/// acknowledged a lock (`EX_UNAVAILABLE`).
pub(crate) const UNAVAILABLE: u8 = 69;
/// `run`: the lock was lost while the program ran (`EX_SOFTWARE`).
pub(crate) const LOCK_LOST: u8 = 70;
/// An operating-system failure of process-lock itself, such as setting up signal handling or
/// waiting for the program (`EX_OSERR`).
pub(crate) const OS_ERROR: u8 = 71;
/// `run`: the lock is held by another owner and `--wait` was not given, or `--timeout` passed
/// (`EX_TEMPFAIL`).
pub(crate) const HELD: u8 = 75;
/// The server answered something unexpected, or the key is not a lock (`EX_PROTOCOL`).
pub(crate) const PROTOCOL: u8 = 76;
/// The server refused a command to this Redis user (an ACL without `EVALSHA`, `SUBSCRIBE`,
/// ..., `NOPERM`): `EX_NOPERM`.
pub(crate) const PERMISSION: u8 = 77;
/// Configuration: `REDIS_URL` (or `--redis-url`) missing or malformed, or credentials the
/// server refuses (`EX_CONFIG`).
pub(crate) const CONFIG: u8 = 78;
/// `run`: the program exists but cannot be executed (as shells do).
pub(crate) const CANNOT_EXECUTE: u8 = 126;
/// `run`: the program was not found (as shells do).
pub(crate) const NOT_FOUND: u8 = 127;
/// `run`: 128 + N for a program killed by signal N, or for process-lock itself interrupted by
/// signal N (SIGINT: 130, SIGTERM: 143) while waiting for the lock.
pub(crate) const SIGNAL_BASE: u8 = 128;

/// Every code with what it means, as `--help` and the README list them.
pub(crate) const TABLE: &[(&str, &str)] = &[
    (
        "0",
        "success: run's program exited 0; status answered (open or locked); clear cleared the lock",
    ),
    (
        "1",
        "clear: another owner holds the lock; it was left alone",
    ),
    ("2", "usage error: unknown option, missing argument"),
    ("3", "clear: the lock did not exist (no one held it)"),
    (
        "64",
        "bad input: a malformed duration, a --ttl below 100ms, a lock name or owner token",
    ),
    (
        "69",
        "the Redis server cannot be reached or did not answer in time, or fewer replicas than \
         --wait-replicas acknowledged the lock",
    ),
    (
        "70",
        "run: the lock was lost while the program ran (the program was stopped)",
    ),
    (
        "71",
        "run: an operating-system error (signal handling, waiting for the program)",
    ),
    (
        "75",
        "run: the lock is held (or not granted yet after a server restart) and --wait was \
         not given, or --timeout passed",
    ),
    (
        "76",
        "the server answered something unexpected, or the key is not a lock (another type)",
    ),
    (
        "77",
        "the server refused a command to this Redis user (ACL, NOPERM): grant it the \
         commands process-lock needs",
    ),
    (
        "78",
        "REDIS_URL (--redis-url) is missing or malformed, or the server refused the user \
         name or password",
    ),
    ("126", "run: the program cannot be executed"),
    ("127", "run: the program was not found"),
    (
        "128+N",
        "run: the program was killed by signal N, or process-lock was interrupted by \
         signal N while waiting for the lock",
    ),
    ("other", "run: the program's own exit code, passed through"),
];

/// The exit-code table as `--help` shows it.
pub(crate) fn help() -> String {
    let mut text = String::from("Exit codes:\n");
    for (code, meaning) in TABLE {
        text.push_str(&format!("  {code:>6}  {meaning}\n"));
    }
    text.push_str(
        "\nA wrapped program's own code can coincide with one of process-lock's; the one-line \
         message on stderr (process-lock: ...) tells them apart.",
    );
    text
}

/// A command that could not do its job: the exit code, and one line for stderr.
#[derive(Debug)]
pub(crate) struct Failure {
    /// The exit code.
    pub(crate) code: u8,
    /// What went wrong, on one line, without the `process-lock: ` prefix.
    pub(crate) message: String,
}

impl Failure {
    /// A failure with `code` and `message`.
    pub(crate) fn new(code: u8, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: one_line(&message.into()),
        }
    }

    /// The failure for a library error met while `doing` something.
    pub(crate) fn from_error(doing: &str, error: &Error) -> Self {
        Failure::new(code_of(error.kind()), format!("{doing}: {error}"))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The exit code for an error of `kind`.
pub(crate) fn code_of(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::InvalidInput => BAD_INPUT,
        ErrorKind::Config => CONFIG,
        ErrorKind::Connection | ErrorKind::Timeout | ErrorKind::NotReplicated => UNAVAILABLE,
        ErrorKind::PermissionDenied => PERMISSION,
        _ => PROTOCOL,
    }
}

/// `text` on one line: line breaks (from an underlying error's message) become spaces, and
/// other control characters are [escaped](escape), so that nothing in it (a lock name with an
/// escape sequence) can act on the terminal.
pub(crate) fn one_line(text: &str) -> String {
    let joined = text
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if joined.chars().any(char::is_control) {
        joined
            .chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_debug().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect()
    } else {
        joined
    }
}

/// `text` (a lock name) for plain-text output: as Rust's `escape_debug` writes it, except for
/// quotes, which are left alone. Control characters (a newline, an escape sequence), invisible
/// formatting characters and backslashes come out as `\n`, `\u{1b}`, `\\`, so that a name
/// can neither act on the terminal nor forge a line of output.
pub(crate) fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\'' => c.to_string(),
            _ => c.escape_debug().to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_distinct_and_documented() {
        let codes = [
            OK,
            NOT_OWNER,
            USAGE,
            MISSING,
            BAD_INPUT,
            UNAVAILABLE,
            LOCK_LOST,
            OS_ERROR,
            HELD,
            PROTOCOL,
            PERMISSION,
            CONFIG,
            CANNOT_EXECUTE,
            NOT_FOUND,
        ];
        let mut sorted = codes.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), codes.len(), "two codes share a value");
        let readme = include_str!("../README.md");
        for code in codes {
            let code = code.to_string();
            assert!(
                TABLE.iter().any(|(c, _)| *c == code),
                "{code} is missing from the --help table"
            );
            assert!(
                readme.contains(&format!("| {code} |")),
                "{code} is missing from the README's table"
            );
        }
        assert!(readme.contains("| 128+N |"));
        assert_eq!(
            TABLE.len(),
            codes.len() + 2,
            "the table lists an unknown code"
        );
    }

    #[test]
    fn messages_are_one_line() {
        assert_eq!(one_line("a\nb\r\n c\n"), "a b c");
        let failure = Failure::from_error(
            "connecting",
            &Error::new(ErrorKind::Connection, "refused\nagain"),
        );
        assert_eq!(failure.code, UNAVAILABLE);
        assert_eq!(
            failure.to_string(),
            "connecting: connection error: refused again"
        );
        assert_eq!(code_of(ErrorKind::Config), CONFIG);
        assert_eq!(code_of(ErrorKind::InvalidInput), BAD_INPUT);
        assert_eq!(code_of(ErrorKind::WrongType), PROTOCOL);
        assert_eq!(code_of(ErrorKind::PermissionDenied), PERMISSION);
        assert_eq!(PERMISSION, 77, "EX_NOPERM");
        assert_eq!(code_of(ErrorKind::Timeout), UNAVAILABLE);
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("nightly-report"), "nightly-report");
        assert_eq!(escape("job \"a\" it's"), "job \"a\" it's");
        assert_eq!(escape("a\nb\x1b[31mc\\"), "a\\nb\\u{1b}[31mc\\\\");
        assert_eq!(escape("\u{202e}x"), "\\u{202e}x");
        assert_eq!(escape("café"), "café");
        assert_eq!(
            one_line("lock \"a\x1b[2J\" lost\nagain"),
            "lock \"a\\u{1b}[2J\" lost again"
        );
    }
}
