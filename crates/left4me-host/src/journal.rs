//! A systemd unit's journal: its last entries (`journalctl --output
//! json`) and a live follower (`--follow`), each entry's cursor being its
//! resume position. The panel's Log tab, `left4me instance logs` and failed
//! starts all read it through here.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalLine {
    pub text: String,
    /// The journal's cursor of this entry (`--after-cursor` resumes after it).
    pub cursor: String,
}

/// `MESSAGE` is a string, or an array of bytes when it is not valid UTF-8.
fn message(entry: &serde_json::Value) -> Option<String> {
    match &entry["MESSAGE"] {
        serde_json::Value::String(text) => Some(text.clone()),
        serde_json::Value::Array(bytes) => {
            let bytes: Vec<u8> = bytes
                .iter()
                .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect();
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
        _ => None,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot run {program}: {error}; is systemd's journalctl installed?")]
    Run {
        program: String,
        error: std::io::Error,
    },
    #[error("journalctl failed ({status}): {stderr}")]
    Failed { status: String, stderr: String },
}

/// One line of `journalctl --output json`; `None` for anything else.
fn parse_entry(line: &str) -> Option<JournalLine> {
    let entry = serde_json::from_str::<serde_json::Value>(line).ok()?;
    Some(JournalLine {
        text: message(&entry)?,
        cursor: entry["__CURSOR"].as_str()?.to_owned(),
    })
}

/// The command line for `unit`, resuming after `cursor` or starting with
/// the last `backlog` entries, following new ones when `follow`.
pub fn journalctl_args(
    unit: &str,
    cursor: Option<&str>,
    backlog: usize,
    follow: bool,
) -> Vec<String> {
    let mut args: Vec<String> = ["--unit", unit, "--output", "json", "--no-pager"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    if follow {
        args.push("--follow".to_owned());
    }
    match cursor {
        Some(cursor) => args.extend(["--after-cursor".to_owned(), cursor.to_owned()]),
        None => args.extend(["--lines".to_owned(), backlog.to_string()]),
    }
    args
}

/// The unit's last `count` entries, oldest first.
pub fn tail(program: &Path, unit: &str, count: usize) -> Result<Vec<JournalLine>, JournalError> {
    let mut command = std::process::Command::new(program);
    command
        .args(journalctl_args(unit, None, count, false))
        .stdin(Stdio::null());
    let output = crate::spawn::retry_while_text_busy(|| command.output()).map_err(|error| {
        JournalError::Run {
            program: program.display().to_string(),
            error,
        }
    })?;
    if !output.status.success() {
        return Err(JournalError::Failed {
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(parse_entry)
        .collect())
}

/// Streams the unit's journal into the returned channel; `journalctl` is
/// killed when the receiver is dropped.
pub fn follow_journal(
    program: &Path,
    unit: &str,
    cursor: Option<&str>,
    backlog: usize,
) -> mpsc::Receiver<JournalLine> {
    let (tx, rx) = mpsc::channel(1024);
    let program: PathBuf = program.to_owned();
    let args = journalctl_args(unit, cursor, backlog, true);
    tokio::spawn(async move {
        let mut command = tokio::process::Command::new(&program);
        command
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let child = crate::spawn::retry_while_text_busy(|| command.spawn());
        let mut child = match child {
            Ok(child) => child,
            Err(e) => {
                let _ = tx
                    .send(JournalLine {
                        text: format!("[left4me] cannot run {}: {e}", program.display()),
                        cursor: String::new(),
                    })
                    .await;
                return;
            }
        };
        let Some(stdout) = child.stdout.take() else {
            return;
        };
        let mut lines = BufReader::new(stdout).lines();
        loop {
            let line = tokio::select! {
                line = lines.next_line() => line,
                () = tx.closed() => return,
            };
            let Ok(Some(line)) = line else { return };
            let Some(entry) = parse_entry(&line) else {
                continue;
            };
            if tx.send(entry).await.is_err() {
                return;
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    /// A stand-in `journalctl` that prints what the real one prints for
    /// `--output json`, honours `--after-cursor`, then keeps following when
    /// asked to.
    fn fake_journalctl(dir: &Path) -> PathBuf {
        let script = dir.join("journalctl");
        std::fs::write(
            &script,
            format!(
                r#"#!/bin/sh
echo "$@" > '{args}'
case "$*" in
  *--after-cursor\ c1*) ;;
  *) echo '{{"__CURSOR":"c1","MESSAGE":"Server booting"}}' ;;
esac
echo '{{"__CURSOR":"c2","MESSAGE":[104,105,255]}}'
echo 'not json'
case "$*" in *--follow*) exec sleep 30 ;; esac
"#,
                args = dir.join("args").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        script
    }

    async fn next(rx: &mut mpsc::Receiver<JournalLine>) -> JournalLine {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap()
    }

    #[tokio::test]
    async fn streams_entries_and_resumes_after_a_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let program = fake_journalctl(dir.path());
        let mut rx = follow_journal(&program, "left4me-server@server-1.service", None, 200);
        assert_eq!(
            next(&mut rx).await,
            JournalLine {
                text: "Server booting".into(),
                cursor: "c1".into()
            }
        );
        assert_eq!(
            next(&mut rx).await.text,
            "hi\u{fffd}",
            "byte-array messages are decoded"
        );
        let args = std::fs::read_to_string(dir.path().join("args")).unwrap();
        assert_eq!(
            args.trim(),
            "--unit left4me-server@server-1.service --output json --no-pager --follow --lines 200"
        );
        drop(rx);

        let mut rx = follow_journal(&program, "left4me-server@server-1.service", Some("c1"), 200);
        assert_eq!(next(&mut rx).await.cursor, "c2", "resumes after the cursor");
    }

    #[test]
    fn the_tail_is_the_last_entries_without_following() {
        let dir = tempfile::tempdir().unwrap();
        let program = fake_journalctl(dir.path());
        let tail = tail(&program, "left4me-server@server-1.service", 20).unwrap();
        let texts: Vec<&str> = tail.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["Server booting", "hi\u{fffd}"]);
        let args = std::fs::read_to_string(dir.path().join("args")).unwrap();
        assert_eq!(
            args.trim(),
            "--unit left4me-server@server-1.service --output json --no-pager --lines 20"
        );
    }
}
