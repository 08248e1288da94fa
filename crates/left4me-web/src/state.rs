//! Shared state of the running panel.

use left4me_app::App;

/// What every handler gets: the application below HTTP.
#[derive(Debug, Clone)]
pub struct AppState(App);

impl AppState {
    pub fn new(app: App) -> Self {
        Self(app)
    }

    pub fn app(&self) -> &App {
        &self.0
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::config::Config;
    use left4me_store::Store;
    use std::sync::Arc;

    /// The panel's state (a logged-in user) may be printed
    /// with `{:?}` without giving anything away.
    #[tokio::test]
    async fn debug_output_shows_no_token_or_password() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("left4me.db")).await.unwrap();
        let (host, jobs) = left4me_app::test_jobs(&store, &dir.path().join("root"));
        let state = AppState::new(App::new(
            Config::default(),
            store.clone(),
            host,
            jobs,
            Arc::default(),
        ));
        let user = store
            .create_user("alice", "$argon2id$hash-value", true)
            .await
            .unwrap();
        store
            .create_session(&left4me_store::NewSessionRow {
                token_hash: "token-hash",
                user_id: user.id,
                csrf_token: "csrf-value",
                ttl_secs: 60,
                user_agent: "",
                address: "",
            })
            .await
            .unwrap();
        let session = store.session("token-hash").await.unwrap().unwrap();
        let current = crate::auth::CurrentUser {
            actor: left4me_app::actor::Actor::new(user),
            session,
            must_set_up_second_factor: false,
        };
        // An attempt counts as a failure until it succeeds.
        let _ = state
            .app()
            .limiter()
            .attempt("192.0.2.1".parse().unwrap(), "typed-a-password-as-name");
        let shown = format!("{state:?} {current:?}");
        for secret in ["hash-value", "csrf-value", "typed-a-password"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("alice"), "{shown}");
    }
}
