//! The server console: what srcds prints on stdout.
//!
//! The host under test reads the game server's output from the journal or a
//! pipe, so every line goes to stdout and is flushed at once (a buffered line
//! would show up late or never if the process is killed). In-process tests
//! cannot read our stdout, so the same lines are also kept in memory and
//! broadcast to subscribers.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::broadcast;

/// How many past lines [`Console::lines`] keeps; enough for any test, small
/// enough that a long-running simulator does not grow without bound.
const KEPT_LINES: usize = 10_000;

/// A cheap-to-clone handle on the console.
#[derive(Clone, Debug)]
pub(crate) struct Console {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    echo_stdout: bool,
    lines: Mutex<VecDeque<String>>,
    tx: broadcast::Sender<String>,
}

impl Console {
    pub(crate) fn new(echo_stdout: bool) -> Self {
        let (tx, _) = broadcast::channel(1024);
        Self {
            inner: Arc::new(Inner {
                echo_stdout,
                lines: Mutex::new(VecDeque::new()),
                tx,
            }),
        }
    }

    /// Prints `text`; several lines may be given at once, separated by `\n`.
    pub(crate) fn print(&self, text: &str) {
        let text = text.strip_suffix('\n').unwrap_or(text);
        let mut kept = self
            .inner
            .lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.inner.echo_stdout {
            let mut out = std::io::stdout().lock();
            // A closed stdout must not take the server down: srcds keeps
            // running when nobody reads its console.
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        }
        for line in text.split('\n') {
            if kept.len() == KEPT_LINES {
                kept.pop_front();
            }
            kept.push_back(line.to_owned());
            // No subscriber is not an error.
            let _ = self.inner.tx.send(line.to_owned());
        }
    }

    /// Every line printed so far (up to the last [`KEPT_LINES`]).
    pub(crate) fn lines(&self) -> Vec<String> {
        self.inner
            .lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    /// Lines printed from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<String> {
        self.inner.tx.subscribe()
    }
}
