//! stella-kit: the connected-side kit-builder (build, inspect, keygen, licence issue/revoke).

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use stella_importer::licence::{
    EnrolmentRequest, LicenceTerms, Revocation, RevocationList, SignedRevocationList,
    issue_licence, sign_revocations,
};
use stella_importer::manifest::{format_time, parse_time};
use stella_importer::{KeyProtection, Limits, SigningKey, SystemClock, TrustedKeys};
use stella_kit_builder::duration::parse_expiry;
use stella_kit_builder::{BuildOptions, SourceSpec};

/// Appends a line to a `String` (writing to a `String` cannot fail).
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($out, $($arg)*);
    }};
}

/// `println!` that does not panic when stdout is a closed pipe.
macro_rules! say {
    ($($arg:tt)*) => {{
        emit(&format!("{}\n", format_args!($($arg)*)));
    }};
}

/// Writes to stdout; a closed pipe (`| head`) ends output quietly instead of panicking.
fn emit(text: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}

#[derive(Parser)]
#[command(
    name = "stella-kit",
    version,
    about = "Builds signed offline kits for the Stella Ops appliance"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build a signed kit from sources.
    Build(BuildArgs),
    /// Print a kit's manifest and verify it against public keys.
    Inspect {
        kit: PathBuf,
        /// minisign public key file(s) to verify with (`kit.pub`); repeatable.
        #[arg(long = "key")]
        keys: Vec<PathBuf>,
        /// Print the manifest as JSON instead of a summary.
        #[arg(long)]
        json: bool,
    },
    /// Generate a minisign key pair: DIR/kit.key and DIR/kit.pub.
    Keygen {
        #[arg(short = 'o', long = "out")]
        dir: PathBuf,
        /// Store the secret key without a password (automation and tests).
        #[arg(long)]
        unencrypted: bool,
        /// Read the password from this file instead of asking (or set STELLA_KIT_PASSWORD).
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Licences for appliances (vendor side).
    #[command(subcommand)]
    Licence(LicenceCommand),
    /// Write a kit-key rotation record, signed by a key the appliances trust now; carry it in a
    /// kit with `--source key-update=FILE`.
    KeyUpdate {
        /// New public key file(s) to trust; repeatable.
        #[arg(long = "add")]
        add: Vec<PathBuf>,
        /// Key id(s) to stop trusting; repeatable.
        #[arg(long = "remove-key-id")]
        remove: Vec<String>,
        #[arg(long)]
        sequence: u64,
        /// Issue time (RFC 3339). Default: SOURCE_DATE_EPOCH if set, else now.
        #[arg(long)]
        issued: Option<String>,
        /// A currently trusted kit secret key.
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        password_file: Option<PathBuf>,
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
    },
}

#[derive(clap::Args)]
struct BuildArgs {
    /// KIND=PATH|URL; repeatable. Kinds: osv, nodejs-security-wg, nvd, debian-dsa, debian-dla,
    /// debian-json, alpine-secdb, kev, epss, openvex, csaf, cyclonedx-vex, licence, revocations,
    /// key-update.
    #[arg(long = "source", required = true)]
    sources: Vec<String>,
    #[arg(long, default_value = "stable")]
    channel: String,
    #[arg(long)]
    sequence: u64,
    /// Duration after `created` (30d, 12h, 2w) or an RFC 3339 time.
    #[arg(long, default_value = "30d")]
    expires: String,
    /// minisign secret key (kit.key).
    #[arg(long)]
    key: PathBuf,
    #[arg(long)]
    password_file: Option<PathBuf>,
    #[arg(short = 'o', long = "out")]
    out: PathBuf,
    /// Previous kit(s), oldest first (a full kit, then deltas): emit a delta against the last.
    #[arg(long = "base")]
    bases: Vec<PathBuf>,
    /// Public key(s) the base kits may be signed with besides --key (after a key rotation).
    #[arg(long = "base-key")]
    base_keys: Vec<PathBuf>,
    /// Creation time (RFC 3339). Default: SOURCE_DATE_EPOCH if set, else now.
    #[arg(long)]
    created: Option<String>,
    /// Also write every dropped record with its reason to this JSON file.
    #[arg(long)]
    dropped_report: Option<PathBuf>,
}

#[derive(Subcommand)]
enum LicenceCommand {
    /// Issue a licence for an appliance's enrolment request.
    Issue {
        #[arg(long)]
        request: PathBuf,
        #[arg(long)]
        plan: String,
        #[arg(long)]
        customer: String,
        /// RFC 3339 time or a duration after issue (365d).
        #[arg(long)]
        expires: String,
        /// Vendor minisign secret key.
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// NAME=N; repeatable (e.g. signatures_per_month=1000).
        #[arg(long = "quota")]
        quotas: Vec<String>,
        #[arg(long)]
        valid_release_year: Option<u16>,
        #[arg(long)]
        max_version: Option<String>,
        /// Issue time (RFC 3339). Default: SOURCE_DATE_EPOCH if set, else now.
        #[arg(long)]
        issued: Option<String>,
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
    },
    /// Add licences to a (new or existing) signed revocation list.
    Revoke {
        /// Licence id(s) to revoke; repeatable.
        #[arg(long = "licence-id", required = true)]
        licence_ids: Vec<String>,
        /// Existing revocation list to extend (its signature is checked with --verify-key).
        #[arg(long)]
        list: Option<PathBuf>,
        #[arg(long)]
        verify_key: Option<PathBuf>,
        #[arg(long)]
        reason: Option<String>,
        /// Revocation time (RFC 3339). Default: SOURCE_DATE_EPOCH if set, else now.
        #[arg(long)]
        revoked_at: Option<String>,
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        password_file: Option<PathBuf>,
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
    },
}

fn default_time(explicit: Option<&str>) -> Result<time::OffsetDateTime> {
    if let Some(text) = explicit {
        return parse_time(text).map_err(anyhow::Error::msg);
    }
    if let Ok(epoch) = std::env::var("SOURCE_DATE_EPOCH") {
        let seconds: i64 = epoch
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH={epoch:?} is not a number"))?;
        return time::OffsetDateTime::from_unix_timestamp(seconds)
            .context("SOURCE_DATE_EPOCH out of range");
    }
    let now = time::OffsetDateTime::now_utc();
    Ok(now.replace_nanosecond(0).unwrap_or(now))
}

fn password(file: Option<&Path>) -> Result<Option<String>> {
    if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading password file {}", file.display()))?;
        return Ok(Some(text.trim_end_matches(['\n', '\r']).to_string()));
    }
    Ok(std::env::var("STELLA_KIT_PASSWORD").ok())
}

fn load_key(path: &Path, password_file: Option<&Path>) -> Result<SigningKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading secret key {}", path.display()))?;
    let password = password(password_file)?;
    SigningKey::from_minisign_file_contents(&text, password.as_deref()).with_context(|| {
        format!("loading secret key {} (for an encrypted key give --password-file or STELLA_KIT_PASSWORD)", path.display())
    })
}

fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

fn sidecar(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".minisig");
    PathBuf::from(name)
}

fn build(args: BuildArgs) -> Result<()> {
    let sources = args
        .sources
        .iter()
        .map(|s| s.parse::<SourceSpec>())
        .collect::<Result<Vec<_>, _>>()?;
    let key = load_key(&args.key, args.password_file.as_deref())?;
    let created = default_time(args.created.as_deref())?;
    let expires = parse_expiry(&args.expires, created).map_err(anyhow::Error::msg)?;
    let base_keys = args
        .base_keys
        .iter()
        .map(|path| {
            std::fs::read_to_string(path)
                .with_context(|| format!("reading base key {}", path.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    let options = BuildOptions {
        sources,
        channel: args.channel,
        sequence: args.sequence,
        created,
        expires,
        bases: args.bases,
        base_keys,
    };
    let progress = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(stella_kit_builder::count_files(&options.sources));
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} files  {msg}",
        ) {
            bar.set_style(style);
        }
        Some(bar)
    } else {
        None
    };
    let report = stella_kit_builder::build(&options, &key, progress.as_ref())?;
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    write_new(&args.out, &report.kit.archive)?;
    write_new(&sidecar(&args.out), report.kit.archive_signature.as_bytes())?;
    if let Some(path) = &args.dropped_report {
        let dropped: BTreeMap<String, &Vec<stella_importer::RecordError>> = report
            .sources
            .iter()
            .map(|s| (format!("{}={}", s.kind, s.name), &s.errors))
            .collect();
        write_new(path, &serde_json::to_vec_pretty(&dropped)?)?;
    }
    emit(&stella_kit_builder::summary_table(&report));
    say!(
        "wrote {} ({} bytes, manifest sha256:{}) and {}",
        args.out.display(),
        report.kit.archive.len(),
        report.kit.manifest_sha256.as_str(),
        sidecar(&args.out).display()
    );
    Ok(())
}

fn inspect(kit: &Path, keys: &[PathBuf], json: bool) -> Result<ExitCode> {
    let bytes = std::fs::read(kit).with_context(|| format!("reading {}", kit.display()))?;
    if keys.is_empty() {
        let (manifest, _) =
            stella_importer::read_manifest_unverified(bytes.as_slice(), &Limits::default())?;
        emit(&format!("{}\n", serde_json::to_string_pretty(&manifest)?));
        eprintln!("NOT VERIFIED: give --key kit.pub to verify the signature and every file");
        return Ok(ExitCode::from(3));
    }
    let texts = keys
        .iter()
        .map(|path| {
            std::fs::read_to_string(path)
                .with_context(|| format!("reading public key {}", path.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    let trusted = TrustedKeys::from_texts(texts.iter().map(String::as_str))?;
    let verified =
        stella_importer::verify_kit(bytes.as_slice(), &trusted, &SystemClock, &Limits::default())
            .map_err(|e| anyhow::anyhow!("{} REJECTED ({}): {e}", kit.display(), e.reason()))?;
    let mut out = String::new();
    if json {
        outln!(out, "{}", serde_json::to_string_pretty(&verified.manifest)?);
    } else {
        let manifest = &verified.manifest;
        outln!(out, "kit:       {}", manifest.kit_id);
        outln!(
            out,
            "channel:   {}  sequence {}  ({:?})",
            manifest.channel,
            manifest.sequence,
            manifest.kind
        );
        outln!(out, "created:   {}", manifest.created);
        outln!(out, "expires:   {}", manifest.expires);
        if let Some(base) = &manifest.base {
            outln!(
                out,
                "base:      {} (sequence {}, manifest sha256:{})",
                base.kit_id,
                base.sequence,
                base.manifest_sha256.as_str()
            );
        }
        outln!(
            out,
            "manifest:  sha256:{}",
            verified.manifest_sha256.as_str()
        );
        outln!(
            out,
            "signed by: {}  ({})",
            verified.key_id,
            verified.trusted_comment
        );
        for (kind, count) in &manifest.counts {
            outln!(out, "  {:<14} {count}", format!("{kind:?}"));
        }
        outln!(out, "sources:");
        for source in &manifest.sources {
            outln!(
                out,
                "  {:<20} {:<40} records {:>7} dropped {:>5}",
                source.kind,
                source.name,
                source.records,
                source.dropped
            );
        }
        outln!(out, "files: {}", manifest.files.len());
        for file in &manifest.files {
            outln!(
                out,
                "  {:<28} {:>10} bytes  {:>6} records  {}",
                file.path.as_str(),
                file.size,
                file.records,
                file.sha256.as_str()
            );
        }
    }
    outln!(
        out,
        "VERIFIED: signature, {} files, sizes, hashes and records",
        verified.manifest.files.len()
    );
    emit(&out);
    Ok(ExitCode::SUCCESS)
}

fn keygen(dir: &Path, unencrypted: bool, password_file: Option<&Path>) -> Result<()> {
    let secret_path = dir.join("kit.key");
    let public_path = dir.join("kit.pub");
    for path in [&secret_path, &public_path] {
        if path.exists() {
            bail!(
                "{} already exists; refusing to overwrite a key",
                path.display()
            );
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let protection = if unencrypted {
        KeyProtection::Unencrypted
    } else {
        match password(password_file)? {
            Some(password) if !password.is_empty() => KeyProtection::Password(password),
            Some(_) => bail!("the password is empty; use --unencrypted for a key without password"),
            None => KeyProtection::Prompt,
        }
    };
    let pair = stella_importer::generate_key_pair(protection, "stella-kit secret key")?;
    write_secret(&secret_path, pair.secret_key_file.as_bytes())?;
    write_new(&public_path, pair.public_key_file.as_bytes())?;
    say!(
        "key id {}\nwrote {} and {}",
        pair.key_id,
        secret_path.display(),
        public_path.display()
    );
    Ok(())
}

fn write_secret(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))
}

fn licence(command: LicenceCommand) -> Result<()> {
    match command {
        LicenceCommand::Issue {
            request,
            plan,
            customer,
            expires,
            key,
            password_file,
            quotas,
            valid_release_year,
            max_version,
            issued,
            out,
        } => {
            let bytes = std::fs::read(&request)
                .with_context(|| format!("reading {}", request.display()))?;
            let request = EnrolmentRequest::parse(&bytes)?;
            request
                .verify()
                .context("the enrolment request's self-signature does not verify")?;
            let vendor_key = load_key(&key, password_file.as_deref())?;
            let issued = default_time(issued.as_deref())?;
            let expires = parse_expiry(&expires, issued).map_err(anyhow::Error::msg)?;
            let mut quota_map = BTreeMap::new();
            for quota in quotas {
                let (name, value) = quota
                    .split_once('=')
                    .with_context(|| format!("--quota {quota:?}: expected NAME=N"))?;
                quota_map.insert(
                    name.to_string(),
                    value
                        .parse::<u64>()
                        .with_context(|| format!("--quota {quota:?}: N is not a number"))?,
                );
            }
            let terms = LicenceTerms {
                customer,
                plan,
                quotas: quota_map,
                valid_release_year,
                max_version,
                issued,
                expires,
            };
            let licence = issue_licence(&request, &terms, &vendor_key)?;
            write_new(&out, &serde_json::to_vec_pretty(&licence)?)?;
            say!(
                "licence {} for {} (appliance {}), expires {}",
                licence.licence.licence_id,
                licence.licence.customer,
                licence.licence.appliance_id,
                licence.licence.expires
            );
            Ok(())
        }
        LicenceCommand::Revoke {
            licence_ids,
            list,
            verify_key,
            reason,
            revoked_at,
            key,
            password_file,
            out,
        } => {
            let vendor_key = load_key(&key, password_file.as_deref())?;
            let revoked_at = format_time(default_time(revoked_at.as_deref())?);
            let (sequence, mut revoked) = match list {
                Some(path) => {
                    let existing = SignedRevocationList::parse(
                        &std::fs::read(&path)
                            .with_context(|| format!("reading {}", path.display()))?,
                    )?;
                    let trusted = match verify_key {
                        Some(pub_path) => {
                            TrustedKeys::from_texts([std::fs::read_to_string(&pub_path)?.as_str()])?
                        }
                        None => TrustedKeys::from_texts([vendor_key.public_key_file().as_str()])?,
                    };
                    existing.verify(&trusted).with_context(|| {
                        format!("existing list {} does not verify", path.display())
                    })?;
                    (existing.list.sequence + 1, existing.list.revoked)
                }
                None => (1, Vec::new()),
            };
            for licence_id in licence_ids {
                if !revoked.iter().any(|r| r.licence_id == licence_id) {
                    revoked.push(Revocation {
                        licence_id,
                        revoked_at: revoked_at.clone(),
                        reason: reason.clone(),
                    });
                }
            }
            let list = sign_revocations(
                RevocationList {
                    format: String::new(),
                    sequence,
                    issued: revoked_at,
                    revoked,
                },
                &vendor_key,
            )?;
            write_new(&out, &serde_json::to_vec_pretty(&list)?)?;
            say!(
                "revocation list sequence {} with {} licence(s)",
                list.list.sequence,
                list.list.revoked.len()
            );
            Ok(())
        }
    }
}

fn key_update(
    add: &[PathBuf],
    remove: Vec<String>,
    sequence: u64,
    issued: Option<&str>,
    key: &Path,
    password_file: Option<&Path>,
    out: &Path,
) -> Result<()> {
    let signer = load_key(key, password_file)?;
    let mut lines = Vec::new();
    for path in add {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading public key {}", path.display()))?;
        let line = text
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty() && !line.starts_with("untrusted comment:"))
            .with_context(|| format!("{} holds no key line", path.display()))?;
        lines.push(line.to_string());
    }
    let update = stella_importer::keyupdate::KeyUpdate {
        format: String::new(),
        sequence,
        issued: format_time(default_time(issued)?),
        add: lines,
        remove,
    };
    let signed = stella_importer::keyupdate::sign_key_update(update, &signer)?;
    write_new(out, &serde_json::to_vec_pretty(&signed)?)?;
    say!(
        "key update sequence {} signed by {}: +{} -{}",
        signed.update.sequence,
        signer.key_id(),
        signed.update.add.len(),
        signed.update.remove.len()
    );
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Build(args) => build(args).map(|()| ExitCode::SUCCESS),
        Command::Inspect { kit, keys, json } => inspect(&kit, &keys, json),
        Command::Keygen {
            dir,
            unencrypted,
            password_file,
        } => keygen(&dir, unencrypted, password_file.as_deref()).map(|()| ExitCode::SUCCESS),
        Command::Licence(command) => licence(command).map(|()| ExitCode::SUCCESS),
        Command::KeyUpdate {
            add,
            remove,
            sequence,
            issued,
            key,
            password_file,
            out,
        } => key_update(
            &add,
            remove,
            sequence,
            issued.as_deref(),
            &key,
            password_file.as_deref(),
            &out,
        )
        .map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("stella-kit: {error:#}");
            ExitCode::from(2)
        }
    }
}
