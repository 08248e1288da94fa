//! Servers: the dashboard list, creation, the server page and its actions.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use left4me_app::ops::servers::{
    self, HistoryRange, MemberInput, NewServerInput, ServerDetail, ServerOperation,
    ServerSettingsInput, ServerSummary,
};
use left4me_store::{Blueprint, ServerRole};
use serde::Deserialize;

use super::form_failure;
use crate::auth::CurrentUser;
use crate::error::AppResult;
use crate::pages::{
    Choice, DashboardPage, FormErrors, Layout, ServerPage, ServerPermissions, ServerRow, render,
};
use crate::state::AppState;

/// A server list row: the poller's map and players and, when it runs an
/// older build, what a restart brings.
fn row(summary: ServerSummary) -> ServerRow {
    let s = summary.listed.server;
    ServerRow {
        outdated: summary.restart_note.unwrap_or_default(),
        id: s.id,
        owner: summary.listed.owner_name,
        role: summary.listed.member_role.map_or("", ServerRole::as_str),
        blueprint: summary.listed.blueprint_name,
        live: summary.live.map_or_else(String::new, |live| {
            format!(
                "{} · {}/{} players{}",
                live.map,
                live.players,
                live.max_players,
                if live.hibernating {
                    " · hibernating"
                } else {
                    ""
                }
            )
        }),
        name: s.name,
        hostname: s.hostname,
        port: s.port,
        desired: match s.desired_state {
            left4me_store::DesiredState::Running => "running".into(),
            left4me_store::DesiredState::Stopped => "stopped".into(),
        },
        actual: summary.state,
    }
}

/// The blueprints a user may build on, labelled with their owners, plus
/// `current` (with its owner's name) if the user cannot see it.
async fn blueprint_choices(
    state: &AppState,
    user: &CurrentUser,
    current: Option<(Blueprint, String)>,
) -> AppResult<Vec<Choice>> {
    let mut choices: Vec<Choice> = left4me_app::ops::blueprints::usable(state.app(), user)
        .await?
        .into_iter()
        .map(|b| {
            Choice::new(
                b.blueprint.id,
                b.blueprint.name,
                b.blueprint.owner_id,
                &b.owner_name,
                user,
            )
        })
        .collect();
    if let Some((current, owner)) = current
        && !choices.iter().any(|c| c.id == current.id)
    {
        choices.insert(
            0,
            Choice::new(current.id, current.name, current.owner_id, &owner, user),
        );
    }
    Ok(choices)
}

async fn dashboard_page(
    state: &AppState,
    user: &CurrentUser,
    form: NewServerInput,
    errors: FormErrors,
) -> AppResult<DashboardPage> {
    Ok(DashboardPage {
        l: Layout::of(user),
        servers: servers::list(state.app(), user)
            .await?
            .into_iter()
            .map(row)
            .collect(),
        blueprints: blueprint_choices(state, user, None).await?,
        form,
        errors,
    })
}

pub(crate) async fn dashboard(
    State(state): State<AppState>,
    user: CurrentUser,
) -> AppResult<Response> {
    let page = dashboard_page(
        &state,
        &user,
        NewServerInput::default(),
        FormErrors::default(),
    )
    .await?;
    Ok(render(&page)?.into_response())
}

pub(crate) async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    Form(form): Form<NewServerInput>,
) -> AppResult<Response> {
    match servers::create(state.app(), &user, &form).await {
        Ok(server) => Ok(Redirect::to(&format!("/servers/{}", server.server().id)).into_response()),
        Err(error) => {
            let (status, errors) = form_failure(error)?;
            let page = dashboard_page(&state, &user, form, errors).await?;
            Ok((status, render(&page)?).into_response())
        }
    }
}

/// The host players connect to: configured, or the host the panel was
/// opened with.
fn public_host(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(host) = &state.app().config().public_host {
        return host.clone();
    }
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.rsplit_once(':').map_or(h, |(name, _)| name).to_owned())
        .unwrap_or_else(|| "localhost".into())
}

/// What the server page is asked beyond its server.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PageQuery {
    /// How far back the graphs look.
    #[serde(default)]
    graph: HistoryRange,
}

async fn server_page(
    state: &AppState,
    user: &CurrentUser,
    detail: ServerDetail,
    range: HistoryRange,
    headers: &HeaderMap,
    errors: FormErrors,
    submitted: Option<ServerSettingsInput>,
) -> AppResult<ServerPage> {
    let server = detail.summary.server().clone();
    // The server may be on a blueprint the user cannot see (an admin's
    // choice, or a share taken back): list it too, or the form would
    // silently switch to another on save.
    let blueprints = blueprint_choices(
        state,
        user,
        Some((detail.blueprint, detail.blueprint_owner)),
    )
    .await?;
    let current = ServerSettingsInput {
        name: server.name.clone(),
        hostname: server.hostname.clone(),
        blueprint_id: server.blueprint_id.to_string(),
    };
    // A submitted choice that is not offered (gone, or not the user's)
    // shows the current one, so the next save cannot switch silently.
    let settings = match submitted {
        Some(s)
            if blueprints
                .iter()
                .any(|b| b.id.to_string() == s.blueprint_id) =>
        {
            s
        }
        Some(s) => ServerSettingsInput {
            blueprint_id: current.blueprint_id,
            ..s
        },
        None => current,
    };
    let process = detail.summary.process.clone().unwrap_or_default();
    let rcon_refused = detail.summary.rcon_refused;
    let row = row(detail.summary);
    Ok(ServerPage {
        l: Layout::of(user),
        p: ServerPermissions::new(detail.access, &row.actual),
        row,
        members: detail.members,
        candidates: detail.candidates,
        rcon_password: detail.rcon_password.map(|p| p.expose().to_owned()),
        settings,
        blueprints,
        connect: format!(
            "steam://connect/{}:{}",
            public_host(state, headers),
            server.port
        ),
        spec_yaml: detail.spec_yaml,
        pid: process.pid.map_or("-".into(), |p| p.to_string()),
        uptime: process.since.map_or("-".into(), |since| {
            let secs = u64::try_from(left4me_store::now())
                .unwrap_or(0)
                .saturating_sub(since);
            format!("{}h {:02}m {:02}s", secs / 3600, secs / 60 % 60, secs % 60)
        }),
        restarts: process.restarts,
        reason: process.reason.unwrap_or_default(),
        jobs: detail.jobs,
        errors,
        backup_failed: detail
            .backup_failed
            .map(|j| (j.id, j.error.unwrap_or_default())),
        online: detail.online,
        sessions: detail.sessions,
        rcon_refused,
        charts: crate::charts::charts(
            &detail.history,
            range,
            left4me_store::now(),
            &jiff::tz::TimeZone::system(),
        ),
        graph_range: range.as_str(),
        graph_ranges: HistoryRange::ALL.map(|r| {
            (
                r.as_str(),
                match r {
                    HistoryRange::Day => "Last day",
                    HistoryRange::Week => "Last week",
                    HistoryRange::Month => "Last month",
                },
            )
        }),
    })
}

pub(crate) async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(query): Query<PageQuery>,
) -> AppResult<Response> {
    let detail = servers::detail(state.app(), &user, id, Some(query.graph)).await?;
    let page = server_page(
        &state,
        &user,
        detail,
        query.graph,
        &headers,
        FormErrors::default(),
        None,
    )
    .await?;
    Ok(render(&page)?.into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct ActionForm {
    action: ServerOperation,
}

pub(crate) async fn action(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<ActionForm>,
) -> AppResult<Response> {
    let job = servers::queue(state.app(), &user, id, form.action).await?;
    Ok(Redirect::to(&format!("/jobs/{}", job.id)).into_response())
}

pub(crate) async fn settings(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<ServerSettingsInput>,
) -> AppResult<Response> {
    match servers::change(state.app(), &user, id, &form).await {
        Ok(_) => Ok(Redirect::to(&format!("/servers/{id}")).into_response()),
        Err(error) => {
            let (status, errors) = form_failure(error)?;
            let range = HistoryRange::default();
            let detail = servers::detail(state.app(), &user, id, Some(range)).await?;
            let page =
                server_page(&state, &user, detail, range, &headers, errors, Some(form)).await?;
            Ok((status, render(&page)?).into_response())
        }
    }
}

/// Adds a member, changes their role, or removes them.
pub(crate) async fn member(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<MemberInput>,
) -> AppResult<Response> {
    servers::set_member(state.app(), &user, id, &form).await?;
    Ok(Redirect::to(&format!("/servers/{id}#members")).into_response())
}
