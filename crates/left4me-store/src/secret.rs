//! [`Secret`]: text that must never reach a log or an error message.

/// A password, password hash or token. Its `Debug` shows `Secret(***)`,
/// so deriving `Debug` on a struct that holds one cannot leak it; the
/// value is read only through [`Secret::expose`], where it is used.
#[derive(Clone, PartialEq, Eq, Default, sqlx::Type, serde::Deserialize)]
#[sqlx(transparent)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself: for the one place that sends, stores or checks it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::Secret;
    use crate::{Server, Session, User};

    #[test]
    fn debug_output_never_shows_a_secret() {
        let user = User {
            id: 1,
            username: "alice".into(),
            password_hash: "$argon2id$v=19$hash-value".into(),
            is_admin: true,
            is_active: true,
            created_at: 0,
            second_factor_reset_at: None,
            passkey_sign_in: false,
        };
        let session = Session {
            id: 1,
            token_hash: "token-hash-value".into(),
            user_id: 1,
            csrf_token: "csrf-token-value".into(),
            created_at: 0,
            expires_at: 0,
            user_agent: String::new(),
            address: String::new(),
            last_seen_at: 0,
            verified_at: 0,
        };
        let server = Server {
            id: 1,
            owner_id: 1,
            blueprint_id: 1,
            name: "alpha".into(),
            hostname: "Alpha".into(),
            port: 27015,
            rcon_password: "rcon-password-value".into(),
            desired_state: crate::DesiredState::Stopped,
            created_at: 0,
        };
        let shown = format!("{user:?} {session:?} {server:?} {user:#?}");
        for secret in [
            "hash-value",
            "token-hash-value",
            "csrf-token-value",
            "rcon-password-value",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        // The rest stays useful for debugging.
        assert!(
            shown.contains("alice") && shown.contains("Secret(***)"),
            "{shown}"
        );
        assert_eq!(Secret::new("x").expose(), "x");
    }
}
