//! Who may do what: the one place the panel's sharing rules live. Every
//! route that loads an overlay, a blueprint, a server or a job goes
//! through here.
//!
//! - Overlays and blueprints are private (owner and admins) or shared with
//!   everyone. Whoever sees one may use it (put an overlay into a
//!   blueprint, build a server on a blueprint, copy a blueprint); only the
//!   owner and admins change, share or delete it.
//! - Servers: the owner and admins manage them (settings, reset, delete,
//!   members). Members are operators (start, stop, restart, console, log,
//!   files, activity) or viewers (state, players, log).
//!
//! - The game (install, update, check): admins only. The Game page is no
//!   secret, so others get 403, not 404.
//! - Scripts (creating script overlays, writing and building their
//!   scripts): admins only, as a script runs code on the host. Others use
//!   shared script overlays like any other and see their scripts.
//!
//! What a user may not see answers "not found", so nobody learns what
//! others keep private; what they may see but not do answers 403 with the
//! reason.

use left4me_store::{Blueprint, Job, Overlay, Server, ServerRole, SharedItem};

use crate::App;
use crate::actor::{Actor, Scope};
use crate::error::{OpError, OpResult};
use crate::runner::JobKind;

/// What a user may do with an overlay or blueprint they can see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ItemAccess {
    /// See it, and build on it.
    Use,
    /// Change, share or delete it.
    Change,
}

/// An overlay or a blueprint.
pub trait Shareable {
    /// Which kind it is, as the store names it.
    const ITEM: SharedItem;
    fn owner_id(&self) -> i64;
    fn shared(&self) -> bool;
}

impl Shareable for Overlay {
    const ITEM: SharedItem = SharedItem::Overlay;
    fn owner_id(&self) -> i64 {
        self.owner_id
    }
    fn shared(&self) -> bool {
        self.shared
    }
}

impl Shareable for Blueprint {
    const ITEM: SharedItem = SharedItem::Blueprint;
    fn owner_id(&self) -> i64 {
        self.owner_id
    }
    fn shared(&self) -> bool {
        self.shared
    }
}

/// What a user may do with a server; each level includes the ones below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ServerAccess {
    Viewer,
    Operator,
    /// The owner and admins.
    Manager,
}

/// Something done to a server, with the access it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerAction {
    /// The server page: state, players, jobs.
    View,
    /// The game's console log.
    Log,
    /// Start, stop, restart.
    Control,
    Console,
    Files,
    Activity,
    /// Make, change and run its schedules.
    Schedule,
    /// Settings, reset, delete, members.
    Manage,
}

impl ServerAction {
    pub fn needs(self) -> ServerAccess {
        match self {
            Self::View | Self::Log => ServerAccess::Viewer,
            Self::Control | Self::Console | Self::Files | Self::Activity | Self::Schedule => {
                ServerAccess::Operator
            }
            Self::Manage => ServerAccess::Manager,
        }
    }

    /// What a job of this kind does to its server (`None`: a game job).
    pub fn of_job(kind: JobKind) -> Option<Self> {
        match kind {
            JobKind::ServerStart | JobKind::ServerStop | JobKind::ServerRestart => {
                Some(Self::Control)
            }
            JobKind::ServerReset | JobKind::ServerDelete | JobKind::ServerRestore => {
                Some(Self::Manage)
            }
            JobKind::GameInstall
            | JobKind::GameUpdate
            | JobKind::GameValidate
            | JobKind::GameCheck
            | JobKind::OverlayBuild
            | JobKind::OverlayRestore
            | JobKind::PanelBackup
            | JobKind::BackupCheck => None,
        }
    }
}

impl ServerAction {
    /// The token scope the action needs.
    pub fn scope(self) -> Scope {
        match self {
            Self::View | Self::Log | Self::Files | Self::Activity => Scope::Read,
            Self::Control | Self::Console => Scope::Operate,
            Self::Manage | Self::Schedule => Scope::Manage,
        }
    }
}

impl ItemAccess {
    /// The token scope it needs.
    pub fn scope(self) -> Scope {
        match self {
            Self::Use => Scope::Read,
            Self::Change => Scope::Manage,
        }
    }
}

impl ServerAccess {
    pub fn allows(self, action: ServerAction) -> bool {
        self >= action.needs()
    }
}

impl Actor {
    /// `None` when the user may not even see the item.
    pub fn item_access(&self, item: &impl Shareable) -> Option<ItemAccess> {
        if self.is_admin() || item.owner_id() == self.id() {
            Some(ItemAccess::Change)
        } else if item.shared() {
            Some(ItemAccess::Use)
        } else {
            None
        }
    }

    /// `None` when the user may not see the server. `role` is the user's
    /// membership, if any.
    pub fn server_access(&self, server: &Server, role: Option<ServerRole>) -> Option<ServerAccess> {
        if self.is_admin() || server.owner_id == self.id() {
            return Some(ServerAccess::Manager);
        }
        role.map(|role| match role {
            ServerRole::Operator => ServerAccess::Operator,
            ServerRole::Viewer => ServerAccess::Viewer,
        })
    }
}

/// `item` if the user has `need` on it.
pub fn require<T: Shareable>(actor: &Actor, item: T, need: ItemAccess) -> OpResult<T> {
    actor.require(need.scope())?;
    if need == ItemAccess::Change {
        limited_token_creates_nothing(actor)?;
    }
    match actor.item_access(&item) {
        None => Err(OpError::NotFound),
        Some(access) if access >= need => Ok(item),
        Some(_) => Err(OpError::Forbidden(format!(
            "This {noun} is shared with you to use; only its owner and admins can change it. Copy it to make your own.",
            noun = T::ITEM.noun()
        ))),
    }
}

pub async fn overlay(app: &App, actor: &Actor, id: i64, need: ItemAccess) -> OpResult<Overlay> {
    require(actor, app.store().overlay(id).await?, need)
}

pub async fn blueprint(app: &App, actor: &Actor, id: i64, need: ItemAccess) -> OpResult<Blueprint> {
    require(actor, app.store().blueprint(id).await?, need)
}

/// A server and what the user may do with it.
#[derive(Debug, Clone)]
pub struct ServerGrant {
    pub server: Server,
    pub access: ServerAccess,
}

/// The server if the user may do `action` to it.
pub async fn server(
    app: &App,
    actor: &Actor,
    id: i64,
    action: ServerAction,
) -> OpResult<ServerGrant> {
    // A token limited to other servers does not see this one.
    if !actor.reaches_server(id) {
        return Err(OpError::NotFound);
    }
    actor.require(action.scope())?;
    let server = app.store().server(id).await?;
    // Owners and admins need no membership, so no second query for them.
    let access = match actor.server_access(&server, None) {
        Some(access) => access,
        None => {
            let role = app.store().server_role(id, actor.id()).await?;
            actor
                .server_access(&server, role)
                .ok_or(OpError::NotFound)?
        }
    };
    if !access.allows(action) {
        return Err(OpError::Forbidden(match action.needs() {
            ServerAccess::Manager => {
                "Only the server's owner and admins can do this.".to_owned()
            }
            _ => "You can watch this server but not operate it; ask its owner to make you an operator."
                .to_owned(),
        }));
    }
    Ok(ServerGrant { server, access })
}

/// A token limited to some servers acts on those only: it creates and
/// changes nothing else (other servers use the same overlays and
/// blueprints).
pub fn limited_token_creates_nothing(actor: &Actor) -> OpResult<()> {
    if actor.limited_to_servers() {
        return Err(OpError::Forbidden(
            "This token is limited to some servers: it changes nothing else.".into(),
        ));
    }
    Ok(())
}

/// Whether the user may see the Game page and install, update or check
/// the game.
pub fn game(actor: &Actor) -> OpResult<()> {
    admin(actor, "install and update the game")
}

/// Whether the user may create script overlays and write or build their
/// scripts: admins only, whoever owns the overlay.
pub fn scripts(actor: &Actor) -> OpResult<()> {
    admin(
        actor,
        "write and build scripts: a script runs code on the host",
    )
}

/// Admins only: `what` says what others may not do.
pub fn admin(actor: &Actor, what: &str) -> OpResult<()> {
    if actor.is_admin() {
        actor.require(Scope::Admin)
    } else {
        Err(OpError::Forbidden(format!("Only admins {what}.")))
    }
}

/// The job if the user started it, may see its server or overlay, or is
/// an admin.
pub async fn job(app: &App, actor: &Actor, id: i64) -> OpResult<Job> {
    actor.require(Scope::Read)?;
    visible_job(app, actor, id).await
}

/// The job if the user may see it, whatever the token's scopes.
async fn visible_job(app: &App, actor: &Actor, id: i64) -> OpResult<Job> {
    let job = app.store().job(id).await?;
    if job.server_id.is_some_and(|s| !actor.reaches_server(s)) {
        return Err(OpError::NotFound);
    }
    if actor.is_admin() || job.user_id == Some(actor.id()) {
        return Ok(job);
    }
    match (job.server_id, job.overlay_id) {
        (Some(server_id), _) => server(app, actor, server_id, ServerAction::View)
            .await
            .map(|_| job),
        (None, Some(overlay_id)) => overlay(app, actor, overlay_id, ItemAccess::Use)
            .await
            .map(|_| job),
        (None, None) => Err(OpError::NotFound),
    }
}

/// A job the user may cancel: one they started, or one whose action they
/// may take on its server.
pub async fn cancellable_job(app: &App, actor: &Actor, id: i64) -> OpResult<Job> {
    actor.require(Scope::Operate)?;
    let job = visible_job(app, actor, id).await?;
    if actor.is_admin() || job.user_id == Some(actor.id()) {
        return Ok(job);
    }
    let action = JobKind::parse(&job.kind)
        .and_then(ServerAction::of_job)
        .unwrap_or(ServerAction::Manage);
    if let Some(overlay_id) = job.overlay_id {
        return overlay(app, actor, overlay_id, ItemAccess::Change)
            .await
            .map(|_| job);
    }
    match job.server_id {
        Some(server_id) => server(app, actor, server_id, action).await.map(|_| job),
        None => Err(OpError::Forbidden(
            "Only the user who started a job, or an admin, can cancel it.".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_level_includes_the_ones_below() {
        use ServerAction::*;
        let all = [View, Log, Control, Console, Files, Activity, Manage];
        let allowed = |a: ServerAccess| all.iter().filter(|x| a.allows(**x)).count();
        assert_eq!(allowed(ServerAccess::Viewer), 2);
        assert!(ServerAccess::Viewer.allows(Log) && !ServerAccess::Viewer.allows(Control));
        assert_eq!(allowed(ServerAccess::Operator), 6);
        assert!(!ServerAccess::Operator.allows(Manage));
        assert_eq!(allowed(ServerAccess::Manager), 7);
        assert_eq!(ServerAction::of_job(JobKind::ServerRestart), Some(Control));
        assert_eq!(ServerAction::of_job(JobKind::ServerReset), Some(Manage));
        assert_eq!(ServerAction::of_job(JobKind::GameUpdate), None);
    }
}
