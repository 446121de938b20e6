//! `stella serve --demo`: a throwaway appliance that shows a newcomer the whole chain within a
//! minute. A sample kit of real advisories is built and signed with an ephemeral key generated at
//! start, imported with that key as the only trusted one (never the configured keys, never
//! written into the trust configuration), a sample image is scanned and judged, and the console
//! labels every page as demo data (`docs/demo.md`).
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
use stella_importer::signing::{KeyProtection, generate_key_pair};
use stella_importer::sources::SourceKind;
use stella_importer::{SigningKey, TrustedKeys};
use stella_kit_builder::{BuildOptions, SourceSpec};
use stella_store::Stores;

/// The file that marks a data directory as holding demo data. A normal `stella serve` refuses
/// such a directory, so demo data never passes for evidence.
pub(crate) const MARKER: &str = "DEMO";

/// The channel of the sample kit; its kit id says `demo` too.
pub(crate) const CHANNEL: &str = "demo";

/// Who the demo's own imports, scans and reports are audited as.
const ACTOR: &str = "demo";

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

/// Builds the sample kit, signs it with the demo key, keeps a copy in `DATA_DIR/demo/` and
/// imports it trusting the demo key alone; answers its kit id. Skipped (`None`) when an earlier
/// demo run already loaded advisories into this data directory.
pub(crate) fn import_sample_kit(
    config: &Config,
    stores: &Stores,
    feeds: &FeedStore,
    clock: &dyn Clock,
    key: &DemoKey,
) -> anyhow::Result<Option<String>> {
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
    let options = BuildOptions {
        sources: vec![SourceSpec {
            kind: SourceKind::Osv,
            location: sources.display().to_string(),
        }],
        channel: CHANNEL.to_owned(),
        sequence: 1,
        created,
        expires: created + time::Duration::days(30),
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
            tracing::warn!(
                kit = %report.kit_id,
                channel = %report.channel,
                key = %report.key_id,
                "DEMO: sample kit signed with the ephemeral demo key loaded"
            );
            Ok(Some(report.kit_id))
        }
        Ok(ImportOutcome::Verified(_)) => bail!("the sample kit was only verified, not loaded"),
        Err(ImportError::Rejected(rejection)) => {
            bail!("the sample kit was refused: {rejection}")
        }
        Err(ImportError::Feed(e)) => Err(e.into()),
    }
}

/// What the demo scanned and judged.
#[derive(Debug)]
pub(crate) struct Seeded {
    pub(crate) image_digest: String,
    pub(crate) verdict: String,
    pub(crate) findings: u64,
    /// Why the report carries no attestation, when it does not.
    pub(crate) unsigned_reason: Option<String>,
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
    Ok(Seeded {
        image_digest,
        verdict: report["verdict"].as_str().unwrap_or("?").to_owned(),
        findings: report["counts"]["findings"].as_u64().unwrap_or(0),
        unsigned_reason: (attestation["signed"] != true).then(|| {
            attestation["message"]
                .as_str()
                .unwrap_or("not signed")
                .to_owned()
        }),
    })
}
