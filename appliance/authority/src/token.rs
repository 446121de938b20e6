//! Access tokens: short-lived JWTs (`typ: at+jwt`, RFC 9068 shape) signed by a
//! [`TokenSigner`], optionally bound to a DPoP key through `cnf.jkt` (RFC 9449 §6). The
//! validator keeps a bounded cache of verified tokens keyed by the token's SHA-256, so a token
//! used on many requests pays for one signature verification.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use stella_core::Clock;

use crate::jws::{self, b64url};
use crate::{AuthorityError, PublicJwk, ScopeSet, SignatureAlg, TokenSigner};

/// Access-token lifetime, clamped to the 2–5 minutes of seed §7.4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenLifetime(u64);

impl TokenLifetime {
    /// Shortest allowed lifetime, seconds.
    pub const MIN_SECS: u64 = 120;
    /// Longest allowed lifetime, seconds.
    pub const MAX_SECS: u64 = 300;

    /// A lifetime of `secs`, clamped into `[MIN_SECS, MAX_SECS]`.
    pub fn clamped(secs: u64) -> Self {
        Self(secs.clamp(Self::MIN_SECS, Self::MAX_SECS))
    }

    /// Seconds.
    pub fn secs(self) -> u64 {
        self.0
    }
}

impl Default for TokenLifetime {
    fn default() -> Self {
        Self(Self::MAX_SECS)
    }
}

/// The `cnf` claim: the SHA-256 thumbprint of the DPoP key the token is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// RFC 7638 thumbprint, base64url.
    pub jkt: String,
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer: the appliance's base URL.
    pub iss: String,
    /// Subject: the client id (or the user for console-issued tokens).
    pub sub: String,
    /// Audience: the appliance API.
    pub aud: String,
    /// Space-separated scopes.
    pub scope: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Unique token id.
    pub jti: String,
    /// The OAuth client the token was issued to.
    pub client_id: String,
    /// The DPoP binding, absent for bearer tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// A token as the token endpoint returns it.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The compact JWT.
    pub access_token: String,
    /// `DPoP` when bound, `Bearer` otherwise.
    pub token_type: &'static str,
    /// Seconds until expiry.
    pub expires_in: u64,
    /// The claims it carries.
    pub claims: AccessClaims,
}

/// Issues access tokens.
pub struct TokenIssuer {
    signer: Arc<dyn TokenSigner>,
    issuer: String,
    audience: String,
    lifetime: TokenLifetime,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// An issuer signing with `signer` for `audience`.
    pub fn new(
        signer: Arc<dyn TokenSigner>,
        issuer: impl Into<String>,
        audience: impl Into<String>,
        lifetime: TokenLifetime,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            signer,
            issuer: issuer.into(),
            audience: audience.into(),
            lifetime,
            clock,
        }
    }

    /// The issuer identifier (`iss`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The signer's public key set, as `/jwks` serves it.
    pub fn jwks(&self) -> Value {
        let mut jwk = self.signer.public_jwk().to_json();
        if let Value::Object(map) = &mut jwk {
            map.insert("kid".into(), self.signer.key_id().into());
            map.insert("use".into(), "sig".into());
            map.insert("alg".into(), self.signer.alg().as_str().into());
        }
        json!({ "keys": [jwk] })
    }

    /// A validator that accepts exactly this issuer's tokens.
    pub fn validator(&self, cache_capacity: usize) -> TokenValidator {
        TokenValidator {
            key: self.signer.public_jwk(),
            kid: self.signer.key_id(),
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            clock: self.clock.clone(),
            cache: Mutex::new(HashMap::new()),
            capacity: cache_capacity.max(1),
        }
    }

    /// Issues a token for `client_id` with `scopes`, bound to the DPoP key thumbprint `jkt`
    /// when given.
    pub fn issue(
        &self,
        client_id: &str,
        scopes: &ScopeSet,
        jkt: Option<String>,
    ) -> Result<IssuedToken, AuthorityError> {
        let now = self.clock.now_unix();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: client_id.to_owned(),
            aud: self.audience.clone(),
            scope: scopes.to_string(),
            exp: now + self.lifetime.secs(),
            iat: now,
            jti: b64url(crate::random_bytes::<16>()?),
            client_id: client_id.to_owned(),
            cnf: jkt.map(|jkt| Confirmation { jkt }),
        };
        let header = json!({
            "alg": self.signer.alg().as_str(),
            "typ": "at+jwt",
            "kid": self.signer.key_id(),
        });
        let payload = serde_json::to_value(&claims)
            .map_err(|err| AuthorityError::Crypto(format!("encoding claims: {err}")))?;
        let input = jws::signing_input(&header, &payload);
        let signature = self.signer.sign(input.as_bytes())?;
        Ok(IssuedToken {
            access_token: format!("{input}.{}", b64url(signature)),
            token_type: if claims.cnf.is_some() {
                "DPoP"
            } else {
                "Bearer"
            },
            expires_in: self.lifetime.secs(),
            claims,
        })
    }
}

/// A token that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedToken {
    /// Its claims.
    pub claims: AccessClaims,
    /// Its scopes, parsed.
    pub scopes: ScopeSet,
}

/// Validates access tokens of one issuer, with a cache of verified tokens.
pub struct TokenValidator {
    key: PublicJwk,
    kid: String,
    issuer: String,
    audience: String,
    clock: Arc<dyn Clock>,
    cache: Mutex<HashMap<[u8; 32], Arc<ValidatedToken>>>,
    capacity: usize,
}

impl std::fmt::Debug for TokenValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenValidator")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// Seconds a token's `iat` may lie in the future (clock skew between issuer and validator is
/// zero on one appliance; this only absorbs rounding).
const IAT_SKEW_SECS: u64 = 5;

impl TokenValidator {
    /// Validates `token`: signature, `typ`, `kid`, `iss`, `aud`, `iat`, `exp`, scope syntax.
    /// A token seen before is taken from the cache and only its expiry is checked again.
    pub fn validate(&self, token: &str) -> Result<Arc<ValidatedToken>, AuthorityError> {
        let now = self.clock.now_unix();
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        {
            let cache = self
                .cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(hit) = cache.get(&hash) {
                return if hit.claims.exp > now {
                    Ok(hit.clone())
                } else {
                    Err(AuthorityError::token("token has expired"))
                };
            }
        }
        let validated = Arc::new(self.verify_uncached(token, now)?);
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= self.capacity {
            cache.retain(|_, entry| entry.claims.exp > now);
            if cache.len() >= self.capacity {
                // Only an optimisation: start afresh rather than grow without bound.
                cache.clear();
            }
        }
        cache.insert(hash, validated.clone());
        Ok(validated)
    }

    /// How many verified tokens are cached.
    pub fn cached(&self) -> usize {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    fn verify_uncached(&self, token: &str, now: u64) -> Result<ValidatedToken, AuthorityError> {
        let compact = jws::parse(token, "access token").map_err(AuthorityError::InvalidToken)?;
        let alg = jws::str_member(&compact.header, "alg")
            .ok_or_else(|| AuthorityError::token("header has no \"alg\""))?;
        let alg = SignatureAlg::parse(alg).map_err(AuthorityError::InvalidToken)?;
        if jws::str_member(&compact.header, "typ") != Some("at+jwt") {
            return Err(AuthorityError::token("header typ is not \"at+jwt\""));
        }
        if jws::str_member(&compact.header, "kid") != Some(self.kid.as_str()) {
            return Err(AuthorityError::token("kid is not this appliance's key"));
        }
        if !self
            .key
            .verify(alg, compact.signing_input.as_bytes(), &compact.signature)
        {
            return Err(AuthorityError::token("signature does not verify"));
        }
        let claims: AccessClaims = serde_json::from_value(Value::Object(compact.payload))
            .map_err(|err| AuthorityError::token(format!("claims: {err}")))?;
        if claims.iss != self.issuer {
            return Err(AuthorityError::token(format!(
                "issuer {:?} is not {:?}",
                claims.iss, self.issuer
            )));
        }
        if claims.aud != self.audience {
            return Err(AuthorityError::token(format!(
                "audience {:?} is not {:?}",
                claims.aud, self.audience
            )));
        }
        if claims.exp <= now {
            return Err(AuthorityError::token("token has expired"));
        }
        if claims.iat > now + IAT_SKEW_SECS {
            return Err(AuthorityError::token("token is issued in the future"));
        }
        if claims.exp.saturating_sub(claims.iat) > TokenLifetime::MAX_SECS {
            return Err(AuthorityError::token("token lifetime exceeds 5 minutes"));
        }
        let scopes = ScopeSet::parse(&claims.scope)
            .map_err(|err| AuthorityError::token(format!("scope claim: {err}")))?;
        Ok(ValidatedToken { claims, scopes })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use crate::{Scope, SoftwareSigner};

    /// A clock the test moves.
    pub(crate) struct StepClock(pub AtomicU64);
    impl Clock for StepClock {
        fn now_unix(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    fn issuer(clock: Arc<dyn Clock>) -> TokenIssuer {
        TokenIssuer::new(
            Arc::new(SoftwareSigner::generate().unwrap()),
            "https://stella.test",
            "stella-api",
            TokenLifetime::clamped(1),
            clock,
        )
    }

    #[test]
    fn lifetime_is_clamped_to_two_to_five_minutes() {
        assert_eq!(TokenLifetime::clamped(1).secs(), 120);
        assert_eq!(TokenLifetime::clamped(200).secs(), 200);
        assert_eq!(TokenLifetime::clamped(3600).secs(), 300);
    }

    #[test]
    fn issued_token_validates_until_it_expires_even_when_cached() {
        let clock = Arc::new(StepClock(AtomicU64::new(1_000_000)));
        let issuer = issuer(clock.clone());
        let validator = issuer.validator(16);
        let scopes = ScopeSet::new([Scope::ScannerRead]);
        let token = issuer
            .issue("ci", &scopes, Some("thumb".to_owned()))
            .unwrap();
        assert_eq!(token.token_type, "DPoP");
        assert_eq!(token.expires_in, 120);
        let ok = validator.validate(&token.access_token).unwrap();
        assert_eq!(ok.scopes, scopes);
        assert_eq!(ok.claims.cnf.as_ref().unwrap().jkt, "thumb");
        assert_eq!(validator.cached(), 1);
        clock.0.store(1_000_000 + 120, Ordering::SeqCst);
        let err = validator.validate(&token.access_token).unwrap_err();
        assert!(err.to_string().contains("expired"), "{err}");
        // A fresh validator (cache miss) says the same.
        let err = issuer
            .validator(16)
            .validate(&token.access_token)
            .unwrap_err();
        assert!(err.to_string().contains("expired"), "{err}");
    }

    #[test]
    fn forged_or_foreign_tokens_are_rejected() {
        let clock: Arc<dyn Clock> = Arc::new(stella_core::FixedClock(1_000_000));
        let ours = issuer(clock.clone());
        let theirs = issuer(clock);
        let token = theirs
            .issue("x", &ScopeSet::new([Scope::Admin]), None)
            .unwrap();
        let err = ours.validator(4).validate(&token.access_token).unwrap_err();
        assert!(err.to_string().contains("kid"), "{err}");
        // Swap the payload of a genuine token: the signature no longer verifies.
        let genuine = ours
            .issue("x", &ScopeSet::new([Scope::ScannerRead]), None)
            .unwrap();
        let parts: Vec<&str> = genuine.access_token.split('.').collect();
        let mut claims = genuine.claims.clone();
        claims.scope = "admin".into();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            b64url(serde_json::to_vec(&claims).unwrap()),
            parts[2]
        );
        let err = ours.validator(4).validate(&forged).unwrap_err();
        assert!(err.to_string().contains("signature"), "{err}");
        // alg=none is refused before anything else.
        let none = format!(
            "{}.{}.",
            b64url(r#"{"alg":"none","typ":"at+jwt"}"#),
            parts[1]
        );
        let err = ours.validator(4).validate(&none).unwrap_err();
        assert!(err.to_string().contains("not allowed"), "{err}");
    }

    #[test]
    fn cache_stays_bounded() {
        let clock: Arc<dyn Clock> = Arc::new(stella_core::FixedClock(1_000_000));
        let issuer = issuer(clock);
        let validator = issuer.validator(3);
        for _ in 0..10 {
            let token = issuer.issue("x", &ScopeSet::default(), None).unwrap();
            validator.validate(&token.access_token).unwrap();
            assert!(validator.cached() <= 3);
        }
    }
}
