//! `stella serve --demo`: a throwaway appliance that shows a newcomer the whole chain within a
//! minute. A sample kit of real advisories is built and signed with an ephemeral key generated at
//! start, imported with that key as the only trusted one (never the configured keys, never
//! written into the trust configuration), a sample image is scanned and judged, and the console
//! labels every page as demo data (`docs/demo.md`). With an `[hsm]` that holds the appliance
//! keys, the kit also carries a demo licence for that HSM's installation key, signed with the
//! same ephemeral key, which the signer of this process alone accepts: the sample report is then
//! signed and logged like a real one.
//!
//! The sample data are fixtures already in the repository, compiled into the binary: four Go
//! vulnerability database records (`tests/data/report/go`, three of which hit the Go standard
//! library 1.19.8 compiled into the image's `gosu`) and the scanner's image fixture
//! (`tests/data/scanner/fixture-docker.tar`, Debian 12). Their attribution files are written
//! beside them.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use stella_core::{Clock, Config};
use stella_feeds::{FeedStore, ImportError, ImportOptions, ImportOutcome};
use stella_hsm::KeyRole;
use stella_importer::licence::{
    EnrolmentRequest, LicenceIssuer, LicenceTerms, SignedLicence, issue_licence_as,
};
use stella_importer::signing::{KeyProtection, generate_key_pair};
use stella_importer::sources::SourceKind;
use stella_importer::{SigningKey, TrustedKeys};
use stella_kit_builder::{BuildOptions, SourceSpec};
use stella_store::Stores;
use stella_web::signing::SigningService;

/// The file that marks a data directory as holding demo data. A normal `stella serve` refuses
/// such a directory, so demo data never passes for evidence.
pub(crate) const MARKER: &str = "DEMO";

/// The channel of the sample kit; its kit id says `demo` too.
pub(crate) const CHANNEL: &str = "demo";

/// Who the demo's own imports, scans and reports are audited as.
const ACTOR: &str = "demo";

/// How long the sample kit, and the demo licence with it, stay valid.
const VALIDITY_DAYS: i64 = 30;

/// The demo licence's customer and plan: they are signed into every attestation it allows, so a
/// demo attestation says what it is wherever it is looked at.
const LICENCE_CUSTOMER: &str = "DEMO licence of `stella serve --demo` (no customer)";
const LICENCE_PLAN: &str =
    "demo: valid only in demo mode, trusted only by the run that generated its ephemeral key";

/// The sample advisories: (file name, bytes), copied unchanged from golang/vulndb.
const ADVISORIES: [(&str, &[u8]); 4] = [
    (
        "GO-2023-1702.json",
        include_bytes!("../../../tests/data/report/go/GO-2023-1702.json"),
    ),
    (
        "GO-2023-1751.json",
        include_bytes!("../../../tests/data/report/go/GO-2023-1751.json"),
    ),
    (
        "GO-2023-1752.json",
        include_bytes!("../../../tests/data/report/go/GO-2023-1752.json"),
    ),
    (
        "GO-2023-1840.json",
        include_bytes!("../../../tests/data/report/go/GO-2023-1840.json"),
    ),
];
const ADVISORIES_ATTRIBUTION: &str = include_str!("../../../tests/data/report/ATTRIBUTION.md");

/// The sample image, a `docker save` archive of the scanner's fixture.
const IMAGE: &[u8] = include_bytes!("../../../tests/data/scanner/fixture-docker.tar");
const IMAGE_ATTRIBUTION: &str = include_str!("../../../tests/data/scanner/ATTRIBUTION.md");

/// Whether `stella serve` runs on demo data. An enum, not a boolean: the demo relaxes trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Only the configured kit keys are trusted; a demo data directory is refused.
    Normal,
    /// Sample data signed with an ephemeral key; every page says so.
    Demo,
}

/// The demo's data directory; a temporary one is removed when this is dropped.
#[derive(Debug)]
pub(crate) struct DemoDir {
    pub(crate) path: PathBuf,
    temporary: Option<tempfile::TempDir>,
}

impl DemoDir {
    /// Whether the directory goes away when the daemon stops.
    pub(crate) fn is_temporary(&self) -> bool {
        self.temporary.is_some()
    }
}

/// The data directory for `--demo`: `requested` when given (empty, new, or an earlier demo's),
/// else a fresh temporary directory. It is marked with [`MARKER`].
pub(crate) fn data_dir(requested: Option<PathBuf>) -> anyhow::Result<DemoDir> {
    let (path, temporary) = match requested {
        Some(path) => {
            let holds_data = std::fs::read_dir(&path)
                .map(|mut entries| entries.next().is_some())
                .unwrap_or(false);
            if holds_data && !path.join(MARKER).exists() {
                bail!(
                    "--demo refuses data dir {}: it holds a real appliance's data; give an empty \
                     or new directory, or leave --data-dir out for a temporary one",
                    path.display()
                );
            }
            std::fs::create_dir_all(&path)
                .with_context(|| format!("cannot create data dir {}", path.display()))?;
            (path, None)
        }
        None => {
            let dir = tempfile::Builder::new()
                .prefix("stella-demo-")
                .tempdir()
                .context("cannot create a temporary data dir for the demo")?;
            (dir.path().to_path_buf(), Some(dir))
        }
    };
    std::fs::write(
        path.join(MARKER),
        "This data directory holds demo data of `stella serve --demo`: a sample kit signed with an\n\
         ephemeral key that only the demo trusted. `stella serve` without --demo refuses it.\n",
    )
    .with_context(|| format!("cannot mark {} as a demo data dir", path.display()))?;
    Ok(DemoDir { path, temporary })
}

/// Refuses a demo data directory outside demo mode.
pub(crate) fn refuse_demo_data(data_dir: &Path) -> anyhow::Result<()> {
    if data_dir.join(MARKER).exists() {
        bail!(
            "data dir {} holds demo data (a kit signed with an ephemeral demo key, trusted only \
             in demo mode): run `stella serve --demo` on it, or give another --data-dir",
            data_dir.display()
        );
    }
    Ok(())
}

/// The ephemeral key the sample kit is signed with: generated at start, held in memory only.
pub(crate) struct DemoKey {
    key: SigningKey,
    trusted: TrustedKeys,
}

impl DemoKey {
    pub(crate) fn generate() -> anyhow::Result<Self> {
        let pair = generate_key_pair(
            KeyProtection::Unencrypted,
            "stella DEMO key: ephemeral, trusted only by this `stella serve --demo` run",
        )?;
        Ok(Self {
            key: SigningKey::from_minisign_file_contents(&pair.secret_key_file, None)?,
            trusted: TrustedKeys::from_texts([pair.public_key_file.as_str()])?,
        })
    }

    pub(crate) fn key_id(&self) -> String {
        self.key.key_id()
    }
}

/// What this demo run imported.
#[derive(Debug)]
pub(crate) struct SampleKit {
    pub(crate) kit_id: String,
    /// The demo licence the kit carries, when the `[hsm]` holds an installation key to bind it to.
    pub(crate) licence_id: Option<String>,
}

/// Builds the sample kit, signs it with the demo key, keeps a copy in `DATA_DIR/demo/` and
/// imports it trusting the demo key alone. With a signer whose HSM holds the installation key,
/// the kit carries a demo licence for that key ([`demo_licence`]) and the signer accepts the
/// demo key's licences from then on (in this process only). Skipped (`None`) when an earlier
/// demo run already loaded advisories into this data directory.
pub(crate) fn import_sample_kit(
    config: &Config,
    stores: &Stores,
    feeds: &FeedStore,
    clock: &dyn Clock,
    key: &DemoKey,
    signing: Option<&mut SigningService>,
) -> anyhow::Result<Option<SampleKit>> {
    if feeds.current().is_some() {
        tracing::warn!("DEMO: advisories already loaded in this data dir; sample kit not rebuilt");
        return Ok(None);
    }
    let dir = stores.dir().join("demo");
    let sources = dir.join("golang-vulndb");
    std::fs::create_dir_all(&sources)
        .with_context(|| format!("cannot create {}", sources.display()))?;
    for (name, bytes) in ADVISORIES {
        std::fs::write(sources.join(name), bytes)?;
    }
    std::fs::write(
        dir.join("ADVISORIES-ATTRIBUTION.md"),
        ADVISORIES_ATTRIBUTION,
    )?;

    let created = time::OffsetDateTime::from_unix_timestamp(i64::try_from(clock.now_unix())?)?;
    let expires = created + time::Duration::days(VALIDITY_DAYS);
    let mut kit_sources = vec![SourceSpec {
        kind: SourceKind::Osv,
        location: sources.display().to_string(),
    }];
    let licence = match &signing {
        Some(service) => demo_licence(config, service, key, created, expires)?,
        None => None,
    };
    if let Some(licence) = &licence {
        let path = dir.join("demo-licence.json");
        std::fs::write(&path, serde_json::to_vec_pretty(licence)?)?;
        kit_sources.push(SourceSpec {
            kind: SourceKind::Licence,
            location: path.display().to_string(),
        });
    }
    let options = BuildOptions {
        sources: kit_sources,
        channel: CHANNEL.to_owned(),
        sequence: 1,
        created,
        expires,
        bases: Vec::new(),
        base_keys: Vec::new(),
    };
    let built = stella_kit_builder::build(&options, &key.key, None)?;
    let kit_path = dir.join("demo-kit-1.tar.zst");
    std::fs::write(&kit_path, &built.kit.archive)?;
    std::fs::write(
        dir.join("demo-kit-1.tar.zst.minisig"),
        &built.kit.archive_signature,
    )?;

    let mut import = ImportOptions::from_config(
        &config.kits,
        stores.dir(),
        ACTOR,
        &kit_path.display().to_string(),
    )?;
    // The demo key alone: the configured keys have no business signing demo data, and the demo
    // key goes nowhere but this in-memory list.
    import.trusted_keys = key.trusted.clone();
    match feeds.import(&stores.catalog, &built.kit.archive, &import, clock) {
        Ok(ImportOutcome::Loaded(report) | ImportOutcome::AlreadyImported(report)) => {
            let licence_id = licence.map(|licence| licence.licence.licence_id);
            tracing::warn!(
                kit = %report.kit_id,
                channel = %report.channel,
                key = %report.key_id,
                licence = licence_id.as_deref().unwrap_or("none"),
                "DEMO: sample kit signed with the ephemeral demo key loaded"
            );
            if let (Some(service), Some(_)) = (signing, &licence_id) {
                service.trust_demo_licence_keys(&key.trusted);
            }
            Ok(Some(SampleKit {
                kit_id: report.kit_id,
                licence_id,
            }))
        }
        Ok(ImportOutcome::Verified(_)) => bail!("the sample kit was only verified, not loaded"),
        Err(ImportError::Rejected(rejection)) => {
            bail!("the sample kit was refused: {rejection}")
        }
        Err(ImportError::Feed(e)) => Err(e.into()),
    }
}

/// The demo licence: an enrolment request signed in the HSM by its installation key, turned
/// into a licence by the real licence model ([`issue_licence_as`]) with the demo key as issuer,
/// valid as long as the sample kit. `None` (with a warning) when the HSM has no installation
/// key yet: the report line then says the signer lacks its keys.
fn demo_licence(
    config: &Config,
    signing: &SigningService,
    key: &DemoKey,
    issued: time::OffsetDateTime,
    expires: time::OffsetDateTime,
) -> anyhow::Result<Option<SignedLicence>> {
    let source = signing.key_source();
    let label = KeyRole::InstallationIdentity.label()?;
    if source.find_key(&label)?.is_none() {
        tracing::warn!(
            "DEMO: the HSM has no installation identity key (run `stella hsm init`): no demo licence"
        );
        return Ok(None);
    }
    let appliance_id = crate::hsm::appliance_id(config, source)?;
    let identity = source.signer(&label)?;
    let request = stella_signer::enrolment_request(
        identity.as_ref(),
        &appliance_id,
        issued,
        Some(stella_core::VERSION),
    )?;
    let terms = LicenceTerms {
        customer: LICENCE_CUSTOMER.to_owned(),
        plan: LICENCE_PLAN.to_owned(),
        quotas: Default::default(),
        valid_release_year: None,
        max_version: None,
        issued,
        expires,
    };
    let licence = issue_licence_as(
        LicenceIssuer::Demo,
        &EnrolmentRequest::parse(&request)?,
        &terms,
        &key.key,
    )?;
    Ok(Some(licence))
}

/// What the demo scanned and judged.
#[derive(Debug)]
pub(crate) struct Seeded {
    pub(crate) image_digest: String,
    pub(crate) verdict: String,
    pub(crate) findings: u64,
    /// Why the report carries no attestation, when it does not.
    pub(crate) unsigned_reason: Option<String>,
    /// The licence that allowed the signing and the log index, when the report is signed.
    pub(crate) signed: Option<(String, u64)>,
}

/// Scans the sample image and judges it, through the daemon's own scan and report code.
pub(crate) fn scan_and_report(state: &stella_web::AppState) -> anyhow::Result<Seeded> {
    let dir = state.stores().dir().join("demo");
    std::fs::create_dir_all(&dir)?;
    let image = dir.join("sample-image.tar");
    std::fs::write(&image, IMAGE)?;
    std::fs::write(dir.join("IMAGE-ATTRIBUTION.md"), IMAGE_ATTRIBUTION)?;
    let (_, image_digest) = stella_web::seed::scan(state, &image.display().to_string(), ACTOR)
        .map_err(anyhow::Error::msg)?;
    let report =
        stella_web::seed::report(state, &image_digest, ACTOR).map_err(anyhow::Error::msg)?;
    let attestation = &report["attestation"];
    let signed = match (
        &attestation["signed"],
        attestation["licenceId"].as_str(),
        attestation["logIndex"].as_u64(),
    ) {
        (serde_json::Value::Bool(true), Some(licence), Some(index)) => {
            Some((licence.to_owned(), index))
        }
        _ => None,
    };
    let unsigned_reason = signed.is_none().then(|| {
        let message = attestation["message"].as_str().unwrap_or("not signed");
        // The signer refused: say why, as `/api/signer/status` would.
        let refusal = state.signing().and_then(|service| {
            let status = service.status(state.feeds(), &state.stores().catalog);
            status["entitlement"]["message"].as_str().map(str::to_owned)
        });
        match refusal {
            Some(refusal) if attestation["status"].is_u64() => format!("{message}: {refusal}"),
            _ => message.to_owned(),
        }
    });
    Ok(Seeded {
        image_digest,
        verdict: report["verdict"].as_str().unwrap_or("?").to_owned(),
        findings: report["counts"]["findings"].as_u64().unwrap_or(0),
        unsigned_reason,
        signed,
    })
}
