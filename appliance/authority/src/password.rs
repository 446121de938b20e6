//! Secrets at rest: client secrets and user passwords are stored only as argon2id PHC strings
//! (argon2 crate defaults: m=19 MiB, t=2, p=1, per OWASP).

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::AuthorityError;

fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// Hashes `secret` with argon2id and a random salt, as a PHC string (`$argon2id$v=19$...`).
pub fn hash_secret(secret: &str) -> Result<String, AuthorityError> {
    hasher()
        .hash_password(secret.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|err| AuthorityError::Crypto(format!("argon2id hashing: {err}")))
}

/// Whether `secret` matches the PHC string `phc`. A malformed `phc` never matches.
pub fn verify_secret(secret: &str, phc: &str) -> bool {
    // Only argon2id hashes are accepted, whatever the string claims.
    phc.starts_with("$argon2id$") && hasher().verify_password(secret.as_bytes(), phc).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_round_trip() {
        let phc = hash_secret("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$"), "{phc}");
        assert!(verify_secret("correct horse", &phc));
        assert!(!verify_secret("correct horsE", &phc));
        assert!(!verify_secret("correct horse", "not a hash"));
        // Two hashes of one secret differ (random salt).
        assert_ne!(phc, hash_secret("correct horse").unwrap());
    }
}
