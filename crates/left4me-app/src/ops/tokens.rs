//! Personal API tokens: made on the account page (shown once, stored as
//! a hash), listed with their last use, revoked at once; and the check of
//! a token a request brings, slowed after failures like a login.

use std::net::IpAddr;

use left4me_store::{ApiToken, NewApiToken, Secret};
use serde::Deserialize;

use crate::App;
use crate::actor::{Actor, Scope, TokenGrant};
use crate::credentials::{random_token, token_hash};
use crate::domain::DisplayName;
use crate::error::{FieldErrors, OpError, OpResult};
use crate::ops::activity::record;

/// What every token starts with, so a leaked one is easy to recognise.
pub const TOKEN_PREFIX: &str = "l4m_";
/// The longest expiry one can ask for.
const MAX_DAYS: u32 = 3650;

/// A token as its owner sees it (never the token itself).
#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub id: i64,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub servers: Option<Vec<i64>>,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

fn scopes_of(stored: &str) -> Vec<Scope> {
    stored.split_whitespace().filter_map(Scope::parse).collect()
}

fn servers_of(stored: Option<&str>) -> Option<Vec<i64>> {
    stored.map(|s| {
        s.split_whitespace()
            .filter_map(|id| id.parse().ok())
            .collect()
    })
}

impl From<ApiToken> for TokenInfo {
    fn from(t: ApiToken) -> Self {
        Self {
            id: t.id,
            scopes: scopes_of(&t.scopes),
            servers: servers_of(t.servers.as_deref()),
            name: t.name,
            expires_at: t.expires_at,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
        }
    }
}

/// A new token as the account page sends it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NewTokenInput {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub scopes: Vec<Scope>,
    /// Only these servers; empty: every server of the user.
    #[serde(default)]
    pub servers: Vec<i64>,
    /// Days until it stops working; none: it works until revoked.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

/// A token just made: the only time the token itself is shown.
#[derive(Debug)]
pub struct MadeToken {
    pub token: Secret,
    pub info: TokenInfo,
}

pub async fn list(app: &App, actor: &Actor) -> OpResult<Vec<TokenInfo>> {
    actor.require_session()?;
    Ok(app
        .store()
        .api_tokens(actor.id())
        .await?
        .into_iter()
        .map(TokenInfo::from)
        .collect())
}

/// Makes a token of `actor`'s (from a session: tokens make no tokens).
pub async fn create(app: &App, actor: &Actor, input: &NewTokenInput) -> OpResult<MadeToken> {
    actor.require_recent_sign_in()?;
    let mut errors = FieldErrors::default();
    let name = DisplayName::parse(&input.name)
        .map_err(|e| errors.add("name", e))
        .ok();
    let mut scopes = input.scopes.clone();
    scopes.sort();
    scopes.dedup();
    if scopes.is_empty() {
        errors.add("scopes", "choose at least one scope");
    } else if scopes.contains(&Scope::Admin) && !actor.is_admin() {
        errors.add("scopes", "only admins' tokens may have the admin scope");
    } else if scopes.contains(&Scope::Admin) && !input.servers.is_empty() {
        errors.add(
            "scopes",
            "a token limited to some servers cannot have the admin scope",
        );
    }
    let mut servers = input.servers.clone();
    servers.sort_unstable();
    servers.dedup();
    for id in &servers {
        let seen =
            crate::ops::access::server(app, actor, *id, crate::ops::access::ServerAction::View)
                .await;
        if seen.is_err() {
            errors.add("servers", format!("there is no server {id} of yours"));
            break;
        }
    }
    let expires_at = match input.expires_in_days {
        Some(0) | None => None,
        Some(days) if days > MAX_DAYS => {
            errors.add("expires_in_days", format!("at most {MAX_DAYS} days"));
            None
        }
        Some(days) => Some(left4me_store::now() + i64::from(days) * 86_400),
    };
    let Some(name) = name.filter(|_| errors.is_empty()) else {
        return Err(OpError::Invalid(errors));
    };
    let token = format!("{TOKEN_PREFIX}{}", random_token());
    let scope_words: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    let mut write = app.store().write().await?;
    let stored = write
        .create_api_token(&NewApiToken {
            user_id: actor.id(),
            name: name.as_str(),
            token_hash: &token_hash(&token),
            scopes: &scope_words.join(" "),
            servers: (!servers.is_empty()).then_some(servers.as_slice()),
            expires_at,
        })
        .await
        .map_err(|e| match OpError::from(e) {
            OpError::Conflict { message, .. } => OpError::invalid("name", message),
            other => other,
        })?;
    let detail = format!(
        "made API token {} ({})",
        stored.name,
        scope_words.join(", ")
    );
    record(&mut write, actor, None, "token.create", &detail).await?;
    write.commit().await?;
    Ok(MadeToken {
        token: token.into(),
        info: stored.into(),
    })
}

/// Revokes one of `actor`'s tokens: the next request with it fails.
pub async fn revoke(app: &App, actor: &Actor, id: i64) -> OpResult<()> {
    actor.require_session()?;
    let mut write = app.store().write().await?;
    let gone = write.delete_api_token(actor.id(), id).await?;
    let detail = format!("revoked API token {gone}");
    record(&mut write, actor, None, "token.revoke", &detail).await?;
    write.commit().await?;
    Ok(())
}

/// The actor a bearer token stands for. Unknown, expired and revoked
/// tokens and deactivated users are refused alike; each refusal slows the
/// next tries from `client` (a limiter of its own, so a broken bot does
/// not slow the logins of its neighbours). A valid token never waits:
/// it is 256 random bits, so nothing is learnt by letting it through.
pub async fn authenticate(app: &App, client: IpAddr, token: &str) -> OpResult<Actor> {
    // One key for all tokens of an address: guessing tokens is guessing
    // one secret per try, whatever the name.
    const KEY: &str = "api-token";
    let hash = token_hash(token);
    let generation = app.store().generation();
    let (found, fresh) = match app.token_memo().get(generation, &hash) {
        Some(known) => (Some(known), false),
        None => match app.store().api_token(&hash).await? {
            Some(stored) => {
                let user = app.store().user(stored.user_id).await?;
                let must = crate::ops::second_factor::must_set_up(app, &user).await?;
                (Some((user, stored, must)), true)
            }
            None => (None, true),
        },
    };
    let now = left4me_store::now();
    let valid = found.filter(|(user, stored, _)| {
        let expired = stored.expires_at.is_some_and(|at| at <= now);
        !expired && user.is_active
    });
    if valid.as_ref().is_some_and(|(_, _, must)| *must) {
        return Err(OpError::Forbidden(
            "Your admins require a second factor: set one up on your account page before the API \
             takes your tokens again."
                .into(),
        ));
    }
    let Some((user, mut stored, _)) = valid else {
        let limiter = app.token_limiter();
        if let Err(wait) = limiter.waiting(client, KEY) {
            return Err(OpError::TooManyAttempts {
                message: format!(
                    "Too many failed API tokens from your address. Try again in {} seconds.",
                    wait.as_secs().max(1)
                ),
                retry_after: wait,
            });
        }
        limiter.record_failure(client, KEY);
        tracing::warn!(address = %client, "refused API token");
        return Err(OpError::Unauthenticated(
            "the API token is unknown, expired or revoked".into(),
        ));
    };
    // Last use is a convenience, to the minute: a failed note must not
    // fail the call, and a busy bot costs no write per request (the note
    // is no change the memo counts, so it keeps the time it wrote).
    if stored.last_used_at.is_none_or(|at| at <= now - 60) {
        match app.store().touch_api_token(stored.id).await {
            Ok(()) => stored.last_used_at = Some(now),
            Err(e) => tracing::warn!("noting the use of API token {}: {e}", stored.name),
        }
    }
    if fresh {
        app.token_memo()
            .put(generation, hash, (user.clone(), stored.clone(), false));
    }
    let info = TokenInfo::from(stored);
    Ok(Actor::with_token(
        user,
        TokenGrant {
            name: info.name,
            scopes: info.scopes,
            servers: info.servers,
        },
    ))
}
