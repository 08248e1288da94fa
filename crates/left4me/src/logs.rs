//! `left4me instance logs`: the console log, from a file or the journal.

use std::io::Write;

use anyhow::Context;
use left4me_host::supervisor::LogSource;
use left4me_web::log_follow::{follow as follow_log, last_lines};

use crate::CliResult;

pub(crate) fn show(source: &LogSource, lines: usize, follow: bool) -> CliResult {
    match source {
        LogSource::Journal { unit } => {
            let mut cmd = std::process::Command::new("journalctl");
            cmd.args([
                "--unit",
                unit,
                "--output",
                "cat",
                "--lines",
                &lines.to_string(),
            ]);
            if follow {
                cmd.arg("--follow");
            }
            let status = cmd.status().context("running journalctl")?;
            if status.success() {
                Ok(())
            } else {
                Err(anyhow::anyhow!("journalctl failed ({status})").into())
            }
        }
        LogSource::File(path) => {
            // The panel's follower: rotations and truncation handled once.
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let tail = last_lines(path, lines).await;
                let mut out = std::io::stdout().lock();
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
                Ok::<_, crate::Failure>(())
            })
        }
    }
}
