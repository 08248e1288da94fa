use sqlx::FromRow;

use crate::{Result, Store, StoreError, Viewer, names_list, now};

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
    /// Visible to everyone on the panel, not only the owner and admins.
    pub shared: bool,
}

/// A blueprint with its owner's name, for lists and pickers.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct ListedBlueprint {
    #[sqlx(flatten)]
    pub blueprint: Blueprint,
    pub owner_name: String,
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
        let mut write = self.write().await?;
        let blueprint = write.create_blueprint(owner_id, name).await?;
        write.commit().await?;
        Ok(blueprint)
    }

    pub async fn blueprint(&self, id: i64) -> Result<Blueprint> {
        blueprint_on(&self.pool, id).await
    }

    /// The blueprints `viewer` may see (and so build on), with owners.
    pub async fn visible_blueprints(&self, viewer: Viewer) -> Result<Vec<ListedBlueprint>> {
        Ok(sqlx::query_as(
            "SELECT b.*, u.username AS owner_name FROM blueprints b JOIN users u ON u.id = b.owner_id
             WHERE ?1 OR b.owner_id = ?2 OR b.shared
             ORDER BY b.name COLLATE NOCASE, b.id",
        )
        .bind(viewer.is_admin)
        .bind(viewer.user_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// A private copy of the blueprint for `owner_id`, overlays included.
    pub async fn copy_blueprint(&self, id: i64, owner_id: i64, name: &str) -> Result<Blueprint> {
        let mut write = self.write().await?;
        let copy = write.copy_blueprint(id, owner_id, name).await?;
        write.commit().await?;
        Ok(copy)
    }

    /// The overlays in list order (the first wins over later ones).
    pub async fn blueprint_overlays(&self, id: i64) -> Result<Vec<BlueprintOverlay>> {
        blueprint_overlays_on(&self.pool, id).await
    }

    /// Replaces the overlay list: `(overlay id, expose its server.cfg)` in order.
    /// A shared blueprint takes shared overlays only.
    pub async fn set_blueprint_overlays(&self, id: i64, overlays: &[(i64, bool)]) -> Result<()> {
        let mut write = self.write().await?;
        write.set_blueprint_overlays(id, overlays).await?;
        write.commit().await
    }

    /// Deletes the blueprint unless a server uses it.
    pub async fn delete_blueprint(&self, id: i64) -> Result<()> {
        let mut write = self.write().await?;
        write.delete_blueprint(id).await?;
        write.commit().await
    }
}

async fn blueprint_on<'e>(db: impl sqlx::SqliteExecutor<'e>, id: i64) -> Result<Blueprint> {
    sqlx::query_as("SELECT * FROM blueprints WHERE id = ?")
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or(StoreError::NotFound)
}

async fn blueprint_overlays_on<'e>(
    db: impl sqlx::SqliteExecutor<'e>,
    id: i64,
) -> Result<Vec<BlueprintOverlay>> {
    Ok(sqlx::query_as(
        "SELECT bo.overlay_id, o.name, bo.position, bo.expose_server_cfg
         FROM blueprint_overlays bo JOIN overlays o ON o.id = bo.overlay_id
         WHERE bo.blueprint_id = ? ORDER BY bo.position",
    )
    .bind(id)
    .fetch_all(db)
    .await?)
}

impl crate::Write {
    /// The blueprint as this transaction sees it (whether it is still
    /// shared, or there at all).
    pub async fn blueprint(&mut self, id: i64) -> Result<Blueprint> {
        blueprint_on(&mut *self.tx, id).await
    }

    /// The blueprint's overlays as this transaction sees them.
    pub async fn blueprint_overlays(&mut self, id: i64) -> Result<Vec<BlueprintOverlay>> {
        blueprint_overlays_on(&mut *self.tx, id).await
    }

    pub async fn create_blueprint(&mut self, owner_id: i64, name: &str) -> Result<Blueprint> {
        let now = now();
        Ok(sqlx::query_as(
            "INSERT INTO blueprints (owner_id, name, config, arguments, created_at, updated_at)
             VALUES (?, ?, '', '+map c1m1_hotel', ?, ?) RETURNING *",
        )
        .bind(owner_id)
        .bind(name)
        .bind(now)
        .bind(now)
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// A private copy of the blueprint for `owner_id`, overlays included.
    pub async fn copy_blueprint(
        &mut self,
        id: i64,
        owner_id: i64,
        name: &str,
    ) -> Result<Blueprint> {
        let tx: &mut sqlx::SqliteConnection = &mut self.tx;
        let now = now();
        let copy: Blueprint = sqlx::query_as(
            "INSERT INTO blueprints (owner_id, name, config, arguments, created_at, updated_at, shared)
             SELECT ?, ?, config, arguments, ?, ?, 0 FROM blueprints WHERE id = ? RETURNING *",
        )
        .bind(owner_id)
        .bind(name)
        .bind(now)
        .bind(now)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        sqlx::query(
            "INSERT INTO blueprint_overlays (blueprint_id, overlay_id, position, expose_server_cfg)
             SELECT ?, overlay_id, position, expose_server_cfg FROM blueprint_overlays WHERE blueprint_id = ?",
        )
        .bind(copy.id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        Ok(copy)
    }

    pub async fn update_blueprint(
        &mut self,
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
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Replaces the overlay list: `(overlay id, expose its server.cfg)` in order.
    /// A shared blueprint takes shared overlays only.
    pub async fn set_blueprint_overlays(
        &mut self,
        id: i64,
        overlays: &[(i64, bool)],
    ) -> Result<()> {
        let tx = &mut self.tx;
        sqlx::query("DELETE FROM blueprint_overlays WHERE blueprint_id = ?")
            .bind(id)
            .execute(&mut **tx)
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
            .execute(&mut **tx)
            .await?;
        }
        let shared: bool = sqlx::query_scalar("SELECT shared FROM blueprints WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let private = if shared {
            crate::sharing::private_overlays_of(tx, id).await?
        } else {
            Vec::new()
        };
        if !private.is_empty() {
            return Err(StoreError::Conflict(format!(
                "this blueprint is shared, so its overlays must be shared too: {} {} private",
                names_list("overlay", &private),
                if private.len() == 1 { "is" } else { "are" },
            )));
        }
        sqlx::query("UPDATE blueprints SET updated_at = ? WHERE id = ?")
            .bind(now())
            .bind(id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Deletes the blueprint unless a server uses it; in the transaction,
    /// so no server can take it up in between.
    pub async fn delete_blueprint(&mut self, id: i64) -> Result<()> {
        let users: Vec<String> =
            sqlx::query_scalar("SELECT name FROM servers WHERE blueprint_id = ? ORDER BY name")
                .bind(id)
                .fetch_all(&mut *self.tx)
                .await?;
        if !users.is_empty() {
            return Err(StoreError::Conflict(format!(
                "the blueprint is used by {}; move or delete {} first",
                names_list("server", &users),
                if users.len() == 1 { "it" } else { "them" },
            )));
        }
        sqlx::query("DELETE FROM blueprints WHERE id = ?")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}
