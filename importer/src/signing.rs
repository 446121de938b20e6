//! minisign keys and signatures: deterministic signing with a minisign secret key, verification
//! against a set of trusted minisign public keys.
//!
//! Signing goes through `ed25519-dalek` rather than the `minisign` crate's `sign`, because that one
//! adds random noise to every signature and kits must be byte-identical for identical inputs.
//! The output is the standard minisign format (pre-hashed `ED` algorithm, BLAKE2b-512), which the
//! real `minisign -V` verifies; verification here uses the independent `minisign-verify` crate.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use blake2::{Blake2b512, Digest as _};
use ed25519_dalek::Signer as _;

use crate::error::KitError;

/// A minisign key id as minisign prints it (16 upper-case hex digits of the little-endian number).
pub fn format_key_id(keynum: &[u8; 8]) -> String {
    format!("{:016X}", u64::from_le_bytes(*keynum))
}

/// A minisign secret key, decrypted and ready to sign.
pub struct SigningKey {
    keynum: [u8; 8],
    key: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

/// A freshly generated key pair in minisign's file formats.
#[derive(Debug)]
pub struct GeneratedKeyPair {
    /// Contents of `kit.key` (minisign secret key box; scrypt-encrypted when a password was given).
    pub secret_key_file: String,
    /// Contents of `kit.pub`.
    pub public_key_file: String,
    pub key_id: String,
}

/// How a generated secret key is protected. An enum, not a boolean, so call sites say what they mean.
#[derive(Debug, Clone)]
pub enum KeyProtection {
    /// Encrypted with this password (scrypt + XOR, as minisign does).
    Password(String),
    /// Encrypted with a password asked for on the terminal.
    Prompt,
    /// Stored unencrypted: for automation and tests only.
    Unencrypted,
}

/// Generates a minisign key pair in minisign's file formats.
pub fn generate_key_pair(
    protection: KeyProtection,
    comment: &str,
) -> Result<GeneratedKeyPair, KitError> {
    let key_error = |e: minisign::PError| KitError::Key(format!("key generation failed: {e}"));
    let pair = match protection {
        KeyProtection::Password(password) => {
            minisign::KeyPair::generate_encrypted_keypair(Some(password)).map_err(key_error)?
        }
        KeyProtection::Prompt => {
            minisign::KeyPair::generate_encrypted_keypair(None).map_err(key_error)?
        }
        KeyProtection::Unencrypted => {
            minisign::KeyPair::generate_unencrypted_keypair().map_err(key_error)?
        }
    };
    let secret_key_file = pair
        .sk
        .to_box(Some(comment))
        .map_err(key_error)?
        .into_string();
    let public_box = pair.pk.to_box().map_err(key_error)?.into_string();
    let public = TrustedKey::parse(&public_box)?;
    Ok(GeneratedKeyPair {
        secret_key_file,
        public_key_file: public_box,
        key_id: public.key_id(),
    })
}

impl SigningKey {
    /// Reads a minisign secret key file. Encrypted keys need `password`; a wrong password is an error.
    pub fn from_minisign_file_contents(
        text: &str,
        password: Option<&str>,
    ) -> Result<Self, KitError> {
        let encoded = text.lines().nth(1).ok_or_else(|| {
            KitError::Key("secret key file has no key line (expected minisign format)".into())
        })?;
        let raw = BASE64
            .decode(encoded.trim())
            .map_err(|e| KitError::Key(format!("secret key is not base64: {e}")))?;
        if raw.len() != 158 {
            return Err(KitError::Key(format!(
                "secret key has {} bytes, minisign keys have 158",
                raw.len()
            )));
        }
        let encrypted = raw[2..4] != [0, 0];
        let sk_box =
            minisign::SecretKeyBox::from_string(text).map_err(|e| KitError::Key(e.to_string()))?;
        let secret = if encrypted {
            let password = password.ok_or_else(|| {
                KitError::Key("secret key is password-protected and no password was given".into())
            })?;
            minisign::SecretKey::from_box(sk_box, Some(password.to_string()))
                .map_err(|e| KitError::Key(format!("cannot decrypt secret key: {e}")))?
        } else {
            minisign::SecretKey::from_unencrypted_box(sk_box)
                .map_err(|e| KitError::Key(format!("bad secret key: {e}")))?
        };
        let bytes = secret.to_bytes();
        // Layout of a minisign secret key: alg(2) kdf(2) chk(2) salt(32) ops(8) mem(8) keynum(8) sk(64) chk(32).
        let mut keynum = [0u8; 8];
        keynum.copy_from_slice(&bytes[54..62]);
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&bytes[62..94]);
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        if key.verifying_key().to_bytes()[..] != bytes[94..126] {
            return Err(KitError::Key(
                "secret key's embedded public key does not match its seed".into(),
            ));
        }
        Ok(SigningKey { keynum, key })
    }

    pub fn key_id(&self) -> String {
        format_key_id(&self.keynum)
    }

    /// The matching public key in minisign `.pub` format.
    pub fn public_key_file(&self) -> String {
        let mut raw = Vec::with_capacity(42);
        raw.extend_from_slice(b"Ed");
        raw.extend_from_slice(&self.keynum);
        raw.extend_from_slice(&self.key.verifying_key().to_bytes());
        format!(
            "untrusted comment: minisign public key {}\n{}\n",
            self.key_id(),
            BASE64.encode(raw)
        )
    }

    /// Signs `data` in minisign's pre-hashed format. Deterministic: same key, data and comment give
    /// the same bytes. Newlines in `trusted_comment` are replaced by spaces.
    pub fn sign(&self, data: &[u8], trusted_comment: &str) -> String {
        let trusted_comment = trusted_comment.replace(['\n', '\r'], " ");
        let prehash = Blake2b512::digest(data);
        let signature = self.key.sign(&prehash).to_bytes();
        let mut first = Vec::with_capacity(74);
        first.extend_from_slice(b"ED");
        first.extend_from_slice(&self.keynum);
        first.extend_from_slice(&signature);
        let mut global_message = Vec::with_capacity(64 + trusted_comment.len());
        global_message.extend_from_slice(&signature);
        global_message.extend_from_slice(trusted_comment.as_bytes());
        let global = self.key.sign(&global_message).to_bytes();
        format!(
            "untrusted comment: signature from stella-kit secret key {}\n{}\ntrusted comment: {}\n{}\n",
            self.key_id(),
            BASE64.encode(first),
            trusted_comment,
            BASE64.encode(global)
        )
    }
}

/// A minisign public key the appliance trusts.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    keynum: [u8; 8],
    key: minisign_verify::PublicKey,
}

impl TrustedKey {
    /// Accepts a whole `.pub` file (comment line + key line) or just the base64 key line.
    pub fn parse(text: &str) -> Result<Self, KitError> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty() && !line.starts_with("untrusted comment:"))
            .ok_or_else(|| KitError::Key("public key text holds no key line".into()))?;
        let raw = BASE64
            .decode(line)
            .map_err(|e| KitError::Key(format!("public key is not base64: {e}")))?;
        if raw.len() != 42 || &raw[0..2] != b"Ed" {
            return Err(KitError::Key(
                "public key is not a minisign Ed25519 key (42 bytes starting `Ed`)".into(),
            ));
        }
        let key = minisign_verify::PublicKey::from_base64(line)
            .map_err(|e| KitError::Key(format!("public key: {e}")))?;
        let mut keynum = [0u8; 8];
        keynum.copy_from_slice(&raw[2..10]);
        Ok(TrustedKey { keynum, key })
    }

    pub fn key_id(&self) -> String {
        format_key_id(&self.keynum)
    }
}

/// The set of keys a verifier accepts (several at once, for rotation).
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: Vec<TrustedKey>,
}

/// Facts established by a good signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    pub key_id: String,
    pub trusted_comment: String,
}

impl TrustedKeys {
    pub fn new(keys: Vec<TrustedKey>) -> Self {
        TrustedKeys { keys }
    }

    /// Parses each text with [`TrustedKey::parse`].
    pub fn from_texts<'a>(texts: impl IntoIterator<Item = &'a str>) -> Result<Self, KitError> {
        Ok(TrustedKeys {
            keys: texts
                .into_iter()
                .map(TrustedKey::parse)
                .collect::<Result<_, _>>()?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn keys(&self) -> &[TrustedKey] {
        &self.keys
    }

    pub fn key_ids(&self) -> Vec<String> {
        self.keys.iter().map(TrustedKey::key_id).collect()
    }

    /// Verifies a minisign signature over `data`. `what` names the signed thing in errors.
    /// Legacy (non-pre-hashed) signatures are refused.
    pub fn verify(
        &self,
        what: &str,
        data: &[u8],
        signature_text: &str,
    ) -> Result<VerifiedSignature, KitError> {
        let signature = minisign_verify::Signature::decode(signature_text).map_err(|e| {
            KitError::Signature {
                what: what.into(),
                reason: format!("not a minisign signature: {e}"),
            }
        })?;
        let keynum = signature_keynum(signature_text).ok_or_else(|| KitError::Signature {
            what: what.into(),
            reason: "signature line is malformed".into(),
        })?;
        let key = self
            .keys
            .iter()
            .find(|key| key.keynum == keynum)
            .ok_or_else(|| KitError::UnknownKey {
                what: what.into(),
                key_id: format_key_id(&keynum),
            })?;
        key.key
            .verify(data, &signature, false)
            .map_err(|e| KitError::Signature {
                what: what.into(),
                reason: e.to_string(),
            })?;
        Ok(VerifiedSignature {
            key_id: key.key_id(),
            trusted_comment: signature.trusted_comment().to_string(),
        })
    }
}

/// The key id (as [`format_key_id`] prints it) a minisign signature text names, whether or not
/// that key is trusted.
pub fn signature_key_id(signature_text: &str) -> Option<String> {
    signature_keynum(signature_text).map(|keynum| format_key_id(&keynum))
}

fn signature_keynum(signature_text: &str) -> Option<[u8; 8]> {
    let line = signature_text.lines().nth(1)?;
    let raw = BASE64.decode(line.trim()).ok()?;
    let mut keynum = [0u8; 8];
    keynum.copy_from_slice(raw.get(2..10)?);
    Some(keynum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_deterministic_and_verify_with_minisign_verify() {
        let pair = generate_key_pair(KeyProtection::Unencrypted, "test").unwrap();
        let key = SigningKey::from_minisign_file_contents(&pair.secret_key_file, None).unwrap();
        let first = key.sign(b"hello", "kit test");
        assert_eq!(first, key.sign(b"hello", "kit test"));
        let trusted = TrustedKeys::from_texts([pair.public_key_file.as_str()]).unwrap();
        let verified = trusted.verify("test", b"hello", &first).unwrap();
        assert_eq!(verified.trusted_comment, "kit test");
        assert_eq!(verified.key_id, pair.key_id);
        assert_eq!(
            key.public_key_file().lines().nth(1),
            pair.public_key_file.lines().nth(1)
        );
        assert!(matches!(
            trusted.verify("test", b"hellO", &first),
            Err(KitError::Signature { .. })
        ));
    }

    #[test]
    fn the_minisign_crate_accepts_our_signatures() {
        let pair = generate_key_pair(KeyProtection::Unencrypted, "test").unwrap();
        let key = SigningKey::from_minisign_file_contents(&pair.secret_key_file, None).unwrap();
        let signature = key.sign(b"data", "c");
        let public = minisign::PublicKeyBox::from_string(&pair.public_key_file)
            .unwrap()
            .into_public_key()
            .unwrap();
        let signature_box = minisign::SignatureBox::from_string(&signature).unwrap();
        minisign::verify(
            &public,
            &signature_box,
            std::io::Cursor::new(b"data"),
            true,
            false,
            false,
        )
        .unwrap();
    }

    #[test]
    fn unknown_key_is_named() {
        let signer = generate_key_pair(KeyProtection::Unencrypted, "a").unwrap();
        let other = generate_key_pair(KeyProtection::Unencrypted, "b").unwrap();
        let key = SigningKey::from_minisign_file_contents(&signer.secret_key_file, None).unwrap();
        let trusted = TrustedKeys::from_texts([other.public_key_file.as_str()]).unwrap();
        match trusted.verify("manifest.json", b"x", &key.sign(b"x", "c")) {
            Err(KitError::UnknownKey { key_id, .. }) => assert_eq!(key_id, signer.key_id),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn encrypted_keys_need_the_right_password() {
        let pair =
            generate_key_pair(KeyProtection::Password("correct horse".into()), "enc").unwrap();
        assert!(SigningKey::from_minisign_file_contents(&pair.secret_key_file, None).is_err());
        assert!(
            SigningKey::from_minisign_file_contents(&pair.secret_key_file, Some("wrong")).is_err()
        );
        let key =
            SigningKey::from_minisign_file_contents(&pair.secret_key_file, Some("correct horse"))
                .unwrap();
        assert_eq!(key.key_id(), pair.key_id);
    }
}
