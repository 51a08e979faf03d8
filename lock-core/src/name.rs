//! Lock names: validated once, then shared cheaply.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

use crate::error::{Error, Result};
use crate::redis::calls::NameKeys;

/// A validated lock name: the key under which the lock lives in the store.
///
/// Any UTF-8 text from 1 to [`LockName::MAX_LEN`] bytes is a valid name, spaces, colons, braces
/// and non-ASCII letters included; the store sees it byte for byte (on Redis, the key is the name,
/// as in `process-lock-node`). Cloning is a reference-count increment.
///
/// # Examples
///
/// ```
/// use lock_core::{ErrorKind, LockName};
///
/// let name = LockName::new("nightly-report")?;
/// assert_eq!(name.as_str(), "nightly-report");
///
/// let err = LockName::new("").unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::InvalidInput);
/// # Ok::<(), lock_core::Error>(())
/// ```
#[derive(Clone)]
pub struct LockName(Arc<Named>);

/// A name's text, and what the Redis protocol derives from it.
struct Named {
    text: Box<str>,
    /// The keys, channels and arguments the Redis scripts send for this name, in the first
    /// key space it was used in: derived at its first call, then shared by every call on this
    /// name and its clones (a `Lock` or `ProcessLock` passes a clone of its name every time).
    redis: OnceLock<Box<NameKeys>>,
}

impl LockName {
    /// The longest name accepted, in bytes of UTF-8.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::LockName;
    ///
    /// assert!(LockName::new("x".repeat(LockName::MAX_LEN)).is_ok());
    /// assert!(LockName::new("x".repeat(LockName::MAX_LEN + 1)).is_err());
    /// ```
    pub const MAX_LEN: usize = 1024;

    /// Validates `name`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) if `name` is empty or longer
    /// than [`LockName::MAX_LEN`] bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::LockName;
    ///
    /// let name = LockName::new("billing:{eu}:invoices")?;
    /// assert_eq!(name.as_str(), "billing:{eu}:invoices");
    /// # Ok::<(), lock_core::Error>(())
    /// ```
    pub fn new(name: impl AsRef<str>) -> Result<Self> {
        let name = name.as_ref();
        if name.is_empty() {
            return Err(Error::invalid_input("lock name is empty"));
        }
        if name.len() > Self::MAX_LEN {
            return Err(Error::invalid_input(format!(
                "lock name is {} bytes long; the limit is {} bytes",
                name.len(),
                Self::MAX_LEN
            )));
        }
        Ok(LockName(Arc::new(Named {
            text: name.into(),
            redis: OnceLock::new(),
        })))
    }

    /// The name as text.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::LockName;
    ///
    /// assert_eq!(LockName::new("jobs")?.as_str(), "jobs");
    /// # Ok::<(), lock_core::Error>(())
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0.text
    }

    /// Where this name's text lives: clones of one name share it.
    pub(crate) fn addr(&self) -> usize {
        Arc::as_ptr(&self.0).cast::<u8>() as usize
    }

    /// Whether `other` is a clone of this very name (not merely the same text).
    pub(crate) fn same_as(&self, other: &LockName) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The Redis keys derived from this name in the first key space it was used in (see
    /// [`NameKeys`]).
    pub(crate) fn redis_keys(&self) -> &OnceLock<Box<NameKeys>> {
        &self.0.redis
    }
}

// Names compare, hash and order by their text alone.
impl PartialEq for LockName {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for LockName {}

impl Hash for LockName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialOrd for LockName {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for LockName {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl AsRef<str> for LockName {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for LockName {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for LockName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for LockName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl TryFrom<&str> for LockName {
    type Error = Error;

    fn try_from(name: &str) -> Result<Self> {
        LockName::new(name)
    }
}

impl TryFrom<String> for LockName {
    type Error = Error;

    fn try_from(name: String) -> Result<Self> {
        LockName::new(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn accepts_the_limit_and_rejects_one_more_byte() {
        assert!(LockName::new("x".repeat(LockName::MAX_LEN)).is_ok());
        let err = LockName::new("x".repeat(LockName::MAX_LEN + 1)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("1025 bytes"), "{err}");
    }

    #[test]
    fn counts_bytes_not_chars() {
        // 'é' is two bytes: 513 of them is 1026 bytes.
        assert!(LockName::new("é".repeat(512)).is_ok());
        assert!(LockName::new("é".repeat(513)).is_err());
    }

    #[test]
    fn any_text_is_a_name() {
        for name in ["a b", "a:b", "{a}", "ключ", "🔒", "\n"] {
            assert_eq!(LockName::new(name).unwrap().as_str(), name);
        }
    }
}
