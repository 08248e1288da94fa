//! Jobs from the command line while the panel is stopped: which are still
//! queued or running, and a Cancel the panel honours when it starts (a
//! queued job ends at once; a running one ends as cancelled, not
//! interrupted, and a start is undone: its server is wanted stopped).
//!
//! Only with the panel stopped: a running panel holds its jobs' tokens in
//! memory and is asked through its pages or API instead.

use std::path::PathBuf;

use left4me_host::layout::StateRoot;
use left4me_store::{CancelRequest, DesiredState, Job, JobState, Store, StoreError};

use crate::runner::{Actor, JobKind, job_label};

#[derive(Debug, thiserror::Error)]
pub enum JobControlError {
    #[error(
        "the panel is running on the state root {0}: cancel the job on its page (/jobs/ID) or with POST /api/v1/jobs/ID/cancel"
    )]
    PanelRunning(PathBuf),
    #[error("there is no job #{0}")]
    NotFound(i64),
    #[error("taking the panel's lock: {0}")]
    Lock(#[source] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The jobs still queued or running (for a stopped panel: running when it
/// stopped), oldest first.
pub async fn unfinished(store: &Store) -> Result<Vec<Job>, StoreError> {
    store.active_jobs().await
}

/// Cancels job `id` while the panel is stopped (its lock is held
/// meanwhile, so a panel starting now waits for none of this). What the
/// Cancel did: `Dequeued`, `Asked` (honoured when the panel starts) or
/// `Finished` (nothing to do).
pub async fn cancel_while_stopped(
    root: &StateRoot,
    store: &Store,
    id: i64,
) -> Result<(CancelRequest, Job), JobControlError> {
    let _lock = left4me_host::lock::lock_panel(root)
        .map_err(JobControlError::Lock)?
        .ok_or_else(|| JobControlError::PanelRunning(root.path().to_owned()))?;
    let job = match store.job(id).await {
        Err(StoreError::NotFound) => return Err(JobControlError::NotFound(id)),
        other => other?,
    };
    let mut write = store.write().await?;
    let request = write.request_cancel(id).await?;
    if request != CancelRequest::Finished {
        let actor = Actor::CommandLine;
        let detail = format!(
            "cancelled job #{id} ({}, {})",
            job_label(&job.kind),
            job.subject
        );
        write
            .record_activity(
                actor.id(),
                actor.name(),
                job.server_id,
                "job.cancel",
                &detail,
            )
            .await?;
    }
    write.commit().await?;
    Ok((request, store.job(id).await?))
}

/// At the panel's start, before running jobs are marked: a start asked to
/// stop before the panel did is undone as its job would have undone it,
/// its server wanted stopped (the reconciler then stops it if it runs).
pub(crate) async fn undo_cancelled_starts(store: &Store) -> Result<usize, StoreError> {
    let starts: Vec<Job> = store
        .active_jobs()
        .await?
        .into_iter()
        .filter(|j| {
            j.state == JobState::Running
                && j.cancel_requested_at.is_some()
                && j.kind == JobKind::ServerStart.as_str()
        })
        .collect();
    for job in &starts {
        let Some(server) = job.server_id else {
            continue;
        };
        store
            .set_desired_state(server, DesiredState::Stopped)
            .await?;
        let detail = format!(
            "the start of {} (job #{}) was cancelled before the panel stopped: it is wanted stopped",
            job.subject, job.id
        );
        store
            .record_activity(None, Some(server), "job.cancel", &detail)
            .await?;
    }
    Ok(starts.len())
}
