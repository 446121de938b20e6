//! DPoP proof validation (RFC 9449 §4.3), step by step: JWS shape, `typ`, the `alg` allow-list,
//! the embedded public `jwk`, the signature, `htm`/`htu`, the server nonce where required, the
//! `iat` window, `ath` on resource requests, the key binding to `cnf.jkt`, and finally the
//! `jti` replay cache (last, so a proof that fails a check cannot poison the cache).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use stella_core::Clock;

use crate::jws::{self, b64url, b64url_decode, int_member, str_member};
use crate::{AuthorityError, PublicJwk, SignatureAlg};

/// Validation limits, with documented defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DpopLimits {
    /// A proof older than this (by `iat`) is refused. Default 60 s.
    pub max_age_secs: u64,
    /// A proof dated this far in the future is still accepted (client clock skew). Default 5 s.
    pub max_future_secs: u64,
    /// Most live `jti`s remembered; when full of unexpired entries, proofs are refused (fail
    /// closed) rather than forgotten. Default 100 000.
    pub replay_capacity: usize,
    /// Nonce window; a nonce is accepted in its window and the next. Default 60 s.
    pub nonce_window_secs: u64,
}

impl Default for DpopLimits {
    fn default() -> Self {
        Self {
            max_age_secs: 60,
            max_future_secs: 5,
            replay_capacity: 100_000,
            nonce_window_secs: 60,
        }
    }
}

/// Whether a proof must carry the server's `DPoP-Nonce`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceMode {
    /// No nonce needed (ordinary API routes, the token endpoint).
    NotRequired,
    /// The proof must carry a current server nonce (the signer audience).
    Required,
}

/// What the server knows about the request the proof is for.
#[derive(Debug, Clone, Copy)]
pub struct DpopRequest<'a> {
    /// The HTTP method, e.g. `POST`.
    pub method: &'a str,
    /// The request URL as the server is addressed (scheme, authority, path); query and fragment
    /// are ignored.
    pub url: &'a str,
    /// On resource requests: the access token presented, whose hash must be in `ath`.
    pub access_token: Option<&'a str>,
    /// On resource requests: the token's `cnf.jkt`, which the proof's key must match.
    pub expected_jkt: Option<&'a str>,
    /// Whether a server nonce is required.
    pub nonce: NonceMode,
}

/// A proof that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopProof {
    /// RFC 7638 thumbprint of the proof's key: what a token gets bound to (`cnf.jkt`).
    pub jkt: String,
    /// The proof's unique id.
    pub jti: String,
    /// The proof's `iat`.
    pub iat: u64,
}

/// Remembers the `jti` of every accepted proof until it could no longer pass the `iat` window.
#[derive(Debug)]
pub struct ReplayCache {
    seen: Mutex<HashMap<String, u64>>,
    capacity: usize,
}

impl ReplayCache {
    /// An empty cache holding at most `capacity` live entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            seen: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// Records `jti` (alive until `expires_at`); an error when it was already seen alive or the
    /// cache is full of live entries.
    pub fn check_and_insert(
        &self,
        jti: &str,
        expires_at: u64,
        now: u64,
    ) -> Result<(), AuthorityError> {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(&until) = seen.get(jti)
            && until >= now
        {
            return Err(AuthorityError::proof(format!(
                "jti {jti:?} was already used (replay)"
            )));
        }
        if seen.len() >= self.capacity {
            seen.retain(|_, until| *until >= now);
            if seen.len() >= self.capacity {
                return Err(AuthorityError::ReplayCacheFull {
                    capacity: self.capacity,
                });
            }
        }
        seen.insert(jti.to_owned(), expires_at);
        Ok(())
    }

    /// Live entries (after purging expired ones).
    pub fn len(&self, now: u64) -> usize {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.retain(|_, until| *until >= now);
        seen.len()
    }

    /// Whether no live entry is held.
    pub fn is_empty(&self, now: u64) -> bool {
        self.len(now) == 0
    }
}

/// Stateless server nonces: `base64url(window || HMAC-SHA256(key, window))`, valid in their time
/// window and the next, under a key drawn at start (a restart invalidates outstanding nonces,
/// which clients recover from with one `use_dpop_nonce` round trip).
pub struct NonceSource {
    key: [u8; 32],
    window_secs: u64,
}

impl std::fmt::Debug for NonceSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceSource")
            .field("window_secs", &self.window_secs)
            .finish_non_exhaustive()
    }
}

impl NonceSource {
    /// A source with a fresh random key.
    pub fn new(window_secs: u64) -> Result<Self, AuthorityError> {
        Ok(Self {
            key: crate::random_bytes::<32>()?,
            window_secs: window_secs.max(1),
        })
    }

    fn mac(&self, window: u64) -> [u8; 32] {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        mac.update(&window.to_be_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The nonce to hand out now.
    pub fn current(&self, now: u64) -> String {
        let window = now / self.window_secs;
        let mut bytes = window.to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.mac(window));
        b64url(bytes)
    }

    /// Whether `nonce` was issued by this source in the current or the previous window.
    pub fn is_valid(&self, nonce: &str, now: u64) -> bool {
        let Ok(bytes) = b64url_decode(nonce, "nonce") else {
            return false;
        };
        if bytes.len() != 40 {
            return false;
        }
        let mut window = [0u8; 8];
        window.copy_from_slice(&bytes[..8]);
        let window = u64::from_be_bytes(window);
        let current = now / self.window_secs;
        if window != current && window + 1 != current {
            return false;
        }
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => return false,
        };
        mac.update(&window.to_be_bytes());
        // Constant-time comparison.
        mac.verify_slice(&bytes[8..]).is_ok()
    }
}

/// Validates DPoP proofs against requests.
pub struct DpopVerifier {
    limits: DpopLimits,
    replay: ReplayCache,
    nonces: NonceSource,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for DpopVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopVerifier")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl DpopVerifier {
    /// A verifier with its own replay cache and nonce key.
    pub fn new(limits: DpopLimits, clock: Arc<dyn Clock>) -> Result<Self, AuthorityError> {
        Ok(Self {
            replay: ReplayCache::new(limits.replay_capacity),
            nonces: NonceSource::new(limits.nonce_window_secs)?,
            limits,
            clock,
        })
    }

    /// The nonce a client should use now (sent as the `DPoP-Nonce` response header).
    pub fn current_nonce(&self) -> String {
        self.nonces.current(self.clock.now_unix())
    }

    /// The replay cache, for metrics and tests.
    pub fn replay_cache(&self) -> &ReplayCache {
        &self.replay
    }

    /// Validates `proof` (the `DPoP` header value) for `request`.
    pub fn verify(
        &self,
        proof: &str,
        request: &DpopRequest<'_>,
    ) -> Result<DpopProof, AuthorityError> {
        let now = self.clock.now_unix();
        let compact = jws::parse(proof, "DPoP proof").map_err(AuthorityError::InvalidDpopProof)?;
        let header = &compact.header;
        let claims = &compact.payload;

        if str_member(header, "typ") != Some("dpop+jwt") {
            return Err(AuthorityError::proof("header typ is not \"dpop+jwt\""));
        }
        let alg = str_member(header, "alg").ok_or_else(|| AuthorityError::proof("no \"alg\""))?;
        let alg = SignatureAlg::parse(alg).map_err(AuthorityError::InvalidDpopProof)?;
        let jwk = match header.get("jwk") {
            Some(serde_json::Value::Object(jwk)) => jwk,
            _ => return Err(AuthorityError::proof("header has no \"jwk\" object")),
        };
        let key = PublicJwk::from_json(jwk).map_err(AuthorityError::InvalidDpopProof)?;
        if key.alg() != alg {
            return Err(AuthorityError::proof(format!(
                "alg {} does not match the jwk's key type",
                alg.as_str()
            )));
        }
        if !key.verify(alg, compact.signing_input.as_bytes(), &compact.signature) {
            return Err(AuthorityError::proof("signature does not verify"));
        }

        let jti = str_member(claims, "jti")
            .filter(|jti| !jti.is_empty() && jti.len() <= 256)
            .ok_or_else(|| AuthorityError::proof("no \"jti\" of 1 to 256 characters"))?;
        let htm = str_member(claims, "htm").ok_or_else(|| AuthorityError::proof("no \"htm\""))?;
        if htm != request.method {
            return Err(AuthorityError::proof(format!(
                "htm {htm:?} does not match the request method {:?}",
                request.method
            )));
        }
        let htu = str_member(claims, "htu").ok_or_else(|| AuthorityError::proof("no \"htu\""))?;
        let proof_url = normalize_htu(htu)
            .map_err(|err| AuthorityError::proof(format!("htu {htu:?}: {err}")))?;
        let request_url = normalize_htu(request.url)
            .map_err(|err| AuthorityError::proof(format!("request URL: {err}")))?;
        if proof_url != request_url {
            return Err(AuthorityError::proof(format!(
                "htu {proof_url:?} does not match the request URL {request_url:?}"
            )));
        }

        if request.nonce == NonceMode::Required {
            match str_member(claims, "nonce") {
                Some(nonce) if self.nonces.is_valid(nonce, now) => {}
                _ => return Err(AuthorityError::UseDpopNonce),
            }
        }

        let iat = int_member(claims, "iat")
            .and_then(|iat| u64::try_from(iat).ok())
            .ok_or_else(|| AuthorityError::proof("no integer \"iat\""))?;
        if iat > now + self.limits.max_future_secs {
            return Err(AuthorityError::proof(format!(
                "iat {iat} is in the future (now {now})"
            )));
        }
        if iat + self.limits.max_age_secs < now {
            return Err(AuthorityError::proof(format!(
                "iat {iat} is older than {} s (now {now})",
                self.limits.max_age_secs
            )));
        }

        if let Some(token) = request.access_token {
            let ath = str_member(claims, "ath")
                .ok_or_else(|| AuthorityError::proof("no \"ath\" on a resource request"))?;
            if ath != jws::sha256_b64url(token) {
                return Err(AuthorityError::proof(
                    "ath is not the hash of the presented access token",
                ));
            }
        }
        let jkt = key.thumbprint();
        if let Some(expected) = request.expected_jkt
            && expected != jkt
        {
            return Err(AuthorityError::token(
                "token is bound to a different DPoP key than the proof's",
            ));
        }

        self.replay.check_and_insert(
            jti,
            iat + self.limits.max_age_secs + self.limits.max_future_secs,
            now,
        )?;
        Ok(DpopProof {
            jkt,
            jti: jti.to_owned(),
            iat,
        })
    }
}

/// Runs every check of [`DpopVerifier::verify`] on untrusted bytes against a fixed request
/// (`POST https://stella.invalid/fuzz` at time 0, no nonce, fresh replay cache): the entry
/// point of the DPoP fuzz target.
pub fn verify_proof_bytes(bytes: &[u8]) -> Result<DpopProof, AuthorityError> {
    let proof =
        std::str::from_utf8(bytes).map_err(|_| AuthorityError::proof("proof is not UTF-8"))?;
    let verifier = DpopVerifier::new(DpopLimits::default(), Arc::new(stella_core::FixedClock(0)))?;
    verifier.verify(
        proof,
        &DpopRequest {
            method: "POST",
            url: "https://stella.invalid/fuzz",
            access_token: None,
            expected_jkt: None,
            nonce: NonceMode::NotRequired,
        },
    )
}

/// Normalises an `htu` (or request URL) per RFC 9449 §4.3 and RFC 3986 §6.2.2–6.2.3: lower-case
/// scheme and host, default port removed, empty path as `/`, query and fragment dropped. Only
/// `http` and `https` are accepted; user info is refused.
pub fn normalize_htu(url: &str) -> Result<String, String> {
    let (scheme, rest) = url.split_once("://").ok_or("not an absolute URL")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => "80",
        "https" => "443",
        other => return Err(format!("scheme {other:?} is not http or https")),
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    if authority.contains('@') {
        return Err("user info is not allowed".to_owned());
    }
    if authority.is_empty() {
        return Err("no host".to_owned());
    }
    // The port follows the last ':' unless that ':' is inside an IPv6 literal.
    let (host, port) = match authority.rfind(':') {
        Some(colon) if !authority[colon..].contains(']') => {
            (&authority[..colon], Some(&authority[colon + 1..]))
        }
        _ => (authority, None),
    };
    if let Some(port) = port
        && !port.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(format!("port {port:?} is not a number"));
    }
    let host = host.to_ascii_lowercase();
    Ok(match port {
        Some(port) if !port.is_empty() && port != default_port => {
            format!("{scheme}://{host}:{port}{path}")
        }
        _ => format!("{scheme}://{host}{path}"),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer as _;
    use serde_json::json;

    use super::*;

    struct StepClock(AtomicU64);
    impl Clock for StepClock {
        fn now_unix(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    const NOW: u64 = 1_700_000_000;

    fn key() -> SigningKey {
        SigningKey::from_slice(&[7u8; 32]).unwrap()
    }

    fn jwk_of(key: &SigningKey) -> serde_json::Value {
        PublicJwk::P256 {
            key: *key.verifying_key(),
        }
        .to_json()
    }

    fn proof_with(
        key: &SigningKey,
        header: serde_json::Value,
        claims: serde_json::Value,
    ) -> String {
        let input = jws::signing_input(&header, &claims);
        let sig: p256::ecdsa::Signature = key.sign(input.as_bytes());
        format!("{input}.{}", b64url(sig.to_bytes()))
    }

    fn proof(
        key: &SigningKey,
        jti: &str,
        htm: &str,
        htu: &str,
        extra: serde_json::Value,
    ) -> String {
        let mut claims = json!({ "jti": jti, "htm": htm, "htu": htu, "iat": NOW });
        if let (Some(claims), serde_json::Value::Object(extra)) = (claims.as_object_mut(), extra) {
            claims.extend(extra);
        }
        proof_with(
            key,
            json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": jwk_of(key) }),
            claims,
        )
    }

    fn verifier() -> (DpopVerifier, Arc<StepClock>) {
        let clock = Arc::new(StepClock(AtomicU64::new(NOW)));
        (
            DpopVerifier::new(DpopLimits::default(), clock.clone()).unwrap(),
            clock,
        )
    }

    fn token_request(url: &str) -> DpopRequest<'_> {
        DpopRequest {
            method: "POST",
            url,
            access_token: None,
            expected_jkt: None,
            nonce: NonceMode::NotRequired,
        }
    }

    #[test]
    fn accepts_a_good_proof_and_rejects_its_replay() {
        let (verifier, _) = verifier();
        let key = key();
        let p = proof(
            &key,
            "a1",
            "POST",
            "https://stella.test/oauth/token",
            json!({}),
        );
        let ok = verifier
            .verify(
                &p,
                &token_request("https://STELLA.test:443/oauth/token?x=1"),
            )
            .unwrap();
        assert_eq!(
            ok.jkt,
            PublicJwk::P256 {
                key: *key.verifying_key()
            }
            .thumbprint()
        );
        let err = verifier
            .verify(&p, &token_request("https://stella.test/oauth/token"))
            .unwrap_err();
        assert!(err.to_string().contains("replay"), "{err}");
    }

    #[test]
    fn rejects_proof_for_another_url_or_method() {
        let (verifier, _) = verifier();
        let key = key();
        let p = proof(
            &key,
            "b1",
            "POST",
            "https://stella.test/oauth/token",
            json!({}),
        );
        let err = verifier
            .verify(&p, &token_request("https://stella.test/api/clients"))
            .unwrap_err();
        assert!(
            err.to_string().contains("does not match the request URL"),
            "{err}"
        );
        let mut get = token_request("https://stella.test/oauth/token");
        get.method = "GET";
        let err = verifier.verify(&p, &get).unwrap_err();
        assert!(err.to_string().contains("htm"), "{err}");
        // A failed proof does not enter the replay cache: it still works for the right request.
        verifier
            .verify(&p, &token_request("https://stella.test/oauth/token"))
            .unwrap();
    }

    #[test]
    fn enforces_typ_alg_jwk_and_signature() {
        let (verifier, _) = verifier();
        let key = key();
        let claims = json!({ "jti": "c", "htm": "POST", "htu": "https://s/t", "iat": NOW });
        let cases = [
            (
                json!({ "typ": "JWT", "alg": "ES256", "jwk": jwk_of(&key) }),
                "typ",
            ),
            (
                json!({ "typ": "dpop+jwt", "alg": "HS256", "jwk": jwk_of(&key) }),
                "not allowed",
            ),
            (
                json!({ "typ": "dpop+jwt", "alg": "EdDSA", "jwk": jwk_of(&key) }),
                "does not match the jwk",
            ),
            (json!({ "typ": "dpop+jwt", "alg": "ES256" }), "jwk"),
        ];
        for (header, needle) in cases {
            let p = proof_with(&key, header, claims.clone());
            let err = verifier
                .verify(&p, &token_request("https://s/t"))
                .unwrap_err();
            assert!(err.to_string().contains(needle), "{needle}: {err}");
        }
        // A private key in the jwk is refused.
        let mut private = jwk_of(&key);
        private["d"] = json!(b64url(key.to_bytes()));
        let p = proof_with(
            &key,
            json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": private }),
            claims.clone(),
        );
        let err = verifier
            .verify(&p, &token_request("https://s/t"))
            .unwrap_err();
        assert!(err.to_string().contains("private"), "{err}");
        // Signed by another key than the embedded one.
        let other = SigningKey::from_slice(&[9u8; 32]).unwrap();
        let p = proof_with(
            &other,
            json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": jwk_of(&key) }),
            claims,
        );
        let err = verifier
            .verify(&p, &token_request("https://s/t"))
            .unwrap_err();
        assert!(err.to_string().contains("signature"), "{err}");
    }

    #[test]
    fn iat_window() {
        let (verifier, clock) = verifier();
        let key = key();
        let p = proof(&key, "d1", "POST", "https://s/t", json!({}));
        clock.0.store(NOW + 61, Ordering::SeqCst);
        let err = verifier
            .verify(&p, &token_request("https://s/t"))
            .unwrap_err();
        assert!(err.to_string().contains("older"), "{err}");
        clock.0.store(NOW - 6, Ordering::SeqCst);
        let err = verifier
            .verify(&p, &token_request("https://s/t"))
            .unwrap_err();
        assert!(err.to_string().contains("future"), "{err}");
        clock.0.store(NOW + 59, Ordering::SeqCst);
        verifier.verify(&p, &token_request("https://s/t")).unwrap();
    }

    #[test]
    fn ath_and_key_binding_on_resource_requests() {
        let (verifier, _) = verifier();
        let key = key();
        let jkt = PublicJwk::P256 {
            key: *key.verifying_key(),
        }
        .thumbprint();
        let token = "the.access.token";
        let request = DpopRequest {
            method: "GET",
            url: "https://s/api/audit",
            access_token: Some(token),
            expected_jkt: Some(&jkt),
            nonce: NonceMode::NotRequired,
        };
        let no_ath = proof(&key, "e1", "GET", "https://s/api/audit", json!({}));
        assert!(
            verifier
                .verify(&no_ath, &request)
                .unwrap_err()
                .to_string()
                .contains("ath")
        );
        let wrong_ath = proof(
            &key,
            "e2",
            "GET",
            "https://s/api/audit",
            json!({ "ath": jws::sha256_b64url("other") }),
        );
        assert!(
            verifier
                .verify(&wrong_ath, &request)
                .unwrap_err()
                .to_string()
                .contains("ath")
        );
        let good = proof(
            &key,
            "e3",
            "GET",
            "https://s/api/audit",
            json!({ "ath": jws::sha256_b64url(token) }),
        );
        verifier.verify(&good, &request).unwrap();
        let other_jkt = DpopRequest {
            expected_jkt: Some("someone-else"),
            ..request
        };
        let good2 = proof(
            &key,
            "e4",
            "GET",
            "https://s/api/audit",
            json!({ "ath": jws::sha256_b64url(token) }),
        );
        let err = verifier.verify(&good2, &other_jkt).unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::InvalidToken);
    }

    #[test]
    fn nonce_required_for_signer_audience() {
        let (verifier, clock) = verifier();
        let key = key();
        let mut request = token_request("https://s/api/sign");
        request.nonce = NonceMode::Required;
        let p = proof(&key, "f1", "POST", "https://s/api/sign", json!({}));
        assert_eq!(
            verifier.verify(&p, &request).unwrap_err().code(),
            crate::ErrorCode::UseDpopNonce
        );
        let p = proof(
            &key,
            "f2",
            "POST",
            "https://s/api/sign",
            json!({ "nonce": "bogus" }),
        );
        assert_eq!(
            verifier.verify(&p, &request).unwrap_err().code(),
            crate::ErrorCode::UseDpopNonce
        );
        let nonce = verifier.current_nonce();
        let p = proof(
            &key,
            "f3",
            "POST",
            "https://s/api/sign",
            json!({ "nonce": nonce }),
        );
        verifier.verify(&p, &request).unwrap();
        // Two windows later the nonce is stale.
        clock.0.store(NOW + 121, Ordering::SeqCst);
        let p = proof(
            &key,
            "f4",
            "POST",
            "https://s/api/sign",
            json!({ "nonce": nonce, "iat": NOW + 121 }),
        );
        assert_eq!(
            verifier.verify(&p, &request).unwrap_err().code(),
            crate::ErrorCode::UseDpopNonce
        );
    }

    #[test]
    fn replay_cache_expires_and_fails_closed_when_full() {
        let cache = ReplayCache::new(2);
        cache.check_and_insert("a", 10, 0).unwrap();
        cache.check_and_insert("b", 10, 0).unwrap();
        assert!(matches!(
            cache.check_and_insert("c", 10, 5),
            Err(AuthorityError::ReplayCacheFull { capacity: 2 })
        ));
        assert!(cache.check_and_insert("a", 20, 5).is_err());
        // After expiry the slots free up and the old jti is forgotten.
        cache.check_and_insert("c", 30, 11).unwrap();
        assert_eq!(cache.len(11), 1);
    }

    #[test]
    fn fuzz_entry_point_rejects_garbage_and_accepts_a_proof() {
        assert!(verify_proof_bytes(b"\xff").is_err());
        assert!(verify_proof_bytes(b"a.b.c").is_err());
        let key = key();
        let mut claims =
            json!({ "jti": "z", "htm": "POST", "htu": "https://stella.invalid/fuzz", "iat": 0 });
        claims["iat"] = json!(0);
        let p = proof_with(
            &key,
            json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": jwk_of(&key) }),
            claims,
        );
        verify_proof_bytes(p.as_bytes()).unwrap();
    }

    #[test]
    fn htu_normalisation() {
        assert_eq!(
            normalize_htu("HTTPS://Example.COM:443").unwrap(),
            "https://example.com/"
        );
        assert_eq!(
            normalize_htu("http://127.0.0.1:8080/a/b?q=1#f").unwrap(),
            "http://127.0.0.1:8080/a/b"
        );
        assert_eq!(
            normalize_htu("http://[::1]:80/x").unwrap(),
            "http://[::1]/x"
        );
        assert_eq!(normalize_htu("http://[::1]/x").unwrap(), "http://[::1]/x");
        assert!(normalize_htu("ftp://x/").is_err());
        assert!(normalize_htu("https://u@x/").is_err());
        assert!(normalize_htu("/relative").is_err());
        assert!(normalize_htu("https://x:8a/").is_err());
    }
}
