//! A tiny backend for the layer tests: no expiry, every capability, and a known answer for
//! each operation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use lock_core::notify::{InProcess, Subscriptions};
use lock_core::{
    Acquire, Capabilities, Error, ErrorKind, FencedAcquire, ForceRelease, LockBackend, LockName,
    Release, Result, Status, Token, Ttl, Watch, async_trait,
};

/// Holds locks in a map; a lock named `broken` answers every operation with an error, and the
/// status of `slow` never comes.
#[derive(Debug)]
pub(crate) struct Fake {
    held: Mutex<HashMap<String, String>>,
    fence: Mutex<u64>,
    subscriptions: Arc<Subscriptions<InProcess>>,
}

impl Fake {
    pub(crate) fn new() -> Self {
        Fake {
            held: Mutex::default(),
            fence: Mutex::new(0),
            subscriptions: Subscriptions::new(InProcess),
        }
    }
}

fn check(name: &LockName) -> Result<()> {
    if name.as_str() == "broken" {
        return Err(Error::new(ErrorKind::Connection, "the fake store is down"));
    }
    Ok(())
}

#[async_trait]
impl LockBackend for Fake {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            remaining_ttl: true,
            notify: true,
            fencing: true,
            queue: false,
            raise_fence: false,
        }
    }

    async fn try_acquire(&self, name: &LockName, token: &Token, _: Ttl) -> Result<Acquire> {
        check(name)?;
        let mut held = self.held.lock().unwrap();
        match held.get(name.as_str()) {
            Some(owner) if owner != token.as_str() => Ok(Acquire::Held { remaining: None }),
            _ => {
                held.insert(name.as_str().to_owned(), token.as_str().to_owned());
                Ok(Acquire::Acquired)
            }
        }
    }

    async fn renew(&self, name: &LockName, token: &Token, _: Ttl) -> Result<bool> {
        check(name)?;
        let held = self.held.lock().unwrap();
        Ok(held.get(name.as_str()).map(String::as_str) == Some(token.as_str()))
    }

    async fn release(&self, name: &LockName, token: &Token) -> Result<Release> {
        check(name)?;
        let mut held = self.held.lock().unwrap();
        let outcome = match held.get(name.as_str()) {
            None => Release::Missing,
            Some(owner) if owner != token.as_str() => Release::NotOwner,
            Some(_) => {
                held.remove(name.as_str());
                Release::Released
            }
        };
        drop(held);
        if outcome == Release::Released {
            self.subscriptions.notify(name.as_str());
        }
        Ok(outcome)
    }

    async fn force_release(&self, name: &LockName) -> Result<ForceRelease> {
        check(name)?;
        let removed = self.held.lock().unwrap().remove(name.as_str());
        Ok(match removed {
            Some(_) => ForceRelease::Released,
            None => ForceRelease::Missing,
        })
    }

    async fn is_held_by(&self, name: &LockName, token: &Token) -> Result<bool> {
        check(name)?;
        let held = self.held.lock().unwrap();
        Ok(held.get(name.as_str()).map(String::as_str) == Some(token.as_str()))
    }

    async fn status(&self, name: &LockName) -> Result<Status> {
        check(name)?;
        if name.as_str() == "slow" {
            std::future::pending::<()>().await;
        }
        Ok(if self.held.lock().unwrap().contains_key(name.as_str()) {
            Status::locked(None)
        } else {
            Status::open()
        })
    }

    async fn try_acquire_fenced(
        &self,
        name: &LockName,
        token: &Token,
        ttl: Ttl,
    ) -> Result<FencedAcquire> {
        match self.try_acquire(name, token, ttl).await? {
            Acquire::Held { remaining } => Ok(FencedAcquire::Held { remaining }),
            _ => {
                let mut fence = self.fence.lock().unwrap();
                *fence += 1;
                Ok(FencedAcquire::Acquired { fence: *fence })
            }
        }
    }

    async fn watch(&self, name: &LockName) -> Result<Watch> {
        check(name)?;
        self.subscriptions.watch(name.as_str().to_owned()).await
    }
}

pub(crate) fn name(s: &str) -> LockName {
    LockName::new(s).unwrap()
}

pub(crate) fn ttl() -> Ttl {
    Ttl::from_secs(30).unwrap()
}
