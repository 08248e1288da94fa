//! A whole panel put back from a backup on a new host (`left4me
//! restore`), and what its first start then does: the game installed
//! from Steam again, the built overlays rebuilt, and the servers that
//! were running started once both are there.
//!
//! The restore works with the panel stopped (it holds the panel's lock),
//! restores the snapshot beside the state root, readies the database
//! copy, and moves each part in place, the database last: a restore
//! that dies midway is simply run again. Whatever it replaces that holds
//! something (an earlier panel's database, files) is moved aside, never
//! deleted.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use left4me_config::Config;
use left4me_host::backup::{BackupError, Snapshot};
use left4me_host::events::{CancellationToken, Ctx, discard};
use left4me_host::layout::StateRoot;
use left4me_host::lifecycle::Host;
use left4me_store::{
    DesiredState, Holdings, JobState, OverlayKind, RESTORED_FROM, Store, StoreError,
};

use crate::backups::Backups;
use crate::runner::{Actor, JobKind, Jobs};

/// The tag every panel backup carries.
pub const TAG: &str = "left4me";

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(
        "the panel (or another `left4me restore`) is running on {0}: stop it first (`systemctl stop left4me`, or end `left4me serve`)"
    )]
    PanelRunning(PathBuf),
    #[error(
        "this panel already holds {users} user(s) and {servers} server(s); `left4me restore --replace` moves what is here aside into {aside}/replaced-TIME and restores over it"
    )]
    NotEmpty {
        users: i64,
        servers: i64,
        aside: PathBuf,
    },
    #[error(
        "this panel was restored from backup {0}: start it (`systemctl start left4me`), and it brings back the game and the built overlays; `--replace` restores over it again"
    )]
    AlreadyRestored(String),
    #[error(
        "game servers of this panel are still mounted ({0}): stop them first (`systemctl stop 'left4me-server@*'`, or `left4me instance stop NAME`)"
    )]
    ServersRunning(String),
    #[error(
        "the backup repository's password file {0} is missing: put the copy you kept there (readable by the panel's user only)"
    )]
    NoPassword(PathBuf),
    #[error("the repository {0} holds no backup of a panel")]
    NoBackups(String),
    #[error("the repository holds no backup {wanted}; it has {have}")]
    UnknownSnapshot { wanted: String, have: String },
    #[error("snapshot {0} is not a backup of a panel: it holds no copy of a database")]
    NotAPanel(String),
    #[error(transparent)]
    Backup(#[from] BackupError),
    #[error("the database {path}: {error}")]
    Store { path: PathBuf, error: StoreError },
    #[error("{what}: {error}")]
    Io { what: String, error: std::io::Error },
}

impl RestoreError {
    /// Whether the restore was refused as asked (the admin has something
    /// to do first), rather than failing.
    pub fn is_refusal(&self) -> bool {
        !matches!(self, Self::Backup(_) | Self::Store { .. } | Self::Io { .. })
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RestoreError {
    let what = what.into();
    move |error| RestoreError::Io { what, error }
}

fn store_error(path: &Path) -> impl FnOnce(StoreError) -> RestoreError + '_ {
    move |error| RestoreError::Store {
        path: path.to_owned(),
        error,
    }
}

/// What `left4me restore` is asked.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// A snapshot's id or its start; the newest panel backup when `None`.
    pub snapshot: Option<String>,
    /// Restore over a panel that has users (moved aside first).
    pub replace: bool,
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct Restored {
    pub snapshot: Snapshot,
    pub holdings: Holdings,
    /// Where what the restore replaced went, if it held anything.
    pub aside: Option<PathBuf>,
    /// The old host's configuration file, if the backup holds it: put
    /// beside the state root's backups for the admin to compare, since
    /// this host's may rightly differ.
    pub config_file: Option<PathBuf>,
}

/// The panel backups in the repository, oldest first.
pub fn panel_snapshots(backups: &Backups) -> Result<Vec<Snapshot>, RestoreError> {
    let cancel = CancellationToken::new();
    let ctx = Ctx::new(&discard, &cancel);
    if !backups.restic.password_file.exists() {
        return Err(RestoreError::NoPassword(
            backups.restic.password_file.clone(),
        ));
    }
    let mut snapshots = backups.restic.snapshots(&ctx)?;
    snapshots.retain(|s| s.tags.iter().any(|t| t == TAG));
    Ok(snapshots)
}

/// Puts the panel of the snapshot `request` names back on this host; see
/// the module's description. `say` hears each step.
pub async fn restore_panel(
    config: &Config,
    request: &Request,
    say: impl Fn(&str),
) -> Result<Restored, RestoreError> {
    let root = StateRoot::open(&config.root).map_err(io(format!(
        "opening the state root {}",
        config.root.display()
    )))?;
    let _lock = left4me_host::lock::lock_panel(&root)
        .map_err(io("taking the panel's lock"))?
        .ok_or_else(|| RestoreError::PanelRunning(root.path().to_owned()))?;
    let mounted = left4me_host::mount::mounts_below(&root.runtime())
        .map_err(|e| io("reading the mounts")(std::io::Error::other(e.to_string())))?;
    if !mounted.is_empty() {
        let names: Vec<String> = mounted.iter().map(|p| p.display().to_string()).collect();
        return Err(RestoreError::ServersRunning(names.join(", ")));
    }
    let aside = root.path().join(format!(
        "backups/replaced-{}",
        jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ")
    ));
    let database = config.database_path();
    let (current, restored_from) = current_holdings(&database).await?;
    if !request.replace {
        if let Some(snapshot) = restored_from {
            return Err(RestoreError::AlreadyRestored(snapshot));
        }
        if !current.is_empty() {
            return Err(RestoreError::NotEmpty {
                users: current.users,
                servers: current.servers,
                aside: root.path().join("backups"),
            });
        }
    }

    let backups = Backups::new(config);
    let snapshots = panel_snapshots(&backups)?;
    let snapshot = choose(&snapshots, request.snapshot.as_deref())
        .ok_or_else(|| match &request.snapshot {
            None => RestoreError::NoBackups(backups.restic.repository.clone()),
            Some(wanted) => RestoreError::UnknownSnapshot {
                wanted: wanted.clone(),
                have: snapshots
                    .iter()
                    .map(|s| format!("{} ({})", s.short_id, s.time))
                    .collect::<Vec<_>>()
                    .join(", "),
            },
        })?
        .clone();
    let old_root = snapshot
        .paths
        .iter()
        .map(Path::new)
        .find(|p| p.ends_with("backups/staging"))
        .and_then(|p| p.parent()?.parent())
        .ok_or_else(|| RestoreError::NotAPanel(snapshot.short_id.clone()))?
        .to_owned();

    let staging = root.path().join("backups/restore-panel");
    say(&format!(
        "restoring backup {} of {} from {}",
        snapshot.short_id, snapshot.time, backups.restic.repository
    ));
    let (restic, target, id) = (backups.restic.clone(), staging.clone(), snapshot.id.clone());
    tokio::task::spawn_blocking(move || -> Result<(), RestoreError> {
        left4me_host::fsutil::remove_dir_all_if_exists(&target)
            .map_err(io(format!("removing {}", target.display())))?;
        let cancel = CancellationToken::new();
        let ctx = Ctx::new(&discard, &cancel);
        restic.unlock(&ctx)?;
        restic.restore(&id, &target, &[], &ctx)?;
        Ok(())
    })
    .await
    .map_err(|e| io("the restore's thread")(std::io::Error::other(e.to_string())))??;
    let restored = staging.join(old_root.strip_prefix("/").unwrap_or(&old_root));
    let copy = restored.join("backups/staging/left4me.db");
    if !copy.is_file() {
        return Err(RestoreError::NotAPanel(snapshot.short_id.clone()));
    }

    say("readying the database for this host");
    let store = Store::open(&copy).await.map_err(store_error(&copy))?;
    let holdings = store.prepare_restored(&snapshot.id).await;
    store.close().await;
    let holdings = holdings.map_err(store_error(&copy))?;

    let mut moved_aside = false;
    // Built overlays are not in backups: whatever versions are here belong
    // to what is replaced, and go aside with it (the restored panel builds
    // its own).
    for part in ["overlays", "instances", "runtime", "overlay-versions"] {
        say(&format!("putting {part} in place"));
        let target = root.path().join(part);
        moved_aside |= put_in_place(&target, &restored.join(part), &aside)?;
    }
    let config_copy = restored.join("backups/staging").join(Backups::CONFIG_COPY);
    let config_file = if config_copy.is_file() {
        let kept = root.path().join("backups/restored-left4me.toml");
        std::fs::rename(&config_copy, &kept).map_err(io(format!(
            "moving the configuration to {}",
            kept.display()
        )))?;
        Some(kept)
    } else {
        None
    };
    say("putting the database in place");
    moved_aside |= put_database_in_place(&database, &copy, !current.is_empty(), &aside)?;
    left4me_host::fsutil::remove_dir_all_if_exists(&staging)
        .map_err(io(format!("removing {}", staging.display())))?;
    Ok(Restored {
        snapshot,
        holdings,
        aside: moved_aside.then_some(aside),
        config_file,
    })
}

/// What the database here holds (nothing when there is none), and the
/// backup it was restored from if its panel has not started since.
async fn current_holdings(database: &Path) -> Result<(Holdings, Option<String>), RestoreError> {
    if !database.exists() {
        return Ok((Holdings::default(), None));
    }
    let store = Store::open(database).await.map_err(store_error(database))?;
    let read = async {
        Ok::<_, StoreError>((store.holdings().await?, store.setting(RESTORED_FROM).await?))
    }
    .await;
    store.close().await;
    read.map_err(store_error(database))
}

/// The snapshot `wanted` names (an id or its start), or the newest.
fn choose<'a>(snapshots: &'a [Snapshot], wanted: Option<&str>) -> Option<&'a Snapshot> {
    match wanted {
        None => snapshots.last(),
        Some(wanted) => {
            let mut found = snapshots.iter().filter(|s| s.id.starts_with(wanted));
            // An ambiguous start names none.
            match (found.next(), found.next()) {
                (Some(one), None) if !wanted.is_empty() => Some(one),
                _ => None,
            }
        }
    }
}

/// Moves `restored` to `target`; what was at `target` goes into `aside`
/// if it holds anything (says whether it did), else is removed.
fn put_in_place(target: &Path, restored: &Path, aside: &Path) -> Result<bool, RestoreError> {
    let name = target.file_name().unwrap_or_default();
    let mut moved = false;
    if target.exists() {
        let empty = std::fs::read_dir(target)
            .map_err(io(format!("reading {}", target.display())))?
            .next()
            .is_none();
        if empty {
            std::fs::remove_dir(target).map_err(io(format!("removing {}", target.display())))?;
        } else {
            std::fs::create_dir_all(aside).map_err(io(format!("making {}", aside.display())))?;
            std::fs::rename(target, aside.join(name))
                .map_err(io(format!("moving {} aside", target.display())))?;
            moved = true;
        }
    }
    if restored.is_dir() {
        std::fs::rename(restored, target).map_err(io(format!(
            "moving {} to {}",
            restored.display(),
            target.display()
        )))?;
    } else {
        std::fs::create_dir_all(target).map_err(io(format!("making {}", target.display())))?;
    }
    Ok(moved)
}

/// Moves the readied copy to `database`: an existing database with users
/// goes into `aside` with its journal files, one without is removed.
fn put_database_in_place(
    database: &Path,
    copy: &Path,
    keep_current: bool,
    aside: &Path,
) -> Result<bool, RestoreError> {
    let with_suffix = |path: &Path, suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    let mut moved = false;
    for suffix in ["", "-wal", "-shm"] {
        let file = with_suffix(database, suffix);
        if !file.exists() {
            continue;
        }
        if keep_current {
            std::fs::create_dir_all(aside).map_err(io(format!("making {}", aside.display())))?;
            let name = file.file_name().unwrap_or_default();
            std::fs::rename(&file, aside.join(name))
                .map_err(io(format!("moving {} aside", file.display())))?;
            moved = true;
        } else {
            std::fs::remove_file(&file).map_err(io(format!("removing {}", file.display())))?;
        }
    }
    if let Some(dir) = database.parent() {
        std::fs::create_dir_all(dir).map_err(io(format!("making {}", dir.display())))?;
    }
    match std::fs::rename(copy, database) {
        // The database elsewhere than the state root: copied across.
        Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {
            left4me_host::fsutil::copy_atomic(copy, database).map_err(io(format!(
                "copying the database to {}",
                database.display()
            )))
        }
        other => other.map_err(io(format!("moving the database to {}", database.display()))),
    }?;
    Ok(moved)
}

/// The starts after a restore, until it is complete: the game installed
/// if this host has none, each built overlay (Workshop, script) without a
/// version built, and the servers that should run and do not started
/// after both. Runs at every start while the mark is there and queues
/// only what is missing and not already queued or running, so a start
/// that died midway (an install interrupted) is repaired by the next.
/// The mark goes once the game and every built overlay are back (see
/// [`finish_if_done`]).
pub async fn resume(store: &Store, host: &Arc<Host>, jobs: &Jobs) -> Result<(), StoreError> {
    let Some(snapshot) = store.setting(RESTORED_FROM).await? else {
        return Ok(());
    };
    let active = store.active_jobs().await?;
    let missing = missing(store, host).await?;
    let mut said = Vec::new();
    let installing = active
        .iter()
        .any(|j| j.kind == JobKind::GameInstall.as_str());
    if missing.game && !installing {
        jobs.enqueue_game(JobKind::GameInstall, Actor::Restore)
            .await?;
        said.push("the game is installed again".to_owned());
        // Starts queued before this install would not wait for it: they
        // are queued again after it.
        for start in active
            .iter()
            .filter(|j| j.state == JobState::Queued && j.kind == JobKind::ServerStart.as_str())
        {
            let mut write = store.write().await?;
            let request = write.request_cancel(start.id).await?;
            write.commit().await?;
            jobs.cancel_requested(start, request);
        }
    }
    let mut rebuilt = 0;
    for overlay in &missing.overlays {
        let building = active
            .iter()
            .any(|j| j.kind == JobKind::OverlayBuild.as_str() && j.overlay_id == Some(overlay.id));
        if !building {
            jobs.enqueue_build(Actor::Restore, overlay).await?;
            rebuilt += 1;
        }
    }
    if rebuilt > 0 {
        said.push(format!("{rebuilt} overlay(s) are built again"));
    }
    let servers: Vec<_> = store
        .servers(None)
        .await?
        .into_iter()
        .filter(|s| s.desired_state == DesiredState::Running)
        .collect();
    let ids: Vec<i64> = servers.iter().map(|s| s.id).collect();
    let running = crate::spec_builder::ask_host(host, &ids, |host, names| {
        host.process_statuses(names)
            .into_iter()
            .map(|s| s.is_ok_and(|s| s.running))
            .collect::<Vec<bool>>()
    })
    .await
    .map_err(|e| StoreError::Io {
        context: "asking the supervisor which servers run".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    // Queued again above, or still queued: only servers without a job.
    let active = store.active_jobs().await?;
    let mut started = 0;
    for (server, running) in servers.iter().zip(running) {
        if !running && !active.iter().any(|j| j.server_id == Some(server.id)) {
            jobs.enqueue_start_after_game(Actor::Restore, server)
                .await?;
            started += 1;
        }
    }
    if started > 0 {
        said.push(format!("{started} server(s) that were running start then"));
    }
    if !said.is_empty() {
        let detail = format!("panel restored from backup {snapshot}: {}", said.join("; "));
        tracing::info!("{detail}");
        let mut write = store.write().await?;
        write
            .record_activity(None, Actor::Restore.name(), None, "panel.restore", &detail)
            .await?;
        write.commit().await?;
    }
    finish_if_done(store, host).await.map(drop)
}

/// What a restore did not bring back and this host lacks.
struct Missing {
    /// No version of the game is installed.
    game: bool,
    /// Built overlays (Workshop, script) without a version.
    overlays: Vec<left4me_store::Overlay>,
}

async fn missing(store: &Store, host: &Host) -> Result<Missing, StoreError> {
    let root = host.root();
    let mut overlays = Vec::new();
    for kind in [OverlayKind::Workshop, OverlayKind::Script] {
        for overlay in store.overlays_of_kind(kind).await? {
            let path = crate::spec_builder::overlay_path(overlay.id);
            if !matches!(root.overlay_versions(&path).current(), Ok(Some(_))) {
                overlays.push(overlay);
            }
        }
    }
    Ok(Missing {
        game: !matches!(root.installation_versions().current(), Ok(Some(_))),
        overlays,
    })
}

/// Removes the restore's mark once the game is installed and every built
/// overlay has a version again (at start, and at each reconciler pass);
/// says whether it did.
pub async fn finish_if_done(store: &Store, host: &Host) -> Result<bool, StoreError> {
    let Some(snapshot) = store.setting(RESTORED_FROM).await? else {
        return Ok(false);
    };
    let missing = missing(store, host).await?;
    if missing.game || !missing.overlays.is_empty() {
        return Ok(false);
    }
    let mut write = store.write().await?;
    write
        .record_activity(
            None,
            Actor::Restore.name(),
            None,
            "panel.restore",
            &format!("the restore from backup {snapshot} is complete: the game and the built overlays are back"),
        )
        .await?;
    write.clear_restored_from().await?;
    write.commit().await?;
    Ok(true)
}
