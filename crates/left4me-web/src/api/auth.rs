//! Who calls the API: a bearer token (`Authorization: Bearer l4m_…`), or a
//! signed-in browser session, which must send its CSRF token in the
//! `X-CSRF-Token` header for anything but reading.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, header};
use left4me_app::actor::Actor;
use left4me_app::error::OpError;
use left4me_app::ops::{sessions, tokens};
use left4me_store::Secret;

use super::problem::ApiError;
use crate::auth::{ClientAddress, constant_time_eq, session_token};
use crate::state::AppState;

/// The actor of an API request, and the hash of its session's token
/// when it came with one (what a password change keeps).
#[derive(Debug, Clone)]
pub(crate) struct ApiUser {
    actor: Actor,
    session: Option<Secret>,
}

impl ApiUser {
    pub(crate) fn session_hash(&self) -> Option<&str> {
        self.session.as_ref().map(Secret::expose)
    }
}

impl std::ops::Deref for ApiUser {
    type Target = Actor;

    fn deref(&self) -> &Actor {
        &self.actor
    }
}

/// The bearer token of a request, if it brings one.
pub(crate) fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let app = state.app();
        if let Some(token) = bearer(parts).map(str::to_owned) {
            let ClientAddress(client) = ClientAddress::from_request_parts(parts, state)
                .await
                .map_err(|(_, why)| OpError::internal("the request", std::io::Error::other(why)))?;
            return Ok(Self {
                actor: tokens::authenticate(app, client, &token).await?,
                session: None,
            });
        }
        let Some(token) = session_token(&parts.headers) else {
            return Err(OpError::Unauthenticated(
                "send an API token (Authorization: Bearer …), made on your account page".into(),
            )
            .into());
        };
        let Some(signed_in) = sessions::current(app, &token).await? else {
            return Err(
                OpError::Unauthenticated("the session has ended; sign in again".into()).into(),
            );
        };
        if signed_in.must_set_up_second_factor {
            return Err(OpError::Forbidden(
                "your admins require a second factor: set one up on your account page first".into(),
            )
            .into());
        }
        let (user, session) = (signed_in.user, signed_in.session);
        if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
            let sent = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if !constant_time_eq(sent, session.csrf_token.expose()) {
                return Err(OpError::Forbidden(
                    "a browser session must send its CSRF token in X-CSRF-Token".into(),
                )
                .into());
            }
        }
        Ok(Self {
            actor: Actor::with_session(user, session.verified_at),
            session: Some(session.token_hash),
        })
    }
}
