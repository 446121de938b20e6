//! `stella report IMAGE [--policy FILE] [--json]`: scan an image (or take the stored SBOM of an
//! image digest), judge it against the data directory's current feed generation and a policy,
//! and print the verdict. Exit 0 on PASS, 1 on FAIL, 2 on error (`docs/report.md`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, anyhow};
use stella_core::{Clock, Digest, FixedClock, SystemClock};
use stella_decide::{Policy, Report, SbomLimits, Snapshot, Subject};
use stella_feeds::FeedStore;
use stella_scanner::{Platform, RegistryAccess, ScanOptions};
use stella_store::rusqlite::OptionalExtension;
use stella_store::{StoreError, Stores};
use stella_web::StoreCache;

/// Exit status on an error (PASS and FAIL are 0 and 1).
const EXIT_ERROR: u8 = 2;

#[derive(clap::Args, Debug)]
pub(crate) struct ReportArgs {
    /// OCI layout directory, OCI archive, `docker save` archive, `registry/repo:tag|@digest`, or
    /// the image digest (`sha256:…`) of an image already scanned into the data directory.
    image: String,
    /// Policy file (YAML, `docs/policy.md`); without it the documented default policy applies.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Print the report as JSON (the canonical form of `docs/report.md`).
    #[arg(long)]
    json: bool,
    /// IMAGE is a CycloneDX JSON SBOM file (as `stella scan` writes it) rather than an image.
    #[arg(long)]
    sbom: bool,
    /// Evaluation time (RFC 3339) instead of now: waivers are judged against it, and the same
    /// time gives a byte-identical report.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// Platform of a multi-platform image.
    #[arg(long, default_value = "linux/amd64")]
    platform: String,
    /// A registry (`host[:port]`) that may be spoken to over plain HTTP; repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    insecure_registries: Vec<String>,
    /// A VEX document (OpenVEX, CSAF 2.0 VEX or CycloneDX VEX) whose statements join the
    /// kits' for this report; repeatable.
    #[arg(long = "vex", value_name = "FILE")]
    vex: Vec<PathBuf>,
    /// Configuration file (TOML).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory holding the feed store (and the layer cache).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

pub(crate) fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    match report(&args) {
        Ok(report) => {
            if let Err(e) = print(&report, args.json) {
                eprintln!("stella: error: cannot write the report: {e:#}");
                return Ok(ExitCode::from(EXIT_ERROR));
            }
            Ok(ExitCode::from(u8::from(report.exit_code() != 0)))
        }
        Err(e) => {
            eprintln!("stella: error: {e:#}");
            Ok(ExitCode::from(EXIT_ERROR))
        }
    }
}

fn evaluation_clock(at: Option<&str>) -> anyhow::Result<Box<dyn Clock>> {
    let Some(text) = at else {
        return Ok(Box::new(SystemClock));
    };
    let time = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("--at {text:?} is not an RFC 3339 time"))?;
    let unix = u64::try_from(time.unix_timestamp())
        .map_err(|_| anyhow!("--at {text:?} is before 1970"))?;
    Ok(Box::new(FixedClock(unix)))
}

fn report(args: &ReportArgs) -> anyhow::Result<Report> {
    let config = crate::serve::load_config(args.config.as_deref(), args.data_dir.clone())?;
    // The policy first: a bad policy is reported before any image is read.
    let policy = match &args.policy {
        Some(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read policy {}", path.display()))?;
            Policy::parse(&path.display().to_string(), &bytes)?
        }
        None => Policy::default_policy()?,
    };
    let clock = evaluation_clock(args.at.as_deref())?;
    let data_dir = &config.storage.data_dir;
    let stores = match Stores::open(data_dir) {
        Ok(stores) => stores,
        Err(StoreError::Locked { pid, .. }) => {
            return Err(anyhow!(
                "the daemon (pid {}) holds the data dir {} and its feed store; ask it instead: \
                 scan with `POST /api/scans`, then `POST /api/reports {{\"imageDigest\": …}}` \
                 (e.g. `stella api POST /api/reports`), or stop the daemon",
                pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string()),
                data_dir.display()
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let feeds = FeedStore::open(stores.dir(), &stores.catalog)?;
    let (Some(generation), Some((kit_id, sequence))) =
        (feeds.current(), feeds.snapshot(&stores.catalog)?)
    else {
        return Err(anyhow!(
            "no advisories in {}: import an offline kit first (`stella import KIT`)",
            data_dir.display()
        ));
    };
    let (sbom, image, usage) = sbom_of(args, &stores)?;
    let mut input = stella_decide::components_from_cyclonedx(&sbom, &SbomLimits::default())
        .with_context(|| format!("SBOM of {image}"))?;
    // What the entrypoint runs (usedByEntrypoint), for usage-gated rules: the BOM-Index's
    // bitmap, else the usage-view SBOM.
    match usage {
        Some(Usage::Index(index)) => {
            input.mark_used_where(|purl| index.used_by_entrypoint(purl));
        }
        Some(Usage::View(view)) => {
            input
                .mark_used_from_cyclonedx(&view, &SbomLimits::default())
                .with_context(|| format!("usage view of {image}"))?;
        }
        None => {}
    }
    let subject = Subject {
        image: Some(image),
        image_digest: input.image_digest.clone(),
        sbom_digest: input.sbom_digest.clone(),
        ..Subject::default()
    };
    let snapshot = Snapshot { kit_id, sequence };
    let mut vex = Vec::new();
    for path in &args.vex {
        vex.extend(read_vex(path)?);
    }
    Ok(stella_decide::evaluate(
        &subject,
        &input.components,
        generation.as_ref(),
        &vex,
        &policy,
        clock.as_ref(),
        &snapshot,
    )?)
}

/// The CycloneDX JSON SBOM of the image, the name it goes by in the report, and its usage view
/// when there is one: the stored SBOMs when IMAGE is the digest of a scanned image, else a fresh
/// scan (through the layer cache).
fn sbom_of(args: &ReportArgs, stores: &Stores) -> anyhow::Result<(Vec<u8>, String, Option<Usage>)> {
    if args.sbom {
        let bytes = std::fs::read(&args.image)
            .with_context(|| format!("cannot read SBOM {}", args.image))?;
        return Ok((bytes, args.image.clone(), None));
    }
    if let Ok(digest) = args.image.parse::<Digest>() {
        let row: Option<(String, Option<String>)> = stores
            .catalog
            .connection()
            .query_row(
                "SELECT a.digest, i.reference FROM artifacts a JOIN images i ON i.digest = a.image_digest
                 WHERE a.image_digest = ?1 AND a.kind = 'sbom' AND a.format = 'cdx-json'",
                [digest.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((blob, reference)) = row else {
            return Err(anyhow!(
                "no stored SBOM for image {digest}: scan it first, or give the image itself"
            ));
        };
        let blob: Digest = blob
            .parse()
            .map_err(|_| anyhow!("the catalog holds a malformed SBOM digest {blob:?}"))?;
        let bytes = stores
            .blobs
            .get(&blob)?
            .ok_or_else(|| anyhow!("SBOM blob {blob} of image {digest} is missing"))?;
        let image = digest.to_string();
        let usage = match stores.artifact(&image, "bom-index", stella_scanner::bomindex::FORMAT)? {
            Some(index) => Some(Usage::Index(Box::new(stella_scanner::bomindex::read(
                &index,
            )?))),
            None => stores
                .artifact(&image, "usage-sbom", "cdx-json")?
                .map(Usage::View),
        };
        return Ok((
            bytes,
            reference.unwrap_or_else(|| digest.to_string()),
            usage,
        ));
    }
    let source = stella_scanner::open_image(
        &args.image,
        &RegistryAccess {
            insecure_registries: args.insecure_registries.clone(),
            credentials: None,
        },
    )?;
    let options = ScanOptions {
        platform: Platform::parse(&args.platform)?,
        source_date_epoch: std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|v| v.trim().parse().ok()),
        parallel_layers: std::thread::available_parallelism().map_or(1, |n| n.get()),
        ..ScanOptions::default()
    };
    let result = stella_scanner::scan(
        source.as_ref(),
        &options,
        &StoreCache(&stores.blobs),
        &stella_scanner::NoProgress,
    )?;
    let usage = stella_scanner::usage::analyse(&result);
    let index = stella_scanner::bomindex::BomIndex::build(&result, Some(&usage));
    Ok((
        result.to_cyclonedx_json()?,
        args.image.clone(),
        Some(Usage::Index(Box::new(index))),
    ))
}

/// Where the usage facts of an image come from.
enum Usage {
    /// Its BOM-Index (docs/bom-index.md).
    Index(Box<stella_scanner::bomindex::BomIndex>),
    /// Its usage-view CycloneDX SBOM.
    View(Vec<u8>),
}

fn print(report: &Report, as_json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if as_json {
        writeln!(out, "{}", report.to_canonical_json()?)?;
        return Ok(());
    }
    let verdict = match report.verdict {
        stella_decide::Verdict::Pass => "PASS",
        stella_decide::Verdict::Fail => "FAIL",
    };
    writeln!(
        out,
        "{verdict}: {} ({} components, {} findings)",
        report.subject.image.as_deref().unwrap_or("image"),
        report.counts.components,
        report.counts.findings
    )?;
    writeln!(
        out,
        "  policy {} {}; advisories {} sequence {}; evaluated {}",
        report.policy.name,
        report.policy.digest,
        report.advisories.kit_id,
        report.advisories.sequence,
        report.evaluated_at
    )?;
    let levels = ["critical", "high", "medium", "low", "none", "unknown"];
    let by_severity: Vec<String> = levels
        .iter()
        .map(|l| format!("{l} {}", report.counts.by_severity.get(*l).unwrap_or(&0)))
        .collect();
    writeln!(out, "  by severity: {}", by_severity.join(", "))?;
    let by_decision: Vec<String> = ["fail", "warn", "defer", "ignore", "pass"]
        .iter()
        .map(|d| format!("{d} {}", report.counts.by_decision.get(*d).unwrap_or(&0)))
        .collect();
    writeln!(out, "  by decision: {}", by_decision.join(", "))?;
    if !report.findings.is_empty() {
        let rows: Vec<[String; 7]> = report
            .findings
            .iter()
            .map(|f| {
                [
                    f.decision.verdict.as_str().to_uppercase(),
                    f.severity.level.as_str().to_owned(),
                    f.advisory.id.clone(),
                    f.component.purl.clone(),
                    f.fixed_version.clone().unwrap_or_else(|| "-".into()),
                    if f.used_by_entrypoint { "yes" } else { "no" }.to_owned(),
                    format!(
                        "{} (vex {})",
                        f.decision.rule,
                        f.vex.status.map_or("none", stella_decide::vex::status_name)
                    ),
                ]
            })
            .collect();
        let header = [
            "DECISION",
            "SEVERITY",
            "ADVISORY",
            "COMPONENT",
            "FIXED",
            "USED",
            "RULE",
        ];
        let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        writeln!(out)?;
        let line = |cells: Vec<&str>| -> String {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            padded.join("  ").trim_end().to_owned()
        };
        writeln!(out, "{}", line(header.to_vec()))?;
        for row in &rows {
            writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
        }
    }
    for violation in &report.licences {
        writeln!(
            out,
            "licence {}: {} ({})",
            violation.verdict.as_str().to_uppercase(),
            violation.purl,
            violation.reason
        )?;
    }
    if !report.unknowns.is_empty() {
        writeln!(
            out,
            "  {} unknowns (undecided; see --json)",
            report.unknowns.len()
        )?;
    }
    Ok(())
}

/// The statements of an uploaded VEX document, read by the importer's own parsers (the ones kits
/// go through): OpenVEX, CSAF 2.0 VEX or CycloneDX VEX, whichever reads it without errors.
fn read_vex(path: &std::path::Path) -> anyhow::Result<Vec<stella_importer::vex::VexClaim>> {
    use stella_importer::sources::SourceKind;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let origin = format!("upload:{}", path.display());
    let mut problems = Vec::new();
    for kind in [
        SourceKind::Openvex,
        SourceKind::Csaf,
        SourceKind::CyclonedxVex,
    ] {
        let parsed = kind.parse(&origin, &bytes);
        match parsed.errors.first() {
            None if !parsed.vex_claims.is_empty() => return Ok(parsed.vex_claims),
            None => problems.push(format!("{kind}: no statements")),
            Some(error) => problems.push(format!("{kind}: {}", error.reason)),
        }
    }
    Err(anyhow!(
        "{} is not a VEX document with statements ({})",
        path.display(),
        problems.join("; ")
    ))
}
