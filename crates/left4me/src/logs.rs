//! `left4me instance logs`: the console log, from a file or the journal.

use std::io::Write;
use std::path::Path;

use left4me_host::journal::{follow_journal, tail as journal_tail};
use left4me_host::log_follow::{follow as follow_log, last_lines};
use left4me_host::supervisor::LogSource;

use crate::CliResult;

pub(crate) fn show(source: &LogSource, lines: usize, follow: bool) -> CliResult {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // The panel's followers: rotations, truncation and journal cursors
    // handled once, in the host crate.
    runtime.block_on(async {
        let mut out = std::io::stdout().lock();
        match source {
            LogSource::Journal { unit } => {
                let journalctl = Path::new("journalctl");
                let tail = journal_tail(journalctl, unit, lines)?;
                for line in &tail {
                    writeln!(out, "{}", line.text)?;
                }
                out.flush()?;
                drop(out);
                if follow {
                    let cursor = tail.last().map(|l| l.cursor.as_str());
                    let mut rx = follow_journal(journalctl, unit, cursor, 0);
                    while let Some(line) = rx.recv().await {
                        println!("{}", line.text);
                    }
                }
            }
            LogSource::File(path) => {
                let tail = last_lines(path, lines).await;
                for line in &tail {
                    writeln!(out, "{}", line.text)?;
                }
                out.flush()?;
                drop(out);
                if follow {
                    let mut rx = follow_log(path.clone(), tail.last().map(|l| l.end), 0);
                    while let Some(line) = rx.recv().await {
                        println!("{}", line.text);
                    }
                }
            }
        }
        Ok::<_, crate::Failure>(())
    })
}
