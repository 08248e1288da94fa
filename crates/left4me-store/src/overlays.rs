use sqlx::FromRow;

use crate::{Result, Store, StoreError, Viewer, names_list, now};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, sqlx::Type, serde::Serialize)]
#[sqlx(type_name = "TEXT", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum OverlayKind {
    Files,
    Workshop,
    Script,
}

impl OverlayKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Files => "files",
            Self::Workshop => "workshop",
            Self::Script => "script",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Overlay {
    pub id: i64,
    pub owner_id: i64,
    pub name: String,
    pub kind: OverlayKind,
    pub build_status: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Visible to everyone on the panel, not only the owner and admins.
    pub shared: bool,
}

/// An overlay with its owner's name, for lists and pickers.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct ListedOverlay {
    #[sqlx(flatten)]
    pub overlay: Overlay,
    pub owner_name: String,
}

impl Store {
    pub async fn create_overlay(
        &self,
        owner_id: i64,
        name: &str,
        kind: OverlayKind,
    ) -> Result<Overlay> {
        let mut write = self.write().await?;
        let overlay = write.create_overlay(owner_id, name, kind).await?;
        write.commit().await?;
        Ok(overlay)
    }

    pub async fn overlay(&self, id: i64) -> Result<Overlay> {
        overlay_on(&self.pool, id).await
    }

    /// The overlays `viewer` may see (and so use), with their owners.
    pub async fn visible_overlays(&self, viewer: Viewer) -> Result<Vec<ListedOverlay>> {
        Ok(sqlx::query_as(
            "SELECT o.*, u.username AS owner_name FROM overlays o JOIN users u ON u.id = o.owner_id
             WHERE ?1 OR o.owner_id = ?2 OR o.shared
             ORDER BY o.name COLLATE NOCASE, o.id",
        )
        .bind(viewer.is_admin)
        .bind(viewer.user_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn rename_overlay(&self, id: i64, name: &str) -> Result<()> {
        sqlx::query("UPDATE overlays SET name = ?, updated_at = ? WHERE id = ?")
            .bind(name)
            .bind(now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.changed();
        Ok(())
    }

    /// Names of the blueprints that use the overlay: all of them, or
    /// those `viewer` may see (others' private ones stay unnamed).
    pub async fn blueprints_using_overlay(
        &self,
        id: i64,
        viewer: Option<Viewer>,
    ) -> Result<Vec<String>> {
        let mut conn = self.pool.acquire().await?;
        blueprints_using(&mut conn, id, viewer).await
    }

    /// Every overlay of one kind, oldest first.
    pub async fn overlays_of_kind(&self, kind: OverlayKind) -> Result<Vec<Overlay>> {
        Ok(
            sqlx::query_as("SELECT * FROM overlays WHERE kind = ? ORDER BY id")
                .bind(kind)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Records how the overlay's last build went (`building`, `ready`,
    /// `failed`); a finished build also marks the overlay changed.
    pub async fn set_overlay_build_status(&self, id: i64, status: &str) -> Result<()> {
        sqlx::query(
            "UPDATE overlays SET build_status = ?,
             updated_at = CASE WHEN ? = 'building' THEN updated_at ELSE ? END WHERE id = ?",
        )
        .bind(status)
        .bind(status)
        .bind(now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.changed();
        Ok(())
    }

    /// Deletes the overlay unless a blueprint uses it.
    pub async fn delete_overlay(&self, id: i64) -> Result<()> {
        let mut write = self.write().await?;
        write.delete_overlay(id).await?;
        write.commit().await
    }
}

async fn overlay_on<'e>(db: impl sqlx::SqliteExecutor<'e>, id: i64) -> Result<Overlay> {
    sqlx::query_as("SELECT * FROM overlays WHERE id = ?")
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or(StoreError::NotFound)
}

impl crate::Write {
    /// The overlay as this transaction sees it (checks that must hold
    /// when the write commits read here).
    pub async fn overlay(&mut self, id: i64) -> Result<Overlay> {
        overlay_on(&mut *self.tx, id).await
    }

    pub async fn create_overlay(
        &mut self,
        owner_id: i64,
        name: &str,
        kind: OverlayKind,
    ) -> Result<Overlay> {
        insert_overlay(&mut self.tx, owner_id, name, kind, false).await
    }

    /// Marks the overlay changed now (its files were).
    pub async fn touch_overlay(&mut self, id: i64) -> Result<()> {
        touch_overlay_on(&mut self.tx, id, now()).await
    }

    /// Deletes the overlay unless a blueprint uses it; checked in the
    /// transaction, so no blueprint can take it up in between.
    pub async fn delete_overlay(&mut self, id: i64) -> Result<()> {
        let users = blueprints_using(&mut self.tx, id, None).await?;
        if !users.is_empty() {
            return Err(StoreError::Conflict(format!(
                "the overlay is used by {}; remove it there first",
                names_list("blueprint", &users)
            )));
        }
        sqlx::query("DELETE FROM overlays WHERE id = ?")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}

/// Names of the blueprints that use overlay `id` (those `viewer` may see,
/// or all), on a connection that may be inside a transaction.
async fn blueprints_using(
    conn: &mut sqlx::SqliteConnection,
    id: i64,
    viewer: Option<Viewer>,
) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT b.name FROM blueprints b JOIN blueprint_overlays bo ON bo.blueprint_id = b.id
         WHERE bo.overlay_id = ?1 AND (?2 IS NULL OR ?2 OR b.owner_id = ?3 OR b.shared)
         ORDER BY b.name",
    )
    .bind(id)
    .bind(viewer.map(|v| v.is_admin))
    .bind(viewer.map(|v| v.user_id))
    .fetch_all(conn)
    .await?)
}

/// Inserts an overlay, on a connection that may be inside a transaction.
pub(crate) async fn insert_overlay(
    conn: &mut sqlx::SqliteConnection,
    owner_id: i64,
    name: &str,
    kind: OverlayKind,
    shared: bool,
) -> Result<Overlay> {
    let now = now();
    Ok(sqlx::query_as(
        "INSERT INTO overlays (owner_id, name, kind, build_status, created_at, updated_at, shared)
         VALUES (?, ?, ?, 'ready', ?, ?, ?) RETURNING *",
    )
    .bind(owner_id)
    .bind(name)
    .bind(kind)
    .bind(now)
    .bind(now)
    .bind(shared)
    .fetch_one(conn)
    .await?)
}

/// Marks an overlay changed at `at`, on a connection that may be inside a
/// transaction.
pub(crate) async fn touch_overlay_on(
    conn: &mut sqlx::SqliteConnection,
    id: i64,
    at: i64,
) -> Result<()> {
    sqlx::query("UPDATE overlays SET updated_at = ? WHERE id = ?")
        .bind(at)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
