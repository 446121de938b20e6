//! Development backend: software keys in PKCS#8 PEM files, one per label. Refused unless
//! [`SigningMode::Dev`] is set, and every signer it hands out reports itself dev-signed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use p256::pkcs8::LineEnding;
use rand_core::OsRng;

use crate::{
    HsmError, KeyAlgorithm, KeyInfo, KeyLabel, KeyProtection, KeySource, Provenance, PublicKey,
    Signer, SigningMode,
};

/// Software keys in `<dir>/<label>.pem`.
#[derive(Debug)]
pub struct FileKeySource {
    dir: PathBuf,
}

enum SoftwareKey {
    P256(p256::ecdsa::SigningKey),
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

impl FileKeySource {
    /// Opens (creating if needed) the key directory; fails unless `mode` is [`SigningMode::Dev`].
    pub fn open(dir: &Path, mode: SigningMode) -> Result<Self, HsmError> {
        if mode != SigningMode::Dev {
            return Err(HsmError::DevModeRequired);
        }
        std::fs::create_dir_all(dir).map_err(|source| HsmError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(FileKeySource {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, label: &KeyLabel) -> PathBuf {
        // KeyLabel admits only [a-z0-9._-] and no leading '.', so this stays inside `dir`.
        self.dir.join(format!("{label}.pem"))
    }

    fn read(&self, label: &KeyLabel) -> Result<Option<SoftwareKey>, HsmError> {
        let path = self.path(label);
        let pem = match std::fs::read_to_string(&path) {
            Ok(pem) => pem,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(HsmError::Io { path, source }),
        };
        if let Ok(key) = p256::ecdsa::SigningKey::from_pkcs8_pem(&pem) {
            return Ok(Some(SoftwareKey::P256(key)));
        }
        if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem) {
            return Ok(Some(SoftwareKey::Ed25519(Box::new(key))));
        }
        Err(HsmError::KeyFile {
            path,
            reason: "not a PKCS#8 PEM P-256 or Ed25519 private key".to_owned(),
        })
    }

    fn info(label: &KeyLabel, key: &SoftwareKey) -> Result<KeyInfo, HsmError> {
        let public_key = match key {
            SoftwareKey::P256(key) => PublicKey::from_p256_sec1(
                label.as_str(),
                key.verifying_key().to_encoded_point(false).as_bytes(),
            )?,
            SoftwareKey::Ed25519(key) => {
                PublicKey::from_ed25519_bytes(label.as_str(), key.verifying_key().as_bytes())?
            }
        };
        Ok(KeyInfo {
            label: label.clone(),
            public_key,
        })
    }
}

impl KeySource for FileKeySource {
    fn name(&self) -> String {
        format!("file(dev):{}", self.dir.display())
    }

    fn list_keys(&self) -> Result<Vec<KeyInfo>, HsmError> {
        let entries = std::fs::read_dir(&self.dir).map_err(|source| HsmError::Io {
            path: self.dir.clone(),
            source,
        })?;
        let mut keys = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| HsmError::Io {
                path: self.dir.clone(),
                source,
            })?;
            let name = entry.file_name();
            let Some(stem) = name.to_str().and_then(|name| name.strip_suffix(".pem")) else {
                continue;
            };
            let Ok(label) = KeyLabel::new(stem) else {
                continue;
            };
            if let Some(key) = self.read(&label)? {
                keys.push(Self::info(&label, &key)?);
            }
        }
        keys.sort_by(|a, b| a.label.cmp(&b.label));
        Ok(keys)
    }

    fn find_key(&self, label: &KeyLabel) -> Result<Option<KeyInfo>, HsmError> {
        self.read(label)?
            .map(|key| Self::info(label, &key))
            .transpose()
    }

    fn generate_key(&self, label: &KeyLabel, algorithm: KeyAlgorithm) -> Result<KeyInfo, HsmError> {
        let path = self.path(label);
        if path.exists() {
            return Err(HsmError::KeyExists {
                label: label.to_string(),
                source_name: self.name(),
            });
        }
        let key = match algorithm {
            KeyAlgorithm::EcdsaP256 => {
                SoftwareKey::P256(p256::ecdsa::SigningKey::random(&mut OsRng))
            }
            KeyAlgorithm::Ed25519 => {
                SoftwareKey::Ed25519(Box::new(ed25519_dalek::SigningKey::generate(&mut OsRng)))
            }
        };
        let pem = match &key {
            SoftwareKey::P256(key) => key.to_pkcs8_pem(LineEnding::LF),
            SoftwareKey::Ed25519(key) => key.to_pkcs8_pem(LineEnding::LF),
        }
        .map_err(|error| HsmError::KeyFile {
            path: path.clone(),
            reason: error.to_string(),
        })?;
        // Write beside the target and rename, so a crash never leaves a half-written key.
        let io = |source| HsmError::Io {
            path: path.clone(),
            source,
        };
        let mut temporary = tempfile::NamedTempFile::new_in(&self.dir).map_err(io)?;
        std::io::Write::write_all(&mut temporary, pem.as_bytes()).map_err(io)?;
        temporary.as_file().sync_all().map_err(io)?;
        temporary
            .persist_noclobber(&path)
            .map_err(|error| io(error.error))?;
        Self::info(label, &key)
    }

    fn signer(&self, label: &KeyLabel) -> Result<Arc<dyn Signer>, HsmError> {
        let key = self.read(label)?.ok_or_else(|| HsmError::KeyNotFound {
            label: label.to_string(),
            source_name: self.name(),
        })?;
        let info = Self::info(label, &key)?;
        Ok(Arc::new(FileSigner { key, info }))
    }

    fn protection(&self, label: &KeyLabel) -> Result<KeyProtection, HsmError> {
        self.read(label)?.ok_or_else(|| HsmError::KeyNotFound {
            label: label.to_string(),
            source_name: self.name(),
        })?;
        Ok(KeyProtection {
            generated_on_device: false,
            exportable: true,
            private_value_readable: true,
        })
    }
}

struct FileSigner {
    key: SoftwareKey,
    info: KeyInfo,
}

impl Signer for FileSigner {
    fn key(&self) -> &KeyInfo {
        &self.info
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, HsmError> {
        use p256::ecdsa::signature::Signer as _;
        Ok(match &self.key {
            SoftwareKey::P256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(message);
                signature.to_der().as_bytes().to_vec()
            }
            SoftwareKey::Ed25519(key) => key.sign(message).to_bytes().to_vec(),
        })
    }

    fn provenance(&self) -> Provenance {
        Provenance::DevSoftware
    }
}
