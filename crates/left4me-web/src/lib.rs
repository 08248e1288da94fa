//! The left4me web panel.
//!
//! [`launch_with_listener`] runs the panel on a bound listener until a
//! shutdown signal: migrations, the job workers, the HTTP server, and on
//! shutdown the jobs are wound down (running ones marked interrupted;
//! servers keep running).

pub mod access;
/// The configuration lives in its own crate, shared with the CLI's host
/// commands; re-exported for the panel's users.
pub use left4me_config as config;
pub mod auth;
pub mod domain;
pub mod error;
pub mod game;
pub mod jobs;
pub mod live;
mod pages;
pub mod reconciler;
mod routes;
pub mod scripts;
pub mod spec_builder;
pub mod state;
pub mod workshop;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use left4me_host::lifecycle::Host;
use left4me_store::Store;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::jobs::Jobs;
use crate::state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("opening the database {path}: {error}")]
    Database {
        path: std::path::PathBuf,
        error: left4me_store::StoreError,
    },
    #[error("opening the state root: {0}")]
    Host(#[from] left4me_host::lifecycle::HostError),
    #[error("opening the game's installation: {0}")]
    Game(std::io::Error),
    #[error("serving HTTP: {0}")]
    Serve(std::io::Error),
    #[error("{0}")]
    Workshop(String),
}

/// Everything the panel needs besides its configuration.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The program with the `supervise` subcommand (the `left4me` binary).
    pub supervisor_program: std::path::PathBuf,
    /// How long a start job waits for the server to answer queries.
    pub ready_timeout: Duration,
    /// The live state the poller fills; a clone lets the caller (tests)
    /// wait for finished poll cycles.
    pub live: Arc<live::Live>,
}

/// Opens the database (applying migrations) at the configured path.
pub async fn open_store(config: &Config) -> Result<Store, LaunchError> {
    let path = config.database_path();
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    Store::open(&path)
        .await
        .map_err(|error| LaunchError::Database { path, error })
}

/// Runs the panel on `listener` until `shutdown` resolves.
pub async fn launch_with_listener(
    config: Config,
    launch: Launch,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), LaunchError> {
    let store = open_store(&config).await?;
    let host = Arc::new(Host::open(
        &config.root,
        config.supervisor(&launch.supervisor_program),
    )?);
    let interrupted =
        store
            .interrupt_running_jobs()
            .await
            .map_err(|error| LaunchError::Database {
                path: config.database_path(),
                error,
            })?;
    if interrupted > 0 {
        tracing::warn!(
            "{interrupted} job(s) were running when the panel last stopped; marked interrupted"
        );
    }
    let addr = listener.local_addr().map_err(LaunchError::Serve)?;
    if matches!(store.count_users().await, Ok(0)) {
        let token =
            auth::issue_setup_token(&store)
                .await
                .map_err(|error| LaunchError::Database {
                    path: config.database_path(),
                    error,
                })?;
        // On stdout, so it reaches the journal (and tests) plainly.
        println!(
            "left4me: no users yet. Create the first admin at {}",
            auth::setup_url(addr, &token)
        );
    }
    let installer = Arc::from(config.installer().map_err(LaunchError::Game)?);
    let workshop = workshop::Workshop::new(&config).map_err(LaunchError::Workshop)?;
    // No build runs yet: what builds that died with the panel left goes.
    if let Err(e) = left4me_host::scripts::clean_leftovers(host.root()) {
        tracing::warn!("removing what earlier script builds left: {e}");
    }
    let jobs = Jobs::new(
        store.clone(),
        Arc::clone(&host),
        installer,
        workshop,
        scripts::ScriptBuilder::new(&config),
        launch.ready_timeout,
    );
    let workers = jobs.spawn_workers(config.workers);
    let stopping = tokio_util::sync::CancellationToken::new();
    let live = Arc::clone(&launch.live);
    let reconciler = reconciler::Reconciler::new(
        store.clone(),
        Arc::clone(&host),
        jobs.clone(),
        Arc::clone(&live),
    )
    .spawn(
        Duration::from_secs(config.reconcile_interval_secs),
        stopping.clone(),
    );
    let poller = live::Poller {
        store: store.clone(),
        host: Arc::clone(&host),
        live: Arc::clone(&live),
        history_secs: i64::try_from(config.player_history_days)
            .unwrap_or(i64::MAX / 86_400)
            .saturating_mul(86_400),
        last_prune: Arc::default(),
    }
    .spawn(
        Duration::from_secs(config.poll_interval_secs),
        stopping.clone(),
    );
    let scheduler = game::Scheduler {
        store: store.clone(),
        jobs: jobs.clone(),
        live: Arc::clone(&live),
        auto_update: config.auto_update,
        interval: Duration::from_secs(config.game_check_interval_secs),
        tick: Duration::from_secs(config.poll_interval_secs),
    }
    .spawn(stopping.clone());
    let refresher = config.workshop_refresh_time().map(|at| {
        workshop::Refresher {
            store: store.clone(),
            jobs: jobs.clone(),
            at,
            tick: Duration::from_secs(config.poll_interval_secs),
        }
        .spawn(stopping.clone())
    });
    let state = AppState::new(
        config,
        store.clone(),
        host,
        jobs.clone(),
        stopping.clone(),
        live,
    );
    let app = routes::router(state);
    tracing::info!("listening on http://{addr}");
    // Under systemd (Type=notify) the start finishes here, migrations done
    // and the socket bound; without NOTIFY_SOCKET this does nothing.
    if let Err(error) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
        tracing::warn!("telling systemd the panel is ready: {error}");
    }
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        // Ends the live streams, which would otherwise hold the shutdown.
        stopping.cancel();
    })
    .await
    .map_err(LaunchError::Serve)?;
    reconciler.abort();
    scheduler.abort();
    if let Some(refresher) = refresher {
        refresher.abort();
    }
    poller.abort();
    jobs.shutdown(Duration::from_secs(5)).await;
    for worker in workers {
        worker.abort();
    }
    store.close().await;
    Ok(())
}

/// A host for unit tests that never reach a game process: the built-in
/// supervisor with a program that does not exist.
#[cfg(test)]
pub(crate) fn test_host(root: &std::path::Path) -> Arc<Host> {
    use left4me_host::supervisor::builtin::{BuiltinSupervisor, RestartPolicy};
    let supervisor = BuiltinSupervisor {
        program: "/nonexistent/left4me".into(),
        policy: RestartPolicy::default(),
        mount_api: left4me_host::mount::MountApi::Auto,
    };
    Arc::new(Host::open(root, Box::new(supervisor)).expect("a test state root"))
}

/// Jobs for unit tests, on `test_host` and an installer whose steamcmd
/// does not exist.
#[cfg(test)]
pub(crate) fn test_jobs(store: &Store, root: &std::path::Path) -> (Arc<Host>, Jobs) {
    let host = test_host(root);
    let config = Config {
        root: root.to_owned(),
        steamcmd: "/nonexistent/steamcmd".into(),
        ..Config::default()
    };
    let installer = Arc::new(config.game().expect("a test state root"));
    let workshop = workshop::Workshop::new(&config).expect("the default Steam API settings");
    let jobs = Jobs::new(
        store.clone(),
        Arc::clone(&host),
        installer,
        workshop,
        scripts::ScriptBuilder::new(&config),
        Duration::from_secs(1),
    );
    (host, jobs)
}
