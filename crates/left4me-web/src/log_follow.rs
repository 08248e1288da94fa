//! Follows a rotated console log (`console.log`, `console.log.1`, ...) for
//! live streaming: the last lines first, then every new line, across
//! rotations and truncation, resumable from a position.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use left4me_host::supervisor::console_log::rotated_path;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
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

struct Reader {
    path: PathBuf,
    file: Option<tokio::fs::File>,
    inode: u64,
    offset: u64,
    partial: Vec<u8>,
}

async fn open(path: &Path) -> Option<(tokio::fs::File, u64)> {
    let file = tokio::fs::File::open(path).await.ok()?;
    let inode = file.metadata().await.ok()?.ino();
    Some((file, inode))
}

impl Reader {
    /// Reads what was appended since the last call, as complete lines.
    async fn read_new(&mut self) -> Vec<Line> {
        let Some(file) = self.file.as_mut() else {
            return Vec::new();
        };
        let Ok(meta) = file.metadata().await else {
            return Vec::new();
        };
        if meta.len() < self.offset {
            // Truncated in place: start over.
            self.offset = 0;
            self.partial.clear();
        }
        if file
            .seek(std::io::SeekFrom::Start(self.offset))
            .await
            .is_err()
        {
            return Vec::new();
        }
        let mut buf = Vec::new();
        if file.read_to_end(&mut buf).await.is_err() {
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

    /// Switches to the current file when the path now names another one.
    async fn rotated(&self) -> bool {
        match tokio::fs::metadata(&self.path).await {
            Ok(meta) => self.file.is_none() || meta.ino() != self.inode,
            Err(_) => false,
        }
    }

    async fn reopen(&mut self) {
        if let Some((file, inode)) = open(&self.path).await {
            self.file = Some(file);
            self.inode = inode;
            self.offset = 0;
            self.partial.clear();
        }
    }
}

/// The last `count` complete lines of the log (current file, reaching
/// into the previous rotation when it is short).
async fn tail(path: &Path, count: usize) -> (Vec<Line>, Option<(tokio::fs::File, u64, u64)>) {
    let mut lines = Vec::new();
    let older = rotated_path(path, 1);
    if let Some((file, inode)) = open(&older).await {
        let mut reader = Reader {
            path: older,
            file: Some(file),
            inode,
            offset: 0,
            partial: Vec::new(),
        };
        lines.extend(reader.read_new().await);
    }
    let current = match open(path).await {
        Some((file, inode)) => {
            let mut reader = Reader {
                path: path.to_owned(),
                file: Some(file),
                inode,
                offset: 0,
                partial: Vec::new(),
            };
            lines.extend(reader.read_new().await);
            // Resume after the last complete line (a partial one is re-read).
            let offset = reader.offset - reader.partial.len() as u64;
            reader.file.map(|f| (f, inode, offset))
        }
        None => None,
    };
    let skip = lines.len().saturating_sub(count);
    (lines.split_off(skip), current)
}

/// The last `count` complete lines (reaching into the previous rotation).
pub async fn last_lines(path: &Path, count: usize) -> Vec<Line> {
    tail(path, count).await.0
}

/// Streams the log into the returned channel until the receiver is dropped.
pub fn follow(path: PathBuf, resume: Option<Position>, backlog: usize) -> mpsc::Receiver<Line> {
    let (tx, rx) = mpsc::channel(1024);
    tokio::spawn(async move {
        let mut reader = Reader {
            path: path.clone(),
            file: None,
            inode: 0,
            offset: 0,
            partial: Vec::new(),
        };
        let mut first = Vec::new();
        let current = open(&path).await;
        match (resume, current) {
            (Some(pos), Some((file, inode))) if pos.inode == inode => {
                reader.file = Some(file);
                reader.inode = inode;
                reader.offset = pos.offset;
            }
            (Some(pos), current) => {
                // Maybe the position is in the previous file: finish it first.
                let older = rotated_path(&path, 1);
                if let Some((file, inode)) = open(&older).await
                    && inode == pos.inode
                {
                    let mut old = Reader {
                        path: older,
                        file: Some(file),
                        inode,
                        offset: pos.offset,
                        partial: Vec::new(),
                    };
                    first.extend(old.read_new().await);
                    if let Some((file, inode)) = current {
                        reader.file = Some(file);
                        reader.inode = inode;
                    }
                } else {
                    let (lines, current) = tail(&path, backlog).await;
                    first = lines;
                    if let Some((file, inode, offset)) = current {
                        reader.file = Some(file);
                        reader.inode = inode;
                        reader.offset = offset;
                    }
                }
            }
            (None, _) => {
                let (lines, current) = tail(&path, backlog).await;
                first = lines;
                if let Some((file, inode, offset)) = current {
                    reader.file = Some(file);
                    reader.inode = inode;
                    reader.offset = offset;
                }
            }
        }
        for line in first {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        loop {
            for line in reader.read_new().await {
                if tx.send(line).await.is_err() {
                    return;
                }
            }
            if reader.rotated().await {
                // Lines written to the old file before it was rotated.
                for line in reader.read_new().await {
                    if tx.send(line).await.is_err() {
                        return;
                    }
                }
                reader.reopen().await;
                continue;
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                () = tx.closed() => return,
            }
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
