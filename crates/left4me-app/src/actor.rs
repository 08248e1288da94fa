//! Who performs an operation: a signed-in user, through a session (the
//! pages) or through one of their API tokens, which may do less.

use left4me_store::{User, Viewer};
use serde::{Deserialize, Serialize};

use crate::error::{OpError, OpResult};

/// What an API token may do. A session may do all its user may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// See servers, jobs, logs, overlays, blueprints and activity.
    Read,
    /// Start, stop and restart servers; use their consoles; cancel jobs.
    Operate,
    /// Create, change and delete servers, overlays and blueprints.
    Manage,
    /// What only admins do (the game, users); only admins' tokens have it.
    Admin,
}

impl Scope {
    pub const ALL: [Self; 4] = [Self::Read, Self::Operate, Self::Manage, Self::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Operate => "operate",
            Self::Manage => "manage",
            Self::Admin => "admin",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// The token a request came with, and what it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    pub name: String,
    pub scopes: Vec<Scope>,
    /// The servers it is limited to; `None`: all the user's.
    pub servers: Option<Vec<i64>>,
}

/// The user an operation acts for. Every operation takes one and checks
/// what it may do itself.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user: User,
    /// Set when the request came with an API token (private: nothing may
    /// drop a token's limits).
    token: Option<TokenGrant>,
    /// The user's name, and the token's when one is used.
    name: String,
    /// Through a session: when the user last proved who they are in it.
    verified_at: Option<i64>,
}

/// How long a sign-in (or a password typed again) counts as recent.
pub const RECENT_SECS: i64 = 600;

impl Actor {
    /// The user through a session of theirs.
    pub fn new(user: User) -> Self {
        Self {
            name: user.username.clone(),
            user,
            token: None,
            verified_at: None,
        }
    }

    /// The user through a session in which they last proved who they
    /// are at `verified_at`.
    pub fn with_session(user: User, verified_at: i64) -> Self {
        Self {
            verified_at: Some(verified_at),
            ..Self::new(user)
        }
    }

    /// A schedule, with the rights of the user who made it: the activity
    /// log and job lists say "schedule NAME".
    pub fn for_schedule(owner: User, schedule: &str) -> Self {
        Self {
            name: format!("schedule {schedule}"),
            user: owner,
            token: None,
            verified_at: None,
        }
    }

    /// The user through one of their API tokens.
    pub fn with_token(user: User, token: TokenGrant) -> Self {
        Self {
            name: format!("{} (token {})", user.username, token.name),
            user,
            token: Some(token),
            verified_at: None,
        }
    }

    pub fn id(&self) -> i64 {
        self.user.id
    }

    /// An admin acting as one: through a session, or a token with the
    /// admin scope and no server limit (a limit means "these servers
    /// only", which no admin power respects). An admin's other tokens act
    /// like any user's.
    pub fn is_admin(&self) -> bool {
        self.user.is_admin
            && self
                .token
                .as_ref()
                .is_none_or(|t| t.scopes.contains(&Scope::Admin) && t.servers.is_none())
    }

    /// Who the activity log and job lists say did it: the user, and the
    /// token when one was used.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whose lists the store should build.
    pub fn viewer(&self) -> Viewer {
        Viewer {
            user_id: self.id(),
            is_admin: self.is_admin(),
        }
    }

    /// A session may do anything its user may; a token only what its
    /// scopes allow.
    pub fn require(&self, scope: Scope) -> OpResult<()> {
        match &self.token {
            Some(token) if !token.scopes.contains(&scope) => Err(OpError::Forbidden(format!(
                "The token {:?} lacks the {:?} scope this needs.",
                token.name,
                scope.as_str()
            ))),
            _ => Ok(()),
        }
    }

    /// Whether a token limited to some servers brings the request: such a
    /// token acts on those servers only, and changes nothing they share
    /// with others (overlays, blueprints) nor makes new ones.
    pub fn limited_to_servers(&self) -> bool {
        self.token.as_ref().is_some_and(|t| t.servers.is_some())
    }

    /// Whether the token (if any) reaches server `id`.
    pub fn reaches_server(&self, id: i64) -> bool {
        self.token
            .as_ref()
            .and_then(|t| t.servers.as_ref())
            .is_none_or(|servers| servers.contains(&id))
    }

    /// Only through a session: what a token must never do (make tokens,
    /// change the password).
    pub fn require_session(&self) -> OpResult<()> {
        match &self.token {
            Some(_) => Err(OpError::Forbidden(
                "API tokens cannot do this; sign in to the panel.".into(),
            )),
            None => Ok(()),
        }
    }

    /// Admins only (with the admin scope through a token), and others
    /// are not told the thing exists.
    pub fn require_admin(&self) -> OpResult<()> {
        if !self.is_admin() {
            return Err(OpError::NotFound);
        }
        self.require(Scope::Admin)
    }

    /// A session whose user proved who they are in the last ten minutes:
    /// what making tokens and adding a second factor take.
    pub fn require_recent_sign_in(&self) -> OpResult<()> {
        self.require_session()?;
        match self.verified_at {
            Some(at) if at > left4me_store::now() - RECENT_SECS => Ok(()),
            _ => Err(OpError::Forbidden(
                "You signed in more than ten minutes ago: confirm your password first (on your \
                 account page, or POST /api/v1/account/confirm)."
                    .into(),
            )),
        }
    }

    /// Whether [`Actor::require_recent_sign_in`] would let it through.
    pub fn signed_in_recently(&self) -> bool {
        self.require_recent_sign_in().is_ok()
    }

    /// Who the job runner says asked.
    pub fn requester(&self) -> crate::runner::Actor<'_> {
        crate::runner::Actor::User {
            id: self.user.id,
            name: &self.name,
        }
    }
}

#[cfg(test)]
mod tests {
    use left4me_store::Secret;

    use super::*;

    fn admin() -> User {
        User {
            id: 1,
            username: "root".into(),
            password_hash: Secret::default(),
            is_admin: true,
            is_active: true,
            created_at: 0,
            second_factor_reset_at: None,
            passkey_sign_in: false,
        }
    }

    fn token(scopes: &[Scope], servers: Option<Vec<i64>>) -> TokenGrant {
        TokenGrant {
            name: "t".into(),
            scopes: scopes.to_vec(),
            servers,
        }
    }

    #[test]
    fn an_admin_acts_as_one_through_a_session_or_an_unlimited_admin_token() {
        assert!(Actor::new(admin()).is_admin());
        assert!(Actor::with_token(admin(), token(&[Scope::Admin], None)).is_admin());
        assert!(!Actor::with_token(admin(), token(&[Scope::Read], None)).is_admin());
        let limited = Actor::with_token(admin(), token(&[Scope::Admin], Some(vec![1])));
        assert!(!limited.is_admin(), "a server limit rules out admin powers");
        assert!(matches!(limited.require_admin(), Err(OpError::NotFound)));
    }
}
