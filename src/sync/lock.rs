//! One sync at a time per mail root: an exclusive `flock` on `<mail-root>/.s3imap/sync.lock`.
//!
//! On Linux NFS clients, flock is carried out as a POSIX lock on the server, so two pods
//! sharing the volume exclude each other too (NFSv4, or NFSv3 with lockd). The holder writes
//! who it is into the file, so a second run can say whom it is waiting for. The lock goes when
//! the process ends, however it ends.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Held while a sync runs; dropping it releases the lock.
pub struct SyncLock {
    _file: File,
}

#[derive(Debug)]
pub enum LockError {
    /// Another run holds the lock.
    Busy {
        path: PathBuf,
        holder: String,
    },
    Io {
        path: PathBuf,
        err: io::Error,
    },
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::Busy { path, holder } => write!(
                f,
                "another sync is already running on this mail root ({holder}; lock {}); \
                 exiting without doing anything",
                path.display()
            ),
            LockError::Io { path, err } => {
                write!(f, "cannot take the sync lock {}: {err}", path.display())
            }
        }
    }
}

impl std::error::Error for LockError {}

/// Takes the lock in `state_dir` or fails at once with [`LockError::Busy`].
pub fn acquire(state_dir: &Path) -> Result<SyncLock, LockError> {
    let path = state_dir.join("sync.lock");
    let e = |err| LockError::Io {
        path: path.clone(),
        err,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(e)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(LockError::Busy {
                path,
                holder: if holder.is_empty() {
                    "holder unknown".into()
                } else {
                    holder.to_string()
                },
            });
        }
        Err(std::fs::TryLockError::Error(err)) => return Err(e(err)),
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown host".into());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let who = format!(
        "pid {} on {host} since {}",
        std::process::id(),
        crate::log::utc_timestamp(now)
    );
    file.set_len(0).map_err(e)?;
    file.seek(SeekFrom::Start(0)).map_err(e)?;
    file.write_all(who.as_bytes()).map_err(e)?;
    Ok(SyncLock { _file: file })
}

/// Takes the lock, waiting up to `patience` for another holder to let go (the events path
/// waits out a listing pass rather than failing). Blocks the calling thread: never call it on
/// the async executor.
pub fn acquire_within(
    state_dir: &Path,
    patience: std::time::Duration,
) -> Result<SyncLock, LockError> {
    let deadline = std::time::Instant::now() + patience;
    loop {
        match acquire(state_dir) {
            Err(LockError::Busy { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_with_the_first_named() {
        let d = std::env::temp_dir().join(format!("s3imap-lock-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let held = acquire(&d).unwrap();
        match acquire(&d) {
            Err(LockError::Busy { holder, .. }) => {
                assert!(
                    holder.contains(&format!("pid {}", std::process::id())),
                    "{holder}"
                )
            }
            other => panic!("expected Busy, got {:?}", other.err()),
        }
        drop(held);
        assert!(acquire(&d).is_ok());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
