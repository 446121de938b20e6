//! The signer inside the daemon: the `[hsm]` key source, the HSM-held CA, the entitlement gate
//! fed by the licences and revocation lists that kits brought, the signing quota, and the
//! audit of every signing. Routes: `POST /sign/dsse` (DPoP-bound token with server nonce,
//! scope `signer.sign`) and `GET /api/signer/status`.
//!
//! Only `stella-hsm` touches key material: this module holds a key source and asks it for
//! signers; it never sees a private key.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::json;
use stella_attestor::{Attestor, AttestorConfig, ExportedBundle};
use stella_authority::Scope;
use stella_core::{Config, ReleaseCheck};
use stella_feeds::FeedStore;
use stella_hsm::{HsmConfig, KeyInventory, KeyRole, KeySource};
use stella_importer::TrustedKeys;
use stella_importer::licence::SignedLicence;
use stella_signer::{
    AttestationSigner, CaProfile, Entitled, Entitlement, EntitlementRefusal, GateContext,
    ReleaseIntegrity, ReleasePolicy, RequestLimits, RevocationList, SemVer, SignRequest,
    SignedAttestation, SigningIdentity, VendorSignature, check_entitlement,
};
use stella_store::{AuditEvent, Catalog};
use time::OffsetDateTime;

use crate::AppState;
use crate::auth::{AuditContext, Caller, RouteTable};

/// The audit action of one signing; the signing quota counts these.
pub const SIGN_ACTION: &str = "signer.sign";

pub(crate) fn routes(table: RouteTable) -> RouteTable {
    table
        .signer(Method::POST, "/sign/dsse", Scope::SignerSign, sign_dsse)
        .scoped(
            Method::GET,
            "/api/signer/status",
            Scope::ScannerRead,
            signer_status,
        )
}

/// Why the signer cannot be set up or cannot sign.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SigningError {
    /// The `[hsm]` table does not parse.
    #[error("[hsm]: {0}")]
    Config(String),
    /// The key source failed.
    #[error("HSM: {0}")]
    Hsm(#[from] stella_hsm::HsmError),
    /// The signer library failed.
    #[error("signer: {0}")]
    Signer(#[from] stella_signer::SignerError),
    /// A file of the signer state could not be read or written.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// `[licence] vendor_keys` or `[signer] release_public_key` is unusable.
    #[error("{0}")]
    Keys(String),
    /// The transparency log or the timestamp authority cannot be opened.
    #[error("attestor: {0}")]
    Attestor(String),
}

/// Parses the `[hsm]` table into the key-source configuration; `None` when it is absent.
pub fn hsm_config(config: &Config) -> Result<Option<HsmConfig>, SigningError> {
    let Some(table) = &config.hsm else {
        return Ok(None);
    };
    let parsed: HsmConfig = table
        .clone()
        .try_into()
        .map_err(|e: toml::de::Error| SigningError::Config(e.message().to_owned()))?;
    parsed
        .validate()
        .map_err(|e| SigningError::Config(e.to_string()))?;
    Ok(Some(parsed))
}

/// Opens the configured key source; `None` when `[hsm]` is absent.
pub fn open_key_source(config: &Config) -> Result<Option<Box<dyn KeySource>>, SigningError> {
    match hsm_config(config)? {
        Some(hsm) => Ok(Some(stella_hsm::open_key_source(&hsm)?)),
        None => Ok(None),
    }
}

/// The persisted root of the appliance CA (`DATA_DIR/signer/ca-root.json`): made once, so the
/// published trust root stays byte-identical across restarts.
#[derive(Debug, Serialize, Deserialize)]
struct StoredRoot {
    not_before: i64,
    organization: String,
    der: String,
}

const ROOT_COMMON_NAME: &str = "Stella Ops Appliance Root CA";

fn root_path(data_dir: &Path) -> PathBuf {
    data_dir.join("signer").join("ca-root.json")
}

fn file_error(path: &Path, reason: impl ToString) -> SigningError {
    SigningError::File {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// Writes `bytes` to `path` through a temporary file, fsynced, renamed.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), SigningError> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| file_error(dir, e))?;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp).map_err(|e| file_error(&tmp, e))?;
    file.write_all(bytes).map_err(|e| file_error(&tmp, e))?;
    file.sync_all().map_err(|e| file_error(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| file_error(path, e))?;
    if let Ok(dir) = std::fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Opens the attestation signer over `source`: the CA root is read from the data directory,
/// or self-signed in the HSM and stored there the first time.
pub fn open_attestation_signer(
    source: &dyn KeySource,
    data_dir: &Path,
    appliance_id: &str,
    config: &Config,
) -> Result<AttestationSigner, SigningError> {
    let path = root_path(data_dir);
    let clock = Arc::new(stella_signer::SystemClock);
    let identity = SigningIdentity::Uri(config.signer.identity.clone());
    let issuer = config.signer.oidc_issuer.as_str();
    let stored = match std::fs::read(&path) {
        Ok(bytes) => Some(
            serde_json::from_slice::<StoredRoot>(&bytes)
                .map_err(|e| file_error(&path, format!("not a stored CA root: {e}")))?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(file_error(&path, e)),
    };
    let signer = match stored {
        Some(stored) => {
            let not_before = OffsetDateTime::from_unix_timestamp(stored.not_before)
                .map_err(|e| file_error(&path, e))?;
            let der = STANDARD
                .decode(&stored.der)
                .map_err(|e| file_error(&path, e))?;
            let profile = CaProfile::new(ROOT_COMMON_NAME, &stored.organization, not_before);
            AttestationSigner::from_key_source(
                source,
                &profile,
                Some(&der),
                clock,
                identity,
                issuer,
            )?
        }
        None => {
            let now = OffsetDateTime::now_utc();
            let not_before = now
                .replace_nanosecond(0)
                .map_err(|e| file_error(&path, e))?;
            let profile = CaProfile::new(ROOT_COMMON_NAME, appliance_id, not_before);
            let signer = AttestationSigner::from_key_source(
                source, &profile, None, clock, identity, issuer,
            )?;
            let stored = StoredRoot {
                not_before: not_before.unix_timestamp(),
                organization: appliance_id.to_owned(),
                der: STANDARD.encode(&signer.certificate_authority().root().der),
            };
            let bytes = serde_json::to_vec_pretty(&stored).map_err(|e| file_error(&path, e))?;
            write_atomically(&path, &bytes)?;
            signer
        }
    };
    Ok(signer)
}

/// Runs the start-up release check of `[signer]` against the running binary.
fn release_integrity(config: &Config) -> Result<ReleaseIntegrity, SigningError> {
    let policy = match (
        config.signer.release_check,
        config.signer.release_public_key.trim(),
    ) {
        (ReleaseCheck::DevOverride, _) => ReleasePolicy::DevOverride,
        (ReleaseCheck::Enforce, "") => ReleasePolicy::NotConfigured,
        (ReleaseCheck::Enforce, key) => {
            let text = stella_core::key_text(key)
                .map_err(|e| SigningError::Keys(format!("[signer] release_public_key: {e}")))?;
            let line = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
                .unwrap_or_default()
                .to_owned();
            ReleasePolicy::Enforce {
                release_public_key: line,
            }
        }
    };
    if !matches!(policy, ReleasePolicy::Enforce { .. }) {
        return Ok(stella_signer::check_release(&[], None, &policy)?);
    }
    let exe = std::env::current_exe().map_err(|e| file_error(Path::new("current_exe"), e))?;
    let binary = std::fs::read(&exe).map_err(|e| file_error(&exe, e))?;
    let mut sig_path = exe.clone().into_os_string();
    sig_path.push(".minisig");
    let signature = std::fs::read_to_string(&sig_path).ok();
    Ok(stella_signer::check_release(
        &binary,
        signature.as_deref(),
        &policy,
    )?)
}

/// The vendor keys of `[licence] vendor_keys`.
pub fn vendor_keys(config: &Config) -> Result<TrustedKeys, SigningError> {
    let mut texts = Vec::new();
    for entry in &config.licence.vendor_keys {
        texts
            .push(stella_core::key_text(entry).map_err(|e| {
                SigningError::Keys(format!("[licence] vendor_keys {entry:?}: {e}"))
            })?);
    }
    TrustedKeys::from_texts(texts.iter().map(String::as_str))
        .map_err(|e| SigningError::Keys(format!("[licence] vendor_keys: {e}")))
}

/// The gate's decision, the licence it looked at, and the signings used this month.
type GateResult = (
    Result<Entitled, EntitlementRefusal>,
    Option<Entitlement>,
    u64,
);

/// A signer that is set up, or the reason it is not.
enum Readiness {
    Ready(Box<AttestationSigner>),
    NotReady(String),
}

/// The daemon's signer: present when `[hsm]` is configured.
pub struct SigningService {
    source: Box<dyn KeySource>,
    signer: Readiness,
    release_refusal: Option<String>,
    installation_key_id: Option<String>,
    vendor_keys: TrustedKeys,
    vendor_key_ids: BTreeSet<String>,
    appliance_id: String,
    root_not_before: Option<OffsetDateTime>,
    attestor: Option<Attestor>,
    /// Serialises signings, so quota counting, signing and the audit record are one step.
    lock: Mutex<()>,
}

impl std::fmt::Debug for SigningService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningService")
            .field("source", &self.source.name())
            .finish_non_exhaustive()
    }
}

impl SigningService {
    /// Sets the signer up over an opened key source. Missing keys or a failing release check
    /// do not fail the daemon: the signer then refuses, and `/readyz` and the status say why.
    pub fn open(
        source: Box<dyn KeySource>,
        data_dir: &Path,
        appliance_id: &str,
        config: &Config,
    ) -> Result<Self, SigningError> {
        let vendor_keys = vendor_keys(config)?;
        let vendor_key_ids = vendor_keys.key_ids().into_iter().collect();
        let inventory = stella_hsm::key_status(source.as_ref())?;
        let installation_key_id = inventory
            .entry(KeyRole::InstallationIdentity)
            .and_then(|e| e.key_id.clone());
        let mut root_not_before = None;
        let (signer, release_refusal) = if inventory.is_complete() {
            let mut signer =
                open_attestation_signer(source.as_ref(), data_dir, appliance_id, config)?;
            root_not_before = Some(signer.certificate_authority().root().not_before);
            let refusal = match release_integrity(config) {
                Ok(release) => {
                    signer.set_release_integrity(release);
                    None
                }
                Err(e) => Some(e.to_string()),
            };
            (Readiness::Ready(Box::new(signer)), refusal)
        } else {
            let missing: Vec<&str> = inventory
                .keys
                .iter()
                .filter(|e| e.key_id.is_none())
                .map(|e| e.label.as_str())
                .collect();
            (
                Readiness::NotReady(format!(
                    "the HSM lacks the keys {}; run `stella hsm init` and restart",
                    missing.join(", ")
                )),
                None,
            )
        };
        Ok(SigningService {
            source,
            signer,
            release_refusal,
            installation_key_id,
            vendor_keys,
            vendor_key_ids,
            appliance_id: appliance_id.to_owned(),
            root_not_before,
            attestor: None,
            lock: Mutex::new(()),
        })
    }

    /// Opens the transparency log and the timestamp authority in `DATA_DIR/attestor/`, so that
    /// every signing is logged and comes back as a Sigstore bundle. `base_url` is where the
    /// appliance is reached (written into the signing config).
    pub fn open_attestor(
        &mut self,
        data_dir: &Path,
        base_url: &str,
        config: &Config,
    ) -> Result<(), SigningError> {
        let (Readiness::Ready(signer), Some(valid_from)) = (&self.signer, self.root_not_before)
        else {
            return Ok(());
        };
        let origin = if config.signer.log_origin.is_empty() {
            format!("{}.stella-ops.local/log", self.appliance_id)
        } else {
            config.signer.log_origin.clone()
        };
        let attestor = Attestor::open(
            &data_dir.join("attestor"),
            self.source.as_ref(),
            signer,
            Arc::new(stella_signer::SystemClock),
            &AttestorConfig {
                origin,
                base_url: base_url.to_owned(),
                organization: self.appliance_id.clone(),
                ca_common_name: ROOT_COMMON_NAME.to_owned(),
                valid_from,
            },
        )
        .map_err(|e| SigningError::Attestor(e.to_string()))?;
        self.attestor = Some(attestor);
        Ok(())
    }

    /// Adds the ephemeral key of `stella serve --demo` to the keys whose licences the gate
    /// accepts, for this process only: the demo signs a licence for its own installation with
    /// it, so that its sample report is signed and logged. Only demo mode calls this; the key is
    /// generated in memory at start, never written to `[licence] vendor_keys`, and dies with the
    /// process, so a demo licence entitles nothing anywhere else.
    pub fn trust_demo_licence_keys(&mut self, demo_keys: &TrustedKeys) {
        let mut keys = self.vendor_keys.keys().to_vec();
        keys.extend(demo_keys.keys().iter().cloned());
        self.vendor_keys = TrustedKeys::new(keys);
        self.vendor_key_ids.extend(demo_keys.key_ids());
    }

    /// The attestor (log, TSA, trust documents), once opened.
    pub fn attestor(&self) -> Option<&Attestor> {
        self.attestor.as_ref()
    }

    /// The key source.
    pub fn key_source(&self) -> &dyn KeySource {
        self.source.as_ref()
    }

    /// The attestation signer, when the keys are there.
    pub fn attestation_signer(&self) -> Option<&AttestationSigner> {
        match &self.signer {
            Readiness::Ready(signer) => Some(signer),
            Readiness::NotReady(_) => None,
        }
    }

    /// The readiness probe: every key present and the attestation key signs.
    pub fn check_ready(&self) -> Result<KeyInventory, String> {
        if let Readiness::NotReady(reason) = &self.signer {
            return Err(reason.clone());
        }
        stella_hsm::check_ready(self.source.as_ref()).map_err(|e| e.to_string())
    }

    /// The licence this installation signs under, converted for the gate, and the revocations;
    /// the first licence the gate accepts wins, else the refusal of the most relevant one.
    fn gate(
        &self,
        feeds: &FeedStore,
        catalog: &Catalog,
        now: OffsetDateTime,
    ) -> Result<GateResult, String> {
        let installation = self
            .installation_key_id
            .clone()
            .ok_or_else(|| "the HSM has no installation identity key".to_owned())?;
        let (licences, revocations) = match feeds.current() {
            Some(generation) => (
                generation.licences().map_err(|e| e.to_string())?,
                generation.revocation_lists().map_err(|e| e.to_string())?,
            ),
            None => (Vec::new(), Vec::new()),
        };
        let mut revoked = RevocationList::default();
        if let Some((_, list)) = revocations
            .iter()
            .filter(|(_, list)| list.verify(&self.vendor_keys).is_ok())
            .max_by_key(|(_, list)| list.list.sequence)
        {
            for entry in &list.list.revoked {
                revoked
                    .revoked
                    .insert(entry.licence_id.clone(), entry.revoked_at.clone());
            }
        }
        let used = catalog
            .audit_count_since(SIGN_ACTION, month_start(now))
            .map_err(|e| e.to_string())?;
        let version = SemVer::parse(stella_core::VERSION).map_err(|e| e.to_string())?;
        let context = GateContext {
            now,
            installation_key_sha256: &installation,
            trusted_vendor_keys: &self.vendor_key_ids,
            revocations: &revoked,
            running_version: &version,
            running_release_year: stella_core::RELEASE_YEAR,
            signatures_used: used,
        };
        let mut candidates: Vec<Entitlement> = licences
            .iter()
            .map(|(_, licence)| self.entitlement(licence))
            .collect();
        // Licences bound to this installation first, then the newest expiry first.
        candidates.sort_by(|a, b| {
            let bound = |e: &Entitlement| {
                e.installation_key_sha256
                    .eq_ignore_ascii_case(&installation)
            };
            bound(b)
                .cmp(&bound(a))
                .then(b.expires.cmp(&a.expires))
                .then(a.licence_id.cmp(&b.licence_id))
        });
        let mut first_refusal = None;
        for candidate in &candidates {
            match check_entitlement(Some(candidate), &context) {
                Ok(entitled) => return Ok((Ok(entitled), Some(candidate.clone()), used)),
                Err(refusal) => {
                    if first_refusal.is_none() {
                        first_refusal = Some((refusal, candidate.clone()));
                    }
                }
            }
        }
        Ok(match first_refusal {
            Some((refusal, licence)) => (Err(refusal), Some(licence), used),
            None => (check_entitlement(None, &context), None, used),
        })
    }

    /// A stored licence as the gate sees it, with its vendor signature checked against
    /// `[licence] vendor_keys`.
    fn entitlement(&self, signed: &SignedLicence) -> Entitlement {
        let licence = &signed.licence;
        let (vendor_key_id, vendor_signature) = match signed.verify(&self.vendor_keys) {
            Ok(()) => (
                stella_importer::signing::signature_key_id(&signed.signature).unwrap_or_default(),
                VendorSignature::Verified,
            ),
            Err(stella_importer::KitError::UnknownKey { key_id, .. }) => (
                key_id,
                VendorSignature::Failed("signed by a key not in [licence] vendor_keys".to_owned()),
            ),
            Err(e) => (
                stella_importer::signing::signature_key_id(&signed.signature).unwrap_or_default(),
                VendorSignature::Failed(e.to_string()),
            ),
        };
        let expires = OffsetDateTime::parse(
            &licence.expires,
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        // A max_version that is not semver covers nothing (the gate refuses, naming it).
        let max_version = licence
            .max_version
            .as_deref()
            .map(|v| SemVer::parse(v).unwrap_or(SemVer::new(0, 0, 0)));
        Entitlement {
            licence_id: licence.licence_id.clone(),
            customer: licence.customer.clone(),
            plan: licence.plan.clone(),
            quotas: licence.quotas.clone(),
            valid_release_year: licence.valid_release_year,
            max_version,
            expires,
            installation_key_sha256: licence.installation_key_sha256.as_str().to_owned(),
            vendor_key_id,
            vendor_signature,
        }
    }

    /// Checks the gate, signs `statement`, logs it in the transparency log (when the attestor
    /// is open) and audits the signing with its log index.
    pub fn sign(
        &self,
        feeds: &FeedStore,
        catalog: &Catalog,
        statement: stella_signer::Statement,
        actor: &str,
        ctx: &AuditContext,
    ) -> Result<Signed, SignOutcome> {
        self.sign_with(feeds, catalog, actor, ctx, |_| Ok(statement))
    }

    /// [`SigningService::sign`] for a statement that names the licence which allowed it (the
    /// policy-report predicate): `build` gets the gate's [`Entitled`].
    pub fn sign_with(
        &self,
        feeds: &FeedStore,
        catalog: &Catalog,
        actor: &str,
        ctx: &AuditContext,
        build: impl FnOnce(&Entitled) -> Result<stella_signer::Statement, stella_signer::SignerError>,
    ) -> Result<Signed, SignOutcome> {
        let signer = match &self.signer {
            Readiness::Ready(signer) => signer,
            Readiness::NotReady(reason) => return Err(SignOutcome::Unavailable(reason.clone())),
        };
        if let Some(reason) = &self.release_refusal {
            return Err(SignOutcome::Release(reason.clone()));
        }
        let _guard = self
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = OffsetDateTime::now_utc();
        let (decision, _, _) = self
            .gate(feeds, catalog, now)
            .map_err(SignOutcome::Failed)?;
        let entitled = decision.map_err(SignOutcome::Refused)?;
        let statement = build(&entitled).map_err(|e| SignOutcome::BadRequest(e.to_string()))?;
        let attestation = signer
            .sign_statement(statement, &entitled)
            .map_err(|e| SignOutcome::Failed(e.to_string()))?;
        let bundle = match &self.attestor {
            Some(attestor) => Some(
                attestor
                    .attest(&attestation)
                    .map_err(|e| SignOutcome::Failed(format!("transparency log: {e}")))?,
            ),
            None => None,
        };
        let mut record = attestation.audit_record();
        record.log_index = bundle.as_ref().and_then(|b| b.entry.index().ok());
        let event = AuditEvent {
            at: u64::try_from(now.unix_timestamp()).unwrap_or_default(),
            actor: actor.to_owned(),
            action: SIGN_ACTION.to_owned(),
            target: record.image_digest.clone().unwrap_or_default(),
            detail: json!({ "signing": record, "source": ctx.source }).to_string(),
            request_id: ctx.request_id.clone(),
        };
        // A signing that cannot be audited is not handed out.
        catalog
            .audit(&event)
            .map_err(|e| SignOutcome::Failed(format!("cannot audit the signing: {e}")))?;
        Ok(Signed {
            attestation,
            bundle,
        })
    }

    /// What `GET /api/signer/status` and the console show.
    pub fn status(&self, feeds: &FeedStore, catalog: &Catalog) -> serde_json::Value {
        let now = OffsetDateTime::now_utc();
        let keys = stella_hsm::key_status(self.source.as_ref());
        let ready = self.check_ready();
        let gate = self.gate(feeds, catalog, now);
        let (entitlement, licence, used) = match &gate {
            Ok((Ok(entitled), licence, used)) => (
                json!({ "entitled": true, "licence_id": entitled.licence_id(),
                        "customer": entitled.customer(), "plan": entitled.plan() }),
                licence.clone(),
                Some(*used),
            ),
            Ok((Err(refusal), licence, used)) => (
                json!({ "entitled": false, "reason": refusal.code(), "message": refusal.to_string() }),
                licence.clone(),
                Some(*used),
            ),
            Err(problem) => (
                json!({ "entitled": false, "reason": "unavailable", "message": problem }),
                None,
                None,
            ),
        };
        json!({
            "configured": true,
            "mode": if matches!(&gate, Ok((Ok(_), _, _))) { "entitled" } else { "community" },
            "hsm": {
                "source": self.source.name(),
                "ready": ready.is_ok(),
                "problem": ready.err(),
                "keys": keys.ok(),
            },
            "signer": self.attestation_signer().map(AttestationSigner::status),
            "release_refusal": self.release_refusal,
            "entitlement": entitlement,
            "licence": licence.map(|l| json!({
                "licence_id": l.licence_id,
                "customer": l.customer,
                "plan": l.plan,
                "expires": stella_core::rfc3339(u64::try_from(l.expires.unix_timestamp()).unwrap_or_default()),
                "max_version": l.max_version.map(|v| v.to_string()),
                "valid_release_year": l.valid_release_year,
                "quotas": l.quotas,
            })),
            "quota": {
                "action": SIGN_ACTION,
                "used_this_month": used,
            },
        })
    }
}

/// Start of the calendar month (UTC) holding `now`, in Unix seconds: the quota period.
fn month_start(now: OffsetDateTime) -> u64 {
    let start = now
        .to_offset(time::UtcOffset::UTC)
        .replace_day(1)
        .map(|t| t.replace_time(time::Time::MIDNIGHT))
        .unwrap_or(now);
    u64::try_from(start.unix_timestamp()).unwrap_or_default()
}

/// Why a signing did not happen.
#[derive(Debug)]
pub enum SignOutcome {
    /// The entitlement gate refused (403).
    Refused(EntitlementRefusal),
    /// The release-integrity check failed at start (403).
    Release(String),
    /// The request is malformed (400).
    BadRequest(String),
    /// The signer is not set up (503).
    Unavailable(String),
    /// Something failed while signing (500).
    Failed(String),
}

impl IntoResponse for SignOutcome {
    fn into_response(self) -> Response {
        let (status, reason, message) = match self {
            SignOutcome::Refused(refusal) => (
                StatusCode::FORBIDDEN,
                refusal.code().to_owned(),
                refusal.to_string(),
            ),
            SignOutcome::Release(message) => (
                StatusCode::FORBIDDEN,
                "release-integrity".to_owned(),
                message,
            ),
            SignOutcome::BadRequest(message) => {
                (StatusCode::BAD_REQUEST, "bad-request".to_owned(), message)
            }
            SignOutcome::Unavailable(message) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "signer-unavailable".to_owned(),
                message,
            ),
            SignOutcome::Failed(message) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "signing-failed".to_owned(),
                message,
            ),
        };
        (status, Json(json!({ "error": message, "reason": reason }))).into_response()
    }
}

/// A signing: the attestation and, when the attestor is open, its logged Sigstore bundle.
#[derive(Debug)]
pub struct Signed {
    /// The signed DSSE envelope and certificate.
    pub attestation: SignedAttestation,
    /// The Sigstore bundle (log entry, inclusion proof, checkpoint, timestamp).
    pub bundle: Option<ExportedBundle>,
}

/// The JSON answer of a signing.
pub fn signed_json(signed: &Signed) -> serde_json::Value {
    let bundle: Option<serde_json::Value> = signed
        .bundle
        .as_ref()
        .and_then(|b| serde_json::from_slice(&b.json).ok());
    let log_index = signed.bundle.as_ref().and_then(|b| b.entry.index().ok());
    let signed = &signed.attestation;
    let envelope = serde_json::to_value(&signed.envelope).unwrap_or_default();
    json!({
        "bundle": bundle,
        "logIndex": log_index,
        "dsseEnvelope": envelope,
        "certificate": signed.certificate.pem,
        "rootCertificate": signed.root_pem,
        "keyId": signed.key_id,
        "licenceId": signed.licence_id,
        "devSigned": signed.dev_signed,
        "release": signed.release,
        "certificateSerial": signed.certificate.serial_hex,
    })
}

async fn sign_dsse(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let Some(service) = state.signing().cloned() else {
        return SignOutcome::Unavailable(
            "no [hsm] is configured: this appliance runs in community mode and signs nothing"
                .to_owned(),
        )
        .into_response();
    };
    let ctx = AuditContext::of(&request);
    let actor = Caller::subject_of(&request);
    let limits = RequestLimits::default();
    let body = match axum::body::to_bytes(request.into_body(), limits.max_request_bytes).await {
        Ok(body) => body,
        Err(e) => return SignOutcome::BadRequest(format!("request body: {e}")).into_response(),
    };
    let statement =
        match SignRequest::from_json(&body, limits).and_then(SignRequest::into_statement) {
            Ok(statement) => statement,
            Err(e) => return SignOutcome::BadRequest(e.to_string()).into_response(),
        };
    let result = tokio::task::spawn_blocking(move || {
        service
            .sign(
                state.feeds(),
                &state.stores().catalog,
                statement,
                &actor,
                &ctx,
            )
            .map(|signed| signed_json(&signed))
    })
    .await;
    match result {
        Ok(Ok(body)) => Json(body).into_response(),
        Ok(Err(outcome)) => outcome.into_response(),
        Err(e) => SignOutcome::Failed(e.to_string()).into_response(),
    }
}

async fn signer_status(State(state): State<AppState>) -> Response {
    let Some(service) = state.signing().cloned() else {
        return Json(json!({
            "configured": false,
            "mode": "community",
            "entitlement": {
                "entitled": false,
                "reason": "no-hsm",
                "message": "no [hsm] is configured: this appliance scans and reports but signs nothing",
            },
        }))
        .into_response();
    };
    let result =
        tokio::task::spawn_blocking(move || service.status(state.feeds(), &state.stores().catalog))
            .await;
    match result {
        Ok(body) => Json(body).into_response(),
        Err(e) => SignOutcome::Failed(e.to_string()).into_response(),
    }
}
