//! Server members: users the owner lets operate or watch a server.

use sqlx::FromRow;

use crate::{Result, Store, StoreError, now};

/// What a member may do besides looking (the rules live in the panel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type, serde::Serialize, serde::Deserialize)]
#[sqlx(type_name = "TEXT", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum ServerRole {
    Operator,
    Viewer,
}

impl ServerRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Viewer => "viewer",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct ServerMember {
    pub user_id: i64,
    pub username: String,
    pub role: ServerRole,
    pub added_at: i64,
}

impl Store {
    /// Adds the user to the server, or changes their role. The owner is
    /// no member of their own server.
    pub async fn set_server_member(
        &self,
        server_id: i64,
        user_id: i64,
        role: ServerRole,
    ) -> Result<()> {
        let mut write = self.write().await?;
        write.set_server_member(server_id, user_id, role).await?;
        write.commit().await
    }

    /// Removes a member; removing someone who is not one changes nothing.
    pub async fn remove_server_member(&self, server_id: i64, user_id: i64) -> Result<()> {
        let mut write = self.write().await?;
        write.remove_server_member(server_id, user_id).await?;
        write.commit().await
    }

    /// Every membership: (server, user, role).
    pub async fn all_server_members(&self) -> Result<Vec<(i64, i64, ServerRole)>> {
        Ok(
            sqlx::query_as("SELECT server_id, user_id, role FROM server_members")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn server_members(&self, server_id: i64) -> Result<Vec<ServerMember>> {
        Ok(sqlx::query_as(
            "SELECT m.user_id, u.username, m.role, m.added_at
             FROM server_members m JOIN users u ON u.id = m.user_id
             WHERE m.server_id = ? ORDER BY u.username COLLATE NOCASE",
        )
        .bind(server_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The user's role on the server, if they are a member.
    pub async fn server_role(&self, server_id: i64, user_id: i64) -> Result<Option<ServerRole>> {
        Ok(sqlx::query_scalar(
            "SELECT role FROM server_members WHERE server_id = ? AND user_id = ?",
        )
        .bind(server_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?)
    }
}

impl crate::Write {
    /// Adds the user to the server, or changes their role. The owner is
    /// no member of their own server.
    pub async fn set_server_member(
        &mut self,
        server_id: i64,
        user_id: i64,
        role: ServerRole,
    ) -> Result<()> {
        let owner: i64 = sqlx::query_scalar("SELECT owner_id FROM servers WHERE id = ?")
            .bind(server_id)
            .fetch_optional(&mut *self.tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        if owner == user_id {
            return Err(StoreError::Conflict(
                "the owner already has every right on the server".into(),
            ));
        }
        sqlx::query(
            "INSERT INTO server_members (server_id, user_id, role, added_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (server_id, user_id) DO UPDATE SET role = excluded.role",
        )
        .bind(server_id)
        .bind(user_id)
        .bind(role)
        .bind(now())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Removes a member; removing someone who is not one changes nothing.
    pub async fn remove_server_member(&mut self, server_id: i64, user_id: i64) -> Result<()> {
        sqlx::query("DELETE FROM server_members WHERE server_id = ? AND user_id = ?")
            .bind(server_id)
            .bind(user_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}
