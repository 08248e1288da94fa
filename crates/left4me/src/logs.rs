//! `left4me instance logs`: the console log, from a file or the journal.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use left4me_host::supervisor::LogSource;
use left4me_host::supervisor::console_log::rotated_path;

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
            print_tail(path, lines)?;
            if follow {
                follow_file(path)?;
            }
            Ok(())
        }
    }
}

/// Prints the last `n` lines, reaching into the previous rotation when
/// the current file is short.
fn print_tail(path: &Path, n: usize) -> CliResult {
    let mut text = std::fs::read(rotated_path(path, 1)).unwrap_or_default();
    match std::fs::read(path) {
        Ok(current) => text.extend(current),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context(format!("reading {}", path.display()))
                .into());
        }
    }
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    let mut out = std::io::stdout().lock();
    for line in &all[all.len().saturating_sub(n)..] {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// Prints what is appended to `path`, following rotations (a new inode or
/// a shorter file means start from the top of the new one).
fn follow_file(path: &Path) -> CliResult {
    let open = |path: &Path| -> Option<(File, u64)> {
        let file = File::open(path).ok()?;
        let ino = file.metadata().ok()?.ino();
        Some((file, ino))
    };
    let mut current = open(path);
    let mut pos = current
        .as_ref()
        .and_then(|(f, _)| f.metadata().ok())
        .map_or(0, |m| m.len());
    let mut out = std::io::stdout().lock();
    let mut buf = Vec::new();
    loop {
        if let Some((file, ino)) = current.as_mut() {
            let len = file.metadata()?.len();
            if len < pos {
                pos = 0;
            }
            file.seek(SeekFrom::Start(pos))?;
            buf.clear();
            file.read_to_end(&mut buf)?;
            pos += buf.len() as u64;
            out.write_all(&buf)?;
            out.flush()?;
            let rotated = std::fs::metadata(path).is_ok_and(|m| m.ino() != *ino);
            if rotated {
                // Lines written to the old file after the read above are
                // still in it: take them before switching.
                buf.clear();
                file.read_to_end(&mut buf)?;
                out.write_all(&buf)?;
                current = open(path);
                pos = 0;
                continue;
            }
        } else {
            current = open(path);
            pos = 0;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
