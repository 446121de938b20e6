//! `stella serve`: load the configuration, take the data directory, open the stores, serve the
//! API on TCP and the admin socket on `DATA_DIR/admin.sock`, watch the kit folder, and on
//! SIGTERM/SIGINT drain and close the stores cleanly.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use stella_core::{Clock, Config, SystemClock, TlsMode};
use stella_feeds::{FeedStore, ImportOptions, ImportOutcome};
use stella_store::{AuditEvent, Stores};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::{ServeArgs, demo};

/// Loads the configuration as `serve` and every operator command sees it: file, then
/// environment, then flags.
pub(crate) fn load_config(
    config: Option<&Path>,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<Config> {
    let mut config = Config::load(config, |name| std::env::var(name).ok())?;
    if let Some(dir) = data_dir {
        config.storage.data_dir = dir;
    }
    Ok(config)
}

/// Path of the admin socket inside a data directory.
pub(crate) fn admin_socket(data_dir: &Path) -> PathBuf {
    data_dir.join("admin.sock")
}

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mode = if args.demo {
        demo::Mode::Demo
    } else {
        demo::Mode::Normal
    };
    // Declared before the stores so that a temporary demo data dir outlives them.
    let demo_dir = match mode {
        demo::Mode::Demo => Some(demo::data_dir(args.data_dir.clone())?),
        demo::Mode::Normal => None,
    };
    let mut config = load_config(args.config.as_deref(), args.data_dir)?;
    if let Some(dir) = &demo_dir {
        config.storage.data_dir = dir.path.clone();
    }
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    if let Some(format) = args.log_format {
        config.log.format = format.parse().map_err(anyhow::Error::msg)?;
    }
    crate::init_logging(config.log.format, &config.log.level);

    let data_dir = config.storage.data_dir.clone();
    if mode == demo::Mode::Normal {
        demo::refuse_demo_data(&data_dir)?;
    }
    let stores = Arc::new(Stores::open(&data_dir)?);
    let feeds = Arc::new(FeedStore::open(&data_dir, &stores.catalog)?);
    // Fail at start, not at the first import, when the kit keys are unusable.
    ImportOptions::from_config(&config.kits, &data_dir, "system", "config")?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut signing = open_signing(&config)?;
    let mut demo_kit = None;
    if let Some(dir) = &demo_dir {
        let key = demo::DemoKey::generate()?;
        tracing::warn!(
            data_dir = %dir.path.display(),
            temporary = dir.is_temporary(),
            key = %key.key_id(),
            "DEMO MODE: sample data signed with an ephemeral demo key trusted only by this run; nothing here is evidence"
        );
        demo_kit = demo::import_sample_kit(
            &config,
            &stores,
            &feeds,
            clock.as_ref(),
            &key,
            signing.as_mut(),
        )?;
    }
    stores.catalog.audit(&AuditEvent {
        at: clock.now_unix(),
        actor: "system".to_owned(),
        action: "daemon.start".to_owned(),
        target: stores.catalog.instance_id()?,
        detail: format!("{{\"version\":\"{}\"}}", stella_core::VERSION),
        request_id: None,
    })?;
    let interrupted = stores
        .catalog
        .fail_interrupted_scans(&stella_core::rfc3339(clock.now_unix()))?;
    if interrupted > 0 {
        tracing::warn!(
            interrupted,
            "scans left running by an earlier daemon are marked failed"
        );
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // Plain HTTP only on loopback (docs/security.md): anywhere else TLS is mandatory.
    let https = config.tls.mode == TlsMode::On || !config.server.listen.ip().is_loopback();
    let tls = if https {
        let setup = stella_web::tls::load_or_create(
            &config.storage.data_dir,
            config.tls.cert_file.as_deref(),
            config.tls.key_file.as_deref(),
            &config.tls.self_signed_names,
        )?;
        Some(setup)
    } else {
        None
    };

    let outcome = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.server.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.server.listen))?;
        let local = listener.local_addr()?;
        let scheme = if https { "https" } else { "http" };
        let (authority, bootstrap_password) = open_authority(&config, &stores, scheme, local)?;
        let signing = match signing {
            Some(mut service) => {
                let base_url = if config.auth.issuer.is_empty() {
                    format!("{scheme}://{local}")
                } else {
                    config.auth.issuer.trim_end_matches('/').to_owned()
                };
                service.open_attestor(&data_dir, &base_url, &config)?;
                Some(Arc::new(service))
            }
            None => None,
        };
        let state = stella_web::AppState::new(
            stores.clone(),
            feeds,
            authority,
            config.clone(),
            clock.clone(),
            signing,
        )
        .with_demo(mode == demo::Mode::Demo);
        let seeded = match mode {
            demo::Mode::Demo => {
                let state = state.clone();
                Some(tokio::task::spawn_blocking(move || demo::scan_and_report(&state)).await??)
            }
            demo::Mode::Normal => None,
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        let signalled = shutdown_signal();
        tokio::spawn(async move {
            signalled.await;
            let _ = stop_tx.send(true);
        });

        let socket = admin_socket(&data_dir);
        // We hold the data-dir lock, so any socket file left here is from a dead daemon.
        let _ = std::fs::remove_file(&socket);
        let admin = tokio::net::UnixListener::bind(&socket)
            .with_context(|| format!("cannot bind admin socket {}", socket.display()))?;
        set_owner_only(&socket)?;
        let admin_app = stella_web::admin_router(state.clone());
        let admin_stop = stopped(stop_rx.clone());
        tokio::spawn(async move {
            if let Err(e) = stella_web::serve_admin(admin, admin_app, admin_stop).await {
                tracing::error!(error = %e, "admin socket failed");
            }
        });

        if !config.kits.watch_dir.as_os_str().is_empty() {
            tokio::spawn(watch_folder(state.clone(), stop_rx.clone()));
        }

        tracing::info!(
            data_dir = %data_dir.display(),
            listen = %local,
            "stella {} serving {scheme}",
            stella_core::VERSION
        );
        // A fixed line on stdout that scripts (and the tests) read to find an ephemeral port.
        // The lines after it are for the operator; whoever reads stdout may have stopped
        // reading, so their write errors are ignored rather than fatal.
        println!("stella: listening on {scheme}://{local}");
        let mut stdout = std::io::stdout();
        if let Some(tls) = &tls {
            let kind = if tls.self_signed { "self-signed" } else { "operator" };
            let _ = writeln!(stdout, "stella: TLS certificate ({kind}) SHA-256 fingerprint {}", tls.fingerprint);
            tracing::info!(fingerprint = %tls.fingerprint, kind, created = tls.created, "TLS certificate");
        }
        let admin_created = bootstrap_password.is_some();
        if let Some(password) = bootstrap_password {
            // Printed once, on first start only; only its hash is stored.
            let _ = writeln!(
                stdout,
                "stella: bootstrap console user \"admin\" one-time password: {password} (must be changed at first login)"
            );
            tracing::warn!("created console user admin with a one-time password (printed on stdout)");
        }
        if let (Some(seeded), Some(dir)) = (&seeded, &demo_dir) {
            let console = format!("{scheme}://{local}/");
            let demo = DemoLines { seeded, dir, kit: demo_kit.as_ref(), admin_created, console: &console };
            demo.print(&mut stdout);
        }
        let app = stella_web::router(state);
        let grace = Duration::from_secs(config.server.shutdown_grace_secs);
        let outcome = match tls {
            Some(tls) => {
                stella_web::serve_tls(listener, tls.config, app, stopped(stop_rx), grace).await
            }
            None => stella_web::serve(listener, app, stopped(stop_rx), grace).await,
        }
        .context("server failed");
        let _ = std::fs::remove_file(&socket);
        outcome
    })?;
    // Let the runtime's blocking tasks finish before the stores close.
    runtime.shutdown_timeout(Duration::from_secs(5));
    if outcome == stella_web::ServeOutcome::GraceExpired {
        tracing::warn!("grace period over; dropped requests still in flight");
    }
    stores.catalog.audit(&AuditEvent {
        at: clock.now_unix(),
        actor: "system".to_owned(),
        action: "daemon.stop".to_owned(),
        target: stores.catalog.instance_id()?,
        detail: format!("{{\"outcome\":\"{outcome:?}\"}}"),
        request_id: None,
    })?;
    let stores = Arc::into_inner(stores).context("stores still in use at shutdown")?;
    drop(stores);
    tracing::info!("stopped cleanly");
    Ok(())
}

/// What `--demo` tells the operator on stdout: what was seeded and where to look.
struct DemoLines<'a> {
    seeded: &'a demo::Seeded,
    dir: &'a demo::DemoDir,
    /// The sample kit loaded by this run; `None` when an earlier run's advisories were kept.
    kit: Option<&'a demo::SampleKit>,
    /// Whether this start created `admin` (and printed its one-time password).
    admin_created: bool,
    console: &'a str,
}

impl DemoLines<'_> {
    fn print(&self, out: &mut impl std::io::Write) {
        let seeded = self.seeded;
        let lines = [
            match self.kit {
                Some(kit) => format!(
                    "stella: DEMO MODE: sample kit {} on channel \"{}\" signed with an ephemeral demo key trusted only by this run; nothing here is evidence",
                    kit.kit_id,
                    demo::CHANNEL
                ),
                None => "stella: DEMO MODE: advisories from an earlier demo run of this data dir, signed with that run's ephemeral demo key; nothing here is evidence".to_owned(),
            },
            format!(
                "stella: demo: scanned sample image {}: {} findings, verdict {}",
                seeded.image_digest, seeded.findings, seeded.verdict
            ),
            match (&seeded.signed, &seeded.unsigned_reason) {
                (Some((licence, index)), _) => format!(
                    "stella: demo: the report is signed under licence {licence} and logged at index {index} (attestations page: {}console/attestations)",
                    self.console
                ),
                (None, reason) => format!(
                    "stella: demo: the report is not signed: {}",
                    reason.as_deref().unwrap_or("no attestation")
                ),
            },
            format!(
                "stella: demo: data in {}{}",
                self.dir.path.display(),
                if self.dir.is_temporary() {
                    " (removed when the daemon stops)"
                } else {
                    ""
                }
            ),
            if self.admin_created {
                format!(
                    "stella: demo console: {} (user \"admin\", one-time password above)",
                    self.console
                )
            } else {
                format!(
                    "stella: demo console: {} (user \"admin\" with the password set on an earlier run; `stella reset-password --data-dir {}` with the daemon stopped gives a new one)",
                    self.console,
                    self.dir.path.display()
                )
            },
        ];
        let licence = self.kit.and_then(|kit| kit.licence_id.as_ref()).map(|licence| {
            format!(
                "stella: demo: demo licence {licence} in the sample kit, for this HSM's installation key, signed with the demo key: valid only in this demo run, expires with the kit"
            )
        });
        let (first, rest) = lines.split_at(1);
        for line in first.iter().chain(&licence).chain(rest) {
            let _ = writeln!(out, "{line}");
        }
    }
}

/// The signer over the `[hsm]` key source; `None` (community mode) without `[hsm]`. An HSM
/// that cannot be opened fails the start; missing keys only make the signer refuse (and
/// `/readyz` answer 503) until `stella hsm init` has run.
fn open_signing(config: &Config) -> anyhow::Result<Option<stella_web::signing::SigningService>> {
    let Some(source) = stella_web::signing::open_key_source(config)? else {
        tracing::info!("no [hsm] configured: community mode, the appliance signs nothing");
        return Ok(None);
    };
    let appliance_id = match crate::hsm::appliance_id(config, source.as_ref()) {
        Ok(id) => id,
        Err(e) => {
            tracing::warn!(error = %e, "HSM keys missing; run `stella hsm init`");
            String::new()
        }
    };
    let service = stella_web::signing::SigningService::open(
        source,
        &config.storage.data_dir,
        &appliance_id,
        config,
    )?;
    match service.check_ready() {
        Ok(inventory) => tracing::info!(source = %inventory.source, "HSM ready"),
        Err(reason) => tracing::warn!(%reason, "HSM not ready: the signer refuses"),
    }
    Ok(Some(service))
}

fn set_owner_only(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {}", path.display()))
}

/// Resolves once the stop flag is set.
async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// The Authority over the data directory's token-signing key; on first start, also the bootstrap
/// `admin` account, whose one-time password is returned to be printed once.
fn open_authority(
    config: &Config,
    stores: &Stores,
    scheme: &str,
    local: std::net::SocketAddr,
) -> anyhow::Result<(Arc<stella_web::Authority>, Option<String>)> {
    let issuer = if config.auth.issuer.is_empty() {
        format!("{scheme}://{local}")
    } else {
        config.auth.issuer.trim_end_matches('/').to_owned()
    };
    let settings = stella_web::auth::AuthSettings {
        issuer,
        https: scheme == "https",
        token_lifetime: stella_authority::TokenLifetime::clamped(config.auth.token_lifetime_secs),
        session_lifetime_secs: config.auth.session_lifetime_secs,
        allow_bearer_tokens: config.auth.allow_bearer_tokens,
        throttle: stella_authority::LoginThrottle {
            lockout_after: config.auth.lockout_after,
            lockout_secs: config.auth.lockout_secs,
            ..stella_authority::LoginThrottle::default()
        },
    };
    let (authority, created) =
        stella_web::Authority::open(&config.storage.data_dir, settings, Arc::new(SystemClock))?;
    if created {
        tracing::info!("created the token-signing key (software key until an HSM is configured)");
    }
    let password = authority.bootstrap_admin(&stores.catalog)?;
    Ok((Arc::new(authority), password))
}

/// Resolves on the first SIGTERM or SIGINT. The handlers are installed when this is called
/// (not when first polled), so a signal that arrives right after the listening line is printed
/// still drains instead of killing the process.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move { wait_for_signal(term, int).await }
}

async fn wait_for_signal(
    term: std::io::Result<tokio::signal::unix::Signal>,
    int: std::io::Result<tokio::signal::unix::Signal>,
) {
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: draining"),
                _ = int.recv() => tracing::info!("SIGINT: draining"),
            }
        }
        _ => {
            tracing::error!("cannot install signal handlers; stop with SIGKILL");
            std::future::pending::<()>().await;
        }
    }
}

/// Imports every new `*.tar.zst` that appears in `[kits] watch_dir` (removable media). A file is
/// looked at again only when its size or modification time changes.
async fn watch_folder(state: stella_web::AppState, stop: watch::Receiver<bool>) {
    let dir = state.config().kits.watch_dir.clone();
    let interval = Duration::from_secs(state.config().kits.watch_interval_secs.max(1));
    let mut seen: std::collections::HashSet<(PathBuf, u64, std::time::SystemTime)> =
        std::collections::HashSet::new();
    tracing::info!(dir = %dir.display(), "watching for kits");
    loop {
        let mut kits: Vec<(PathBuf, u64, std::time::SystemTime)> = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                let is_kit = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(".tar.zst"));
                if let (true, Ok(meta)) = (is_kit, entry.metadata())
                    && meta.is_file()
                {
                    kits.push((
                        path,
                        meta.len(),
                        meta.modified().unwrap_or(std::time::UNIX_EPOCH),
                    ));
                }
            }
        }
        kits.sort();
        for key in kits {
            if seen.contains(&key) {
                continue;
            }
            let path = key.0.clone();
            let state = state.clone();
            let result = tokio::task::spawn_blocking(move || {
                let origin = path.display().to_string();
                let bytes = std::fs::read(&path).map_err(|e| e.to_string())?;
                let options = ImportOptions::from_config(
                    &state.config().kits,
                    state.stores().dir(),
                    "watch-folder",
                    &origin,
                )
                .map_err(|e| e.to_string())?;
                state
                    .feeds()
                    .import(
                        &state.stores().catalog,
                        &bytes,
                        &options,
                        state.clock().as_ref(),
                    )
                    .map_err(|e| e.to_string())
            })
            .await;
            match result {
                Ok(Ok(ImportOutcome::Loaded(report))) => {
                    tracing::info!(file = %key.0.display(), kit = %report.kit_id, "watch folder: kit loaded");
                }
                Ok(Ok(other)) => {
                    tracing::info!(file = %key.0.display(), ?other, "watch folder: nothing to load")
                }
                Ok(Err(message)) => {
                    tracing::warn!(file = %key.0.display(), %message, "watch folder: kit not loaded")
                }
                Err(e) => tracing::error!(error = %e, "watch folder task failed"),
            }
            seen.insert(key);
        }
        let mut stop = stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
