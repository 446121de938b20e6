//! Kit-key rotation: a key-update record, signed by a key the appliance trusts now, that adds and
//! removes trusted kit keys. It travels in a kit (`key-updates/`) signed by a trusted key.

use serde::{Deserialize, Serialize};

use crate::canonical::to_canonical_json;
use crate::error::KitError;
use crate::manifest::parse_time;
use crate::signing::{SigningKey, TrustedKey, TrustedKeys};

pub const KEY_UPDATE_FORMAT: &str = "stella-key-update/1";

/// The body of a key update; the signature covers its canonical JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyUpdate {
    pub format: String,
    /// Strictly increasing per appliance; an update at or below the last applied one is refused.
    pub sequence: u64,
    pub issued: String,
    /// minisign public keys (base64 key lines) to trust from now on.
    #[serde(default)]
    pub add: Vec<String>,
    /// minisign key ids (16 hex digits, as minisign prints them) to stop trusting.
    #[serde(default)]
    pub remove: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedKeyUpdate {
    pub update: KeyUpdate,
    /// minisign signature text by a currently trusted kit key.
    pub signature: String,
}

/// Signs a key update with a currently trusted kit key.
pub fn sign_key_update(
    mut update: KeyUpdate,
    key: &SigningKey,
) -> Result<SignedKeyUpdate, KitError> {
    update.format = KEY_UPDATE_FORMAT.into();
    update.add.sort();
    update.add.dedup();
    update.remove.sort();
    update.remove.dedup();
    let signed = SignedKeyUpdate {
        signature: String::new(),
        update,
    };
    signed.validate().map_err(KitError::Manifest)?;
    let payload = to_canonical_json("key update", &signed.update)?;
    let signature = key.sign(
        &payload,
        &format!("stella key-update sequence {}", signed.update.sequence),
    );
    Ok(SignedKeyUpdate {
        signature,
        ..signed
    })
}

impl SignedKeyUpdate {
    pub fn parse(bytes: &[u8]) -> Result<Self, KitError> {
        serde_json::from_slice(bytes).map_err(|e| KitError::Manifest(format!("key update: {e}")))
    }

    /// Structural checks (no key needed): format, time, every added key parses.
    pub fn validate(&self) -> Result<(), String> {
        if self.update.format != KEY_UPDATE_FORMAT {
            return Err(format!("key update format {:?}", self.update.format));
        }
        parse_time(&self.update.issued)?;
        for key in &self.update.add {
            TrustedKey::parse(key).map_err(|e| e.to_string())?;
        }
        if self.update.add.is_empty() && self.update.remove.is_empty() {
            return Err("key update neither adds nor removes a key".into());
        }
        Ok(())
    }

    /// Applies the update to the currently trusted set. The signer must be trusted now, the
    /// sequence must be above `last_sequence`, and the result must not be empty.
    pub fn apply(
        &self,
        current: &TrustedKeys,
        last_sequence: Option<u64>,
    ) -> Result<TrustedKeys, KitError> {
        self.validate().map_err(KitError::Manifest)?;
        if let Some(last) = last_sequence
            && self.update.sequence <= last
        {
            return Err(KitError::Rollback {
                channel: "key-updates".into(),
                sequence: self.update.sequence,
                last,
            });
        }
        let payload = to_canonical_json("key update", &self.update)?;
        current.verify(
            &format!("key update {}", self.update.sequence),
            &payload,
            &self.signature,
        )?;
        let mut keys: Vec<TrustedKey> = current
            .keys()
            .iter()
            .filter(|key| !self.update.remove.contains(&key.key_id()))
            .cloned()
            .collect();
        for text in &self.update.add {
            let key = TrustedKey::parse(text)?;
            if !keys
                .iter()
                .any(|existing| existing.key_id() == key.key_id())
            {
                keys.push(key);
            }
        }
        if keys.is_empty() {
            return Err(KitError::Key(
                "the key update would leave no trusted kit key".into(),
            ));
        }
        Ok(TrustedKeys::new(keys))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::{KeyProtection, generate_key_pair};

    fn pair() -> (SigningKey, String) {
        let pair = generate_key_pair(KeyProtection::Unencrypted, "k").unwrap();
        (
            SigningKey::from_minisign_file_contents(&pair.secret_key_file, None).unwrap(),
            pair.public_key_file,
        )
    }

    fn key_line(public_file: &str) -> String {
        public_file.lines().nth(1).unwrap().to_string()
    }

    #[test]
    fn rotation_by_a_trusted_key_and_refusals() {
        let (old, old_pub) = pair();
        let (new, new_pub) = pair();
        let current = TrustedKeys::from_texts([old_pub.as_str()]).unwrap();
        let update = KeyUpdate {
            format: String::new(),
            sequence: 1,
            issued: "2026-11-01T00:00:00Z".into(),
            add: vec![key_line(&new_pub)],
            remove: vec![old.key_id()],
        };
        let signed = sign_key_update(update.clone(), &old).unwrap();
        let rotated = signed.apply(&current, None).unwrap();
        assert_eq!(rotated.key_ids(), vec![new.key_id()]);
        // Replayed, or signed by a key that is not trusted yet, or emptying the set: refused.
        assert!(matches!(
            signed.apply(&current, Some(1)),
            Err(KitError::Rollback { .. })
        ));
        let self_signed = sign_key_update(update.clone(), &new).unwrap();
        assert!(matches!(
            self_signed.apply(&current, None),
            Err(KitError::UnknownKey { .. })
        ));
        let emptying = sign_key_update(
            KeyUpdate {
                add: vec![],
                ..update.clone()
            },
            &old,
        )
        .unwrap();
        assert!(matches!(
            emptying.apply(&current, None),
            Err(KitError::Key(_))
        ));
        let mut tampered = signed.clone();
        tampered.update.remove.clear();
        assert!(matches!(
            tampered.apply(&current, None),
            Err(KitError::Signature { .. })
        ));
    }
}
