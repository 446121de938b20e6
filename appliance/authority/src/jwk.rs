//! Public JSON Web Keys (RFC 7517) of the two allowed algorithms, ES256 (P-256) and EdDSA
//! (Ed25519): parsing that refuses private members, signature verification, and the RFC 7638
//! thumbprint that binds a token to its DPoP key (`cnf.jkt`).

use p256::ecdsa::signature::Verifier as _;
use serde_json::{Map, Value, json};

use crate::jws::{b64url, b64url_decode, sha256_b64url, str_member};

/// The JWS algorithms the appliance accepts, for access tokens and DPoP proofs alike. `none`,
/// HMAC and RSA are deliberately absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureAlg {
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
}

impl SignatureAlg {
    /// The allow-list, as advertised in discovery metadata.
    pub const ALLOWED: [SignatureAlg; 2] = [SignatureAlg::Es256, SignatureAlg::EdDsa];

    /// The JWS `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    /// Parses a JWS `alg`; anything outside the allow-list is refused by name.
    pub fn parse(alg: &str) -> Result<Self, String> {
        match alg {
            "ES256" => Ok(Self::Es256),
            "EdDSA" => Ok(Self::EdDsa),
            other => Err(format!(
                "alg {other:?} is not allowed (allowed: ES256, EdDSA)"
            )),
        }
    }
}

/// A public key from a JWK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicJwk {
    /// `kty=EC, crv=P-256`.
    P256 {
        /// The parsed key.
        key: p256::ecdsa::VerifyingKey,
    },
    /// `kty=OKP, crv=Ed25519`.
    Ed25519 {
        /// The parsed key.
        key: ed25519_dalek::VerifyingKey,
    },
}

/// Members that only a private (or symmetric) JWK has; a public key must carry none of them.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

impl PublicJwk {
    /// Parses a public JWK; a private member, an unknown key type or curve, or coordinates of
    /// the wrong length are errors naming the member.
    pub fn from_json(jwk: &Map<String, Value>) -> Result<Self, String> {
        if let Some(private) = PRIVATE_MEMBERS.iter().find(|m| jwk.contains_key(**m)) {
            return Err(format!(
                "jwk carries the private member {private:?}; only public keys are accepted"
            ));
        }
        let kty = str_member(jwk, "kty").ok_or_else(|| "jwk has no string \"kty\"".to_owned())?;
        let crv = str_member(jwk, "crv").ok_or_else(|| "jwk has no string \"crv\"".to_owned())?;
        let coordinate = |name: &str| -> Result<Vec<u8>, String> {
            let text = str_member(jwk, name).ok_or(format!("jwk has no string {name:?}"))?;
            let bytes = b64url_decode(text, &format!("jwk {name:?}"))?;
            if bytes.len() != 32 {
                return Err(format!(
                    "jwk {name:?} is {} bytes, expected 32",
                    bytes.len()
                ));
            }
            Ok(bytes)
        };
        match (kty, crv) {
            ("EC", "P-256") => {
                // SEC1 uncompressed encoding: 0x04 || x || y.
                let mut sec1 = vec![0x04];
                sec1.extend_from_slice(&coordinate("x")?);
                sec1.extend_from_slice(&coordinate("y")?);
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                    .map_err(|_| "jwk (x, y) is not a point on P-256".to_owned())?;
                Ok(Self::P256 { key })
            }
            ("OKP", "Ed25519") => {
                let x = coordinate("x")?;
                let mut bytes = [0u8; 32];
                bytes.copy_from_slice(&x);
                let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                    .map_err(|_| "jwk \"x\" is not an Ed25519 public key".to_owned())?;
                Ok(Self::Ed25519 { key })
            }
            (kty, crv) => Err(format!(
                "jwk kty={kty:?} crv={crv:?} is not supported (EC P-256 or OKP Ed25519)"
            )),
        }
    }

    /// A P-256 key from its SEC1 encoding (uncompressed `04 || x || y` or compressed), the raw
    /// public key an HSM reports.
    pub fn from_p256_sec1(sec1: &[u8]) -> Result<Self, String> {
        p256::ecdsa::VerifyingKey::from_sec1_bytes(sec1)
            .map(|key| Self::P256 { key })
            .map_err(|_| "not a SEC1-encoded P-256 public key".to_owned())
    }

    /// An Ed25519 key from its 32 raw bytes.
    pub fn from_ed25519_raw(raw: &[u8]) -> Result<Self, String> {
        let bytes: [u8; 32] = raw
            .try_into()
            .map_err(|_| format!("Ed25519 public key is {} bytes, expected 32", raw.len()))?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map(|key| Self::Ed25519 { key })
            .map_err(|_| "not an Ed25519 public key".to_owned())
    }

    /// Parses a public JWK from untrusted JSON bytes (see [`PublicJwk::from_json`]).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, String> {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Self::from_json(&map),
            Ok(_) => Err("jwk is not a JSON object".to_owned()),
            Err(err) => Err(format!("jwk is not JSON: {err}")),
        }
    }

    /// The algorithm this key signs with.
    pub fn alg(&self) -> SignatureAlg {
        match self {
            Self::P256 { .. } => SignatureAlg::Es256,
            Self::Ed25519 { .. } => SignatureAlg::EdDsa,
        }
    }

    /// The RFC 7638 required members, which are exactly the public JWK.
    pub fn to_json(&self) -> Value {
        match self {
            Self::P256 { key } => {
                // SEC1 uncompressed encoding: 0x04 || x (32 bytes) || y (32 bytes).
                let point = key.to_encoded_point(false);
                let sec1 = point.as_bytes();
                let x = b64url(sec1.get(1..33).unwrap_or_default());
                let y = b64url(sec1.get(33..65).unwrap_or_default());
                json!({ "crv": "P-256", "kty": "EC", "x": x, "y": y })
            }
            Self::Ed25519 { key } => {
                json!({ "crv": "Ed25519", "kty": "OKP", "x": b64url(key.as_bytes()) })
            }
        }
    }

    /// The RFC 7638 SHA-256 thumbprint, base64url: the hash of the required members in
    /// lexicographic order with no white space (serde_json's map is ordered by key).
    pub fn thumbprint(&self) -> String {
        sha256_b64url(self.to_json().to_string())
    }

    /// Checks a JWS signature made with `alg` over `message`.
    pub fn verify(&self, alg: SignatureAlg, message: &[u8], signature: &[u8]) -> bool {
        match (self, alg) {
            (Self::P256 { key }, SignatureAlg::Es256) => {
                p256::ecdsa::Signature::from_slice(signature)
                    .is_ok_and(|sig| key.verify(message, &sig).is_ok())
            }
            (Self::Ed25519 { key }, SignatureAlg::EdDsa) => {
                ed25519_dalek::Signature::from_slice(signature)
                    .is_ok_and(|sig| key.verify_strict(message, &sig).is_ok())
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    /// RFC 7638 §3.1 gives an RSA example; RFC 8037 §A.3 gives this Ed25519 one.
    #[test]
    fn rfc8037_ed25519_thumbprint() {
        let jwk = map(json!({
            "kty": "OKP", "crv": "Ed25519",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        }));
        let key = PublicJwk::from_json(&jwk).unwrap();
        assert_eq!(
            key.thumbprint(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn refuses_private_members_and_other_key_types() {
        let with_d = map(json!({
            "kty": "OKP", "crv": "Ed25519",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "d": "AAAA"
        }));
        assert!(PublicJwk::from_json(&with_d).unwrap_err().contains("\"d\""));
        let rsa = map(json!({"kty": "RSA", "crv": "x", "n": "AQAB", "e": "AQAB"}));
        assert!(
            PublicJwk::from_json(&rsa)
                .unwrap_err()
                .contains("not supported")
        );
        let short = map(json!({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}));
        assert!(
            PublicJwk::from_json(&short)
                .unwrap_err()
                .contains("expected 32")
        );
    }

    #[test]
    fn alg_allow_list() {
        assert!(SignatureAlg::parse("none").is_err());
        assert!(SignatureAlg::parse("HS256").is_err());
        assert!(SignatureAlg::parse("RS256").is_err());
        assert_eq!(SignatureAlg::parse("ES256").unwrap(), SignatureAlg::Es256);
    }
}
