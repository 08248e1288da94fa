//! Schedules at work: a task that starts each run when it is due, and
//! the run itself, a job whose steps call the same operations as the
//! pages and the API, as the schedule's maker ("schedule NAME").
//!
//! The one part of the operation layer that works by itself: it calls
//! the other operations, and none of them calls it.

use std::time::Duration;

use jiff::Timestamp;
use left4me_store::{Job, JobState, NewJob, OverlayKind, Schedule};
use tokio_util::sync::CancellationToken;

use crate::App;
use crate::actor::Actor;
use crate::error::{OpError, OpResult};
use crate::ops::schedules::{ScheduleInput, changeable, check, plan_of, when};
use crate::ops::servers::ServerOperation;
use crate::ops::{console, game, servers, workshop};
use crate::schedule_plan::{Plan, Players, Step};
use crate::timing;

/// A run due longer ago than this was missed while the panel was down.
const MISSED_AFTER_SECS: i64 = 120;

/// The job kind of a schedule's run.
pub const RUN_KIND: &str = "schedule.run";

/// Starts each schedule's run when it is due.
#[derive(Debug)]
pub struct Scheduler {
    pub app: App,
    /// The longest sleep between looks at the schedules.
    pub tick: Duration,
}

impl Scheduler {
    pub fn spawn(self, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            // Once they are made (an admin exists), nothing unmakes them.
            let mut builtins_made = false;
            loop {
                if !builtins_made {
                    match ensure_builtins(&self.app).await {
                        Ok(made) => builtins_made = made,
                        Err(e) => tracing::error!("making the built-in schedules: {}", e.chain()),
                    }
                }
                if let Err(e) = self.start_due().await {
                    tracing::error!("starting scheduled runs: {}", e.chain());
                }
                let sleep = match self.app.store().next_due().await {
                    Ok(Some(due)) => {
                        let secs = u64::try_from(due - left4me_store::now()).unwrap_or(0);
                        Duration::from_secs(secs).clamp(Duration::from_millis(200), self.tick)
                    }
                    _ => self.tick,
                };
                tokio::select! {
                    () = tokio::time::sleep(sleep) => {}
                    () = stop.cancelled() => return,
                }
            }
        })
    }

    async fn start_due(&self) -> OpResult<()> {
        let now = left4me_store::now();
        for schedule in self.app.store().due_schedules(now).await? {
            if let Err(e) = self.start_one(&schedule, now).await {
                tracing::error!(
                    "schedule {} ({}): {}",
                    schedule.name,
                    schedule.id,
                    e.chain()
                );
            }
        }
        Ok(())
    }

    /// Takes the schedule's due run (moving it on to the next) and starts
    /// it, or skips it as the schedule says.
    async fn start_one(&self, schedule: &Schedule, now: i64) -> OpResult<()> {
        let (timing, zone) = when(schedule)?;
        let next = timing
            .next_after(&zone, Timestamp::from_second(now).unwrap_or(Timestamp::MAX))
            .map_or(i64::MAX, Timestamp::as_second);
        let due = Timestamp::from_second(schedule.due_at)
            .map(|t| t.to_zoned(zone.clone()).strftime("%F %H:%M %Z").to_string())
            .unwrap_or_default();
        let store = self.app.store();
        let missed = now - schedule.due_at > MISSED_AFTER_SECS;
        let skip = if missed && !schedule.catch_up {
            Some(format!(
                "the run due {due} was missed while the panel was down"
            ))
        } else if running_run(&self.app, schedule.id).await?.is_some() {
            Some(format!(
                "the run due {due} came while the last one was still going"
            ))
        } else {
            None
        };
        if !store
            .take_due_run(schedule.id, schedule.due_at, next, skip.as_deref())
            .await?
        {
            // Changed or taken meanwhile: the next look sees it anew.
            return Ok(());
        }
        if let Some(why) = skip {
            tracing::info!(schedule = %schedule.name, "skipped: {why}");
            skipped(&self.app, schedule, &why).await?;
            return Ok(());
        }
        let why = if missed {
            format!("the run due {due}, missed while the panel was down")
        } else {
            format!("due {due}")
        };
        start(&self.app, schedule, &why).await.map(|_| ())
    }
}

/// The panel's own routines, as schedules an admin can change.
pub const GAME_CHECK: &str = "game_check";
pub const WORKSHOP_REFRESH: &str = "workshop_refresh";

/// Makes the panel's own routines as schedules, once, when an admin
/// exists to own them: the check for game updates (daily at 05:00, host
/// time) and the Workshop refresh (at `workshop_refresh_at`, UTC, off
/// when that is empty). Whether both exist now.
async fn ensure_builtins(app: &App) -> OpResult<bool> {
    let store = app.store();
    let refresh_at = &app.config().workshop_refresh_at;
    let routines = [
        (
            GAME_CHECK,
            "Check for game updates",
            "05:00".to_owned(),
            timing::host_zone_name(),
            Step::CheckGame,
            true,
        ),
        (
            WORKSHOP_REFRESH,
            "Refresh Workshop overlays",
            if refresh_at.is_empty() {
                "04:30".to_owned()
            } else {
                refresh_at.clone()
            },
            "UTC".to_owned(),
            Step::RefreshWorkshop,
            !refresh_at.is_empty(),
        ),
    ];
    for (builtin, name, at, zone_name, step, enabled) in routines {
        if store.builtin_schedule(builtin).await?.is_some() {
            continue;
        }
        let Some(admin) = store.first_admin().await? else {
            return Ok(false);
        };
        let input = ScheduleInput {
            name: name.to_owned(),
            timing: at,
            time_zone: zone_name,
            plan: Plan {
                steps: vec![step],
                players: Players::Ignore,
                warn_minutes: Vec::new(),
            },
            catch_up: true,
            enabled,
        };
        let mut checked = check(&Actor::new(admin.clone()), &input, None)?;
        // Named as the pages show it; an admin's schedule of that name
        // keeps it, and the routine is named apart.
        for name in [name.to_owned(), format!("{name} (built in)")] {
            checked.name = name;
            let mut write = store.write().await?;
            match write
                .create_schedule(None, admin.id, &checked.settings())
                .await
            {
                Ok(made) => {
                    write.set_builtin(made.id, builtin).await?;
                    write.commit().await?;
                    tracing::info!("made the built-in schedule {:?}", checked.name);
                    break;
                }
                Err(left4me_store::StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(true)
}

/// Says in the activity log that the schedule skipped a run, and why.
async fn skipped(app: &App, schedule: &Schedule, why: &str) -> OpResult<()> {
    Ok(app
        .store()
        .insert_activity(
            schedule.owner_id,
            &format!("schedule {}", schedule.name),
            schedule.server_id,
            "schedule.skipped",
            &format!("skipped a run: {why}"),
        )
        .await?)
}

/// A run of the schedule going on now, if one is.
async fn running_run(app: &App, schedule_id: i64) -> OpResult<Option<Job>> {
    Ok(app
        .store()
        .schedule_runs(schedule_id, 1)
        .await?
        .into_iter()
        .find(|j| j.state == JobState::Running))
}

/// Runs the schedule now, besides its regular runs.
pub async fn run_now(app: &App, actor: &Actor, id: i64) -> OpResult<Job> {
    let schedule = changeable(app, actor, id).await?;
    if let Some(job) = running_run(app, id).await? {
        return Err(OpError::conflict(format!(
            "The schedule is running now (job #{}).",
            job.id
        )));
    }
    start(app, &schedule, &format!("started by {}", actor.name())).await
}

/// Starts a run: its job (as the schedule, with its maker's rights), and
/// a task doing its steps.
async fn start(app: &App, schedule: &Schedule, why: &str) -> OpResult<Job> {
    let plan = plan_of(schedule)?;
    let owner = match schedule.owner_id {
        Some(id) => Some(app.store().user(id).await?),
        None => None,
    };
    // The panel's own routines run as an admin whoever made them.
    let owner = match owner {
        Some(user) if user.is_active && (schedule.builtin.is_none() || user.is_admin) => Some(user),
        _ if schedule.builtin.is_some() => app.store().first_admin().await?,
        other => other,
    };
    let username = format!("schedule {}", schedule.name);
    let (job, token) = app
        .jobs()
        .begin_driven(
            &NewJob {
                kind: RUN_KIND,
                user_id: schedule.owner_id,
                username: &username,
                server_id: schedule.server_id,
                overlay_id: None,
                subject: &username,
                locks: &[],
                argument: None,
            },
            Some(schedule.id),
            &format!("started {username}"),
        )
        .await?;
    let app = app.clone();
    let (schedule, why) = (schedule.clone(), why.to_owned());
    let started = job.clone();
    tokio::spawn(async move {
        let run = Run {
            app: &app,
            job: &started,
            token: &token,
            schedule: &schedule,
        };
        run.log(&format!("{username}: {why}")).await;
        let result = match owner {
            Some(owner) if owner.is_active => {
                let actor = Actor::for_schedule(owner, &schedule.name);
                run.steps(&actor, &plan).await
            }
            _ => Err(Some(
                "the user who made this schedule is gone or deactivated: an admin or the \
                 server's owner can make it again"
                    .to_owned(),
            )),
        };
        app.jobs().end_driven(&started, result).await;
    });
    Ok(job)
}

/// One run going on.
struct Run<'a> {
    app: &'a App,
    job: &'a Job,
    token: &'a CancellationToken,
    schedule: &'a Schedule,
}

/// `Err(None)`: cancelled; `Err(Some(why))`: failed.
type RunResult = Result<(), Option<String>>;

impl Run<'_> {
    /// A line in the run's log.
    async fn log(&self, line: &str) {
        self.app.jobs().log_line(self.job.id, "step", line).await;
    }

    /// Waits `duration`, or until the run is cancelled.
    async fn pause(&self, duration: Duration) -> RunResult {
        tokio::select! {
            () = tokio::time::sleep(duration) => Ok(()),
            () = self.token.cancelled() => Err(None),
        }
    }

    async fn steps(&self, actor: &Actor, plan: &Plan) -> RunResult {
        if let Some(server_id) = self.schedule.server_id
            && !self.players(actor, server_id, plan).await?
        {
            return Ok(());
        }
        let count = plan.steps.len();
        for (n, step) in plan.steps.iter().enumerate() {
            if self.token.is_cancelled() {
                return Err(None);
            }
            self.log(&format!("step {}/{count}: {}", n + 1, step.describe()))
                .await;
            self.step(actor, step).await.map_err(|e| {
                e.map(|why| format!("step {} ({}) failed: {why}", n + 1, step.describe()))
            })?;
        }
        Ok(())
    }

    /// Players on the server now, by the last poll (none when it is not
    /// running).
    fn playing(&self, server_id: i64) -> u8 {
        self.app.live().get(server_id).map_or(0, |l| l.players)
    }

    /// The players' part: whether to go on, after any wait and warnings.
    async fn players(
        &self,
        actor: &Actor,
        server_id: i64,
        plan: &Plan,
    ) -> Result<bool, Option<String>> {
        let start = tokio::time::Instant::now();
        let minutes = |m: u32| Duration::from_secs(u64::from(m) * 60);
        let (wait_for_empty, deadline) = match plan.players {
            Players::OnlyWhenEmpty => {
                let playing = self.playing(server_id);
                if playing > 0 {
                    let why = format!("{playing} player(s) on the server");
                    self.log(&format!("skipped: {why}")).await;
                    self.note_skip(&why).await;
                    return Ok(false);
                }
                return Ok(true);
            }
            Players::WaitForEmpty { up_to_minutes } => (true, start + minutes(up_to_minutes)),
            Players::Ignore => (
                false,
                start + minutes(plan.warn_minutes.iter().copied().max().unwrap_or(0)),
            ),
        };
        let mut warnings = plan.warn_minutes.iter().copied().peekable();
        let mut said_waiting = false;
        loop {
            let now = tokio::time::Instant::now();
            let playing = self.playing(server_id);
            // Nobody to wait for, nor to warn.
            if playing == 0 && (wait_for_empty || now < deadline) {
                self.log("nobody plays: going ahead").await;
                return Ok(true);
            }
            if now >= deadline {
                if wait_for_empty {
                    self.log(&format!("{playing} player(s) still on: going ahead"))
                        .await;
                }
                return Ok(true);
            }
            while let Some(&m) = warnings.peek() {
                if now + minutes(m) < deadline {
                    break;
                }
                warnings.next();
                if playing > 0 {
                    let text = format!(
                        "{} in {m} minute{}",
                        self.schedule.name,
                        if m == 1 { "" } else { "s" }
                    );
                    self.log(&format!("warning the players: {text}")).await;
                    if let Err(e) =
                        console_line(self.app, actor, server_id, &format!("say \"{text}\"")).await
                    {
                        self.log(&format!("the warning did not reach the server: {e}"))
                            .await;
                    }
                }
            }
            if wait_for_empty && !said_waiting {
                said_waiting = true;
                self.log(&format!("waiting for {playing} player(s) to leave"))
                    .await;
            }
            let next_warning = warnings.peek().map_or(deadline, |&m| {
                deadline.checked_sub(minutes(m)).unwrap_or(now)
            });
            self.pause(
                next_warning
                    .saturating_duration_since(now)
                    .clamp(Duration::from_millis(100), Duration::from_secs(1)),
            )
            .await?;
        }
    }

    async fn note_skip(&self, why: &str) {
        if let Err(e) = skipped(self.app, self.schedule, why).await {
            tracing::error!("recording a skipped run: {}", e.chain());
        }
    }

    async fn step(&self, actor: &Actor, step: &Step) -> RunResult {
        let app = self.app;
        let server = self.schedule.server_id;
        let failed = |e: OpError| Some(e.to_string());
        match step {
            Step::Say { text } => {
                let id = server.ok_or_else(needs_server)?;
                console_line(app, actor, id, &format!("say \"{text}\""))
                    .await
                    .map(drop)
                    .map_err(Some)
            }
            Step::Command { command } => {
                let id = server.ok_or_else(needs_server)?;
                let reply = console_line(app, actor, id, command).await.map_err(Some)?;
                self.log(&format!("reply: {}", reply.trim())).await;
                Ok(())
            }
            Step::Restart | Step::Stop | Step::Start => {
                let id = server.ok_or_else(needs_server)?;
                let operation = match step {
                    Step::Restart => ServerOperation::Restart,
                    Step::Stop => ServerOperation::Stop,
                    _ => ServerOperation::Start,
                };
                let job = servers::queue(app, actor, id, operation)
                    .await
                    .map_err(failed)?;
                self.follow(job).await
            }
            Step::CheckGame => {
                if !crate::game::installed(app.jobs().installer()).await {
                    self.log("the game is not installed: nothing to check")
                        .await;
                    return Ok(());
                }
                let job = game::queue(app, actor, game::GameOperation::Check)
                    .await
                    .map_err(failed)?;
                self.follow(job).await?;
                if let Some(update) = game::update_if_newer(app, actor).await.map_err(failed)? {
                    self.log("a newer build is public: updating (automatic mode)")
                        .await;
                    self.follow(update).await?;
                }
                Ok(())
            }
            Step::BackUp => {
                let job = super::backups::back_up(app, actor).await.map_err(failed)?;
                self.follow(job).await
            }
            Step::CheckBackups => {
                let job = super::backups::check(app, actor).await.map_err(failed)?;
                self.follow(job).await
            }
            Step::UpdateGame => {
                let job = game::queue(app, actor, game::GameOperation::Update)
                    .await
                    .map_err(failed)?;
                self.follow(job).await
            }
            Step::RefreshWorkshop => {
                let jobs = match server {
                    Some(id) => {
                        let server = app
                            .store()
                            .server(id)
                            .await
                            .map_err(|e| Some(e.to_string()))?;
                        let mut jobs = Vec::new();
                        for overlay in app
                            .store()
                            .blueprint_overlays(server.blueprint_id)
                            .await
                            .map_err(|e| Some(e.to_string()))?
                        {
                            let kind = app
                                .store()
                                .overlay(overlay.overlay_id)
                                .await
                                .map_err(|e| Some(e.to_string()))?
                                .kind;
                            if kind == OverlayKind::Workshop {
                                jobs.push(
                                    workshop::refresh(app, actor, overlay.overlay_id)
                                        .await
                                        .map_err(failed)?,
                                );
                            }
                        }
                        if jobs.is_empty() {
                            self.log("the server has no Workshop overlay").await;
                        }
                        jobs
                    }
                    None => workshop::refresh_all(app, actor).await.map_err(failed)?,
                };
                for job in jobs {
                    self.follow(job).await?;
                }
                Ok(())
            }
            Step::Wait { seconds } => self.pause(Duration::from_secs(u64::from(*seconds))).await,
        }
    }

    /// Waits for a job a step queued; cancelling the run cancels it.
    async fn follow(&self, job: Job) -> RunResult {
        self.log(&format!("job #{}: {}", job.id, job.subject)).await;
        match self.app.jobs().finished(job.id, self.token).await {
            Ok(Some(done)) if done.state == JobState::Succeeded => {
                self.log(&format!("job #{} succeeded", job.id)).await;
                Ok(())
            }
            Ok(Some(done)) => Err(Some(format!(
                "job #{} {}{}",
                done.id,
                done.state.as_str(),
                done.error.map(|e| format!(": {e}")).unwrap_or_default()
            ))),
            Ok(None) => {
                if let Err(e) = self.app.jobs().cancel(&job).await {
                    tracing::error!("cancelling job #{} with its run: {e}", job.id);
                }
                Err(None)
            }
            Err(e) => Err(Some(e.to_string())),
        }
    }
}

fn needs_server() -> Option<String> {
    Some("it acts on a server, and this schedule is the panel's".into())
}

/// Runs a console line through the console operation (kept in the
/// server's console history); its reply, or why there is none.
async fn console_line(
    app: &App,
    actor: &Actor,
    server_id: i64,
    line: &str,
) -> Result<String, String> {
    let entry = console::execute(app, actor, server_id, line)
        .await
        .map_err(|e| e.to_string())?;
    match entry.error {
        Some(error) => Err(error),
        None => Ok(entry.reply.unwrap_or_default()),
    }
}
