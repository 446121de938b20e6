//! The client side of DPoP: a P-256 key kept in a 0600 file and the proofs it signs
//! (RFC 9449 §4.2). Used by the `stella` CLI, the tests and the benchmark.

use std::path::Path;

use p256::ecdsa::SigningKey;
use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, LineEnding};
use serde_json::json;

use crate::jws::{self, b64url};
use crate::signer::write_private;
use crate::{AuthorityError, PublicJwk};

/// A client's DPoP key.
pub struct DpopKey {
    key: SigningKey,
    public: PublicJwk,
}

impl std::fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopKey")
            .field("jkt", &self.public.thumbprint())
            .finish_non_exhaustive()
    }
}

impl DpopKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self, AuthorityError> {
        for _ in 0..8 {
            if let Ok(key) = SigningKey::from_slice(&crate::random_bytes::<32>()?) {
                return Ok(Self::from_key(key));
            }
        }
        Err(AuthorityError::Crypto(
            "could not draw a valid P-256 scalar".to_owned(),
        ))
    }

    fn from_key(key: SigningKey) -> Self {
        let public = PublicJwk::P256 {
            key: *key.verifying_key(),
        };
        Self { key, public }
    }

    /// Loads the key at `path` or creates it there with mode 0600. A key file readable by
    /// group or others is refused.
    pub fn load_or_create(path: &Path) -> Result<Self, AuthorityError> {
        use std::os::unix::fs::PermissionsExt as _;
        let key_err = |reason: String| AuthorityError::Key {
            path: path.to_owned(),
            reason,
        };
        match std::fs::metadata(path) {
            Ok(meta) => {
                if meta.permissions().mode() & 0o077 != 0 {
                    return Err(key_err(format!(
                        "mode {:o} lets others read the DPoP key; chmod 600 it",
                        meta.permissions().mode() & 0o777
                    )));
                }
                let pem = std::fs::read_to_string(path)
                    .map_err(|err| key_err(format!("cannot read: {err}")))?;
                let key = SigningKey::from_pkcs8_pem(&pem)
                    .map_err(|err| key_err(format!("not a PKCS#8 P-256 key: {err}")))?;
                Ok(Self::from_key(key))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let made = Self::generate()?;
                let pem = made
                    .key
                    .to_pkcs8_pem(LineEnding::LF)
                    .map_err(|err| key_err(format!("cannot encode: {err}")))?;
                write_private(path, pem.as_bytes()).map_err(key_err)?;
                Ok(made)
            }
            Err(err) => Err(key_err(format!("cannot stat: {err}"))),
        }
    }

    /// The public key as a JWK (what a client registers for `private_key_jwt`).
    pub fn public_jwk(&self) -> serde_json::Value {
        self.public.to_json()
    }

    /// A `private_key_jwt` client assertion for `client_id` and `audience` (the token endpoint
    /// URL), valid 60 s from `iat`.
    pub fn client_assertion(
        &self,
        client_id: &str,
        audience: &str,
        iat: u64,
    ) -> Result<String, AuthorityError> {
        let header = json!({ "typ": "JWT", "alg": "ES256", "kid": self.public.thumbprint() });
        let claims = json!({
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "iat": iat,
            "exp": iat + 60,
            "jti": b64url(crate::random_bytes::<16>()?),
        });
        self.sign(&header, &claims)
    }

    fn sign(
        &self,
        header: &serde_json::Value,
        claims: &serde_json::Value,
    ) -> Result<String, AuthorityError> {
        let input = jws::signing_input(header, claims);
        let signature: p256::ecdsa::Signature = self
            .key
            .try_sign(input.as_bytes())
            .map_err(|err| AuthorityError::Crypto(format!("ES256 signing: {err}")))?;
        Ok(format!("{input}.{}", b64url(signature.to_bytes())))
    }

    /// The RFC 7638 thumbprint a token gets bound to.
    pub fn thumbprint(&self) -> String {
        self.public.thumbprint()
    }

    /// A proof for `htm` `htu` at time `iat`; with `access_token` on resource requests (adds
    /// `ath`) and the server's `nonce` when it asked for one.
    pub fn proof(
        &self,
        htm: &str,
        htu: &str,
        iat: u64,
        access_token: Option<&str>,
        nonce: Option<&str>,
    ) -> Result<String, AuthorityError> {
        let header = json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": self.public.to_json() });
        let mut claims = json!({
            "jti": b64url(crate::random_bytes::<16>()?),
            "htm": htm,
            "htu": htu,
            "iat": iat,
        });
        if let Some(map) = claims.as_object_mut() {
            if let Some(token) = access_token {
                map.insert("ath".into(), jws::sha256_b64url(token).into());
            }
            if let Some(nonce) = nonce {
                map.insert("nonce".into(), nonce.into());
            }
        }
        self.sign(&header, &claims)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{DpopLimits, DpopRequest, DpopVerifier, NonceMode};

    #[test]
    fn own_proofs_verify_and_key_file_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dpop.pem");
        let key = DpopKey::load_or_create(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            DpopKey::load_or_create(&path).unwrap().thumbprint(),
            key.thumbprint()
        );
        let verifier = DpopVerifier::new(
            DpopLimits::default(),
            Arc::new(stella_core::FixedClock(1000)),
        )
        .unwrap();
        let proof = key
            .proof("GET", "http://x/api", 1000, Some("tok"), None)
            .unwrap();
        let ok = verifier
            .verify(
                &proof,
                &DpopRequest {
                    method: "GET",
                    url: "http://x/api",
                    access_token: Some("tok"),
                    expected_jkt: Some(&key.thumbprint()),
                    nonce: NonceMode::NotRequired,
                },
            )
            .unwrap();
        assert_eq!(ok.jkt, key.thumbprint());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = DpopKey::load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }
}
