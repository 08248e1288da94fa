//! Users (admins only): the list, new users, deactivating and deleting,
//! never locking everyone out; and a user's own password.

use left4me_store::{Secret, User};
use serde::Deserialize;

use crate::App;
use crate::actor::{Actor, Scope};
use crate::credentials::hash_password;
use crate::domain::{NewPassword, Username};
use crate::error::{FieldErrors, OpError, OpResult};
use crate::ops::activity::record;

pub async fn list(app: &App, actor: &Actor) -> OpResult<Vec<User>> {
    actor.require_admin()?;
    actor.require(Scope::Read)?;
    Ok(app.store().users().await?)
}

/// A new user as an admin enters it. The password never shows in `Debug`.
#[derive(Debug, Clone, Deserialize)]
pub struct NewUserInput {
    pub username: String,
    pub password: Secret,
    #[serde(default, deserialize_with = "crate::input::checkbox")]
    pub admin: bool,
}

/// Hashes on a blocking thread: argon2 is slow on purpose.
pub async fn hash_blocking(password: NewPassword) -> OpResult<String> {
    tokio::task::spawn_blocking(move || hash_password(password.as_str())).await?
}

pub async fn create(app: &App, actor: &Actor, input: &NewUserInput) -> OpResult<User> {
    actor.require_admin()?;
    let mut errors = FieldErrors::default();
    let username = Username::parse(&input.username)
        .map_err(|e| errors.add("username", e))
        .ok();
    let password = NewPassword::parse(input.password.expose())
        .map_err(|e| errors.add("password", e))
        .ok();
    let (Some(username), Some(password)) = (username, password) else {
        return Err(OpError::Invalid(errors));
    };
    let hash = hash_blocking(password).await?;
    let mut write = app.store().write().await?;
    let created = write
        .create_user(username.as_str(), &hash, input.admin)
        .await
        .map_err(|e| match OpError::from(e) {
            OpError::Conflict { message, .. } => OpError::invalid("username", message),
            other => other,
        })?;
    let role = if created.is_admin { "admin" } else { "user" };
    let detail = format!("created {role} {}", created.username);
    record(&mut write, actor, None, "user.create", &detail).await?;
    write.commit().await?;
    Ok(created)
}

/// The user `target` if `actor` (an admin) may deactivate or delete them,
/// with the write that will: never oneself, never the last active admin
/// (counted in the write, so two admins cannot remove each other at once).
async fn guard(app: &App, actor: &Actor, target: i64) -> OpResult<(User, left4me_store::Write)> {
    actor.require_admin()?;
    if target == actor.id() {
        return Err(OpError::conflict(
            "You cannot deactivate or delete yourself.",
        ));
    }
    let target = app.store().user(target).await?;
    let mut write = app.store().write().await?;
    if target.is_admin && target.is_active && write.count_active_admins().await? <= 1 {
        return Err(OpError::conflict("That is the last active admin."));
    }
    Ok((target, write))
}

/// Activates or deactivates a user; deactivating ends their sessions.
pub async fn set_active(app: &App, actor: &Actor, id: i64, active: bool) -> OpResult<()> {
    let (target, mut write) = guard(app, actor, id).await?;
    write.set_user_active(target.id, active).await?;
    let verb = if active { "activated" } else { "deactivated" };
    let detail = format!("{verb} {}", target.username);
    record(&mut write, actor, None, "user.active", &detail).await?;
    write.commit().await?;
    Ok(())
}

/// Deletes a user who owns nothing any more.
pub async fn delete(app: &App, actor: &Actor, id: i64) -> OpResult<()> {
    let (target, mut write) = guard(app, actor, id).await?;
    let owned = write.user_possessions(target.id).await?;
    if !owned.is_empty() {
        return Err(OpError::conflict(format!(
            "{} still owns {}; delete or hand those over first.",
            target.username,
            owned.join(", ")
        )));
    }
    write.delete_user(target.id).await?;
    let detail = format!("deleted {}", target.username);
    record(&mut write, actor, None, "user.delete", &detail).await?;
    write.commit().await?;
    Ok(())
}

/// Admins: ends every session of another user (their next request is
/// signed out; their API tokens keep working).
pub async fn end_sessions(app: &App, actor: &Actor, id: i64) -> OpResult<()> {
    actor.require_admin()?;
    let target = app.store().user(id).await?;
    let mut write = app.store().write().await?;
    write.delete_other_sessions(target.id, "").await?;
    let detail = format!("ended every session of {}", target.username);
    record(&mut write, actor, None, "user.sessions", &detail).await?;
    write.commit().await?;
    Ok(())
}

/// Admins: turns another user's second factor off (a lost phone and no
/// recovery codes) and ends their sessions; they are told when they next
/// sign in, until they set one up again.
pub async fn reset_second_factor(app: &App, actor: &Actor, id: i64) -> OpResult<()> {
    actor.require_admin()?;
    if id == actor.id() {
        return Err(OpError::conflict(
            "Turn your own second factor off on your account page.",
        ));
    }
    let target = app.store().user(id).await?;
    let mut write = app.store().write().await?;
    write.delete_second_factor(target.id).await?;
    write.delete_pending_logins_of(target.id).await?;
    write
        .set_second_factor_reset(target.id, Some(left4me_store::now()))
        .await?;
    write.delete_other_sessions(target.id, "").await?;
    let detail = format!("reset the second factor of {}", target.username);
    record(&mut write, actor, None, "user.second_factor", &detail).await?;
    write.commit().await?;
    Ok(())
}

/// A password change as the account page sends it.
#[derive(Debug, Clone, Deserialize)]
pub struct PasswordInput {
    pub current: Secret,
    pub password: Secret,
    pub confirm: Secret,
}

/// Changes `actor`'s own password, checked against the current one, and
/// ends every other session of theirs (`keep` is this one's token hash).
pub async fn change_password(
    app: &App,
    actor: &Actor,
    address: std::net::IpAddr,
    keep: &str,
    input: &PasswordInput,
) -> OpResult<()> {
    actor.require_session()?;
    let mut errors = FieldErrors::default();
    if !crate::ops::sessions::password_again(app, actor, address, &input.current).await? {
        errors.add("current", "that is not your current password");
    }
    let password = NewPassword::parse(input.password.expose())
        .map_err(|e| errors.add("password", e))
        .ok();
    if input.password != input.confirm {
        errors.add("confirm", "the passwords differ");
    }
    let (Some(password), true) = (password, errors.is_empty()) else {
        return Err(OpError::Invalid(errors));
    };
    let hash = hash_blocking(password).await?;
    let mut write = app.store().write().await?;
    write.set_password_hash(actor.id(), &hash).await?;
    write.delete_pending_logins_of(actor.id()).await?;
    write.delete_other_sessions(actor.id(), keep).await?;
    write.commit().await?;
    Ok(())
}
