//! stella: the appliance daemon (`stella serve`) and operator CLI. Thin by design: it parses
//! arguments and wires the crates together.

mod attest;
mod demo;
mod diff;
mod hsm;
mod import;
mod login;
mod report;
mod scan;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use stella_core::LogFormat;

#[derive(Parser, Debug)]
#[command(
    name = "stella",
    version,
    about = "Stella Ops Appliance: deterministic, signed evidence for container images"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the appliance daemon: HTTP API, console and embedded stores.
    Serve(ServeArgs),
    /// Verify an offline kit and load it (through the daemon when it holds the data dir).
    Import(import::ImportArgs),
    /// Scan an image and write its SBOM (standalone: no daemon needed).
    Scan(scan::ScanArgs),
    /// Diff two images: components added, removed and changed, attributed to layers.
    Diff(diff::DiffArgs),
    /// Judge an image against the current advisories and a policy: exit 0 PASS, 1 FAIL, 2 error.
    Report(report::ReportArgs),
    /// Obtain a DPoP-bound access token with client credentials and remember the profile.
    Login(login::LoginArgs),
    /// Call the appliance API as the logged-in client, e.g. `stella api GET /api/audit`.
    Api(login::ApiArgs),
    /// Offline recovery: give a console user a new one-time password (daemon stopped).
    ResetPassword(login::ResetPasswordArgs),
    /// The HSM: key ceremony (`init`), readiness (`status`), inventory (`keys`).
    #[command(subcommand)]
    Hsm(hsm::HsmCommand),
    /// Licence enrolment: `stella licence request -o req.json`.
    #[command(subcommand)]
    Licence(hsm::LicenceCommand),
    /// Verify a Sigstore bundle offline: DSSE, certificate chain, SCT, inclusion proof,
    /// checkpoint, timestamp (exit 0 verified, 1 not).
    Verify(attest::VerifyArgs),
    /// The transparency log: `stella log verify` is the monitor.
    #[command(subcommand)]
    Log(attest::LogCommand),
    /// Attestations: `stella attest export IMAGE -o DIR`.
    #[command(subcommand)]
    Attest(attest::AttestCommand),
}

/// Flags of `stella serve`; each overrides the configuration file and the environment.
#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Configuration file (TOML). Without one, every key takes its default.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8080 (port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// Data directory holding the stores.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Log line format.
    #[arg(long, value_name = "FORMAT", value_parser = ["human", "json"])]
    log_format: Option<String>,
    /// Demo mode: a sample kit signed with an ephemeral key trusted only by this run, a sample
    /// image scanned and judged, in a temporary data dir unless --data-dir is given (docs/demo.md).
    #[arg(long)]
    demo: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args).map(|()| ExitCode::SUCCESS),
        Command::Import(args) => import::run(args),
        Command::Scan(args) => scan::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Report(args) => report::run(args),
        Command::Login(args) => login::run(args).map(|()| ExitCode::SUCCESS),
        Command::Api(args) => login::api(args).map(|()| ExitCode::SUCCESS),
        Command::ResetPassword(args) => login::reset_password(args).map(|()| ExitCode::SUCCESS),
        Command::Hsm(command) => hsm::run(command),
        Command::Licence(command) => hsm::licence(command),
        Command::Verify(args) => attest::verify(args),
        Command::Log(command) => attest::log(command),
        Command::Attest(command) => attest::attest(command),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("stella: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Installs the global `tracing` subscriber: human lines (coloured on a TTY) or JSON, on stderr.
fn init_logging(format: LogFormat, level: &str) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;

    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Human => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}
