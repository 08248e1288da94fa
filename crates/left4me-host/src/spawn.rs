//! Starting programs that may have been written a moment ago.

use std::io;
use std::time::Duration;

/// Runs `start` again while it fails with ETXTBSY.
///
/// The kernel refuses to execute a file that any process holds open for
/// writing. A file this process has just written and closed can still be
/// held by a child that another thread forked before the close and that has
/// not reached its own `exec` yet (which closes the descriptor). That window
/// is short, so a few short retries outlast it; `cmd/go` does the same.
pub fn retry_while_text_busy<T>(mut start: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let mut delay = Duration::from_millis(1);
    for _ in 0..8 {
        match start() {
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::TXTBSY.raw_os_error()) => {
                std::thread::sleep(delay);
                delay *= 2;
            }
            other => return other,
        }
    }
    start()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn retries_only_a_busy_text_file() {
        let calls = Cell::new(0);
        let result = retry_while_text_busy(|| {
            calls.set(calls.get() + 1);
            if calls.get() < 3 {
                Err(io::Error::from_raw_os_error(
                    rustix::io::Errno::TXTBSY.raw_os_error(),
                ))
            } else {
                Ok(calls.get())
            }
        });
        assert_eq!(result.unwrap(), 3);

        calls.set(0);
        let result: io::Result<()> = retry_while_text_busy(|| {
            calls.set(calls.get() + 1);
            Err(io::ErrorKind::NotFound.into())
        });
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::NotFound);
        assert_eq!(calls.get(), 1, "other errors are not retried");
    }
}
