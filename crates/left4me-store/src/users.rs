use sqlx::FromRow;

use crate::{Result, Store, StoreError, is_unique_violation, now};

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub password_hash: crate::Secret,
    pub is_admin: bool,
    pub is_active: bool,
    pub created_at: i64,
    /// When an admin last turned the user's second factor off; said to
    /// them until they set one up again.
    pub second_factor_reset_at: Option<i64>,
    /// A passkey alone signs the user in (they chose so).
    pub passkey_sign_in: bool,
}

impl Store {
    pub async fn count_users(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?)
    }

    pub async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        is_admin: bool,
    ) -> Result<User> {
        let mut write = self.write().await?;
        let user = write.create_user(username, password_hash, is_admin).await?;
        write.commit().await?;
        Ok(user)
    }

    pub async fn user(&self, id: i64) -> Result<User> {
        sqlx::query_as("SELECT * FROM users WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)
    }

    pub async fn user_by_name(&self, username: &str) -> Result<Option<User>> {
        Ok(sqlx::query_as("SELECT * FROM users WHERE username = ?")
            .bind(username)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn users(&self) -> Result<Vec<User>> {
        Ok(sqlx::query_as("SELECT * FROM users ORDER BY username")
            .fetch_all(&self.pool)
            .await?)
    }

    /// The active admin created first (the one `setup` made, usually).
    pub async fn first_admin(&self) -> Result<Option<User>> {
        Ok(sqlx::query_as(
            "SELECT * FROM users WHERE is_admin = 1 AND is_active = 1 ORDER BY id LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?)
    }
}

impl crate::Write {
    pub async fn delete_user(&mut self, id: i64) -> Result<()> {
        sqlx::query("DELETE FROM users WHERE id = ?")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// What the user owns, by kind (e.g. `["2 servers"]`); empty when nothing.
    pub async fn user_possessions(&mut self, id: i64) -> Result<Vec<String>> {
        let (servers, blueprints, overlays): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM servers WHERE owner_id = ?1),
                    (SELECT COUNT(*) FROM blueprints WHERE owner_id = ?1),
                    (SELECT COUNT(*) FROM overlays WHERE owner_id = ?1)",
        )
        .bind(id)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok([
            (servers, "server"),
            (blueprints, "blueprint"),
            (overlays, "overlay"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}{}", if n == 1 { "" } else { "s" }))
        .collect())
    }

    pub async fn count_active_admins(&mut self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE is_admin = 1 AND is_active = 1")
                .fetch_one(&mut *self.tx)
                .await?,
        )
    }

    pub async fn set_password_hash(&mut self, id: i64, password_hash: &str) -> Result<()> {
        sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
            .bind(password_hash)
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Notes (or, with `None`, forgets) an admin's reset of the user's
    /// second factor.
    pub async fn set_second_factor_reset(&mut self, id: i64, at: Option<i64>) -> Result<()> {
        sqlx::query("UPDATE users SET second_factor_reset_at = ? WHERE id = ?")
            .bind(at)
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub async fn set_user_active(&mut self, id: i64, active: bool) -> Result<()> {
        sqlx::query("UPDATE users SET is_active = ? WHERE id = ?")
            .bind(active)
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        if !active {
            sqlx::query("DELETE FROM sessions WHERE user_id = ?")
                .bind(id)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    pub async fn create_user(
        &mut self,
        username: &str,
        password_hash: &str,
        is_admin: bool,
    ) -> Result<User> {
        sqlx::query_as(
            "INSERT INTO users (username, password_hash, is_admin, is_active, created_at)
             VALUES (?, ?, ?, 1, ?) RETURNING *",
        )
        .bind(username)
        .bind(password_hash)
        .bind(is_admin)
        .bind(now())
        .fetch_one(&mut *self.tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!("the username {username:?} is taken"))
            } else {
                e.into()
            }
        })
    }
}
