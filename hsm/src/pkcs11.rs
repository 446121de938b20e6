//! PKCS#11 backend (via `cryptoki`): keys generated on the token, sensitive and non-extractable.
//!
//! SoftHSM 2.6 has no combined `CKM_ECDSA_SHA256`, so ECDSA signing hashes with SHA-256 in
//! software and sends the digest to `CKM_ECDSA`; the raw `r || s` result is DER-encoded here.
//! Ed25519 uses `CKM_EDDSA` without parameters (pure Ed25519).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CryptokiError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use sha2::{Digest as _, Sha256};

use crate::key::p256_raw_to_der;
use crate::{
    HsmError, KeyAlgorithm, KeyInfo, KeyLabel, KeyProtection, KeySource, Provenance, PublicKey,
    Signer,
};

/// DER of the named-curve OID prime256v1 (1.2.840.10045.3.1.7), the `CKA_EC_PARAMS` of P-256.
const P256_EC_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER of the OID id-Ed25519 (1.3.101.112), the `CKA_EC_PARAMS` SoftHSM and PKCS#11 3.0 use.
const ED25519_EC_PARAMS: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

/// Where to find the token and how to log in.
#[derive(Clone)]
pub struct Pkcs11Settings {
    /// Path of the PKCS#11 shared library, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// Token label.
    pub token: String,
    /// User PIN.
    pub pin: String,
}

impl std::fmt::Debug for Pkcs11Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Settings")
            .field("module", &self.module)
            .field("token", &self.token)
            .field("pin", &"<redacted>")
            .finish()
    }
}

/// A PKCS#11 module must be initialised once per process; this keeps one context per path.
fn module_context(module: &Path) -> Result<Pkcs11, HsmError> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let modules = MODULES.get_or_init(|| Mutex::new(HashMap::new()));
    let mut modules = modules
        .lock()
        .map_err(|_| HsmError::Poisoned(module.display().to_string()))?;
    if let Some(context) = modules.get(module) {
        return Ok(context.clone());
    }
    let error = |operation| {
        move |source| HsmError::Pkcs11 {
            module: module.to_path_buf(),
            operation,
            source,
        }
    };
    let context = Pkcs11::new(module).map_err(error("loading the module"))?;
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CryptokiError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(source) => return Err(error("C_Initialize")(source)),
    }
    modules.insert(module.to_path_buf(), context.clone());
    Ok(context)
}

fn token_labels(context: &Pkcs11, module: &Path) -> Result<Vec<(Slot, String)>, HsmError> {
    let error = |operation| {
        move |source| HsmError::Pkcs11 {
            module: module.to_path_buf(),
            operation,
            source,
        }
    };
    let mut labels = Vec::new();
    for slot in context
        .get_slots_with_token()
        .map_err(error("C_GetSlotList"))?
    {
        let info = context
            .get_token_info(slot)
            .map_err(error("C_GetTokenInfo"))?;
        if info.token_initialized() {
            labels.push((slot, info.label().trim_end().to_owned()));
        }
    }
    Ok(labels)
}

/// Initialises a fresh token labelled `token` in the first slot without an initialised token
/// and sets its user PIN: what `softhsm2-util --init-token --free` does, for ceremonies and tests.
pub fn initialize_token(
    module: &Path,
    token: &str,
    so_pin: &str,
    user_pin: &str,
) -> Result<(), HsmError> {
    let context = module_context(module)?;
    let error = |operation| {
        move |source| HsmError::Pkcs11 {
            module: module.to_path_buf(),
            operation,
            source,
        }
    };
    let mut free_slot = None;
    for slot in context
        .get_slots_with_token()
        .map_err(error("C_GetSlotList"))?
    {
        if !context
            .get_token_info(slot)
            .map_err(error("C_GetTokenInfo"))?
            .token_initialized()
        {
            free_slot = Some(slot);
            break;
        }
    }
    let slot = free_slot.ok_or_else(|| {
        HsmError::Config(format!(
            "PKCS#11 module {} has no slot with an uninitialised token",
            module.display()
        ))
    })?;
    let so_pin = AuthPin::from(so_pin.to_owned());
    context
        .init_token(slot, &so_pin, token)
        .map_err(error("C_InitToken"))?;
    let session = context
        .open_rw_session(slot)
        .map_err(error("C_OpenSession"))?;
    session
        .login(UserType::So, Some(&so_pin))
        .map_err(error("C_Login (SO)"))?;
    session
        .init_pin(&AuthPin::from(user_pin.to_owned()))
        .map_err(error("C_InitPIN"))?;
    session.logout().map_err(error("C_Logout"))?;
    Ok(())
}

/// The logged-in session of one token, reopened when the token drops it (device reset,
/// logout by another part of the process, token removal and reinsertion).
struct Connection {
    context: Pkcs11,
    module: PathBuf,
    token: String,
    pin: String,
    session: Mutex<Session>,
}

/// Errors after which a fresh session and login may succeed.
fn recoverable(error: &HsmError) -> bool {
    matches!(
        error,
        HsmError::Pkcs11 {
            source: CryptokiError::Pkcs11(
                RvError::SessionHandleInvalid
                    | RvError::SessionClosed
                    | RvError::UserNotLoggedIn
                    | RvError::KeyHandleInvalid
                    | RvError::ObjectHandleInvalid
                    | RvError::DeviceRemoved
                    | RvError::TokenNotPresent,
                _
            ),
            ..
        }
    )
}

impl Connection {
    /// Finds the token by label (slot ids can change across reinsertion), opens a read-write
    /// session and logs in as user.
    fn open_session(
        context: &Pkcs11,
        module: &Path,
        token: &str,
        pin: &str,
    ) -> Result<Session, HsmError> {
        let error = |operation| {
            move |source| HsmError::Pkcs11 {
                module: module.to_path_buf(),
                operation,
                source,
            }
        };
        let tokens = token_labels(context, module)?;
        let slot = tokens
            .iter()
            .find(|(_, label)| label == token)
            .map(|(slot, _)| *slot)
            .ok_or_else(|| HsmError::TokenNotFound {
                module: module.to_path_buf(),
                token: token.to_owned(),
                present: tokens.iter().map(|(_, label)| label.clone()).collect(),
            })?;
        let session = context
            .open_rw_session(slot)
            .map_err(error("C_OpenSession"))?;
        match session.login(UserType::User, Some(&AuthPin::from(pin.to_owned()))) {
            // Login state is per application and token: another source may have logged in already.
            Ok(()) | Err(CryptokiError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(source) => return Err(error("C_Login (user)")(source)),
        }
        Ok(session)
    }

    fn lock(&self) -> Result<MutexGuard<'_, Session>, HsmError> {
        self.session
            .lock()
            .map_err(|_| HsmError::Poisoned(format!("pkcs11:{}", self.token)))
    }

    /// Replaces the session behind `guard` with a freshly opened, logged-in one.
    fn recover(&self, guard: &mut MutexGuard<'_, Session>) -> Result<(), HsmError> {
        **guard = Connection::open_session(&self.context, &self.module, &self.token, &self.pin)?;
        Ok(())
    }
}

/// Keys on one PKCS#11 token, through one logged-in read-write session.
pub struct Pkcs11KeySource {
    connection: Arc<Connection>,
}

impl std::fmt::Debug for Pkcs11KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11KeySource")
            .field("module", &self.connection.module)
            .field("token", &self.connection.token)
            .finish()
    }
}

impl Pkcs11KeySource {
    /// Loads the module, finds the token by label and logs in as user.
    pub fn open(settings: &Pkcs11Settings) -> Result<Self, HsmError> {
        let context = module_context(&settings.module)?;
        let session =
            Connection::open_session(&context, &settings.module, &settings.token, &settings.pin)?;
        Ok(Pkcs11KeySource {
            connection: Arc::new(Connection {
                context,
                module: settings.module.clone(),
                token: settings.token.clone(),
                pin: settings.pin.clone(),
                session: Mutex::new(session),
            }),
        })
    }

    /// Runs `operation` on the session; if the token dropped the session or the login, opens
    /// a new one and runs it once more.
    fn with_session<T>(
        &self,
        mut operation: impl FnMut(&Session) -> Result<T, HsmError>,
    ) -> Result<T, HsmError> {
        let mut session = self.connection.lock()?;
        match operation(&session) {
            Err(error) if recoverable(&error) => {
                self.connection.recover(&mut session)?;
                operation(&session)
            }
            result => result,
        }
    }

    fn error(&self, operation: &'static str) -> impl Fn(CryptokiError) -> HsmError + '_ {
        move |source| HsmError::Pkcs11 {
            module: self.connection.module.clone(),
            operation,
            source,
        }
    }

    fn find_one(
        &self,
        session: &Session,
        class: ObjectClass,
        label: &KeyLabel,
    ) -> Result<Option<ObjectHandle>, HsmError> {
        let handles = session
            .find_objects(&[
                Attribute::Class(class),
                Attribute::Label(label.as_str().as_bytes().to_vec()),
            ])
            .map_err(self.error("C_FindObjects"))?;
        Ok(handles.into_iter().next())
    }

    /// Reads the key under `label`: (private key handle, key info).
    fn load(
        &self,
        session: &Session,
        label: &KeyLabel,
    ) -> Result<Option<(ObjectHandle, KeyInfo)>, HsmError> {
        let Some(private) = self.find_one(session, ObjectClass::PRIVATE_KEY, label)? else {
            return Ok(None);
        };
        let public = self
            .find_one(session, ObjectClass::PUBLIC_KEY, label)?
            .ok_or_else(|| HsmError::UnsupportedKey {
                label: label.to_string(),
                detail: "private key has no public key object with the same label".to_owned(),
            })?;
        let attributes = session
            .get_attributes(
                public,
                &[
                    AttributeType::KeyType,
                    AttributeType::EcParams,
                    AttributeType::EcPoint,
                ],
            )
            .map_err(self.error("C_GetAttributeValue (public key)"))?;
        let (mut key_type, mut params, mut point) = (None, None, None);
        for attribute in attributes {
            match attribute {
                Attribute::KeyType(value) => key_type = Some(value),
                Attribute::EcParams(value) => params = Some(value),
                Attribute::EcPoint(value) => point = Some(value),
                _ => {}
            }
        }
        let unsupported = |detail: String| HsmError::UnsupportedKey {
            label: label.to_string(),
            detail,
        };
        let point =
            point.ok_or_else(|| unsupported("public key has no CKA_EC_POINT".to_owned()))?;
        let public_key = match (key_type, params.as_deref()) {
            (Some(KeyType::EC), Some(P256_EC_PARAMS)) => {
                PublicKey::from_p256_sec1(label.as_str(), unwrap_octet_string(&point, 65))?
            }
            (Some(KeyType::EC_EDWARDS), Some(ED25519_EC_PARAMS)) => {
                PublicKey::from_ed25519_bytes(label.as_str(), unwrap_octet_string(&point, 32))?
            }
            (key_type, params) => {
                return Err(unsupported(format!(
                    "key type {key_type:?} with EC params {params:02x?}"
                )));
            }
        };
        Ok(Some((
            private,
            KeyInfo {
                label: label.clone(),
                public_key,
            },
        )))
    }
}

/// `CKA_EC_POINT` is a DER OCTET STRING per PKCS#11, but some modules return the bare point;
/// accept both by length.
fn unwrap_octet_string(value: &[u8], raw_length: usize) -> &[u8] {
    if value.len() == raw_length + 2 && value[0] == 0x04 && usize::from(value[1]) == raw_length {
        &value[2..]
    } else {
        value
    }
}

impl KeySource for Pkcs11KeySource {
    fn name(&self) -> String {
        format!(
            "pkcs11:{}:{}",
            self.connection.module.display(),
            self.connection.token
        )
    }

    fn list_keys(&self) -> Result<Vec<KeyInfo>, HsmError> {
        self.with_session(|session| self.list_keys_in(session))
    }

    fn find_key(&self, label: &KeyLabel) -> Result<Option<KeyInfo>, HsmError> {
        self.with_session(|session| Ok(self.load(session, label)?.map(|(_, info)| info)))
    }

    fn generate_key(&self, label: &KeyLabel, algorithm: KeyAlgorithm) -> Result<KeyInfo, HsmError> {
        self.with_session(|session| self.generate_key_in(session, label, algorithm))
    }

    fn signer(&self, label: &KeyLabel) -> Result<Arc<dyn Signer>, HsmError> {
        let (handle, key) = self.with_session(|session| {
            self.load(session, label)?
                .ok_or_else(|| HsmError::KeyNotFound {
                    label: label.to_string(),
                    source_name: self.name(),
                })
        })?;
        Ok(Arc::new(Pkcs11Signer {
            connection: Arc::clone(&self.connection),
            backend: format!("pkcs11:{}", self.connection.token),
            handle: Mutex::new(handle),
            key,
        }))
    }

    fn protection(&self, label: &KeyLabel) -> Result<KeyProtection, HsmError> {
        self.with_session(|session| self.protection_in(session, label))
    }
}

impl Pkcs11KeySource {
    fn list_keys_in(&self, session: &Session) -> Result<Vec<KeyInfo>, HsmError> {
        let handles = session
            .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
            .map_err(self.error("C_FindObjects"))?;
        let mut keys = Vec::new();
        for handle in handles {
            let attributes = session
                .get_attributes(handle, &[AttributeType::Label])
                .map_err(self.error("C_GetAttributeValue"))?;
            for attribute in attributes {
                if let Attribute::Label(bytes) = attribute {
                    // Keys whose label this crate would not have made are not ours; skip them.
                    let Ok(label) = std::str::from_utf8(&bytes)
                        .map_err(drop)
                        .and_then(|text| KeyLabel::new(text).map_err(drop))
                    else {
                        continue;
                    };
                    match self.load(session, &label) {
                        Ok(Some((_, info))) => keys.push(info),
                        Ok(None) | Err(HsmError::UnsupportedKey { .. }) => {}
                        Err(error) => return Err(error),
                    }
                }
            }
        }
        keys.sort_by(|a, b| a.label.cmp(&b.label));
        keys.dedup_by(|a, b| a.label == b.label);
        Ok(keys)
    }

    fn generate_key_in(
        &self,
        session: &Session,
        label: &KeyLabel,
        algorithm: KeyAlgorithm,
    ) -> Result<KeyInfo, HsmError> {
        if self
            .find_one(session, ObjectClass::PRIVATE_KEY, label)?
            .is_some()
        {
            return Err(HsmError::KeyExists {
                label: label.to_string(),
                source_name: self.name(),
            });
        }
        let (mechanism, params) = match algorithm {
            KeyAlgorithm::EcdsaP256 => (Mechanism::EccKeyPairGen, P256_EC_PARAMS),
            KeyAlgorithm::Ed25519 => (Mechanism::EccEdwardsKeyPairGen, ED25519_EC_PARAMS),
        };
        let label_bytes = label.as_str().as_bytes().to_vec();
        let id = Sha256::digest(label.as_str().as_bytes())[..16].to_vec();
        let public_template = [
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::EcParams(params.to_vec()),
            Attribute::Label(label_bytes.clone()),
            Attribute::Id(id.clone()),
        ];
        // The invariant of this crate: private keys are born on the token, sensitive and
        // non-extractable, so neither we nor anyone with the PIN can ever read them.
        let private_template = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Label(label_bytes),
            Attribute::Id(id),
        ];
        session
            .generate_key_pair(&mechanism, &public_template, &private_template)
            .map_err(self.error("C_GenerateKeyPair"))?;
        let (_, info) = self
            .load(session, label)?
            .ok_or_else(|| HsmError::KeyNotFound {
                label: label.to_string(),
                source_name: self.name(),
            })?;
        Ok(info)
    }

    fn protection_in(
        &self,
        session: &Session,
        label: &KeyLabel,
    ) -> Result<KeyProtection, HsmError> {
        let (handle, _) = self
            .load(session, label)?
            .ok_or_else(|| HsmError::KeyNotFound {
                label: label.to_string(),
                source_name: self.name(),
            })?;
        let attributes = session
            .get_attributes(
                handle,
                &[
                    AttributeType::Local,
                    AttributeType::Extractable,
                    AttributeType::Sensitive,
                ],
            )
            .map_err(self.error("C_GetAttributeValue (private key)"))?;
        let (mut local, mut extractable, mut sensitive) = (false, true, false);
        for attribute in attributes {
            match attribute {
                Attribute::Local(value) => local = value,
                Attribute::Extractable(value) => extractable = value,
                Attribute::Sensitive(value) => sensitive = value,
                _ => {}
            }
        }
        // Actively try to read the private value (CKA_VALUE): a correct token refuses with
        // CKR_ATTRIBUTE_SENSITIVE, which cryptoki reports as an absent attribute or an error.
        let value = session.get_attributes(handle, &[AttributeType::Value]);
        let private_value_readable = matches!(
            value.as_deref(),
            Ok(attributes) if attributes.iter().any(|a| matches!(a, Attribute::Value(bytes) if !bytes.is_empty()))
        );
        Ok(KeyProtection {
            generated_on_device: local,
            exportable: extractable || !sensitive,
            private_value_readable,
        })
    }
}

/// Signs with one private key through the source's shared session.
struct Pkcs11Signer {
    connection: Arc<Connection>,
    backend: String,
    /// Cached handle of the private key; looked up again after the session is reopened.
    handle: Mutex<ObjectHandle>,
    key: KeyInfo,
}

impl Pkcs11Signer {
    fn sign_once(
        &self,
        session: &Session,
        handle: ObjectHandle,
        message: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        let error = |source| HsmError::Pkcs11 {
            module: self.connection.module.clone(),
            operation: "C_Sign",
            source,
        };
        match self.key.algorithm() {
            KeyAlgorithm::EcdsaP256 => {
                let digest = Sha256::digest(message);
                let raw = session
                    .sign(&Mechanism::Ecdsa, handle, &digest)
                    .map_err(error)?;
                p256_raw_to_der(self.key.label.as_str(), &raw)
            }
            KeyAlgorithm::Ed25519 => {
                let mechanism = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
                session.sign(&mechanism, handle, message).map_err(error)
            }
        }
    }
}

impl Signer for Pkcs11Signer {
    fn key(&self) -> &KeyInfo {
        &self.key
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, HsmError> {
        let mut session = self.connection.lock()?;
        let mut handle = self
            .handle
            .lock()
            .map_err(|_| HsmError::Poisoned(self.backend.clone()))?;
        match self.sign_once(&session, *handle, message) {
            Err(error) if recoverable(&error) => {
                self.connection.recover(&mut session)?;
                let handles = session
                    .find_objects(&[
                        Attribute::Class(ObjectClass::PRIVATE_KEY),
                        Attribute::Label(self.key.label.as_str().as_bytes().to_vec()),
                    ])
                    .map_err(|source| HsmError::Pkcs11 {
                        module: self.connection.module.clone(),
                        operation: "C_FindObjects",
                        source,
                    })?;
                *handle = handles
                    .into_iter()
                    .next()
                    .ok_or_else(|| HsmError::KeyNotFound {
                        label: self.key.label.to_string(),
                        source_name: self.backend.clone(),
                    })?;
                self.sign_once(&session, *handle, message)
            }
            result => result,
        }
    }

    fn provenance(&self) -> Provenance {
        Provenance::Hsm {
            backend: self.backend.clone(),
        }
    }
}
