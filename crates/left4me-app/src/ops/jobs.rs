//! Jobs as users see them: lists, one job with its log, following a log
//! live, and Cancel. The runner that executes them is [`crate::runner`].

use left4me_store::{Job, JobFilter, JobState, LogLine};
use tokio::sync::{broadcast, mpsc};

use crate::App;
use crate::actor::{Actor, Scope};
use crate::error::OpResult;
use crate::ops::access::{self, ServerAction};
use crate::ops::activity::record;
use crate::runner::{JobEvent, job_label};

/// How many jobs a list shows at most.
const LIST_LIMIT: i64 = 200;

/// The jobs of one server (whoever may see it), or without a server the
/// actor's own (all jobs for admins); newest first. The server's name
/// comes along.
pub async fn list(
    app: &App,
    actor: &Actor,
    server: Option<i64>,
) -> OpResult<(Option<String>, Vec<Job>)> {
    actor.require(Scope::Read)?;
    let (name, filter) = match server {
        Some(id) => {
            let server = access::server(app, actor, id, ServerAction::View)
                .await?
                .server;
            (Some(server.name), JobFilter::Server(id))
        }
        None if actor.is_admin() => (None, JobFilter::All),
        None => (None, JobFilter::User(actor.id())),
    };
    let mut jobs = app.store().jobs(filter, LIST_LIMIT).await?;
    jobs.retain(|j| j.server_id.is_none_or(|s| actor.reaches_server(s)));
    Ok((name, jobs))
}

/// A job, its log so far, and for a queued one the job it waits behind.
#[derive(Debug, Clone)]
pub struct JobDetail {
    pub job: Job,
    pub lines: Vec<LogLine>,
    pub waiting_for: Option<Job>,
}

pub async fn detail(app: &App, actor: &Actor, id: i64) -> OpResult<JobDetail> {
    let job = access::job(app, actor, id).await?;
    let lines = app.store().job_log_after(id, 0).await?;
    let waiting_for = if job.state == JobState::Queued {
        app.store().job_ahead(&job).await?
    } else {
        None
    };
    Ok(JobDetail {
        job,
        lines,
        waiting_for,
    })
}

/// What a Cancel did, with the job as it is now.
#[derive(Debug, Clone)]
pub enum Cancel {
    /// A queued job ended; a running one was asked to stop between steps
    /// (it rolls back what it did).
    Asked(Job),
    /// The job had ended already: nothing to cancel.
    AlreadyFinished(Job),
}

/// Cancels a job `actor` started, or one whose action they may take.
pub async fn cancel(app: &App, actor: &Actor, id: i64) -> OpResult<Cancel> {
    let job = access::cancellable_job(app, actor, id).await?;
    if job.state.is_finished() {
        return Ok(Cancel::AlreadyFinished(job));
    }
    let detail = format!(
        "cancelled job #{id} ({}, {})",
        job_label(&job.kind),
        job.subject
    );
    // The request and its line in one transaction; kept, so a Cancel
    // outlives a panel that stops before the job does.
    let mut write = app.store().write().await?;
    let request = write.request_cancel(id).await?;
    if request == left4me_store::CancelRequest::Finished {
        drop(write);
        return Ok(Cancel::AlreadyFinished(app.store().job(id).await?));
    }
    record(&mut write, actor, job.server_id, "job.cancel", &detail).await?;
    write.commit().await?;
    left4me_host::events::fault_point("cancel-recorded");
    app.jobs().cancel_requested(&job, request);
    Ok(Cancel::Asked(app.store().job(id).await?))
}

/// What a follower of a job's log receives, in order.
#[derive(Debug, Clone)]
pub enum Followed {
    Line(LogLine),
    Progress {
        done: i64,
        total: i64,
    },
    /// The job ended: nothing follows.
    End(JobState),
}

/// Follows a job's log: every line after `after`, then new lines and
/// progress as they come, then its end. Lines arrive once each and in
/// order (a lagging follower catches up from the database). The receiver
/// closes when the job ends, the follower leaves, or the panel stops.
pub async fn follow(
    app: &App,
    actor: &Actor,
    id: i64,
    after: i64,
) -> OpResult<mpsc::Receiver<Followed>> {
    access::job(app, actor, id).await?;
    // Subscribe before reading the backlog, so no line falls between.
    let events = app.jobs().subscribe();
    let (tx, rx) = mpsc::channel(256);
    let app = app.clone();
    tokio::spawn(async move {
        let shutdown = app.shutdown().clone();
        tokio::select! {
            () = relay(&app, id, after, events, &tx) => {}
            () = shutdown.cancelled() => {}
        }
    });
    Ok(rx)
}

async fn relay(
    app: &App,
    id: i64,
    mut last: i64,
    mut events: broadcast::Receiver<JobEvent>,
    tx: &mpsc::Sender<Followed>,
) {
    // Sends every stored line after `last`; false when the follower left.
    async fn catch_up(app: &App, id: i64, last: &mut i64, tx: &mpsc::Sender<Followed>) -> bool {
        let Ok(lines) = app.store().job_log_after(id, *last).await else {
            return false;
        };
        for line in lines {
            let seq = line.seq;
            if tx.send(Followed::Line(line)).await.is_err() {
                return false;
            }
            *last = seq;
        }
        true
    }
    async fn end(app: &App, id: i64, last: &mut i64, tx: &mpsc::Sender<Followed>, state: JobState) {
        if catch_up(app, id, last, tx).await {
            let _ = tx.send(Followed::End(state)).await;
        }
    }

    if !catch_up(app, id, &mut last, tx).await {
        return;
    }
    match app.store().job(id).await {
        Ok(job) if job.state.is_finished() => return end(app, id, &mut last, tx, job.state).await,
        Ok(_) => {}
        Err(_) => return,
    }
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            () = tx.closed() => return,
        };
        match event {
            Ok(JobEvent::Line { job_id, line }) if job_id == id => {
                if line.seq == last + 1 {
                    let seq = line.seq;
                    if tx.send(Followed::Line(line)).await.is_err() {
                        return;
                    }
                    last = seq;
                } else if line.seq > last && !catch_up(app, id, &mut last, tx).await {
                    return;
                }
            }
            Ok(JobEvent::Progress {
                job_id,
                done,
                total,
            }) if job_id == id => {
                if tx.send(Followed::Progress { done, total }).await.is_err() {
                    return;
                }
            }
            Ok(JobEvent::Finished { job_id, state }) if job_id == id => {
                return end(app, id, &mut last, tx, state).await;
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => {
                if !catch_up(app, id, &mut last, tx).await {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
