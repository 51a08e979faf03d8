//! `process-lock status` and `process-lock clear`.

use process_lock::raw::ForceRelease;
use process_lock::{Lock, LockName, LockState, Release, Token};

use crate::cli::{ClearArgs, Global, StatusArgs};
use crate::connect::Target;
use crate::duration::Human;
use crate::exit::{self, Failure};

/// Prints whether the lock is open or locked, and for how long.
pub(crate) async fn status(global: &Global, args: StatusArgs) -> Result<u8, Failure> {
    let name = lock_name(&args.name)?;
    let backend = Target::from_options(global)?.connect().await?;
    let status = backend
        .status(&name)
        .await
        .map_err(|e| Failure::from_error("reading the lock's status", &e))?;
    let remaining_ms = status
        .remaining
        .map(|left| u64::try_from(left.as_millis()).unwrap_or(u64::MAX));
    if args.json {
        // In this order, as documented (serde_json's objects would sort the keys).
        let remaining_ms = remaining_ms.map_or_else(|| "null".to_owned(), |ms| ms.to_string());
        println!(
            "{{\"name\":{},\"state\":\"{}\",\"remaining_ms\":{remaining_ms}}}",
            json_string(name.as_str()),
            status.state.as_str(),
        );
    } else {
        let shown = exit::escape(name.as_str());
        match (status.state, status.remaining) {
            (LockState::Open, _) => println!("{shown}: open"),
            (_, Some(left)) => println!("{shown}: locked, expires in {}", Human(left)),
            (_, None) => println!("{shown}: locked, with no expiry"),
        }
    }
    Ok(exit::OK)
}

/// What `clear` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Freed; `notified`: waiters in other processes were told.
    Cleared { notified: bool },
    /// Another owner holds it.
    NotOwner,
    /// No one held it.
    Missing,
}

/// Clears the lock, and tells which of the three outcomes it was.
pub(crate) async fn clear(global: &Global, args: ClearArgs) -> Result<u8, Failure> {
    let name = lock_name(&args.name)?;
    let token = match &args.token {
        Some(token) => Token::from_string(token.as_str())
            .map_err(|e| Failure::new(exit::BAD_INPUT, format!("--token: {e}")))?,
        None => Token::generate().map_err(|e| Failure::from_error("making a token", &e))?,
    };
    let backend = Target::from_options(global)?.connect().await?;
    // The backend's own answers, which tell a release that could not notify waiters.
    let outcome = if args.force {
        match backend.force_release(&name).await {
            Ok(ForceRelease::Released) => Ok(Outcome::Cleared { notified: true }),
            Ok(ForceRelease::ReleasedWithoutNotice) => Ok(Outcome::Cleared { notified: false }),
            Ok(_) => Ok(Outcome::Missing),
            Err(e) => Err(e),
        }
    } else {
        match backend.release(&name, &token).await {
            Ok(Release::Released) => Ok(Outcome::Cleared { notified: true }),
            Ok(Release::ReleasedWithoutNotice) => Ok(Outcome::Cleared { notified: false }),
            Ok(Release::NotOwner) => Ok(Outcome::NotOwner),
            Ok(_) => Ok(Outcome::Missing),
            Err(e) => Err(e),
        }
    }
    .map_err(|e| Failure::from_error("clearing the lock", &e))?;
    if outcome == (Outcome::Cleared { notified: false }) && !global.quiet {
        eprintln!(
            "process-lock: warning: cleared lock {:?}, but waiters in other processes were not \
             notified (the Redis user may not PUBLISH on its channel); they find it free when \
             they next check (every {} for process-lock)",
            name.as_str(),
            Human(Lock::DEFAULT_RECHECK)
        );
    }
    let (code, outcome, text) = match outcome {
        Outcome::Cleared { .. } => (exit::OK, "cleared", "cleared"),
        Outcome::NotOwner => (
            exit::NOT_OWNER,
            "not_owner",
            "not cleared: another owner holds it (--force clears it anyway)",
        ),
        Outcome::Missing => (exit::MISSING, "missing", "did not exist"),
    };
    if args.json {
        println!(
            "{{\"name\":{},\"outcome\":\"{outcome}\"}}",
            json_string(name.as_str())
        );
    } else if !global.quiet {
        println!("{}: {text}", exit::escape(name.as_str()));
    }
    Ok(code)
}

fn lock_name(name: &str) -> Result<LockName, Failure> {
    LockName::new(name).map_err(|e| Failure::new(exit::BAD_INPUT, format!("lock name: {e}")))
}

/// `text` as a JSON string literal.
fn json_string(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}
