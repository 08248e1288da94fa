//! Schedules on the pages: a server's (its Schedules tab) and the
//! panel's (admins), made, changed, run now and deleted.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use left4me_app::error::{FieldErrors, OpError};
use left4me_app::ops::schedule_runs;
use left4me_app::ops::schedules::{self, ScheduleInput, ScheduleView};
use left4me_app::schedule_plan::{Plan, Players, Step};

use super::form_failure;
use crate::auth::CurrentUser;
use crate::error::AppResult;
use crate::pages::{
    FormErrors, Layout, RunRow, ScheduleForm, ScheduleRow, SchedulesPage, datetime, datetime_in,
    render,
};
use crate::state::AppState;

fn new_form() -> ScheduleForm {
    ScheduleForm {
        // The host's zone to start with.
        time_zone: left4me_app::timing::host_zone_name(),
        players: "ignore".into(),
        catch_up: Some("on".into()),
        enabled: Some("on".into()),
        ..ScheduleForm::default()
    }
}

/// A stored schedule's settings in its form.
fn form_of(view: &ScheduleView) -> ScheduleForm {
    let s = &view.schedule;
    let (players, up_to) = match view.plan.players {
        Players::Ignore => ("ignore", String::new()),
        Players::OnlyWhenEmpty => ("only_when_empty", String::new()),
        Players::WaitForEmpty { up_to_minutes } => ("wait_for_empty", up_to_minutes.to_string()),
    };
    let on = |b: bool| b.then(|| "on".to_owned());
    ScheduleForm {
        name: s.name.clone(),
        timing: s.timing.clone(),
        time_zone: s.time_zone.clone(),
        steps: view
            .plan
            .steps
            .iter()
            .map(Step::to_line)
            .collect::<Vec<_>>()
            .join("\n"),
        players: players.into(),
        up_to_minutes: up_to,
        warn_minutes: view
            .plan
            .warn_minutes
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        catch_up: on(s.catch_up),
        enabled: on(s.enabled),
    }
}

fn row(view: &ScheduleView) -> ScheduleRow {
    let form = form_of(view);
    let s = &view.schedule;
    let players = match view.plan.players {
        Players::Ignore => "whoever plays".to_owned(),
        Players::OnlyWhenEmpty => "only when nobody plays".to_owned(),
        Players::WaitForEmpty { up_to_minutes } => {
            format!("waits up to {up_to_minutes} minutes for the server to empty")
        }
    };
    let warned = if view.plan.warn_minutes.is_empty() {
        String::new()
    } else {
        format!("; warns {} minutes before", form.warn_minutes)
    };
    ScheduleRow {
        id: s.id,
        name: s.name.clone(),
        enabled: s.enabled,
        builtin: s.builtin.is_some(),
        when: format!("{} ({})", s.timing, s.time_zone),
        players: players + &warned,
        steps: view.plan.steps.iter().map(Step::describe).collect(),
        next_runs: view
            .next_runs
            .iter()
            .map(|&at| datetime_in(at, &s.time_zone))
            .collect(),
        runs: view
            .runs
            .iter()
            .map(|j| RunRow {
                job_id: j.id,
                state: j.state.as_str().to_owned(),
                at: datetime(&j.started_at.unwrap_or(j.created_at)),
            })
            .collect(),
        last_skipped: s.last_skipped.clone(),
        form,
        errors: FormErrors::default(),
    }
}

/// The form as the operation's input; what cannot be read, by field.
fn input(form: &ScheduleForm) -> Result<ScheduleInput, FieldErrors> {
    let mut errors = FieldErrors::default();
    let steps = match Step::parse_lines(&form.steps) {
        Ok(steps) => steps,
        Err(mistakes) => {
            errors = mistakes;
            Vec::new()
        }
    };
    let minutes = |text: &str| text.trim().parse::<u32>().ok();
    let players = match form.players.as_str() {
        "" | "ignore" => Players::Ignore,
        "only_when_empty" => Players::OnlyWhenEmpty,
        _ => match minutes(&form.up_to_minutes) {
            Some(up_to_minutes) => Players::WaitForEmpty { up_to_minutes },
            None => {
                errors.add(
                    "players",
                    "how many minutes may it wait for the server to empty?",
                );
                Players::Ignore
            }
        },
    };
    let warn_minutes = form
        .warn_minutes
        .split([',', ' '])
        .filter(|w| !w.trim().is_empty())
        .map(|w| minutes(w).ok_or(w))
        .collect::<Result<Vec<u32>, &str>>()
        .map_err(|w| errors.add("warn_minutes", format!("{w:?} is not a number of minutes")))
        .unwrap_or_default();
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ScheduleInput {
        name: form.name.clone(),
        timing: form.timing.clone(),
        time_zone: form.time_zone.clone(),
        plan: Plan {
            steps,
            players,
            warn_minutes,
        },
        catch_up: form.catch_up.is_some(),
        enabled: form.enabled.is_some(),
    })
}

/// The page of `server`'s schedules (`None`: the panel's), the new form
/// as given.
async fn page(
    state: &AppState,
    user: &CurrentUser,
    server: Option<i64>,
    form: ScheduleForm,
    errors: FormErrors,
) -> AppResult<SchedulesPage> {
    let list = schedules::list(state.app(), user, server).await?;
    Ok(SchedulesPage {
        l: Layout::of(user),
        server: list.server.map(|s| (s.id, s.name)),
        can_change: list.can_change,
        schedules: list.schedules.iter().map(row).collect(),
        form,
        errors,
    })
}

pub(crate) async fn of_server(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    let page = page(&state, &user, Some(id), new_form(), FormErrors::default()).await?;
    Ok(render(&page)?.into_response())
}

pub(crate) async fn of_panel(
    State(state): State<AppState>,
    user: CurrentUser,
) -> AppResult<Response> {
    let page = page(&state, &user, None, new_form(), FormErrors::default()).await?;
    Ok(render(&page)?.into_response())
}

/// Where a schedule's page is.
fn page_url(server: Option<i64>) -> String {
    match server {
        Some(id) => format!("/servers/{id}/schedules"),
        None => "/schedules".to_owned(),
    }
}

async fn create(
    state: &AppState,
    user: &CurrentUser,
    server: Option<i64>,
    form: ScheduleForm,
) -> AppResult<Response> {
    let made = match input(&form) {
        Ok(input) => schedules::create(state.app(), user, server, &input).await,
        Err(fields) => Err(OpError::Invalid(fields)),
    };
    match made {
        Ok(view) => Ok(Redirect::to(&format!(
            "{}#schedule-{}",
            page_url(server),
            view.schedule.id
        ))
        .into_response()),
        Err(error) => {
            let (status, errors) = form_failure(error)?;
            let page = page(state, user, server, form, errors).await?;
            Ok((status, render(&page)?).into_response())
        }
    }
}

pub(crate) async fn create_for_server(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<ScheduleForm>,
) -> AppResult<Response> {
    create(&state, &user, Some(id), form).await
}

pub(crate) async fn create_for_panel(
    State(state): State<AppState>,
    user: CurrentUser,
    Form(form): Form<ScheduleForm>,
) -> AppResult<Response> {
    create(&state, &user, None, form).await
}

pub(crate) async fn change(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<ScheduleForm>,
) -> AppResult<Response> {
    let server = schedules::show(state.app(), &user, id)
        .await?
        .schedule
        .server_id;
    let changed = match input(&form) {
        Ok(input) => schedules::change(state.app(), &user, id, &input).await,
        Err(fields) => Err(OpError::Invalid(fields)),
    };
    match changed {
        Ok(_) => Ok(Redirect::to(&format!("{}#schedule-{id}", page_url(server))).into_response()),
        Err(error) => {
            let (status, errors) = form_failure(error)?;
            let mut page = page(&state, &user, server, new_form(), FormErrors::default()).await?;
            if let Some(row) = page.schedules.iter_mut().find(|r| r.id == id) {
                row.form = form;
                row.errors = errors;
            }
            Ok((status, render(&page)?).into_response())
        }
    }
}

pub(crate) async fn run(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    let job = schedule_runs::run_now(state.app(), &user, id).await?;
    Ok(Redirect::to(&format!("/jobs/{}", job.id)).into_response())
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    let server = schedules::show(state.app(), &user, id)
        .await?
        .schedule
        .server_id;
    schedules::delete(state.app(), &user, id).await?;
    Ok(Redirect::to(&page_url(server)).into_response())
}
