//! left4me's database: SQLite through sqlx with runtime queries, WAL, a busy
//! timeout and migrations embedded in the binary. Only the panel process
//! writes it.

mod activity;
mod backups;
mod blueprints;
mod history;
mod jobs;
mod members;
mod overlays;
mod passkeys;
mod schedules;
mod scripts;
mod second_factor;
mod secret;
mod servers;
mod sessions;
mod sessions_played;
mod settings;
mod setup;
mod sharing;
mod tokens;
mod users;
mod workshop;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use activity::{Activity, ActivityFilter, ConsoleCommand};
pub use backups::{Backup, Holdings, NewBackup, RESTORED_FROM};
pub use blueprints::{Blueprint, BlueprintOverlay, ListedBlueprint};
pub use history::{HistoryPoint, MAX_ROWS_PER_SERVER, Observed, TIERS, Tier};
pub use jobs::{CancelRequest, Job, JobFilter, JobState, LogLine, NewJob, SHARED};
pub use members::{ServerMember, ServerRole};
pub use overlays::{ListedOverlay, Overlay, OverlayKind};
pub use passkeys::PasskeyRecord;
pub use schedules::{Schedule, ScheduleSettings};
pub use scripts::{OverlayScript, ScriptEdit, ScriptRun};
pub use second_factor::TotpRecord;
pub use secret::Secret;
pub use servers::{DesiredState, ListedServer, NewServer, Server, ServerChange};
pub use sessions::{NewSessionRow, Session};
pub use sessions_played::PlayerSession;
pub use sharing::SharedItem;
pub use tokens::{ApiToken, NewApiToken};
pub use users::User;
pub use workshop::{WorkshopItem, WorkshopSource};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The change conflicts with existing data; the text says how.
    #[error("{0}")]
    Conflict(String),
    #[error("not found")]
    NotFound,
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Unix seconds now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Whose eyes a list is for: admins see everything, everyone else what
/// they own and what is shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Viewer {
    pub user_id: i64,
    pub is_admin: bool,
}

/// "blueprint Coop" or "blueprints Coop, Versus", for conflict messages.
fn names_list(noun: &str, names: &[String]) -> String {
    format!(
        "{noun}{} {}",
        if names.len() == 1 { "" } else { "s" },
        names.join(", ")
    )
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

/// The database handle; cheap to clone.
/// The schema changes, embedded in the binary and applied on open.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    changes: Changes,
}

/// Counts committed changes, so the panel can keep views in memory and
/// know when they are out of date (see [`Store::generation`]).
#[derive(Debug, Clone, Default)]
struct Changes(Arc<AtomicU64>);

impl Changes {
    fn bump(&self) {
        self.0.fetch_add(1, Ordering::Release);
    }
}

impl Store {
    /// A transaction that reads and then writes. `BEGIN IMMEDIATE` takes
    /// the write lock up front, so a concurrent writer makes it wait (busy
    /// timeout); a deferred one would fail with "database is locked" when
    /// it upgrades from reading to writing.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Opens (creating if missing) the database at `path` and applies the
    /// embedded migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self {
            pool,
            changes: Changes::default(),
        })
    }

    /// Goes up after every committed change, counted once the change is
    /// visible to new reads: a view built after reading generation `g`
    /// holds every change up to `g`. The poller's and the runner's
    /// bookkeeping (job progress and log lines, a build's Workshop items,
    /// players' sessions, a token's last use) does not count: no view
    /// kept in memory shows it.
    pub fn generation(&self) -> u64 {
        self.changes.0.load(Ordering::Acquire)
    }

    fn changed(&self) {
        self.changes.bump();
    }

    /// A consistent copy of the database at `path`, taken while the panel
    /// runs: SQLite's `VACUUM INTO` reads one snapshot of the database
    /// (commits meanwhile are in the copy whole or not at all). Written
    /// beside `path` and renamed into place, so `path` is never half a
    /// copy.
    pub async fn copy_to(&self, path: &Path) -> Result<()> {
        let partial = path.with_extension("partial");
        let io = |context: String| move |source| StoreError::Io { context, source };
        match std::fs::remove_file(&partial) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io(format!("removing {}", partial.display()))(e));
            }
            _ => {}
        }
        sqlx::query("VACUUM INTO ?")
            .bind(partial.to_string_lossy().into_owned())
            .execute(&self.pool)
            .await?;
        std::fs::rename(&partial, path)
            .map_err(io(format!("moving the copy to {}", path.display())))
    }

    /// The newest migration this build carries.
    pub fn newest_migration() -> i64 {
        MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
    }

    /// The newest migration applied to this database.
    pub async fn schema_version(&self) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// A trivial query, for health checks.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A write transaction: the changes of one operation and its line in
    /// the activity log commit together or not at all.
    pub async fn write(&self) -> Result<Write> {
        Ok(Write {
            tx: self.begin_write().await?,
            changes: self.changes.clone(),
        })
    }
}

/// An open write transaction (`BEGIN IMMEDIATE`). Dropped without
/// [`Write::commit`], nothing of it is kept.
#[derive(Debug)]
pub struct Write {
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    changes: Changes,
}

impl Write {
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        self.changes.bump();
        Ok(())
    }
}
