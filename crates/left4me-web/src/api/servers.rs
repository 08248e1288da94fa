//! `/api/v1/servers`: the servers the caller may see, with their live
//! state; creating and changing them; the jobs that start, stop, restart,
//! reset and delete them; members and the RCON console.

use std::convert::Infallible;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use left4me_app::error::OpError;
use left4me_app::ops::servers::{
    self, MemberInput, MemberRole, NewServerInput, ServerOperation, ServerSettingsInput,
    ServerSummary,
};
use left4me_app::ops::{console, server_files, server_log};
use left4me_files::RelPath;
use left4me_store::ConsoleCommand;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::ApiUser;
use super::jobs::{JobView, accepted};
use super::overlay_files::EntryView;
use super::problem::{ApiResult, Problem};
use super::{ApiJson, Paging};
use crate::responses::{file_download, log_resume_point, server_log_stream};
use crate::state::AppState;

/// A player on a server now.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PlayerView {
    name: String,
    score: i32,
    /// Seconds connected.
    seconds: u64,
    steam_id: Option<String>,
    ping: Option<u32>,
}

/// What a running server answered the last poll (every few seconds).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LiveView {
    map: String,
    players: u8,
    max_players: u8,
    hibernating: bool,
    online: Vec<PlayerView>,
    /// Unix seconds of the answer.
    at: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ServerView {
    id: i64,
    name: String,
    hostname: String,
    port: i64,
    owner: String,
    blueprint_id: i64,
    blueprint: String,
    /// The caller's role when a member (`operator`, `viewer`).
    role: Option<String>,
    /// What it should be: `running` or `stopped`.
    desired_state: String,
    /// What the supervisor says it is: `running`, `stopped`, `failed`, …
    state: String,
    /// The poll's answer while it runs.
    live: Option<LiveView>,
    /// Why a restart would change it (a newer game build, rebuilt overlays).
    restart_note: Option<String>,
    /// The running server refused the panel's RCON password: its
    /// `rcon_password` no longer matches (a config changed it).
    rcon_refused: bool,
    /// In one server's answer, for those who may use its console (with
    /// the operate scope); never in lists.
    rcon_password: Option<String>,
}

impl From<ServerSummary> for ServerView {
    fn from(s: ServerSummary) -> Self {
        let server = s.listed.server;
        Self {
            id: server.id,
            name: server.name,
            hostname: server.hostname,
            port: server.port,
            owner: s.listed.owner_name,
            blueprint_id: server.blueprint_id,
            blueprint: s.listed.blueprint_name,
            role: s.listed.member_role.map(|r| r.as_str().to_owned()),
            desired_state: match server.desired_state {
                left4me_store::DesiredState::Running => "running".into(),
                left4me_store::DesiredState::Stopped => "stopped".into(),
            },
            state: s.state,
            live: s.live.map(|l| LiveView {
                map: l.map,
                players: l.players,
                max_players: l.max_players,
                hibernating: l.hibernating,
                online: l
                    .online
                    .into_iter()
                    .map(|p| PlayerView {
                        name: p.name,
                        score: p.score,
                        seconds: p.seconds,
                        steam_id: p.steam_id,
                        ping: p.ping,
                    })
                    .collect(),
                at: l.at,
            }),
            restart_note: s.restart_note,
            rcon_refused: s.rcon_refused,
            rcon_password: None,
        }
    }
}

/// One page of servers.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ServerList {
    items: Vec<ServerView>,
    /// How many there are in all.
    total: usize,
    /// The next page, if there is one.
    next: Option<String>,
}

/// The servers the caller may see (all for admins), by name.
#[utoipa::path(get, path = "/servers", tag = "servers", params(Paging),
    responses((status = 200, body = ServerList), (status = 401, body = Problem)),
    security(("token" = ["read"])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    user: ApiUser,
    Query(paging): Query<Paging>,
) -> ApiResult<Json<ServerList>> {
    let all = servers::list(state.app(), &user).await?;
    let (items, total, next) = paging.page(all, "/api/v1/servers");
    Ok(Json(ServerList {
        items: items.into_iter().map(ServerView::from).collect(),
        total,
        next,
    }))
}

/// One server.
#[utoipa::path(get, path = "/servers/{id}", tag = "servers",
    params(("id" = i64, Path, description = "server id")),
    responses((status = 200, body = ServerView), (status = 404, body = Problem)),
    security(("token" = ["read"])))]
pub(crate) async fn show(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
) -> ApiResult<Json<ServerView>> {
    let detail = servers::detail(state.app(), &user, id, None).await?;
    Ok(Json(ServerView {
        rcon_password: detail.rcon_password.map(|p| p.expose().to_owned()),
        ..detail.summary.into()
    }))
}

/// A new server.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewServer {
    name: String,
    /// What players see in the server browser.
    hostname: String,
    /// 1024-65535; left out: the next free port of the panel's range.
    #[serde(default)]
    port: Option<u16>,
    blueprint_id: i64,
}

/// Creates a server (it starts stopped).
#[utoipa::path(post, path = "/servers", tag = "servers", request_body = NewServer,
    responses((status = 201, body = ServerView), (status = 409, body = Problem),
        (status = 422, body = Problem)),
    security(("token" = ["manage"])))]
pub(crate) async fn create(
    State(state): State<AppState>,
    user: ApiUser,
    ApiJson(body): ApiJson<NewServer>,
) -> ApiResult<Response> {
    let input = NewServerInput {
        name: body.name,
        hostname: body.hostname,
        port: body.port.map(|p| p.to_string()).unwrap_or_default(),
        blueprint_id: body.blueprint_id.to_string(),
    };
    let server = servers::create(state.app(), &user, &input).await?;
    let location = format!("/api/v1/servers/{}", server.server().id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(ServerView::from(server)),
    )
        .into_response())
}

/// A server's settings: all of them, as they replace what is there.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServerSettings {
    name: String,
    /// Applies on the next start.
    hostname: String,
    /// Applies on the next start.
    blueprint_id: i64,
}

/// Changes a server's name, hostname and blueprint together.
#[utoipa::path(put, path = "/servers/{id}", tag = "servers", request_body = ServerSettings,
    params(("id" = i64, Path, description = "server id")),
    responses((status = 200, body = ServerView), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)),
    security(("token" = ["manage"])))]
pub(crate) async fn change(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<ServerSettings>,
) -> ApiResult<Json<ServerView>> {
    let input = ServerSettingsInput {
        name: body.name,
        hostname: body.hostname,
        blueprint_id: body.blueprint_id.to_string(),
    };
    Ok(Json(
        servers::change(state.app(), &user, id, &input)
            .await?
            .into(),
    ))
}

/// What to do to a server.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Action {
    Start,
    Stop,
    Restart,
    Reset,
}

/// Queues a start, stop or restart (the operate scope) or a reset (the
/// manage scope, and the owner or an admin). Answers with the job.
#[utoipa::path(post, path = "/servers/{id}/{action}", tag = "servers",
    params(("id" = i64, Path, description = "server id"),
        ("action" = inline(Action), Path, description = "start, stop, restart or reset")),
    responses((status = 202, body = JobView, description = "the job, queued"),
        (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("token" = ["operate"])))]
pub(crate) async fn act(
    State(state): State<AppState>,
    user: ApiUser,
    Path((id, action)): Path<(i64, Action)>,
) -> ApiResult<Response> {
    let operation = match action {
        Action::Start => ServerOperation::Start,
        Action::Stop => ServerOperation::Stop,
        Action::Restart => ServerOperation::Restart,
        Action::Reset => ServerOperation::Reset,
    };
    let job = servers::queue(state.app(), &user, id, operation).await?;
    Ok(accepted(job))
}

/// Deletes a server (stopping it first), through a job.
#[utoipa::path(delete, path = "/servers/{id}", tag = "servers",
    params(("id" = i64, Path, description = "server id")),
    responses((status = 202, body = JobView, description = "the job, queued"),
        (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("token" = ["manage"])))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    let job = servers::queue(state.app(), &user, id, ServerOperation::Delete).await?;
    Ok(accepted(job))
}

/// A member's role.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Role {
    Operator,
    Viewer,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Membership {
    role: Role,
}

/// Makes a user a member of the server, or changes their role.
#[utoipa::path(put, path = "/servers/{id}/members/{user_id}", tag = "servers",
    request_body = Membership,
    params(("id" = i64, Path, description = "server id"),
        ("user_id" = i64, Path, description = "the member's user id")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("token" = ["manage"])))]
pub(crate) async fn set_member(
    State(state): State<AppState>,
    user: ApiUser,
    Path((id, user_id)): Path<(i64, i64)>,
    ApiJson(body): ApiJson<Membership>,
) -> ApiResult<StatusCode> {
    let role = match body.role {
        Role::Operator => MemberRole::Operator,
        Role::Viewer => MemberRole::Viewer,
    };
    servers::set_member(state.app(), &user, id, &MemberInput { user_id, role }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Takes a member off the server.
#[utoipa::path(delete, path = "/servers/{id}/members/{user_id}", tag = "servers",
    params(("id" = i64, Path, description = "server id"),
        ("user_id" = i64, Path, description = "the member's user id")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)),
    security(("token" = ["manage"])))]
pub(crate) async fn remove_member(
    State(state): State<AppState>,
    user: ApiUser,
    Path((id, user_id)): Path<(i64, i64)>,
) -> ApiResult<StatusCode> {
    let input = MemberInput {
        user_id,
        role: MemberRole::Remove,
    };
    servers::set_member(state.app(), &user, id, &input).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Command {
    /// One console line, e.g. `say hello` or `changelevel c2m1_highway`.
    command: String,
}

/// A console command and what came of it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CommandResult {
    id: i64,
    /// Who ran it.
    by: String,
    command: String,
    /// The server's reply, when it answered.
    reply: Option<String>,
    /// Why there was no reply (not running, refused the RCON password, …).
    error: Option<String>,
    at: i64,
}

/// Runs one command on the server's RCON console (kept in its history).
#[utoipa::path(post, path = "/servers/{id}/console", tag = "servers", request_body = Command,
    params(("id" = i64, Path, description = "server id")),
    responses((status = 200, body = CommandResult), (status = 400, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("token" = ["operate"])))]
pub(crate) async fn run_command(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<Command>,
) -> ApiResult<Json<CommandResult>> {
    let entry = console::execute(state.app(), &user, id, &body.command).await?;
    Ok(Json(entry.into()))
}

impl From<ConsoleCommand> for CommandResult {
    fn from(entry: ConsoleCommand) -> Self {
        Self {
            id: entry.id,
            by: entry.username,
            command: entry.command,
            reply: entry.reply,
            error: entry.error,
            at: entry.at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CommandHistory {
    /// Oldest first.
    items: Vec<CommandResult>,
}

/// The console's last 100 commands with their replies (operators, the
/// owner and admins).
#[utoipa::path(get, path = "/servers/{id}/console", tag = "servers",
    params(("id" = i64, Path, description = "server id")),
    responses((status = 200, body = CommandHistory), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("token" = ["operate"])))]
pub(crate) async fn console_history(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
) -> ApiResult<Json<CommandHistory>> {
    let (_, commands) = console::history(state.app(), &user, id, 100).await?;
    Ok(Json(CommandHistory {
        items: commands.into_iter().map(CommandResult::from).collect(),
    }))
}

/// The console log's lines when a stream opens.
const LOG_BACKLOG: usize = 200;

/// The server's console log as server-sent events: `lines` events, one
/// line per `data:` field, from its last 200 lines on; across restarts
/// and rotations (while it is down the stream waits). Reconnect with
/// `Last-Event-ID` to resume exactly after the last line received.
#[utoipa::path(get, path = "/servers/{id}/log", tag = "servers",
    params(("id" = i64, Path, description = "server id")),
    responses((status = 200, content_type = "text/event-stream", body = String),
        (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("token" = ["read"])))]
pub(crate) async fn log(
    State(state): State<AppState>,
    user: ApiUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let resume = log_resume_point(&headers);
    let lines =
        server_log::follow_log(state.app(), &user, id, resume.as_deref(), LOG_BACKLOG).await?;
    Ok(server_log_stream(lines))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TreePath {
    /// From the top of the server's tree (empty or left out: the top).
    #[serde(default)]
    path: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TreeList {
    dir: String,
    /// `null` while the server is not running (its tree is not mounted).
    entries: Option<Vec<EntryView>>,
}

/// A folder of the running server's tree: the game with its overlays and
/// what the server wrote, as the game sees it (read-only).
#[utoipa::path(get, path = "/servers/{id}/files", tag = "servers",
    params(("id" = i64, Path, description = "server id"), TreePath),
    responses((status = 200, body = TreeList), (status = 400, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("token" = ["read"])))]
pub(crate) async fn files(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
    Query(query): Query<TreePath>,
) -> ApiResult<Json<TreeList>> {
    let dir = RelPath::parse(&query.path).map_err(OpError::from)?;
    let (_, entries) = server_files::list(state.app(), &user, id, &dir).await?;
    Ok(Json(TreeList {
        dir: dir.as_str().to_owned(),
        entries: entries.map(|e| e.into_iter().map(EntryView::from).collect()),
    }))
}

/// A file of the running server's tree.
#[utoipa::path(get, path = "/servers/{id}/file", tag = "servers",
    params(("id" = i64, Path, description = "server id"), TreePath),
    responses((status = 200, content_type = "application/octet-stream", body = String),
        (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("token" = ["read"])))]
pub(crate) async fn file(
    State(state): State<AppState>,
    user: ApiUser,
    Path(id): Path<i64>,
    Query(query): Query<TreePath>,
) -> ApiResult<Response> {
    let path = RelPath::parse(&query.path).map_err(OpError::from)?;
    let file = server_files::open(state.app(), &user, id, &path).await?;
    Ok(file_download(&path, file))
}
