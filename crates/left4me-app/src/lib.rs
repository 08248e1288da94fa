//! The left4me panel below HTTP.
//!
//! The pages and the JSON API of `left4me-web`, the schedulers and the
//! command line all act through this crate: the job runner, the live
//! state the poller keeps, the reconciler, and the rules of the panel.

/// The configuration lives in its own crate, shared with the CLI's host
/// commands; re-exported for the panel's users.
pub use left4me_config as config;
pub mod actor;
pub mod backups;
pub mod board;
pub mod credentials;
pub mod domain;
pub mod error;
pub mod game;
pub mod history;
pub mod input;
pub mod job_control;
pub mod limiter;
pub mod live;
pub mod memo;
pub mod metrics;
pub mod ops;
pub mod passkeys;
pub mod reconciler;
pub mod restore;
pub mod runner;
pub mod schedule_plan;
pub mod scripts;
pub mod sealing;
pub mod second_factor;
pub mod spec_builder;
pub mod timing;
pub mod workshop;

use std::sync::Arc;
use std::time::Duration;

use left4me_host::lifecycle::Host;
use left4me_store::Store;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::live::Live;
use crate::runner::Jobs;

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
    #[error("{0}")]
    Workshop(String),
    #[error("the key that seals second factors: {0}")]
    Sealing(#[from] sealing::SealingError),
    #[error("another panel (or `left4me restore`) is running on the state root {0}")]
    AlreadyRunning(std::path::PathBuf),
    #[error("bringing back what the restored backup did not hold: {0}")]
    Resume(left4me_store::StoreError),
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
    pub live: Arc<Live>,
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

/// The running panel below HTTP: what every operation works with. Cheap
/// to clone.
#[derive(Debug, Clone)]
pub struct App(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    config: Config,
    store: Store,
    host: Arc<Host>,
    jobs: Jobs,
    live: Arc<Live>,
    board: board::Board,
    /// Sessions and API tokens by the hash of their secret.
    sessions: memo::Memo<ops::sessions::SignedIn>,
    /// With whether the user must set up a second factor first.
    tokens: memo::Memo<(left4me_store::User, left4me_store::ApiToken, bool)>,
    /// Read on first use (and at start, so a bad key file stops the
    /// panel with its fix).
    sealing: std::sync::OnceLock<Result<sealing::SealingKey, String>>,
    limiter: limiter::LoginLimiter,
    token_limiter: limiter::LoginLimiter,
    passkeys: passkeys::Passkeys,
    /// Cancelled when the panel shuts down: long-lived streams end then,
    /// so a graceful shutdown does not wait for them forever.
    shutdown: CancellationToken,
}

/// The panel's background work: job workers, reconciler, poller and
/// schedulers, until [`Background::stop`].
#[derive(Debug)]
pub struct Background {
    app: App,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    workers: Vec<tokio::task::JoinHandle<()>>,
    /// Writes the servers' history; waited for at the end (its last
    /// minute), not aborted.
    history_writer: tokio::task::JoinHandle<()>,
    /// The panel's lock on its state root, released once stopped.
    _lock: std::fs::File,
}

impl App {
    /// The panel on existing parts, with nothing running in the
    /// background (tests of single operations).
    pub fn new(config: Config, store: Store, host: Arc<Host>, jobs: Jobs, live: Arc<Live>) -> Self {
        let board = board::Board::new(
            store.clone(),
            Arc::clone(&host),
            Arc::clone(jobs.installer()),
        );
        Self(Arc::new(Inner {
            passkeys: passkeys::Passkeys::new(&config),
            config,
            store,
            host,
            jobs,
            live,
            board,
            sessions: memo::Memo::default(),
            tokens: memo::Memo::default(),
            sealing: std::sync::OnceLock::new(),
            limiter: limiter::LoginLimiter::default(),
            token_limiter: limiter::LoginLimiter::default(),
            shutdown: CancellationToken::new(),
        }))
    }

    /// Opens the database (migrations applied) and the state root, marks
    /// jobs a previous run left running as interrupted, removes what
    /// killed builds left, and starts the background work.
    pub async fn start(config: Config, launch: Launch) -> Result<(Self, Background), LaunchError> {
        let host = Arc::new(Host::open(
            &config.root,
            config.supervisor(&launch.supervisor_program),
        )?);
        let lock = left4me_host::lock::lock_panel(host.root())
            .map_err(|error| {
                LaunchError::Host(left4me_host::lifecycle::HostError::Io {
                    context: "taking the panel's lock".into(),
                    error,
                })
            })?
            .ok_or_else(|| LaunchError::AlreadyRunning(config.root.clone()))?;
        let store = open_store(&config).await?;
        let database = |error| LaunchError::Database {
            path: config.database_path(),
            error,
        };
        job_control::undo_cancelled_starts(&store)
            .await
            .map_err(database)?;
        let interrupted = store.interrupt_running_jobs().await.map_err(database)?;
        if interrupted > 0 {
            tracing::warn!(
                "{interrupted} job(s) were running when the panel last stopped; marked interrupted"
            );
        }
        if config.game_check_interval_secs != Config::default().game_check_interval_secs {
            tracing::warn!(
                "game_check_interval_secs is no longer read: the built-in schedule \
                 \"Check for game updates\" on the Schedules page says when the panel checks"
            );
        }
        let installer: Arc<dyn left4me_host::game::Installer> =
            Arc::from(config.installer().map_err(LaunchError::Game)?);
        if let Err(e) = installer.clear_interrupted() {
            tracing::warn!("removing what an interrupted game install left: {e}");
        }
        // No build runs yet: what builds that died with the panel left goes.
        if let Err(e) = left4me_host::scripts::clean_leftovers(host.root()) {
            tracing::warn!("removing what earlier script builds left: {e}");
        }
        // Nor a backup: the database copy of one killed mid-way (it holds
        // every secret the database does) goes too.
        let staging = backups::Backups::staging(host.root().path());
        if let Err(e) = left4me_host::fsutil::remove_dir_all_if_exists(&staging) {
            tracing::warn!("removing {}: {e}", staging.display());
        }
        let jobs = runner_for(&config, &store, &host, installer, launch.ready_timeout)
            .map_err(LaunchError::Workshop)?;
        let app = Self::new(config, store, host, jobs, launch.live);
        let key = sealing::SealingKey::load(&app.config().root)?;
        let _ = app.0.sealing.set(Ok(key));
        match ops::second_factor::keys_that_do_not_open(&app).await {
            Ok(0) => {}
            Ok(n) => tracing::error!(
                "the authenticator keys of {n} user(s) do not open with this panel's sealing key: \
                 their codes are refused until the secrets.key that sealed them is back \
                 (recovery codes and passkeys still sign them in)"
            ),
            Err(e) => tracing::warn!("checking the sealed authenticator keys: {e}"),
        }
        // Before the reconciler: it would start the restored servers
        // before the game is back.
        restore::resume(app.store(), app.host(), app.jobs())
            .await
            .map_err(LaunchError::Resume)?;
        let background = app.spawn_background(lock);
        Ok((app, background))
    }

    fn spawn_background(&self, lock: std::fs::File) -> Background {
        let (config, store, host, jobs, live) = (
            self.config(),
            self.store(),
            self.host(),
            self.jobs(),
            &self.0.live,
        );
        let stopping = self.shutdown();
        let workers = jobs.spawn_workers(config.workers);
        let history = Arc::new(history::History::default());
        let history_writer = Arc::clone(&history).spawn_writer(
            store.clone(),
            Duration::from_secs(config.history_write_secs.max(1)),
            stopping.clone(),
        );
        let tick = Duration::from_secs(config.poll_interval_secs);
        let mut tasks = vec![
            reconciler::Reconciler::new(
                store.clone(),
                Arc::clone(host),
                jobs.clone(),
                Arc::clone(live),
            )
            .spawn(
                Duration::from_secs(config.reconcile_interval_secs),
                stopping.clone(),
            ),
            live::Poller {
                store: store.clone(),
                host: Arc::clone(host),
                live: Arc::clone(live),
                history_secs: i64::try_from(config.player_history_days)
                    .unwrap_or(i64::MAX / 86_400)
                    .saturating_mul(86_400),
                last_prune: Arc::default(),
                history: Arc::clone(&history),
            }
            .spawn(tick, stopping.clone()),
        ];
        if config.auto_update {
            tasks.push(
                game::Scheduler {
                    store: store.clone(),
                    jobs: jobs.clone(),
                    live: Arc::clone(live),
                    tick,
                }
                .spawn(stopping.clone()),
            );
        }
        tasks.push(spawn_disk_measure(
            Arc::clone(host),
            Arc::clone(self.metrics()),
            stopping.clone(),
        ));
        tasks.push(
            ops::schedule_runs::Scheduler {
                app: self.clone(),
                tick,
            }
            .spawn(stopping.clone()),
        );
        Background {
            app: self.clone(),
            tasks,
            workers,
            history_writer,
            _lock: lock,
        }
    }

    pub fn metrics(&self) -> &Arc<metrics::Metrics> {
        self.jobs().metrics()
    }

    pub fn config(&self) -> &Config {
        &self.0.config
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    pub fn host(&self) -> &Arc<Host> {
        &self.0.host
    }

    pub fn jobs(&self) -> &Jobs {
        &self.0.jobs
    }

    pub fn live(&self) -> &Live {
        &self.0.live
    }

    /// Every server's state, kept in memory for the lists.
    pub fn board(&self) -> &board::Board {
        &self.0.board
    }

    /// Sessions read for the current store generation.
    pub fn session_memo(&self) -> &memo::Memo<ops::sessions::SignedIn> {
        &self.0.sessions
    }

    /// API tokens read for the current store generation.
    pub fn token_memo(&self) -> &memo::Memo<(left4me_store::User, left4me_store::ApiToken, bool)> {
        &self.0.tokens
    }

    /// The key second factors are sealed with.
    pub fn sealing_key(&self) -> error::OpResult<&sealing::SealingKey> {
        self.0
            .sealing
            .get_or_init(|| {
                sealing::SealingKey::load(&self.config().root).map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| {
                error::OpError::internal(
                    "the key that seals second factors",
                    std::io::Error::other(e.clone()),
                )
            })
    }

    /// The passkey relying party and its ceremonies in flight.
    pub fn passkeys(&self) -> &passkeys::Passkeys {
        &self.0.passkeys
    }

    /// Failed sign-ins, slowing the next tries.
    pub fn limiter(&self) -> &limiter::LoginLimiter {
        &self.0.limiter
    }

    /// Failed API tokens, slowing the next from the same address.
    pub fn token_limiter(&self) -> &limiter::LoginLimiter {
        &self.0.token_limiter
    }

    /// Cancelled when the panel shuts down.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.0.shutdown
    }
}

impl Background {
    /// Ends the background work: running jobs get a few seconds to wind
    /// down (then are marked interrupted; servers keep running), and the
    /// database is closed.
    pub async fn stop(self) {
        self.app.shutdown().cancel();
        for task in &self.tasks {
            task.abort();
        }
        self.app.jobs().shutdown(Duration::from_secs(5)).await;
        for worker in &self.workers {
            worker.abort();
        }
        if tokio::time::timeout(Duration::from_secs(5), self.history_writer)
            .await
            .is_err()
        {
            tracing::warn!("the servers' last minute of history was not written in time");
        }
        self.app.store().close().await;
    }
}

/// Measures the disk use below the state root for the metrics: at start,
/// then every five minutes (walking the game's layers takes a moment).
fn spawn_disk_measure(
    host: Arc<Host>,
    metrics: Arc<metrics::Metrics>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let root = host.root().clone();
            match tokio::task::spawn_blocking(move || metrics::measure_disk(&root)).await {
                Ok(Ok(sample)) => metrics.set_disk(sample),
                Ok(Err(e)) => tracing::warn!("measuring the disk use for the metrics: {e}"),
                Err(e) => tracing::warn!("measuring the disk use for the metrics: {e}"),
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(300)) => {}
                () = stop.cancelled() => return,
            }
        }
    })
}

/// The job runner for `config`: its Workshop client and script sandbox
/// come from the configuration. `Err` says what in it is wrong.
fn runner_for(
    config: &Config,
    store: &Store,
    host: &Arc<Host>,
    installer: Arc<dyn left4me_host::game::Installer>,
    ready_timeout: Duration,
) -> Result<Jobs, String> {
    Ok(Jobs::new(
        store.clone(),
        Arc::clone(host),
        installer,
        workshop::Workshop::new(config)?,
        scripts::ScriptBuilder::new(config),
        backups::Backups::new(config),
        ready_timeout,
    ))
}

/// A host for unit tests that never reach a game process: the built-in
/// supervisor with a program that does not exist.
#[doc(hidden)]
pub fn test_host(root: &std::path::Path) -> Arc<Host> {
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
#[doc(hidden)]
pub fn test_jobs(store: &Store, root: &std::path::Path) -> (Arc<Host>, Jobs) {
    let host = test_host(root);
    let config = Config {
        root: root.to_owned(),
        steamcmd: "/nonexistent/steamcmd".into(),
        ..Config::default()
    };
    let installer = Arc::new(config.game().expect("a test state root"));
    let jobs = runner_for(&config, store, &host, installer, Duration::from_secs(1))
        .expect("the default Steam API settings");
    (host, jobs)
}
