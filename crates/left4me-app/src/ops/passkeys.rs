//! Passkeys: added and removed on the account page, used at sign-in as
//! the second factor or, where the user chose so, instead of the
//! password.
//!
//! Each use is a ceremony: the panel makes a challenge ([`Challenge`]),
//! the browser has an authenticator sign it, and the answer (JSON, as
//! the browser's script sends it) comes back with the ceremony's id.

use std::net::IpAddr;

use left4me_store::{PasskeyRecord, Secret, User};
use webauthn_rs::prelude::{
    Passkey, PublicKeyCredential, RegisterPublicKeyCredential, Uuid, WebauthnError,
};
use webauthn_rs_proto::ResidentKeyRequirement;

use crate::App;
use crate::actor::Actor;
use crate::error::{OpError, OpResult};
use crate::ops::activity::record;
use crate::ops::second_factor::recovery_hashes;
use crate::ops::sessions::{self, Client, NewSession};
use crate::passkeys::Ceremony;

/// What the browser needs to ask its authenticator: the options for
/// `navigator.credentials.create` or `.get` (as `{"publicKey": …}`, binary
/// fields in base64url), and the id to send back with the answer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Challenge {
    pub ceremony: String,
    pub options: serde_json::Value,
}

/// A passkey as the account page lists it.
#[derive(Debug, Clone)]
pub struct PasskeyInfo {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A new passkey as the browser answered: the ceremony's id, the name the
/// user gave it, and the authenticator's answer (JSON).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct NewPasskey {
    pub ceremony: String,
    #[serde(default)]
    pub name: String,
    pub credential: String,
}

/// Longest passkey name kept.
const NAME_CHARS: usize = 64;

/// The user's passkeys, oldest first.
pub(crate) async fn of(app: &App, user_id: i64) -> OpResult<Vec<PasskeyInfo>> {
    Ok(app
        .store()
        .passkeys_of(user_id)
        .await?
        .into_iter()
        .map(|p| PasskeyInfo {
            id: p.id,
            name: p.name,
            created_at: p.created_at,
            last_used_at: p.last_used_at,
        })
        .collect())
}

fn stored(record: &PasskeyRecord) -> OpResult<Passkey> {
    serde_json::from_str(&record.credential)
        .map_err(|e| OpError::internal(format!("reading passkey {}", record.id), e))
}

fn to_json(passkey: &Passkey) -> OpResult<String> {
    serde_json::to_string(passkey).map_err(|e| OpError::internal("writing a passkey", e))
}

fn challenge(ceremony: String, options: &impl serde::Serialize) -> OpResult<Challenge> {
    Ok(Challenge {
        ceremony,
        options: serde_json::to_value(options)
            .map_err(|e| OpError::internal("passkey options", e))?,
    })
}

/// Why an authenticator's answer was refused, in words: a wrong origin
/// names both addresses (a look-alike site relaying the panel is how
/// sign-ins are phished).
fn refusal(app: &App, client_data_json: &[u8], error: &WebauthnError) -> String {
    tracing::warn!("a passkey answer was refused: {error}");
    match error {
        WebauthnError::InvalidRPOrigin => {
            let from = serde_json::from_slice::<serde_json::Value>(client_data_json)
                .ok()
                .and_then(|v| v["origin"].as_str().map(str::to_owned))
                .unwrap_or_else(|| "another address".into());
            let panel = app
                .passkeys()
                .origin()
                .map_or_else(String::new, |o| o.origin().ascii_serialization());
            format!(
                "This passkey answer was made on {from}, but this panel is {panel}: open the \
                 panel at its own address."
            )
        }
        WebauthnError::UserNotVerified => {
            "The authenticator did not check it is you (a PIN, fingerprint or face): try again."
                .into()
        }
        _ => format!("The passkey was not accepted ({error})."),
    }
}

fn parse_answer<T: serde::de::DeserializeOwned>(answer: &str) -> OpResult<T> {
    serde_json::from_str(answer)
        .map_err(|e| OpError::BadRequest(format!("The browser's answer is not a passkey's: {e}.")))
}

/// Starts adding a passkey to `actor`'s account.
pub async fn begin_registration(app: &App, actor: &Actor) -> OpResult<Challenge> {
    actor.require_recent_sign_in()?;
    let relying_party = app.passkeys().relying_party()?;
    let mut write = app.store().write().await?;
    let handle = write
        .passkey_handle(actor.id(), &Uuid::new_v4().to_string())
        .await?;
    write.commit().await?;
    let handle =
        Uuid::parse_str(&handle).map_err(|e| OpError::internal("a user's passkey handle", e))?;
    let registered = app
        .store()
        .passkeys_of(actor.id())
        .await?
        .into_iter()
        .map(|p| p.credential_id)
        .collect();
    let name = &actor.user.username;
    let (mut options, state) = relying_party
        .start_passkey_registration(handle, name, name, Some(registered))
        .map_err(|e| OpError::internal("starting a passkey registration", e))?;
    // Discoverable where the authenticator can: such a passkey can also
    // sign in without the password, should the user choose that.
    if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
        selection.resident_key = Some(ResidentKeyRequirement::Preferred);
    }
    let ceremony = app.passkeys().wait_for(Ceremony::Register {
        user_id: actor.id(),
        state,
    });
    challenge(ceremony, &options)
}

/// The name a new passkey is listed under: what the user typed, cleaned
/// and cut short, or "passkey N"; never one they have (a new passkey is
/// not lost over its name).
fn free_name(typed: &str, taken: &[PasskeyInfo]) -> String {
    let clean: String = typed
        .chars()
        .filter(|c| !c.is_control())
        .take(NAME_CHARS)
        .collect();
    let base = match clean.trim() {
        "" => format!("passkey {}", taken.len() + 1),
        name => name.to_owned(),
    };
    let is_taken = |name: &str| taken.iter().any(|p| p.name == name);
    (1..)
        .map(|n| match n {
            1 => base.clone(),
            n => format!("{base} ({n})"),
        })
        .find(|name| !is_taken(name))
        .unwrap_or(base)
}

/// Adds the passkey the browser made. The user's first second factor
/// comes with recovery codes (returned, shown this once). Their other
/// sessions end (`keep` is this one's token hash).
pub async fn finish_registration(
    app: &App,
    actor: &Actor,
    keep: &str,
    input: &NewPasskey,
) -> OpResult<Option<Vec<Secret>>> {
    actor.require_recent_sign_in()?;
    let relying_party = app.passkeys().relying_party()?;
    let answer: RegisterPublicKeyCredential = parse_answer(&input.credential)?;
    let state = match app.passkeys().answered(&input.ceremony)? {
        Ceremony::Register { user_id, state } if user_id == actor.id() => state,
        _ => {
            return Err(OpError::BadRequest(
                "That answer is not to your passkey registration: try again.".into(),
            ));
        }
    };
    let passkey = relying_party
        .finish_passkey_registration(&answer, &state)
        .map_err(|e| OpError::BadRequest(refusal(app, &answer.response.client_data_json, &e)))?;
    let name = free_name(&input.name, &of(app, actor.id()).await?);
    let codes = crate::second_factor::recovery_codes();
    let hashes = recovery_hashes(app, actor.id(), &codes)?;
    let mut write = app.store().write().await?;
    let (totp, passkeys) = write.second_factors(actor.id()).await?;
    write
        .add_passkey(actor.id(), &name, passkey.cred_id(), &to_json(&passkey)?)
        .await?;
    let first = !totp && passkeys == 0;
    if first {
        write.replace_recovery_codes(actor.id(), &hashes).await?;
    }
    write.set_second_factor_reset(actor.id(), None).await?;
    write.delete_other_sessions(actor.id(), keep).await?;
    let detail = format!("added the passkey {name:?}");
    record(&mut write, actor, None, "account.second_factor", &detail).await?;
    write.commit().await?;
    Ok(first.then(|| codes.into_iter().map(Secret::from).collect()))
}

/// Whether `user_id` has no second factor but this passkey.
async fn is_last(app: &App, user_id: i64) -> OpResult<bool> {
    let totp = crate::ops::second_factor::totp_on(app.store(), user_id).await?;
    Ok(!totp && app.store().passkeys_of(user_id).await?.len() <= 1)
}

/// Removes one of `actor`'s passkeys. Their last second factor goes only
/// with the password; others with a recent sign-in.
pub async fn remove(
    app: &App,
    actor: &Actor,
    address: IpAddr,
    id: i64,
    password: Option<&Secret>,
) -> OpResult<()> {
    actor.require_session()?;
    let last = is_last(app, actor.id()).await?;
    if last {
        let Some(password) = password.filter(|p| !p.expose().is_empty()) else {
            return Err(OpError::invalid(
                "password",
                "this is your last second factor: type your password to remove it",
            ));
        };
        if !sessions::password_again(app, actor, address, password).await? {
            return Err(OpError::invalid("password", "that is not your password"));
        }
    } else {
        actor.require_recent_sign_in()?;
    }
    let mut write = app.store().write().await?;
    let name = write.delete_passkey(actor.id(), id).await?;
    let (totp, passkeys) = write.second_factors(actor.id()).await?;
    if !totp && passkeys == 0 {
        if !last {
            // Another factor went meanwhile: this one is the last now.
            return Err(OpError::invalid(
                "password",
                "this is your last second factor now: type your password to remove it",
            ));
        }
        write.delete_second_factor(actor.id()).await?;
    }
    let detail = format!("removed the passkey {name:?}");
    record(&mut write, actor, None, "account.second_factor", &detail).await?;
    write.commit().await?;
    Ok(())
}

/// Whether a passkey alone signs `actor` in (they need one first).
pub async fn set_sign_in_alone(app: &App, actor: &Actor, on: bool) -> OpResult<()> {
    actor.require_recent_sign_in()?;
    let mut write = app.store().write().await?;
    if on && write.second_factors(actor.id()).await?.1 == 0 {
        return Err(OpError::conflict("Add a passkey first."));
    }
    write.set_passkey_sign_in(actor.id(), on).await?;
    let detail = if on {
        "let a passkey alone sign them in"
    } else {
        "made passkeys a second factor only"
    };
    record(&mut write, actor, None, "account.second_factor", detail).await?;
    write.commit().await?;
    Ok(())
}

/// The user's passkeys as the relying party needs them.
async fn keys_of(app: &App, user_id: i64) -> OpResult<Vec<(PasskeyRecord, Passkey)>> {
    app.store()
        .passkeys_of(user_id)
        .await?
        .into_iter()
        .map(|r| stored(&r).map(|k| (r, k)))
        .collect()
}

/// A challenge for the second step of the pending sign-in whose token
/// hash is `pending`, if its user has passkeys (and passkeys are on).
pub(crate) async fn second_factor_challenge(
    app: &App,
    user_id: i64,
    pending: &str,
) -> OpResult<Option<Challenge>> {
    let keys: Vec<Passkey> = keys_of(app, user_id)
        .await?
        .into_iter()
        .map(|(_, k)| k)
        .collect();
    let Ok(relying_party) = app.passkeys().relying_party() else {
        return Ok(None);
    };
    if keys.is_empty() {
        return Ok(None);
    }
    let (options, state) = relying_party
        .start_passkey_authentication(&keys)
        .map_err(|e| OpError::internal("starting a passkey sign-in", e))?;
    let ceremony = app.passkeys().wait_for(Ceremony::SecondFactor {
        pending: pending.to_owned(),
        state,
    });
    challenge(ceremony, &options).map(Some)
}

/// Whether `answer` is a passkey of `user_id` signing the challenge of
/// `ceremony`, made for the pending sign-in `pending`. A wrong answer is
/// `Ok(false)` with the reason logged; an expired ceremony an error.
pub(crate) async fn check_second_factor(
    app: &App,
    user_id: i64,
    pending: &str,
    ceremony: &str,
    answer: &str,
) -> OpResult<Result<(), String>> {
    let relying_party = app.passkeys().relying_party()?;
    let answer: PublicKeyCredential = parse_answer(answer)?;
    let state = match app.passkeys().answered(ceremony)? {
        Ceremony::SecondFactor { pending: p, state } if p == pending => state,
        _ => return Ok(Err("That answer is not to this sign-in.".into())),
    };
    match relying_party.finish_passkey_authentication(&answer, &state) {
        Ok(result) => {
            if let Some((record, key)) = key_of(app, user_id, result.cred_id()).await? {
                note_use(app, &record, key, &result).await?;
            }
            Ok(Ok(()))
        }
        Err(e) => Ok(Err(refusal(app, &answer.response.client_data_json, &e))),
    }
}

/// The user's passkey with this credential id, if they have it.
async fn key_of(
    app: &App,
    user_id: i64,
    credential_id: &[u8],
) -> OpResult<Option<(PasskeyRecord, Passkey)>> {
    match app.store().passkey_by_credential(credential_id).await? {
        Some(record) if record.user_id == user_id => {
            let key = stored(&record)?;
            Ok(Some((record, key)))
        }
        _ => Ok(None),
    }
}

/// Keeps the passkey's new signature counter and when it was used.
async fn note_use(
    app: &App,
    record: &PasskeyRecord,
    mut key: Passkey,
    result: &webauthn_rs::prelude::AuthenticationResult,
) -> OpResult<()> {
    key.update_credential(result);
    Ok(app.store().passkey_used(record.id, &to_json(&key)?).await?)
}

/// A challenge to sign in with a passkey alone: the authenticator offers
/// the user's passkeys for this panel.
pub async fn begin_sign_in(app: &App) -> OpResult<Challenge> {
    let (mut options, state) = app
        .passkeys()
        .relying_party()?
        .start_discoverable_authentication()
        .map_err(|e| OpError::internal("starting a passkey sign-in", e))?;
    // Asked for with a click, not offered in the username field's
    // autofill: every browser with passkeys does that.
    options.mediation = None;
    let ceremony = app.passkeys().wait_for(Ceremony::SignIn { state });
    challenge(ceremony, &options)
}

/// Signs in with a passkey alone, where its user chose that. Failures
/// are slowed, logged and in the admins' activity log like wrong
/// passwords.
pub async fn sign_in(
    app: &App,
    client: &Client,
    ceremony: &str,
    answer: &str,
) -> OpResult<NewSession> {
    let relying_party = app.passkeys().relying_party()?;
    let answer: PublicKeyCredential = parse_answer(answer)?;
    let user = match relying_party.identify_discoverable_authentication(&answer) {
        Ok((handle, _)) => {
            app.store()
                .user_by_passkey_handle(&handle.to_string())
                .await?
        }
        Err(_) => None,
    };
    let username = user.as_ref().map_or("", |u| u.username.as_str());
    let (limiter, address) = (app.limiter(), client.address);
    if let Err(wait) = limiter.attempt(address, username) {
        return Err(OpError::TooManyAttempts {
            message: format!(
                "Too many failed sign-ins from your address. Try again in {} seconds.",
                wait.as_secs().max(1)
            ),
            retry_after: wait,
        });
    }
    let Ceremony::SignIn { state } = app.passkeys().answered(ceremony)? else {
        return Err(OpError::BadRequest(
            "That answer is not to a passkey sign-in: try again.".into(),
        ));
    };
    let Some(user) = user else {
        failed(app, address, "an unknown passkey").await?;
        return Err(OpError::Unauthenticated(
            "This passkey is not registered here (it may have been removed).".into(),
        ));
    };
    match verify_alone(app, &user, &answer, state).await? {
        Err(why) => {
            failed(app, address, &user.username).await?;
            Err(OpError::Unauthenticated(why))
        }
        Ok(()) if !user.is_active => {
            failed(app, address, &user.username).await?;
            Err(OpError::Unauthenticated(
                "Your account is deactivated.".into(),
            ))
        }
        Ok(()) if !user.passkey_sign_in => {
            limiter.refund_attempt(address, &user.username);
            Err(OpError::Unauthenticated(
                "Your passkey is your second factor: sign in with your password first. (Your \
                 account page can let the passkey alone sign you in.)"
                    .into(),
            ))
        }
        Ok(()) => {
            limiter.record_success(address, &user.username);
            sessions::open(app, user, client).await
        }
    }
}

/// Checks the answer against `user`'s passkey it names.
async fn verify_alone(
    app: &App,
    user: &User,
    answer: &PublicKeyCredential,
    state: webauthn_rs::prelude::DiscoverableAuthentication,
) -> OpResult<Result<(), String>> {
    let relying_party = app.passkeys().relying_party()?;
    let Some((record, key)) = key_of(app, user.id, answer.get_credential_id()).await? else {
        return Ok(Err(
            "This passkey is not registered here (it may have been removed).".into(),
        ));
    };
    match relying_party.finish_discoverable_authentication_v2(answer, state, &key) {
        Ok(result) => {
            note_use(app, &record, key, &result).await?;
            Ok(Ok(()))
        }
        Err(e) => Ok(Err(refusal(app, &answer.response.client_data_json, &e))),
    }
}

/// A failed passkey sign-in: logged and in the admins' activity log.
async fn failed(app: &App, address: IpAddr, who: &str) -> OpResult<()> {
    tracing::warn!(%address, who, "failed passkey sign-in");
    app.store()
        .record_anonymous_activity(
            &address.to_string(),
            "login.failed",
            &format!("a failed passkey sign-in as {who}"),
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(names: &[&str]) -> Vec<PasskeyInfo> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| PasskeyInfo {
                id: i64::try_from(i).unwrap(),
                name: (*n).to_owned(),
                created_at: 0,
                last_used_at: None,
            })
            .collect()
    }

    #[test]
    fn a_new_passkey_gets_a_name_of_its_own() {
        assert_eq!(free_name(" laptop ", &[]), "laptop");
        assert_eq!(free_name("", &listed(&["a"])), "passkey 2");
        assert_eq!(free_name("phone", &listed(&["phone"])), "phone (2)");
        assert_eq!(
            free_name("phone", &listed(&["phone", "phone (2)"])),
            "phone (3)"
        );
        assert_eq!(free_name("a\u{7}b\n", &[]), "ab");
        assert_eq!(free_name(&"x".repeat(100), &[]).chars().count(), NAME_CHARS);
    }
}
