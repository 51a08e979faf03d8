//! `process-lock status` and `process-lock clear`.

use process_lock::{Cleared, LockName, LockState, ProcessLock, Token, Ttl};

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
        match (status.state, status.remaining) {
            (LockState::Open, _) => println!("{}: open", name.as_str()),
            (_, Some(left)) => println!("{}: locked, expires in {}", name.as_str(), Human(left)),
            (_, None) => println!("{}: locked, with no expiry", name.as_str()),
        }
    }
    Ok(exit::OK)
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
    // The timeout plays no part in clearing.
    let ttl = Ttl::from_secs(1).map_err(|e| Failure::from_error("clearing", &e))?;
    let lock = ProcessLock::from_parts(backend, name.clone(), token, ttl);
    let cleared = lock
        .clear(args.force)
        .await
        .map_err(|e| Failure::from_error("clearing the lock", &e))?;
    let (code, outcome, text) = match cleared {
        Cleared::Cleared => (exit::OK, "cleared", "cleared"),
        Cleared::NotOwner => (
            exit::NOT_OWNER,
            "not_owner",
            "not cleared: another owner holds it (--force clears it anyway)",
        ),
        _ => (exit::MISSING, "missing", "did not exist"),
    };
    if args.json {
        println!(
            "{{\"name\":{},\"outcome\":\"{outcome}\"}}",
            json_string(name.as_str())
        );
    } else if !global.quiet {
        println!("{}: {text}", name.as_str());
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
