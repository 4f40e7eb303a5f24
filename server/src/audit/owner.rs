//! Which process owns a task, and whether that process is still alive.
//!
//! Every process that opens an audit database gets an owner id (`<pid>-<opened ms>-<random>`),
//! recorded in the `owners` table and on every task it creates. While its log is open it holds
//! an exclusive lock on `<database>.owners/<owner id>.lock`; the kernel releases the lock when
//! the process dies, however it dies (kill -9 included). Recovery at startup therefore touches
//! only tasks whose owner's lock can be taken: a second server on the same workspace leaves the
//! first one's live tasks alone.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

use rand::Rng;

/// Whether the process that owns some tasks is still running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Liveness {
    Alive,
    Dead,
    /// The lock could not be checked (permissions, an odd file system): assume it is alive.
    Unknown,
}

/// A fresh owner id for this opening of a database.
pub(crate) fn new_owner_id(opened_at: i64) -> String {
    format!(
        "{}-{}-{:08x}",
        std::process::id(),
        opened_at,
        rand::rng().random::<u32>()
    )
}

/// The directory of owner locks beside `database`: `<database>.owners`.
pub(crate) fn owners_dir(database: &Path) -> PathBuf {
    let mut name = database.file_name().unwrap_or_default().to_os_string();
    name.push(".owners");
    database.with_file_name(name)
}

fn lock_path(dir: &Path, owner: &str) -> PathBuf {
    dir.join(format!("{owner}.lock"))
}

/// Owner ids are ours (`new_owner_id`), but the database could hold anything: never build a
/// path from an id that could leave the directory.
fn is_plain_id(owner: &str) -> bool {
    !owner.is_empty()
        && owner.len() <= 128
        && owner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The lock this process holds while its log is open. Dropping it releases the lock and
/// removes the file.
#[derive(Debug)]
pub(crate) struct OwnerLock {
    path: PathBuf,
    file: Option<File>,
}

impl OwnerLock {
    /// Creates and locks `<dir>/<owner>.lock`. The file is locked under a temporary name and
    /// then renamed, so a lock file under its final name is always held by a live owner or by
    /// nobody (never seen unlocked in between).
    pub(crate) fn acquire(dir: &Path, owner: &str) -> std::io::Result<OwnerLock> {
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".{owner}.tmp"));
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&tmp)?;
        file.try_lock().map_err(|e| match e {
            TryLockError::Error(e) => e,
            TryLockError::WouldBlock => std::io::Error::other("the new lock file is locked"),
        })?;
        // For people looking at the directory; nothing reads it.
        let _ = writeln!(file, "pid {}", std::process::id());
        let path = lock_path(dir, owner);
        std::fs::rename(&tmp, &path)?;
        Ok(OwnerLock {
            path,
            file: Some(file),
        })
    }
}

impl Drop for OwnerLock {
    fn drop(&mut self) {
        // Remove first (while still holding the lock), then release it.
        let _ = std::fs::remove_file(&self.path);
        if let Some(file) = self.file.take() {
            let _ = file.unlock();
        }
    }
}

/// Whether `owner` (not this log) still holds its lock in `dir`. `None` for `dir` (an
/// in-memory database has no other owners) gives `Unknown`.
pub(crate) fn liveness(dir: Option<&Path>, owner: &str) -> Liveness {
    let Some(dir) = dir else {
        return Liveness::Unknown;
    };
    if !is_plain_id(owner) {
        return Liveness::Unknown;
    }
    let path = lock_path(dir, owner);
    let file = match OpenOptions::new().read(true).write(true).open(&path) {
        Ok(file) => file,
        // The owner removed its lock when it closed, or never got to make one.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Liveness::Dead,
        Err(e) => {
            tracing::warn!("audit: cannot check owner lock {}: {e}", path.display());
            return Liveness::Unknown;
        }
    };
    match file.try_lock() {
        Ok(()) => {
            // Nobody holds it: its owner died. Tidy up while holding it.
            let _ = std::fs::remove_file(&path);
            let _ = file.unlock();
            Liveness::Dead
        }
        Err(TryLockError::WouldBlock) => Liveness::Alive,
        Err(TryLockError::Error(e)) => {
            tracing::warn!("audit: cannot check owner lock {}: {e}", path.display());
            Liveness::Unknown
        }
    }
}

/// Owner ids of the lock files in `dir` (for tidying up after owners that died without tasks).
pub(crate) fn lock_files(dir: Option<&Path>) -> Vec<String> {
    let Some(dir) = dir else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".lock"))
                .filter(|id| is_plain_id(id))
                .map(str::to_owned)
        })
        .take(10_000)
        .collect()
}
