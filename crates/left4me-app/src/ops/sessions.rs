//! Signing in and out: the first admin from the setup link, logins
//! slowed after failures, sessions stored by the hash of their token.

use std::net::IpAddr;

use left4me_store::{NewSessionRow, Secret, Session, User};

use crate::App;
use crate::actor::Actor;
use crate::credentials::{random_token, token_hash, verify_password};
use crate::domain::{NewPassword, Username};
use crate::error::{FieldErrors, OpError, OpResult};
use crate::ops::activity::record;
use crate::ops::second_factor;
use crate::ops::users::hash_blocking;

/// How long a session lasts without a new login.
pub const SESSION_TTL_SECS: i64 = 14 * 24 * 3600;

/// Who signs in: their address (what the limits count) and browser
/// (what their list of sessions shows).
#[derive(Debug, Clone)]
pub struct Client {
    pub address: IpAddr,
    pub user_agent: String,
}

/// Wrong codes a pending sign-in takes before it ends.
const PENDING_FAILURES: i64 = 10;

/// How long the second step of a sign-in may take.
pub const PENDING_TTL_SECS: i64 = 300;

/// A session just opened: its token (for the cookie, never stored).
#[derive(Debug)]
pub struct NewSession {
    pub token: Secret,
}

/// Where a right password leads.
#[derive(Debug)]
pub enum SignIn {
    Session(NewSession),
    /// A second factor is next: the pending sign-in's token (for a cookie
    /// of its own; it opens nothing but the second step).
    SecondFactor(Secret),
}

/// Who a session token signs in.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: User,
    pub session: Session,
    /// The admins require a second factor of this user, who has none yet:
    /// they may only set one up (and sign out).
    pub must_set_up_second_factor: bool,
}

/// Who a session token signs in, if it is current and the user active.
pub async fn current(app: &App, token: &str) -> OpResult<Option<SignedIn>> {
    let hash = token_hash(token);
    let generation = app.store().generation();
    if let Some(known) = app.session_memo().get(generation, &hash)
        && known.session.expires_at > left4me_store::now()
    {
        return Ok(Some(known));
    }
    let Some(mut session) = app.store().session(&hash).await? else {
        return Ok(None);
    };
    // Last seen to the minute, for the list of sessions: a failed note
    // must not fail the request.
    let now = left4me_store::now();
    if session.last_seen_at <= now - 60 {
        match app.store().touch_session(&hash).await {
            Ok(()) => session.last_seen_at = now,
            Err(e) => tracing::warn!("noting a session's use: {e}"),
        }
    }
    let user = app.store().user(session.user_id).await?;
    let signed_in = SignedIn {
        must_set_up_second_factor: second_factor::must_set_up(app, &user).await?,
        user,
        session,
    };
    app.session_memo().put(generation, hash, signed_in.clone());
    Ok(Some(signed_in))
}

pub(crate) async fn open(app: &App, user: User, client: &Client) -> OpResult<NewSession> {
    let token = random_token();
    let csrf = random_token();
    // A browser's own description, cut short: enough to tell sessions
    // apart, not a way to fill the database.
    let user_agent: String = client.user_agent.chars().take(200).collect();
    app.store()
        .create_session(&NewSessionRow {
            token_hash: &token_hash(&token),
            user_id: user.id,
            csrf_token: &csrf,
            ttl_secs: SESSION_TTL_SECS,
            user_agent: &user_agent,
            address: &client.address.to_string(),
        })
        .await?;
    Ok(NewSession {
        token: token.into(),
    })
}

/// A new setup link's token while no user exists (each one replaces the
/// one before); `None` once the first admin is there.
pub async fn setup_token_if_needed(app: &App) -> OpResult<Option<Secret>> {
    if app.store().count_users().await? > 0 {
        return Ok(None);
    }
    Ok(Some(
        crate::credentials::issue_setup_token(app.store())
            .await?
            .into(),
    ))
}

/// Ends the session of `token` (an unknown one changes nothing).
pub async fn log_out(app: &App, token: &str) -> OpResult<()> {
    Ok(app.store().delete_session(&token_hash(token)).await?)
}

/// Whether a setup link's token is the current one. It lives until it is
/// used or replaced: each start of the panel and each `left4me
/// setup-url` issues a new one while no user exists.
pub async fn setup_link_valid(app: &App, token: &Secret) -> OpResult<bool> {
    Ok(app
        .store()
        .setup_token_valid(&token_hash(token.expose()))
        .await?)
}

/// Why a setup link opens nothing, with what to do instead.
pub fn invalid_setup_link() -> OpError {
    OpError::NotFoundBecause(
        "This setup link was already used or has been replaced by a newer one (links also \
         expire after a day). If the first \
         admin exists, log in; an admin adds users under Users, or from a shell with \
         `left4me user create NAME`. Otherwise run `left4me setup-url` on the host and open \
         the link it prints."
            .into(),
    )
}

/// The first admin, made from the setup link, signed in at once.
pub async fn set_up_first_admin(
    app: &App,
    client: &Client,
    token: &Secret,
    username: &str,
    password: &Secret,
    confirm: &Secret,
) -> OpResult<NewSession> {
    if !setup_link_valid(app, token).await? {
        return Err(invalid_setup_link());
    }
    let mut errors = FieldErrors::default();
    let username = Username::parse(username)
        .map_err(|e| errors.add("username", e))
        .ok();
    let new_password = NewPassword::parse(password.expose())
        .map_err(|e| errors.add("password", e))
        .ok();
    if password.expose() != confirm.expose() {
        errors.add("confirm", "the passwords differ");
    }
    let (Some(username), Some(password), true) = (username, new_password, errors.is_empty()) else {
        return Err(OpError::Invalid(errors));
    };
    let hash = hash_blocking(password).await?;
    // Checked again with the insert: another request may have used the
    // link (or created the first user) while this one hashed.
    let created = app
        .store()
        .create_first_admin(&token_hash(token.expose()), username.as_str(), &hash)
        .await?;
    let Some(user) = created else {
        return Err(if app.store().count_users().await? > 0 {
            OpError::conflict("the first user already exists; log in")
        } else {
            invalid_setup_link()
        });
    };
    tracing::info!(user = %user.username, "first admin created");
    open(app, user, client).await
}

/// An argon2id hash of a random password, verified against when the
/// username does not exist, so timing does not tell who exists.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$W3yBlhu1jv8D6rKy5cTBNGf7Ua8OlK3A4xC4qbT6nAQ";

/// Signs in with a password from `client`. Failures are slowed per
/// address and per address and username (never per username alone),
/// logged, and in the admins' activity log.
pub async fn log_in(
    app: &App,
    client: &Client,
    username: &str,
    password: &Secret,
) -> OpResult<SignIn> {
    let (limiter, address) = (app.limiter(), client.address);
    let username = username.trim();
    if let Err(wait) = limiter.attempt(address, username) {
        return Err(OpError::TooManyAttempts {
            message: format!(
                "Too many failed logins from your address. Try again in {} seconds.",
                wait.as_secs().max(1)
            ),
            retry_after: wait,
        });
    }
    let user = app.store().user_by_name(username).await?;
    let password = password.clone();
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let valid = tokio::task::spawn_blocking(move || {
        let hash = hash.as_ref().map_or(DUMMY_HASH, Secret::expose);
        verify_password(hash, password.expose())
    })
    .await?;
    match user {
        Some(user) if valid && user.is_active => {
            if second_factor::required(app.store(), user.id).await? {
                limiter.refund_attempt(address, username);
                let token = random_token();
                app.store()
                    .create_pending_login(&token_hash(&token), user.id, PENDING_TTL_SECS)
                    .await?;
                return Ok(SignIn::SecondFactor(token.into()));
            }
            limiter.record_success(address, username);
            open(app, user, client).await.map(SignIn::Session)
        }
        _ => {
            // Already counted by `attempt`. At most 64 characters of what
            // was typed as the name: enough to tell who was tried, not a
            // way to fill the log.
            let tried: String = username.chars().take(64).collect();
            tracing::warn!(%address, username = ?tried, "failed login");
            app.store()
                .record_anonymous_activity(
                    &address.to_string(),
                    "login.failed",
                    &format!("failed login as {tried:?}"),
                )
                .await?;
            Err(OpError::Unauthenticated(
                "Wrong username or password, or the account is deactivated.".into(),
            ))
        }
    }
}

/// What proves the second step of a sign-in.
#[derive(Debug)]
pub enum Proof<'a> {
    /// A code of the user's authenticator app, or a recovery code.
    Code(&'a str),
    /// A passkey's answer (JSON) to the challenge of `ceremony`.
    Passkey { ceremony: &'a str, answer: &'a str },
}

/// What the second step of a pending sign-in can take.
#[derive(Debug)]
pub struct PendingSignIn {
    /// A code of an authenticator app.
    pub totp: bool,
    /// A passkey, answering this challenge.
    pub passkey: Option<crate::ops::passkeys::Challenge>,
}

fn sign_in_ended() -> OpError {
    OpError::Unauthenticated("This sign-in took too long or has ended: log in again.".into())
}

/// The second step of the pending sign-in `pending`: what it can take.
pub async fn pending(app: &App, pending: &str) -> OpResult<PendingSignIn> {
    let hash = token_hash(pending);
    let Some(user_id) = app.store().pending_login(&hash).await? else {
        return Err(sign_in_ended());
    };
    Ok(PendingSignIn {
        totp: second_factor::totp_on(app.store(), user_id).await?,
        passkey: crate::ops::passkeys::second_factor_challenge(app, user_id, &hash).await?,
    })
}

/// The second step of a sign-in: a code of the user's authenticator app,
/// one of their recovery codes, or a passkey. Failures are slowed like
/// wrong passwords (per address and per address and user), logged, and
/// in the admins' activity log.
pub async fn second_factor(
    app: &App,
    client: &Client,
    pending: &str,
    proof: Proof<'_>,
) -> OpResult<NewSession> {
    let address = client.address;
    let hash = token_hash(pending);
    let Some(user_id) = app.store().pending_login(&hash).await? else {
        return Err(sign_in_ended());
    };
    let user = app.store().user(user_id).await?;
    let limiter = app.limiter();
    if let Err(wait) = limiter.attempt(address, &user.username) {
        return Err(OpError::TooManyAttempts {
            message: format!(
                "Too many failed codes. Try again in {} seconds.",
                wait.as_secs().max(1)
            ),
            retry_after: wait,
        });
    }
    let checked = match proof {
        Proof::Code(typed) => second_factor::check(app, user.id, typed)
            .await?
            .then_some(())
            .ok_or_else(|| "That code is not right, or was used already.".to_owned()),
        Proof::Passkey { ceremony, answer } => {
            crate::ops::passkeys::check_second_factor(app, user.id, &hash, ceremony, answer).await?
        }
    };
    let why = match checked {
        Ok(()) if user.is_active => {
            limiter.record_success(address, &user.username);
            app.store().delete_pending_login(&hash).await?;
            return open(app, user, client).await;
        }
        Ok(()) => "The account is deactivated.".to_owned(),
        Err(why) => why,
    };
    tracing::warn!(%address, username = %user.username, "failed second factor");
    // A pending sign-in takes a few wrong codes, from whatever addresses:
    // then the password is asked again (and counted again).
    let ended = app.store().fail_pending_login(&hash).await? >= PENDING_FAILURES;
    if ended {
        app.store().delete_pending_login(&hash).await?;
    }
    app.store()
        .record_anonymous_activity(
            &address.to_string(),
            "login.second_factor_failed",
            &format!("a wrong second factor for {}", user.username),
        )
        .await?;
    if ended {
        return Err(OpError::Unauthenticated(
            "Too many wrong codes: sign in again.".into(),
        ));
    }
    Err(OpError::invalid("code", why))
}

/// The user types their password again in this session (`current` is its
/// token hash): making API tokens and adding a second factor take that
/// within ten minutes. Wrong passwords are slowed like failed sign-ins.
pub async fn confirm_identity(
    app: &App,
    actor: &Actor,
    address: IpAddr,
    current: &str,
    password: &Secret,
) -> OpResult<()> {
    actor.require_session()?;
    if !password_again(app, actor, address, password).await? {
        return Err(OpError::invalid("password", "that is not your password"));
    }
    app.store().verify_session(current).await?;
    Ok(())
}

/// Whether `password` is `actor`'s, typed again in a session: slowed
/// like failed sign-ins (per address and per address and user), so a
/// stolen session cannot guess the password at leisure.
pub(crate) async fn password_again(
    app: &App,
    actor: &Actor,
    address: IpAddr,
    password: &Secret,
) -> OpResult<bool> {
    let (limiter, username) = (app.limiter(), actor.user.username.as_str());
    if let Err(wait) = limiter.attempt(address, username) {
        return Err(OpError::TooManyAttempts {
            message: format!(
                "Too many wrong passwords. Try again in {} seconds.",
                wait.as_secs().max(1)
            ),
            retry_after: wait,
        });
    }
    let hash = actor.user.password_hash.clone();
    let typed = password.clone();
    let right =
        tokio::task::spawn_blocking(move || verify_password(hash.expose(), typed.expose())).await?;
    if right {
        limiter.record_success(address, username);
    } else {
        tracing::warn!(%address, %username, "a wrong password typed again in a session");
    }
    Ok(right)
}

/// One of a user's sessions as their account page lists it.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id: i64,
    /// The browser, in a few words.
    pub browser: String,
    pub address: String,
    pub signed_in_at: i64,
    pub last_seen_at: i64,
    /// The session this request came with.
    pub current: bool,
}

/// `actor`'s sessions, the one seen last first; `current` is this
/// request's session's token hash.
pub async fn list(app: &App, actor: &Actor, current: &str) -> OpResult<Vec<SessionInfo>> {
    actor.require_session()?;
    Ok(app
        .store()
        .sessions_of(actor.id())
        .await?
        .into_iter()
        .map(|s| SessionInfo {
            id: s.id,
            browser: browser_of(&s.user_agent),
            address: s.address,
            signed_in_at: s.created_at,
            last_seen_at: s.last_seen_at,
            current: crate::credentials::constant_time_eq(s.token_hash.expose(), current),
        })
        .collect())
}

/// Ends one of `actor`'s sessions: its next request is signed out.
pub async fn end(app: &App, actor: &Actor, id: i64) -> OpResult<()> {
    actor.require_session()?;
    let mut write = app.store().write().await?;
    let ended = write.delete_session_of(actor.id(), id).await?;
    let detail = format!(
        "ended a session ({} from {})",
        browser_of(&ended.user_agent),
        ended.address
    );
    record(&mut write, actor, None, "account.session", &detail).await?;
    write.commit().await?;
    Ok(())
}

/// A browser's `User-Agent` in a few words ("Firefox on Linux").
fn browser_of(user_agent: &str) -> String {
    const UNKNOWN: &str = "UNKNOWN";
    match woothee::parser::Parser::new().parse(user_agent) {
        Some(ua) if ua.name != UNKNOWN && ua.os != UNKNOWN => format!("{} on {}", ua.name, ua.os),
        Some(ua) if ua.name != UNKNOWN => ua.name.to_owned(),
        _ => "an unknown browser".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::browser_of;

    #[test]
    fn browsers_are_named_in_a_few_words() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
        let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
        assert_eq!(browser_of(firefox), "Firefox on Linux");
        assert!(
            browser_of(chrome).starts_with("Chrome on Windows"),
            "{}",
            browser_of(chrome)
        );
        assert!(
            browser_of(safari).starts_with("Safari on"),
            "{}",
            browser_of(safari)
        );
        assert_eq!(browser_of(""), "an unknown browser");
    }
}
