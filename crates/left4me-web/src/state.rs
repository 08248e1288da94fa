//! Shared state of the running panel.

use std::sync::Arc;

use left4me_host::lifecycle::Host;
use left4me_store::Store;

use crate::auth::LoginLimiter;
use crate::config::Config;
use crate::jobs::Jobs;

#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    config: Config,
    store: Store,
    host: Arc<Host>,
    jobs: Jobs,
    limiter: LoginLimiter,
    /// Cancelled when the panel shuts down: long-lived streams end then,
    /// so the graceful shutdown does not wait for them forever.
    shutdown: tokio_util::sync::CancellationToken,
    live: Arc<crate::live::Live>,
}

impl AppState {
    pub fn new(
        config: Config,
        store: Store,
        host: Arc<Host>,
        jobs: Jobs,
        shutdown: tokio_util::sync::CancellationToken,
        live: Arc<crate::live::Live>,
    ) -> Self {
        Self(Arc::new(Inner {
            config,
            store,
            host,
            jobs,
            limiter: LoginLimiter::default(),
            shutdown,
            live,
        }))
    }

    pub fn config(&self) -> &Config {
        &self.0.config
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    pub fn host(&self) -> &Arc<Host> {
        &self.0.host
    }

    pub fn jobs(&self) -> &Jobs {
        &self.0.jobs
    }

    pub fn shutdown(&self) -> &tokio_util::sync::CancellationToken {
        &self.0.shutdown
    }

    pub fn live(&self) -> &crate::live::Live {
        &self.0.live
    }

    pub fn limiter(&self) -> &LoginLimiter {
        &self.0.limiter
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    /// The panel's state (a logged-in user) may be printed
    /// with `{:?}` without giving anything away.
    #[tokio::test]
    async fn debug_output_shows_no_token_or_password() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("left4me.db")).await.unwrap();
        let (host, jobs) = crate::test_jobs(&store, &dir.path().join("root"));
        let state = AppState::new(
            Config::default(),
            store.clone(),
            host,
            jobs,
            tokio_util::sync::CancellationToken::new(),
            Arc::default(),
        );
        let user = store
            .create_user("alice", "$argon2id$hash-value", true)
            .await
            .unwrap();
        store
            .create_session("token-hash", user.id, "csrf-value", 60)
            .await
            .unwrap();
        let session = store.session("token-hash").await.unwrap().unwrap();
        let current = crate::auth::CurrentUser { user, session };
        state
            .limiter()
            .record_failure("192.0.2.1".parse().unwrap(), "typed-a-password-as-name");
        let shown = format!("{state:?} {current:?}");
        for secret in ["hash-value", "csrf-value", "typed-a-password"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("alice"), "{shown}");
    }
}
