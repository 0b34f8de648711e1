//! `sync --adopt`, for moving from the `aws s3 sync` CronJob: a message a recipient's
//! Maildir already holds (copied there earlier, perhaps moved to cur/ and flagged since) is
//! recognised by its Message-ID and size, or, without a Message-ID, by its size and its whole
//! header block, and recorded as delivered instead of copied a second time. Each Maildir is
//! read once per run (new/ and cur/: each file's size and header block), when the first
//! object for it comes.

use crate::mail::header;
use crate::sync::SyncError;
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The most of a file read to find its header block.
const HEAD_LIMIT: usize = 64 * 1024;

/// What identifies a message for adoption.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// Its Message-ID (as written, angle brackets and all) and size.
    MessageId(Vec<u8>, u64),
    /// No Message-ID: its whole header block and size.
    Header(Vec<u8>, u64),
}

impl Key {
    /// The key of a message whose header block is `head` and whose size is `size`.
    pub fn of(head: &[u8], size: u64) -> Key {
        let id = crate::mail::envelope::raw_fields(head)
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(b"message-id"))
            .map(|(_, v)| v.trim_ascii().to_vec())
            .filter(|v| !v.is_empty());
        match id {
            Some(id) => Key::MessageId(id, size),
            None => Key::Header(head.to_vec(), size),
        }
    }
}

/// The messages of each Maildir this run looked at.
#[derive(Default)]
pub struct Index {
    dirs: Mutex<HashMap<PathBuf, Arc<HashSet<Key>>>>,
}

impl Index {
    /// Whether the Maildir `dir` holds the message `key` (reads the Maildir the first time).
    pub fn holds(&self, dir: &Path, key: &Key) -> Result<bool, SyncError> {
        let known = self
            .dirs
            .lock()
            .ok()
            .and_then(|m| m.get(dir).map(Arc::clone));
        let set = match known {
            Some(s) => s,
            None => {
                let s = Arc::new(read_maildir(dir)?);
                if let Ok(mut m) = self.dirs.lock() {
                    m.insert(dir.to_path_buf(), Arc::clone(&s));
                }
                s
            }
        };
        Ok(set.contains(key))
    }
}

/// The keys of every message in `dir`'s new/ and cur/.
fn read_maildir(dir: &Path) -> Result<HashSet<Key>, SyncError> {
    let mut keys = HashSet::new();
    for sub in ["new", "cur"] {
        let d = dir.join(sub);
        let rd = match std::fs::read_dir(&d) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(SyncError::Io { path: d, err }),
        };
        for e in rd.flatten() {
            let path = e.path();
            let Ok(mut f) = std::fs::File::open(&path) else {
                continue;
            };
            let Ok(meta) = f.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let mut head = Vec::with_capacity(8192);
            let _ = (&mut f).take(HEAD_LIMIT as u64).read_to_end(&mut head);
            let end = header::header_end(&head).unwrap_or(head.len());
            keys.insert(Key::of(&head[..end], meta.len()));
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_by_message_id_else_header() {
        let a = Key::of(b"Subject: x\r\nMessage-ID: <1@x>\r\n\r\n", 10);
        assert_eq!(a, Key::MessageId(b"<1@x>".to_vec(), 10));
        assert_ne!(a, Key::of(b"Message-ID: <1@x>\r\n\r\n", 11), "another size");
        let h = b"Subject: x\r\n\r\n";
        assert_eq!(Key::of(h, 3), Key::Header(h.to_vec(), 3));
    }
}
