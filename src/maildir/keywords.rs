//! `dovecot-keywords`: the names of the IMAP keywords (`$Forwarded`, `$Junk`, user labels) a
//! Maildir's file names carry as the lowercase letters `a`..`z` after `:2,`.
//!
//! Format: one `<index> <name>` line per keyword, index 0 ↔ letter `a` up to 25 ↔ `z`, so a
//! Maildir holds at most 26 keywords. Dovecot looks names up case-insensitively, fills the
//! lowest free index first, and notices a rewritten file by its mtime in whole seconds, so a
//! rewrite must leave the mtime later than before. It writes the file only while it holds the
//! uidlist lock, through its own dotlock `dovecot-keywords.lock`; [`ensure`] does the same.
//!
//! Parsing and formatting are pure ([`Keywords::parse`], [`Keywords::format`]); [`read`] and
//! [`ensure`] are the file operations.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::uidlist::{DotLock, LockError, LockOptions};

/// The file's name inside a Maildir.
pub const FILE_NAME: &str = "dovecot-keywords";
/// Letters `a`..`z`.
pub const MAX_KEYWORDS: usize = 26;

/// The keyword names of one Maildir, by index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keywords {
    names: Vec<Option<Box<str>>>,
}

/// The file name letter of keyword `index` (0 → `a`).
pub fn letter(index: usize) -> char {
    char::from(b'a' + (index as u8 % 26))
}

/// The keyword index of a file name letter.
pub fn index_of_letter(c: char) -> Option<usize> {
    c.is_ascii_lowercase().then(|| (c as u8 - b'a') as usize)
}

/// Whether `name` can be stored: non-empty, no spaces or control characters (IMAP atoms
/// cannot carry them either).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl Keywords {
    /// Parses the file leniently, as Dovecot does: lines that are not `<index> <name>` with an
    /// index below 26 are skipped; a later line for the same index wins.
    pub fn parse(bytes: &[u8]) -> Keywords {
        let mut k = Keywords::default();
        for line in bytes.split(|&b| b == b'\n') {
            let Ok(line) = std::str::from_utf8(line) else {
                continue;
            };
            let Some((idx, name)) = line.split_once(' ') else {
                continue;
            };
            let Ok(idx) = idx.parse::<usize>() else {
                continue;
            };
            let name = name.trim_end_matches('\r');
            if idx >= MAX_KEYWORDS || name.is_empty() {
                continue;
            }
            k.set(idx, name);
        }
        k
    }

    /// The file's text.
    pub fn format(&self) -> Vec<u8> {
        let mut out = String::new();
        for (i, n) in self.iter() {
            out.push_str(&format!("{i} {n}\n"));
        }
        out.into_bytes()
    }

    fn set(&mut self, idx: usize, name: &str) {
        if self.names.len() <= idx {
            self.names.resize(idx + 1, None);
        }
        self.names[idx] = Some(name.into());
    }

    /// The name of keyword `index`.
    pub fn name(&self, index: usize) -> Option<&str> {
        self.names.get(index)?.as_deref()
    }

    /// The index of `name` (ASCII case-insensitive).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(i, _)| i)
    }

    /// Adds `name` at the lowest free index (or returns the index it has).
    pub fn insert(&mut self, name: &str) -> Result<usize, KeywordsError> {
        if !valid_name(name) {
            return Err(KeywordsError::BadName {
                name: name.to_string(),
            });
        }
        if let Some(i) = self.index_of(name) {
            return Ok(i);
        }
        let free = (0..MAX_KEYWORDS)
            .find(|&i| self.name(i).is_none())
            .ok_or_else(|| KeywordsError::Full {
                name: name.to_string(),
            })?;
        self.set(free, name);
        Ok(free)
    }

    /// (index, name) of every keyword, ascending.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &str)> {
        self.names
            .iter()
            .enumerate()
            .filter_map(|(i, n)| Some((i, n.as_deref()?)))
    }

    /// The names of the keywords whose bits are set in `bits` (bit i ↔ index i); letters
    /// without a name are left out.
    pub fn names_of(&self, bits: u32) -> impl Iterator<Item = &str> {
        (0..MAX_KEYWORDS)
            .filter(move |i| bits & (1 << i) != 0)
            .filter_map(|i| self.name(i))
    }

    /// The bit set of `names`, or the names that have no index yet.
    pub fn bits_of<'a>(&self, names: &[&'a str]) -> Result<u32, Vec<&'a str>> {
        let mut bits = 0u32;
        let mut missing = Vec::new();
        for n in names {
            match self.index_of(n) {
                Some(i) => bits |= 1 << i,
                None => missing.push(*n),
            }
        }
        if missing.is_empty() {
            Ok(bits)
        } else {
            Err(missing)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

/// Why keywords could not be stored.
#[derive(Debug)]
pub enum KeywordsError {
    /// All 26 letters are taken.
    Full {
        name: String,
    },
    BadName {
        name: String,
    },
    Lock(LockError),
    Io {
        path: PathBuf,
        err: io::Error,
    },
}

impl fmt::Display for KeywordsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeywordsError::Full { name } => write!(
                f,
                "cannot add keyword {name:?}: this mailbox already uses all {MAX_KEYWORDS} \
                 keywords a Maildir can store; remove an unused one from its {FILE_NAME}"
            ),
            KeywordsError::BadName { name } => {
                write!(
                    f,
                    "{name:?} is not a valid keyword (empty, spaces or control characters)"
                )
            }
            KeywordsError::Lock(e) => e.fmt(f),
            KeywordsError::Io { path, err } => write!(f, "{}: {err}", path.display()),
        }
    }
}

impl std::error::Error for KeywordsError {}

/// Reads `<dir>/dovecot-keywords` (empty when missing) and its modification time.
pub fn read(dir: &Path) -> Result<(Keywords, Option<SystemTime>), KeywordsError> {
    let path = dir.join(FILE_NAME);
    let io_err = |err| KeywordsError::Io {
        path: path.clone(),
        err,
    };
    let meta = match fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Keywords::default(), None)),
        Err(e) => return Err(io_err(e)),
    };
    match fs::read(&path) {
        Ok(b) => Ok((Keywords::parse(&b), meta.modified().ok())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok((Keywords::default(), None)),
        Err(e) => Err(io_err(e)),
    }
}

/// Makes sure every name in `names` has an index in `<dir>/dovecot-keywords`, adding the
/// missing ones under `dovecot-keywords.lock`. The caller holds the uidlist lock, as Dovecot
/// requires for changes to this file. Returns the file's keywords after the change.
pub fn ensure(
    dir: &Path,
    names: &[&str],
    _uidlist_lock: &DotLock,
    opts: LockOptions,
) -> Result<Keywords, KeywordsError> {
    let path = dir.join(FILE_NAME);
    let lock = DotLock::acquire(&path, opts).map_err(KeywordsError::Lock)?;
    let (mut kw, old_mtime) = read(dir)?;
    let before = kw.clone();
    for n in names {
        kw.insert(n)?;
    }
    if kw == before {
        return Ok(kw);
    }
    // Dovecot rereads the file only when its mtime (in seconds) changed.
    let now = SystemTime::now();
    let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mtime = match old_mtime {
        Some(old) if secs(old) >= secs(now) => UNIX_EPOCH + Duration::from_secs(secs(old) + 1),
        _ => now,
    };
    lock.replace_with_mtime(&kw.format(), mtime)
        .map_err(|err| KeywordsError::Io { path, err })?;
    Ok(kw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format_dovecots_file() {
        let text = "0 $Forwarded\n1 custom1\n2 $Junk\n3 other\n";
        let k = Keywords::parse(text.as_bytes());
        assert_eq!(k.name(2), Some("$Junk"));
        assert_eq!(k.index_of("$junk"), Some(2));
        assert_eq!(k.index_of("nope"), None);
        assert_eq!(String::from_utf8(k.format()).unwrap(), text);
        assert_eq!(
            k.names_of(0b1010).collect::<Vec<_>>(),
            vec!["custom1", "other"]
        );
        assert_eq!(k.bits_of(&["other", "$FORWARDED"]), Ok(0b1001));
        assert_eq!(k.bits_of(&["other", "x"]), Err(vec!["x"]));
    }

    #[test]
    fn lenient_like_dovecot() {
        let k = Keywords::parse(b"garbage\n30 toohigh\n-1 neg\n4 \n2 two\n2 deux\n\n");
        assert_eq!(k.iter().collect::<Vec<_>>(), vec![(2, "deux")]);
    }

    #[test]
    fn insert_fills_holes_and_stops_at_26() {
        let mut k = Keywords::parse(b"1 b\n");
        assert_eq!(k.insert("a").ok(), Some(0));
        assert_eq!(k.insert("B").ok(), Some(1));
        assert_eq!(k.insert("c").ok(), Some(2));
        for i in 3..26 {
            assert_eq!(k.insert(&format!("k{i}")).ok(), Some(i));
        }
        assert!(matches!(
            k.insert("one-too-many"),
            Err(KeywordsError::Full { .. })
        ));
        assert!(matches!(
            k.insert("has space"),
            Err(KeywordsError::BadName { .. })
        ));
        assert_eq!(letter(0), 'a');
        assert_eq!(letter(25), 'z');
        assert_eq!(index_of_letter('c'), Some(2));
        assert_eq!(index_of_letter('S'), None);
    }

    #[test]
    fn ensure_adds_under_lock_and_advances_mtime() {
        let dir = std::env::temp_dir().join(format!("s3imap-kw-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(FILE_NAME), "0 $Junk\n").unwrap();
        let future = SystemTime::now() + Duration::from_secs(10);
        fs::File::options()
            .write(true)
            .open(dir.join(FILE_NAME))
            .unwrap()
            .set_modified(future)
            .unwrap();
        let ul = DotLock::acquire(&dir.join("dovecot-uidlist"), LockOptions::DOVECOT).unwrap();
        let k = ensure(&dir, &["$Junk", "$Label1"], &ul, LockOptions::DOVECOT).unwrap();
        assert_eq!(k.index_of("$Label1"), Some(1));
        assert_eq!(
            fs::read_to_string(dir.join(FILE_NAME)).unwrap(),
            "0 $Junk\n1 $Label1\n"
        );
        let (_, m) = read(&dir).unwrap();
        assert!(m.unwrap() > future, "mtime must grow");
        assert!(!dir.join("dovecot-keywords.lock").exists());
        drop(ul);
        fs::remove_dir_all(&dir).unwrap();
    }
}
