//! `stella verify` (a Sigstore bundle, fully offline), `stella log verify` (the transparency-log
//! monitor) and `stella attest export` (carry an image's signed SBOMs and report out, each
//! beside its bundle, with the trust documents a verifier needs).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use stella_attestor::{TrustMaterial, verify_bundle, verify_log};

/// Flags of `stella verify`.
#[derive(clap::Args, Debug)]
pub(crate) struct VerifyArgs {
    /// The bundle (`NAME.sigstore.json`).
    bundle: PathBuf,
    /// The artefact the bundle is about; it must be a subject of the signed statement.
    #[arg(long, value_name = "FILE")]
    artifact: Option<PathBuf>,
    /// The appliance's `trusted_root.json` (or `trust-config.json`).
    #[arg(long, value_name = "FILE")]
    trust_root: PathBuf,
    /// Print the verified claims as JSON.
    #[arg(long)]
    json: bool,
}

/// `stella log` subcommands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum LogCommand {
    /// Recompute the whole tree from the entry bundles and check every stored checkpoint.
    Verify(LogVerifyArgs),
}

/// Flags of `stella log verify`.
#[derive(clap::Args, Debug)]
pub(crate) struct LogVerifyArgs {
    /// The daemon's data directory (read only; the daemon may keep running).
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// The appliance's `trusted_root.json`: the log origin and checkpoint key come from it.
    #[arg(long, value_name = "FILE")]
    trust_root: PathBuf,
}

/// `stella attest` subcommands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum AttestCommand {
    /// Sign, log and download an image's SBOMs and report with their bundles and the trust
    /// documents, through the appliance (as the client `stella login` set up).
    Export(ExportArgs),
}

/// Flags of `stella attest export`.
#[derive(clap::Args, Debug)]
pub(crate) struct ExportArgs {
    /// The image digest (`sha256:…`, the image id `stella scan` prints).
    image: String,
    /// Directory to write into (created when missing).
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    out: PathBuf,
    /// Also evaluate, sign and export the policy report.
    #[arg(long)]
    report: bool,
    /// Where `stella login` keeps its state.
    #[arg(long, env = "STELLA_CLI_DIR", value_name = "DIR")]
    dir: Option<PathBuf>,
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn trust(path: &Path) -> anyhow::Result<TrustMaterial> {
    TrustMaterial::from_trusted_root(&read(path)?)
        .with_context(|| format!("{} is not a trusted root", path.display()))
}

pub(crate) fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let trust = trust(&args.trust_root)?;
    let bundle = read(&args.bundle)?;
    let artifact = args.artifact.as_deref().map(read).transpose()?;
    match verify_bundle(&bundle, artifact.as_deref(), &trust) {
        Ok(verified) => {
            let signed_at = stella_core::rfc3339(
                u64::try_from(verified.signed_at.unix_timestamp()).unwrap_or_default(),
            );
            if args.json {
                let out = serde_json::json!({
                    "verified": true,
                    "identity": verified.identity,
                    "oidcIssuer": verified.oidc_issuer,
                    "logIndex": verified.log_index,
                    "signedAt": signed_at,
                    "predicateType": verified.predicate_type,
                    "subjects": verified.subjects.iter()
                        .map(|(name, digest)| serde_json::json!({"name": name, "sha256": digest}))
                        .collect::<Vec<_>>(),
                    "claims": verified.claims,
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!("OK: {} verifies offline", args.bundle.display());
                println!(
                    "  signed by     {} (issuer {})",
                    verified.identity, verified.oidc_issuer
                );
                println!("  logged at     index {}", verified.log_index);
                println!("  timestamped   {signed_at}");
                println!("  predicate     {}", verified.predicate_type);
                for (name, digest) in &verified.subjects {
                    println!("  subject       {name} sha256:{digest}");
                }
                for (key, value) in &verified.claims {
                    println!("  {key:<13} {value}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            if args.json {
                let out = serde_json::json!({ "verified": false, "error": error.to_string() });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!("FAILED: {}: {error}", args.bundle.display());
            }
            Ok(ExitCode::from(1))
        }
    }
}

pub(crate) fn log(command: LogCommand) -> anyhow::Result<ExitCode> {
    let LogCommand::Verify(args) = command;
    let trust = trust(&args.trust_root)?;
    // An Ed25519 SPKI is a fixed 12-byte prefix and the 32-byte key.
    let key = trust
        .log_spki
        .get(trust.log_spki.len().saturating_sub(32)..)
        .filter(|_| trust.log_spki.len() == 44)
        .context("the trusted root's log key is not an Ed25519 key")?;
    let dir = args
        .data_dir
        .join("attestor")
        .join(stella_attestor::LOG_DIR);
    // The trusted root names the log by its id, a hash of origin and key: take the origin
    // from the latest checkpoint and check that it is the one the trusted root names.
    let checkpoint = dir.join(stella_attestor::CHECKPOINT_FILE);
    let text = std::fs::read_to_string(&checkpoint)
        .with_context(|| format!("cannot read {}", checkpoint.display()))?;
    let origin = text.lines().next().unwrap_or_default().to_owned();
    if stella_attestor::note_key_id(&origin, key) != trust.log_id {
        println!(
            "FAILED: log {}: origin {origin:?} with the trusted root's key is not the log the trusted root names",
            dir.display()
        );
        return Ok(ExitCode::from(1));
    }
    match verify_log(&dir, &origin, key) {
        Ok(report) => {
            println!(
                "OK: log {} holds {} entries; {} checkpoints and {} tiles checked; root {}",
                origin,
                report.size,
                report.checkpoints_checked,
                report.tiles_checked,
                hex_root(&report.root)
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            println!("FAILED: log {}: {error}", dir.display());
            Ok(ExitCode::from(1))
        }
    }
}

fn hex_root(root: &[u8]) -> String {
    root.iter().map(|b| format!("{b:02x}")).collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

pub(crate) fn attest(command: AttestCommand) -> anyhow::Result<ExitCode> {
    let AttestCommand::Export(args) = command;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut client = crate::login::ApiClient::load(args.dir)?;
    let mut call = |method: &str, path: &str, body: Option<serde_json::Value>| {
        let (status, text) = client.request(method, path, body.as_ref())?;
        if !(200..300).contains(&status) {
            bail!("{method} {path} answered {status}: {text}");
        }
        Ok::<_, anyhow::Error>(text)
    };
    let mut exports = Vec::new();
    for format in ["cdx-json", "spdx-json"] {
        let answer = call(
            "POST",
            "/api/exports",
            Some(serde_json::json!({ "imageDigest": args.image, "format": format })),
        )?;
        exports.push(serde_json::from_str::<serde_json::Value>(&answer)?);
    }
    if args.report {
        let answer = call(
            "POST",
            "/api/reports",
            Some(serde_json::json!({ "imageDigest": args.image })),
        )?;
        let answer: serde_json::Value = serde_json::from_str(&answer)?;
        let attestation = &answer["attestation"];
        if attestation["signed"] != true {
            bail!("the report was not signed: {attestation}");
        }
        exports.push(serde_json::json!({
            "name": "report.json",
            "logIndex": attestation["logIndex"],
            "bundleUrl": attestation["bundleUrl"],
            "artifactUrl": attestation["artifactUrl"],
        }));
    }
    for export in &exports {
        let name = export["name"].as_str().context("export without a name")?;
        let artifact = call(
            "GET",
            export["artifactUrl"].as_str().unwrap_or_default(),
            None,
        )?;
        let bundle = call(
            "GET",
            export["bundleUrl"].as_str().unwrap_or_default(),
            None,
        )?;
        write(&args.out, name, artifact.as_bytes())?;
        write(
            &args.out,
            &format!("{name}.sigstore.json"),
            bundle.as_bytes(),
        )?;
        println!(
            "{name} + {name}.sigstore.json (log index {})",
            export["logIndex"]
        );
    }
    for document in ["trusted_root.json", "trust-config.json"] {
        let text = call("GET", &format!("/api/trust/{document}"), None)?;
        write(&args.out, document, text.as_bytes())?;
    }
    println!(
        "verify offline: stella verify NAME.sigstore.json --artifact NAME --trust-root {}",
        args.out.join("trusted_root.json").display()
    );
    Ok(ExitCode::SUCCESS)
}
