//! Passkeys (WebAuthn): the relying party, bound to the panel's web
//! address, and the ceremonies waiting for a browser's answer.
//!
//! A ceremony's state (its challenge) stays in memory, never with the
//! browser: a restart only makes the user click again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use left4me_config::Config;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, PasskeyAuthentication, PasskeyRegistration, Url, Webauthn,
    WebauthnBuilder,
};

use crate::credentials::random_token;
use crate::error::{OpError, OpResult};

/// How long a browser may take to answer (the authenticator's own prompt
/// gives up after five minutes too).
const CEREMONY_TTL: Duration = Duration::from_secs(300);

/// Ceremonies waiting at once; sign-in ones need no account, so this
/// bounds what unknown clients can make the panel keep.
const MAX_WAITING: usize = 4096;

/// A ceremony the browser is to answer.
pub(crate) enum Ceremony {
    /// Adding a passkey to the user's account.
    Register {
        user_id: i64,
        state: PasskeyRegistration,
    },
    /// The second step of the pending sign-in with this token hash.
    SecondFactor {
        pending: String,
        state: PasskeyAuthentication,
    },
    /// Signing in with a passkey alone: whose it is comes with the answer.
    SignIn { state: DiscoverableAuthentication },
}

/// The relying party and the ceremonies in flight.
pub struct Passkeys {
    relying_party: Result<Webauthn, String>,
    origin: Option<Url>,
    waiting: Mutex<HashMap<String, (Instant, Ceremony)>>,
}

impl std::fmt::Debug for Passkeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passkeys")
            .field("origin", &self.origin.as_ref().map(Url::as_str))
            .finish_non_exhaustive()
    }
}

impl Passkeys {
    /// Passkeys for the panel at `config`'s web address; off, with the
    /// reason, where there is none a browser would accept.
    pub fn new(config: &Config) -> Self {
        let origin = config.web_origin();
        let relying_party = origin.clone().and_then(|origin| {
            let host = origin.host_str().unwrap_or_default();
            WebauthnBuilder::new(host, &origin)
                .and_then(|b| b.rp_name("left4me").build())
                .map_err(|e| format!("passkeys for {origin}: {e}"))
        });
        if let Err(why) = &relying_party {
            tracing::info!("passkeys are off: {why}");
        }
        Self {
            relying_party,
            origin: origin.ok(),
            waiting: Mutex::default(),
        }
    }

    /// The relying party, or why passkeys are off.
    pub(crate) fn relying_party(&self) -> OpResult<&Webauthn> {
        self.relying_party
            .as_ref()
            .map_err(|why| OpError::conflict(format!("Passkeys are off on this panel: {why}.")))
    }

    /// Why passkeys are off, if they are.
    pub fn off_because(&self) -> Option<&str> {
        self.relying_party.as_ref().err().map(String::as_str)
    }

    /// The address passkeys are bound to.
    pub fn origin(&self) -> Option<&Url> {
        self.origin.as_ref()
    }

    /// Keeps a ceremony for its answer; the id the browser sends back.
    pub(crate) fn wait_for(&self, ceremony: Ceremony) -> String {
        let id = random_token();
        let now = Instant::now();
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        waiting.retain(|_, (started, _)| now.duration_since(*started) < CEREMONY_TTL);
        if waiting.len() >= MAX_WAITING
            && let Some(oldest) = waiting
                .iter()
                .min_by_key(|(_, (started, _))| *started)
                .map(|(id, _)| id.clone())
        {
            waiting.remove(&oldest);
        }
        waiting.insert(id.clone(), (now, ceremony));
        id
    }

    /// The ceremony `id` answers, once, if it has not expired.
    pub(crate) fn answered(&self, id: &str) -> OpResult<Ceremony> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        match waiting.remove(id) {
            Some((started, ceremony)) if started.elapsed() < CEREMONY_TTL => Ok(ceremony),
            _ => Err(OpError::BadRequest(
                "This passkey request has expired or was answered already: try again.".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(listen: &str, public_url: Option<&str>) -> Config {
        Config {
            listen: listen.parse().unwrap(),
            public_url: public_url.map(|u| u.parse().unwrap()),
            ..Config::default()
        }
    }

    #[test]
    fn passkeys_are_bound_to_the_panels_name_or_off_with_the_reason() {
        let local = Passkeys::new(&config("127.0.0.1:8000", None));
        assert_eq!(local.origin().unwrap().as_str(), "http://localhost:8000/");
        assert!(local.off_because().is_none());

        let public = Passkeys::new(&config("0.0.0.0:8000", Some("https://l4d2.example.org")));
        assert_eq!(
            public.origin().unwrap().as_str(),
            "https://l4d2.example.org/"
        );
        assert!(public.relying_party().is_ok());

        let unnamed = Passkeys::new(&config("0.0.0.0:8000", None));
        assert!(unnamed.off_because().unwrap().contains("public_url"));
        let address = Passkeys::new(&config("0.0.0.0:8000", Some("https://192.0.2.7")));
        assert!(address.off_because().unwrap().contains("not an address"));
        let plain = Passkeys::new(&config("0.0.0.0:8000", Some("http://l4d2.example.org")));
        assert!(plain.off_because().unwrap().contains("https"));
        let err = plain.relying_party().unwrap_err().to_string();
        assert!(err.contains("Passkeys are off"), "{err}");
    }

    #[test]
    fn a_ceremony_is_answered_once() {
        let passkeys = Passkeys::new(&config("127.0.0.1:8000", None));
        let (_, state) = passkeys
            .relying_party()
            .unwrap()
            .start_discoverable_authentication()
            .unwrap();
        let id = passkeys.wait_for(Ceremony::SignIn { state });
        assert!(matches!(
            passkeys.answered(&id),
            Ok(Ceremony::SignIn { .. })
        ));
        assert!(
            passkeys.answered(&id).is_err(),
            "a second answer is refused"
        );
        assert!(passkeys.answered("made-up").is_err());
    }
}
