//! Second factors: a user's TOTP key (sealed by the panel before it gets
//! here), recovery codes, and sign-ins waiting for their second factor.

use sqlx::FromRow;

use crate::{Result, Store, now};

/// A user's TOTP key as stored: sealed, confirmed or still being set up.
#[derive(Clone, PartialEq, Eq, FromRow)]
pub struct TotpRecord {
    pub user_id: i64,
    pub sealed: Vec<u8>,
    pub confirmed_at: Option<i64>,
    pub last_step: i64,
}

impl std::fmt::Debug for TotpRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpRecord")
            .field("user_id", &self.user_id)
            .field("confirmed_at", &self.confirmed_at)
            .finish_non_exhaustive()
    }
}

impl Store {
    pub async fn totp_key(&self, user_id: i64) -> Result<Option<TotpRecord>> {
        Ok(sqlx::query_as(
            "SELECT user_id, sealed, confirmed_at, last_step FROM totp_keys WHERE user_id = ?",
        )
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Every user's key in use (checked at start against the sealing key).
    pub async fn confirmed_totp_keys(&self) -> Result<Vec<TotpRecord>> {
        Ok(sqlx::query_as(
            "SELECT user_id, sealed, confirmed_at, last_step FROM totp_keys
             WHERE confirmed_at IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Recovery codes not used yet.
    pub async fn recovery_codes_left(&self, user_id: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL",
        )
        .bind(user_id)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Takes a step of the user's TOTP key: true when no code of this or a
    /// later step was taken before (so each code works once).
    pub async fn take_totp_step(&self, user_id: i64, step: i64) -> Result<bool> {
        let taken = sqlx::query(
            "UPDATE totp_keys SET last_step = ?2 WHERE user_id = ?1 AND last_step < ?2",
        )
        .bind(user_id)
        .bind(step)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        if taken {
            self.changed();
        }
        Ok(taken)
    }

    /// Uses a recovery code: true when it was the user's and unused.
    pub async fn take_recovery_code(&self, user_id: i64, code_hash: &str) -> Result<bool> {
        let taken = sqlx::query(
            "UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at IS NULL",
        )
        .bind(now())
        .bind(user_id)
        .bind(code_hash)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        if taken {
            self.changed();
        }
        Ok(taken)
    }

    /// A sign-in waiting for its second factor.
    pub async fn create_pending_login(
        &self,
        token_hash: &str,
        user_id: i64,
        ttl_secs: i64,
    ) -> Result<()> {
        let now = now();
        sqlx::query(
            "INSERT INTO pending_logins (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(now)
        .bind(now + ttl_secs)
        .execute(&self.pool)
        .await?;
        self.changed();
        Ok(())
    }

    /// The user of a pending sign-in that has not expired.
    pub async fn pending_login(&self, token_hash: &str) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT user_id FROM pending_logins WHERE token_hash = ? AND expires_at > ?",
        )
        .bind(token_hash)
        .bind(now())
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Counts a wrong code against a pending sign-in; says how many it has
    /// had.
    pub async fn fail_pending_login(&self, token_hash: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "UPDATE pending_logins SET failures = failures + 1 WHERE token_hash = ? RETURNING failures",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?
        .unwrap_or(i64::MAX))
    }

    /// Ends a pending sign-in (done, or given up), and any that expired.
    pub async fn delete_pending_login(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM pending_logins WHERE token_hash = ? OR expires_at <= ?")
            .bind(token_hash)
            .bind(now())
            .execute(&self.pool)
            .await?;
        self.changed();
        Ok(())
    }
}

impl crate::Write {
    /// Whether the user's key is on (read in the write, so two tabs
    /// cannot both set one up over it).
    pub async fn totp_confirmed(&mut self, user_id: i64) -> Result<bool> {
        Ok(sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM totp_keys WHERE user_id = ? AND confirmed_at IS NOT NULL",
        )
        .bind(user_id)
        .fetch_one(&mut *self.tx)
        .await?
            > 0)
    }

    /// A new key being set up, in place of one being set up before (a
    /// confirmed key is replaced only by removing it first).
    pub async fn put_unconfirmed_totp_key(&mut self, user_id: i64, sealed: &[u8]) -> Result<()> {
        sqlx::query(
            "INSERT INTO totp_keys (user_id, sealed, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (user_id) DO UPDATE SET sealed = ?2, created_at = ?3, last_step = 0
             WHERE confirmed_at IS NULL",
        )
        .bind(user_id)
        .bind(sealed)
        .bind(now())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Turns the key `sealed` on, its first code's step taken; false when
    /// another key (or none) is being set up now.
    pub async fn confirm_totp_key(
        &mut self,
        user_id: i64,
        sealed: &[u8],
        step: i64,
    ) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE totp_keys SET confirmed_at = ?, last_step = ?
             WHERE user_id = ? AND sealed = ? AND confirmed_at IS NULL",
        )
        .bind(now())
        .bind(step)
        .bind(user_id)
        .bind(sealed)
        .execute(&mut *self.tx)
        .await?
        .rows_affected()
            == 1)
    }

    /// Ends the user's sign-ins waiting for a second factor (their
    /// password changed, or the factor was reset).
    pub async fn delete_pending_logins_of(&mut self, user_id: i64) -> Result<()> {
        sqlx::query("DELETE FROM pending_logins WHERE user_id = ?")
            .bind(user_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Removes the user's authenticator app (on, or being set up).
    pub async fn delete_totp_key(&mut self, user_id: i64) -> Result<()> {
        sqlx::query("DELETE FROM totp_keys WHERE user_id = ?")
            .bind(user_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Removes every second factor: the app's key, the passkeys (which then
    /// sign no one in alone) and the recovery codes.
    pub async fn delete_second_factor(&mut self, user_id: i64) -> Result<()> {
        for table in [
            "DELETE FROM totp_keys WHERE user_id = ?",
            "DELETE FROM passkeys WHERE user_id = ?",
            "DELETE FROM recovery_codes WHERE user_id = ?",
            "UPDATE users SET passkey_sign_in = 0 WHERE id = ?",
        ] {
            sqlx::query(table)
                .bind(user_id)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    /// New recovery codes in place of all earlier ones.
    pub async fn replace_recovery_codes(&mut self, user_id: i64, hashes: &[String]) -> Result<()> {
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = ?")
            .bind(user_id)
            .execute(&mut *self.tx)
            .await?;
        for hash in hashes {
            sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES (?, ?)")
                .bind(user_id)
                .bind(hash)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }
}
