//! [`Arg`]: one argument of a script, which costs no allocation to send.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// One argument (`ARGV[i]`) of a [`ScriptCall`](super::ScriptCall): text shared by every call
/// that sends it (a lock's channel, its owner's token), a constant, or a number written in
/// place. Making and cloning one never allocates, except from a `String` (moved into an
/// `Arc<str>` once). It reads as a `&str` (`Deref`, [`as_str`](Arg::as_str)).
///
/// `Debug` shows the length only: an argument may be an owner's token, which lets anyone
/// release the lock.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use lock_core::redis::Arg;
///
/// let channel: Arc<str> = "process-lock:released:jobs".into();
/// let args = [Arg::from(channel), Arg::from(30_000_u64), Arg::from("PUBLISH")];
/// assert_eq!(args, ["process-lock:released:jobs", "30000", "PUBLISH"]);
/// assert_eq!(args[1].len(), 5);
/// assert_eq!(format!("{:?}", args[0]), "Arg(26 bytes)");
/// ```
#[derive(Clone)]
pub struct Arg(Repr);

#[derive(Clone)]
enum Repr {
    Shared(Arc<str>),
    Static(&'static str),
    /// The decimal digits of a `u64` (at most 20), in `digits[start..]`.
    Number {
        digits: [u8; 20],
        start: u8,
    },
}

impl Arg {
    /// The argument's text.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::redis::Arg;
    ///
    /// assert_eq!(Arg::from(u64::MAX).as_str(), "18446744073709551615");
    /// assert_eq!(Arg::from(0_u64).as_str(), "0");
    /// ```
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Shared(text) => text,
            Repr::Static(text) => text,
            // Only ASCII digits are ever written there.
            Repr::Number { .. } => std::str::from_utf8(self.as_bytes()).unwrap_or_default(),
        }
    }

    /// The argument's text as bytes, as a client writes it (without the check that a
    /// number's digits are UTF-8, which [`as_str`](Arg::as_str) makes).
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::redis::Arg;
    ///
    /// assert_eq!(Arg::from(30_000_u64).as_bytes(), b"30000");
    /// assert_eq!(Arg::from("PUBLISH").as_bytes(), b"PUBLISH");
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Shared(text) => text.as_bytes(),
            Repr::Static(text) => text.as_bytes(),
            Repr::Number { digits, start } => &digits[usize::from(*start)..],
        }
    }
}

impl From<u64> for Arg {
    fn from(mut n: u64) -> Self {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            // `n % 10` is below 10.
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        // At most 20 digits: `start` is below 20.
        Arg(Repr::Number {
            digits,
            start: start as u8,
        })
    }
}

impl From<Arc<str>> for Arg {
    fn from(text: Arc<str>) -> Self {
        Arg(Repr::Shared(text))
    }
}

impl From<&Arc<str>> for Arg {
    fn from(text: &Arc<str>) -> Self {
        Arg(Repr::Shared(text.clone()))
    }
}

impl From<&crate::Token> for Arg {
    fn from(token: &crate::Token) -> Self {
        Arg(Repr::Shared(token.shared().clone()))
    }
}

impl From<String> for Arg {
    fn from(text: String) -> Self {
        Arg(Repr::Shared(text.into()))
    }
}

impl From<&'static str> for Arg {
    fn from(text: &'static str) -> Self {
        Arg(Repr::Static(text))
    }
}

impl Deref for Arg {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Arg {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for Arg {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Arg({} bytes)", self.as_bytes().len())
    }
}

impl PartialEq for Arg {
    fn eq(&self, other: &Arg) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Arg {}

impl PartialEq<str> for Arg {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Arg {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Arg {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_their_decimal_text() {
        for n in [
            0,
            1,
            9,
            10,
            99,
            100,
            30_000,
            1 << 52,
            u64::MAX - 1,
            u64::MAX,
        ] {
            assert_eq!(Arg::from(n).as_str(), n.to_string());
            assert_eq!(Arg::from(n).as_bytes(), n.to_string().as_bytes());
        }
    }
}
