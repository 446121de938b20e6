//! Randomness from the operating system, for token ids, secrets, nonces and session ids.

use crate::AuthorityError;

/// `N` random bytes from the OS.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], AuthorityError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|err| AuthorityError::Crypto(format!("OS random source: {err}")))?;
    Ok(bytes)
}

/// A random base64url string carrying 256 bits: client secrets, session ids, CSRF tokens.
pub fn random_token() -> Result<String, AuthorityError> {
    Ok(crate::b64url(random_bytes::<32>()?))
}
