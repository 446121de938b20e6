//! `stella serve`: load the configuration, take the data directory, open the stores, serve
//! until SIGTERM/SIGINT, drain, and close the stores cleanly.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use stella_core::{Clock, Config, SystemClock, TlsMode};
use stella_store::{AuditEvent, Stores};
use tokio::signal::unix::{SignalKind, signal};

use crate::ServeArgs;

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = Config::load(args.config.as_deref(), |name| std::env::var(name).ok())?;
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    if let Some(dir) = args.data_dir {
        config.storage.data_dir = dir;
    }
    if let Some(format) = args.log_format {
        config.log.format = format.parse().map_err(anyhow::Error::msg)?;
    }
    crate::init_logging(config.log.format, &config.log.level);

    let stores = Arc::new(Stores::open(&config.storage.data_dir)?);
    let started_at = SystemClock.now_unix();
    stores.catalog.audit(&AuditEvent {
        at: started_at,
        actor: "system".to_owned(),
        action: "daemon.start".to_owned(),
        target: stores.catalog.instance_id()?,
        detail: format!("{{\"version\":\"{}\"}}", stella_core::VERSION),
        request_id: None,
    })?;

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
        tracing::info!(
            data_dir = %config.storage.data_dir.display(),
            listen = %local,
            "stella {} serving {scheme}",
            stella_core::VERSION
        );
        let (authority, bootstrap_password) = open_authority(&config, &stores, scheme, local)?;
        let shutdown = shutdown_signal();
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
        if let Some(password) = bootstrap_password {
            // Printed once, on first start only; only its hash is stored.
            let _ = writeln!(
                stdout,
                "stella: bootstrap console user \"admin\" one-time password: {password} (must be changed at first login)"
            );
            tracing::warn!("created console user admin with a one-time password (printed on stdout)");
        }
        let app = stella_web::router(stella_web::AppState::new(stores.clone(), authority));
        let grace = Duration::from_secs(config.server.shutdown_grace_secs);
        match tls {
            Some(tls) => {
                stella_web::serve_tls(listener, tls.config, app, shutdown, grace).await
            }
            None => stella_web::serve(listener, app, shutdown, grace).await,
        }
        .context("server failed")
    })?;
    // Let the runtime's blocking tasks finish before the stores close.
    runtime.shutdown_timeout(Duration::from_secs(5));
    if outcome == stella_web::ServeOutcome::GraceExpired {
        tracing::warn!("grace period over; dropped requests still in flight");
    }
    stores.catalog.audit(&AuditEvent {
        at: SystemClock.now_unix(),
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
