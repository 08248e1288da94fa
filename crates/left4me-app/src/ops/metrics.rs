//! The panel's metrics for Prometheus: on their own listen address
//! (`metrics_listen`, no sign-in: keep it on a private address), or on
//! the panel's own at `/metrics` for an admin's token with the read scope
//! (`metrics_on_panel`).

use crate::App;
use crate::actor::{Actor, Scope};
use crate::error::{OpError, OpResult};
use crate::metrics::{PanelSample, ServerSample};
use crate::runner::JobKind;

/// The metrics, for the metrics listener (no caller to check).
pub async fn scrape(app: &App) -> OpResult<String> {
    let servers = app.store().servers(None).await?;
    let (live, processes) = app.live().all();
    let samples: Vec<ServerSample<'_>> = servers
        .iter()
        .map(|s| ServerSample {
            name: &s.name,
            wanted: s.desired_state == left4me_store::DesiredState::Running,
            live: live.get(&s.id),
            process: processes.get(&s.id),
        })
        .collect();
    let store = app.store();
    let backup = store
        .newest_concluded_job(JobKind::PanelBackup.as_str())
        .await?;
    let check = store
        .newest_concluded_job(JobKind::BackupCheck.as_str())
        .await?;
    let failed = |job: &Option<left4me_store::Job>| {
        job.as_ref()
            .is_some_and(|j| j.state == left4me_store::JobState::Failed)
    };
    let sample = PanelSample {
        poller_last_cycle: app.live().last_cycle_at(),
        last_success: store.backups(1).await?.first().map(|b| b.finished_at),
        last_failed: failed(&backup),
        last_check_failed: failed(&check),
    };
    Ok(app.metrics().render(&samples, sample))
}

/// The metrics on the panel's own address: an admin's token (or session)
/// with the read scope, when the configuration lets them out there.
pub async fn scrape_as(app: &App, actor: &Actor) -> OpResult<String> {
    if !app.config().metrics_on_panel {
        return Err(OpError::NotFoundBecause(
            "metrics are not served here: set metrics_on_panel, or metrics_listen for an address of their own"
                .into(),
        ));
    }
    // An admin's read-only token is enough (Prometheus keeps it in its
    // configuration); one limited to some servers would see them all.
    if !actor.user.is_admin || actor.limited_to_servers() {
        return Err(OpError::Forbidden(
            "Only admins read the metrics, with a token not limited to some servers.".into(),
        ));
    }
    actor.require(Scope::Read)?;
    scrape(app).await
}
