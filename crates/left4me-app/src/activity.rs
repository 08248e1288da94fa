//! The activity log: who did what, written in the transaction of the
//! change it describes.

use crate::actor::Actor;
use crate::error::OpResult;

/// `actor`'s line in the activity log, in the operation's transaction.
pub(crate) async fn record(
    write: &mut left4me_store::Write,
    actor: &Actor,
    server_id: Option<i64>,
    kind: &str,
    detail: &str,
) -> OpResult<()> {
    write
        .record_activity(
            Some(actor.id()),
            &actor.user.username,
            server_id,
            kind,
            detail,
        )
        .await?;
    Ok(())
}
