//! Lock timeouts: whole milliseconds, as Redis's `PX` counts them.

use std::fmt;
use std::time::Duration;

use crate::error::{Error, Result};

/// A validated lock timeout (time to live): how long a lock lasts unless renewed.
///
/// Stores count expiry in whole milliseconds, so a `Ttl` is a whole number of milliseconds from
/// 1 to [`Ttl::MAX_MILLIS`]; a [`Duration`] with a fraction of a millisecond is rounded up, so a
/// lock never lasts shorter than asked. Sub-second timeouts are fine.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use lock_core::Ttl;
///
/// assert_eq!(Ttl::new(Duration::from_millis(250))?.as_millis(), 250);
/// assert_eq!(Ttl::new(Duration::from_micros(1500))?.as_millis(), 2);
/// assert_eq!(Ttl::from_secs(30)?.as_duration(), Duration::from_secs(30));
/// assert!(Ttl::new(Duration::ZERO).is_err());
/// # Ok::<(), lock_core::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ttl(u64);

impl Ttl {
    /// The longest timeout, in milliseconds: 2^53 − 1 (about 285,000 years), the largest whole
    /// number that every store and script language (Lua numbers are doubles) holds exactly.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::Ttl;
    ///
    /// assert!(Ttl::from_millis(Ttl::MAX_MILLIS).is_ok());
    /// assert!(Ttl::from_millis(Ttl::MAX_MILLIS + 1).is_err());
    /// ```
    pub const MAX_MILLIS: u64 = (1 << 53) - 1;

    /// Validates `timeout`, rounding a fraction of a millisecond up.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) if `timeout` is zero or longer
    /// than [`Ttl::MAX_MILLIS`] milliseconds.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use lock_core::Ttl;
    ///
    /// assert_eq!(Ttl::new(Duration::from_millis(1500))?.as_millis(), 1500);
    /// assert!(Ttl::new(Duration::ZERO).is_err());
    /// # Ok::<(), lock_core::Error>(())
    /// ```
    pub fn new(timeout: Duration) -> Result<Self> {
        if timeout.is_zero() {
            return Err(Error::invalid_input("lock timeout is zero"));
        }
        let millis = timeout.as_nanos().div_ceil(1_000_000);
        match u64::try_from(millis) {
            Ok(ms) if ms <= Self::MAX_MILLIS => Ok(Ttl(ms)),
            _ => Err(Error::invalid_input(format!(
                "lock timeout of {timeout:?} is too large: the limit is {} ms",
                Self::MAX_MILLIS
            ))),
        }
    }

    /// A timeout of whole seconds, as `process-lock-node` takes it.
    ///
    /// # Errors
    ///
    /// As [`Ttl::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::Ttl;
    ///
    /// assert_eq!(Ttl::from_secs(30)?.as_millis(), 30_000);
    /// # Ok::<(), lock_core::Error>(())
    /// ```
    pub fn from_secs(secs: u64) -> Result<Self> {
        Ttl::new(Duration::from_secs(secs))
    }

    /// A timeout of whole milliseconds.
    ///
    /// # Errors
    ///
    /// As [`Ttl::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::Ttl;
    ///
    /// assert_eq!(Ttl::from_millis(250)?.as_millis(), 250);
    /// # Ok::<(), lock_core::Error>(())
    /// ```
    pub fn from_millis(millis: u64) -> Result<Self> {
        Ttl::new(Duration::from_millis(millis))
    }

    /// The timeout in milliseconds, always from 1 to [`Ttl::MAX_MILLIS`].
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::Ttl;
    ///
    /// assert_eq!(Ttl::from_secs(2)?.as_millis(), 2000);
    /// # Ok::<(), lock_core::Error>(())
    /// ```
    pub fn as_millis(self) -> u64 {
        self.0
    }

    /// The timeout as a [`Duration`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use lock_core::Ttl;
    ///
    /// assert_eq!(Ttl::from_secs(2)?.as_duration(), Duration::from_secs(2));
    /// # Ok::<(), lock_core::Error>(())
    /// ```
    pub fn as_duration(self) -> Duration {
        Duration::from_millis(self.0)
    }
}

impl fmt::Debug for Ttl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

impl fmt::Display for Ttl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.as_duration(), f)
    }
}

impl TryFrom<Duration> for Ttl {
    type Error = Error;

    fn try_from(timeout: Duration) -> Result<Self> {
        Ttl::new(timeout)
    }
}

impl From<Ttl> for Duration {
    fn from(ttl: Ttl) -> Duration {
        ttl.as_duration()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn bounds() {
        assert_eq!(Ttl::new(Duration::from_nanos(1)).unwrap().as_millis(), 1);
        let max = Duration::from_millis(Ttl::MAX_MILLIS);
        assert_eq!(Ttl::new(max).unwrap().as_millis(), Ttl::MAX_MILLIS);
        for bad in [
            Duration::ZERO,
            max + Duration::from_nanos(1),
            Duration::MAX,
            Duration::from_secs(u64::MAX / 1000 + 1),
        ] {
            let err = Ttl::new(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
        }
    }

    #[test]
    fn from_secs_rejects_overflowing_seconds() {
        assert_eq!(
            Ttl::from_secs(u64::MAX).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            Ttl::from_secs(0).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }
}
