use sqlx::FromRow;

use crate::{Result, Store, StoreError, now};

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Blueprint {
    pub id: i64,
    pub owner_id: i64,
    pub name: String,
    pub config: String,
    /// Launch arguments, separated by whitespace.
    pub arguments: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An overlay in a blueprint's ordered list.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct BlueprintOverlay {
    pub overlay_id: i64,
    pub name: String,
    pub position: i64,
    pub expose_server_cfg: bool,
}

impl Store {
    pub async fn create_blueprint(&self, owner_id: i64, name: &str) -> Result<Blueprint> {
        let now = now();
        Ok(sqlx::query_as(
            "INSERT INTO blueprints (owner_id, name, config, arguments, created_at, updated_at)
             VALUES (?, ?, '', '+map c1m1_hotel', ?, ?) RETURNING *",
        )
        .bind(owner_id)
        .bind(name)
        .bind(now)
        .bind(now)
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn blueprint(&self, id: i64) -> Result<Blueprint> {
        sqlx::query_as("SELECT * FROM blueprints WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)
    }

    pub async fn blueprints(&self, owner: Option<i64>) -> Result<Vec<Blueprint>> {
        Ok(sqlx::query_as(
            "SELECT * FROM blueprints WHERE ?1 IS NULL OR owner_id = ?1 ORDER BY name COLLATE NOCASE, id",
        )
        .bind(owner)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn update_blueprint(
        &self,
        id: i64,
        name: &str,
        config: &str,
        arguments: &str,
    ) -> Result<()> {
        sqlx::query("UPDATE blueprints SET name = ?, config = ?, arguments = ?, updated_at = ? WHERE id = ?")
            .bind(name)
            .bind(config)
            .bind(arguments)
            .bind(now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The overlays in list order (the first wins over later ones).
    pub async fn blueprint_overlays(&self, id: i64) -> Result<Vec<BlueprintOverlay>> {
        Ok(sqlx::query_as(
            "SELECT bo.overlay_id, o.name, bo.position, bo.expose_server_cfg
             FROM blueprint_overlays bo JOIN overlays o ON o.id = bo.overlay_id
             WHERE bo.blueprint_id = ? ORDER BY bo.position",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Replaces the overlay list: `(overlay id, expose its server.cfg)` in order.
    pub async fn set_blueprint_overlays(&self, id: i64, overlays: &[(i64, bool)]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM blueprint_overlays WHERE blueprint_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for (position, (overlay_id, expose)) in overlays.iter().enumerate() {
            sqlx::query(
                "INSERT INTO blueprint_overlays (blueprint_id, overlay_id, position, expose_server_cfg)
                 VALUES (?, ?, ?, ?)",
            )
            .bind(id)
            .bind(overlay_id)
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .bind(expose)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE blueprints SET updated_at = ? WHERE id = ?")
            .bind(now())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn servers_using_blueprint(&self, id: i64) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT name FROM servers WHERE blueprint_id = ? ORDER BY name")
                .bind(id)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Deletes the blueprint unless a server uses it.
    pub async fn delete_blueprint(&self, id: i64) -> Result<()> {
        let users = self.servers_using_blueprint(id).await?;
        if !users.is_empty() {
            return Err(StoreError::Conflict(format!(
                "the blueprint is used by server{} {}; move or delete {} first",
                if users.len() == 1 { "" } else { "s" },
                users.join(", "),
                if users.len() == 1 { "it" } else { "them" },
            )));
        }
        sqlx::query("DELETE FROM blueprints WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
