//! Background jobs: persisted in the database, run by a pool of workers,
//! logged line by line (numbered, so streams can resume), cancellable.
//!
//! Scheduling lives in the store (`claim_next_job`): a job names resource
//! keys (`server:ID`, `install` for the game, `overlay:ID` for a build, and
//! `uses:overlay:ID` shared by starts) and two jobs whose keys conflict
//! never run at once and keep their order.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use left4me_host::events::{CancellationToken, Ctx, Event};
use left4me_host::game::{GameError, Installer, Updated};
use left4me_host::lifecycle::{Host, HostError, StartOutcome};
use left4me_host::spec::Spec;
use left4me_host::supervisor::ProcessStatus;
use left4me_store::{
    CancelRequest, Job, JobState, LogLine, NewJob, Overlay, OverlayKind, Server, Store, Write,
};
use srcds_protocol::a2s::{ReadyWait, Try};
use tokio::sync::{Notify, broadcast, mpsc};

use crate::spec_builder::{ask_host, build_spec, instance_name};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    ServerStart,
    ServerStop,
    ServerRestart,
    ServerReset,
    ServerDelete,
    /// The server's own state put back from a backup (the job's argument
    /// names the snapshot).
    ServerRestore,
    /// A files overlay's working copy put back from a backup (the same).
    OverlayRestore,
    /// The game from Steam: no server, lock `install` (steamcmd cannot
    /// run twice on one installation).
    GameInstall,
    GameUpdate,
    /// An update with steamcmd checking every file.
    GameValidate,
    GameCheck,
    /// A build of a Workshop or script overlay: lock `overlay:ID`.
    OverlayBuild,
    /// A backup of the panel: lock `backup`.
    PanelBackup,
    /// A check of the backup repository: lock `backup`.
    BackupCheck,
}

/// The lock every game job holds: one install, update or check at a time.
pub const INSTALL_LOCK: &str = "install";

/// The lock of a backup: one at a time.
pub const BACKUP_LOCK: &str = "backup";

impl JobKind {
    const ALL: [Self; 14] = [
        Self::ServerStart,
        Self::ServerStop,
        Self::ServerRestart,
        Self::ServerReset,
        Self::ServerDelete,
        Self::ServerRestore,
        Self::OverlayRestore,
        Self::GameInstall,
        Self::GameUpdate,
        Self::GameValidate,
        Self::GameCheck,
        Self::OverlayBuild,
        Self::PanelBackup,
        Self::BackupCheck,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ServerStart => "server.start",
            Self::ServerStop => "server.stop",
            Self::ServerRestart => "server.restart",
            Self::ServerReset => "server.reset",
            Self::ServerDelete => "server.delete",
            Self::ServerRestore => "server.restore",
            Self::OverlayRestore => "overlay.restore",
            Self::GameInstall => "game.install",
            Self::GameUpdate => "game.update",
            Self::GameValidate => "game.validate",
            Self::GameCheck => "game.check",
            Self::OverlayBuild => "overlay.build",
            Self::PanelBackup => "panel.backup",
            Self::BackupCheck => "panel.check_backups",
        }
    }

    /// What the pages call it.
    pub fn label(self) -> &'static str {
        match self {
            Self::ServerStart => "start server",
            Self::ServerStop => "stop server",
            Self::ServerRestart => "restart server",
            Self::ServerReset => "reset server",
            Self::ServerDelete => "delete server",
            Self::ServerRestore => "restore server",
            Self::OverlayRestore => "restore overlay",
            Self::GameInstall => "install the game",
            Self::GameUpdate => "update the game",
            Self::GameValidate => "update and validate the game",
            Self::GameCheck => "check for game updates",
            Self::OverlayBuild => "build overlay",
            Self::PanelBackup => "back up the panel",
            Self::BackupCheck => "check the backups",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }

    /// A job on the game rather than on one server.
    pub fn is_game(self) -> bool {
        matches!(
            self,
            Self::GameInstall | Self::GameUpdate | Self::GameValidate | Self::GameCheck
        )
    }
}

/// What the pages call a job of a stored kind (the kind itself when it
/// is not one of ours).
pub fn job_label(kind: &str) -> String {
    JobKind::parse(kind).map_or_else(|| kind.to_owned(), |k| k.label().to_owned())
}

/// Who asked for a job.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    /// A user (through a session or a token, as `name` says).
    User { id: i64, name: &'a str },
    /// The panel itself, bringing servers back to their desired state.
    Reconciler,
    /// The panel's daily game check and automatic updates.
    Scheduler,
    /// An admin's `left4me` command (no session says who).
    CommandLine,
    /// The first start after `left4me restore`, bringing back what the
    /// backup did not hold.
    Restore,
}

impl Actor<'_> {
    pub fn id(&self) -> Option<i64> {
        match self {
            Self::User { id, .. } => Some(*id),
            Self::Reconciler | Self::Scheduler | Self::CommandLine | Self::Restore => None,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Self::User { name, .. } => name,
            Self::Reconciler => "reconciler",
            Self::Scheduler => "scheduler",
            Self::CommandLine => "command line",
            Self::Restore => "restore",
        }
    }
}

/// What a job is about.
#[derive(Debug, Clone, Copy)]
enum Target<'a> {
    Server(&'a Server),
    Overlay(&'a Overlay),
    Game,
    /// The panel as a whole (a backup).
    Panel,
}

impl Target<'_> {
    fn locks(self) -> Vec<String> {
        vec![match self {
            Self::Server(server) => format!("server:{}", server.id),
            Self::Overlay(overlay) => format!("overlay:{}", overlay.id),
            Self::Game => INSTALL_LOCK.to_owned(),
            Self::Panel => BACKUP_LOCK.to_owned(),
        }]
    }

    fn subject(self) -> String {
        match self {
            Self::Server(server) => format!("server {}", server.name),
            Self::Overlay(overlay) => format!("overlay {}", overlay.name),
            Self::Game => "the game".to_owned(),
            Self::Panel => "the panel".to_owned(),
        }
    }
}

/// What job streams receive.
#[derive(Debug, Clone)]
pub enum JobEvent {
    Line { job_id: i64, line: LogLine },
    Progress { job_id: i64, done: i64, total: i64 },
    Finished { job_id: i64, state: JobState },
}

#[derive(Debug, Clone)]
pub struct Jobs(Arc<Inner>);

/// Cancellation tokens of the jobs being run.
#[derive(Debug, Default)]
struct Running {
    tokens: HashMap<i64, CancellationToken>,
    /// When each began here (for its duration in the metrics).
    began: HashMap<i64, std::time::Instant>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    host: Arc<Host>,
    /// Installs, updates and checks the game (in this process or in
    /// `left4me-game@` units).
    installer: Arc<dyn Installer>,
    workshop: crate::workshop::Workshop,
    scripts: crate::scripts::ScriptBuilder,
    backups: crate::backups::Backups,
    wake: Notify,
    running: Mutex<Running>,
    events: broadcast::Sender<JobEvent>,
    shutdown: CancellationToken,
    /// How long a start waits for the server to answer queries.
    ready_timeout: Duration,
    metrics: Arc<crate::metrics::Metrics>,
}

/// Why a job did not succeed.
#[derive(Debug)]
enum JobError {
    Cancelled,
    Failed(String),
    /// The game was started (or was running) and failed: its console
    /// probably says why, and the job shows its last lines.
    GameFailed(String),
}

impl From<left4me_host::backup::BackupError> for JobError {
    fn from(e: left4me_host::backup::BackupError) -> Self {
        match e {
            left4me_host::backup::BackupError::Cancelled(_) => Self::Cancelled,
            other => Self::Failed(other.to_string()),
        }
    }
}

impl From<GameError> for JobError {
    fn from(e: GameError) -> Self {
        match e {
            GameError::Cancelled(_) => Self::Cancelled,
            other => Self::Failed(other.to_string()),
        }
    }
}

impl From<left4me_workshop::build::BuildError> for JobError {
    fn from(e: left4me_workshop::build::BuildError) -> Self {
        match e {
            left4me_workshop::build::BuildError::Cancelled => Self::Cancelled,
            other => Self::Failed(left4me_workshop::describe(&other)),
        }
    }
}

impl From<left4me_host::scripts::ScriptError> for JobError {
    fn from(e: left4me_host::scripts::ScriptError) -> Self {
        if e.is_cancelled() {
            Self::Cancelled
        } else {
            Self::Failed(e.to_string())
        }
    }
}

impl From<HostError> for JobError {
    fn from(e: HostError) -> Self {
        if e.is_cancelled() {
            Self::Cancelled
        } else if e.concerns_the_game() {
            Self::GameFailed(e.to_string())
        } else {
            Self::Failed(e.to_string())
        }
    }
}

/// Console lines a failed job shows.
const CONSOLE_TAIL: usize = 20;

impl From<left4me_store::StoreError> for JobError {
    fn from(e: left4me_store::StoreError) -> Self {
        Self::Failed(e.to_string())
    }
}

impl Jobs {
    pub fn new(
        store: Store,
        host: Arc<Host>,
        installer: Arc<dyn Installer>,
        workshop: crate::workshop::Workshop,
        scripts: crate::scripts::ScriptBuilder,
        backups: crate::backups::Backups,
        ready_timeout: Duration,
    ) -> Self {
        Self(Arc::new(Inner {
            store,
            host,
            installer,
            workshop,
            scripts,
            backups,
            wake: Notify::new(),
            running: Mutex::new(Running::default()),
            events: broadcast::channel(4096).0,
            shutdown: CancellationToken::new(),
            ready_timeout,
            metrics: Arc::default(),
        }))
    }

    /// The panel's metrics, which count every job as it ends.
    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.0.metrics
    }

    pub fn spawn_workers(&self, count: usize) -> Vec<tokio::task::JoinHandle<()>> {
        (0..count)
            .map(|_| {
                let jobs = self.clone();
                tokio::spawn(async move { jobs.worker().await })
            })
            .collect()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.0.events.subscribe()
    }

    pub fn installer(&self) -> &Arc<dyn Installer> {
        &self.0.installer
    }

    pub fn workshop(&self) -> &crate::workshop::Workshop {
        &self.0.workshop
    }

    /// Queues a job on a server and records it in the activity log.
    pub async fn enqueue(
        &self,
        kind: JobKind,
        actor: Actor<'_>,
        server: &Server,
    ) -> left4me_store::Result<Job> {
        debug_assert!(!kind.is_game(), "{kind:?} takes no server");
        self.queue(kind, actor, Target::Server(server)).await
    }

    /// Queues a job on the game (lock `install`) and records it in the
    /// activity log.
    pub async fn enqueue_game(
        &self,
        kind: JobKind,
        actor: Actor<'_>,
    ) -> left4me_store::Result<Job> {
        debug_assert!(kind.is_game(), "{kind:?} needs a server");
        self.queue(kind, actor, Target::Game).await
    }

    /// Queues putting a server's own state back from the snapshot
    /// `snapshot`.
    pub async fn enqueue_restore(
        &self,
        actor: Actor<'_>,
        server: &Server,
        snapshot: &str,
    ) -> left4me_store::Result<Job> {
        self.queue_restore(
            JobKind::ServerRestore,
            actor,
            Target::Server(server),
            snapshot,
        )
        .await
    }

    /// Queues putting a files overlay's working copy back from the
    /// snapshot `snapshot`.
    pub async fn enqueue_overlay_restore(
        &self,
        actor: Actor<'_>,
        overlay: &Overlay,
        snapshot: &str,
    ) -> left4me_store::Result<Job> {
        self.queue_restore(
            JobKind::OverlayRestore,
            actor,
            Target::Overlay(overlay),
            snapshot,
        )
        .await
    }

    async fn queue_restore(
        &self,
        kind: JobKind,
        actor: Actor<'_>,
        target: Target<'_>,
        snapshot: &str,
    ) -> left4me_store::Result<Job> {
        let write = self.0.store.write().await?;
        self.commit_queued(write, kind, actor, target, &target.locks(), Some(snapshot))
            .await
    }

    /// Queues a backup of the panel or a check of its backups
    /// (`PanelBackup`, `BackupCheck`), or returns the one already queued.
    pub async fn enqueue_panel(
        &self,
        kind: JobKind,
        actor: Actor<'_>,
    ) -> left4me_store::Result<Job> {
        debug_assert!(matches!(kind, JobKind::PanelBackup | JobKind::BackupCheck));
        let mut write = self.0.store.write().await?;
        let locks = Target::Panel.locks();
        if let Some(queued) = write.queued_job(kind.as_str(), &locks).await? {
            write.commit().await?;
            return Ok(queued);
        }
        self.commit_queued(write, kind, actor, Target::Panel, &locks, None)
            .await
    }

    /// Queues a build of an overlay, or returns the one already queued:
    /// what it will build is read when it starts, so one covers both.
    pub async fn enqueue_build(
        &self,
        actor: Actor<'_>,
        overlay: &Overlay,
    ) -> left4me_store::Result<Job> {
        self.queue(JobKind::OverlayBuild, actor, Target::Overlay(overlay))
            .await
    }

    /// Queues a build of `overlay` in `write`, the transaction of the
    /// change it is to build, and commits both: the change is not kept
    /// without its build, nor the build queued without the change.
    pub async fn commit_with_build(
        &self,
        write: Write,
        actor: Actor<'_>,
        overlay: &Overlay,
    ) -> left4me_store::Result<Job> {
        let target = Target::Overlay(overlay);
        self.commit_queued(
            write,
            JobKind::OverlayBuild,
            actor,
            target,
            &target.locks(),
            None,
        )
        .await
    }

    /// Queues a start that also waits for the game jobs queued before it
    /// (after a restore, the game comes back first). Other starts do not
    /// wait for an update: it leaves the versions servers run alone.
    pub async fn enqueue_start_after_game(
        &self,
        actor: Actor<'_>,
        server: &Server,
    ) -> left4me_store::Result<Job> {
        let after_game = format!("{}{INSTALL_LOCK}", left4me_store::SHARED);
        self.queue_with(
            JobKind::ServerStart,
            actor,
            Target::Server(server),
            &[after_game],
        )
        .await
    }

    async fn queue(
        &self,
        kind: JobKind,
        actor: Actor<'_>,
        target: Target<'_>,
    ) -> left4me_store::Result<Job> {
        self.queue_with(kind, actor, target, &[]).await
    }

    /// Queues the job holding its target's locks and `extra`.
    async fn queue_with(
        &self,
        kind: JobKind,
        actor: Actor<'_>,
        target: Target<'_>,
        extra: &[String],
    ) -> left4me_store::Result<Job> {
        let mut locks = target.locks();
        locks.extend_from_slice(extra);
        if let Target::Server(server) = target
            && matches!(kind, JobKind::ServerStart | JobKind::ServerRestart)
        {
            // A start mounts its overlays' current versions: it waits for
            // their builds, and builds wait for it, but starts share them.
            let overlays = self.0.store.blueprint_overlays(server.blueprint_id).await?;
            locks.extend(
                overlays
                    .iter()
                    .map(|o| format!("{}overlay:{}", left4me_store::SHARED, o.overlay_id)),
            );
        }
        let write = self.0.store.write().await?;
        self.commit_queued(write, kind, actor, target, &locks, None)
            .await
    }

    /// Queues the job (holding `locks`) in `write` with its activity
    /// line, commits, and wakes a worker.
    async fn commit_queued(
        &self,
        mut write: Write,
        kind: JobKind,
        actor: Actor<'_>,
        target: Target<'_>,
        locks: &[String],
        argument: Option<&str>,
    ) -> left4me_store::Result<Job> {
        let (server, overlay) = match target {
            Target::Server(server) => (Some(server), None),
            Target::Overlay(overlay) => (None, Some(overlay)),
            Target::Game | Target::Panel => (None, None),
        };
        let subject = target.subject();
        // One transaction: the job and its activity line, and a build
        // joins the one queued (what it builds is read when it starts).
        if let Target::Overlay(_) = target
            && let Some(queued) = write.queued_job(kind.as_str(), locks).await?
        {
            write.commit().await?;
            return Ok(queued);
        }
        let job = write
            .create_job(&NewJob {
                kind: kind.as_str(),
                user_id: actor.id(),
                username: actor.name(),
                server_id: server.map(|s| s.id),
                overlay_id: overlay.map(|o| o.id),
                subject: &subject,
                locks,
                argument,
            })
            .await?;
        let detail = match target {
            // "restart server alpha": the label says "restart server".
            Target::Server(server) => format!("{} {} (job #{})", kind.label(), server.name, job.id),
            Target::Overlay(overlay) => {
                format!("{} {} (job #{})", kind.label(), overlay.name, job.id)
            }
            Target::Game | Target::Panel => format!("{} (job #{})", kind.label(), job.id),
        };
        write
            .record_activity(
                actor.id(),
                actor.name(),
                server.map(|s| s.id),
                kind.as_str(),
                &detail,
            )
            .await?;
        write.commit().await?;
        self.0.wake.notify_waiters();
        Ok(job)
    }

    /// Cancels a queued job, or asks a running one to stop between steps
    /// (it rolls back what it did).
    pub async fn cancel(&self, job: &Job) -> left4me_store::Result<()> {
        let mut write = self.0.store.write().await?;
        let request = write.request_cancel(job.id).await?;
        write.commit().await?;
        self.cancel_requested(job, request);
        Ok(())
    }

    /// Acts on a Cancel the store has recorded (in the caller's
    /// transaction, with its activity line): a dequeued job is said to
    /// have ended, a running one's token is cancelled. A job claimed but
    /// not yet tracked finds the request in the store when it starts.
    pub fn cancel_requested(&self, job: &Job, request: CancelRequest) {
        let job_id = job.id;
        match request {
            CancelRequest::Dequeued => {
                self.0.metrics.job_finished(
                    &job.kind,
                    JobState::Cancelled.as_str(),
                    Duration::ZERO,
                );
                let _ = self.0.events.send(JobEvent::Finished {
                    job_id,
                    state: JobState::Cancelled,
                });
            }
            CancelRequest::Asked => {
                if let Some(token) = self
                    .0
                    .running
                    .lock()
                    .expect("running lock")
                    .tokens
                    .get(&job_id)
                {
                    token.cancel();
                }
            }
            CancelRequest::Finished => {}
        }
    }

    /// Stops taking jobs, gives running ones a moment, and marks the rest
    /// interrupted. Servers keep running.
    pub async fn shutdown(&self, grace: Duration) {
        self.0.shutdown.cancel();
        let deadline = tokio::time::Instant::now() + grace;
        while !self
            .0
            .running
            .lock()
            .expect("running lock")
            .tokens
            .is_empty()
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        match self.0.store.interrupt_running_jobs().await {
            Ok(0) => {}
            Ok(n) => tracing::warn!("{n} running job(s) marked interrupted"),
            Err(e) => tracing::error!("marking jobs interrupted: {e}"),
        }
    }

    async fn worker(&self) {
        loop {
            if self.0.shutdown.is_cancelled() {
                return;
            }
            let wake = self.0.wake.notified();
            match self.0.store.claim_next_job().await {
                Ok(Some(job)) => self.run(job).await,
                Ok(None) => {
                    tokio::select! {
                        () = wake => {}
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        () = self.0.shutdown.cancelled() => return,
                    }
                }
                Err(e) => {
                    tracing::error!("claiming a job: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// The Cancel of a job that runs now.
    fn track(&self, job_id: i64) -> CancellationToken {
        let token = CancellationToken::new();
        let mut running = self.0.running.lock().expect("running lock");
        running.tokens.insert(job_id, token.clone());
        running.began.insert(job_id, std::time::Instant::now());
        token
    }

    async fn run(&self, job: Job) {
        use tracing::Instrument;
        // Every log line the job causes names it.
        let span = tracing::info_span!("job", id = job.id, kind = %job.kind);
        self.run_in_span(job).instrument(span).await;
    }

    async fn run_in_span(&self, job: Job) {
        let token = self.track(job.id);
        // A Cancel recorded before the token was tracked (or before a
        // restart) is in the store.
        match self.0.store.job(job.id).await {
            Ok(now) if now.cancel_requested_at.is_some() => token.cancel(),
            Ok(_) => {}
            Err(e) => tracing::error!("reading job {}: {e}", job.id),
        }
        self.log(
            job.id,
            "step",
            &format!(
                "{} ({}) queued by {}",
                job.subject,
                job_label(&job.kind),
                job.username
            ),
        )
        .await;
        let result = self.execute(&job, &token).await;
        self.conclude(&job, result).await;
    }

    /// A job its caller runs rather than a worker (a schedule's run, whose
    /// steps queue jobs of their own): running from the start, with its
    /// activity line, and its Cancel. The caller logs to it with
    /// [`Jobs::log_line`] and ends it with [`Jobs::end_driven`].
    pub async fn begin_driven(
        &self,
        new: &NewJob<'_>,
        schedule_id: Option<i64>,
        activity: &str,
    ) -> left4me_store::Result<(Job, CancellationToken)> {
        let mut write = self.0.store.write().await?;
        let job = write.create_running_job(new, schedule_id).await?;
        write
            .record_activity(
                new.user_id,
                new.username,
                new.server_id,
                new.kind,
                &format!("{activity} (job #{})", job.id),
            )
            .await?;
        write.commit().await?;
        let token = self.track(job.id);
        Ok((job, token))
    }

    /// Ends a job begun with [`Jobs::begin_driven`]: `Err(None)` when it
    /// was cancelled, `Err(Some(why))` when it failed.
    pub async fn end_driven(&self, job: &Job, result: Result<(), Option<String>>) {
        let result = result.map_err(|why| why.map_or(JobError::Cancelled, JobError::Failed));
        self.conclude(job, result).await;
    }

    /// Adds a line to a running job's log (and its followers).
    pub async fn log_line(&self, job_id: i64, stream: &str, text: &str) {
        self.log(job_id, stream, text).await;
    }

    /// How job `id` ended, once it has; `None` when `stop` came first.
    pub async fn finished(
        &self,
        id: i64,
        stop: &CancellationToken,
    ) -> left4me_store::Result<Option<Job>> {
        let mut events = self.subscribe();
        loop {
            let job = self.0.store.job(id).await?;
            if job.state.is_finished() {
                return Ok(Some(job));
            }
            // Another look at the store each second: an event missed (a
            // lagging receiver) costs that second, no more.
            tokio::select! {
                () = stop.cancelled() => return Ok(None),
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                event = events.recv() => {
                    if let Err(broadcast::error::RecvError::Closed) = event {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }
    }

    /// Ends a running job: its last lines, its state, its Cancel.
    async fn conclude(&self, job: &Job, result: Result<(), JobError>) {
        let (state, error) = match result {
            Ok(()) => (JobState::Succeeded, None),
            // The state says it all; no error text to repeat it.
            Err(JobError::Cancelled) => (JobState::Cancelled, None),
            Err(JobError::Failed(message)) => (JobState::Failed, Some(message)),
            Err(JobError::GameFailed(message)) => {
                let console = self.console_tail(job).await;
                (JobState::Failed, Some(with_console(&message, &console)))
            }
        };
        if let Some(error) = &error {
            self.log(job.id, "error", error).await;
        }
        self.log(job.id, "step", &format!("job {}", state.as_str()))
            .await;
        if let Err(e) = self
            .0
            .store
            .finish_job(job.id, state, error.as_deref())
            .await
        {
            tracing::error!("recording the end of job {}: {e}", job.id);
        }
        let began = {
            let mut running = self.0.running.lock().expect("running lock");
            running.tokens.remove(&job.id);
            running.began.remove(&job.id)
        };
        if let Some(began) = began {
            self.0
                .metrics
                .job_finished(&job.kind, state.as_str(), began.elapsed());
        }
        let _ = self.0.events.send(JobEvent::Finished {
            job_id: job.id,
            state,
        });
        // Its locks are free now: another worker may find work.
        self.0.wake.notify_waiters();
    }

    /// The last lines of the job's server's console.
    async fn console_tail(&self, job: &Job) -> Vec<String> {
        let Some(server_id) = job.server_id else {
            return Vec::new();
        };
        ask_host(&self.0.host, &[server_id], |host, names| {
            host.console_tail(&names[0], CONSOLE_TAIL)
        })
        .await
        .unwrap_or_else(|e| vec![format!("(the console could not be read: {e})")])
    }

    async fn log(&self, job_id: i64, stream: &str, text: &str) {
        match self.0.store.append_job_log(job_id, stream, text).await {
            Ok(seq) => {
                let line = LogLine {
                    seq,
                    stream: stream.to_owned(),
                    line: text.to_owned(),
                    at: left4me_store::now(),
                };
                let _ = self.0.events.send(JobEvent::Line { job_id, line });
            }
            Err(e) => tracing::error!("logging job {job_id}: {e}"),
        }
    }

    async fn progress(&self, job_id: i64, done: i64, total: i64) {
        if let Err(e) = self.0.store.set_job_progress(job_id, done, total).await {
            tracing::error!("progress of job {job_id}: {e}");
        }
        let _ = self.0.events.send(JobEvent::Progress {
            job_id,
            done,
            total,
        });
    }

    async fn execute(&self, job: &Job, token: &CancellationToken) -> Result<(), JobError> {
        let kind = JobKind::parse(&job.kind)
            .ok_or_else(|| JobError::Failed(format!("unknown job kind {:?}", job.kind)))?;
        if kind.is_game() {
            return self.game(job.id, kind, token).await;
        }
        if kind == JobKind::PanelBackup {
            return self.back_up(job, token).await;
        }
        if kind == JobKind::BackupCheck {
            return self.check_backups(job, token).await;
        }
        if kind == JobKind::OverlayBuild {
            return self.overlay_build(job, token).await;
        }
        if kind == JobKind::OverlayRestore {
            return self.restore_overlay(job, token).await;
        }
        let server_id = job
            .server_id
            .ok_or_else(|| JobError::Failed("the server no longer exists".into()))?;
        let server = self.0.store.server(server_id).await?;
        let name = instance_name(server.id);
        match kind {
            JobKind::ServerStart => self.start(job, &server, token).await,
            JobKind::ServerRestore => self.restore_server(job, &server, token).await,
            JobKind::ServerStop => {
                self.0
                    .store
                    .set_desired_state(server.id, left4me_store::DesiredState::Stopped)
                    .await?;
                self.host_op(job.id, token, move |host, ctx| host.stop(&name, ctx))
                    .await
            }
            JobKind::ServerRestart => {
                // A server that cannot start again is not stopped first.
                self.spec_of(&server).await?;
                let stop_name = name.clone();
                self.host_op(job.id, token, move |host, ctx| host.stop(&stop_name, ctx))
                    .await?;
                self.start(job, &server, token).await
            }
            JobKind::ServerReset => {
                self.0
                    .store
                    .set_desired_state(server.id, left4me_store::DesiredState::Stopped)
                    .await?;
                self.host_op(job.id, token, move |host, ctx| host.reset(&name, ctx))
                    .await
            }
            JobKind::GameInstall
            | JobKind::GameUpdate
            | JobKind::GameValidate
            | JobKind::GameCheck
            | JobKind::OverlayBuild
            | JobKind::OverlayRestore
            | JobKind::PanelBackup
            | JobKind::BackupCheck => unreachable!("game, overlay and backup jobs returned above"),
            JobKind::ServerDelete => {
                // Wanted stopped first: if deleting fails halfway, the
                // reconciler must not start the server again.
                self.0
                    .store
                    .set_desired_state(server.id, left4me_store::DesiredState::Stopped)
                    .await?;
                self.host_op(job.id, token, move |host, ctx| host.delete(&name, ctx))
                    .await?;
                self.0.store.delete_server(server.id).await?;
                Ok(())
            }
        }
    }

    async fn start(
        &self,
        job: &Job,
        server: &Server,
        token: &CancellationToken,
    ) -> Result<(), JobError> {
        let store = &self.0.store;
        let spec = self.spec_of(server).await?;
        store
            .set_desired_state(server.id, left4me_store::DesiredState::Running)
            .await?;
        left4me_host::events::fault_point("start-wanted");
        let name = instance_name(server.id);
        // Unknown counts as running: a cancel must never stop a server
        // this job did not start.
        let was_active = self
            .process_status(server.id)
            .await
            .is_none_or(|s| s.active);
        let start_name = name.clone();
        let started = self
            .host_op(job.id, token, move |host, ctx| {
                host.start(&start_name, Some(&spec), ctx)
            })
            .await;
        let (started_here, ready) = match started {
            Ok(outcome) => (
                outcome == StartOutcome::Started,
                self.wait_ready(job.id, server, token).await,
            ),
            Err(e) => (!was_active, Err(e)),
        };
        match ready {
            Err(JobError::Cancelled) if started_here => {
                // Cancelling a start, during the host's steps or the wait,
                // undoes it: the server is wanted stopped and is stopped
                // (which also takes back its boot setting).
                self.log(job.id, "step", "cancelled: stopping the server again...")
                    .await;
                store
                    .set_desired_state(server.id, left4me_store::DesiredState::Stopped)
                    .await?;
                let fresh = CancellationToken::new();
                self.host_op(job.id, &fresh, move |host, ctx| host.stop(&name, ctx))
                    .await?;
                Err(JobError::Cancelled)
            }
            Err(JobError::Cancelled) => {
                // It ran before this job: it keeps running, and stays
                // wanted running so the reconciler does not stop it.
                self.log(
                    job.id,
                    "step",
                    "cancelled: the server was already running and keeps running",
                )
                .await;
                Err(JobError::Cancelled)
            }
            other => other,
        }
    }

    /// The spec the server starts from: its blueprint as it is now.
    async fn spec_of(&self, server: &Server) -> Result<Spec, JobError> {
        let blueprint = self.0.store.blueprint(server.blueprint_id).await?;
        let overlays = self.0.store.blueprint_overlays(blueprint.id).await?;
        build_spec(server, &blueprint, &overlays).map_err(JobError::Failed)
    }

    /// What the supervisor says of a server; `None` when it cannot tell.
    async fn process_status(&self, server_id: i64) -> Option<ProcessStatus> {
        ask_host(&self.0.host, &[server_id], |host, names| {
            host.process_statuses(names).pop()?.ok()
        })
        .await
        .ok()
        .flatten()
    }

    /// Waits for the server to answer A2S_INFO, with a progress bar.
    async fn wait_ready(
        &self,
        job_id: i64,
        server: &Server,
        token: &CancellationToken,
    ) -> Result<(), JobError> {
        let port = u16::try_from(server.port).map_err(|_| JobError::Failed("bad port".into()))?;
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let total = i64::try_from(self.0.ready_timeout.as_secs())
            .unwrap_or(i64::MAX)
            .max(1);
        self.log(
            job_id,
            "step",
            &format!("waiting for the server to answer on port {port}..."),
        )
        .await;
        let mut wait = ReadyWait::new(addr, self.0.ready_timeout);
        let mut last_second = None;
        let mut restarts = self
            .process_status(server.id)
            .await
            .map_or(0, |s| s.restarts);
        let waited = loop {
            if token.is_cancelled() {
                return Err(JobError::Cancelled);
            }
            let second = i64::try_from(wait.waited().as_secs()).unwrap_or(i64::MAX);
            if last_second != Some(second) {
                self.progress(job_id, second, total).await;
                last_second = Some(second);
                // Once a second: a server that gave up or exited will not
                // answer, so say why now rather than at the time limit.
                if let Some(status) = self.process_status(server.id).await {
                    if !status.active {
                        return Err(JobError::GameFailed(format!(
                            "the server is {} and will not answer{}; see its log",
                            status.state,
                            status.reason.map(|r| format!(" ({r})")).unwrap_or_default()
                        )));
                    }
                    // Crashes while booting show here, not only in the
                    // server's own log.
                    if status.restarts > restarts {
                        restarts = status.restarts;
                        self.log(
                            job_id,
                            "stderr",
                            &format!(
                                "the server exited and is restarted (restart {restarts}){}",
                                status.reason.map(|r| format!(": {r}")).unwrap_or_default()
                            ),
                        )
                        .await;
                    }
                }
            }
            match wait.next_try().await {
                Try::NotYet => {}
                done => break done,
            }
        };
        match waited {
            Try::Ready(info) => {
                self.progress(job_id, total, total).await;
                self.log(
                    job_id,
                    "step",
                    &format!("ready: {} on {}", info.name, info.map),
                )
                .await;
                Ok(())
            }
            Try::NotYet | Try::TimedOut => Err(JobError::GameFailed(format!(
                "the server is running but did not answer queries within {total} s; see its log"
            ))),
        }
    }

    /// Installs, updates or checks the game with the job's `Ctx`. Refuses
    /// an install over an installed game and an update of none, like the
    /// command line.
    async fn game(
        &self,
        job_id: i64,
        kind: JobKind,
        token: &CancellationToken,
    ) -> Result<(), JobError> {
        let installer = Arc::clone(&self.0.installer);
        let installed = tokio::task::spawn_blocking(move || {
            installer.game().root.installation_versions().current_info()
        })
        .await
        .map_err(|e| JobError::Failed(format!("the job's worker thread failed: {e}")))?
        .map_err(|e| JobError::Failed(format!("reading the installation: {e}")))?;
        let validate = match (kind, installed) {
            (JobKind::GameCheck, _) => {
                let check = self
                    .game_op(job_id, token, |installer, ctx| installer.check(ctx))
                    .await?;
                self.log(job_id, "step", &crate::game::describe_check(&check))
                    .await;
                return Ok(());
            }
            (JobKind::GameInstall, Some(v)) => {
                return Err(JobError::Failed(format!(
                    "the game is installed (version {}); update it instead",
                    v.version
                )));
            }
            (JobKind::GameUpdate | JobKind::GameValidate, None) => {
                return Err(JobError::Failed(
                    "the game is not installed; install it first".into(),
                ));
            }
            (kind, _) => kind == JobKind::GameValidate,
        };
        let updated = self
            .game_op(job_id, token, move |installer, ctx| {
                installer.update(validate, ctx)
            })
            .await?;
        if let Updated::Published(v) = updated {
            tracing::info!(
                "game version {} (build {}) is current",
                v.version,
                v.build_id.as_deref().unwrap_or("unknown")
            );
        }
        Ok(())
    }

    /// Builds a Workshop or script overlay; the overlay's status says how
    /// the build went.
    async fn overlay_build(&self, job: &Job, token: &CancellationToken) -> Result<(), JobError> {
        let store = &self.0.store;
        let overlay = match job.overlay_id {
            Some(id) => store.overlay(id).await?,
            None => return Err(JobError::Failed("the overlay no longer exists".into())),
        };
        let built_by_script = match overlay.kind {
            OverlayKind::Files => {
                return Err(JobError::Failed(format!(
                    "overlay {} is a files overlay: it is edited, not built",
                    overlay.name
                )));
            }
            OverlayKind::Workshop => false,
            OverlayKind::Script => true,
        };
        store
            .set_overlay_build_status(overlay.id, "building")
            .await?;
        let result = if built_by_script {
            self.script_build(job, &overlay, token).await
        } else {
            self.workshop_build(job, &overlay, token).await
        };
        let status = if result.is_ok() { "ready" } else { "failed" };
        store.set_overlay_build_status(overlay.id, status).await?;
        result
    }

    /// Runs the overlay's script in the sandbox; a new version is
    /// published only when it succeeds.
    async fn script_build(
        &self,
        job: &Job,
        overlay: &Overlay,
        token: &CancellationToken,
    ) -> Result<(), JobError> {
        let run = self
            .0
            .store
            .take_script_run(overlay.id)
            .await?
            .ok_or_else(|| JobError::Failed("the overlay has no script yet".into()))?;
        let start = if run.from_scratch {
            "building from an empty layer"
        } else {
            "building on a copy of the current version (if there is one)"
        };
        self.log(job.id, "step", start).await;
        let (host, scripts) = (Arc::clone(&self.0.host), self.0.scripts.clone());
        let (overlay_id, build_id) = (overlay.id, format!("job-{}", job.id));
        let info = self
            .blocking_op(job.id, token, move |ctx| {
                scripts.build(host.root(), overlay_id, &run, build_id, ctx)
            })
            .await?;
        self.log(
            job.id,
            "step",
            &format!(
                "published version {}: servers get it at their next start",
                info.version
            ),
        )
        .await;
        Ok(())
    }

    /// Builds a Workshop overlay: item states go to the store as the
    /// build reports them.
    async fn workshop_build(
        &self,
        job: &Job,
        overlay: &Overlay,
        token: &CancellationToken,
    ) -> Result<(), JobError> {
        let store = &self.0.store;
        let sources = crate::workshop::sources(store, overlay.id).await?;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let writer = {
            let store = store.clone();
            tokio::spawn(async move {
                let mut written = Vec::new();
                while let Some(item) = rx.recv().await {
                    if let Err(e) = store.put_workshop_item(&item).await {
                        tracing::error!("recording a Workshop item's state: {e}");
                    }
                    written.push(item);
                }
                written
            })
        };
        let (host, installer) = (Arc::clone(&self.0.host), Arc::clone(&self.0.installer));
        let workshop = self.0.workshop.clone();
        let overlay_id = overlay.id;
        let result = self
            .blocking_op(job.id, token, move |ctx| {
                let observe = move |report: &left4me_workshop::build::ItemReport| {
                    let _ = tx.send(crate::workshop::stored_item(overlay_id, report));
                };
                workshop.build(
                    &host,
                    installer.as_ref(),
                    overlay_id,
                    &sources,
                    &observe,
                    ctx,
                )
            })
            .await;
        let written = writer
            .await
            .map_err(|e| JobError::Failed(format!("recording item states: {e}")))?;
        let built = result?;
        self.0.metrics.workshop_downloaded(built.downloaded_bytes);
        store
            .keep_workshop_items(overlay.id, &crate::workshop::reported_ids(&written))
            .await?;
        let summary = format!(
            "{} item(s){}, {:.1} MiB downloaded",
            built.items,
            if built.skipped > 0 {
                format!(", {} skipped", built.skipped)
            } else {
                String::new()
            },
            built.downloaded_bytes as f64 / (1024.0 * 1024.0)
        );
        self.log(job.id, "step", &summary).await;
        Ok(())
    }

    async fn game_op<T: Send + 'static>(
        &self,
        job_id: i64,
        token: &CancellationToken,
        op: impl FnOnce(&dyn Installer, &Ctx<'_>) -> Result<T, GameError> + Send + 'static,
    ) -> Result<T, JobError> {
        let installer = Arc::clone(&self.0.installer);
        self.blocking_op(job_id, token, move |ctx| op(installer.as_ref(), ctx))
            .await
    }

    /// Backs up the panel: a consistent copy of the database and the
    /// files that are its own into the restic repository, then forgets
    /// what the retention does not keep.
    async fn back_up(&self, job: &Job, token: &CancellationToken) -> Result<(), JobError> {
        let staging = crate::backups::Backups::staging(self.0.host.root().path());
        let result = self.back_up_staged(job, token, &staging).await;
        // The database copy holds every secret the database does: it
        // never outlives its backup, however that ended.
        if let Err(e) = left4me_host::fsutil::remove_dir_all_if_exists(&staging) {
            self.log(
                job.id,
                "stderr",
                &format!("removing the database copy in {}: {e}", staging.display()),
            )
            .await;
        }
        result
    }

    async fn back_up_staged(
        &self,
        job: &Job,
        token: &CancellationToken,
        staging: &std::path::Path,
    ) -> Result<(), JobError> {
        let started = left4me_store::now();
        let root = self.0.host.root().clone();
        std::fs::create_dir_all(staging)
            .map_err(|e| JobError::Failed(format!("making {}: {e}", staging.display())))?;
        self.log(job.id, "step", "copying the database as it is now")
            .await;
        let copy = staging.join("left4me.db");
        self.0
            .store
            .copy_to(&copy)
            .await
            .map_err(|e| JobError::Failed(format!("copying the database: {e}")))?;
        left4me_host::events::fault_point("backup-database-copied");
        let config_copy = staging.join(crate::backups::Backups::CONFIG_COPY);
        let _ = std::fs::remove_file(&config_copy);
        if let Some(file) = &self.0.backups.config_file {
            self.log(
                job.id,
                "step",
                &format!("copying the configuration {}", file.display()),
            )
            .await;
            left4me_host::fsutil::copy_atomic(file, &config_copy).map_err(|e| {
                JobError::Failed(format!("copying the configuration {}: {e}", file.display()))
            })?;
        }
        let set = left4me_host::backup::BackupSet::of_panel(&root, staging);
        let backups = self.0.backups.clone();
        let summary = self
            .blocking_op(job.id, token, move |ctx| {
                use left4me_host::backup::ensure_password_file;
                let restic = &backups.restic;
                if ensure_password_file(&restic.password_file)? {
                    ctx.step(format!(
                        "made the repository's password in {}: keep a copy apart, no backup opens without it",
                        restic.password_file.display()
                    ))?;
                }
                if restic.ensure_repository(ctx)? {
                    ctx.step(format!("made the backup repository {}", restic.repository))?;
                }
                restic.unlock(ctx)?;
                ctx.step(format!("backing up into {}", restic.repository))?;
                let paths: Vec<&std::path::Path> = set.paths.iter().map(AsRef::as_ref).collect();
                let excludes: Vec<&std::path::Path> = set.excludes.iter().map(AsRef::as_ref).collect();
                let summary = restic.backup(&paths, &excludes, &["left4me"], ctx)?;
                left4me_host::events::fault_point("backup-taken");
                ctx.step("forgetting the backups the retention does not keep")?;
                restic.forget(backups.keep, ctx)?;
                Ok::<_, left4me_host::backup::BackupError>(summary)
            })
            .await?;
        let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.log(
            job.id,
            "step",
            &format!(
                "snapshot {}: {} files, {} bytes looked at, {} bytes new",
                &summary.snapshot_id[..summary.snapshot_id.len().min(8)],
                summary.total_files_processed,
                summary.total_bytes_processed,
                summary.data_added
            ),
        )
        .await;
        self.0
            .store
            .record_backup(&left4me_store::NewBackup {
                job_id: job.id,
                snapshot_id: &summary.snapshot_id,
                started_at: started,
                files: as_i64(summary.total_files_processed),
                bytes_processed: as_i64(summary.total_bytes_processed),
                data_added: as_i64(summary.data_added),
            })
            .await
            .map_err(|e| JobError::Failed(format!("recording the backup: {e}")))?;
        Ok(())
    }

    /// Puts the server's own state (its upper layer) back from the
    /// snapshot the job names: restored beside it, then moved in place.
    async fn restore_server(
        &self,
        job: &Job,
        server: &Server,
        token: &CancellationToken,
    ) -> Result<(), JobError> {
        let name = instance_name(server.id);
        let upper = self.0.host.root().instance(&name).upper();
        let what = format!("the state of server {}", server.name);
        let (staging, restored) = self.restore_dir(job, token, &upper, &what).await?;
        let result = self
            .host_op(job.id, token, move |host, ctx| {
                host.replace_upper(&name, &restored, ctx)
            })
            .await;
        let _ = std::fs::remove_dir_all(&staging);
        result
    }

    /// Puts a files overlay's working copy back from the snapshot the job
    /// names. Servers keep the snapshot they mounted; their next start
    /// takes the restored files.
    async fn restore_overlay(&self, job: &Job, token: &CancellationToken) -> Result<(), JobError> {
        let id = job
            .overlay_id
            .ok_or_else(|| JobError::Failed("the overlay no longer exists".into()))?;
        let overlay = self.0.store.overlay(id).await?;
        let dir = self
            .0
            .host
            .root()
            .overlay(&crate::spec_builder::overlay_path(id));
        let what = format!("the files of overlay {}", overlay.name);
        let (staging, restored) = self.restore_dir(job, token, &dir, &what).await?;
        self.log(job.id, "step", &format!("putting {what} in place"))
            .await;
        let result =
            tokio::task::spawn_blocking(move || left4me_host::fsutil::replace_dir(&dir, &restored))
                .await
                .map_err(|e| JobError::Failed(format!("the job's worker thread failed: {e}")))?
                .map_err(|e| JobError::Failed(format!("putting the restored files in place: {e}")));
        let _ = std::fs::remove_dir_all(&staging);
        result
    }

    /// Restores `dir` (`what`, in words) from the snapshot the job names
    /// into `<root>/backups/restore-JOB`: that directory, and the copy of
    /// `dir` in it.
    async fn restore_dir(
        &self,
        job: &Job,
        token: &CancellationToken,
        dir: &Path,
        what: &str,
    ) -> Result<(PathBuf, PathBuf), JobError> {
        let snapshot = job
            .argument
            .clone()
            .ok_or_else(|| JobError::Failed("the job names no backup".into()))?;
        let staging = self
            .0
            .host
            .root()
            .path()
            .join(format!("backups/restore-{}", job.id));
        let _ = std::fs::remove_dir_all(&staging);
        let backups = self.0.backups.clone();
        let (target, include, step) = (
            staging.clone(),
            dir.to_owned(),
            format!("restoring {what} from snapshot {snapshot}"),
        );
        self.blocking_op(job.id, token, move |ctx| {
            ctx.step(step)?;
            backups
                .restic
                .restore(&snapshot, &target, &[include.as_path()], ctx)
        })
        .await?;
        let restored = staging.join(dir.strip_prefix("/").unwrap_or(dir));
        if !restored.is_dir() {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(JobError::Failed(format!(
                "that backup holds no copy of {what}"
            )));
        }
        Ok((staging, restored))
    }

    /// Checks the backup repository: its structure, and a share of its
    /// data read back.
    async fn check_backups(&self, job: &Job, token: &CancellationToken) -> Result<(), JobError> {
        /// The share of the data a check reads back: all of it, over a
        /// few weeks of nightly checks, without reading it all each night.
        const READ_PERCENT: u8 = 5;
        let backups = self.0.backups.clone();
        if !backups.restic.password_file.exists() {
            return Err(JobError::Failed(format!(
                "no backup has been taken yet: the repository's password file {} is not there",
                backups.restic.password_file.display()
            )));
        }
        self.blocking_op(job.id, token, move |ctx| {
            let restic = &backups.restic;
            restic.unlock(ctx)?;
            ctx.step(format!(
                "checking {} ({READ_PERCENT}% of its data read back)",
                restic.repository
            ))?;
            restic.check(READ_PERCENT, ctx)?;
            ctx.step("the repository is sound")?;
            Ok::<_, left4me_host::backup::BackupError>(())
        })
        .await
    }

    /// Runs a host operation on a blocking thread, streaming its events
    /// into the job log as they happen.
    async fn host_op<T: Send + 'static>(
        &self,
        job_id: i64,
        token: &CancellationToken,
        op: impl FnOnce(&Host, &Ctx<'_>) -> Result<T, HostError> + Send + 'static,
    ) -> Result<T, JobError> {
        let host = Arc::clone(&self.0.host);
        self.blocking_op(job_id, token, move |ctx| op(&host, ctx))
            .await
    }

    /// Runs `op` on a blocking thread with a `Ctx` whose events become the
    /// job's log lines and progress as they happen.
    async fn blocking_op<T: Send + 'static, E: Send + 'static>(
        &self,
        job_id: i64,
        token: &CancellationToken,
        op: impl FnOnce(&Ctx<'_>) -> Result<T, E> + Send + 'static,
    ) -> Result<T, JobError>
    where
        JobError: From<E>,
    {
        let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
        let token = token.clone();
        let task = tokio::task::spawn_blocking(move || {
            let sink = move |event: Event| {
                let _ = tx.send(event);
            };
            op(&Ctx::new(&sink, &token))
        });
        while let Some(event) = rx.recv().await {
            match event {
                Event::Step(text) => self.log(job_id, "step", &text).await,
                Event::Stdout(text) => self.log(job_id, "stdout", &text).await,
                Event::Stderr(text) => self.log(job_id, "stderr", &text).await,
                Event::Progress { done, total } => {
                    let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
                    self.progress(job_id, as_i64(done), as_i64(total)).await;
                }
            }
        }
        task.await
            .map_err(|e| JobError::Failed(format!("the job's worker thread failed: {e}")))?
            .map_err(JobError::from)
    }
}

/// A failure's reason followed by the game's last console lines, as the
/// job's error (shown on the job and on the server page).
fn with_console(reason: &str, console: &[String]) -> String {
    if console.is_empty() {
        return format!("{reason}\n(the game's console is empty)");
    }
    format!(
        "{reason}\nThe last lines of the game's console:\n{}",
        console.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A worker claims a job, and the user's cancel lands before the worker
    /// has registered the job's token: the job must still end cancelled.
    #[tokio::test]
    async fn a_cancel_between_claim_and_run_is_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("left4me.db")).await.unwrap();
        let user = store.create_user("alice", "x", true).await.unwrap();
        let blueprint = store.create_blueprint(user.id, "coop").await.unwrap();
        let server = store
            .create_server(&left4me_store::NewServer {
                owner_id: user.id,
                blueprint_id: blueprint.id,
                name: "s",
                hostname: "s",
                port: None,
                port_range: 27015..=27015,
                rcon_password: "pw",
                held_elsewhere: &[],
            })
            .await
            .unwrap();
        let (_, jobs) = crate::test_jobs(&store, &dir.path().join("root"));
        let queued = jobs
            .enqueue(
                JobKind::ServerStart,
                Actor::User {
                    id: user.id,
                    name: &user.username,
                },
                &server,
            )
            .await
            .unwrap();
        let claimed = store.claim_next_job().await.unwrap().expect("a job");
        assert_eq!(claimed.id, queued.id);
        jobs.cancel(&claimed).await.unwrap();
        jobs.run(claimed).await;
        let job = store.job(queued.id).await.unwrap();
        assert_eq!(job.state, JobState::Cancelled, "{job:?}");
    }
}
