//! One owner per sandbox directory: an advisory lock on `DIR/lock` (`flock` on Unix,
//! `LockFileEx` on Windows, through the standard library), held by the process that
//! loaded the state for as long as it serves it.
//!
//! The kernel releases the lock when its holder exits, however it exits, so a killed
//! process never wedges the directory. The holder writes its process id into the file,
//! for the message of those who wait. Within one process, a second [`DirLock`] on a
//! directory already locked here is refused at once rather than waited for, since it
//! could never be granted.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The lock file's name in the sandbox directory.
pub(crate) const LOCK_FILE: &str = "lock";

/// Directories this process holds (canonical paths).
static HELD: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// Why a lock was not taken.
#[derive(Debug)]
pub(crate) enum Busy {
    /// Another process holds it (its id, if it wrote one).
    Other(Option<u32>),
    /// This process holds it already.
    ThisProcess,
}

/// The held lock of a sandbox directory; released on drop.
#[derive(Debug)]
pub(crate) struct DirLock {
    file: File,
    canonical: PathBuf,
}

impl DirLock {
    /// Takes the lock of `dir` (which must exist) if it is free.
    pub(crate) fn try_acquire(dir: &Path) -> std::io::Result<Result<Self, Busy>> {
        let canonical = dir.canonicalize()?;
        let mut held = HELD.lock().expect("held-locks registry is never poisoned");
        if held.contains(&canonical) {
            return Ok(Err(Busy::ThisProcess));
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK_FILE))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(Err(Busy::Other(holder(&mut file)))),
            Err(TryLockError::Error(e)) => return Err(e),
        }
        file.set_len(0)?;
        file.rewind()?;
        write!(file, "{}", std::process::id())?;
        file.flush()?;
        held.insert(canonical.clone());
        Ok(Ok(Self { file, canonical }))
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Empty the file first: the pid in it would be wrong once the lock is free.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
        HELD.lock()
            .expect("held-locks registry is never poisoned")
            .remove(&self.canonical);
    }
}

/// The process id the holder wrote, if any.
fn holder(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_locked_once_and_free_again_after_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lock = DirLock::try_acquire(dir.path()).expect("io").expect("free");
        let text = std::fs::read_to_string(dir.path().join(LOCK_FILE)).expect("lock file");
        assert_eq!(text, std::process::id().to_string());
        assert!(matches!(
            DirLock::try_acquire(dir.path()).expect("io"),
            Err(Busy::ThisProcess)
        ));
        // Another open file description contends like another process would.
        let mut other = File::options()
            .read(true)
            .write(true)
            .open(dir.path().join(LOCK_FILE))
            .expect("open");
        assert!(matches!(other.try_lock(), Err(TryLockError::WouldBlock)));
        assert_eq!(holder(&mut other), Some(std::process::id()));
        drop(lock);
        other.try_lock().expect("free after drop");
        other.unlock().expect("unlock");
        DirLock::try_acquire(dir.path())
            .expect("io")
            .expect("free again");
    }
}
