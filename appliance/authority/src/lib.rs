//! The appliance's local Authority (seed §2, §7.4): OAuth clients, short-lived DPoP-bound access
//! tokens (JWTs), DPoP proof validation (RFC 9449), JWK thumbprints (RFC 7638), password hashes
//! (argon2id) and the login-throttling policy. Pure logic: no HTTP, no stores, time through
//! [`stella_core::Clock`]. `stella-web` puts it on the wire; `stella-store` keeps its records.

mod assertion;
mod client;
mod dpop;
mod error;
mod jwk;
mod jws;
mod password;
mod random;
mod scope;
mod signer;
mod throttle;
mod token;

pub use assertion::{
    JWT_BEARER_ASSERTION, MAX_ASSERTION_LIFETIME_SECS, assertion_issuer, parse_client_jwks,
    verify_client_assertion,
};
pub use client::DpopKey;
pub use dpop::{
    DpopLimits, DpopProof, DpopRequest, DpopVerifier, NonceMode, NonceSource, ReplayCache,
    normalize_htu, verify_proof_bytes,
};
pub use error::{AuthorityError, ErrorCode};
pub use jwk::{PublicJwk, SignatureAlg};
pub use jws::{MAX_JWS_LEN, b64url, b64url_decode, sha256_b64url};
pub use password::{hash_secret, verify_secret};
pub use random::{random_bytes, random_token};
pub use scope::{Scope, ScopeSet};
pub use signer::{SoftwareSigner, TokenSigner, es256_signature_from_der};
pub use throttle::{LoginThrottle, ThrottleDecision};
pub use token::{
    AccessClaims, Confirmation, IssuedToken, TokenIssuer, TokenLifetime, TokenValidator,
    ValidatedToken,
};
