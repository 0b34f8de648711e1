//! s3imap's own per-mailbox state, kept beside Dovecot's files in `<maildir>/s3imap-state`
//! (Dovecot ignores it): the first UID that no session has been told of yet, which makes
//! `\Recent` work across sessions and processes (RFC 3501 §2.3.2: a message is recent in
//! exactly one session, the first one to learn of it). Dovecot keeps the same number in its
//! index header (`first_recent_uid`).
//!
//! Claims are atomic across processes: the file is locked (flock; POSIX locks on NFS) while
//! it is read and rewritten in one write of a fixed-size line. A missing or unreadable file
//! means "nobody has been told of anything": every message is recent once more, which is
//! what a Maildir without any index looks like to Dovecot too.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The file's name in each Maildir.
pub const FILE_NAME: &str = "s3imap-state";
const KEY: &str = "first-recent-uid ";

fn parse(text: &str) -> u32 {
    text.lines()
        .find_map(|l| l.strip_prefix(KEY))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(1)
}

/// The lowest UID that is still recent for the next session to learn of it.
pub fn first_recent(dir: &Path) -> io::Result<u32> {
    match std::fs::read_to_string(dir.join(FILE_NAME)) {
        Ok(t) => Ok(parse(&t)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(1),
        Err(e) => Err(e),
    }
}

/// Claims the UIDs below `upto` for the calling session: returns the first recent UID as it
/// was (the caller's messages `[returned, upto)` are recent for it, and for nobody else), and
/// moves it to `upto` unless it is there already.
pub fn claim_recent(dir: &Path, upto: u32) -> io::Result<u32> {
    let mut f: File = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(super::uidlist::file_mode_for(dir))
        .open(dir.join(FILE_NAME))?;
    f.lock()?;
    let mut text = String::new();
    f.read_to_string(&mut text)?;
    let old = parse(&text);
    if upto > old {
        // One write of a fixed-size line: a reader never sees half of it.
        let line = format!("{KEY}{upto:010}\n");
        f.seek(SeekFrom::Start(0))?;
        f.write_all(line.as_bytes())?;
        f.set_len(line.len() as u64)?;
    }
    Ok(old)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_handed_out_once() {
        let d = std::env::temp_dir().join(format!("s3imap-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        assert_eq!(first_recent(&d).unwrap(), 1);
        assert_eq!(
            claim_recent(&d, 4).unwrap(),
            1,
            "1..3 are the first claimer's"
        );
        assert_eq!(
            claim_recent(&d, 4).unwrap(),
            4,
            "nothing left for a second one"
        );
        assert_eq!(claim_recent(&d, 2).unwrap(), 4, "never moves back");
        assert_eq!(first_recent(&d).unwrap(), 4);
        std::fs::write(d.join(FILE_NAME), "garbage").unwrap();
        assert_eq!(first_recent(&d).unwrap(), 1);
        let _ = std::fs::remove_dir_all(&d);
    }
}
