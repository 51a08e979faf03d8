//! The command line: global options and the `run`, `status` and `clear` commands.

use std::ffi::OsString;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{ArgAction, CommandFactory, FromArgMatches, Parser, Subcommand};
use process_lock::Backend;

use crate::exit;

/// Run a program under a distributed lock held in Redis, and inspect or clear locks.
///
/// Locks are the keys `process-lock-node` and the process-lock library use: a program run
/// here excludes a Node or Rust process contending for the same name on the same server.
#[derive(Debug, Parser)]
#[command(name = "process-lock", version, max_term_width = 100)]
pub(crate) struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub(crate) global: Global,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command takes, before or after its name.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Global options")]
pub(crate) struct Global {
    /// The Redis client library to talk to the server with.
    #[arg(
        long,
        global = true,
        value_parser = redis_backends(),
        default_value_t = Backend::DEFAULT_REDIS
    )]
    pub(crate) backend: Backend,
    /// The Redis server: redis://[user:password@]host[:port][/db] (rediss:// for TLS when built
    /// with TLS support), a Redis Cluster by its seed nodes
    /// (redis-cluster://host:port?node=host:port&node=host:port), or a primary by its sentinels
    /// (redis-sentinel://host:port/db?sentinelServiceName=name&node=host:port). Several
    /// (repeated, or separated by commas): Redlock, the lock held while a majority of these
    /// independent servers hold it.
    #[arg(
        long,
        global = true,
        env = process_lock::REDIS_URL_ENV,
        hide_env_values = true,
        value_name = "URL",
        value_delimiter = ',',
        action = ArgAction::Append
    )]
    pub(crate) redis_url: Vec<String>,
    /// How long to wait for a connection to the server.
    #[arg(long, global = true, value_name = "DURATION", default_value = "2s")]
    pub(crate) connect_timeout: String,
    /// How long after the Redis server starts a free lock is not granted, since a lock held
    /// before a restart that lost the data may still be in use elsewhere (the delayed restart
    /// rule). Default: the lock's --ttl. Set the longest TTL any process uses, or 0s for a
    /// server whose data survives restarts.
    #[arg(
        long,
        global = true,
        env = "PROCESS_LOCK_RESTART_DELAY",
        value_name = "DURATION"
    )]
    pub(crate) restart_delay: Option<String>,
    /// Replica acknowledgement: after the lock is taken or renewed, wait until this many
    /// replicas have it (WAIT), for at most --replica-timeout; with fewer, taking the lock
    /// fails (exit 69) and it is released again.
    #[arg(long, global = true, value_name = "N")]
    pub(crate) wait_replicas: Option<u32>,
    /// How long to wait for --wait-replicas replicas.
    #[arg(long, global = true, value_name = "DURATION", default_value = "500ms")]
    pub(crate) replica_timeout: String,
    /// With --wait-replicas: wait until the lock is written to the append-only file of the
    /// primary and of that many replicas (WAITAOF; Redis 7.2 or later, appendonly yes).
    #[arg(long, global = true, requires = "wait_replicas")]
    pub(crate) replica_aof: bool,
    /// No progress line, no warnings and no notices on stderr (errors are still reported).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,
    /// Log what happens to stderr; repeat for more detail (-vv, -vvv). Without it, warnings
    /// (Redis out of reach while waiting or releasing) are still shown.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub(crate) verbose: u8,
}

/// `--backend`: the Redis backends, compiled in or not (connecting says which is missing);
/// never `memory`, whose locks no other process would see.
fn redis_backends() -> impl TypedValueParser<Value = Backend> {
    let backends = Backend::ALL
        .into_iter()
        .filter(|backend| backend.is_redis());
    PossibleValuesParser::new(
        backends.map(|backend| PossibleValue::new(backend.name()).help(backend.description())),
    )
    .try_map(|name| name.parse::<Backend>())
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a program while holding the lock: acquire it (or exit 75 at once if it is held and
    /// --wait is not given), start the program, keep the lock renewed, and release it when the
    /// program exits, exiting with the program's own code.
    ///
    /// The program runs in a process group of its own, and signals go to the whole group, so
    /// the processes it starts stop with it. If the lock is lost while the program runs
    /// (cleared, taken over after the server was out of reach for a whole TTL, or lost in a
    /// server restart), the group gets SIGTERM, then SIGKILL after the grace period, and
    /// process-lock exits 70. Processes of the group still running when the program itself
    /// exits get the same, before the lock is released. SIGINT, SIGTERM, SIGHUP, SIGTSTP and
    /// SIGCONT sent to process-lock are forwarded to the group. At a terminal, the program is
    /// given the terminal when it reads from it (then Ctrl-C reaches it directly).
    ///
    /// The program's environment has PROCESS_LOCK_NAME, PROCESS_LOCK_TOKEN (the owner token,
    /// for `clear --token`), PROCESS_LOCK_FENCE (the fencing token, increasing with every
    /// acquisition of the name) and PROCESS_LOCK_TTL_MS.
    #[command(
        override_usage = "process-lock run [OPTIONS] --name <NAME> -- <PROGRAM> [ARGS]...",
        after_help = "Example: process-lock run --name nightly-report --wait --timeout 5m -- ./report.sh --full"
    )]
    Run(RunArgs),
    /// Show whether a lock is open or locked, and how long the holder's lock has left.
    ///
    /// Names are printed escaped (a newline as \n, an escape character as \u{1b}); --json
    /// prints JSON.
    Status(StatusArgs),
    /// Free a lock: with --force whoever holds it, with --token only if that token holds it.
    ///
    /// Exits 0 if the lock was cleared, 1 if another owner holds it (left alone), 3 if no one
    /// held it, 76 if the key is not a lock (left alone). Without --force or --token, clear
    /// can never be the owner, so it only tells "held by another" (1) from "did not exist" (3).
    /// A lock cleared by a Redis user that may not PUBLISH is cleared (0), with a warning that
    /// waiters elsewhere were not notified.
    Clear(ClearArgs),
}

/// `process-lock run`.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// The lock's name (the Redis key).
    #[arg(short, long)]
    pub(crate) name: String,
    /// How long the lock lasts unless renewed (at least 100ms); it is renewed every third of
    /// it, and expires this long after process-lock dies without releasing it.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub(crate) ttl: String,
    /// Wait for the lock while someone else holds it, instead of exiting 75.
    #[arg(short, long)]
    pub(crate) wait: bool,
    /// With --wait: give up (exit 75) after waiting this long.
    #[arg(long, value_name = "DURATION", requires = "wait")]
    pub(crate) timeout: Option<String>,
    /// After the program's process group got SIGTERM (the lock was lost, or the program left
    /// processes running), how long they have to exit before SIGKILL.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub(crate) grace: String,
    /// The program to run and its arguments (after `--`).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PROGRAM"
    )]
    pub(crate) command: Vec<OsString>,
}

/// `process-lock status`.
#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    /// The lock's name.
    pub(crate) name: String,
    /// Print one JSON object: {"name":..,"state":"open"|"locked","remaining_ms":..|null}.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `process-lock clear`.
#[derive(Debug, clap::Args)]
pub(crate) struct ClearArgs {
    /// The lock's name.
    pub(crate) name: String,
    /// Clear the lock whoever holds it.
    #[arg(long, conflicts_with = "token")]
    pub(crate) force: bool,
    /// Clear the lock only if this owner token holds it (for example $PROCESS_LOCK_TOKEN from
    /// inside `process-lock run`).
    #[arg(long, value_name = "TOKEN")]
    pub(crate) token: Option<String>,
    /// Print one JSON object: {"name":..,"outcome":"cleared"|"not_owner"|"missing"}.
    #[arg(long)]
    pub(crate) json: bool,
}

/// The command with the exit-code table after every command's help.
pub(crate) fn command() -> clap::Command {
    let codes = exit::help();
    let mut command = Cli::command().after_help(codes.clone());
    let names: Vec<String> = command
        .get_subcommands()
        .map(|sub| sub.get_name().to_owned())
        .collect();
    for name in names {
        let codes = codes.clone();
        command = command.mut_subcommand(name, move |sub| {
            let help = match sub.get_after_help() {
                Some(example) => format!("{example}\n\n{codes}"),
                None => codes,
            };
            sub.after_help(help)
        });
    }
    command
}

/// Parses the command line, exiting with clap's message (code 2, or 0 for `--help`) when it is
/// not valid.
pub(crate) fn parse() -> Cli {
    let matches = command().get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_from(args: &[&str]) -> Result<Cli, clap::Error> {
        let matches = command().try_get_matches_from(args)?;
        Cli::from_arg_matches(&matches)
    }

    #[test]
    fn the_command_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn run_takes_the_program_after_its_options() {
        let cli = parse_from(&[
            "process-lock",
            "-q",
            "run",
            "--name",
            "job",
            "--wait",
            "--timeout",
            "5m",
            "--",
            "sh",
            "-c",
            "exit 7",
        ])
        .unwrap();
        assert!(cli.global.quiet);
        let Command::Run(run) = cli.command else {
            panic!("not run: {:?}", cli.command)
        };
        assert_eq!(run.name, "job");
        assert_eq!(run.ttl, "30s");
        assert_eq!(run.timeout.as_deref(), Some("5m"));
        assert_eq!(run.command, ["sh", "-c", "exit 7"]);
    }

    #[test]
    fn usage_errors() {
        for args in [
            &["process-lock", "run", "--name", "job"][..],
            &[
                "process-lock",
                "run",
                "--name",
                "j",
                "--timeout",
                "1s",
                "--",
                "true",
            ],
            &["process-lock", "clear", "job", "--force", "--token", "t"],
            &["process-lock", "status"],
            &["process-lock", "-q", "-v", "status", "job"],
            &["process-lock", "--backend", "etcd", "status", "job"],
        ] {
            let err = parse_from(args).err().unwrap_or_else(|| panic!("{args:?}"));
            assert_eq!(err.exit_code(), i32::from(exit::USAGE), "{args:?}");
        }
    }

    #[test]
    fn help_lists_the_exit_codes() {
        let help = command().render_help().to_string();
        assert!(help.contains("Exit codes:"), "{help}");
        assert!(help.contains("128+N"), "{help}");
        let mut command = command();
        let run = command.find_subcommand_mut("run").unwrap();
        let help = run.render_long_help().to_string();
        assert!(help.contains("Example: process-lock run"), "{help}");
        assert!(help.contains("75  run: the lock is held"), "{help}");
    }
}
