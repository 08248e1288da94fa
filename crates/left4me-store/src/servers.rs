use std::ops::RangeInclusive;

use sqlx::FromRow;

use crate::{Result, ServerRole, Store, StoreError, is_unique_violation, now};

#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type, serde::Serialize)]
#[sqlx(type_name = "TEXT", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum DesiredState {
    Running,
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Server {
    pub id: i64,
    pub owner_id: i64,
    pub blueprint_id: i64,
    pub name: String,
    pub hostname: String,
    pub port: i64,
    pub rcon_password: crate::Secret,
    pub desired_state: DesiredState,
    pub created_at: i64,
}

/// A server with the names the server list shows beside it.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct ListedServer {
    #[sqlx(flatten)]
    pub server: Server,
    pub owner_name: String,
    pub blueprint_name: String,
    /// The viewing user's role when they are a member.
    pub member_role: Option<ServerRole>,
}

/// What creating a server needs. `port: None` takes the lowest free port
/// of `port_range`.
#[derive(Debug, Clone)]
pub struct NewServer<'a> {
    pub owner_id: i64,
    pub blueprint_id: i64,
    pub name: &'a str,
    pub hostname: &'a str,
    pub port: Option<u16>,
    pub port_range: RangeInclusive<u16>,
    pub rcon_password: &'a str,
    /// Ports another program on the host holds right now: never handed
    /// out, and refused when asked for.
    pub held_elsewhere: &'a [u16],
}

impl Store {
    pub async fn create_server(&self, new: &NewServer<'_>) -> Result<Server> {
        let mut write = self.write().await?;
        let server = write.create_server(new).await?;
        write.commit().await?;
        Ok(server)
    }

    pub async fn server(&self, id: i64) -> Result<Server> {
        sqlx::query_as("SELECT * FROM servers WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)
    }

    pub async fn servers(&self, owner: Option<i64>) -> Result<Vec<Server>> {
        Ok(sqlx::query_as(
            "SELECT * FROM servers WHERE ?1 IS NULL OR owner_id = ?1 ORDER BY name COLLATE NOCASE, id",
        )
        .bind(owner)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every server with its owner's and blueprint's names, by name (no
    /// viewer: `member_role` is `None`).
    pub async fn listed_servers(&self) -> Result<Vec<ListedServer>> {
        Ok(sqlx::query_as(
            "SELECT s.*, u.username AS owner_name, b.name AS blueprint_name, NULL AS member_role
             FROM servers s
             JOIN users u ON u.id = s.owner_id
             JOIN blueprints b ON b.id = s.blueprint_id
             ORDER BY s.name COLLATE NOCASE, s.id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn set_desired_state(&self, id: i64, state: DesiredState) -> Result<()> {
        sqlx::query("UPDATE servers SET desired_state = ? WHERE id = ?")
            .bind(state)
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.changed();
        Ok(())
    }

    pub async fn delete_server(&self, id: i64) -> Result<()> {
        sqlx::query("DELETE FROM servers WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.changed();
        Ok(())
    }
}

/// A server's settings, changed together.
#[derive(Debug, Clone)]
pub struct ServerChange<'a> {
    pub name: &'a str,
    pub hostname: &'a str,
    pub blueprint_id: i64,
}

impl crate::Write {
    /// The blueprint the server is on, as this transaction sees it.
    pub async fn server_blueprint(&mut self, id: i64) -> Result<i64> {
        sqlx::query_scalar("SELECT blueprint_id FROM servers WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Creates a server on the port asked for or the lowest free one; in
    /// the write transaction, so two creations cannot take one port.
    pub async fn create_server(&mut self, new: &NewServer<'_>) -> Result<Server> {
        let tx: &mut sqlx::SqliteConnection = &mut self.tx;
        let used: Vec<i64> = sqlx::query_scalar("SELECT port FROM servers")
            .fetch_all(&mut *tx)
            .await?;
        let port = match new.port {
            Some(port) if used.contains(&i64::from(port)) => {
                return Err(StoreError::Conflict(format!("port {port} is already used by another server")));
            }
            Some(port) if new.held_elsewhere.contains(&port) => {
                return Err(StoreError::Conflict(format!(
                    "port {port} is in use by another program on this host; choose another"
                )));
            }
            Some(port) => port,
            None => new
                .port_range
                .clone()
                .find(|p| !used.contains(&i64::from(*p)) && !new.held_elsewhere.contains(p))
                .ok_or_else(|| {
                    StoreError::Conflict(format!(
                        "every port from {} to {} is in use (by servers here or other programs); delete a server or widen the port range",
                        new.port_range.start(),
                        new.port_range.end()
                    ))
                })?,
        };
        let server = sqlx::query_as(
            "INSERT INTO servers (owner_id, blueprint_id, name, hostname, port, rcon_password, desired_state, created_at)
             VALUES (?, ?, ?, ?, ?, ?, 'stopped', ?) RETURNING *",
        )
        .bind(new.owner_id)
        .bind(new.blueprint_id)
        .bind(new.name)
        .bind(new.hostname)
        .bind(i64::from(port))
        .bind(new.rcon_password)
        .bind(now())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!("a server named {:?} already exists", new.name))
            } else {
                e.into()
            }
        })?;
        Ok(server)
    }

    pub async fn change_server(&mut self, id: i64, change: &ServerChange<'_>) -> Result<()> {
        let done =
            sqlx::query("UPDATE servers SET name = ?, hostname = ?, blueprint_id = ? WHERE id = ?")
                .bind(change.name)
                .bind(change.hostname)
                .bind(change.blueprint_id)
                .bind(id)
                .execute(&mut *self.tx)
                .await
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        StoreError::Conflict(format!(
                            "a server named {:?} already exists",
                            change.name
                        ))
                    } else {
                        e.into()
                    }
                })?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
