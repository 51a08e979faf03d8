//! `process-lock`: run a program under a distributed lock held in Redis, and inspect or clear
//! locks. See the README for the commands and `exit` for the exit codes.

mod cli;
mod connect;
mod duration;
mod exit;
mod inspect;
mod job;
mod log;
mod run;

use std::process::ExitCode;
use std::time::Duration;

use crate::cli::{Cli, Command};
use crate::exit::Failure;

fn main() -> ExitCode {
    let Cli { global, command } = cli::parse();
    log::init(global.quiet, global.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            return report(Failure::new(
                exit::OS_ERROR,
                format!("starting the runtime: {e}"),
            ));
        }
    };
    let outcome = runtime.block_on(async {
        match command {
            Command::Run(args) => run::run(&global, args).await,
            Command::Status(args) => inspect::status(&global, args).await,
            Command::Clear(args) => inspect::clear(&global, args).await,
        }
    });
    // Background work (a connection being made, a release in flight) must not hold the exit up.
    runtime.shutdown_timeout(Duration::from_millis(200));
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(failure) => report(failure),
    }
}

/// Prints `failure` on one line of stderr and returns its code.
fn report(failure: Failure) -> ExitCode {
    eprintln!("process-lock: {failure}");
    ExitCode::from(failure.code)
}
