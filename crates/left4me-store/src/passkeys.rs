//! Passkeys: the WebAuthn credentials users registered, and the handle
//! their authenticators know them by.

use sqlx::FromRow;

use crate::{Result, Store, StoreError, User, is_unique_violation, now};

/// A registered passkey. `credential` is the panel's record of it (the
/// public key and signature counter, as JSON).
#[derive(Clone, PartialEq, Eq, FromRow)]
pub struct PasskeyRecord {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub credential_id: Vec<u8>,
    pub credential: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

impl std::fmt::Debug for PasskeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasskeyRecord")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// The user's passkeys, oldest first.
    pub async fn passkeys_of(&self, user_id: i64) -> Result<Vec<PasskeyRecord>> {
        Ok(
            sqlx::query_as("SELECT * FROM passkeys WHERE user_id = ? ORDER BY id")
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// The passkey with this credential id, whoever's it is.
    pub async fn passkey_by_credential(
        &self,
        credential_id: &[u8],
    ) -> Result<Option<PasskeyRecord>> {
        Ok(
            sqlx::query_as("SELECT * FROM passkeys WHERE credential_id = ?")
                .bind(credential_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The user their authenticators know by `handle`.
    pub async fn user_by_passkey_handle(&self, handle: &str) -> Result<Option<User>> {
        Ok(
            sqlx::query_as("SELECT * FROM users WHERE passkey_handle = ?")
                .bind(handle)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Notes a sign-in with the passkey: its record (the counter moves)
    /// and the time. Bookkeeping: nothing a list shows changes.
    pub async fn passkey_used(&self, id: i64, credential: &str) -> Result<()> {
        sqlx::query("UPDATE passkeys SET credential = ?, last_used_at = ? WHERE id = ?")
            .bind(credential)
            .bind(now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

impl crate::Write {
    /// The user's passkey handle, made (from `new`) on first use.
    pub async fn passkey_handle(&mut self, user_id: i64, new: &str) -> Result<String> {
        sqlx::query("UPDATE users SET passkey_handle = ? WHERE id = ? AND passkey_handle IS NULL")
            .bind(new)
            .bind(user_id)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query_scalar("SELECT passkey_handle FROM users WHERE id = ?")
            .bind(user_id)
            .fetch_optional(&mut *self.tx)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Registers a passkey; a name the user has, or a credential someone
    /// registered already, is a conflict.
    pub async fn add_passkey(
        &mut self,
        user_id: i64,
        name: &str,
        credential_id: &[u8],
        credential: &str,
    ) -> Result<i64> {
        if sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM passkeys WHERE credential_id = ?")
            .bind(credential_id)
            .fetch_one(&mut *self.tx)
            .await?
            > 0
        {
            return Err(StoreError::Conflict(
                "this passkey is registered already".into(),
            ));
        }
        sqlx::query_scalar(
            "INSERT INTO passkeys (user_id, name, credential_id, credential, created_at)
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(user_id)
        .bind(name)
        .bind(credential_id)
        .bind(credential)
        .bind(now())
        .fetch_one(&mut *self.tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!("you have a passkey named {name:?} already"))
            } else {
                e.into()
            }
        })
    }

    /// Removes one of the user's passkeys; its name.
    pub async fn delete_passkey(&mut self, user_id: i64, id: i64) -> Result<String> {
        sqlx::query_scalar("DELETE FROM passkeys WHERE id = ? AND user_id = ? RETURNING name")
            .bind(id)
            .bind(user_id)
            .fetch_optional(&mut *self.tx)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// The user's second factors now: whether an authenticator app is on,
    /// and how many passkeys they have.
    pub async fn second_factors(&mut self, user_id: i64) -> Result<(bool, i64)> {
        Ok(sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM totp_keys WHERE user_id = ?1 AND confirmed_at IS NOT NULL),
                    (SELECT COUNT(*) FROM passkeys WHERE user_id = ?1)",
        )
        .bind(user_id)
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// Whether a passkey alone signs the user in.
    pub async fn set_passkey_sign_in(&mut self, user_id: i64, on: bool) -> Result<()> {
        sqlx::query("UPDATE users SET passkey_sign_in = ? WHERE id = ?")
            .bind(on)
            .bind(user_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}
