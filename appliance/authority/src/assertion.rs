//! `private_key_jwt` client authentication (RFC 7523 §2.2, OpenID Connect Core §9): a client
//! proves itself with a short-lived JWT signed by a key whose public half it registered.

use serde_json::Value;

use crate::jws::{self, int_member, str_member};
use crate::{AuthorityError, PublicJwk, ReplayCache, SignatureAlg};

/// The `client_assertion_type` of RFC 7523.
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Longest accepted assertion lifetime (`exp` − now), seconds.
pub const MAX_ASSERTION_LIFETIME_SECS: u64 = 300;

fn bad(msg: impl Into<String>) -> AuthorityError {
    AuthorityError::InvalidCredentials(format!("client assertion: {}", msg.into()))
}

/// The `iss` of an assertion, read *without* verifying it: only to find the client whose keys
/// then verify it.
pub fn assertion_issuer(assertion: &str) -> Option<String> {
    jws::parse(assertion, "client assertion")
        .ok()
        .and_then(|c| str_member(&c.payload, "iss").map(str::to_owned))
}

/// Parses a registered JWK set (`{"keys":[...]}`): every key must be a public ES256/EdDSA key.
pub fn parse_client_jwks(jwks: &Value) -> Result<Vec<PublicJwk>, AuthorityError> {
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .filter(|keys| !keys.is_empty())
        .ok_or_else(|| {
            AuthorityError::InvalidRequest("jwks needs a non-empty \"keys\" array".into())
        })?;
    keys.iter()
        .enumerate()
        .map(|(i, key)| match key {
            Value::Object(map) => PublicJwk::from_json(map)
                .map_err(|e| AuthorityError::InvalidRequest(format!("jwks key {i}: {e}"))),
            _ => Err(AuthorityError::InvalidRequest(format!(
                "jwks key {i} is not an object"
            ))),
        })
        .collect()
}

/// Verifies a client assertion for `client_id` against its registered `keys`: signature, `iss` =
/// `sub` = client id, `aud` naming one of `audiences` (the token endpoint URL or the issuer),
/// `exp` in the future but at most 5 minutes away, `iat` not in the future, and a `jti` never
/// seen before (kept in `replay` until `exp`).
pub fn verify_client_assertion(
    assertion: &str,
    keys: &[PublicJwk],
    client_id: &str,
    audiences: &[&str],
    now: u64,
    replay: &ReplayCache,
) -> Result<(), AuthorityError> {
    let compact = jws::parse(assertion, "client assertion").map_err(bad)?;
    let alg = str_member(&compact.header, "alg").ok_or_else(|| bad("no \"alg\""))?;
    let alg = SignatureAlg::parse(alg).map_err(bad)?;
    let kid = str_member(&compact.header, "kid");
    let verified = keys
        .iter()
        .filter(|key| kid.is_none_or(|kid| key.thumbprint() == kid))
        .any(|key| key.verify(alg, compact.signing_input.as_bytes(), &compact.signature));
    if !verified {
        return Err(bad("signature does not verify with any registered key"));
    }
    let claims = &compact.payload;
    if str_member(claims, "iss") != Some(client_id) || str_member(claims, "sub") != Some(client_id)
    {
        return Err(bad("iss and sub must both be the client id"));
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(aud)) => audiences.contains(&aud.as_str()),
        Some(Value::Array(auds)) => auds
            .iter()
            .filter_map(Value::as_str)
            .any(|aud| audiences.contains(&aud)),
        _ => false,
    };
    if !aud_ok {
        return Err(bad(format!("aud must name one of {audiences:?}")));
    }
    let exp = int_member(claims, "exp")
        .and_then(|e| u64::try_from(e).ok())
        .ok_or_else(|| bad("no integer \"exp\""))?;
    if exp <= now {
        return Err(bad("expired"));
    }
    if exp > now + MAX_ASSERTION_LIFETIME_SECS {
        return Err(bad("exp is more than 5 minutes away"));
    }
    if let Some(iat) = int_member(claims, "iat")
        && iat > i64::try_from(now + 5).unwrap_or(i64::MAX)
    {
        return Err(bad("iat is in the future"));
    }
    let jti = str_member(claims, "jti")
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| bad("no \"jti\" of 1 to 256 characters"))?;
    replay
        .check_and_insert(&format!("{client_id}\u{0}{jti}"), exp, now)
        .map_err(|_| bad(format!("jti {jti:?} was already used (replay)")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DpopKey;

    #[test]
    fn accepts_once_and_refuses_wrong_audience_client_or_key() {
        let key = DpopKey::generate().unwrap();
        let keys = parse_client_jwks(&serde_json::json!({ "keys": [key.public_jwk()] })).unwrap();
        let replay = ReplayCache::new(16);
        let aud = ["https://s/oauth/token"];
        let good = key.client_assertion("ci", aud[0], 1000).unwrap();
        assert_eq!(assertion_issuer(&good).as_deref(), Some("ci"));
        verify_client_assertion(&good, &keys, "ci", &aud, 1000, &replay).unwrap();
        let err = verify_client_assertion(&good, &keys, "ci", &aud, 1001, &replay).unwrap_err();
        assert!(err.to_string().contains("replay"), "{err}");
        let other_aud = key
            .client_assertion("ci", "https://elsewhere", 1000)
            .unwrap();
        assert!(verify_client_assertion(&other_aud, &keys, "ci", &aud, 1000, &replay).is_err());
        let fresh = key.client_assertion("ci", aud[0], 1000).unwrap();
        assert!(verify_client_assertion(&fresh, &keys, "cd", &aud, 1000, &replay).is_err());
        let thief = DpopKey::generate().unwrap();
        let forged = thief.client_assertion("ci", aud[0], 1000).unwrap();
        let err = verify_client_assertion(&forged, &keys, "ci", &aud, 1000, &replay).unwrap_err();
        assert!(err.to_string().contains("signature"), "{err}");
        // Expired.
        let old = key.client_assertion("ci", aud[0], 1000).unwrap();
        assert!(verify_client_assertion(&old, &keys, "ci", &aud, 1100, &replay).is_err());
    }

    #[test]
    fn registered_jwks_must_be_public_keys() {
        let err = parse_client_jwks(&serde_json::json!({ "keys": [] })).unwrap_err();
        assert!(err.to_string().contains("non-empty"));
        let err = parse_client_jwks(&serde_json::json!({ "keys": [{"kty":"oct","k":"AA"}] }))
            .unwrap_err();
        assert!(err.to_string().contains("private"), "{err}");
    }
}
