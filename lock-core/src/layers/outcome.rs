//! The outcome of each operation as a short, fixed word: the `outcome` of a span and the
//! `outcome` label of a metric, so that both layers say the same thing and labels stay bounded.

use crate::backend::{Acquire, FencedAcquire, ForceRelease, Release, Status};
use crate::error::Result;

pub(crate) const ERROR: &str = "error";

pub(crate) fn acquire(outcome: &Result<Acquire>) -> &'static str {
    match outcome {
        Ok(Acquire::Acquired) => "acquired",
        Ok(Acquire::Held { .. }) => "held",
        Err(_) => ERROR,
    }
}

pub(crate) fn fenced(outcome: &Result<FencedAcquire>) -> &'static str {
    match outcome {
        Ok(FencedAcquire::Acquired { .. }) => "acquired",
        Ok(FencedAcquire::Held { .. }) => "held",
        Err(_) => ERROR,
    }
}

pub(crate) fn renew(outcome: &Result<bool>) -> &'static str {
    match outcome {
        Ok(true) => "renewed",
        Ok(false) => "not_held",
        Err(_) => ERROR,
    }
}

pub(crate) fn release(outcome: &Result<Release>) -> &'static str {
    match outcome {
        Ok(Release::Released) => "released",
        Ok(Release::ReleasedWithoutNotice) => "released_without_notice",
        Ok(Release::NotOwner) => "not_owner",
        Ok(Release::Missing) => "missing",
        Err(_) => ERROR,
    }
}

pub(crate) fn force_release(outcome: &Result<ForceRelease>) -> &'static str {
    match outcome {
        Ok(ForceRelease::Released) => "released",
        Ok(ForceRelease::ReleasedWithoutNotice) => "released_without_notice",
        Ok(ForceRelease::Missing) => "missing",
        Err(_) => ERROR,
    }
}

pub(crate) fn status(outcome: &Result<Status>) -> &'static str {
    match outcome {
        Ok(status) => status.state.as_str(),
        Err(_) => ERROR,
    }
}

pub(crate) fn is_held_by(outcome: &Result<bool>) -> &'static str {
    match outcome {
        Ok(true) => "held",
        Ok(false) => "not_held",
        Err(_) => ERROR,
    }
}

pub(crate) fn watch<T>(outcome: &Result<T>) -> &'static str {
    match outcome {
        Ok(_) => "watching",
        Err(_) => ERROR,
    }
}
