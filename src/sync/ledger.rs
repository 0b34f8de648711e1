//! The durable record of which objects were handled: an append-only text file per bucket,
//! `<mail-root>/.s3imap/<bucket>.ledger`, one line per object:
//!
//! ```text
//! D <id> <etag> <key>            delivered
//! F <id> <etag> <key> <reason>   refused for good (empty, not a message, no recipient)
//! ```
//!
//! `<id>` is the first 128 bits of SHA-256(key NUL etag) in hex, the same id that makes the
//! message's file name, so a message linked into `new/` just before a crash is recognised even
//! if its ledger line was lost. Keys and reasons are percent-encoded. A torn last line (a crash
//! mid-append) is cut off when the file is opened. Only the ids are kept in memory.

use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// An object's identity: its key and ETag, hashed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(pub [u8; 16]);

impl Id {
    pub fn of(key: &str, etag: &str) -> Id {
        let mut h = Sha256::new();
        h.update(key.as_bytes());
        h.update([0]);
        h.update(etag.as_bytes());
        let d = h.finalize();
        let mut id = [0u8; 16];
        id.copy_from_slice(&d[..16]);
        Id(id)
    }

    pub fn hex(&self) -> String {
        let mut s = String::with_capacity(32);
        for b in self.0 {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    fn parse(hex: &str) -> Option<Id> {
        if hex.len() != 32 {
            return None;
        }
        let mut id = [0u8; 16];
        for (i, b) in id.iter_mut().enumerate() {
            *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Id(id))
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

/// A ledger that could not be opened or written.
#[derive(Debug)]
pub struct LedgerError {
    pub path: PathBuf,
    pub err: io::Error,
}

impl fmt::Display for LedgerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sync ledger {}: {} (it must be writable by the user s3imap runs as)",
            self.path.display(),
            self.err
        )
    }
}

impl std::error::Error for LedgerError {}

/// What happened to an object, for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Refused(String),
}

/// The ledger of one bucket.
pub struct Ledger {
    path: PathBuf,
    out: BufWriter<File>,
    known: Known,
    lines: usize,
    unsynced: bool,
    last_sync: std::time::Instant,
}

/// The ids a ledger holds: every handled one, and the refused ones among them.
#[derive(Debug, Default, Clone)]
pub struct Known {
    pub all: HashSet<Id>,
    pub refused: HashSet<Id>,
}

impl Ledger {
    /// Opens (or creates) the ledger for `bucket` in `state_dir`.
    pub fn open(state_dir: &Path, bucket: &str) -> Result<Ledger, LedgerError> {
        let path = state_dir.join(format!("{bucket}.ledger"));
        let e = |err| LedgerError {
            path: path.clone(),
            err,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(e)?;
        let mut known = Known::default();
        let mut lines = 0;
        let mut good_len: u64 = 0;
        {
            let mut r = BufReader::new(&mut file);
            let mut line = Vec::new();
            loop {
                line.clear();
                let n = r.read_until(b'\n', &mut line).map_err(e)?;
                if n == 0 {
                    break;
                }
                if line.last() != Some(&b'\n') {
                    break; // torn tail
                }
                good_len += n as u64;
                if let Some((id, refused)) = parse_line(&line) {
                    known.all.insert(id);
                    if refused {
                        known.refused.insert(id);
                    }
                    lines += 1;
                }
            }
        }
        let len = file.metadata().map_err(e)?.len();
        if len != good_len {
            crate::warn!(
                "sync",
                "ledger {}: dropping a torn last line left by a crash",
                path.display()
            );
            file.set_len(good_len).map_err(e)?;
            file.sync_all().map_err(e)?;
        }
        file.seek(SeekFrom::End(0)).map_err(e)?;
        let mut out = BufWriter::new(file);
        if good_len == 0 {
            writeln!(out, "# s3imap sync ledger v1, bucket {bucket}").map_err(e)?;
        }
        Ok(Ledger {
            path,
            out,
            known,
            lines,
            unsynced: good_len == 0,
            last_sync: std::time::Instant::now(),
        })
    }

    /// Ids handled in earlier runs (and in this one, once recorded).
    pub fn known(&self) -> &Known {
        &self.known
    }

    /// Lends the known ids out (to a lister thread) while records keep being appended; give
    /// them back with [`Ledger::restore_known`].
    pub fn take_known(&mut self) -> Known {
        std::mem::take(&mut self.known)
    }

    /// Takes back lent ids, merged with those recorded meanwhile.
    pub fn restore_known(&mut self, mut known: Known) {
        let added = std::mem::take(&mut self.known);
        known.all.extend(added.all);
        known.refused.extend(added.refused);
        self.known = known;
    }

    pub fn contains(&self, id: &Id) -> bool {
        self.known.all.contains(id)
    }

    /// Appends a line (buffered; [`Ledger::sync`] makes it durable).
    pub fn record(
        &mut self,
        id: Id,
        etag: &str,
        key: &str,
        outcome: &Outcome,
    ) -> Result<(), LedgerError> {
        let line = match outcome {
            Outcome::Delivered => format!("D {} {} {}\n", id.hex(), escape(etag), escape(key)),
            Outcome::Refused(why) => format!(
                "F {} {} {} {}\n",
                id.hex(),
                escape(etag),
                escape(key),
                escape(why)
            ),
        };
        self.out
            .write_all(line.as_bytes())
            .map_err(|err| self.err(err))?;
        self.known.all.insert(id);
        if matches!(outcome, Outcome::Refused(_)) {
            self.known.refused.insert(id);
        }
        self.lines += 1;
        self.unsynced = true;
        Ok(())
    }

    /// Flushes and fsyncs what was recorded.
    pub fn sync(&mut self) -> Result<(), LedgerError> {
        if !self.unsynced {
            return Ok(());
        }
        self.out.flush().map_err(|err| self.err(err))?;
        self.out
            .get_ref()
            .sync_data()
            .map_err(|err| self.err(err))?;
        self.unsynced = false;
        self.last_sync = std::time::Instant::now();
        Ok(())
    }

    /// [`Ledger::sync`], at most once a second. Losing the last second of lines in a crash
    /// costs nothing: the next run finds those messages by name in their Maildirs.
    pub fn sync_if_due(&mut self) -> Result<(), LedgerError> {
        if self.last_sync.elapsed() >= std::time::Duration::from_secs(1) {
            self.sync()?;
        }
        Ok(())
    }

    /// Rewrites the ledger keeping only `live` ids (those still in the bucket), when dead lines
    /// outnumber live ones. Atomic: a new file is written, fsynced and renamed over the old.
    pub fn compact_if_worth_it(&mut self, live: &HashSet<Id>) -> Result<bool, LedgerError> {
        let dead = self.lines.saturating_sub(live.len());
        if dead < 1000 || dead < live.len() {
            return Ok(false);
        }
        self.sync()?;
        let tmp = self.path.with_extension("ledger.tmp");
        let e = |err| LedgerError {
            path: tmp.clone(),
            err,
        };
        let src = File::open(&self.path).map_err(|err| self.err(err))?;
        let mut w = BufWriter::new(File::create(&tmp).map_err(e)?);
        let mut kept = Known::default();
        let mut lines = 0;
        for line in BufReader::new(src).split(b'\n') {
            let mut line = line.map_err(|err| self.err(err))?;
            match parse_line(&line) {
                Some((id, refused)) if live.contains(&id) => {
                    kept.all.insert(id);
                    if refused {
                        kept.refused.insert(id);
                    }
                    lines += 1;
                }
                Some(_) => continue,
                None if line.starts_with(b"#") => {}
                None => continue,
            }
            line.push(b'\n');
            w.write_all(&line).map_err(e)?;
        }
        let f = w.into_inner().map_err(|err| e(err.into_error()))?;
        f.sync_all().map_err(e)?;
        std::fs::rename(&tmp, &self.path).map_err(e)?;
        if let Some(dir) = self.path.parent() {
            crate::maildir::sync_dir(dir).map_err(e)?;
        }
        let file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|err| self.err(err))?;
        self.out = BufWriter::new(file);
        self.known = kept;
        self.lines = lines;
        Ok(true)
    }

    fn err(&self, err: io::Error) -> LedgerError {
        LedgerError {
            path: self.path.clone(),
            err,
        }
    }
}

/// The id of a `D` or `F` line, and whether it is a refusal.
fn parse_line(line: &[u8]) -> Option<(Id, bool)> {
    let s = std::str::from_utf8(line).ok()?;
    let mut parts = s.split(' ');
    let refused = match parts.next()? {
        "D" => false,
        "F" => true,
        _ => return None,
    };
    Some((Id::parse(parts.next()?.trim_end())?, refused))
}

/// Percent-encodes bytes that would break the line format (space, %, controls, non-ASCII).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_graphic() && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("s3imap-ledger-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        assert_eq!(Id::of("k", "e"), Id::of("k", "e"));
        assert_ne!(Id::of("k", "e"), Id::of("k", "f"));
        assert_ne!(Id::of("ke", ""), Id::of("k", "e"));
        let id = Id::of("a b", "x");
        assert_eq!(Id::parse(&id.hex()), Some(id));
    }

    #[test]
    fn survives_reopen_and_torn_tail() {
        let d = dir("torn");
        let a = Id::of("a key/with space+é", "e1");
        let b = Id::of("b", "e2");
        {
            let mut l = Ledger::open(&d, "bkt").unwrap();
            l.record(a, "e1", "a key/with space+é", &Outcome::Delivered)
                .unwrap();
            l.record(b, "e2", "b", &Outcome::Refused("empty object".into()))
                .unwrap();
            l.sync().unwrap();
        }
        let p = d.join("bkt.ledger");
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("a%20key/with%20space+%C3%A9"), "{text}");
        assert!(text.contains("empty%20object"));
        // A crash mid-append leaves half a line.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"D 0123").unwrap();
        drop(f);
        let mut l = Ledger::open(&d, "bkt").unwrap();
        assert!(l.contains(&a) && l.contains(&b));
        assert_eq!(l.known().all.len(), 2);
        assert!(l.known().refused.contains(&b) && !l.known().refused.contains(&a));
        let c = Id::of("c", "e3");
        l.record(c, "e3", "c", &Outcome::Delivered).unwrap();
        l.sync().unwrap();
        drop(l);
        let l = Ledger::open(&d, "bkt").unwrap();
        assert_eq!(l.known().all.len(), 3);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn compaction_keeps_live_ids() {
        let d = dir("compact");
        let mut l = Ledger::open(&d, "bkt").unwrap();
        let ids: Vec<Id> = (0..1500).map(|i| Id::of(&format!("k{i}"), "e")).collect();
        for (i, id) in ids.iter().enumerate() {
            l.record(*id, "e", &format!("k{i}"), &Outcome::Delivered)
                .unwrap();
        }
        let live: HashSet<Id> = ids[..10].iter().copied().collect();
        assert!(l.compact_if_worth_it(&live).unwrap());
        assert_eq!(l.known().all.len(), 10);
        let extra = Id::of("new", "e");
        l.record(extra, "e", "new", &Outcome::Delivered).unwrap();
        l.sync().unwrap();
        drop(l);
        let l = Ledger::open(&d, "bkt").unwrap();
        assert_eq!(l.known().all.len(), 11);
        assert!(l.contains(&ids[3]) && l.contains(&extra) && !l.contains(&ids[500]));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
