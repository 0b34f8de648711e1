//! Modification sequences (RFC 7162's MODSEQ), persisted per Maildir in s3imap's own file
//! `s3imap-modseq` beside Dovecot's (Dovecot ignores it). Every change to a message (it
//! appeared, its flags or keywords changed, it was expunged) gets the next number of its
//! mailbox; the highest only ever grows, across restarts, SIGKILL and other s3imap processes on
//! the same volume.
//!
//! The file is append-only text: a header `v1 <uidvalidity>`, then one line per change,
//! `<modseq> <uid> <flag bits hex> <keyword bits hex>` or `<modseq> <uid> x` for an expunge.
//! The last line of a UID is its state. A writer takes `s3imap-modseq.lock` (flock; POSIX
//! locks on NFS) around "read what others appended, number, append", so numbers never repeat.
//! Appends are written before the change is announced and survive a SIGKILL (the kernel has
//! them); a torn last line (power loss) is ignored. When the file holds many more lines than
//! the mailbox has messages it is rewritten (same numbers, one line per UID) and renamed over
//! the old one; a reader that sees the inode change reads the new file whole.
//!
//! Reconciling with changes made while no s3imap watched (Dovecot, a restart): the caller
//! compares each message's flags with the last line of its UID and numbers what differs; UIDs
//! in the file but gone from disk are expunged now; a different UIDVALIDITY starts the file
//! anew (the numbers still grow).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The file's name in each Maildir.
pub const FILE_NAME: &str = "s3imap-modseq";
const LOCK_NAME: &str = "s3imap-modseq.lock";

/// A message's state as the log records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sig {
    /// System flag bits and keyword bits.
    Flags(u8, u32),
    Expunged,
}

/// The last recorded state of each UID, and the expunged UIDs with their modseqs.
#[derive(Debug, Default)]
pub struct Replay {
    pub state: HashMap<u32, (u64, Sig)>,
}

/// The open log of one Maildir.
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    file: File,
    ino: u64,
    /// Bytes read (ours and others' lines).
    read_to: u64,
    pub highest: u64,
    uid_validity: u32,
    lines: u64,
}

fn parse_line(line: &str) -> Option<(u64, u32, Sig)> {
    let mut w = line.split(' ');
    let modseq = w.next()?.parse().ok()?;
    let uid = w.next()?.parse().ok()?;
    let a = w.next()?;
    let sig = if a == "x" {
        Sig::Expunged
    } else {
        Sig::Flags(
            u8::from_str_radix(a, 16).ok()?,
            u32::from_str_radix(w.next()?, 16).ok()?,
        )
    };
    Some((modseq, uid, sig))
}

fn format_line(modseq: u64, uid: u32, sig: Sig) -> String {
    match sig {
        Sig::Flags(f, k) => format!("{modseq} {uid} {f:x} {k:x}\n"),
        Sig::Expunged => format!("{modseq} {uid} x\n"),
    }
}

/// The lock file, held for the duration of a read-number-append.
struct Locked(File);

impl Locked {
    fn take(dir: &Path) -> io::Result<Locked> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(super::uidlist::file_mode_for(dir))
            .open(dir.join(LOCK_NAME))?;
        f.lock()?;
        Ok(Locked(f))
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

impl Log {
    /// Opens (or starts) the log of `dir` for UIDVALIDITY `uid_validity` and replays it.
    pub fn open(dir: &Path, uid_validity: u32) -> io::Result<(Log, Replay)> {
        let _l = Locked::take(dir)?;
        let path = dir.join(FILE_NAME);
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(super::uidlist::file_mode_for(dir))
            .open(&path)?;
        let mut log = Log {
            dir: dir.to_path_buf(),
            ino: file.metadata()?.ino(),
            file,
            read_to: 0,
            highest: 0,
            uid_validity,
            lines: 0,
        };
        let mut replay = Replay::default();
        let header_ok = log.read_new(&mut replay)?;
        if log.file.metadata()?.len() > log.read_to {
            // A torn last line (a crash mid-write; under the lock nobody is writing now).
            log.file.set_len(log.read_to)?;
        }
        if !header_ok {
            // Empty, another UIDVALIDITY, or not ours: start anew, keeping the numbers growing.
            replay.state.clear();
            let highest = log.highest;
            log.rewrite(highest, std::iter::empty())?;
        }
        Ok((log, replay))
    }

    /// Reads what was appended since the last look (by anyone) into `replay`. False when the
    /// file has no header for this UIDVALIDITY.
    fn read_new(&mut self, replay: &mut Replay) -> io::Result<bool> {
        let mut f = &self.file;
        f.seek(SeekFrom::Start(self.read_to))?;
        let mut text = String::new();
        f.read_to_string(&mut text)?;
        let mut ok = self.read_to > 0;
        // Only whole lines; a torn tail stays for the next look (or is overwritten).
        let whole = text.rfind('\n').map(|i| i + 1).unwrap_or(0);
        for line in text[..whole].lines() {
            if let Some(v) = line.strip_prefix("v1 ") {
                ok = v.trim().parse::<u32>().ok() == Some(self.uid_validity);
                continue;
            }
            if let Some((m, uid, sig)) = parse_line(line) {
                self.highest = self.highest.max(m);
                self.lines += 1;
                if ok {
                    replay.state.insert(uid, (m, sig));
                }
            }
        }
        self.read_to += whole as u64;
        Ok(ok)
    }

    /// Another process rewrote the file (compaction): read the new one from the start.
    fn follow_rename(&mut self) -> io::Result<()> {
        let path = self.dir.join(FILE_NAME);
        let ino = fs::metadata(&path)?.ino();
        if ino != self.ino {
            self.file = OpenOptions::new().read(true).append(true).open(&path)?;
            self.ino = ino;
            self.read_to = 0;
            self.lines = 0;
            let mut ignore = Replay::default();
            self.read_new(&mut ignore)?;
        }
        Ok(())
    }

    /// Numbers `changes` above everything any process has written and appends them; returns
    /// their modseqs, in order.
    pub fn append(&mut self, changes: &[(u32, Sig)]) -> io::Result<Vec<u64>> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let _l = Locked::take(&self.dir)?;
        self.follow_rename()?;
        let mut ignore = Replay::default();
        self.read_new(&mut ignore)?;
        let mut text = String::new();
        let mut out = Vec::with_capacity(changes.len());
        for &(uid, sig) in changes {
            self.highest += 1;
            out.push(self.highest);
            text.push_str(&format_line(self.highest, uid, sig));
        }
        (&self.file).write_all(text.as_bytes())?;
        self.read_to += text.len() as u64;
        self.lines += changes.len() as u64;
        Ok(out)
    }

    /// Whether the file has grown well past one line per message (then [`Log::compact`]).
    pub fn wants_compaction(&self, messages: usize) -> bool {
        self.lines > 2 * messages as u64 + 4096
    }

    /// Rewrites the file with one line per UID (`entries`: uid, modseq, sig), atomically.
    pub fn compact(&mut self, entries: impl Iterator<Item = (u32, u64, Sig)>) -> io::Result<()> {
        let _l = Locked::take(&self.dir)?;
        self.follow_rename()?;
        let mut ignore = Replay::default();
        self.read_new(&mut ignore)?;
        let highest = self.highest;
        self.rewrite(highest, entries)
    }

    fn rewrite(
        &mut self,
        highest: u64,
        entries: impl Iterator<Item = (u32, u64, Sig)>,
    ) -> io::Result<()> {
        let path = self.dir.join(FILE_NAME);
        let tmp = self.dir.join(format!("{FILE_NAME}.tmp"));
        let mut text = format!("v1 {}\n", self.uid_validity);
        let mut lines = 0u64;
        let mut top = 0u64;
        for (uid, m, sig) in entries {
            text.push_str(&format_line(m, uid, sig));
            top = top.max(m);
            lines += 1;
        }
        if top < highest {
            // Keep the highest number even when the message that had it is gone from the file.
            text.push_str(&format_line(highest, 0, Sig::Expunged));
            lines += 1;
        }
        {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(super::uidlist::file_mode_for(&self.dir))
                .open(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &path)?;
        self.file = OpenOptions::new().read(true).append(true).open(&path)?;
        self.ino = self.file.metadata()?.ino();
        self.read_to = text.len() as u64;
        self.highest = highest.max(top);
        self.lines = lines;
        Ok(())
    }
}

/// The highest modseq recorded for `dir`, without opening a mailbox (STATUS HIGHESTMODSEQ).
pub fn highest(dir: &Path) -> io::Result<u64> {
    let f = match File::open(dir.join(FILE_NAME)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut top = 0;
    for line in io::BufReader::new(f).lines() {
        if let Some((m, _, _)) = parse_line(&line?) {
            top = top.max(m);
        }
    }
    Ok(top)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("s3imap-modseq-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn numbers_grow_across_reopen_writers_compaction_and_uidvalidity() {
        let d = dir("grow");
        let (mut a, r) = Log::open(&d, 7).unwrap();
        assert!(r.state.is_empty());
        assert_eq!(
            a.append(&[(1, Sig::Flags(0, 0)), (2, Sig::Flags(1, 0))])
                .unwrap(),
            vec![1, 2]
        );
        // A second writer (another process) numbers above the first's.
        let (mut b, r) = Log::open(&d, 7).unwrap();
        assert_eq!(r.state[&2], (2, Sig::Flags(1, 0)));
        assert_eq!(b.append(&[(2, Sig::Flags(3, 1))]).unwrap(), vec![3]);
        assert_eq!(a.append(&[(1, Sig::Expunged)]).unwrap(), vec![4]);
        // Reopened (a restart, or after SIGKILL): the last state of each UID, the highest.
        let (mut c, r) = Log::open(&d, 7).unwrap();
        assert_eq!(c.highest, 4);
        assert_eq!(r.state[&1], (4, Sig::Expunged));
        assert_eq!(r.state[&2], (3, Sig::Flags(3, 1)));
        // Compaction keeps the numbers; the other writers follow the new file.
        c.compact([(2, 3, Sig::Flags(3, 1))].into_iter()).unwrap();
        assert_eq!(a.append(&[(2, Sig::Flags(0, 0))]).unwrap(), vec![5]);
        assert_eq!(highest(&d).unwrap(), 5);
        // A torn last line is ignored.
        fs::OpenOptions::new()
            .append(true)
            .open(d.join(FILE_NAME))
            .unwrap()
            .write_all(b"99 2 f")
            .unwrap();
        let (_, r) = Log::open(&d, 7).unwrap();
        assert_eq!(r.state[&2], (5, Sig::Flags(0, 0)));
        // Another UIDVALIDITY: the states go, the numbers keep growing.
        let (mut e, r) = Log::open(&d, 8).unwrap();
        assert!(r.state.is_empty());
        assert_eq!(e.append(&[(1, Sig::Flags(0, 0))]).unwrap(), vec![6]);
        let _ = fs::remove_dir_all(&d);
    }
}
