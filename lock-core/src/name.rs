//! Lock names: validated once, then shared cheaply.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};

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
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LockName(Arc<str>);

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
        Ok(LockName(Arc::from(name)))
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
        &self.0
    }

    /// Where this name's text lives: clones of one name share it.
    pub(crate) fn addr(&self) -> usize {
        Arc::as_ptr(&self.0).cast::<u8>() as usize
    }

    /// Whether `other` is a clone of this very name (not merely the same text).
    pub(crate) fn same_as(&self, other: &LockName) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl AsRef<str> for LockName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for LockName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LockName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for LockName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
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
