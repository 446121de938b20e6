//! `stella hsm init|status|keys` (the key ceremony and its inventory) and
//! `stella licence request` (the enrolment request the vendor turns into a licence). Both talk
//! to the `[hsm]` of the configuration; neither needs the daemon stopped.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use stella_core::Config;
use stella_hsm::{KeyRole, KeySource};

/// Flags shared by the HSM commands.
#[derive(clap::Args, Debug)]
pub(crate) struct HsmArgs {
    /// Configuration file (TOML) with the `[hsm]` section.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (where the CA root certificate is kept).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Print the inventory as JSON.
    #[arg(long)]
    json: bool,
}

/// `stella hsm` subcommands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum HsmCommand {
    /// Key ceremony: create every missing appliance key inside the HSM (idempotent) and the
    /// CA root certificate; print key ids and public keys.
    Init(HsmArgs),
    /// Show whether every key is present and the attestation key signs; exit 1 when not.
    Status(HsmArgs),
    /// List the appliance keys with their public keys.
    Keys(HsmArgs),
}

/// `stella licence` subcommands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum LicenceCommand {
    /// Export an enrolment request (installation public key, appliance id, signed by that key
    /// in the HSM) for the vendor's `stella-kit licence issue --request`.
    Request(RequestArgs),
}

/// Flags of `stella licence request`.
#[derive(clap::Args, Debug)]
pub(crate) struct RequestArgs {
    /// Where to write the request.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    out: PathBuf,
    /// Configuration file (TOML) with the `[hsm]` section.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

fn key_source(config: &Config) -> anyhow::Result<Box<dyn KeySource>> {
    stella_web::signing::open_key_source(config)?.context(
        "the configuration has no [hsm] section: name the HSM first (docs/hsm.md), e.g. \
         [hsm] backend = \"pkcs11\", module, token, pin_file",
    )
}

/// The appliance id: `[licence] appliance_id`, else derived from the installation key.
pub(crate) fn appliance_id(config: &Config, source: &dyn KeySource) -> anyhow::Result<String> {
    if !config.licence.appliance_id.is_empty() {
        return Ok(config.licence.appliance_id.clone());
    }
    let key = source
        .find_key(&KeyRole::InstallationIdentity.label()?)?
        .context("the HSM has no installation identity key: run `stella hsm init` first")?;
    let id = key.public_key.key_id();
    Ok(format!("stella-{}", id.get(..16).unwrap_or(&id)))
}

pub(crate) fn run(command: HsmCommand) -> anyhow::Result<ExitCode> {
    let (args, action) = match &command {
        HsmCommand::Init(args) => (args, "init"),
        HsmCommand::Status(args) => (args, "status"),
        HsmCommand::Keys(args) => (args, "keys"),
    };
    let config = crate::serve::load_config(args.config.as_deref(), args.data_dir.clone())?;
    let source = key_source(&config)?;
    let inventory = match action {
        "init" => {
            let inventory = stella_hsm::init_appliance_keys(source.as_ref())?;
            let id = appliance_id(&config, source.as_ref())?;
            let signer = stella_web::signing::open_attestation_signer(
                source.as_ref(),
                &config.storage.data_dir,
                &id,
                &config,
            )?;
            let root = signer.certificate_authority().root();
            eprintln!(
                "stella: appliance {id}; CA root serial {} valid until {} (kept in {})",
                root.serial_hex,
                root.not_after,
                config.storage.data_dir.join("signer").display()
            );
            inventory
        }
        _ => stella_hsm::key_status(source.as_ref())?,
    };
    let ready = match action {
        "status" => Some(stella_hsm::check_ready(source.as_ref()).map(drop)),
        _ => None,
    };
    if args.json {
        let mut value = serde_json::to_value(&inventory)?;
        if let Some(ready) = &ready {
            value["ready"] = ready.is_ok().into();
            value["problem"] = ready.as_ref().err().map(|e| e.to_string()).into();
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{}", inventory.render(action != "status"));
        if let Some(ready) = &ready {
            match ready {
                Ok(()) => println!("ready: every key present, the attestation key signs"),
                Err(e) => println!("NOT READY: {e}"),
            }
        }
    }
    Ok(match ready {
        Some(Err(_)) => ExitCode::FAILURE,
        _ => ExitCode::SUCCESS,
    })
}

pub(crate) fn licence(command: LicenceCommand) -> anyhow::Result<ExitCode> {
    let LicenceCommand::Request(args) = command;
    let config = crate::serve::load_config(args.config.as_deref(), None)?;
    let source = key_source(&config)?;
    let id = appliance_id(&config, source.as_ref())?;
    let identity = source.signer(&KeyRole::InstallationIdentity.label()?)?;
    let request = stella_signer::enrolment_request(
        identity.as_ref(),
        &id,
        time::OffsetDateTime::now_utc(),
        Some(stella_core::VERSION),
    )?;
    write_new(&args.out, &request)?;
    eprintln!(
        "stella: enrolment request for appliance {id}, installation key {} -> {}",
        identity.key().public_key.key_id(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn write_new(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
