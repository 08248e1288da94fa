//! Passwords, sessions, CSRF and login rate limits.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use left4me_app::actor::Actor;
use left4me_store::Session;

use crate::config::TrustedProxies;
use crate::error::AppError;
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "left4me_session";
/// Double-submit token for forms shown before login (login, setup).
pub const PRE_SESSION_CSRF_COOKIE: &str = "left4me_csrf";
pub use left4me_app::ops::sessions::SESSION_TTL_SECS;

pub use left4me_app::limiter::{
    ADDRESS_FREE_FAILURES, FIRST_WAIT, FORGET_AFTER, LONGEST_WAIT, LoginLimiter, MAX_KEYS,
    PAIR_FREE_FAILURES,
};

pub use left4me_app::credentials::{
    constant_time_eq, hash_password, issue_setup_token, random_token, token_hash, verify_password,
};

/// The link that opens the setup page with `token`: on the panel's
/// `public_url` where set, else on the address it listens on, named
/// `localhost` on loopback (passkeys are bound to a name, and cookies
/// to the name a browser opened).
pub fn setup_url(
    public_url: Option<&url::Url>,
    listen: std::net::SocketAddr,
    token: &str,
) -> String {
    let base = match public_url {
        Some(url) => url.origin().ascii_serialization(),
        None if listen.ip().is_loopback() => format!("http://localhost:{}", listen.port()),
        None => format!("http://{listen}"),
    };
    format!("{base}/setup?token={token}")
}

/// The value of cookie `name` the request brings.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// A `Set-Cookie` value: for the whole panel, never readable by scripts,
/// not sent along by other sites' forms; `Secure` behind HTTPS. A
/// `max_age` of 0 deletes it.
pub fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> String {
    cookie::Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(cookie::SameSite::Lax)
        .max_age(cookie::time::Duration::seconds(max_age))
        .secure(secure)
        .build()
        .to_string()
}

/// The logged-in user of a request: the actor of the operations it
/// calls, and the session it came with.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub actor: Actor,
    pub session: Session,
    /// The admins require a second factor of this user, who has none yet.
    pub must_set_up_second_factor: bool,
}

impl std::ops::Deref for CurrentUser {
    type Target = Actor;

    fn deref(&self) -> &Actor {
        &self.actor
    }
}

/// The user a request came from, once something looked it up: the
/// [`CurrentUser`] extractor and the CSRF guard fill it, and the error
/// pages read it to show the navigation without a second session lookup.
/// `error_pages` puts an empty one in every request.
#[derive(Debug, Clone, Default)]
pub(crate) struct SeenUser(Arc<OnceLock<CurrentUser>>);

impl SeenUser {
    pub(crate) fn get(&self) -> Option<&CurrentUser> {
        self.0.get()
    }
}

/// The session token of a request, if it has one.
pub(crate) fn session_token(headers: &HeaderMap) -> Option<String> {
    cookie(headers, SESSION_COOKIE)
}

pub(crate) async fn user_of_token(
    state: &AppState,
    token: &str,
) -> Result<Option<CurrentUser>, AppError> {
    Ok(left4me_app::ops::sessions::current(state.app(), token)
        .await?
        .map(|signed_in| CurrentUser {
            actor: Actor::with_session(signed_in.user, signed_in.session.verified_at),
            session: signed_in.session,
            must_set_up_second_factor: signed_in.must_set_up_second_factor,
        }))
}

/// The request's signed-in user, looked up once per request: a layer
/// that looked first leaves it in the extensions for the rest.
async fn session_user(state: &AppState, parts: &Parts) -> Result<Option<CurrentUser>, AppError> {
    if let Some(user) = parts.extensions.get::<CurrentUser>() {
        return Ok(Some(user.clone()));
    }
    let Some(token) = session_token(&parts.headers) else {
        return Ok(None);
    };
    let user = user_of_token(state, &token).await?;
    if let (Some(user), Some(seen)) = (&user, parts.extensions.get::<SeenUser>()) {
        let _ = seen.0.set(user.clone());
    }
    Ok(user)
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        session_user(state, parts)
            .await?
            .ok_or(AppError::LoginRequired)
    }
}

/// The user if logged in.
#[derive(Debug, Clone)]
pub struct MaybeUser(pub Option<CurrentUser>);

impl FromRequestParts<AppState> for MaybeUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(session_user(state, parts).await?))
    }
}

/// The client's address, as the limits count it: the peer's, or behind a
/// trusted proxy the one it forwards.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddress {
    /// Plain text: the pages' error pages and the API's problems both
    /// take it (the server is always bound with its peers' addresses).
    type Rejection = (axum::http::StatusCode, &'static str);

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip())
            .ok_or((
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "no client address",
            ))?;
        let trusted = &state.app().config().trusted_proxies;
        Ok(Self(client_ip(peer, &parts.headers, trusted)))
    }
}

/// What a user who must set up a second factor first may still open:
/// the account page's setup and signing out.
fn open_before_second_factor(method: &Method, path: &str) -> bool {
    matches!(
        (method, path),
        (&Method::GET, "/account")
            | (
                &Method::POST,
                "/account/confirm"
                    | "/account/totp"
                    | "/account/totp/confirm"
                    | "/account/passkeys"
                    | "/account/passkeys/options"
                    | "/logout"
            )
    ) || !path.starts_with('/')
        || ["/login", "/setup", "/static/", "/health", "/api/"]
            .iter()
            .any(|open| path.starts_with(open))
}

/// A user the admins require a second factor of, who has none yet, is
/// led to set one up from every other page (the API refuses them in
/// [`crate::api`]).
pub async fn second_factor_gate(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if open_before_second_factor(request.method(), request.uri().path()) {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    match session_user(&state, &parts).await {
        Ok(Some(user)) if user.must_set_up_second_factor => {
            axum::response::Redirect::to("/account#second-factor").into_response()
        }
        Ok(Some(user)) => {
            parts.extensions.insert(user);
            next.run(Request::from_parts(parts, body)).await
        }
        Ok(None) => next.run(Request::from_parts(parts, body)).await,
        Err(e) => e.into_response(),
    }
}

const MAX_FORM_BYTES: usize = 2 * 1024 * 1024;

/// Checks the CSRF token of every state-changing request: from the
/// `X-CSRF-Token` header, a `csrf` query parameter (multipart uploads) or
/// a `csrf` form field, against the session's token (or, before login, the
/// double-submit cookie). Compared in constant time.
pub async fn csrf_guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let expected = match session_user(&state, &parts).await {
        Ok(Some(user)) => {
            let token = user.session.csrf_token.expose().to_owned();
            parts.extensions.insert(user);
            Some(token)
        }
        Ok(None) => cookie(&parts.headers, PRE_SESSION_CSRF_COOKIE),
        Err(e) => return e.into_response(),
    };
    let from_header = parts
        .headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let from_query = parts
        .uri
        .query()
        .and_then(|q| form_field(q.as_bytes(), "csrf"));
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    let (provided, body) = match (from_header.or(from_query), is_form) {
        (Some(token), _) => (Some(token), body),
        (None, true) => match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
            Ok(bytes) => (form_field(&bytes, "csrf"), Body::from(bytes)),
            Err(_) => {
                return AppError::PayloadTooLarge("the form is too large".into()).into_response();
            }
        },
        (None, false) => (None, body),
    };
    match (expected, provided) {
        (Some(expected), Some(provided)) if constant_time_eq(&expected, &provided) => {
            next.run(Request::from_parts(parts, body)).await
        }
        _ => AppError::Forbidden(
            "This form expired or came from another site. Reload the page and try again.".into(),
        )
        .into_response(),
    }
}

fn form_field(encoded: &[u8], name: &str) -> Option<String> {
    decode_form(encoded)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Decodes `application/x-www-form-urlencoded` pairs.
fn decode_form(encoded: &[u8]) -> Vec<(String, String)> {
    fn decode(s: &[u8]) -> String {
        let mut out = Vec::with_capacity(s.len());
        let mut i = 0;
        while i < s.len() {
            match s[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < s.len() => {
                    let hex = std::str::from_utf8(&s[i + 1..i + 3]).ok();
                    match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        Some(b) => {
                            out.push(b);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    encoded
        .split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let mut it = pair.splitn(2, |b| *b == b'=');
            let k = decode(it.next().unwrap_or_default());
            let v = decode(it.next().unwrap_or_default());
            (k, v)
        })
        .collect()
}

/// The client's address: the peer's, unless the peer is a trusted proxy;
/// then the last `X-Forwarded-For` entry not added by a trusted proxy
/// (earlier entries are the client's to forge).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    if !trusted.contains(peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|a| a.trim().parse::<IpAddr>().map(|ip| ip.to_canonical()))
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !trusted.contains(*ip))
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setup_link_names_the_panel_as_browsers_open_it() {
        let listen = "127.0.0.1:8000".parse().unwrap();
        assert_eq!(
            setup_url(None, listen, "t"),
            "http://localhost:8000/setup?token=t"
        );
        assert_eq!(
            setup_url(None, "0.0.0.0:8000".parse().unwrap(), "t"),
            "http://0.0.0.0:8000/setup?token=t"
        );
        let public = "https://l4d2.example.org/".parse().unwrap();
        assert_eq!(
            setup_url(Some(&public), listen, "t"),
            "https://l4d2.example.org/setup?token=t"
        );
    }

    #[test]
    fn the_client_address_comes_from_trusted_proxies_only() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let trusted: TrustedProxies = "127.0.0.1,10.0.0.2".parse().unwrap();
        let headers = |values: &[&str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append("x-forwarded-for", v.parse().unwrap());
            }
            h
        };
        let forged = headers(&["198.51.100.9, 203.0.113.7"]);
        // Straight from a client: the header is ignored.
        assert_eq!(
            client_ip(ip("192.0.2.1"), &forged, &trusted),
            ip("192.0.2.1")
        );
        // Through the proxy: the entry the proxy added, not the forged one.
        assert_eq!(
            client_ip(ip("127.0.0.1"), &forged, &trusted),
            ip("203.0.113.7")
        );
        // Through two trusted proxies, over several header lines.
        let chained = headers(&["203.0.113.7", "10.0.0.2"]);
        assert_eq!(
            client_ip(ip("127.0.0.1"), &chained, &trusted),
            ip("203.0.113.7")
        );
        // No header, or garbage: the proxy itself.
        assert_eq!(
            client_ip(ip("127.0.0.1"), &headers(&[]), &trusted),
            ip("127.0.0.1")
        );
        assert_eq!(
            client_ip(ip("127.0.0.1"), &headers(&["unknown"]), &trusted),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn passwords_hash_and_verify() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse battery"));
        assert!(!verify_password(&hash, "wrong"));
        assert!(!verify_password("garbage", "wrong"));
    }

    #[test]
    fn form_fields_decode() {
        assert_eq!(
            form_field(b"a=1&csrf=ab%2Bc+d&x", "csrf").as_deref(),
            Some("ab+c d")
        );
        assert_eq!(form_field(b"csrf=%zz", "csrf").as_deref(), Some("%zz"));
        assert_eq!(form_field(b"csrf=%4", "csrf").as_deref(), Some("%4"));
    }

    #[test]
    fn cookies_are_set_with_their_attributes_and_read_back_from_any_header() {
        let set = set_cookie("left4me_session", "abc123", 60, true);
        for part in [
            "left4me_session=abc123",
            "HttpOnly",
            "SameSite=Lax",
            "Path=/",
            "Max-Age=60",
            "Secure",
        ] {
            assert!(set.contains(part), "{part} in {set}");
        }
        assert!(!set_cookie("a", "b", 0, false).contains("Secure"));
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, "other=1; left4me_csrf=x".parse().unwrap());
        headers.append(header::COOKIE, "left4me_session=abc123".parse().unwrap());
        assert_eq!(
            cookie(&headers, "left4me_session").as_deref(),
            Some("abc123")
        );
        assert_eq!(cookie(&headers, "left4me_csrf").as_deref(), Some("x"));
        assert_eq!(cookie(&headers, "missing"), None);
    }
}
