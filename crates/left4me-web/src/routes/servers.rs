//! Servers: the dashboard list, creation, the server page and its actions.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use left4me_store::{
    Blueprint, JobFilter, ListedServer, NewServer, Server, ServerFilter, ServerRole,
};
use serde::Deserialize;

use crate::access::{self, ServerAction, ServerGrant};
use crate::auth::{CurrentUser, random_token};
use crate::domain::{DisplayName, Hostname, parse_optional_port};
use crate::error::{AppError, AppResult};
use crate::jobs::JobKind;
use crate::pages::{
    Choice, DashboardPage, FormErrors, Layout, NewServerForm, ServerPage, ServerPermissions,
    ServerRow, ServerSettings, render,
};
use crate::spec_builder::{ask_host, build_spec, instance_name};
use crate::state::AppState;

/// The supervisor's word for each server's state, asked off the runtime.
async fn actual_states(state: &AppState, ids: Vec<i64>) -> AppResult<Vec<String>> {
    let statuses = ask_host(state.host(), &ids, |host, names| {
        host.process_statuses(names)
    })
    .await
    .map_err(AppError::internal)?;
    Ok(statuses
        .into_iter()
        .map(|s| s.map_or_else(|e| format!("unknown ({e})"), |s| s.state))
        .collect())
}

/// A server list row, with the poller's map and players and, when it
/// runs an older build, what a restart brings.
fn row(
    state: &AppState,
    listed: ListedServer,
    actual: String,
    builds: &crate::game::Builds,
) -> ServerRow {
    let s = listed.server;
    ServerRow {
        outdated: (actual == "running")
            .then(|| builds.restart_note(s.id))
            .flatten()
            .unwrap_or_default(),
        id: s.id,
        owner: listed.owner_name,
        role: listed.member_role.map_or("", ServerRole::as_str),
        blueprint: listed.blueprint_name,
        // The poller's last answer outlives a stop by up to one cycle:
        // a server that is not running shows none.
        live: live_if_running(state, s.id, &actual).map_or_else(String::new, |live| {
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
        actual,
    }
}

/// The poller's state of a server whose supervisor says it is running.
fn live_if_running(state: &AppState, id: i64, actual: &str) -> Option<crate::live::LiveState> {
    (actual == "running")
        .then(|| state.live().get(id))
        .flatten()
}

async fn dashboard_page(
    state: &AppState,
    user: &CurrentUser,
    form: NewServerForm,
    errors: FormErrors,
) -> AppResult<DashboardPage> {
    let filter = if user.is_admin() {
        ServerFilter::All
    } else {
        ServerFilter::Of(user.id())
    };
    let listed = state.store().listed_servers(filter, user.id()).await?;
    let actual = actual_states(state, listed.iter().map(|l| l.server.id).collect()).await?;
    let builds = crate::game::builds(state.store(), state.jobs().installer()).await;
    Ok(DashboardPage {
        l: Layout::of(user),
        servers: listed
            .into_iter()
            .zip(actual)
            .map(|(listed, actual)| row(state, listed, actual, &builds))
            .collect(),
        blueprints: blueprint_choices(state, user, None).await?,
        form,
        errors,
    })
}

/// The blueprints a user may build on (their own, shared ones, all of
/// them for admins), plus `current` (with its owner's name) if the user
/// cannot see it; others' are labelled with the owner.
async fn blueprint_choices(
    state: &AppState,
    user: &CurrentUser,
    current: Option<(Blueprint, String)>,
) -> AppResult<Vec<Choice>> {
    let mut choices: Vec<Choice> = state
        .store()
        .visible_blueprints(user.viewer())
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

pub(crate) async fn dashboard(
    State(state): State<AppState>,
    user: CurrentUser,
) -> AppResult<Response> {
    let page = dashboard_page(
        &state,
        &user,
        NewServerForm::default(),
        FormErrors::default(),
    )
    .await?;
    Ok(render(&page)?.into_response())
}

pub(crate) async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    Form(form): Form<NewServerForm>,
) -> AppResult<Response> {
    let mut errors = FormErrors::default();
    let name = DisplayName::parse(&form.name)
        .map_err(|e| errors.add("name", e))
        .ok();
    let hostname = Hostname::parse(&form.hostname)
        .map_err(|e| errors.add("hostname", e))
        .ok();
    let port = parse_optional_port(&form.port)
        .map_err(|e| errors.add("port", e))
        .ok();
    let blueprint = match form.blueprint_id.parse::<i64>() {
        Ok(id) => match state.store().blueprint(id).await {
            Ok(b) if user.item_access(&b).is_some() => Some(b),
            _ => {
                errors.add("blueprint_id", "choose one of the blueprints offered");
                None
            }
        },
        Err(_) => {
            errors.add("blueprint_id", "choose a blueprint (create one first)");
            None
        }
    };
    let (Some(name), Some(hostname), Some(port), Some(blueprint)) =
        (name, hostname, port, blueprint)
    else {
        let page = dashboard_page(&state, &user, form, errors).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    };
    let rcon_password = random_token()[..20].to_owned();
    let range = state.config().port_range();
    // Our own servers hold their ports too; the store tells those apart.
    let ours: Vec<i64> = state
        .store()
        .servers(None)
        .await?
        .iter()
        .map(|s| s.port)
        .collect();
    // Reads all of /proc: off the async runtime.
    let bound = tokio::task::spawn_blocking(left4me_host::ports::bound_ports)
        .await
        .map_err(AppError::internal)?;
    let held: Vec<u16> = range
        .clone()
        .chain(port)
        .filter(|p| !ours.contains(&i64::from(*p)) && bound.contains(p))
        .collect();
    let created = state
        .store()
        .create_server(&NewServer {
            owner_id: user.id(),
            blueprint_id: blueprint.id,
            name: name.as_str(),
            hostname: hostname.as_str(),
            port,
            port_range: range,
            rcon_password: &rcon_password,
            held_elsewhere: &held,
        })
        .await;
    match created {
        Ok(server) => {
            let detail = format!("created server {} on port {}", server.name, server.port);
            super::record(&state, &user, Some(server.id), "server.create", detail).await?;
            Ok(Redirect::to(&format!("/servers/{}", server.id)).into_response())
        }
        Err(left4me_store::StoreError::Conflict(message)) => {
            let field = if message.contains("port") {
                "port"
            } else {
                "name"
            };
            errors.add(field, message);
            let page = dashboard_page(&state, &user, form, errors).await?;
            Ok((StatusCode::CONFLICT, render(&page)?).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// The host players connect to: configured, or the host the panel was
/// opened with.
fn public_host(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(host) = &state.config().public_host {
        return host.clone();
    }
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.rsplit_once(':').map_or(h, |(name, _)| name).to_owned())
        .unwrap_or_else(|| "localhost".into())
}

async fn server_page(
    state: &AppState,
    user: &CurrentUser,
    grant: ServerGrant,
    headers: &HeaderMap,
    errors: FormErrors,
    submitted: Option<ServerSettings>,
) -> AppResult<ServerPage> {
    let ServerGrant { server, access } = grant;
    let blueprint = state.store().blueprint(server.blueprint_id).await?;
    let overlays = state.store().blueprint_overlays(blueprint.id).await?;
    // Masked like the RCON password field above, which reveals it on a
    // click: the spec is in plain sight on the page.
    let masked = Server {
        rcon_password: "(hidden: Reveal it under RCON password)".into(),
        ..server.clone()
    };
    let spec_yaml = match build_spec(&masked, &blueprint, &overlays) {
        Ok(spec) => spec.to_yaml(),
        Err(e) => format!("# this server cannot start: {e}"),
    };
    let host = std::sync::Arc::clone(state.host());
    let name = instance_name(server.id);
    let status = tokio::task::spawn_blocking(move || host.status(&name))
        .await
        .map_err(AppError::internal)?
        .map_err(AppError::internal)?;
    let connect = format!(
        "steam://connect/{}:{}",
        public_host(state, headers),
        server.port
    );
    let rcon_password = server.rcon_password.expose().to_owned();
    let server_id = server.id;
    let settings = submitted.unwrap_or_else(|| ServerSettings {
        name: server.name.clone(),
        hostname: server.hostname.clone(),
        blueprint_id: server.blueprint_id,
    });
    // The server may be on a blueprint the user cannot see (an admin's
    // choice, or a share taken back): list it too, or the form would
    // silently switch to another on save.
    let blueprint_owner = state.store().user(blueprint.owner_id).await?.username;
    let blueprints = blueprint_choices(state, user, Some((blueprint, blueprint_owner))).await?;
    // A submitted choice that is not offered (gone, or not the user's)
    // shows the current one, so the next save cannot switch silently.
    let settings = if blueprints.iter().any(|b| b.id == settings.blueprint_id) {
        settings
    } else {
        ServerSettings {
            blueprint_id: server.blueprint_id,
            ..settings
        }
    };
    let jobs = state.store().jobs(JobFilter::Server(server.id), 20).await?;
    let listed = state
        .store()
        .listed_servers(ServerFilter::One(server_id), user.id())
        .await?
        .pop()
        .ok_or(AppError::NotFound)?;
    let online = live_if_running(state, server_id, &status.state)
        .map(|l| l.online)
        .unwrap_or_default();
    let builds = crate::game::builds(state.store(), state.jobs().installer()).await;
    let row = row(state, listed, status.state, &builds);
    let p = ServerPermissions::new(access, &row.actual);
    let (members, candidates) = if p.manage {
        let members = state.store().server_members(server_id).await?;
        let candidates = state
            .store()
            .users()
            .await?
            .into_iter()
            .filter(|u| u.id != server.owner_id && u.is_active)
            .map(|u| (u.id, u.username))
            .collect();
        (members, candidates)
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(ServerPage {
        l: Layout::of(user),
        row,
        p,
        members,
        candidates,
        rcon_password,
        settings,
        blueprints,
        connect,
        spec_yaml,
        pid: status.pid.map_or("-".into(), |p| p.to_string()),
        uptime: status.since.map_or("-".into(), |since| {
            let secs = u64::try_from(left4me_store::now())
                .unwrap_or(0)
                .saturating_sub(since);
            format!("{}h {:02}m {:02}s", secs / 3600, secs / 60 % 60, secs % 60)
        }),
        restarts: status.restarts,
        reason: status.reason.unwrap_or_default(),
        jobs,
        errors,
        online,
        sessions: state.store().recent_player_sessions(server_id, 30).await?,
    })
}

pub(crate) async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> AppResult<Response> {
    let grant = access::server(&state, &user, id, ServerAction::View).await?;
    let page = server_page(&state, &user, grant, &headers, FormErrors::default(), None).await?;
    Ok(render(&page)?.into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct ActionForm {
    action: String,
}

pub(crate) async fn action(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<ActionForm>,
) -> AppResult<Response> {
    let kind = match form.action.as_str() {
        "start" => JobKind::ServerStart,
        "stop" => JobKind::ServerStop,
        "restart" => JobKind::ServerRestart,
        "reset" => JobKind::ServerReset,
        "delete" => JobKind::ServerDelete,
        other => return Err(AppError::BadRequest(format!("unknown action {other:?}"))),
    };
    let action = ServerAction::of_job(kind).expect("server jobs act on a server");
    let server = access::server(&state, &user, id, action).await?.server;
    let job = state
        .jobs()
        .enqueue(kind, crate::jobs::Actor::User(&user.user), &server)
        .await?;
    Ok(Redirect::to(&format!("/jobs/{}", job.id)).into_response())
}

pub(crate) async fn settings(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<ServerSettings>,
) -> AppResult<Response> {
    let grant = access::server(&state, &user, id, ServerAction::Manage).await?;
    let server = &grant.server;
    let mut errors = FormErrors::default();
    let name = DisplayName::parse(&form.name)
        .map_err(|e| errors.add("name", e))
        .ok();
    let hostname = Hostname::parse(&form.hostname)
        .map_err(|e| errors.add("hostname", e))
        .ok();
    let blueprint = match state.store().blueprint(form.blueprint_id).await {
        // Keeping the current one is fine even when the user cannot see it.
        Ok(b) if user.item_access(&b).is_some() || b.id == server.blueprint_id => Some(b),
        _ => {
            errors.add("blueprint_id", "choose one of the blueprints offered");
            None
        }
    };
    if let (Some(name), Some(hostname), Some(blueprint)) = (name, hostname, blueprint) {
        let store = state.store();
        match store.rename_server(id, name.as_str()).await {
            Ok(()) => {
                store.set_server_hostname(id, hostname.as_str()).await?;
                store.set_server_blueprint(id, blueprint.id).await?;
                let detail = format!(
                    "changed server {} to name {}, hostname {:?}, blueprint {}",
                    server.name,
                    name.as_str(),
                    hostname.as_str(),
                    blueprint.name
                );
                super::record(&state, &user, Some(id), "server.settings", detail).await?;
                return Ok(Redirect::to(&format!("/servers/{id}")).into_response());
            }
            Err(left4me_store::StoreError::Conflict(message)) => errors.add("name", message),
            Err(e) => return Err(e.into()),
        }
    }
    let page = server_page(&state, &user, grant, &headers, errors, Some(form)).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct MemberForm {
    user_id: i64,
    /// `operator`, `viewer`, or `remove`.
    role: String,
}

/// Adds a member, changes their role, or removes them.
pub(crate) async fn member(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<MemberForm>,
) -> AppResult<Response> {
    let server = access::server(&state, &user, id, ServerAction::Manage)
        .await?
        .server;
    let member = match state.store().user(form.user_id).await {
        Ok(u) if u.is_active || form.role == "remove" => u,
        Ok(_) | Err(left4me_store::StoreError::NotFound) => {
            return Err(AppError::BadRequest(
                "choose one of the active users offered".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let role = match form.role.as_str() {
        "operator" => Some(ServerRole::Operator),
        "viewer" => Some(ServerRole::Viewer),
        "remove" => None,
        other => return Err(AppError::BadRequest(format!("unknown role {other:?}"))),
    };
    let detail = match role {
        Some(role) => {
            state.store().set_server_member(id, member.id, role).await?;
            format!(
                "made {} {} of server {}",
                member.username,
                if role == ServerRole::Operator {
                    "an operator"
                } else {
                    "a viewer"
                },
                server.name
            )
        }
        None => {
            state.store().remove_server_member(id, member.id).await?;
            format!("removed {} from server {}", member.username, server.name)
        }
    };
    super::record(&state, &user, Some(id), "server.members", detail).await?;
    Ok(Redirect::to(&format!("/servers/{id}#members")).into_response())
}
