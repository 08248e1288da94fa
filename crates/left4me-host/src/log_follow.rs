//! Follows a rotated console log (`console.log`, `console.log.1`, ...) for
//! live streaming: the last lines first, then every new line, across
//! rotations and truncation, resumable from a position.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::supervisor::console_log::rotated_path;
use tokio::sync::mpsc;

/// Where a line ends: the file (by inode) and the byte offset after it.
/// Written as `INODE:OFFSET`, it is the SSE event id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub inode: u64,
    pub offset: u64,
}

impl Position {
    pub fn parse(raw: &str) -> Option<Self> {
        let (inode, offset) = raw.split_once(':')?;
        Some(Self {
            inode: inode.parse().ok()?,
            offset: offset.parse().ok()?,
        })
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.inode, self.offset)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub text: String,
    pub end: Position,
}

/// How often the file is checked for growth.
const POLL: Duration = Duration::from_millis(200);

/// Reads one file of the log from an offset, in whole lines. Synchronous:
/// each poll runs as one blocking task, not one per file operation, which
/// is what kept many watchers busy handing work between threads.
struct Reader {
    path: PathBuf,
    file: Option<File>,
    inode: u64,
    offset: u64,
    partial: Vec<u8>,
}

fn open(path: &Path) -> Option<(File, u64)> {
    let file = File::open(path).ok()?;
    let inode = file.metadata().ok()?.ino();
    Some((file, inode))
}

impl Reader {
    /// A reader of `path` starting at `offset` (nothing open if it is missing).
    fn at(path: PathBuf, opened: Option<(File, u64)>, offset: u64) -> Self {
        let (file, inode) = opened.map_or((None, 0), |(f, i)| (Some(f), i));
        Self {
            path,
            file,
            inode,
            offset,
            partial: Vec::new(),
        }
    }

    /// Reads what was appended since the last call, as complete lines.
    fn read_new(&mut self) -> Vec<Line> {
        let Some(file) = self.file.as_mut() else {
            return Vec::new();
        };
        let Ok(meta) = file.metadata() else {
            return Vec::new();
        };
        if meta.len() < self.offset {
            // Truncated in place: start over.
            self.offset = 0;
            self.partial.clear();
        }
        let mut buf = Vec::new();
        if file.seek(SeekFrom::Start(self.offset)).is_err() || file.read_to_end(&mut buf).is_err() {
            return Vec::new();
        }
        let start = self.offset - self.partial.len() as u64;
        self.offset += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        let mut lines = Vec::new();
        let mut consumed = 0;
        while let Some(nl) = self.partial[consumed..].iter().position(|b| *b == b'\n') {
            let end = consumed + nl + 1;
            let text = String::from_utf8_lossy(&self.partial[consumed..end - 1]).into_owned();
            lines.push(Line {
                text,
                end: Position {
                    inode: self.inode,
                    offset: start + end as u64,
                },
            });
            consumed = end;
        }
        self.partial.drain(..consumed);
        lines
    }

    /// Where the next unread complete line starts.
    fn resume_offset(&self) -> u64 {
        self.offset - self.partial.len() as u64
    }

    /// New lines; after a rotation the old file's last lines, then the
    /// new file's.
    fn poll(&mut self) -> Vec<Line> {
        let mut lines = self.read_new();
        let rotated = std::fs::metadata(&self.path)
            .is_ok_and(|meta| self.file.is_none() || meta.ino() != self.inode);
        if rotated && let Some((file, inode)) = open(&self.path) {
            lines.extend(self.read_new());
            *self = Self::at(self.path.clone(), Some((file, inode)), 0);
            lines.extend(self.read_new());
        }
        lines
    }
}

/// The last `count` complete lines of the log (current file, reaching
/// into the previous rotation when it is short), and a reader of the
/// current file positioned after them.
fn tail(path: &Path, count: usize) -> (Vec<Line>, Reader) {
    let older = rotated_path(path, 1);
    let mut lines = Reader::at(older.clone(), open(&older), 0).read_new();
    let mut current = Reader::at(path.to_owned(), open(path), 0);
    lines.extend(current.read_new());
    // A partial last line is re-read once it is complete.
    let current = Reader::at(
        path.to_owned(),
        current.file.take().map(|f| (f, current.inode)),
        current.resume_offset(),
    );
    let skip = lines.len().saturating_sub(count);
    (lines.split_off(skip), current)
}

/// Where a follower starts: the backlog to send first and the reader of
/// the current file.
fn start(path: &Path, resume: Option<Position>, backlog: usize) -> (Vec<Line>, Reader) {
    let Some(pos) = resume else {
        return tail(path, backlog);
    };
    let current = open(path);
    if let Some((_, inode)) = &current
        && *inode == pos.inode
    {
        return (Vec::new(), Reader::at(path.to_owned(), current, pos.offset));
    }
    // Maybe the position is in the previous file: finish that first.
    let older = rotated_path(path, 1);
    match open(&older) {
        Some((file, inode)) if inode == pos.inode => {
            let rest = Reader::at(older, Some((file, inode)), pos.offset).read_new();
            (rest, Reader::at(path.to_owned(), current, 0))
        }
        _ => tail(path, backlog),
    }
}

/// The last `count` complete lines (reaching into the previous rotation).
pub async fn last_lines(path: &Path, count: usize) -> Vec<Line> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || last_lines_blocking(&path, count))
        .await
        .unwrap_or_default()
}

/// [`last_lines`] for callers on a blocking thread.
pub fn last_lines_blocking(path: &Path, count: usize) -> Vec<Line> {
    tail(path, count).0
}

/// Streams the log into the returned channel until the receiver is dropped.
pub fn follow(path: PathBuf, resume: Option<Position>, backlog: usize) -> mpsc::Receiver<Line> {
    let (tx, rx) = mpsc::channel(1024);
    tokio::spawn(async move {
        let Ok((first, mut reader)) =
            tokio::task::spawn_blocking(move || start(&path, resume, backlog)).await
        else {
            return;
        };
        let mut lines = first;
        loop {
            for line in lines {
                if tx.send(line).await.is_err() {
                    return;
                }
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                () = tx.closed() => return,
            }
            let Ok(polled) = tokio::task::spawn_blocking(move || {
                let lines = reader.poll();
                (reader, lines)
            })
            .await
            else {
                return;
            };
            (reader, lines) = polled;
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    async fn next(rx: &mut mpsc::Receiver<Line>) -> Line {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("a line in time")
            .expect("the follower is alive")
    }

    #[tokio::test]
    async fn tails_follows_rotations_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.log");
        std::fs::write(&path, "one\ntwo\nthree\n").unwrap();
        let mut rx = follow(path.clone(), None, 2);
        assert_eq!(next(&mut rx).await.text, "two");
        let three = next(&mut rx).await;
        assert_eq!(three.text, "three");

        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        write!(f, "four\nfi").unwrap();
        assert_eq!(next(&mut rx).await.text, "four");
        writeln!(f, "ve").unwrap();
        let five = next(&mut rx).await;
        assert_eq!(
            five.text, "five",
            "a line written in two pieces arrives whole"
        );

        // Rotation: a line appended to the old file just before, then new ones.
        writeln!(f, "six").unwrap();
        std::fs::rename(&path, rotated_path(&path, 1)).unwrap();
        std::fs::write(&path, "seven\n").unwrap();
        let texts: Vec<String> = [next(&mut rx).await, next(&mut rx).await]
            .into_iter()
            .map(|l| l.text)
            .collect();
        assert_eq!(texts, ["six", "seven"]);
        drop(rx);

        // Resuming from "five" (now in the rotated file) continues with "six".
        let mut rx = follow(path.clone(), Some(five.end), 100);
        assert_eq!(next(&mut rx).await.text, "six");
        assert_eq!(next(&mut rx).await.text, "seven");
        // Resuming from "three" in the same way.
        let mut rx = follow(path, Some(three.end), 100);
        assert_eq!(next(&mut rx).await.text, "four");
    }
}
