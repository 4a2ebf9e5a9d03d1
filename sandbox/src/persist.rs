//! Writing a sandbox's files: once per burst of changes, never once per request.
//!
//! A change marks its part (state, call counts, fault counts) dirty and wakes the
//! flusher; the flusher waits until changes pause for [`QUIET`] (or [`MAX_DELAY`] passed
//! since the first unflushed change), then writes each dirty part once: compact JSON to a
//! temporary file, renamed over the old one, so a reader never sees half a file. Flushes
//! are at least [`MIN_GAP`] apart, so a steady stream of writes costs one serialisation
//! per [`MAX_DELAY`] + [`MIN_GAP`] at most, whatever the request rate.
//!
//! [`crate::Sandbox`] flushes when it stops or is dropped, and on
//! [`crate::Sandbox::flush`]; after the last flush the files are closed to this process,
//! so a request still running cannot write over the state a next owner of the directory
//! loaded.
//!
//! The state is serialised under its lock, so `state.json` is always the state as it was
//! at one instant. A process killed outright (SIGKILL) loses the changes of its last
//! fraction of a second, as if those requests had never arrived; it never leaves half of
//! one.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// How long changes must pause before a flush.
pub(crate) const QUIET: Duration = Duration::from_millis(25);
/// The longest a change waits for its flush while changes keep coming.
pub(crate) const MAX_DELAY: Duration = Duration::from_millis(250);
/// The shortest time between two flushes.
pub(crate) const MIN_GAP: Duration = Duration::from_millis(100);

/// A part of the sandbox written to its own file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// `state.json`.
    State = 0,
    /// `calls.json`.
    Calls = 1,
    /// `faults.used.json`.
    Faults = 2,
}

/// What persistence has done so far (for tests and measurements).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PersistStats {
    /// Flushes that wrote at least one file.
    pub flushes: u64,
    /// Times the state was serialised and written.
    pub state_writes: u64,
    /// Bytes written, over all files.
    pub bytes: u64,
    /// Size of the last `state.json` written.
    pub state_bytes: u64,
}

/// Dirty marks, the flusher's wake-up, and what was written.
#[derive(Debug, Default)]
pub(crate) struct Persist {
    /// Generation of each part: bumped by every change.
    marks: [AtomicU64; 3],
    notify: Notify,
    io: Mutex<Io>,
}

/// What the files hold, guarded by the lock every flush takes.
#[derive(Debug, Default)]
pub(crate) struct Io {
    written: [u64; 3],
    /// Set by the last flush: later changes stay in memory.
    pub(crate) closed: bool,
    pub(crate) stats: PersistStats,
}

impl Persist {
    /// Marks `part` changed and wakes the flusher.
    pub(crate) fn mark(&self, part: Part) {
        self.marks[part as usize].fetch_add(1, Ordering::SeqCst);
        self.notify.notify_one();
    }

    /// The current generation of `part`.
    pub(crate) fn generation(&self, part: Part) -> u64 {
        self.marks[part as usize].load(Ordering::SeqCst)
    }

    /// Takes the flush lock.
    pub(crate) fn io(&self) -> std::sync::MutexGuard<'_, Io> {
        self.io
            .lock()
            .expect("sandbox persistence lock is never poisoned")
    }

    /// Waits for the next burst of changes to settle: until changes pause for [`QUIET`],
    /// or [`MAX_DELAY`] after the first.
    pub(crate) async fn settled(&self) {
        self.notify.notified().await;
        let first = Instant::now();
        loop {
            let deadline = (Instant::now() + QUIET).min(first + MAX_DELAY);
            match tokio::time::timeout_at(deadline, self.notify.notified()).await {
                Ok(()) if Instant::now() < first + MAX_DELAY => {}
                _ => return,
            }
        }
    }
}

impl Io {
    /// Whether `part` has changes at `generation` that are not on disk.
    pub(crate) fn dirty(&self, part: Part, generation: u64) -> bool {
        self.written[part as usize] != generation
    }

    /// Records that `part` at `generation` is on disk, in `bytes` bytes.
    pub(crate) fn wrote(&mut self, part: Part, generation: u64, bytes: usize) {
        self.written[part as usize] = generation;
        self.stats.bytes += bytes as u64;
        if part == Part::State {
            self.stats.state_writes += 1;
            self.stats.state_bytes = bytes as u64;
        }
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Reads and parses a JSON file; `None` when it does not exist.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> std::io::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}
