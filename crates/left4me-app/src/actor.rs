//! Who performs an operation: a signed-in user, through a session (the
//! pages) or, later, a token (the API).

use left4me_store::{User, Viewer};

use crate::error::{OpError, OpResult};

/// The user an operation acts for. Every operation takes one and checks
/// what it may do itself.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user: User,
}

impl Actor {
    pub fn new(user: User) -> Self {
        Self { user }
    }

    pub fn id(&self) -> i64 {
        self.user.id
    }

    pub fn is_admin(&self) -> bool {
        self.user.is_admin
    }

    /// Whose lists the store should build.
    pub fn viewer(&self) -> Viewer {
        Viewer {
            user_id: self.id(),
            is_admin: self.is_admin(),
        }
    }

    /// Admins only, and others are not told the thing exists.
    pub fn require_admin(&self) -> OpResult<()> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(OpError::NotFound)
        }
    }

    /// Who the job runner and the activity log say asked.
    pub fn requester(&self) -> crate::runner::Actor<'_> {
        crate::runner::Actor::User(&self.user)
    }
}
