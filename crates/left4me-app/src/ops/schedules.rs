//! Schedules: a server's (its owner, admins and operators make them) or
//! the panel's (admins). They run in [`super::schedule_runs`], with the
//! rights of who made them, through the same operations as the pages.

use jiff::Timestamp;
use left4me_store::{Job, Schedule, ScheduleSettings};

use crate::App;
use crate::actor::Actor;
use crate::error::{FieldErrors, OpError, OpResult};
use crate::ops::access::{self, ServerAction};
use crate::ops::activity::record;
use crate::schedule_plan::{Plan, Scope, Step};
use crate::timing::{self, Timing};

/// A schedule as asked for: the plan parsed, nothing checked yet.
#[derive(Debug, Clone)]
pub struct ScheduleInput {
    pub name: String,
    /// "HH:MM" or five cron fields.
    pub timing: String,
    /// An IANA time zone ("Europe/Berlin").
    pub time_zone: String,
    pub plan: Plan,
    /// A run missed while the panel was down runs once when it is back.
    pub catch_up: bool,
    pub enabled: bool,
}

/// A schedule with what the pages show of it.
#[derive(Debug, Clone)]
pub struct ScheduleView {
    pub schedule: Schedule,
    pub plan: Plan,
    /// Its next runs (unix seconds), soonest first; none while off.
    pub next_runs: Vec<i64>,
    /// Its last runs, newest first.
    pub runs: Vec<Job>,
}

/// How many coming runs the pages list.
const NEXT_RUNS: usize = 3;
/// How many past runs the pages list.
const LAST_RUNS: i64 = 5;
const MAX_NAME: usize = 64;

/// The timing and zone of a stored schedule (written checked).
pub(crate) fn when(schedule: &Schedule) -> OpResult<(Timing, jiff::tz::TimeZone)> {
    let broken = |e: timing::TimingError| {
        OpError::internal(format!("schedule {} as stored", schedule.id), e)
    };
    Ok((
        Timing::parse(&schedule.timing).map_err(broken)?,
        timing::zone(&schedule.time_zone).map_err(broken)?,
    ))
}

/// The plan of a stored schedule.
pub(crate) fn plan_of(schedule: &Schedule) -> OpResult<Plan> {
    serde_json::from_str(&schedule.plan)
        .map_err(|e| OpError::internal(format!("schedule {}'s plan as stored", schedule.id), e))
}

fn timestamp(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH)
}

async fn view(app: &App, schedule: Schedule) -> OpResult<ScheduleView> {
    let (timing, zone) = when(&schedule)?;
    let mut next_runs = Vec::new();
    if schedule.enabled {
        let mut at = timestamp(schedule.due_at);
        next_runs.push(schedule.due_at);
        while next_runs.len() < NEXT_RUNS {
            let Some(next) = timing.next_after(&zone, at) else {
                break;
            };
            next_runs.push(next.as_second());
            at = next;
        }
    }
    Ok(ScheduleView {
        plan: plan_of(&schedule)?,
        runs: app.store().schedule_runs(schedule.id, LAST_RUNS).await?,
        next_runs,
        schedule,
    })
}

/// Who may see (`change` false) or make and change (`change` true) the
/// schedules of `server` (`None`: the panel's).
async fn require(app: &App, actor: &Actor, server: Option<i64>, change: bool) -> OpResult<()> {
    match server {
        Some(id) => {
            let action = if change {
                ServerAction::Schedule
            } else {
                ServerAction::View
            };
            access::server(app, actor, id, action).await.map(|_| ())
        }
        None => {
            access::admin(actor, "see and change the panel's own schedules")?;
            if change {
                Ok(())
            } else {
                actor.require(crate::actor::Scope::Read)
            }
        }
    }
}

/// A schedule `actor` may see, or change.
async fn schedule(app: &App, actor: &Actor, id: i64, change: bool) -> OpResult<Schedule> {
    let schedule = app.store().schedule(id).await?;
    match require(app, actor, schedule.server_id, change).await {
        // Never tell a stranger which schedules exist.
        Err(OpError::Forbidden(_)) if schedule.server_id.is_none() && !change => {
            Err(OpError::NotFound)
        }
        Err(e) => Err(e),
        Ok(()) => Ok(schedule),
    }
}

/// A server's schedules (or the panel's), and what the user may do.
#[derive(Debug, Clone)]
pub struct ScheduleList {
    /// `None`: the panel's own.
    pub server: Option<left4me_store::Server>,
    /// Operators, the owner and admins (the panel's: admins).
    pub can_change: bool,
    pub schedules: Vec<ScheduleView>,
}

/// The schedules of `server` (`None`: the panel's), by name.
pub async fn list(app: &App, actor: &Actor, server: Option<i64>) -> OpResult<ScheduleList> {
    let (server, can_change) = match server {
        // One access check answers both: may see, and may change.
        Some(id) => {
            let grant = access::server(app, actor, id, ServerAction::View).await?;
            let can = grant.access.allows(ServerAction::Schedule);
            (Some(grant.server), can)
        }
        None => {
            require(app, actor, None, false).await?;
            (None, true)
        }
    };
    let mut schedules = Vec::new();
    for schedule in app
        .store()
        .schedules_of(server.as_ref().map(|s| s.id))
        .await?
    {
        schedules.push(view(app, schedule).await?);
    }
    Ok(ScheduleList {
        server,
        can_change,
        schedules,
    })
}

pub async fn show(app: &App, actor: &Actor, id: i64) -> OpResult<ScheduleView> {
    view(app, schedule(app, actor, id, false).await?).await
}

/// A schedule that `actor` may change (and run now).
pub(crate) async fn changeable(app: &App, actor: &Actor, id: i64) -> OpResult<Schedule> {
    schedule(app, actor, id, true).await
}

/// A schedule's settings, checked, as they are stored.
pub(crate) struct Checked {
    pub(crate) name: String,
    timing: String,
    time_zone: String,
    plan: String,
    catch_up: bool,
    enabled: bool,
    /// Its first run, from now.
    due_at: i64,
}

impl Checked {
    pub(crate) fn settings(&self) -> ScheduleSettings<'_> {
        ScheduleSettings {
            name: &self.name,
            timing: &self.timing,
            time_zone: &self.time_zone,
            plan: &self.plan,
            catch_up: self.catch_up,
            enabled: self.enabled,
            due_at: self.due_at,
        }
    }
}

/// Where a schedule acts: `server`'s, or the panel's.
fn scope_of(server: Option<i64>) -> Scope {
    if server.is_some() {
        Scope::Server
    } else {
        Scope::Panel
    }
}

/// `input` checked for a schedule `actor` makes or changes for `server`
/// (`None`: the panel's): every mistake named by its field.
pub(crate) fn check(
    actor: &Actor,
    input: &ScheduleInput,
    server: Option<i64>,
) -> OpResult<Checked> {
    let scope = scope_of(server);
    let mut errors = FieldErrors::default();
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        errors.add(
            "name",
            format!("a name of 1 to {MAX_NAME} characters, on one line"),
        );
    }
    let timing = Timing::parse(&input.timing)
        .map_err(|e| errors.add("timing", e.to_string()))
        .ok();
    let zone = timing::zone(&input.time_zone)
        .map_err(|e| errors.add("time_zone", e.to_string()))
        .ok();
    let plan = match input.plan.clone().check(scope) {
        Ok(plan) => Some(plan),
        Err(plan_errors) => {
            for e in plan_errors.iter() {
                errors.add(e.field, e.message.clone());
            }
            None
        }
    };
    let (Some(timing), Some(zone), Some(plan), true) = (timing, zone, plan, errors.is_empty())
    else {
        return Err(OpError::Invalid(errors));
    };
    if plan.steps.iter().any(|s| {
        matches!(
            s,
            Step::UpdateGame | Step::CheckGame | Step::BackUp | Step::CheckBackups
        )
    }) {
        access::game(actor)?;
    }
    Ok(Checked {
        name: name.to_owned(),
        due_at: timing
            .next_after(&zone, Timestamp::now())
            .map(Timestamp::as_second)
            .ok_or_else(|| OpError::invalid("timing", "it never comes round"))?,
        timing: timing.to_string(),
        time_zone: input.time_zone.trim().to_owned(),
        plan: serde_json::to_string(&plan).map_err(|e| OpError::internal("writing a plan", e))?,
        catch_up: input.catch_up,
        enabled: input.enabled,
    })
}

/// Makes a schedule for `server` (`None`: the panel's).
pub async fn create(
    app: &App,
    actor: &Actor,
    server: Option<i64>,
    input: &ScheduleInput,
) -> OpResult<ScheduleView> {
    require(app, actor, server, true).await?;
    let checked = check(actor, input, server)?;
    let mut write = app.store().write().await?;
    let made = write
        .create_schedule(server, actor.id(), &checked.settings())
        .await?;
    let detail = format!(
        "made the schedule {} ({}, {})",
        checked.name, checked.timing, checked.time_zone
    );
    record(&mut write, actor, server, "schedule.create", &detail).await?;
    write.commit().await?;
    view(app, made).await
}

/// New settings for a schedule; its next run is counted from now.
pub async fn change(
    app: &App,
    actor: &Actor,
    id: i64,
    input: &ScheduleInput,
) -> OpResult<ScheduleView> {
    let before = changeable(app, actor, id).await?;
    let checked = check(actor, input, before.server_id)?;
    let mut write = app.store().write().await?;
    let changed = write.update_schedule(id, &checked.settings()).await?;
    let detail = format!("changed the schedule {}", checked.name);
    record(
        &mut write,
        actor,
        before.server_id,
        "schedule.change",
        &detail,
    )
    .await?;
    write.commit().await?;
    view(app, changed).await
}

pub async fn delete(app: &App, actor: &Actor, id: i64) -> OpResult<()> {
    let schedule = changeable(app, actor, id).await?;
    if schedule.builtin.is_some() {
        return Err(OpError::conflict(
            "This is one of the panel's own routines: turn it off instead.",
        ));
    }
    let mut write = app.store().write().await?;
    write.delete_schedule(id).await?;
    let detail = format!("deleted the schedule {}", schedule.name);
    record(
        &mut write,
        actor,
        schedule.server_id,
        "schedule.delete",
        &detail,
    )
    .await?;
    write.commit().await?;
    Ok(())
}
