//! Backups of the panel (admins): taken now or by a schedule, listed with
//! what each took.

use left4me_store::{Backup, Job};

use crate::App;
use crate::actor::{Actor, Scope};
use crate::error::{OpError, OpResult};
use crate::ops::access::{self, ServerAction};
use crate::runner::JobKind;

/// The backups and where they go.
#[derive(Debug, Clone)]
pub struct BackupsView {
    /// The restic repository.
    pub repository: String,
    /// The file with its password (keep a copy apart).
    pub password_file: String,
    /// Newest first.
    pub backups: Vec<Backup>,
    /// The last backup or check, if it failed: said loudly.
    pub last_failed: Option<Job>,
}

/// How many backups the list shows.
const LISTED: i64 = 100;

pub async fn list(app: &App, actor: &Actor) -> OpResult<BackupsView> {
    access::admin(actor, "see the backups")?;
    actor.require(Scope::Read)?;
    let config = app.config();
    Ok(BackupsView {
        repository: config.backup_repository(),
        password_file: config.backup_password_file().display().to_string(),
        backups: app.store().backups(LISTED).await?,
        last_failed: last_failed(app).await?,
    })
}

/// The newest backup or check of the backups, if it failed.
pub(crate) async fn last_failed(app: &App) -> OpResult<Option<Job>> {
    let kinds = [JobKind::PanelBackup.as_str(), JobKind::BackupCheck.as_str()];
    Ok(app
        .store()
        .newest_job_of_kinds(kinds)
        .await?
        .filter(|j| j.state == left4me_store::JobState::Failed))
}

/// Queues a backup now (one that is queued already is reused).
pub async fn back_up(app: &App, actor: &Actor) -> OpResult<Job> {
    access::admin(actor, "back up the panel")?;
    Ok(app
        .jobs()
        .enqueue_panel(JobKind::PanelBackup, actor.requester())
        .await?)
}

/// Queues a check of the backup repository.
pub async fn check(app: &App, actor: &Actor) -> OpResult<Job> {
    access::admin(actor, "check the backups")?;
    Ok(app
        .jobs()
        .enqueue_panel(JobKind::BackupCheck, actor.requester())
        .await?)
}

/// Admins: puts a stopped server's own state (its writable layer: bans,
/// admin lists, saved files) back as the backup `backup_id` holds it.
pub async fn restore_server(
    app: &App,
    actor: &Actor,
    server_id: i64,
    backup_id: i64,
) -> OpResult<Job> {
    access::admin(actor, "restore from backups")?;
    let server = access::server(app, actor, server_id, ServerAction::Manage)
        .await?
        .server;
    let backup = app.store().backup(backup_id).await?;
    if server.desired_state == left4me_store::DesiredState::Running {
        return Err(OpError::conflict(format!(
            "Stop {} first: its state is replaced while it is stopped.",
            server.name
        )));
    }
    Ok(app
        .jobs()
        .enqueue_restore(actor.requester(), &server, &backup.snapshot_id)
        .await?)
}

/// Admins: puts a files overlay's own files back as the backup
/// `backup_id` holds them (Workshop and script overlays are built again
/// instead). Servers take them at their next start.
pub async fn restore_overlay(
    app: &App,
    actor: &Actor,
    overlay_id: i64,
    backup_id: i64,
) -> OpResult<Job> {
    access::admin(actor, "restore from backups")?;
    let overlay = access::overlay(app, actor, overlay_id, access::ItemAccess::Change).await?;
    if overlay.kind != left4me_store::OverlayKind::Files {
        return Err(OpError::conflict(
            "Only a files overlay comes back from a backup: Workshop and script overlays are \
             built again from their items and scripts (Refresh, Rebuild).",
        ));
    }
    let backup = app.store().backup(backup_id).await?;
    Ok(app
        .jobs()
        .enqueue_overlay_restore(actor.requester(), &overlay, &backup.snapshot_id)
        .await?)
}
