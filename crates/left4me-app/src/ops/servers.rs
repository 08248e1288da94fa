//! Servers: the list, one server's state, creating and changing them,
//! their members and the actions that become jobs.

use left4me_host::supervisor::ProcessStatus;
use left4me_store::{
    Blueprint, Job, JobFilter, ListedServer, NewServer, PlayerSession, Secret, Server,
    ServerChange, ServerMember, ServerRole,
};
use serde::Deserialize;

use crate::App;
use crate::actor::{Actor, Scope};
use crate::board::ServerFilter;
use crate::domain::{DisplayName, Hostname, parse_optional_port};
use crate::error::{FieldErrors, OpError, OpResult};
use crate::live::{LiveState, OnlinePlayer};
use crate::ops::access::{self, ServerAccess, ServerAction};
use crate::ops::activity::record;
use crate::runner::JobKind;
use crate::spec_builder::build_spec;

/// A server as the lists show it: its names, the supervisor's word on
/// it, and the poller's answer while it runs.
#[derive(Debug, Clone)]
pub struct ServerSummary {
    pub listed: ListedServer,
    /// `running`, `stopped`, `failed`, ... as the supervisor says, or
    /// `unknown (why)`.
    pub state: String,
    /// The supervisor's whole answer (pid, since, restarts, why it
    /// stopped), when it had one.
    pub process: Option<ProcessStatus>,
    /// Map and players from the last poll, while it runs.
    pub live: Option<LiveState>,
    /// "build 1001, 1002 available: restart to update" and the like,
    /// for a running server on older layers.
    pub restart_note: Option<String>,
    /// The running server refused the panel's RCON password (its
    /// `rcon_password` was changed behind the panel's back).
    pub rcon_refused: bool,
}

impl ServerSummary {
    pub fn server(&self) -> &Server {
        &self.listed.server
    }
}

/// The servers `actor` may see (all of them for admins), with their state.
pub async fn list(app: &App, actor: &Actor) -> OpResult<Vec<ServerSummary>> {
    actor.require(Scope::Read)?;
    let filter = if actor.is_admin() {
        ServerFilter::All
    } else {
        ServerFilter::Of(actor.id())
    };
    summaries(app, actor, filter).await
}

async fn summaries(app: &App, actor: &Actor, filter: ServerFilter) -> OpResult<Vec<ServerSummary>> {
    let board = app.board().snapshot().await?;
    Ok(board
        .select(filter, actor.id())
        .filter(|(server, _)| actor.reaches_server(server.listed.server.id))
        .map(|(server, member_role)| ServerSummary {
            // The poller's last answer outlives a stop by up to one
            // cycle: a server that is not running shows none.
            live: server
                .running()
                .then(|| app.live().get(server.listed.server.id))
                .flatten(),
            rcon_refused: server.running() && app.live().rcon_refused(server.listed.server.id),
            listed: ListedServer {
                member_role,
                ..server.listed.clone()
            },
            state: server.state.clone(),
            process: server.process.clone(),
            restart_note: server.restart_note.clone(),
        })
        .collect())
}

/// One server as the lists show it (access checked by the caller).
async fn summary(app: &App, actor: &Actor, id: i64) -> OpResult<ServerSummary> {
    summaries(app, actor, ServerFilter::One(id))
        .await?
        .pop()
        .ok_or(OpError::NotFound)
}

/// One server's page: everything about it `actor` may see.
#[derive(Debug, Clone)]
pub struct ServerDetail {
    pub summary: ServerSummary,
    pub access: ServerAccess,
    pub blueprint: Blueprint,
    pub blueprint_owner: String,
    /// The server's `spec.yaml`, its RCON password masked.
    pub spec_yaml: String,
    /// Members and the active users who could become one: for managers.
    pub members: Vec<ServerMember>,
    pub candidates: Vec<(i64, String)>,
    pub jobs: Vec<Job>,
    pub online: Vec<OnlinePlayer>,
    pub sessions: Vec<PlayerSession>,
    /// For those who may use its console (a token: with the operate
    /// scope): the password is as good as the console.
    pub rcon_password: Option<Secret>,
    /// For admins: the last backup or check of the backups, when it
    /// failed (said on every server's page until one succeeds).
    pub backup_failed: Option<Job>,
    /// The server's history over the range asked for (oldest first), for
    /// its graphs; empty when none was asked.
    pub history: Vec<left4me_store::HistoryPoint>,
}

/// How far back a server's graphs look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HistoryRange {
    #[default]
    Day,
    Week,
    Month,
}

impl HistoryRange {
    pub const ALL: [Self; 3] = [Self::Day, Self::Week, Self::Month];

    /// The history's resolution for the range.
    pub fn tier(self) -> left4me_store::Tier {
        left4me_store::TIERS[match self {
            Self::Day => 0,
            Self::Week => 1,
            Self::Month => 2,
        }]
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
        }
    }
}

/// Everything about a server its page shows, with its history over
/// `history` when asked.
pub async fn detail(
    app: &App,
    actor: &Actor,
    id: i64,
    history: Option<HistoryRange>,
) -> OpResult<ServerDetail> {
    let grant = access::server(app, actor, id, ServerAction::View).await?;
    let server = grant.server;
    let store = app.store();
    let blueprint = store.blueprint(server.blueprint_id).await?;
    let overlays = store.blueprint_overlays(blueprint.id).await?;
    let masked = Server {
        rcon_password: "(hidden: Reveal it under RCON password)".into(),
        ..server.clone()
    };
    let spec_yaml = match build_spec(&masked, &blueprint, &overlays) {
        Ok(spec) => spec.to_yaml(),
        Err(e) => format!("# this server cannot start: {e}"),
    };
    let summary = summary(app, actor, id).await?;
    let (members, candidates) = if grant.access.allows(ServerAction::Manage) {
        let candidates = store
            .users()
            .await?
            .into_iter()
            .filter(|u| u.id != server.owner_id && u.is_active)
            .map(|u| (u.id, u.username))
            .collect();
        (store.server_members(id).await?, candidates)
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(ServerDetail {
        online: summary
            .live
            .as_ref()
            .map(|l| l.online.clone())
            .unwrap_or_default(),
        summary,
        access: grant.access,
        blueprint_owner: store.user(blueprint.owner_id).await?.username,
        blueprint,
        spec_yaml,
        members,
        candidates,
        jobs: store.jobs(JobFilter::Server(id), 20).await?,
        sessions: store.recent_player_sessions(id, 30).await?,
        rcon_password: (grant.access.allows(ServerAction::Console)
            && actor.require(Scope::Operate).is_ok())
        .then(|| server.rcon_password.clone()),
        backup_failed: if actor.is_admin() {
            crate::ops::backups::last_failed(app).await?
        } else {
            None
        },
        history: match history {
            Some(range) => {
                store
                    .history(id, range.tier(), left4me_store::now())
                    .await?
            }
            None => Vec::new(),
        },
    })
}

/// A new server, as the form and the API send it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NewServerInput {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub hostname: String,
    /// Empty: the next free port of the configured range.
    #[serde(default, deserialize_with = "crate::input::text")]
    pub port: String,
    #[serde(default, deserialize_with = "crate::input::text")]
    pub blueprint_id: String,
}

/// The blueprint a server may be built on (or keep): `None` with the
/// field's error said in `errors`. Read in the transaction that uses it,
/// so a share taken back or a blueprint deleted meanwhile is seen, not
/// raced.
async fn usable_blueprint(
    write: &mut left4me_store::Write,
    actor: &Actor,
    raw: &str,
    keep: Option<i64>,
    errors: &mut FieldErrors,
) -> OpResult<Option<Blueprint>> {
    let Ok(id) = raw.trim().parse::<i64>() else {
        errors.add("blueprint_id", "choose a blueprint (create one first)");
        return Ok(None);
    };
    match write.blueprint(id).await {
        // Keeping the current one is fine even when the actor cannot see it.
        Ok(b) if actor.item_access(&b).is_some() || Some(b.id) == keep => Ok(Some(b)),
        Ok(_) | Err(left4me_store::StoreError::NotFound) => {
            errors.add("blueprint_id", "choose one of the blueprints offered");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// A server's name and hostname, each `None` with its mistake in `errors`.
fn names(
    name: &str,
    hostname: &str,
    errors: &mut FieldErrors,
) -> (Option<DisplayName>, Option<Hostname>) {
    (
        DisplayName::parse(name)
            .map_err(|e| errors.add("name", e))
            .ok(),
        Hostname::parse(hostname)
            .map_err(|e| errors.add("hostname", e))
            .ok(),
    )
}

/// Names the field a store conflict is about.
fn conflict_on(error: OpError, field_of: impl Fn(&str) -> &'static str) -> OpError {
    match error {
        OpError::Conflict {
            message,
            field: None,
        } => OpError::Conflict {
            field: Some(field_of(&message)),
            message,
        },
        other => other,
    }
}

/// Creates a server on a blueprint `actor` may use, on the port asked for
/// or the next free one (never one another program on the host holds).
pub async fn create(app: &App, actor: &Actor, input: &NewServerInput) -> OpResult<ServerSummary> {
    actor.require(Scope::Manage)?;
    access::limited_token_creates_nothing(actor)?;
    let mut errors = FieldErrors::default();
    let (name, hostname) = names(&input.name, &input.hostname, &mut errors);
    let port = parse_optional_port(&input.port)
        .map_err(|e| errors.add("port", e))
        .ok();
    let (Some(name), Some(hostname), Some(port)) = (name, hostname, port) else {
        // The blueprint's mistake too, to say everything at once.
        let mut write = app.store().write().await?;
        usable_blueprint(&mut write, actor, &input.blueprint_id, None, &mut errors).await?;
        return Err(OpError::Invalid(errors));
    };
    let rcon_password = crate::credentials::random_token()[..20].to_owned();
    let range = app.config().port_range();
    // Our own servers hold their ports too; the store tells those apart.
    let ours: Vec<i64> = app
        .store()
        .servers(None)
        .await?
        .iter()
        .map(|s| s.port)
        .collect();
    // Reads all of /proc: off the async runtime.
    let bound = tokio::task::spawn_blocking(left4me_host::ports::bound_ports).await?;
    let held: Vec<u16> = range
        .clone()
        .chain(port)
        .filter(|p| !ours.contains(&i64::from(*p)) && bound.contains(p))
        .collect();
    let mut write = app.store().write().await?;
    let Some(blueprint) =
        usable_blueprint(&mut write, actor, &input.blueprint_id, None, &mut errors).await?
    else {
        return Err(OpError::Invalid(errors));
    };
    let server = write
        .create_server(&NewServer {
            owner_id: actor.id(),
            blueprint_id: blueprint.id,
            name: name.as_str(),
            hostname: hostname.as_str(),
            port,
            port_range: range,
            rcon_password: &rcon_password,
            held_elsewhere: &held,
        })
        .await
        .map_err(|e| {
            conflict_on(
                e.into(),
                |m| {
                    if m.contains("port") { "port" } else { "name" }
                },
            )
        })?;
    let detail = format!("created server {} on port {}", server.name, server.port);
    record(&mut write, actor, Some(server.id), "server.create", &detail).await?;
    write.commit().await?;
    summary(app, actor, server.id).await
}

/// A server's settings, as the form and the API send them: all three,
/// since they replace what is there.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettingsInput {
    pub name: String,
    pub hostname: String,
    #[serde(deserialize_with = "crate::input::text")]
    pub blueprint_id: String,
}

/// Changes a server's name, hostname and blueprint together (its owner
/// and admins): all of them, or on a mistake none.
pub async fn change(
    app: &App,
    actor: &Actor,
    id: i64,
    input: &ServerSettingsInput,
) -> OpResult<ServerSummary> {
    let server = access::server(app, actor, id, ServerAction::Manage)
        .await?
        .server;
    let mut errors = FieldErrors::default();
    let (name, hostname) = names(&input.name, &input.hostname, &mut errors);
    let mut write = app.store().write().await?;
    // The one it is on now, which it may keep whoever can see it.
    let current = write.server_blueprint(id).await?;
    let blueprint = usable_blueprint(
        &mut write,
        actor,
        &input.blueprint_id,
        Some(current),
        &mut errors,
    )
    .await?;
    let (Some(name), Some(hostname), Some(blueprint)) = (name, hostname, blueprint) else {
        return Err(OpError::Invalid(errors));
    };
    write
        .change_server(
            id,
            &ServerChange {
                name: name.as_str(),
                hostname: hostname.as_str(),
                blueprint_id: blueprint.id,
            },
        )
        .await
        .map_err(|e| conflict_on(e.into(), |_| "name"))?;
    let detail = format!(
        "changed server {} to name {}, hostname {:?}, blueprint {}",
        server.name,
        name.as_str(),
        hostname.as_str(),
        blueprint.name
    );
    record(&mut write, actor, Some(id), "server.settings", &detail).await?;
    write.commit().await?;
    summary(app, actor, id).await
}

/// What a member becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberRole {
    Operator,
    Viewer,
    /// No member any more.
    Remove,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MemberInput {
    pub user_id: i64,
    pub role: MemberRole,
}

/// Adds a member, changes their role or removes them (the owner and
/// admins). Only active users become members.
pub async fn set_member(app: &App, actor: &Actor, id: i64, input: &MemberInput) -> OpResult<()> {
    let server = access::server(app, actor, id, ServerAction::Manage)
        .await?
        .server;
    let member = match app.store().user(input.user_id).await {
        Ok(u) if u.is_active || input.role == MemberRole::Remove => u,
        Ok(_) | Err(left4me_store::StoreError::NotFound) => {
            return Err(OpError::invalid(
                "user_id",
                "choose one of the active users offered",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let mut write = app.store().write().await?;
    let detail = match input.role {
        MemberRole::Remove => {
            write.remove_server_member(id, member.id).await?;
            format!("removed {} from server {}", member.username, server.name)
        }
        role => {
            let (role, noun) = if role == MemberRole::Operator {
                (ServerRole::Operator, "an operator")
            } else {
                (ServerRole::Viewer, "a viewer")
            };
            write.set_server_member(id, member.id, role).await?;
            format!("made {} {noun} of server {}", member.username, server.name)
        }
    };
    record(&mut write, actor, Some(id), "server.members", &detail).await?;
    write.commit().await?;
    Ok(())
}

/// What can be done to a server through a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerOperation {
    Start,
    Stop,
    Restart,
    Reset,
    Delete,
}

impl ServerOperation {
    pub fn job_kind(self) -> JobKind {
        match self {
            Self::Start => JobKind::ServerStart,
            Self::Stop => JobKind::ServerStop,
            Self::Restart => JobKind::ServerRestart,
            Self::Reset => JobKind::ServerReset,
            Self::Delete => JobKind::ServerDelete,
        }
    }
}

/// Queues the job that starts, stops, restarts, resets or deletes a
/// server, if `actor` may do that to it.
pub async fn queue(app: &App, actor: &Actor, id: i64, operation: ServerOperation) -> OpResult<Job> {
    let kind = operation.job_kind();
    let action = ServerAction::of_job(kind).expect("server jobs act on a server");
    let server = access::server(app, actor, id, action).await?.server;
    Ok(app.jobs().enqueue(kind, actor.requester(), &server).await?)
}
