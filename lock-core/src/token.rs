//! Owner tokens: the random value that says which handle holds a lock.

use std::borrow::Borrow;
use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};

/// The owner of a lock: the value stored under the lock's key.
///
/// A fresh token is 128 bits from the operating system's cryptographically secure generator,
/// written as 32 lowercase hex digits. Anyone who knows the token can renew or release the lock,
/// so `Debug` shows only its first 8 digits and it has no `Display`: use
/// [`as_str`](Token::as_str) where the full value is really needed.
///
/// # Examples
///
/// ```
/// use lock_core::Token;
///
/// let token = Token::generate()?;
/// assert_eq!(token.as_str().len(), 32);
/// assert!(!format!("{token:?}").contains(token.as_str()));
/// # Ok::<(), lock_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Token(Arc<str>);

/// Bytes from the operating system's generator, drawn [`POOL_LEN`] at a time: one system call
/// per 16 tokens instead of one per token (a fifth of an uncontended lock's own CPU time went
/// to it). Each thread has its own; a pool filled in another process (a forked child copies
/// its parent's memory) is drawn again, so two processes never hand out the same bytes.
struct Pool {
    bytes: [u8; POOL_LEN],
    next: usize,
    pid: u32,
}

const POOL_LEN: usize = 256;
const TOKEN_BYTES: usize = 16;

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool { bytes: [0; POOL_LEN], next: POOL_LEN, pid: 0 })
    };
}

/// 128 fresh bits from the pool, which no one else gets (they are wiped from the pool).
fn random_bytes() -> Result<[u8; TOKEN_BYTES]> {
    POOL.with_borrow_mut(|pool| {
        let pid = std::process::id();
        if pool.next + TOKEN_BYTES > POOL_LEN || pool.pid != pid {
            getrandom::fill(&mut pool.bytes).map_err(|e| {
                Error::new(ErrorKind::Backend, "the system random generator failed")
                    .with_source(e.to_string())
            })?;
            pool.next = 0;
            pool.pid = pid;
        }
        let taken = &mut pool.bytes[pool.next..pool.next + TOKEN_BYTES];
        let mut out = [0u8; TOKEN_BYTES];
        out.copy_from_slice(taken);
        taken.fill(0);
        pool.next += TOKEN_BYTES;
        Ok(out)
    })
}

impl Token {
    /// Longest token accepted by [`Token::from_string`], in bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::Token;
    ///
    /// assert!(Token::from_string("x".repeat(Token::MAX_LEN)).is_ok());
    /// assert!(Token::from_string("x".repeat(Token::MAX_LEN + 1)).is_err());
    /// ```
    pub const MAX_LEN: usize = 1024;

    /// A fresh random token.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Backend`] if the operating system's random generator fails (practically
    /// never, but it is not hidden behind a panic).
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::Token;
    ///
    /// let (a, b) = (Token::generate()?, Token::generate()?);
    /// assert_ne!(a, b);
    /// assert!(a.as_str().chars().all(|c| c.is_ascii_hexdigit()));
    /// # Ok::<(), lock_core::Error>(())
    /// ```
    pub fn generate() -> Result<Self> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let bytes = random_bytes()?;
        let mut hex = [0u8; 2 * TOKEN_BYTES];
        for (pair, b) in hex.chunks_exact_mut(2).zip(bytes) {
            pair[0] = HEX[usize::from(b >> 4)];
            pair[1] = HEX[usize::from(b & 0xf)];
        }
        let hex = std::str::from_utf8(&hex).map_err(|e| {
            Error::new(ErrorKind::Backend, "hex digits are UTF-8").with_source(e.to_string())
        })?;
        Ok(Token(Arc::from(hex)))
    }

    /// A token with a given value, for taking over a lock known by its token (for example one
    /// written by another program) or for tests.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] if `value` is empty or longer than [`Token::MAX_LEN`] bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::Token;
    ///
    /// let token = Token::from_string("written-by-node-0001")?;
    /// assert_eq!(token.as_str(), "written-by-node-0001");
    /// assert!(Token::from_string("").is_err());
    /// # Ok::<(), lock_core::Error>(())
    /// ```
    pub fn from_string(value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        if value.is_empty() {
            return Err(Error::invalid_input("owner token is empty"));
        }
        if value.len() > Self::MAX_LEN {
            return Err(Error::invalid_input(format!(
                "owner token is {} bytes long; the limit is {} bytes",
                value.len(),
                Self::MAX_LEN
            )));
        }
        Ok(Token(Arc::from(value)))
    }

    /// The full token, as stored in the lock's key.
    ///
    /// # Examples
    ///
    /// ```
    /// use lock_core::Token;
    ///
    /// assert_eq!(Token::from_string("0123abcd")?.as_str(), "0123abcd");
    /// # Ok::<(), lock_core::Error>(())
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The token's text, shared (a script argument clones it without allocating).
    pub(crate) fn shared(&self) -> &Arc<str> {
        &self.0
    }
}

/// A token compares and hashes as its text, so maps keyed by tokens are looked up by text.
impl Borrow<str> for Token {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: String = self.0.chars().take(8).collect();
        write!(f, "Token({shown}…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn tokens_are_hex_and_distinct() {
        let tokens: HashSet<String> = (0..1000)
            .map(|_| Token::generate().unwrap().as_str().to_owned())
            .collect();
        assert_eq!(tokens.len(), 1000);
        for t in &tokens {
            assert_eq!(t.len(), 32);
            assert!(
                t.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
        }
    }

    #[test]
    fn from_string_validates() {
        assert_eq!(
            Token::from_string("").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            Token::from_string("x".repeat(Token::MAX_LEN + 1))
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(Token::from_string("abc").unwrap().as_str(), "abc");
    }

    #[test]
    fn debug_hides_the_token() {
        let t = Token::generate().unwrap();
        let shown = format!("{t:?}");
        assert!(!shown.contains(t.as_str()));
        assert!(shown.contains(&t.as_str()[..8]));
    }
}
