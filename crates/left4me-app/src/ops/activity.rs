//! The activity log: who did what, written in the transaction of the
//! change it describes, and read by admins (all of it) and by a server's
//! operators (that server's).

use left4me_store::{Activity, ActivityFilter, Server};

use crate::App;
use crate::actor::{Actor, Scope};
use crate::error::OpResult;
use crate::ops::access::{self, ServerAction};

/// One page of the log, newest first.
#[derive(Debug, Clone)]
pub struct ActivityPage {
    pub entries: Vec<Activity>,
    /// Older entries exist (ask again with `before` the last id).
    pub more: bool,
    /// The kinds of entry there are, for a filter.
    pub kinds: Vec<String>,
}

/// A page of at most `limit` entries of the whole log (admins) or of one
/// server's (operators, the owner and admins), filtered by `filter`
/// (whose `server_id` is set from `server`).
pub async fn list(
    app: &App,
    actor: &Actor,
    server: Option<i64>,
    mut filter: ActivityFilter,
    limit: usize,
) -> OpResult<(Option<Server>, ActivityPage)> {
    actor.require(Scope::Read)?;
    let server = match server {
        Some(id) => Some(
            access::server(app, actor, id, ServerAction::Activity)
                .await?
                .server,
        ),
        None => {
            actor.require_admin()?;
            None
        }
    };
    filter.server_id = server.as_ref().map(|s| s.id);
    let asked = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
    let mut entries = app.store().activity(&filter, asked).await?;
    let more = entries.len() > limit;
    entries.truncate(limit);
    let kinds = app.store().activity_kinds(filter.server_id).await?;
    Ok((
        server,
        ActivityPage {
            entries,
            more,
            kinds,
        },
    ))
}

/// `actor`'s line in the activity log, in the operation's transaction.
pub(crate) async fn record(
    write: &mut left4me_store::Write,
    actor: &Actor,
    server_id: Option<i64>,
    kind: &str,
    detail: &str,
) -> OpResult<()> {
    write
        .record_activity(Some(actor.id()), actor.name(), server_id, kind, detail)
        .await?;
    Ok(())
}
