//! `stella serve`: load the configuration, take the data directory, open the stores, serve
//! until SIGTERM/SIGINT, drain, and close the stores cleanly.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use stella_core::{Clock, Config, SystemClock};
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
    let outcome = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.server.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.server.listen))?;
        let local = listener.local_addr()?;
        tracing::info!(
            data_dir = %config.storage.data_dir.display(),
            listen = %local,
            "stella {} serving",
            stella_core::VERSION
        );
        // A fixed line on stdout that scripts (and the tests) read to find an ephemeral port.
        println!("stella: listening on http://{local}");
        let app = stella_web::router(stella_web::AppState::new(stores.clone()));
        let grace = Duration::from_secs(config.server.shutdown_grace_secs);
        stella_web::serve(listener, app, shutdown_signal(), grace)
            .await
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

/// Resolves on the first SIGTERM or SIGINT.
async fn shutdown_signal() {
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
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
