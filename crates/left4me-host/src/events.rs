//! Progress reporting and cancellation for long operations.
//!
//! Every lifecycle step goes through [`Ctx::step`], which checks the
//! cancellation token first: cancelling takes effect between steps, where
//! the code knows how to roll back.

use std::fmt;

pub use tokio_util::sync::CancellationToken;

/// Something a long operation reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "text", rename_all = "snake_case")]
pub enum Event {
    /// A step starts: human-readable text.
    Step(String),
    /// A line a child process printed on stdout.
    Stdout(String),
    /// A line a child process printed on stderr.
    Stderr(String),
    /// Progress of the current step.
    Progress { done: u64, total: u64 },
}

/// Receives events. Closures `Fn(Event)` implement it.
pub trait EventSink: Send + Sync {
    fn emit(&self, event: Event);
}

impl<F: Fn(Event) + Send + Sync> EventSink for F {
    fn emit(&self, event: Event) {
        self(event);
    }
}

/// The operation was cancelled; whatever it had done was rolled back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cancelled")]
pub struct Cancelled;

/// What every long operation gets: where to report, and when to stop.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    sink: &'a dyn EventSink,
    cancel: &'a CancellationToken,
}

impl fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("cancelled", &self.cancel.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl<'a> Ctx<'a> {
    pub fn new(sink: &'a dyn EventSink, cancel: &'a CancellationToken) -> Self {
        Self { sink, cancel }
    }

    /// Starts a step, unless the operation was cancelled.
    pub fn step(&self, text: impl Into<String>) -> Result<(), Cancelled> {
        self.check()?;
        self.sink.emit(Event::Step(text.into()));
        Ok(())
    }

    pub fn emit(&self, event: Event) {
        self.sink.emit(event);
    }

    pub fn check(&self) -> Result<(), Cancelled> {
        if self.cancel.is_cancelled() {
            Err(Cancelled)
        } else {
            Ok(())
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Waits `wait` (a retry's pause, say), ending early on cancel.
    pub fn sleep(&self, wait: std::time::Duration) -> Result<(), Cancelled> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            self.check()?;
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            std::thread::sleep(left.min(std::time::Duration::from_millis(50)));
        }
    }
}

/// A sink that drops everything, for callers with nothing to show.
pub fn discard(_: Event) {}

/// Kills the process with SIGKILL at a named point when `LEFT4ME_FAULT`
/// names it.
///
/// Crash-recovery tests use this to die exactly between two steps, as a
/// `kill -9` would (no destructor, no flush, children left as they are),
/// without racing a signal against the step.
pub fn fault_point(name: &str) {
    if std::env::var("LEFT4ME_FAULT").is_ok_and(|v| v == name) {
        eprintln!("LEFT4ME_FAULT: killing this process at {name}");
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        // Not reached: SIGKILL cannot be caught.
        std::process::abort();
    }
}
