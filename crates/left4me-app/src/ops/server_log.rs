//! A server's console log: the last lines and a live follower, from the
//! built-in supervisor's `console.log` or from the systemd journal.

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use left4me_host::journal::follow_journal;
use left4me_host::log_follow::{Position, follow, last_lines};
use left4me_host::supervisor::LogSource;
use left4me_store::Server;
use tokio::sync::mpsc;

use crate::App;
use crate::actor::Actor;
use crate::error::OpResult;
use crate::ops::access::{self, ServerAction};
use crate::spec_builder::instance_name;

/// What the Log tab opens with.
#[derive(Debug, Clone)]
pub struct LogView {
    pub server: Server,
    /// The actor may also use the console.
    pub operate: bool,
    /// The last lines, when they come from a file (the journal's arrive
    /// through [`follow_log`]).
    pub lines: Vec<String>,
    /// Where the lines come from, when that is worth saying.
    pub note: String,
}

pub async fn view(app: &App, actor: &Actor, id: i64, backlog: usize) -> OpResult<LogView> {
    let grant = access::server(app, actor, id, ServerAction::Log).await?;
    let (lines, note) = match app.host().log_source(&instance_name(id)) {
        LogSource::File(path) => {
            let lines = last_lines(&path, backlog).await;
            (lines.into_iter().map(|l| l.text).collect(), String::new())
        }
        LogSource::Journal { unit } => (Vec::new(), format!("Live from the journal of {unit}.")),
    };
    Ok(LogView {
        operate: grant.access.allows(ServerAction::Console),
        server: grant.server,
        lines,
        note,
    })
}

/// A line of the log and where a follower resumes after it
/// (`INODE:OFFSET` in `console.log`, or the journal cursor).
#[derive(Debug, Clone)]
pub struct FollowedLine {
    pub resume: String,
    pub text: String,
}

fn receiver_stream<T: Send + 'static>(mut rx: mpsc::Receiver<T>) -> BoxStream<'static, T> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

/// The log from `resume` on (or its last `backlog` lines), across
/// restarts and rotations; while the server is down the stream waits.
/// It ends when the panel shuts down.
pub async fn follow_log(
    app: &App,
    actor: &Actor,
    id: i64,
    resume: Option<&str>,
    backlog: usize,
) -> OpResult<BoxStream<'static, FollowedLine>> {
    access::server(app, actor, id, ServerAction::Log).await?;
    let lines = match app.host().log_source(&instance_name(id)) {
        LogSource::File(path) => {
            let rx = follow(path, resume.and_then(Position::parse), backlog);
            receiver_stream(rx)
                .map(|l| FollowedLine {
                    resume: l.end.to_string(),
                    text: l.text,
                })
                .boxed()
        }
        LogSource::Journal { unit } => {
            let rx = follow_journal(std::path::Path::new("journalctl"), &unit, resume, backlog);
            receiver_stream(rx)
                .map(|l| FollowedLine {
                    resume: l.cursor,
                    text: l.text,
                })
                .boxed()
        }
    };
    Ok(lines
        .take_until(app.shutdown().clone().cancelled_owned())
        .boxed())
}
