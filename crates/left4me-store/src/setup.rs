//! The one-time setup link that creates the first admin.

use crate::{Result, Store, StoreError, User, now};

/// How long a setup link works: long enough to open it from the journal
/// after installing, short enough that an old log line is no key.
const SETUP_TOKEN_TTL_SECS: i64 = 24 * 3600;

/// Whether the bound hash is the current, unexpired token (bound second:
/// the oldest creation time still valid) and setup is not over.
const VALID_TOKEN: &str = "SELECT EXISTS (SELECT 1 FROM setup_token
                                           WHERE token_hash = ? AND created_at >= ?)
                              AND NOT EXISTS (SELECT 1 FROM users)";

impl Store {
    /// Makes `token_hash` the only valid setup token, replacing any
    /// earlier one. Refused once a user exists: setup is over then.
    pub async fn replace_setup_token(&self, token_hash: &str) -> Result<()> {
        let mut write = self.write().await?;
        let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&mut *write.tx)
            .await?;
        if users > 0 {
            return Err(StoreError::Conflict(
                "setup is done: users exist. Log in, or add users with `left4me user create NAME`"
                    .into(),
            ));
        }
        sqlx::query(
            "INSERT INTO setup_token (id, token_hash, created_at) VALUES (1, ?, ?)
             ON CONFLICT (id) DO UPDATE SET token_hash = excluded.token_hash,
                                            created_at = excluded.created_at",
        )
        .bind(token_hash)
        .bind(now())
        .execute(&mut *write.tx)
        .await?;
        write.commit().await?;
        Ok(())
    }

    /// Whether `token_hash` is the current setup token and no user exists.
    pub async fn setup_token_valid(&self, token_hash: &str) -> Result<bool> {
        Ok(sqlx::query_scalar(VALID_TOKEN)
            .bind(token_hash)
            .bind(now() - SETUP_TOKEN_TTL_SECS)
            .fetch_one(&self.pool)
            .await?)
    }

    /// Creates the first admin and spends the setup token, in one
    /// transaction: of two requests racing with the same link, one wins
    /// and the other gets `Ok(None)`, as does a stale or wrong token.
    pub async fn create_first_admin(
        &self,
        token_hash: &str,
        username: &str,
        password_hash: &str,
    ) -> Result<Option<User>> {
        let mut write = self.write().await?;
        let valid: bool = sqlx::query_scalar(VALID_TOKEN)
            .bind(token_hash)
            .bind(now() - SETUP_TOKEN_TTL_SECS)
            .fetch_one(&mut *write.tx)
            .await?;
        if !valid {
            return Ok(None);
        }
        let user: User = sqlx::query_as(
            "INSERT INTO users (username, password_hash, is_admin, is_active, created_at)
             VALUES (?, ?, 1, 1, ?) RETURNING *",
        )
        .bind(username)
        .bind(password_hash)
        .bind(now())
        .fetch_one(&mut *write.tx)
        .await?;
        sqlx::query("DELETE FROM setup_token")
            .execute(&mut *write.tx)
            .await?;
        write.commit().await?;
        Ok(Some(user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_setup_token_works_once_until_replaced_or_expired() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        store.replace_setup_token("one").await.unwrap();
        assert!(store.setup_token_valid("one").await.unwrap());
        store.replace_setup_token("two").await.unwrap();
        assert!(!store.setup_token_valid("one").await.unwrap(), "replaced");
        // A day old: expired.
        sqlx::query("UPDATE setup_token SET created_at = created_at - ?")
            .bind(SETUP_TOKEN_TTL_SECS + 1)
            .execute(&store.pool)
            .await
            .unwrap();
        assert!(!store.setup_token_valid("two").await.unwrap(), "expired");
        assert!(
            store
                .create_first_admin("two", "a", "h")
                .await
                .unwrap()
                .is_none()
        );
        store.replace_setup_token("three").await.unwrap();
        let admin = store.create_first_admin("three", "a", "h").await.unwrap();
        assert!(admin.unwrap().is_admin);
        assert!(!store.setup_token_valid("three").await.unwrap(), "spent");
        let err = store.replace_setup_token("four").await.unwrap_err();
        assert!(err.to_string().contains("setup is done"), "{err}");
    }
}
