//! Second factors: an authenticator app (TOTP) and recovery codes, set up
//! and removed from the account page, and checked at sign-in.

use std::net::IpAddr;

use left4me_store::{Secret, Store, User};
use serde::Deserialize;

use crate::App;
use crate::actor::Actor;
use crate::error::{OpError, OpResult};
use crate::ops::activity::record;
use crate::ops::passkeys::PasskeyInfo;
use crate::second_factor::{TotpKey, normalize_recovery_code, qr_svg, recovery_codes};

/// Who must have a second factor: until they set one up they can do
/// nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    #[default]
    Nobody,
    Admins,
    Everyone,
}

impl Policy {
    const SETTING: &str = "second_factor_policy";

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nobody => "nobody",
            Self::Admins => "admins",
            Self::Everyone => "everyone",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        [Self::Nobody, Self::Admins, Self::Everyone]
            .into_iter()
            .find(|p| p.as_str() == raw)
    }

    fn covers(self, user: &User) -> bool {
        match self {
            Self::Nobody => false,
            Self::Admins => user.is_admin,
            Self::Everyone => true,
        }
    }
}

async fn policy(app: &App) -> OpResult<Policy> {
    let Some(raw) = app.store().setting(Policy::SETTING).await? else {
        return Ok(Policy::default());
    };
    Ok(Policy::parse(&raw).unwrap_or_else(|| {
        // Only the panel writes it; still, fail closed and say so.
        tracing::warn!(
            "unknown second-factor policy {raw:?} in the settings; requiring it of everyone"
        );
        Policy::Everyone
    }))
}

/// Admins: who must have a second factor (to show the setting).
pub async fn policy_for(app: &App, actor: &Actor) -> OpResult<Policy> {
    actor.require_admin()?;
    actor.require(crate::actor::Scope::Read)?;
    policy(app).await
}

/// Admins: who must have a second factor.
pub async fn set_policy(app: &App, actor: &Actor, policy: Policy) -> OpResult<()> {
    actor.require_admin()?;
    let mut write = app.store().write().await?;
    write.set_setting(Policy::SETTING, policy.as_str()).await?;
    let detail = format!("a second factor is now required of {}", policy.as_str());
    record(
        &mut write,
        actor,
        None,
        "panel.second_factor_policy",
        &detail,
    )
    .await?;
    write.commit().await?;
    Ok(())
}

/// Whether the policy asks a second factor of `user` and they have none
/// yet: then they may only set one up.
pub(crate) async fn must_set_up(app: &App, user: &User) -> OpResult<bool> {
    Ok(policy(app).await?.covers(user) && !required(app.store(), user.id).await?)
}

/// What guards a user's sign-in besides the password.
#[derive(Debug, Clone)]
pub struct FactorStatus {
    pub totp: bool,
    pub passkeys: Vec<PasskeyInfo>,
    /// A passkey alone signs the user in.
    pub passkey_sign_in: bool,
    /// Why passkeys cannot be used on this panel, if they cannot.
    pub passkeys_off: Option<String>,
    pub recovery_codes_left: i64,
}

impl FactorStatus {
    /// Whether signing in takes a second factor.
    pub fn any(&self) -> bool {
        self.totp || !self.passkeys.is_empty()
    }
}

pub async fn status(app: &App, actor: &Actor) -> OpResult<FactorStatus> {
    actor.require_session()?;
    let store = app.store();
    Ok(FactorStatus {
        totp: totp_on(store, actor.id()).await?,
        passkeys: crate::ops::passkeys::of(app, actor.id()).await?,
        passkey_sign_in: store.user(actor.id()).await?.passkey_sign_in,
        passkeys_off: app.passkeys().off_because().map(str::to_owned),
        recovery_codes_left: store.recovery_codes_left(actor.id()).await?,
    })
}

/// A key being set up: what the page shows to put it into an app. Its
/// `Debug` shows neither (the QR code holds the key too).
#[derive(Clone)]
pub struct TotpSetup {
    /// The key in base32, to type in.
    pub secret: Secret,
    /// The `otpauth://` link, as a QR code in SVG.
    pub qr_svg: String,
}

impl std::fmt::Debug for TotpSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSetup(..)")
    }
}

/// The sealing context of a user's key: a sealed key moved to another
/// user does not open.
fn context(user_id: i64) -> Vec<u8> {
    format!("totp user {user_id}").into_bytes()
}

fn key_of(app: &App, user_id: i64, sealed: &[u8]) -> OpResult<TotpKey> {
    let bytes = app
        .sealing_key()?
        .open(&context(user_id), sealed)
        .map_err(|e| OpError::internal("opening a TOTP key", e))?;
    Ok(TotpKey::from_bytes(bytes))
}

/// How many users' keys in use do not open with this panel's sealing
/// key (a restore without the old host's secrets.key): said at start,
/// since those users' codes are refused until the key is put back.
pub(crate) async fn keys_that_do_not_open(app: &App) -> OpResult<usize> {
    let key = app.sealing_key()?;
    Ok(app
        .store()
        .confirmed_totp_keys()
        .await?
        .iter()
        .filter(|record| key.open(&context(record.user_id), &record.sealed).is_err())
        .count())
}

fn setup_of(actor: &Actor, key: &TotpKey) -> TotpSetup {
    TotpSetup {
        secret: key.base32().into(),
        qr_svg: qr_svg(&key.uri(&actor.user.username)),
    }
}

/// Makes a new key to set up (replacing one being set up, never one in
/// use) and says how to put it into an app.
pub async fn begin_totp(app: &App, actor: &Actor) -> OpResult<TotpSetup> {
    actor.require_recent_sign_in()?;
    let key = TotpKey::generate();
    let sealed = app.sealing_key()?.seal(&context(actor.id()), key.bytes());
    let mut write = app.store().write().await?;
    if write.totp_confirmed(actor.id()).await? {
        return Err(OpError::conflict(
            "Your authenticator app is on already; turn it off first to use another.",
        ));
    }
    write.put_unconfirmed_totp_key(actor.id(), &sealed).await?;
    write.commit().await?;
    Ok(setup_of(actor, &key))
}

/// The key being set up, shown again (after a wrong code).
pub async fn current_setup(app: &App, actor: &Actor) -> OpResult<TotpSetup> {
    actor.require_session()?;
    match app.store().totp_key(actor.id()).await? {
        Some(stored) if stored.confirmed_at.is_none() => {
            Ok(setup_of(actor, &key_of(app, actor.id(), &stored.sealed)?))
        }
        _ => Err(OpError::conflict("Set up an authenticator app first.")),
    }
}

/// Turns the key being set up on with one of its codes, makes the
/// recovery codes (shown this once) and ends the user's other sessions
/// (`keep` is this one's token hash).
pub async fn confirm_totp(
    app: &App,
    actor: &Actor,
    keep: &str,
    code: &str,
) -> OpResult<Vec<Secret>> {
    actor.require_recent_sign_in()?;
    let Some(stored) = app
        .store()
        .totp_key(actor.id())
        .await?
        .filter(|r| r.confirmed_at.is_none())
    else {
        return Err(OpError::conflict("Set up an authenticator app first."));
    };
    let key = key_of(app, actor.id(), &stored.sealed)?;
    let Some(step) = key.matching_step(code, now_secs()) else {
        return Err(OpError::invalid(
            "code",
            "that is not the app's code now: type the six digits it shows (is the phone's clock right?)",
        ));
    };
    let codes = recovery_codes();
    let hashes = recovery_hashes(app, actor.id(), &codes)?;
    let mut write = app.store().write().await?;
    // The key checked is the key turned on: another tab may have begun
    // a new one since it was read.
    if !write
        .confirm_totp_key(actor.id(), &stored.sealed, step_i64(step))
        .await?
    {
        return Err(OpError::conflict("Your authenticator app is on already."));
    }
    write.replace_recovery_codes(actor.id(), &hashes).await?;
    write.set_second_factor_reset(actor.id(), None).await?;
    write.delete_other_sessions(actor.id(), keep).await?;
    record(
        &mut write,
        actor,
        None,
        "account.second_factor",
        "turned on two-factor sign-in with an authenticator app",
    )
    .await?;
    write.commit().await?;
    Ok(codes.into_iter().map(Secret::from).collect())
}

/// New recovery codes in place of the old ones (which stop working).
pub async fn new_recovery_codes(app: &App, actor: &Actor) -> OpResult<Vec<Secret>> {
    actor.require_recent_sign_in()?;
    let codes = recovery_codes();
    let hashes = recovery_hashes(app, actor.id(), &codes)?;
    let mut write = app.store().write().await?;
    if write.second_factors(actor.id()).await? == (false, 0) {
        return Err(OpError::conflict(
            "Recovery codes come with a second factor: set one up first.",
        ));
    }
    write.replace_recovery_codes(actor.id(), &hashes).await?;
    record(
        &mut write,
        actor,
        None,
        "account.second_factor",
        "made new recovery codes",
    )
    .await?;
    write.commit().await?;
    Ok(codes.into_iter().map(Secret::from).collect())
}

/// Turns the authenticator app off: the password is asked again. With
/// no passkey left, the recovery codes go too.
pub async fn remove_totp(
    app: &App,
    actor: &Actor,
    address: IpAddr,
    password: &Secret,
) -> OpResult<()> {
    actor.require_session()?;
    if !crate::ops::sessions::password_again(app, actor, address, password).await? {
        return Err(OpError::invalid("password", "that is not your password"));
    }
    let mut write = app.store().write().await?;
    write.delete_totp_key(actor.id()).await?;
    if write.second_factors(actor.id()).await?.1 == 0 {
        write.delete_second_factor(actor.id()).await?;
    }
    record(
        &mut write,
        actor,
        None,
        "account.second_factor",
        "turned off the authenticator app",
    )
    .await?;
    write.commit().await?;
    Ok(())
}

/// Whether the user's authenticator app is on.
pub(crate) async fn totp_on(store: &Store, user_id: i64) -> OpResult<bool> {
    Ok(store
        .totp_key(user_id)
        .await?
        .is_some_and(|k| k.confirmed_at.is_some()))
}

/// Whether signing in as the user takes a second factor.
pub(crate) async fn required(store: &Store, user_id: i64) -> OpResult<bool> {
    Ok(totp_on(store, user_id).await? || !store.passkeys_of(user_id).await?.is_empty())
}

/// A second factor typed at sign-in: a code of the user's app (its time
/// step taken, so it works once) or an unused recovery code (used up).
pub(crate) async fn check(app: &App, user_id: i64, typed: &str) -> OpResult<bool> {
    let store = app.store();
    if let Some(code) = normalize_recovery_code(typed) {
        return Ok(store
            .take_recovery_code(user_id, &recovery_hash(app, user_id, &code)?)
            .await?);
    }
    let Some(stored) = store
        .totp_key(user_id)
        .await?
        .filter(|r| r.confirmed_at.is_some())
    else {
        return Ok(false);
    };
    let key = key_of(app, user_id, &stored.sealed)?;
    match key.matching_step(typed, now_secs()) {
        Some(step) => Ok(store.take_totp_step(user_id, step_i64(step)).await?),
        None => Ok(false),
    }
}

/// What is kept of a recovery code: a hash keyed with the sealing key,
/// bound to its user.
fn recovery_hash(app: &App, user_id: i64, code: &str) -> OpResult<String> {
    let plain = normalize_recovery_code(code).unwrap_or_default();
    Ok(app
        .sealing_key()?
        .keyed_hash(b"recovery codes", format!("{user_id}:{plain}").as_bytes()))
}

pub(crate) fn recovery_hashes(app: &App, user_id: i64, codes: &[String]) -> OpResult<Vec<String>> {
    codes
        .iter()
        .map(|c| recovery_hash(app, user_id, c))
        .collect()
}

fn now_secs() -> u64 {
    u64::try_from(left4me_store::now()).unwrap_or(0)
}

fn step_i64(step: u64) -> i64 {
    i64::try_from(step).unwrap_or(i64::MAX)
}
