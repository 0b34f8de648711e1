//! `dovecot-uidlist`: the UID ↔ file name map Dovecot keeps in every Maildir, the dotlock that
//! guards it, and the `dovecot-uidvalidity` counter new UIDVALIDITY values come from.
//!
//! Format (version 3, what Dovecot 1.1 and later write):
//! ```text
//! 3 V<uidvalidity> N<next uid> G<mailbox guid, 32 hex>[ <other header fields>]
//! <uid>[ <extension fields: one key letter A-Z, then the value>] :<base file name>
//! ```
//! The base name is the message's file name without its `:2,<flags>` info part, so flag
//! renames never touch this file. Dovecot appends lines in place while it holds the lock and
//! rewrites the whole file only now and then: the header's `N` may lag (the next UID is the
//! larger of `N` and the last UID + 1), and lines of expunged messages may linger. Extension
//! fields seen in practice are `W<vsize>` / `S<size>` for files whose names lack `,W=` / `,S=`.
//! Version 1 (`1 <uidvalidity> <next uid>` / `<uid> <name>`) is read too; we always write 3.
//!
//! Locking is Dovecot's dotlock: a writer creates `<file>.lock` with `O_EXCL`, retries with
//! short sleeps, and overrides a lock older than two minutes. We write the whole new file into
//! the lock file, fsync it and rename it over the target, which releases the lock in the same
//! step. Readers never lock: every rewrite is an atomic rename, and a torn last line of an
//! in-place append (no newline yet) is ignored.
//!
//! Parsing and formatting are pure ([`parse`], [`Uidlist::format`]); file operations are
//! [`load`], [`DotLock`], [`write`] and [`next_uid_validity`].

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The file's name inside a Maildir.
pub const FILE_NAME: &str = "dovecot-uidlist";
/// The UIDVALIDITY counter's name in the mailbox list's root (the user's directory).
pub const UIDVALIDITY_FILE: &str = "dovecot-uidvalidity";

/// A parsed `dovecot-uidlist`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uidlist {
    pub uid_validity: u32,
    /// The next UID to hand out: larger than every UID in `records`.
    pub next_uid: u32,
    /// The mailbox GUID (`G`, 32 hex digits); generated when the file had none.
    pub guid: Option<String>,
    /// Header fields we do not know, kept verbatim (`<key><value>`).
    pub header_ext: Vec<String>,
    /// Ascending by UID, file names unique.
    pub records: Vec<Record>,
}

/// One `<uid> [ext] :<name>` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub uid: u32,
    /// Extension fields as written, space-separated (`W1234 P...`); None when there are none.
    pub ext: Option<Box<str>>,
    /// The base file name (no `:2,` info part).
    pub name: Box<str>,
}

impl Record {
    /// The value of extension field `key` (`'W'`, `'S'`, ...).
    pub fn ext_value(&self, key: char) -> Option<&str> {
        ext_value(self.ext.as_deref()?, key)
    }
}

/// The value of field `key` in a space-separated extension string.
pub fn ext_value(ext: &str, key: char) -> Option<&str> {
    ext.split(' ').find_map(|f| f.strip_prefix(key))
}

/// `ext` with field `key` set to `value` (or removed when None), other fields kept in order.
pub fn set_ext(ext: Option<&str>, key: char, value: Option<&str>) -> Option<Box<str>> {
    let mut out = String::new();
    for f in ext.unwrap_or("").split(' ').filter(|f| !f.is_empty()) {
        if !f.starts_with(key) {
            push_field(&mut out, f);
        }
    }
    if let Some(v) = value {
        push_field(&mut out, &format!("{key}{v}"));
    }
    (!out.is_empty()).then(|| out.into_boxed_str())
}

fn push_field(out: &mut String, f: &str) {
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str(f);
}

impl Uidlist {
    /// An empty list with a fresh GUID.
    pub fn new(uid_validity: u32) -> Uidlist {
        Uidlist {
            uid_validity,
            next_uid: 1,
            guid: Some(new_guid()),
            header_ext: Vec::new(),
            records: Vec::new(),
        }
    }

    /// The version 3 text of this list.
    pub fn format(&self) -> Vec<u8> {
        let mut out = String::with_capacity(64 + self.records.len() * 64);
        out.push_str(&format!("3 V{} N{}", self.uid_validity, self.next_uid));
        if let Some(g) = &self.guid {
            out.push_str(" G");
            out.push_str(g);
        }
        for f in &self.header_ext {
            out.push(' ');
            out.push_str(f);
        }
        out.push('\n');
        for r in &self.records {
            out.push_str(&r.uid.to_string());
            if let Some(e) = &r.ext {
                out.push(' ');
                out.push_str(e);
            }
            out.push_str(" :");
            out.push_str(&r.name);
            out.push('\n');
        }
        out.into_bytes()
    }

    /// The records by base name.
    pub fn by_name(&self) -> HashMap<&str, &Record> {
        self.records.iter().map(|r| (&*r.name, r)).collect()
    }
}

/// Why a uidlist could not be parsed (Dovecot treats all of these as "broken file": it deletes
/// the file and rebuilds it with a new UIDVALIDITY).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    pub kind: ParseErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseErrorKind {
    Empty,
    BadVersion,
    UnsupportedVersion(u8),
    BadHeader,
    NoUidValidity,
    NoNextUid,
    BadGuid,
    BadUid,
    UidNotAscending { uid: u32, prev: u32 },
    UidNotBelowNext { uid: u32, next: u32 },
    NoFileName,
    BadFileName,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: ", self.line)?;
        match &self.kind {
            ParseErrorKind::Empty => write!(f, "the file is empty"),
            ParseErrorKind::BadVersion => write!(f, "the header does not start with a version"),
            ParseErrorKind::UnsupportedVersion(v) => write!(f, "unsupported version {v}"),
            ParseErrorKind::BadHeader => write!(f, "malformed header"),
            ParseErrorKind::NoUidValidity => write!(f, "the header has no UIDVALIDITY"),
            ParseErrorKind::NoNextUid => write!(f, "the header has no next UID"),
            ParseErrorKind::BadGuid => write!(f, "the mailbox GUID is not 32 hex digits"),
            ParseErrorKind::BadUid => write!(f, "the line does not start with a UID"),
            ParseErrorKind::UidNotAscending { uid, prev } => {
                write!(f, "UID {uid} does not follow UID {prev} in order")
            }
            ParseErrorKind::UidNotBelowNext { uid, next } => {
                write!(f, "UID {uid} is not below the next UID {next}")
            }
            ParseErrorKind::NoFileName => write!(f, "the line has no file name"),
            ParseErrorKind::BadFileName => write!(f, "the file name contains '/'"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Complete lines (each ended by `\n`); a torn tail without its newline is left out.
fn complete_lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    memchr::memrchr(b'\n', bytes)
        .map(|i| &bytes[..i])
        .into_iter()
        .flat_map(|b| b.split(|&c| c == b'\n'))
}

fn parse_u32(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses a uidlist (version 1 or 3).
pub fn parse(bytes: &[u8]) -> Result<Uidlist, ParseError> {
    let err = |line: usize, kind| ParseError { line, kind };
    let mut lines = complete_lines(bytes);
    let header = lines.next().ok_or(err(1, ParseErrorKind::Empty))?;
    let header = std::str::from_utf8(header).map_err(|_| err(1, ParseErrorKind::BadHeader))?;
    let hb = header.as_bytes();
    if hb.len() < 2 || !hb[0].is_ascii_digit() || hb[1] != b' ' {
        return Err(err(1, ParseErrorKind::BadVersion));
    }
    let version = hb[0] - b'0';
    let rest = &header[2..];
    let mut list = Uidlist {
        uid_validity: 0,
        next_uid: 0,
        guid: None,
        header_ext: Vec::new(),
        records: Vec::new(),
    };
    match version {
        1 => {
            let mut it = rest.split(' ').filter(|s| !s.is_empty());
            let (Some(v), Some(n)) = (it.next().and_then(parse_u32), it.next().and_then(parse_u32))
            else {
                return Err(err(1, ParseErrorKind::BadHeader));
            };
            list.uid_validity = v;
            list.next_uid = n;
        }
        3 => {
            for field in rest.split(' ').filter(|s| !s.is_empty()) {
                let mut chars = field.chars();
                let key = chars.next().unwrap_or(' ');
                let value = chars.as_str();
                match key {
                    'V' => list.uid_validity = parse_u32(value).unwrap_or(0),
                    'N' => list.next_uid = parse_u32(value).unwrap_or(0),
                    'G' => {
                        if value.len() != 32 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
                            return Err(err(1, ParseErrorKind::BadGuid));
                        }
                        list.guid = Some(value.to_string());
                    }
                    _ => list.header_ext.push(field.to_string()),
                }
            }
        }
        v => return Err(err(1, ParseErrorKind::UnsupportedVersion(v))),
    }
    if list.uid_validity == 0 {
        return Err(err(1, ParseErrorKind::NoUidValidity));
    }
    if list.next_uid == 0 {
        return Err(err(1, ParseErrorKind::NoNextUid));
    }

    let mut prev = 0u32;
    let mut names: HashMap<Box<str>, usize> = HashMap::new();
    for (i, raw) in lines.enumerate() {
        let lineno = i + 2;
        let Ok(line) = std::str::from_utf8(raw) else {
            // Not a name we could ever open (our names are UTF-8): leave it out.
            continue;
        };
        let digits = line.bytes().take_while(u8::is_ascii_digit).count();
        let uid = line[..digits].parse::<u32>().unwrap_or(0);
        if uid == 0 || line.as_bytes().get(digits) != Some(&b' ') {
            return Err(err(lineno, ParseErrorKind::BadUid));
        }
        if uid <= prev {
            return Err(err(lineno, ParseErrorKind::UidNotAscending { uid, prev }));
        }
        if uid == u32::MAX {
            return Err(err(lineno, ParseErrorKind::BadUid));
        }
        if version == 1 && uid >= list.next_uid {
            return Err(err(
                lineno,
                ParseErrorKind::UidNotBelowNext {
                    uid,
                    next: list.next_uid,
                },
            ));
        }
        prev = uid;
        let mut rest = line[digits..].trim_start_matches(' ');
        let mut ext = String::new();
        if version == 3 {
            // Extension fields until the ':' that starts the name.
            while !rest.is_empty() && !rest.starts_with(':') {
                let end = rest.find(' ').unwrap_or(rest.len());
                let field = &rest[..end];
                if field.as_bytes()[0].is_ascii_uppercase() {
                    push_field(&mut ext, field);
                }
                // Dovecot drops fields with an invalid key and goes on.
                rest = rest[end..].trim_start_matches(' ');
            }
            rest = rest.strip_prefix(':').unwrap_or(rest);
        }
        if rest.is_empty() {
            return Err(err(lineno, ParseErrorKind::NoFileName));
        }
        if rest.contains('/') {
            return Err(err(lineno, ParseErrorKind::BadFileName));
        }
        let name: Box<str> = base_name(rest).into();
        let record = Record {
            uid,
            ext: (!ext.is_empty()).then(|| ext.into_boxed_str()),
            name: name.clone(),
        };
        // A name listed twice: the later UID wins, as in Dovecot.
        if let Some(&old) = names.get(&name) {
            list.records.remove(old);
            for v in names.values_mut() {
                if *v > old {
                    *v -= 1;
                }
            }
        }
        names.insert(name, list.records.len());
        list.records.push(record);
    }
    if let Some(last) = list.records.last()
        && list.next_uid <= last.uid
    {
        list.next_uid = last.uid + 1;
    }
    Ok(list)
}

/// The base of a message file name: everything before the `:` of the info part. This, not
/// the name with flags, identifies a message for its whole life.
pub fn base_name(name: &str) -> &str {
    name.split(':').next().unwrap_or(name)
}

/// Dovecot's arrival order for files that get UIDs in one go (`maildir_filename_sort_cmp`):
/// by the leading seconds of the name, then the microseconds of an `M<usecs>` field, then the
/// base names byte by byte. File modification times play no part.
pub fn arrival_cmp(a: &str, b: &str) -> Ordering {
    fn secs(s: &str) -> (u64, &str) {
        let n = s.bytes().take_while(u8::is_ascii_digit).count();
        let v = s[..n].bytes().fold(0u64, |acc, d| {
            acc.wrapping_mul(10).wrapping_add(u64::from(d - b'0'))
        });
        (v, &s[n..])
    }
    fn usecs(rest: &str) -> Option<u64> {
        let rest = rest.strip_prefix('.')?;
        let field = rest.split(['.', ':']).next().unwrap_or("");
        let m = field.find('M')?;
        let digits: String = field[m + 1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        Some(digits.parse().unwrap_or(0))
    }
    let (sa, ra) = secs(a);
    let (sb, rb) = secs(b);
    sa.cmp(&sb)
        .then_with(|| match (usecs(ra), usecs(rb)) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => Ordering::Equal,
        })
        .then_with(|| base_name(ra).cmp(base_name(rb)))
}

/// What identifies one version of the file on disk: a rewrite is a rename (a new inode), an
/// in-place append changes the size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_ns: i64,
}

impl Stamp {
    pub fn of(meta: &fs::Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: meta.mtime(),
            mtime_ns: meta.mtime_nsec(),
        }
    }
}

/// The stamp of `<dir>/dovecot-uidlist`, None when there is no such file.
pub fn stamp(dir: &Path) -> io::Result<Option<Stamp>> {
    match fs::metadata(dir.join(FILE_NAME)) {
        Ok(m) => Ok(Some(Stamp::of(&m))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// What [`load`] found.
#[derive(Debug)]
pub enum Loaded {
    Missing,
    Corrupt(ParseError),
    Ok(Uidlist, Stamp),
}

/// Reads `<dir>/dovecot-uidlist`.
pub fn load(dir: &Path) -> io::Result<Loaded> {
    let mut f = match File::open(dir.join(FILE_NAME)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Loaded::Missing),
        Err(e) => return Err(e),
    };
    let st = Stamp::of(&f.metadata()?);
    let mut buf = Vec::with_capacity(st.size as usize + 1);
    f.read_to_end(&mut buf)?;
    Ok(match parse(&buf) {
        Ok(l) => Loaded::Ok(l, st),
        Err(e) => Loaded::Corrupt(e),
    })
}

/// Replaces `<dir>/dovecot-uidlist` with `list` through the held lock (fills in a GUID when
/// the list has none). Returns the stamp of the new file.
/// Adds `records` (UIDs above every listed one) at the end of the uidlist, under `lock`, the
/// way Dovecot does for new messages: the header's `N` may lag behind appended lines (every
/// reader, Dovecot too, takes the last UID + 1). Cheaper than [`write`] by the size of the
/// list: no rewrite, no fsync (a lost line only means the file gets a new UID next time, as
/// with Dovecot's `mail_fsync = optimized`). The lock is released when it is dropped.
pub fn append(lock: &DotLock, records: &[Record]) -> io::Result<Stamp> {
    let mut text = String::with_capacity(records.len() * 64);
    for r in records {
        text.push_str(&r.uid.to_string());
        if let Some(e) = &r.ext {
            text.push(' ');
            text.push_str(e);
        }
        text.push_str(" :");
        text.push_str(&r.name);
        text.push('\n');
    }
    let mut f = OpenOptions::new().append(true).open(&lock.target)?;
    f.write_all(text.as_bytes())?;
    Ok(Stamp::of(&f.metadata()?))
}

pub fn write(lock: DotLock, list: &mut Uidlist) -> io::Result<Stamp> {
    if list.guid.is_none() {
        list.guid = Some(new_guid());
    }
    lock.replace(&list.format())
}

/// How long to wait for a dotlock and when to override one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockOptions {
    /// Give up after waiting this long.
    pub timeout: Duration,
    /// A lock file not modified for this long was left by a crashed process: override it.
    pub stale: Duration,
}

impl LockOptions {
    /// Dovecot's settings for `dovecot-uidlist.lock` and `dovecot-keywords.lock`.
    pub const DOVECOT: LockOptions = LockOptions {
        timeout: Duration::from_secs(122),
        stale: Duration::from_secs(120),
    };
    /// Dovecot's settings for `subscriptions.lock`.
    pub const SUBSCRIPTIONS: LockOptions = LockOptions {
        timeout: Duration::from_secs(120),
        stale: Duration::from_secs(30),
    };
}

impl Default for LockOptions {
    fn default() -> Self {
        LockOptions::DOVECOT
    }
}

/// Why a dotlock could not be taken.
#[derive(Debug)]
pub enum LockError {
    Timeout { path: PathBuf, waited: Duration },
    Io { path: PathBuf, err: io::Error },
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::Timeout { path, waited } => write!(
                f,
                "{} is held by another process (waited {} s); if no Dovecot or s3imap process \
                 is working on this mailbox, remove that file",
                path.display(),
                waited.as_secs()
            ),
            LockError::Io { path, err } => {
                write!(f, "cannot create the lock {}: {err}", path.display())?;
                if err.kind() == io::ErrorKind::PermissionDenied {
                    write!(
                        f,
                        " (run s3imap as the user that owns the mail directory, as Dovecot's \
                         mail_uid does)"
                    )?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for LockError {}

/// A held `<target>.lock` dotlock; dropping it releases the lock.
#[derive(Debug)]
pub struct DotLock {
    lock_path: PathBuf,
    target: PathBuf,
    file: Option<File>,
}

/// The mode new files in `dir` get: the directory's permission bits without the x bits, as
/// Dovecot derives them (0700 → 0600).
pub(crate) fn file_mode_for(dir: &Path) -> u32 {
    fs::metadata(dir)
        .map(|m| m.permissions().mode() & 0o666)
        .ok()
        .filter(|m| *m & 0o600 == 0o600)
        .unwrap_or(0o600)
}

impl DotLock {
    /// Takes the dotlock of `target` (the file `target` + `.lock`).
    pub fn acquire(target: &Path, opts: LockOptions) -> Result<DotLock, LockError> {
        let mut lock_path = target.as_os_str().to_owned();
        lock_path.push(".lock");
        let lock_path = PathBuf::from(lock_path);
        let dir = target.parent().unwrap_or(Path::new("."));
        let mode = file_mode_for(dir);
        let start = Instant::now();
        let mut pause = Duration::from_millis(5);
        loop {
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&lock_path)
            {
                Ok(file) => {
                    return Ok(DotLock {
                        lock_path,
                        target: target.to_path_buf(),
                        file: Some(file),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(err) => {
                    return Err(LockError::Io {
                        path: lock_path,
                        err,
                    });
                }
            }
            if let Ok(meta) = fs::metadata(&lock_path) {
                let age = meta
                    .modified()
                    .ok()
                    .and_then(|m| SystemTime::now().duration_since(m).ok())
                    .unwrap_or_default();
                // Only remove the very file we judged (not one a racing process just made).
                if age > opts.stale
                    && fs::metadata(&lock_path).is_ok_and(|m| m.ino() == meta.ino())
                    && fs::remove_file(&lock_path).is_ok()
                {
                    crate::warn!(
                        "maildir",
                        "{}: overriding a lock left for {} s by a process that is gone",
                        lock_path.display(),
                        age.as_secs()
                    );
                    continue;
                }
            }
            let waited = start.elapsed();
            if waited >= opts.timeout {
                return Err(LockError::Timeout {
                    path: lock_path,
                    waited,
                });
            }
            std::thread::sleep(pause.min(opts.timeout - waited));
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.lock_path
    }

    /// Writes `content` into the lock file, fsyncs it and renames it over the target (which
    /// releases the lock), then fsyncs the directory. Returns the new file's stamp.
    pub fn replace(self, content: &[u8]) -> io::Result<Stamp> {
        self.replace_inner(content, None)
    }

    /// Like [`DotLock::replace`], and gives the new file the modification time `mtime`
    /// (Dovecot notices a changed `dovecot-keywords` by its mtime in whole seconds).
    pub(crate) fn replace_with_mtime(self, content: &[u8], mtime: SystemTime) -> io::Result<Stamp> {
        self.replace_inner(content, Some(mtime))
    }

    fn replace_inner(mut self, content: &[u8], mtime: Option<SystemTime>) -> io::Result<Stamp> {
        let Some(mut file) = self.file.take() else {
            return Err(io::Error::other("the lock was already released"));
        };
        let r = (|| {
            file.write_all(content)?;
            if let Some(t) = mtime {
                file.set_modified(t)?;
            }
            file.sync_data()?;
            let st = Stamp::of(&file.metadata()?);
            fs::rename(&self.lock_path, &self.target)?;
            if let Some(dir) = self.target.parent() {
                File::open(dir)?.sync_all()?;
            }
            Ok(st)
        })();
        if r.is_err() {
            let _ = fs::remove_file(&self.lock_path);
        }
        r
    }
}

impl Drop for DotLock {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.lock_path);
        }
    }
}

/// A new random mailbox GUID: 32 hex digits.
pub fn new_guid() -> String {
    format!("{:016x}{:016x}", random_u64(), random_u64())
}

fn random_u64() -> u64 {
    // RandomState is seeded from the OS once per thread and differs on every call.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish()
}

fn now_secs() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(1)
}

/// A UIDVALIDITY never handed out before under the mailbox list root `root` (the user's
/// directory), by Dovecot's protocol: `dovecot-uidvalidity` holds the last value in hex, and
/// an empty `dovecot-uidvalidity.<hex>` beside it is renamed to the next value, which only one
/// process can win. With no such files yet the value is the current time.
pub fn next_uid_validity(root: &Path) -> u32 {
    let main = root.join(UIDVALIDITY_FILE);
    let sidecar = |v: u32| root.join(format!("{UIDVALIDITY_FILE}.{v:08x}"));
    let write_main = |v: u32| {
        let r = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&main)
            .and_then(|mut f| f.write_all(format!("{v:08x}").as_bytes()));
        if let Err(e) = r {
            crate::warn!("maildir", "{}: {e}", main.display());
        }
    };
    // Renames .<cur> to .<cur+1>, trying the next values when another process won.
    let advance = |mut cur: u32| -> Option<u32> {
        for _ in 0..10 {
            let from = sidecar(cur);
            cur = cur.wrapping_add(1).max(1);
            match fs::rename(&from, sidecar(cur)) {
                Ok(()) => return Some(cur),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(_) => return None,
            }
        }
        None
    };
    if let Ok(text) = fs::read(&main) {
        let hex = String::from_utf8_lossy(&text[..text.len().min(8)]).into_owned();
        if let Ok(cur) = u32::from_str_radix(hex.trim(), 16)
            && let Some(v) = advance(cur)
        {
            write_main(v);
            return v;
        }
    }
    // Rescan for the sidecar files.
    let prefix = format!("{UIDVALIDITY_FILE}.");
    let mut values: Vec<u32> = fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name();
            let hex = n.to_str()?.strip_prefix(&prefix)?.to_string();
            u32::from_str_radix(&hex, 16).ok()
        })
        .collect();
    values.sort_unstable();
    match (values.first(), values.last()) {
        (Some(&min), Some(&max)) => {
            if min != max {
                let _ = fs::remove_file(sidecar(min));
            }
            let v = advance(max).unwrap_or_else(|| now_secs().max(max.wrapping_add(1)));
            write_main(v);
            v
        }
        _ => {
            let v = now_secs();
            let _ = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o444)
                .open(sidecar(v));
            write_main(v);
            v
        }
    }
}

/// The mailbox list root of a Maildir: the user's directory, which is the Maildir itself for
/// INBOX and the parent of a `.Folder`.
pub fn list_root(maildir: &Path) -> &Path {
    let is_folder = maildir
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'));
    match maildir.parent() {
        Some(p) if is_folder => p,
        _ => maildir,
    }
}

/// Creates `<dir>/dovecot-uidlist` with a fresh UIDVALIDITY when there is none (Dovecot does
/// this when it creates a mailbox, so the value is fixed from the start).
pub fn create_if_missing(dir: &Path, opts: LockOptions) -> Result<(), LockError> {
    let target = dir.join(FILE_NAME);
    if target.exists() {
        return Ok(());
    }
    let lock = DotLock::acquire(&target, opts)?;
    if target.exists() {
        return Ok(());
    }
    let mut list = Uidlist::new(next_uid_validity(list_root(dir)));
    write(lock, &mut list).map_err(|err| LockError::Io { path: target, err })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOVECOT: &str = "3 V1795892270 N5 Ga79b47332e240b6b0120000083ecc375\n\
        1 :1795892270.M858449P8193.vm,S=30,W=34\n\
        2 :1795892270.M879251P8193.vm,S=30,W=34\n\
        5 W33 :1600000000.handC.host\n";

    #[test]
    fn parses_what_dovecot_writes() {
        let l = parse(DOVECOT.as_bytes()).unwrap();
        assert_eq!(l.uid_validity, 1795892270);
        assert_eq!(l.next_uid, 6, "N lags behind appended lines");
        assert_eq!(l.guid.as_deref(), Some("a79b47332e240b6b0120000083ecc375"));
        assert_eq!(l.records.len(), 3);
        assert_eq!(&*l.records[2].name, "1600000000.handC.host");
        assert_eq!(l.records[2].ext_value('W'), Some("33"));
        assert_eq!(l.records[0].ext, None);
        let mut again = l.clone();
        again.next_uid = 5;
        assert_eq!(String::from_utf8(again.format()).unwrap(), DOVECOT);
    }

    #[test]
    fn keeps_unknown_fields_and_drops_invalid_ones() {
        let text = "3 V7 N3 Gffffffffffffffffffffffffffffffff X1 yz\n2 W10 P9 x :a,b\n";
        let l = parse(text.as_bytes()).unwrap();
        assert_eq!(l.header_ext, vec!["X1", "yz"]);
        assert_eq!(l.records[0].ext.as_deref(), Some("W10 P9"));
        assert_eq!(
            String::from_utf8(l.format()).unwrap(),
            "3 V7 N3 Gffffffffffffffffffffffffffffffff X1 yz\n2 W10 P9 :a,b\n"
        );
    }

    #[test]
    fn version_1_and_info_parts() {
        let l = parse(b"1 100 9\n3 one:2,S\n4 two\n").unwrap();
        assert_eq!((l.uid_validity, l.next_uid, l.guid.clone()), (100, 9, None));
        assert_eq!(&*l.records[0].name, "one");
        assert_eq!(
            parse(b"1 100 4\n4 x\n").unwrap_err().kind,
            ParseErrorKind::UidNotBelowNext { uid: 4, next: 4 }
        );
    }

    #[test]
    fn torn_tail_is_ignored() {
        let l = parse(b"3 V1 N1\n1 :a\n2 :b").unwrap();
        assert_eq!(l.records.len(), 1);
        assert_eq!(l.next_uid, 2);
    }

    #[test]
    fn later_duplicate_wins() {
        let l = parse(b"3 V1 N1\n1 :a\n2 :b\n3 :a\n").unwrap();
        let uids: Vec<_> = l.records.iter().map(|r| (r.uid, &*r.name)).collect();
        assert_eq!(uids, vec![(2, "b"), (3, "a")]);
    }

    #[test]
    fn corrupt_files() {
        let kind = |s: &str| parse(s.as_bytes()).unwrap_err().kind;
        assert_eq!(kind(""), ParseErrorKind::Empty);
        assert_eq!(kind("x\n"), ParseErrorKind::BadVersion);
        assert_eq!(kind("2 V1 N1\n"), ParseErrorKind::UnsupportedVersion(2));
        assert_eq!(kind("3 N1\n"), ParseErrorKind::NoUidValidity);
        assert_eq!(kind("3 V1\n"), ParseErrorKind::NoNextUid);
        assert_eq!(kind("3 V1 N1 Gxyz\n"), ParseErrorKind::BadGuid);
        assert_eq!(kind("1 x y\n"), ParseErrorKind::BadHeader);
        assert_eq!(kind("3 V1 N1\nfoo\n"), ParseErrorKind::BadUid);
        assert_eq!(kind("3 V1 N1\n0 :a\n"), ParseErrorKind::BadUid);
        assert_eq!(kind("3 V1 N1\n5:a\n"), ParseErrorKind::BadUid);
        assert_eq!(
            kind("3 V1 N1\n5 :a\n5 :b\n"),
            ParseErrorKind::UidNotAscending { uid: 5, prev: 5 }
        );
        assert_eq!(kind("3 V1 N1\n5 W3\n"), ParseErrorKind::NoFileName);
        assert_eq!(kind("3 V1 N1\n5 :\n"), ParseErrorKind::NoFileName);
        assert_eq!(kind("3 V1 N1\n5 :../x\n"), ParseErrorKind::BadFileName);
        let e = parse(b"3 V1 N1\n1 :a\n1 :b\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert_eq!(
            e.to_string(),
            "line 3: UID 1 does not follow UID 1 in order"
        );
    }

    #[test]
    fn ext_fields() {
        assert_eq!(set_ext(None, 'W', Some("5")).as_deref(), Some("W5"));
        assert_eq!(
            set_ext(Some("W1 P2"), 'W', Some("5")).as_deref(),
            Some("P2 W5")
        );
        assert_eq!(set_ext(Some("W1"), 'W', None), None);
    }

    #[test]
    fn arrival_order_is_dovecots() {
        let mut names = vec![
            "1700000002.S3Iabc.s3imap,S=1,W=1",
            "1700000001.handA.host",
            "1600000000.handC.host:2,FS",
            "1700000001.M20P1.h",
            "1700000001.M3P1.h",
            "junk",
        ];
        names.sort_by(|a, b| arrival_cmp(a, b));
        assert_eq!(
            names,
            vec![
                "junk",
                "1600000000.handC.host:2,FS",
                "1700000001.M3P1.h",
                "1700000001.M20P1.h",
                "1700000001.handA.host",
                "1700000002.S3Iabc.s3imap,S=1,W=1",
            ]
        );
    }

    fn scratch(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("s3imap-uidlist-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        p
    }

    #[test]
    fn lock_replace_and_stale_override() {
        let dir = scratch("lock");
        let target = dir.join(FILE_NAME);
        let opts = LockOptions {
            timeout: Duration::from_millis(50),
            stale: Duration::from_secs(120),
        };
        let lock = DotLock::acquire(&target, opts).unwrap();
        match DotLock::acquire(&target, opts) {
            Err(LockError::Timeout { .. }) => {}
            other => panic!("expected a timeout, got {other:?}"),
        }
        let mut l = Uidlist::new(42);
        write(lock, &mut l).unwrap();
        assert!(!dir.join("dovecot-uidlist.lock").exists());
        match load(&dir).unwrap() {
            Loaded::Ok(read, _) => assert_eq!(read, l),
            other => panic!("{other:?}"),
        }
        // A lock two hours old is overridden.
        let stale = File::create(dir.join("dovecot-uidlist.lock")).unwrap();
        stale
            .set_modified(SystemTime::now() - Duration::from_secs(7200))
            .unwrap();
        let lock = DotLock::acquire(&target, opts).unwrap();
        drop(lock);
        assert!(!dir.join("dovecot-uidlist.lock").exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn uid_validity_counter() {
        let dir = scratch("uidv");
        let first = next_uid_validity(&dir);
        assert!(first >= now_secs() - 5);
        assert_eq!(next_uid_validity(&dir), first + 1);
        assert_eq!(
            fs::read_to_string(dir.join(UIDVALIDITY_FILE)).unwrap(),
            format!("{:08x}", first + 1)
        );
        assert!(
            dir.join(format!("dovecot-uidvalidity.{:08x}", first + 1))
                .exists()
        );
        // Without the main file the sidecar still carries the count.
        fs::remove_file(dir.join(UIDVALIDITY_FILE)).unwrap();
        assert_eq!(next_uid_validity(&dir), first + 2);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn roots() {
        assert_eq!(list_root(Path::new("/m/u@x")), Path::new("/m/u@x"));
        assert_eq!(list_root(Path::new("/m/u@x/.Junk")), Path::new("/m/u@x"));
    }
}
