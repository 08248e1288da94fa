//! Sharing overlays and blueprints, and the rules that keep a share from
//! being taken back from under someone.

use crate::{Result, Store, StoreError, names_list, now};

/// Something a user can share with everyone on the panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedItem {
    Overlay,
    Blueprint,
}

impl SharedItem {
    pub fn noun(self) -> &'static str {
        match self {
            Self::Overlay => "overlay",
            Self::Blueprint => "blueprint",
        }
    }

    fn update_sql(self) -> &'static str {
        match self {
            Self::Overlay => "UPDATE overlays SET shared = ?, updated_at = ? WHERE id = ?",
            Self::Blueprint => "UPDATE blueprints SET shared = ?, updated_at = ? WHERE id = ?",
        }
    }
}

type Tx = sqlx::Transaction<'static, sqlx::Sqlite>;

impl Store {
    /// Shares the item with everyone, or takes the share back, unless
    /// that would break something (see [`blocker`]).
    pub async fn set_shared(&self, item: SharedItem, id: i64, shared: bool) -> Result<()> {
        let mut write = self.write().await?;
        write.set_shared(item, id, shared).await?;
        write.commit().await
    }
}

/// Why the share cannot change, if something stands in the way:
/// - a shared blueprint holds shared overlays only (whoever sees a
///   blueprint sees what it is made of);
/// - an overlay stays shared while a blueprint other than its owner's
///   private ones uses it;
/// - a blueprint stays shared while other people's servers use it.
async fn blocker(tx: &mut Tx, item: SharedItem, id: i64, shared: bool) -> Result<Option<String>> {
    let (users, noun, advice) = match (item, shared) {
        (SharedItem::Blueprint, true) => {
            let private = private_overlays_of(tx, id).await?;
            let (is, it) = if private.len() == 1 {
                ("is", "it")
            } else {
                ("are", "them")
            };
            return Ok((!private.is_empty()).then(|| {
                format!(
                    "{} {is} private; share {it} first, or remove {it} from this blueprint",
                    names_list("overlay", &private),
                )
            }));
        }
        (SharedItem::Overlay, true) => return Ok(None),
        (SharedItem::Overlay, false) => (
            names_using(
                tx,
                "SELECT b.name || ' (' || u.username || ')'
                 FROM blueprint_overlays bo
                 JOIN blueprints b ON b.id = bo.blueprint_id
                 JOIN users u ON u.id = b.owner_id
                 JOIN overlays o ON o.id = bo.overlay_id
                 WHERE bo.overlay_id = ? AND (b.owner_id != o.owner_id OR b.shared)
                 ORDER BY b.name COLLATE NOCASE",
                id,
            )
            .await?,
            "blueprint",
            "remove it there (or make a blueprint of yours private) first",
        ),
        (SharedItem::Blueprint, false) => (
            names_using(
                tx,
                "SELECT s.name || ' (' || u.username || ')'
                 FROM servers s JOIN users u ON u.id = s.owner_id JOIN blueprints b ON b.id = s.blueprint_id
                 WHERE s.blueprint_id = ? AND s.owner_id != b.owner_id
                 ORDER BY s.name COLLATE NOCASE",
                id,
            )
            .await?,
            "server",
            "they can copy it, then move their servers to the copy",
        ),
    };
    Ok((!users.is_empty()).then(|| {
        format!(
            "the {} stays shared while {} {} it; {advice}",
            item.noun(),
            names_list(noun, &users),
            if users.len() == 1 { "uses" } else { "use" },
        )
    }))
}

/// What uses the item `id`, as `name (owner)`, by the query `sql`.
async fn names_using(tx: &mut Tx, sql: &'static str, id: i64) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(sql)
        .bind(id)
        .fetch_all(&mut **tx)
        .await?)
}

/// Names of the private overlays in a blueprint.
pub(crate) async fn private_overlays_of(tx: &mut Tx, blueprint_id: i64) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT o.name FROM blueprint_overlays bo
         JOIN overlays o ON o.id = bo.overlay_id
         WHERE bo.blueprint_id = ? AND NOT o.shared
         ORDER BY bo.position",
    )
    .bind(blueprint_id)
    .fetch_all(&mut **tx)
    .await?)
}

impl crate::Write {
    /// Shares the item with everyone, or takes the share back, unless
    /// that would break something (see [`blocker`]).
    pub async fn set_shared(&mut self, item: SharedItem, id: i64, shared: bool) -> Result<()> {
        if let Some(problem) = blocker(&mut self.tx, item, id, shared).await? {
            return Err(StoreError::Conflict(problem));
        }
        let updated = sqlx::query(item.update_sql())
            .bind(shared)
            .bind(now())
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
