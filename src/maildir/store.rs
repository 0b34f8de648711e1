//! One Maildir opened for an IMAP session: its messages with UIDs, flags, keywords and sizes,
//! kept in step with the files on disk and with Dovecot's `dovecot-uidlist`, so that Dovecot and
//! s3imap can take turns on the same mail root and agree on every UID.
//!
//! A message is a file in `new/` or `cur/`. Its identity is the base of its name (before `:`),
//! its UID comes from `dovecot-uidlist`, its flags from the letters after `:2,` (`D`raft,
//! `F`lagged, `R` answered, `S`een, `T` deleted, `a`..`z` keywords named in
//! `dovecot-keywords`; other letters such as `P` passed are kept untouched), its size from
//! `,S=` and its IMAP (CRLF) size from `,W=` in the name, else from the uidlist's `S`/`W`
//! fields, else from the file. Its INTERNALDATE is the file's mtime.
//!
//! What Dovecot does and we do too: files not yet in the uidlist get UIDs under the uidlist
//! lock in Dovecot's arrival order ([`uidlist::arrival_cmp`]), new files and files that
//! appeared in `cur/` alike; a read-write session moves `new/` files to `cur/` (appending
//! `:2,`); `\Recent` goes to the first session told of a message ([`super::state`]); flag
//! changes are renames inside `cur/` from the name the flags were read from; an expunge is an
//! unlink. A rename or unlink that finds the file gone looks for it again by its base name
//! (another process renamed it). Appends write `tmp/`, fsync, hard-link into `cur/` with their
//! flags, fsync `cur/`, then add the uidlist line.
//!
//! All calls block; the async server runs them on its blocking pool. Per message we keep
//! [`Message`]: 64 bytes plus the file name, once per open mailbox (sessions share it).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::ops::{BitOr, BitOrAssign};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::keywords::{self, Keywords, KeywordsError};
use super::modseq;
use super::state;
use super::uidlist::{self, DotLock, Loaded, LockError, LockOptions, Record, Stamp, Uidlist};
use super::{SizeCounter, file_name, sync_dir};

/// IMAP system flags (`\Recent` is per session: the IMAP layer's view keeps it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flags(u8);

impl Flags {
    pub const SEEN: Flags = Flags(1);
    pub const ANSWERED: Flags = Flags(2);
    pub const FLAGGED: Flags = Flags(4);
    pub const DELETED: Flags = Flags(8);
    pub const DRAFT: Flags = Flags(16);

    /// The file name letters in ASCII order, as Maildir wants them.
    const LETTERS: [(Flags, char); 5] = [
        (Flags::DRAFT, 'D'),
        (Flags::FLAGGED, 'F'),
        (Flags::ANSWERED, 'R'),
        (Flags::SEEN, 'S'),
        (Flags::DELETED, 'T'),
    ];
    const NAMES: [(Flags, &'static str); 5] = [
        (Flags::ANSWERED, "\\Answered"),
        (Flags::FLAGGED, "\\Flagged"),
        (Flags::DELETED, "\\Deleted"),
        (Flags::SEEN, "\\Seen"),
        (Flags::DRAFT, "\\Draft"),
    ];

    pub const fn empty() -> Flags {
        Flags(0)
    }
    pub const fn bits(self) -> u8 {
        self.0
    }
    pub const fn from_bits(bits: u8) -> Flags {
        Flags(bits & 31)
    }
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn insert(&mut self, other: Flags) {
        self.0 |= other.0;
    }
    pub fn remove(&mut self, other: Flags) {
        self.0 &= !other.0;
    }
    /// The flag a Maildir info letter stands for.
    pub fn from_letter(c: char) -> Option<Flags> {
        Flags::LETTERS
            .iter()
            .find(|(_, l)| *l == c)
            .map(|(f, _)| *f)
    }
    /// The flag of an IMAP name such as `\Seen` (case-insensitive).
    pub fn from_imap(name: &str) -> Option<Flags> {
        Flags::NAMES
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(f, _)| *f)
    }
    /// The IMAP names of the flags set.
    pub fn imap_names(self) -> impl Iterator<Item = &'static str> {
        Flags::NAMES
            .iter()
            .filter(move |(f, _)| self.contains(*f))
            .map(|(_, n)| *n)
    }
}

impl BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Flags) {
        self.0 |= rhs.0;
    }
}

/// The flags and keyword bits (bit i ↔ letter `a`+i) of a file name's `:2,` info part.
pub fn parse_info(name: &str) -> (Flags, u32) {
    let mut flags = Flags::empty();
    let mut kw = 0u32;
    let Some(info) = name.find(':').map(|i| &name[i + 1..]) else {
        return (flags, kw);
    };
    let Some(letters) = info.strip_prefix("2,") else {
        return (flags, kw);
    };
    for c in letters.chars().take_while(|&c| c != ',') {
        if let Some(f) = Flags::from_letter(c) {
            flags |= f;
        } else if let Some(i) = keywords::index_of_letter(c) {
            kw |= 1 << i;
        }
    }
    (flags, kw)
}

/// `name` with its flags set to `flags` and `keyword_bits`: `<base>:2,<letters>`, letters in
/// ASCII order, unknown letters (`P`) and a second `,`-separated flag set kept as they were.
pub fn with_flags(name: &str, flags: Flags, keyword_bits: u32) -> String {
    let (base, info) = match name.rfind(':') {
        Some(i) => (&name[..i], &name[i + 1..]),
        None => (name, ""),
    };
    let old = info.strip_prefix("2,").unwrap_or("");
    let (old_letters, extra) = match old.find(',') {
        Some(j) => (&old[..j], &old[j..]),
        None => (old, ""),
    };
    let mut letters: Vec<char> = old_letters
        .chars()
        .filter(|&c| Flags::from_letter(c).is_none() && !c.is_ascii_lowercase())
        .collect();
    for (f, l) in Flags::LETTERS {
        if flags.contains(f) {
            letters.push(l);
        }
    }
    for i in 0..keywords::MAX_KEYWORDS {
        if keyword_bits & (1 << i) != 0 {
            letters.push(keywords::letter(i));
        }
    }
    letters.sort_unstable();
    letters.dedup();
    let letters: String = letters.into_iter().collect();
    format!("{base}:2,{letters}{extra}")
}

/// The number in a `,<key>=<digits>` field of the base name (`S` size, `W` CRLF size), as
/// Dovecot reads it.
pub fn name_size(name: &str, key: char) -> Option<u64> {
    let base = uidlist::base_name(name);
    let pat = [',', key, '='].iter().collect::<String>();
    let at = base.find(&pat)?;
    let rest = &base[at + pat.len()..];
    let n = rest.bytes().take_while(u8::is_ascii_digit).count();
    if n == 0 || !(rest.len() == n || rest.as_bytes()[n] == b',') {
        return None;
    }
    rest[..n].parse().ok()
}

const UNKNOWN: u64 = u64::MAX;
const NO_MTIME: i64 = i64::MIN;
const IN_NEW: u8 = 1;

/// One message of an open mailbox.
#[derive(Debug, Clone)]
pub struct Message {
    uid: u32,
    keywords: u32,
    flags: Flags,
    state: u8,
    size: u64,
    vsize: u64,
    mtime: i64,
    /// The modification sequence of its last change (RFC 7162).
    modseq: u64,
    name: Box<str>,
}

impl Message {
    pub fn uid(&self) -> u32 {
        self.uid
    }
    pub fn flags(&self) -> Flags {
        self.flags
    }
    /// Keyword bits: bit i is the keyword with index i in [`Mailbox::keywords`].
    pub fn keyword_bits(&self) -> u32 {
        self.keywords
    }
    /// The modification sequence of the message's last change.
    pub fn modseq(&self) -> u64 {
        self.modseq
    }
    fn sig(&self) -> modseq::Sig {
        modseq::Sig::Flags(self.flags.bits(), self.keywords)
    }
    /// Still in `new/` (read-only sessions leave it there).
    pub fn in_new(&self) -> bool {
        self.state & IN_NEW != 0
    }
    /// The file name as last seen.
    pub fn name(&self) -> &str {
        &self.name
    }
    fn base(&self) -> &str {
        uidlist::base_name(&self.name)
    }
    fn sub(&self) -> &'static str {
        if self.in_new() { "new" } else { "cur" }
    }
}

/// A message removed from the mailbox, with the sequence number an untagged `EXPUNGE` must
/// carry when the removals are reported in the order given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expunged {
    pub seq: u32,
    pub uid: u32,
}

/// What [`Mailbox::refresh`] found changed since the last look.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// In the order the `EXPUNGE` responses go out.
    pub expunged: Vec<Expunged>,
    /// UIDs of messages added at the end.
    pub new: Vec<u32>,
    /// UIDs whose flags or keywords changed.
    pub flags: Vec<u32>,
    /// The uidlist was rebuilt by another process: every UID changed; the session must end.
    pub uid_validity_changed: bool,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.expunged.is_empty()
            && self.new.is_empty()
            && self.flags.is_empty()
            && !self.uid_validity_changed
    }
}

/// STATUS values of a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Status {
    pub messages: u32,
    pub recent: u32,
    pub unseen: u32,
    pub uid_next: u32,
    pub uid_validity: u32,
    /// Sum of the messages' IMAP (CRLF) sizes (RFC 8438 STATUS SIZE).
    pub size: u64,
    /// Messages marked `\Deleted` (RFC 9051 STATUS DELETED).
    pub deleted: u32,
}

/// Why a mailbox operation failed.
#[derive(Debug)]
pub enum StoreError {
    /// No Maildir (no `cur/`) at this path.
    NoSuchMailbox {
        path: PathBuf,
    },
    /// The mailbox was opened read-only (EXAMINE).
    ReadOnly {
        path: PathBuf,
    },
    /// No message with this UID, or it was expunged by another process.
    NoSuchMessage {
        uid: u32,
    },
    /// UIDs reached 2^32 - 1.
    UidsExhausted {
        path: PathBuf,
    },
    Keywords(KeywordsError),
    Lock(LockError),
    Io {
        path: PathBuf,
        err: io::Error,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::NoSuchMailbox { path } => {
                write!(
                    f,
                    "{} is not a Maildir (it has no cur/ directory)",
                    path.display()
                )
            }
            StoreError::ReadOnly { path } => write!(
                f,
                "{} is open read-only (EXAMINE); SELECT it to change messages",
                path.display()
            ),
            StoreError::NoSuchMessage { uid } => {
                write!(
                    f,
                    "message UID {uid} does not exist (expunged by another session?)"
                )
            }
            StoreError::UidsExhausted { path } => write!(
                f,
                "{}: UIDs are used up; delete its dovecot-uidlist to renumber the messages \
                 (clients will download the folder again)",
                path.display()
            ),
            StoreError::Keywords(e) => e.fmt(f),
            StoreError::Lock(e) => e.fmt(f),
            StoreError::Io { path, err } => {
                write!(f, "{}: {err}", path.display())?;
                if err.kind() == io::ErrorKind::PermissionDenied {
                    write!(f, " (run s3imap as the user that owns the mail directory)")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for StoreError {}

impl From<LockError> for StoreError {
    fn from(e: LockError) -> Self {
        StoreError::Lock(e)
    }
}

impl From<KeywordsError> for StoreError {
    fn from(e: KeywordsError) -> Self {
        StoreError::Keywords(e)
    }
}

fn io_at(path: &Path) -> impl Fn(io::Error) -> StoreError + '_ {
    move |err| StoreError::Io {
        path: path.to_path_buf(),
        err,
    }
}

/// A file in `new/` or `cur/` as one directory scan saw it.
#[derive(Debug, Clone)]
struct Entry {
    name: String,
    in_new: bool,
}

impl Entry {
    fn base(&self) -> &str {
        uidlist::base_name(&self.name)
    }
}

/// Lists `new/` then `cur/` (in this order a file moved from new/ to cur/ meanwhile is seen
/// at least once). A base name seen twice keeps its `cur/` entry.
fn scan(dir: &Path) -> Result<Vec<Entry>, StoreError> {
    let mut out: Vec<Entry> = Vec::new();
    for (sub, in_new) in [("new", true), ("cur", false)] {
        let path = dir.join(sub);
        let rd = match fs::read_dir(&path) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound && in_new => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NoSuchMailbox {
                    path: dir.to_path_buf(),
                });
            }
            Err(e) => return Err(io_at(&path)(e)),
        };
        for entry in rd {
            let entry = entry.map_err(io_at(&path))?;
            let Ok(name) = entry.file_name().into_string() else {
                crate::warn!(
                    "maildir",
                    "{}: skipping a file whose name is not UTF-8: {:?}",
                    path.display(),
                    entry.file_name()
                );
                continue;
            };
            if name.starts_with('.') || name.contains(['\r', '\n']) {
                continue;
            }
            out.push(Entry { name, in_new });
        }
    }
    // Dedupe by base name; cur/ entries come later and win.
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(out.len());
    let mut keep = vec![true; out.len()];
    for (i, e) in out.iter().enumerate() {
        if let Some(old) = seen.insert(e.base().to_string(), i) {
            keep[old] = false;
        }
    }
    let mut k = keep.into_iter();
    out.retain(|_| k.next().unwrap_or(true));
    Ok(out)
}

fn dir_mtime(path: &Path) -> Result<Option<SystemTime>, StoreError> {
    match fs::metadata(path) {
        Ok(m) => Ok(m.modified().ok()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_at(path)(e)),
    }
}

/// How long a directory must be unchanged before its mtime can be trusted (see `sync`).
fn settle_time(mtimes: &[Option<SystemTime>]) -> Duration {
    let fine = mtimes.iter().flatten().all(|t| {
        t.duration_since(UNIX_EPOCH)
            .is_ok_and(|d| d.subsec_nanos() != 0)
    });
    if fine {
        Duration::from_millis(50)
    } else {
        Duration::from_secs(1)
    }
}

/// After our own changes kept the stamps in step, a full look at least this often anyway.
const SAFETY_SCAN: Duration = Duration::from_secs(5);

/// What a refresh compares to decide whether anything can have changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DirStamps {
    new: Option<SystemTime>,
    cur: Option<SystemTime>,
    uidlist: Option<Stamp>,
}

/// A Maildir opened for a session.
#[derive(Debug)]
pub struct Mailbox {
    dir: PathBuf,
    readonly: bool,
    opts: LockOptions,
    uid_validity: u32,
    next_uid: u32,
    /// Ascending by UID.
    msgs: Vec<Message>,
    /// Uidlist extension fields (`W<vsize>` ...) of the few messages that have them.
    ext: HashMap<u32, Box<str>>,
    keywords: Keywords,
    keywords_mtime: Option<SystemTime>,
    /// Directory stamps of the last scan, None when the next refresh must scan anyway.
    seen: Option<DirStamps>,
    uidlist_stamp: Option<Stamp>,
    /// UIDs whose flags we learnt about outside a refresh (found again after a rename).
    pending_flags: Vec<u32>,
    /// The modseq log (None when it cannot be written: numbers then live in memory only).
    modseq_log: Option<modseq::Log>,
    highest_modseq: u64,
    /// Expunges as (modseq, uid), ascending: what sessions have not been told yet is here.
    expunged_log: Vec<(u64, u32)>,
    /// Recent flag changes and arrivals as (modseq, uid), ascending, bounded: lets a session
    /// find what changed since its last look without scanning every message.
    change_log: std::collections::VecDeque<(u64, u32)>,
    /// Changes numbered at the end of the current operation.
    unnumbered: Vec<(u32, modseq::Sig)>,
    /// uidlist lines of messages this table expunged, left for a later rewrite.
    stale_lines: usize,
    last_scan: std::time::Instant,
    /// `seen` was moved along with our own changes since the last full scan.
    own_since_scan: bool,
}

/// How many recent changes [`Mailbox`] keeps in memory for sessions to catch up.
const CHANGE_LOG: usize = 8192;

/// How [`Mailbox::change_flags`] changes a message's flags (STORE's `+FLAGS`, `-FLAGS`,
/// `FLAGS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    Add,
    Remove,
    Replace,
}

impl Mailbox {
    /// Opens the Maildir at `path` with Dovecot's lock timeouts. See [`Mailbox::open_with`].
    pub fn open(path: &Path, readonly: bool) -> Result<Mailbox, StoreError> {
        Mailbox::open_with(path, readonly, LockOptions::DOVECOT)
    }

    /// Opens the Maildir at `path`: scans `new/` and `cur/`, gives UIDs to files that have
    /// none (writing `dovecot-uidlist`), drops vanished ones and, unless `readonly`, moves
    /// `new/` files to `cur/` as `\Recent` messages of this session.
    pub fn open_with(
        path: &Path,
        readonly: bool,
        opts: LockOptions,
    ) -> Result<Mailbox, StoreError> {
        if !path.join("cur").is_dir() {
            return Err(StoreError::NoSuchMailbox {
                path: path.to_path_buf(),
            });
        }
        let mut mb = Mailbox {
            dir: path.to_path_buf(),
            readonly,
            opts,
            uid_validity: 0,
            next_uid: 1,
            msgs: Vec::new(),
            ext: HashMap::new(),
            keywords: Keywords::default(),
            keywords_mtime: None,
            seen: None,
            uidlist_stamp: None,
            pending_flags: Vec::new(),
            modseq_log: None,
            highest_modseq: 0,
            expunged_log: Vec::new(),
            change_log: Default::default(),
            unnumbered: Vec::new(),
            stale_lines: 0,
            last_scan: std::time::Instant::now(),
            own_since_scan: false,
        };
        mb.sync(true)?;
        Ok(mb)
    }

    /// The Maildir's path.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn is_readonly(&self) -> bool {
        self.readonly
    }
    pub fn uid_validity(&self) -> u32 {
        self.uid_validity
    }
    /// The UID the next message will get.
    pub fn uid_next(&self) -> u32 {
        self.next_uid
    }
    /// The keyword names; a message's [`Message::keyword_bits`] index into them.
    pub fn keywords(&self) -> &Keywords {
        &self.keywords
    }
    /// Number of messages.
    pub fn len(&self) -> usize {
        self.msgs.len()
    }
    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }
    /// The messages in sequence order (ascending UIDs).
    pub fn messages(&self) -> &[Message] {
        &self.msgs
    }
    fn index(&self, uid: u32) -> Option<usize> {
        self.msgs.binary_search_by_key(&uid, |m| m.uid).ok()
    }
    /// The message with `uid`.
    pub fn message(&self, uid: u32) -> Option<&Message> {
        self.index(uid).map(|i| &self.msgs[i])
    }
    /// The sequence number (1-based) of `uid`.
    pub fn seq_of(&self, uid: u32) -> Option<u32> {
        self.index(uid).map(|i| i as u32 + 1)
    }
    /// The UID at sequence number `seq` (1-based).
    pub fn uid_at(&self, seq: u32) -> Option<u32> {
        let i = (seq as usize).checked_sub(1)?;
        self.msgs.get(i).map(|m| m.uid)
    }
    /// The messages whose UIDs lie in `first..=last`, as 0-based indexes (sequence − 1).
    pub fn uid_range(&self, first: u32, last: u32) -> std::ops::Range<usize> {
        let lo = self.msgs.partition_point(|m| m.uid < first);
        let hi = self.msgs.partition_point(|m| m.uid <= last);
        lo..hi.max(lo)
    }
    /// The keyword names of message `uid`.
    pub fn keyword_names(&self, uid: u32) -> Vec<&str> {
        self.message(uid)
            .map(|m| self.keywords.names_of(m.keywords).collect())
            .unwrap_or_default()
    }
    /// The path of message `uid`'s file as last seen.
    pub fn path(&self, uid: u32) -> Option<PathBuf> {
        self.message(uid).map(|m| self.file_path(m))
    }
    fn file_path(&self, m: &Message) -> PathBuf {
        self.dir.join(m.sub()).join(&*m.name)
    }

    /// Opens message `uid`'s file, finding it again when another process renamed it.
    pub fn open_file(&mut self, uid: u32) -> Result<File, StoreError> {
        let idx = self.index(uid).ok_or(StoreError::NoSuchMessage { uid })?;
        for _ in 0..3 {
            let p = self.file_path(&self.msgs[idx]);
            match File::open(&p) {
                Ok(f) => return Ok(f),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if !self.locate(idx)? {
                        break;
                    }
                }
                Err(e) => return Err(io_at(&p)(e)),
            }
        }
        Err(StoreError::NoSuchMessage { uid })
    }

    /// The message's size in bytes on disk (RFC822 size as stored).
    pub fn size(&mut self, uid: u32) -> Result<u64, StoreError> {
        let idx = self.index(uid).ok_or(StoreError::NoSuchMessage { uid })?;
        if self.msgs[idx].size == UNKNOWN {
            let meta = self.open_file(uid)?.metadata();
            let p = self.file_path(&self.msgs[idx]);
            let meta = meta.map_err(io_at(&p))?;
            self.msgs[idx].size = meta.len();
            self.msgs[idx].mtime = meta.mtime();
        }
        Ok(self.msgs[idx].size)
    }

    /// The size IMAP reports (RFC822.SIZE): the message with CRLF line ends. Read from
    /// `,W=` or the uidlist; else counted once and kept (and written to the uidlist as a `W`
    /// field with its next rewrite, as Dovecot does).
    pub fn vsize(&mut self, uid: u32) -> Result<u64, StoreError> {
        let idx = self.index(uid).ok_or(StoreError::NoSuchMessage { uid })?;
        if self.msgs[idx].vsize == UNKNOWN {
            let mut f = self.open_file(uid)?;
            let p = self.file_path(&self.msgs[idx]);
            let c = count(&mut f).map_err(io_at(&p))?;
            let m = &mut self.msgs[idx];
            m.vsize = c.vsize;
            m.size = c.size;
            let ext = uidlist::set_ext(
                self.ext.get(&uid).map(|e| &**e),
                'W',
                Some(&c.vsize.to_string()),
            );
            if let Some(e) = ext {
                self.ext.insert(uid, e);
            }
        }
        Ok(self.msgs[idx].vsize)
    }

    /// INTERNALDATE (Unix seconds) and RFC822.SIZE together, with one lookup of the
    /// message (SORT asks them of every message).
    pub fn date_and_vsize(&mut self, uid: u32) -> Result<(i64, u64), StoreError> {
        let idx = self.index(uid).ok_or(StoreError::NoSuchMessage { uid })?;
        let m = &self.msgs[idx];
        if m.mtime != NO_MTIME && m.vsize != UNKNOWN {
            return Ok((m.mtime, m.vsize));
        }
        let t = self.internal_date(uid)?;
        let secs = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs() as i64,
            Err(e) => -(e.duration().as_secs() as i64),
        };
        Ok((secs, self.vsize(uid)?))
    }

    /// INTERNALDATE: the file's modification time.
    pub fn internal_date(&mut self, uid: u32) -> Result<SystemTime, StoreError> {
        let idx = self.index(uid).ok_or(StoreError::NoSuchMessage { uid })?;
        if self.msgs[idx].mtime == NO_MTIME {
            let meta = self.open_file(uid)?.metadata();
            let p = self.file_path(&self.msgs[idx]);
            let meta = meta.map_err(io_at(&p))?;
            self.msgs[idx].mtime = meta.mtime();
            self.msgs[idx].size = meta.len();
        }
        let t = self.msgs[idx].mtime;
        Ok(if t >= 0 {
            UNIX_EPOCH + Duration::from_secs(t as u64)
        } else {
            UNIX_EPOCH - Duration::from_secs(t.unsigned_abs())
        })
    }

    /// MESSAGES, RECENT, UNSEEN, UIDNEXT, UIDVALIDITY and SIZE of this session's view.
    pub fn status(&mut self) -> Result<Status, StoreError> {
        let mut size = 0u64;
        let uids: Vec<u32> = self.msgs.iter().map(|m| m.uid).collect();
        for uid in uids {
            size += self.vsize(uid).unwrap_or(0);
        }
        Ok(Status {
            messages: self.msgs.len() as u32,
            // STATUS RECENT: the messages no session has been told of yet.
            recent: {
                let first = state::first_recent(&self.dir).unwrap_or(u32::MAX);
                self.msgs.iter().filter(|m| m.uid >= first).count() as u32
            },
            unseen: self
                .msgs
                .iter()
                .filter(|m| !m.flags.contains(Flags::SEEN))
                .count() as u32,
            deleted: self
                .msgs
                .iter()
                .filter(|m| m.flags.contains(Flags::DELETED))
                .count() as u32,
            uid_next: self.next_uid,
            uid_validity: self.uid_validity,
            size,
        })
    }

    /// STATUS of the Maildir at `path` without opening it for a session: from the uidlist and
    /// the file names when every file has a UID; else (files waiting for UIDs, no or a broken
    /// uidlist) through a read-only open, which assigns them. RECENT counts the messages no
    /// session has been told of yet ([`super::state`]).
    pub fn status_of(path: &Path) -> Result<Status, StoreError> {
        let entries = scan(path)?;
        let list = match uidlist::load(path).map_err(io_at(&path.join(uidlist::FILE_NAME)))? {
            Loaded::Ok(l, _) => l,
            _ => return Mailbox::open(path, true)?.status(),
        };
        let by_name = list.by_name();
        let first_recent = state::first_recent(path).unwrap_or(u32::MAX);
        let mut st = Status {
            uid_next: list.next_uid,
            uid_validity: list.uid_validity,
            ..Status::default()
        };
        for e in &entries {
            let Some(rec) = by_name.get(e.base()) else {
                return Mailbox::open(path, true)?.status();
            };
            st.messages += 1;
            st.recent += u32::from(rec.uid >= first_recent);
            let flags = parse_info(&e.name).0;
            st.unseen += u32::from(!flags.contains(Flags::SEEN));
            st.deleted += u32::from(flags.contains(Flags::DELETED));
            let vsize =
                name_size(&e.name, 'W').or_else(|| rec.ext_value('W').and_then(|v| v.parse().ok()));
            st.size += match vsize {
                Some(v) => v,
                None => {
                    let p = path
                        .join(if e.in_new { "new" } else { "cur" })
                        .join(&e.name);
                    File::open(&p)
                        .and_then(|mut f| count(&mut f))
                        .map(|c| c.vsize)
                        .unwrap_or(0)
                }
            };
        }
        Ok(st)
    }

    /// Looks at the disk again: new messages (with UIDs assigned), messages expunged by
    /// others, flag changes made by others. Cheap when nothing changed: it compares the
    /// modification times of `new/`, `cur/` and the uidlist with the last scan first.
    pub fn refresh(&mut self) -> Result<Changes, StoreError> {
        self.sync(false)
    }

    fn stamps(&self) -> Result<DirStamps, StoreError> {
        let ul = self.dir.join(uidlist::FILE_NAME);
        Ok(DirStamps {
            new: dir_mtime(&self.dir.join("new"))?,
            cur: dir_mtime(&self.dir.join("cur"))?,
            uidlist: uidlist::stamp(&self.dir).map_err(io_at(&ul))?,
        })
    }

    fn refresh_keywords(&mut self) -> Result<(), StoreError> {
        let p = self.dir.join(keywords::FILE_NAME);
        let m = match fs::metadata(&p) {
            Ok(m) => m.modified().ok(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_at(&p)(e)),
        };
        if m != self.keywords_mtime || (m.is_none() && !self.keywords.is_empty()) {
            let (k, m) = keywords::read(&self.dir)?;
            self.keywords = k;
            self.keywords_mtime = m;
        }
        Ok(())
    }

    fn sync(&mut self, initial: bool) -> Result<Changes, StoreError> {
        let stamps = self.stamps()?;
        if stamps.cur.is_none() {
            return Err(StoreError::NoSuchMailbox {
                path: self.dir.clone(),
            });
        }
        self.refresh_keywords()?;
        let mut changes = Changes {
            flags: std::mem::take(&mut self.pending_flags),
            ..Changes::default()
        };
        // Our own renames and unlinks keep `seen` in step (see `own_change`); a full look now
        // and then still finds what another writer did in the same tick as one of ours.
        let safety = self.own_since_scan && self.last_scan.elapsed() > SAFETY_SCAN;
        if !initial && !safety && self.seen == Some(stamps) {
            changes.flags.sort_unstable();
            changes.flags.dedup();
            self.number(&changes, false);
            return Ok(changes);
        }
        let scan_time = SystemTime::now();
        let mut entries = scan(&self.dir)?;

        // The uidlist, when it changed since we last read it.
        let mut listed: Option<Uidlist> = None;
        let mut list_broken = false;
        if initial || stamps.uidlist != self.uidlist_stamp || stamps.uidlist.is_none() {
            match uidlist::load(&self.dir).map_err(io_at(&self.dir.join(uidlist::FILE_NAME)))? {
                Loaded::Ok(l, st) => {
                    if !initial && l.uid_validity != self.uid_validity {
                        self.reset(&mut changes);
                    }
                    self.take_list_state(&l);
                    self.uidlist_stamp = Some(st);
                    listed = Some(l);
                }
                Loaded::Missing | Loaded::Corrupt(_) => list_broken = true,
            }
        }
        let mut uids = self.resolve(&entries, listed.as_ref());
        drop(listed);

        if list_broken || uids.contains(&0) {
            match DotLock::acquire(&self.dir.join(uidlist::FILE_NAME), self.opts) {
                Ok(lock) => {
                    entries = scan(&self.dir)?;
                    let list = self.assign_locked(lock, &mut entries, &mut changes)?;
                    uids = self.resolve(&entries, Some(&list));
                }
                Err(LockError::Io { err, path })
                    if self.readonly
                        && matches!(
                            err.kind(),
                            io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
                        ) =>
                {
                    crate::warn!(
                        "maildir",
                        "{}: {err}; new messages stay invisible until a writable session gives \
                         them UIDs",
                        path.display()
                    );
                }
                Err(e) => return Err(e.into()),
            }
        }

        // Messages we knew that the scan did not see: look once more before calling them
        // expunged (a rename by another process can hide a file from one readdir).
        let present: HashSet<u32> = uids.iter().copied().filter(|&u| u != 0).collect();
        if self.msgs.iter().any(|m| !present.contains(&m.uid)) {
            let missing: HashMap<&str, u32> = self
                .msgs
                .iter()
                .filter(|m| !present.contains(&m.uid))
                .map(|m| (m.base(), m.uid))
                .collect();
            let mut extra = Vec::new();
            for e in scan(&self.dir)? {
                if let Some(&uid) = missing.get(e.base()) {
                    extra.push((e, uid));
                }
            }
            for (e, uid) in extra {
                entries.push(e);
                uids.push(uid);
            }
        }

        self.rebuild(entries, uids, &mut changes);
        if !self.readonly {
            self.move_new_to_cur();
        }
        // A directory changed less than a timestamp tick before the scan may change again
        // without its mtime moving: trust the stamps only once they are older than that. A
        // tick is a second on file systems with whole-second mtimes, a few milliseconds where
        // mtimes carry nanoseconds (ext4, xfs, NFSv3/4 on them).
        let tick = settle_time(&[stamps.new, stamps.cur]);
        let settled = [stamps.new, stamps.cur]
            .iter()
            .flatten()
            .all(|t| scan_time.duration_since(*t).is_ok_and(|d| d > tick));
        self.seen = settled.then_some(stamps);
        self.last_scan = std::time::Instant::now();
        self.own_since_scan = false;
        changes.flags.sort_unstable();
        changes.flags.dedup();
        self.number(&changes, initial);
        Ok(changes)
    }

    /// Gives the changes a refresh found their modification sequences. The first look also
    /// reconciles with the modseq log: a message whose flags differ from its last line there
    /// (changed while no s3imap watched, by Dovecot say) or that has no line gets a new number;
    /// a UID the log has but the disk does not was expunged meanwhile.
    fn number(&mut self, changes: &Changes, initial: bool) {
        if initial || changes.uid_validity_changed {
            self.expunged_log.clear();
            self.change_log.clear();
            let replay = match modseq::Log::open(&self.dir, self.uid_validity) {
                Ok((log, replay)) => {
                    self.highest_modseq = self.highest_modseq.max(log.highest);
                    self.modseq_log = Some(log);
                    replay
                }
                Err(e) => {
                    crate::warn!(
                        "maildir",
                        "{}: {e}; modification sequences are kept in memory only",
                        self.dir.join(modseq::FILE_NAME).display()
                    );
                    self.modseq_log = None;
                    modseq::Replay::default()
                }
            };
            let mut live = HashSet::with_capacity(self.msgs.len());
            for i in 0..self.msgs.len() {
                let m = &mut self.msgs[i];
                live.insert(m.uid);
                match replay.state.get(&m.uid) {
                    Some(&(ms, sig)) if sig == m.sig() => m.modseq = ms,
                    _ => {
                        let (uid, sig) = (m.uid, m.sig());
                        self.unnumbered.push((uid, sig));
                    }
                }
            }
            let mut gone: Vec<(u64, u32)> = Vec::new();
            for (&uid, &(ms, sig)) in &replay.state {
                match sig {
                    modseq::Sig::Expunged => gone.push((ms, uid)),
                    modseq::Sig::Flags(..) if !live.contains(&uid) => {
                        self.unnumbered.push((uid, modseq::Sig::Expunged));
                    }
                    modseq::Sig::Flags(..) => {}
                }
            }
            gone.sort_unstable();
            self.expunged_log = gone;
        } else {
            for &uid in changes.new.iter().chain(&changes.flags) {
                if let Some(m) = self.message(uid) {
                    let sig = m.sig();
                    self.unnumbered.push((uid, sig));
                }
            }
            for e in &changes.expunged {
                self.unnumbered.push((e.uid, modseq::Sig::Expunged));
            }
        }
        self.flush_numbers();
    }

    /// Numbers (and logs) what [`Mailbox::unnumbered`] holds.
    fn flush_numbers(&mut self) {
        if self.unnumbered.is_empty() {
            return;
        }
        let todo = std::mem::take(&mut self.unnumbered);
        let numbers = match self.modseq_log.as_mut().map(|l| l.append(&todo)) {
            Some(Ok(n)) => n,
            other => {
                if let Some(Err(e)) = other {
                    crate::warn!(
                        "maildir",
                        "{}: {e}; modification sequences are kept in memory only",
                        self.dir.join(modseq::FILE_NAME).display()
                    );
                    self.modseq_log = None;
                }
                let start = self.highest_modseq;
                (1..=todo.len() as u64).map(|i| start + i).collect()
            }
        };
        for (&(uid, sig), &ms) in todo.iter().zip(&numbers) {
            self.highest_modseq = self.highest_modseq.max(ms);
            match sig {
                modseq::Sig::Expunged => self.expunged_log.push((ms, uid)),
                modseq::Sig::Flags(..) => {
                    if let Some(i) = self.index(uid) {
                        self.msgs[i].modseq = ms;
                    }
                    self.change_log.push_back((ms, uid));
                    if self.change_log.len() > CHANGE_LOG {
                        self.change_log.pop_front();
                    }
                }
            }
        }
        if let Some(log) = self.modseq_log.as_mut()
            && log.wants_compaction(self.msgs.len())
        {
            let entries: Vec<(u32, u64, modseq::Sig)> = self
                .msgs
                .iter()
                .map(|m| (m.uid, m.modseq, m.sig()))
                .chain(
                    self.expunged_log
                        .iter()
                        .map(|&(ms, uid)| (uid, ms, modseq::Sig::Expunged)),
                )
                .collect();
            if let Err(e) = log.compact(entries.into_iter()) {
                crate::warn!(
                    "maildir",
                    "{}: compacting the modseq log: {e}",
                    self.dir.display()
                );
            }
        }
    }

    /// The highest modification sequence of this mailbox (RFC 7162 HIGHESTMODSEQ).
    pub fn highest_modseq(&self) -> u64 {
        self.highest_modseq
    }

    /// UIDs whose flags changed or that arrived after modseq `since`, ascending by modseq
    /// (a UID may repeat).
    pub fn changed_since(&self, since: u64) -> Vec<u32> {
        match self.change_log.front() {
            Some(&(first, _)) if first <= since + 1 => {
                let from = self.change_log.partition_point(|&(m, _)| m <= since);
                self.change_log.range(from..).map(|&(_, u)| u).collect()
            }
            _ if since >= self.highest_modseq => Vec::new(),
            // Older than what is kept in memory: look at every message.
            _ => self
                .msgs
                .iter()
                .filter(|m| m.modseq > since)
                .map(|m| m.uid)
                .collect(),
        }
    }

    /// UIDs expunged after modseq `since`, with their modseqs, ascending by modseq.
    pub fn expunged_since(&self, since: u64) -> &[(u64, u32)] {
        let from = self.expunged_log.partition_point(|&(m, _)| m <= since);
        &self.expunged_log[from..]
    }

    /// Forgets every message (the uidlist was rebuilt elsewhere).
    fn reset(&mut self, changes: &mut Changes) {
        crate::warn!(
            "maildir",
            "{}: UIDVALIDITY changed under this session; all UIDs are new",
            self.dir.display()
        );
        changes.uid_validity_changed = true;
        self.msgs.clear();
        self.ext.clear();
        self.next_uid = 1;
    }

    fn take_list_state(&mut self, l: &Uidlist) {
        self.uid_validity = l.uid_validity;
        self.next_uid = self.next_uid.max(l.next_uid);
        for r in &l.records {
            if let Some(e) = &r.ext {
                self.ext.insert(r.uid, e.clone());
            }
        }
    }

    /// The UID of each entry (0: none yet), from our messages, then from `list`.
    fn resolve(&self, entries: &[Entry], list: Option<&Uidlist>) -> Vec<u32> {
        let mine: HashMap<&str, u32> = self.msgs.iter().map(|m| (m.base(), m.uid)).collect();
        let listed: HashMap<&str, u32> = list
            .map(|l| l.records.iter().map(|r| (&*r.name, r.uid)).collect())
            .unwrap_or_default();
        entries
            .iter()
            .map(|e| {
                let b = e.base();
                listed.get(b).or_else(|| mine.get(b)).copied().unwrap_or(0)
            })
            .collect()
    }

    /// Under the uidlist lock: reads the list again (rebuilding a missing or broken one), gives
    /// UIDs to the files that have none in arrival order, drops lines of files gone from disk,
    /// and writes the list. Returns it.
    fn assign_locked(
        &mut self,
        lock: DotLock,
        entries: &mut Vec<Entry>,
        changes: &mut Changes,
    ) -> Result<Uidlist, StoreError> {
        let ul_path = self.dir.join(uidlist::FILE_NAME);
        let have_state = self.uid_validity != 0;
        let loaded = uidlist::load(&self.dir).map_err(io_at(&ul_path))?;
        let mut dirty = false;
        let mut list = match loaded {
            Loaded::Ok(l, _) => {
                if have_state && l.uid_validity != self.uid_validity {
                    self.reset(changes);
                }
                self.take_list_state(&l);
                l
            }
            Loaded::Missing if have_state => {
                dirty = true;
                self.list_from_memory()
            }
            Loaded::Corrupt(e) if have_state => {
                crate::warn!(
                    "maildir",
                    "{}: {e}; rewriting it from this session's UIDs",
                    ul_path.display()
                );
                dirty = true;
                self.list_from_memory()
            }
            Loaded::Missing => {
                dirty = true;
                Uidlist::new(uidlist::next_uid_validity(uidlist::list_root(&self.dir)))
            }
            Loaded::Corrupt(e) => {
                let list = Uidlist::new(uidlist::next_uid_validity(uidlist::list_root(&self.dir)));
                crate::warn!(
                    "maildir",
                    "{}: {e}; rebuilding it with the new UIDVALIDITY {} (clients will \
                     download this folder again)",
                    ul_path.display(),
                    list.uid_validity
                );
                dirty = true;
                list
            }
        };
        self.uid_validity = list.uid_validity;

        // Lines whose files are gone: confirm with a second look before dropping them.
        let on_disk: HashSet<&str> = entries.iter().map(Entry::base).collect();
        let gone: HashSet<String> = list
            .records
            .iter()
            .filter(|r| !on_disk.contains(&*r.name))
            .map(|r| r.name.to_string())
            .collect();
        if !gone.is_empty() {
            let again: Vec<Entry> = scan(&self.dir)?
                .into_iter()
                .filter(|e| gone.contains(e.base()) && !on_disk.contains(e.base()))
                .collect();
            entries.extend(again);
        }
        let on_disk: HashSet<&str> = entries.iter().map(Entry::base).collect();
        let before = list.records.len();
        list.records.retain(|r| on_disk.contains(&*r.name));
        dirty |= list.records.len() != before;

        let listed: HashSet<&str> = list.records.iter().map(|r| &*r.name).collect();
        let mut fresh: Vec<&Entry> = entries
            .iter()
            .filter(|e| !listed.contains(e.base()))
            .collect();
        fresh.sort_by(|a, b| uidlist::arrival_cmp(&a.name, &b.name));
        for e in fresh {
            if list.next_uid == u32::MAX {
                return Err(StoreError::UidsExhausted {
                    path: self.dir.clone(),
                });
            }
            list.records.push(Record {
                uid: list.next_uid,
                ext: None,
                name: e.base().into(),
            });
            list.next_uid += 1;
            dirty = true;
        }
        list.records.sort_by_key(|r| r.uid);
        // Persist sizes we counted ourselves.
        for r in &mut list.records {
            if r.ext.is_none()
                && let Some(e) = self.ext.get(&r.uid)
            {
                r.ext = Some(e.clone());
                dirty = true;
            }
        }
        if dirty {
            let st = uidlist::write(lock, &mut list).map_err(io_at(&ul_path))?;
            self.uidlist_stamp = Some(st);
        }
        self.next_uid = list.next_uid;
        Ok(list)
    }

    /// A uidlist made from this session's messages (the file vanished or broke while we had
    /// it open: keep our UIDVALIDITY and UIDs, as Dovecot does from its index).
    fn list_from_memory(&self) -> Uidlist {
        let mut l = Uidlist::new(self.uid_validity);
        l.next_uid = self.next_uid;
        l.records = self
            .msgs
            .iter()
            .map(|m| Record {
                uid: m.uid,
                ext: self.ext.get(&m.uid).cloned(),
                name: m.base().into(),
            })
            .collect();
        l
    }

    /// Replaces the message list with the scanned entries, filling `changes`.
    fn rebuild(&mut self, entries: Vec<Entry>, uids: Vec<u32>, changes: &mut Changes) {
        let mut found: Vec<(u32, Entry)> = uids
            .into_iter()
            .zip(entries)
            .filter(|(u, _)| *u != 0)
            .collect();
        found.sort_by_key(|(u, _)| *u);
        found.dedup_by_key(|(u, _)| *u);

        let old = std::mem::take(&mut self.msgs);
        let mut old_it = old.into_iter().peekable();
        let mut removed = 0u32;
        let mut seq = 0u32;
        let mut msgs = Vec::with_capacity(found.len());
        for (uid, e) in found {
            // Old messages below this UID that are not on disk any more.
            while let Some(o) = old_it.peek() {
                if o.uid >= uid {
                    break;
                }
                seq += 1;
                changes.expunged.push(Expunged {
                    seq: seq - removed,
                    uid: o.uid,
                });
                removed += 1;
                self.ext.remove(&o.uid);
                old_it.next();
            }
            let (flags, kw) = parse_info(&e.name);
            let state = if e.in_new { IN_NEW } else { 0 };
            if let Some(o) = old_it.next_if(|o| o.uid == uid) {
                seq += 1;
                if o.flags != flags || o.keywords != kw {
                    changes.flags.push(uid);
                }
                msgs.push(Message {
                    flags,
                    keywords: kw,
                    state,
                    name: e.name.into(),
                    ..o
                });
                continue;
            }
            let ext = self.ext.get(&uid);
            let size = name_size(&e.name, 'S')
                .or_else(|| ext.and_then(|x| uidlist::ext_value(x, 'S')?.parse().ok()))
                .unwrap_or(UNKNOWN);
            let vsize = name_size(&e.name, 'W')
                .or_else(|| ext.and_then(|x| uidlist::ext_value(x, 'W')?.parse().ok()))
                .unwrap_or(UNKNOWN);
            changes.new.push(uid);
            msgs.push(Message {
                uid,
                keywords: kw,
                flags,
                state,
                size,
                vsize,
                mtime: NO_MTIME,
                modseq: 0,
                name: e.name.into(),
            });
        }
        for o in old_it {
            seq += 1;
            changes.expunged.push(Expunged {
                seq: seq - removed,
                uid: o.uid,
            });
            removed += 1;
            self.ext.remove(&o.uid);
        }
        self.msgs = msgs;
        if let Some(last) = self.msgs.last() {
            self.next_uid = self.next_uid.max(last.uid + 1);
        }
    }

    /// Moves every `new/` message to `cur/` (adding `:2,`), as Dovecot does once a session
    /// has seen it (whether it is `\Recent` is [`super::state`]'s business).
    fn move_new_to_cur(&mut self) {
        for i in 0..self.msgs.len() {
            if !self.msgs[i].in_new() {
                continue;
            }
            let m = &self.msgs[i];
            let to = if m.name.contains(':') {
                m.name.to_string()
            } else {
                format!("{}:2,", m.name)
            };
            let from = self.dir.join("new").join(&*m.name);
            match fs::rename(&from, self.dir.join("cur").join(&to)) {
                Ok(()) => {
                    let m = &mut self.msgs[i];
                    m.name = to.into();
                    m.state &= !IN_NEW;
                }
                // Another session moved it first: the next look finds it in cur/.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => crate::warn!(
                    "maildir",
                    "cannot move {} to cur/: {e}; it stays in new/",
                    from.display()
                ),
            }
        }
    }

    /// Finds message `idx`'s file again by its base name after another process renamed or
    /// moved it. False when it is gone.
    fn locate(&mut self, idx: usize) -> Result<bool, StoreError> {
        let base = self.msgs[idx].base().to_string();
        let Some(e) = scan(&self.dir)?.into_iter().find(|e| e.base() == base) else {
            return Ok(false);
        };
        let (flags, kw) = parse_info(&e.name);
        let m = &mut self.msgs[idx];
        if m.flags != flags || m.keywords != kw {
            self.pending_flags.push(m.uid);
        }
        m.flags = flags;
        m.keywords = kw;
        m.state = if e.in_new { IN_NEW } else { 0 };
        m.name = e.name.into();
        Ok(true)
    }

    fn check_writable(&self) -> Result<(), StoreError> {
        if self.readonly {
            return Err(StoreError::ReadOnly {
                path: self.dir.clone(),
            });
        }
        Ok(())
    }

    /// Runs one of our own changes to the directories (a rename, an unlink, a link): when
    /// nobody else changed them since our last look, the stamps after it are ours too, and the
    /// next refresh need not read the directories again.
    fn own_change<R>(&mut self, f: impl FnOnce(&mut Mailbox) -> R) -> R {
        let trusted = self.seen.is_some() && self.stamps().ok() == self.seen;
        let r = f(self);
        if trusted {
            self.seen = self.stamps().ok();
            self.own_since_scan = true;
        }
        r
    }

    /// Sets message `uid`'s flags and keywords to exactly `flags` and `keywords`.
    pub fn set_flags(
        &mut self,
        uid: u32,
        flags: Flags,
        keywords: &[&str],
    ) -> Result<(), StoreError> {
        self.change_flags(uid, FlagOp::Replace, flags, keywords)
            .map(|_| ())
    }

    /// Changes message `uid`'s flags and keywords by `op`, applied to the flags the message has
    /// on disk now, not to this session's last look: the file is renamed from the name the
    /// flags were read from, so a rename by another session or process in between makes the
    /// rename fail; the message is found again and the change applied to its new flags (a
    /// compare-and-swap on the file name). Keywords new to this mailbox are added to
    /// `dovecot-keywords`; letters without a name are kept. Returns whether anything changed.
    pub fn change_flags(
        &mut self,
        uid: u32,
        op: FlagOp,
        flags: Flags,
        keywords: &[&str],
    ) -> Result<bool, StoreError> {
        self.check_writable()?;
        let idx = self.index(uid).ok_or(StoreError::NoSuchMessage { uid })?;
        let bits = if op == FlagOp::Remove {
            // Only names the mailbox has can be removed; others are not set anyway.
            keywords
                .iter()
                .filter_map(|k| self.keywords.index_of(k))
                .fold(0u32, |acc, i| acc | 1 << i)
        } else {
            match self.keywords.bits_of(keywords) {
                Ok(b) => b,
                Err(missing) => {
                    let lock = DotLock::acquire(&self.dir.join(uidlist::FILE_NAME), self.opts)?;
                    let k = keywords::ensure(&self.dir, &missing, &lock, self.opts)?;
                    drop(lock);
                    self.keywords = k;
                    self.keywords_mtime = keywords::read(&self.dir)?.1;
                    self.keywords.bits_of(keywords).unwrap_or(0)
                }
            }
        };
        let unnamed: u32 = (0..keywords::MAX_KEYWORDS)
            .filter(|&i| self.keywords.name(i).is_none())
            .fold(0, |acc, i| acc | 1 << i);
        for _ in 0..5 {
            let m = &self.msgs[idx];
            let (new_flags, new_bits) = match op {
                FlagOp::Add => (m.flags | flags, m.keywords | bits),
                FlagOp::Remove => {
                    let mut f = m.flags;
                    f.remove(flags);
                    (f, m.keywords & !bits)
                }
                FlagOp::Replace => (flags, bits | (m.keywords & unnamed)),
            };
            let changed = new_flags != m.flags || new_bits != m.keywords;
            let to = with_flags(&m.name, new_flags, new_bits);
            if !m.in_new() && *m.name == *to {
                return Ok(changed);
            }
            let from = self.file_path(m);
            let dest = self.dir.join("cur").join(&to);
            match self.own_change(|_| fs::rename(&from, &dest)) {
                Ok(()) => {
                    let m = &mut self.msgs[idx];
                    m.name = to.into();
                    m.flags = new_flags;
                    m.keywords = new_bits;
                    m.state &= !IN_NEW;
                    if changed {
                        let sig = m.sig();
                        self.unnumbered.push((uid, sig));
                        self.flush_numbers();
                    }
                    return Ok(changed);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if !self.locate(idx)? {
                        break;
                    }
                }
                Err(e) => return Err(io_at(&from)(e)),
            }
        }
        Err(StoreError::NoSuchMessage { uid })
    }

    /// The caller tells the client message `uid`'s flags itself: no need to report them again
    /// as a change with the next refresh.
    pub fn flags_reported(&mut self, uid: u32) {
        self.pending_flags.retain(|&u| u != uid);
    }

    /// Removes messages `uids` (unknown or already vanished ones are skipped) and their
    /// uidlist lines. Returns what was removed, in `EXPUNGE` response order.
    pub fn expunge(&mut self, uids: &[u32]) -> Result<Vec<Expunged>, StoreError> {
        self.check_writable()?;
        let mut wanted: Vec<u32> = uids.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        let mut gone: HashSet<u32> = HashSet::new();
        for uid in wanted {
            let Some(idx) = self.index(uid) else {
                continue;
            };
            for _ in 0..3 {
                let p = self.file_path(&self.msgs[idx]);
                match self.own_change(|_| fs::remove_file(&p)) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        if !self.locate(idx)? {
                            break;
                        }
                    }
                    Err(e) => return Err(io_at(&p)(e)),
                }
            }
            gone.insert(uid);
        }
        if gone.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let mut removed = 0u32;
        for (i, m) in self.msgs.iter().enumerate() {
            if gone.contains(&m.uid) {
                out.push(Expunged {
                    seq: i as u32 + 1 - removed,
                    uid: m.uid,
                });
                removed += 1;
            }
        }
        self.msgs.retain(|m| !gone.contains(&m.uid));
        let mut gone_sorted: Vec<u32> = gone.iter().copied().collect();
        gone_sorted.sort_unstable();
        for u in &gone_sorted {
            self.ext.remove(u);
            self.unnumbered.push((*u, modseq::Sig::Expunged));
        }
        self.flush_numbers();
        // Their uidlist lines stay (every reader skips lines whose file is gone, and Dovecot
        // leaves them too) until there are many: then one rewrite drops them all, instead of
        // rewriting the whole list for every expunge.
        self.stale_lines += gone.len();
        if self.stale_lines > (self.msgs.len() / 4).max(256) {
            let ul_path = self.dir.join(uidlist::FILE_NAME);
            match DotLock::acquire(&ul_path, self.opts) {
                Ok(lock) => {
                    if let Loaded::Ok(mut l, _) =
                        uidlist::load(&self.dir).map_err(io_at(&ul_path))?
                    {
                        let live: HashSet<u32> = self.msgs.iter().map(|m| m.uid).collect();
                        // Lines of ours that are gone; lines above what we know are another
                        // writer's new messages and stay.
                        let top = self.msgs.last().map(|m| m.uid).unwrap_or(0);
                        l.records.retain(|r| r.uid > top || live.contains(&r.uid));
                        let st = uidlist::write(lock, &mut l).map_err(io_at(&ul_path))?;
                        self.uidlist_stamp = Some(st);
                        self.stale_lines = 0;
                    }
                }
                Err(e) => crate::warn!("maildir", "{e}; expunged lines stay in the uidlist"),
            }
        }
        Ok(out)
    }

    /// Appends a message to this mailbox (see [`append_to`]). It shows up here with the next
    /// [`Mailbox::refresh`].
    pub fn append(
        &self,
        src: impl Read,
        flags: Flags,
        keywords: &[&str],
        internal_date: Option<SystemTime>,
    ) -> Result<(u32, u32), StoreError> {
        append_to(&self.dir, src, flags, keywords, internal_date, self.opts)
    }

    /// Copies message `uid` into the Maildir `dest` (hard link when on the same file system,
    /// else a copy) with its flags, keywords and INTERNALDATE; `dest` assigns the UID.
    /// Returns (new UID, `dest`'s UIDVALIDITY) for COPYUID.
    pub fn copy_to(&mut self, uid: u32, dest: &Path) -> Result<(u32, u32), StoreError> {
        let idx = self.index(uid).ok_or(StoreError::NoSuchMessage { uid })?;
        let size = self.size(uid)?;
        let vsize = self.vsize(uid)?;
        let flags = self.msgs[idx].flags;
        let kw: Vec<String> = self
            .keywords
            .names_of(self.msgs[idx].keywords)
            .map(str::to_string)
            .collect();
        let kw: Vec<&str> = kw.iter().map(String::as_str).collect();
        let base = file_name(&unique_name(), size, vsize);
        for _ in 0..3 {
            let src = self.file_path(&self.msgs[idx]);
            match place(dest, &src, &base, flags, &kw, self.opts) {
                Err(StoreError::Io { err, .. }) if err.kind() == io::ErrorKind::NotFound => {
                    if !dest.join("cur").is_dir() {
                        return Err(StoreError::NoSuchMailbox {
                            path: dest.to_path_buf(),
                        });
                    }
                    if !self.locate(idx)? {
                        break;
                    }
                }
                r => return r.map(|(u, v, _)| (u, v)),
            }
        }
        Err(StoreError::NoSuchMessage { uid })
    }

    /// Stores a whole message into this (open, shared) mailbox: [`store_durable`], then the
    /// message joins the table at once, numbered, with no need to read the directory again
    /// (when nobody else added messages meanwhile; else the next refresh reads it).
    pub fn store_durable(
        &mut self,
        durable: &super::Durable,
        flags: Flags,
        keywords: &[&str],
    ) -> Result<Stored, StoreError> {
        let dir = self.dir.clone();
        let opts = self.opts;
        let before_list = self.stamps().ok().and_then(|s| s.uidlist);
        let (uid, validity, name) = self
            .own_change(|_| place(&dir, durable.path(), &durable.name(), flags, keywords, opts))?;
        let ours = validity == self.uid_validity
            && uid == self.next_uid
            && before_list.is_some()
            && before_list == self.uidlist_stamp;
        if !ours {
            self.seen = None;
            return Ok(Stored {
                uid,
                validity,
                name,
            });
        }
        self.refresh_keywords()?;
        let (f, kw) = parse_info(&name);
        self.msgs.push(Message {
            uid,
            keywords: kw,
            flags: f,
            state: 0,
            size: durable.size,
            vsize: durable.vsize,
            mtime: NO_MTIME,
            modseq: 0,
            name: name.as_str().into(),
        });
        self.next_uid = uid + 1;
        self.uidlist_stamp = self.stamps().ok().and_then(|s| s.uidlist);
        let sig = self.msgs.last().map(Message::sig).expect("just pushed");
        self.unnumbered.push((uid, sig));
        self.flush_numbers();
        Ok(Stored {
            uid,
            validity,
            name,
        })
    }

    /// Takes messages this mailbox just stored out again (a MULTIAPPEND that failed part
    /// way): expunged when the table has them, else (someone else wrote to the uidlist
    /// meanwhile, so they were not added) their files removed from `cur/` by name.
    pub fn withdraw(&mut self, stored: &[Stored]) -> Result<(), StoreError> {
        let (known, unknown): (Vec<&Stored>, Vec<&Stored>) =
            stored.iter().partition(|s| self.index(s.uid).is_some());
        let uids: Vec<u32> = known.iter().map(|s| s.uid).collect();
        self.expunge(&uids)?;
        let cur = self.dir.join("cur");
        for s in unknown {
            let p = cur.join(&s.name);
            match self.own_change(|_| fs::remove_file(&p)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_at(&p)(e)),
            }
            self.seen = None;
        }
        sync_dir(&cur).map_err(io_at(&cur))
    }
}

/// A message [`Mailbox::store_durable`] placed: its UID, the mailbox's UIDVALIDITY, and its
/// file name in `cur/`.
#[derive(Debug, Clone)]
pub struct Stored {
    pub uid: u32,
    pub validity: u32,
    pub name: String,
}

/// Counts the bytes and the CRLF size of a file.
fn count(f: &mut File) -> io::Result<SizeCounter> {
    let mut c = SizeCounter::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(c);
        }
        c.feed(&buf[..n]);
    }
}

fn hostname() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        let raw = fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| fs::read_to_string("/etc/hostname"))
            .unwrap_or_default();
        // The Maildir spec's escapes for the characters a name cannot carry.
        let h = raw
            .trim()
            .replace('/', "\\057")
            .replace(':', "\\072")
            .replace(',', "\\054");
        if h.is_empty() { "localhost".into() } else { h }
    })
}

/// A new unique part in Dovecot's style, `<secs>.M<usecs>P<pid>Q<n>.<host>`, whose
/// seconds and microseconds give Dovecot's arrival order.
pub fn unique_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{}.M{}P{}Q{}.{}",
        d.as_secs(),
        d.subsec_micros(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        hostname()
    )
}

/// Appends the message read from `src` to the Maildir `dir` through the delivery primitive
/// ([`super::Incoming`]: written once to `tmp/`, fsynced, its mtime set to `internal_date`),
/// then [`store_durable`]. Returns (UID, UIDVALIDITY) for APPENDUID.
pub fn append_to(
    dir: &Path,
    mut src: impl Read,
    flags: Flags,
    keywords: &[&str],
    internal_date: Option<SystemTime>,
    opts: LockOptions,
) -> Result<(u32, u32), StoreError> {
    if !dir.join("cur").is_dir() {
        return Err(StoreError::NoSuchMailbox {
            path: dir.to_path_buf(),
        });
    }
    let unique = unique_name();
    let mut incoming = super::Incoming::create(dir, &unique).map_err(io_at(&dir.join("tmp")))?;
    let tmp_path = incoming.path().to_path_buf();
    let io = io_at(&tmp_path);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        };
        incoming.write(&buf[..n]).map_err(&io)?;
    }
    let durable = incoming.finish(internal_date).map_err(&io)?;
    store_durable(dir, &durable, flags, keywords, opts)
}

/// Stores a message that is whole in `tmp/` ([`super::Durable`]) into `dir`: linked into
/// `cur/` with its flags and keywords, `cur/` fsynced, then given the next UID in
/// `dovecot-uidlist`, all under the uidlist lock. Returns (UID, UIDVALIDITY).
pub fn store_durable(
    dir: &Path,
    durable: &super::Durable,
    flags: Flags,
    keywords: &[&str],
    opts: LockOptions,
) -> Result<(u32, u32), StoreError> {
    place(dir, durable.path(), &durable.name(), flags, keywords, opts).map(|(u, v, _)| (u, v))
}

/// Links the complete file `src` into `<dir>/cur/` as `base` with the flags and keywords,
/// then records it in the uidlist; all under `dir`'s uidlist lock.
fn place(
    dir: &Path,
    src: &Path,
    base: &str,
    flags: Flags,
    keywords: &[&str],
    opts: LockOptions,
) -> Result<(u32, u32, String), StoreError> {
    let cur = dir.join("cur");
    if !cur.is_dir() {
        return Err(StoreError::NoSuchMailbox {
            path: dir.to_path_buf(),
        });
    }
    let ul_path = dir.join(uidlist::FILE_NAME);
    let lock = DotLock::acquire(&ul_path, opts)?;
    let mut intact = true;
    let list = match uidlist::load(dir).map_err(io_at(&ul_path))? {
        Loaded::Ok(l, _) => l,
        other => {
            intact = false;
            if let Loaded::Corrupt(e) = &other {
                crate::warn!("maildir", "{}: {e}; rebuilding it", ul_path.display());
            }
            // Give the files already there UIDs first, in arrival order.
            let mut l = Uidlist::new(uidlist::next_uid_validity(uidlist::list_root(dir)));
            let mut entries = scan(dir)?;
            entries.sort_by(|a, b| uidlist::arrival_cmp(&a.name, &b.name));
            for e in entries {
                l.records.push(Record {
                    uid: l.next_uid,
                    ext: None,
                    name: e.base().into(),
                });
                l.next_uid += 1;
            }
            l
        }
    };
    let bits = if keywords.is_empty() {
        0
    } else {
        let (kw, _) = keywords::read(dir)?;
        match kw.bits_of(keywords) {
            Ok(b) => b,
            Err(missing) => keywords::ensure(dir, &missing, &lock, opts)?
                .bits_of(keywords)
                .unwrap_or(0),
        }
    };
    let name = with_flags(base, flags, bits);
    let dest = cur.join(&name);
    match super::link_into(src, dir, super::Sub::Cur, &name) {
        Ok(super::Linked::New) => {}
        Ok(super::Linked::AlreadyThere) => {
            return Err(io_at(&dest)(io::ErrorKind::AlreadyExists.into()));
        }
        Err(e) => {
            return Err(io_at(if e.kind() == io::ErrorKind::NotFound {
                src
            } else {
                &dest
            })(e));
        }
    }
    // From here a failure takes the file out of cur/ again: a message without its UID line
    // would be found by the next scan and appear although APPEND said NO.
    let numbered = number(dir, &cur, &name, lock, list, intact);
    if numbered.is_err() {
        let _ = fs::remove_file(&dest);
        let _ = sync_dir(&cur);
    }
    numbered.map(|(uid, validity)| (uid, validity, name))
}

/// The second half of [`place`]: `cur/` made durable with the new link, then the message's
/// line in the uidlist (appended, or the whole list written when it had to be rebuilt).
fn number(
    dir: &Path,
    cur: &Path,
    name: &str,
    lock: DotLock,
    mut list: Uidlist,
    intact: bool,
) -> Result<(u32, u32), StoreError> {
    let ul_path = dir.join(uidlist::FILE_NAME);
    sync_dir(cur).map_err(io_at(cur))?;
    if list.next_uid == u32::MAX {
        return Err(StoreError::UidsExhausted {
            path: dir.to_path_buf(),
        });
    }
    let uid = list.next_uid;
    let record = Record {
        uid,
        ext: None,
        name: uidlist::base_name(name).into(),
    };
    if intact {
        // One line at the end, as Dovecot appends (the list is not rewritten).
        uidlist::append(&lock, std::slice::from_ref(&record)).map_err(io_at(&ul_path))?;
        drop(lock);
    } else {
        list.records.push(record);
        list.next_uid += 1;
        uidlist::write(lock, &mut list).map_err(io_at(&ul_path))?;
    }
    Ok((uid, list.uid_validity))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch Maildir, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            static N: AtomicU32 = AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "s3imap-store-{name}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&p);
            crate::maildir::create(&p, false).unwrap();
            Scratch(p)
        }
        fn put(&self, sub: &str, name: &str, body: &str) {
            fs::write(self.0.join(sub).join(name), body).unwrap();
        }
        fn names(&self, sub: &str) -> Vec<String> {
            let mut v: Vec<String> = fs::read_dir(self.0.join(sub))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            v.sort();
            v
        }
        fn uidlist(&self) -> Uidlist {
            uidlist::parse(&fs::read(self.0.join(uidlist::FILE_NAME)).unwrap()).unwrap()
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn uids(mb: &Mailbox) -> Vec<(u32, String)> {
        mb.messages()
            .iter()
            .map(|m| (m.uid(), uidlist::base_name(m.name()).to_string()))
            .collect()
    }

    fn durable(dir: &Path, body: &str) -> crate::maildir::Durable {
        let mut f = crate::maildir::Incoming::create(dir, &unique_name()).unwrap();
        f.write(body.as_bytes()).unwrap();
        f.finish(None).unwrap()
    }

    #[test]
    fn a_message_that_gets_no_uid_is_not_left_in_cur() {
        let d = Scratch::new("no-uid");
        fs::write(d.0.join(uidlist::FILE_NAME), "3 V1 N4294967295\n").unwrap();
        let m = durable(&d.0, "Subject: x\r\n\r\nbody\r\n");
        let r = store_durable(&d.0, &m, Flags::default(), &[], LockOptions::DOVECOT);
        assert!(matches!(r, Err(StoreError::UidsExhausted { .. })), "{r:?}");
        assert!(d.names("cur").is_empty(), "{:?}", d.names("cur"));
    }

    #[test]
    fn withdraw_removes_what_was_stored_also_when_the_table_did_not_take_it() {
        let d = Scratch::new("withdraw");
        let mut mb = Mailbox::open(&d.0, false).unwrap();
        let first = mb
            .store_durable(
                &durable(&d.0, "Subject: 1\r\n\r\n1\r\n"),
                Flags::default(),
                &[],
            )
            .unwrap();
        assert!(mb.message(first.uid).is_some(), "in the table");
        // Another writer appends to the uidlist: the next store is not added to the table.
        store_durable(
            &d.0,
            &durable(&d.0, "Subject: other\r\n\r\nx\r\n"),
            Flags::default(),
            &[],
            LockOptions::DOVECOT,
        )
        .unwrap();
        let second = mb
            .store_durable(
                &durable(&d.0, "Subject: 2\r\n\r\n2\r\n"),
                Flags::default(),
                &[],
            )
            .unwrap();
        assert!(mb.message(second.uid).is_none(), "not in the table yet");
        mb.withdraw(&[first, second]).unwrap();
        assert_eq!(d.names("cur").len(), 1, "only the other writer's message");
        mb.refresh().unwrap();
        assert_eq!(mb.len(), 1);
    }

    #[test]
    fn open_gives_uids_in_arrival_order_and_moves_new_to_cur() {
        let d = Scratch::new("open");
        d.put("new", "1700000002.S3Iab.s3imap,S=3,W=3", "a\r\n");
        d.put("new", "1700000001.hand.host", "b\n");
        d.put("cur", "1600000000.old.host:2,FS", "c\r\n");
        let mb = Mailbox::open(&d.0, false).unwrap();
        assert_eq!(
            uids(&mb),
            vec![
                (1, "1600000000.old.host".into()),
                (2, "1700000001.hand.host".into()),
                (3, "1700000002.S3Iab.s3imap,S=3,W=3".into()),
            ]
        );
        assert!(
            mb.messages().iter().all(|m| m.modseq() > 0),
            "every message numbered"
        );
        assert!(d.names("new").is_empty());
        assert_eq!(
            d.names("cur"),
            vec![
                "1600000000.old.host:2,FS",
                "1700000001.hand.host:2,",
                "1700000002.S3Iab.s3imap,S=3,W=3:2,",
            ]
        );
        assert_eq!(mb.message(1).unwrap().flags(), Flags::FLAGGED | Flags::SEEN);
        let l = d.uidlist();
        assert_eq!((l.uid_validity, l.next_uid), (mb.uid_validity(), 4));
        assert!(l.guid.is_some());
        assert_eq!(mb.seq_of(3), Some(3));
        assert_eq!(mb.uid_at(1), Some(1));
        assert_eq!(mb.uid_range(2, 10), 1..3);

        // A second session sees the same UIDs, none of them recent.
        let again = Mailbox::open(&d.0, false).unwrap();
        assert_eq!(uids(&again), uids(&mb));
        assert_eq!(again.uid_validity(), mb.uid_validity());
        // A second open (another process) reads the same numbers back from the modseq log.
        let ms = |b: &Mailbox| b.messages().iter().map(Message::modseq).collect::<Vec<_>>();
        assert_eq!(ms(&again), ms(&mb));
        assert_eq!(again.highest_modseq(), mb.highest_modseq());
    }

    #[test]
    fn readonly_open_leaves_new_alone() {
        let d = Scratch::new("ro");
        d.put("new", "1.a.h", "x");
        let mb = Mailbox::open(&d.0, true).unwrap();
        assert_eq!(uids(&mb), vec![(1, "1.a.h".into())]);
        assert!(mb.message(1).unwrap().in_new());
        assert_eq!(d.names("new"), vec!["1.a.h"]);
        let mut mb = mb;
        assert!(matches!(
            mb.set_flags(1, Flags::SEEN, &[]),
            Err(StoreError::ReadOnly { .. })
        ));
        assert!(matches!(mb.expunge(&[1]), Err(StoreError::ReadOnly { .. })));
    }

    #[test]
    fn refresh_reports_what_others_did() {
        let d = Scratch::new("refresh");
        for i in 1..=4 {
            d.put("cur", &format!("{i}.m.h:2,"), "x");
        }
        let mut mb = Mailbox::open(&d.0, false).unwrap();
        assert!(mb.refresh().unwrap().is_empty());
        // Another process: expunges 2 and 3, flags 4, delivers a new one.
        fs::remove_file(d.0.join("cur/2.m.h:2,")).unwrap();
        fs::remove_file(d.0.join("cur/3.m.h:2,")).unwrap();
        fs::rename(d.0.join("cur/4.m.h:2,"), d.0.join("cur/4.m.h:2,S")).unwrap();
        d.put("new", "5.m.h", "y");
        let before = mb.highest_modseq();
        let c = mb.refresh().unwrap();
        assert_eq!(
            c.expunged,
            vec![Expunged { seq: 2, uid: 2 }, Expunged { seq: 2, uid: 3 }]
        );
        assert_eq!(c.new, vec![5]);
        assert_eq!(c.flags, vec![4]);
        assert!(!c.uid_validity_changed);
        assert_eq!(mb.message(4).unwrap().flags(), Flags::SEEN);
        // Each change numbered: one arrival, one flag change, two expunges.
        assert_eq!(mb.highest_modseq(), before + 4);
        assert!(mb.message(5).unwrap().modseq() > before);
        assert!(mb.message(4).unwrap().modseq() > before);
        assert_eq!(mb.expunged_since(before).len(), 2);
        assert_eq!(mb.len(), 3);
        // The uidlist dropped the lines of the vanished files when it gave out UID 5.
        let l = d.uidlist();
        assert_eq!(
            l.records.iter().map(|r| r.uid).collect::<Vec<_>>(),
            vec![1, 4, 5]
        );
    }

    #[test]
    fn flags_keywords_and_renames_by_others() {
        let d = Scratch::new("flags");
        d.put("cur", "1.m.h,S=1,W=1:2,FP", "x");
        fs::write(d.0.join(keywords::FILE_NAME), "0 $Junk\n").unwrap();
        let mut mb = Mailbox::open(&d.0, false).unwrap();
        mb.set_flags(1, Flags::SEEN | Flags::ANSWERED, &["$Label1", "$junk"])
            .unwrap();
        assert_eq!(d.names("cur"), vec!["1.m.h,S=1,W=1:2,PRSab"]);
        assert_eq!(
            fs::read_to_string(d.0.join(keywords::FILE_NAME)).unwrap(),
            "0 $Junk\n1 $Label1\n"
        );
        assert_eq!(mb.keyword_names(1), vec!["$Junk", "$Label1"]);
        // Someone renames it behind our back; we find it again by its base name.
        fs::rename(
            d.0.join("cur/1.m.h,S=1,W=1:2,PRSab"),
            d.0.join("cur/1.m.h,S=1,W=1:2,PRSTab"),
        )
        .unwrap();
        mb.set_flags(1, Flags::FLAGGED, &[]).unwrap();
        assert_eq!(d.names("cur"), vec!["1.m.h,S=1,W=1:2,FP"]);
        let c = mb.refresh().unwrap();
        assert_eq!(c.flags, vec![1], "the rename we found is reported once");
        assert!(mb.refresh().unwrap().flags.is_empty());
        // Gone for good.
        fs::remove_file(d.0.join("cur/1.m.h,S=1,W=1:2,FP")).unwrap();
        assert!(matches!(
            mb.set_flags(1, Flags::SEEN, &[]),
            Err(StoreError::NoSuchMessage { uid: 1 })
        ));
    }

    #[test]
    fn expunge_reports_sequence_numbers_and_keeps_uids_unique() {
        let d = Scratch::new("expunge");
        for i in 1..=5 {
            d.put("cur", &format!("{i}.m.h:2,"), "x");
        }
        let mut mb = Mailbox::open(&d.0, false).unwrap();
        let gone = mb.expunge(&[4, 2, 9, 5]).unwrap();
        assert_eq!(
            gone,
            vec![
                Expunged { seq: 2, uid: 2 },
                Expunged { seq: 3, uid: 4 },
                Expunged { seq: 3, uid: 5 },
            ]
        );
        assert_eq!(d.names("cur"), vec!["1.m.h:2,", "3.m.h:2,"]);
        // The uidlist keeps the stale lines for now (as Dovecot does; readers skip them):
        // a second reader sees the two messages with their UIDs, and no UID is reused.
        let l = d.uidlist();
        assert_eq!(l.next_uid, 6);
        assert!(mb.refresh().unwrap().is_empty());
        let other = Mailbox::open(&d.0, true).unwrap();
        assert_eq!(uids(&other), vec![(1, "1.m.h".into()), (3, "3.m.h".into())]);
        assert_eq!(other.uid_next(), 6);
    }

    #[test]
    fn append_and_copy() {
        let d = Scratch::new("append");
        let dest = Scratch::new("copy-dest");
        fs::write(dest.0.join(keywords::FILE_NAME), "0 other\n").unwrap();
        let mut mb = Mailbox::open(&d.0, false).unwrap();
        let date = UNIX_EPOCH + Duration::from_secs(1_600_000_000);
        let (uid, uv) = mb
            .append(
                &b"Subject: a\n\nbody\n"[..],
                Flags::SEEN,
                &["$Forwarded"],
                Some(date),
            )
            .unwrap();
        assert_eq!((uid, uv), (1, mb.uid_validity()));
        let c = mb.refresh().unwrap();
        assert_eq!(c.new, vec![1]);
        let m = mb.message(1).unwrap();
        assert!(m.name().ends_with(",S=17,W=20:2,Sa"), "{}", m.name());
        assert_eq!(m.modseq(), mb.highest_modseq(), "an arrival is a change");
        assert_eq!(mb.size(1).unwrap(), 17);
        assert_eq!(mb.vsize(1).unwrap(), 20);
        assert_eq!(mb.internal_date(1).unwrap(), date);
        assert!(d.names("tmp").is_empty());
        assert_eq!(mb.keyword_names(1), vec!["$Forwarded"]);

        let (cuid, cuv) = mb.copy_to(1, &dest.0).unwrap();
        let mut other = Mailbox::open(&dest.0, false).unwrap();
        assert_eq!((cuid, cuv), (1, other.uid_validity()));
        assert_eq!(other.message(1).unwrap().flags(), Flags::SEEN);
        assert_eq!(other.keyword_names(1), vec!["$Forwarded"]);
        assert!(other.message(1).unwrap().name().ends_with(":2,Sb"));
        assert_eq!(other.internal_date(1).unwrap(), date);
        let mut body = String::new();
        other
            .open_file(1)
            .unwrap()
            .read_to_string(&mut body)
            .unwrap();
        assert_eq!(body, "Subject: a\n\nbody\n");
        assert!(matches!(
            mb.copy_to(1, &dest.0.join(".Nope")),
            Err(StoreError::NoSuchMailbox { .. })
        ));
        let st = Mailbox::status_of(&d.0).unwrap();
        assert_eq!(st, mb.status().unwrap());
        assert_eq!(
            (st.messages, st.unseen, st.uid_next, st.size),
            (1, 0, 2, 20)
        );
    }

    #[test]
    fn vsize_is_counted_once_and_written_as_w_field() {
        let d = Scratch::new("vsize");
        d.put("cur", "1.m.h:2,", "a\nb\n");
        let mut mb = Mailbox::open(&d.0, false).unwrap();
        assert_eq!(mb.vsize(1).unwrap(), 6);
        assert_eq!(mb.size(1).unwrap(), 4);
        d.put("new", "2.m.h", "c");
        mb.refresh().unwrap();
        let l = d.uidlist();
        assert_eq!(l.records[0].ext_value('W'), Some("6"));
        let mut again = Mailbox::open(&d.0, true).unwrap();
        assert_eq!(again.vsize(1).unwrap(), 6);
        assert_eq!(Mailbox::status_of(&d.0).unwrap().size, 6 + 1);
    }

    #[test]
    fn broken_or_vanished_uidlists() {
        let d = Scratch::new("corrupt");
        d.put("cur", "1.m.h:2,", "x");
        d.put("cur", "2.m.h:2,", "x");
        let first = Mailbox::open(&d.0, false).unwrap();
        let old = first.uid_validity();
        // Vanished while a session has it open: rewritten from the session's UIDs.
        let mut mb = Mailbox::open(&d.0, false).unwrap();
        fs::remove_file(d.0.join(uidlist::FILE_NAME)).unwrap();
        d.put("new", "3.m.h", "x");
        let c = mb.refresh().unwrap();
        assert!(!c.uid_validity_changed);
        assert_eq!(c.new, vec![3]);
        assert_eq!(d.uidlist().uid_validity, old);
        // Broken when opened: rebuilt with a new UIDVALIDITY, as Dovecot does.
        fs::write(d.0.join(uidlist::FILE_NAME), "3 V1 N2\n9 :a\n1 :b\n").unwrap();
        let fresh = Mailbox::open(&d.0, false).unwrap();
        assert_ne!(fresh.uid_validity(), old);
        assert_eq!(fresh.len(), 3);
        assert_eq!(d.uidlist().uid_validity, fresh.uid_validity());
        // The first session notices the new UIDVALIDITY.
        let mut first = first;
        let c = first.refresh().unwrap();
        assert!(c.uid_validity_changed);
        assert_eq!(first.uid_validity(), fresh.uid_validity());
    }

    #[test]
    fn open_errors() {
        let d = Scratch::new("errors");
        assert!(matches!(
            Mailbox::open(&d.0.join(".Missing"), false),
            Err(StoreError::NoSuchMailbox { .. })
        ));
        let e = StoreError::NoSuchMailbox {
            path: d.0.join(".Missing"),
        };
        assert!(e.to_string().contains("has no cur/ directory"));
        let mut mb = Mailbox::open(&d.0, false).unwrap();
        assert!(matches!(
            mb.size(7),
            Err(StoreError::NoSuchMessage { uid: 7 })
        ));
        fs::remove_dir_all(&d.0).unwrap();
        assert!(matches!(
            mb.refresh(),
            Err(StoreError::NoSuchMailbox { .. })
        ));
    }

    #[test]
    fn parallel_appends_get_distinct_uids() {
        let d = Scratch::new("parallel");
        let all: Vec<u32> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..4)
                .map(|t| {
                    let dir = &d.0;
                    sc.spawn(move || {
                        (0..10)
                            .map(|i| {
                                let body = format!("Subject: {t}-{i}\n\n");
                                append_to(
                                    dir,
                                    body.as_bytes(),
                                    Flags::empty(),
                                    &[],
                                    None,
                                    LockOptions::DOVECOT,
                                )
                                .unwrap()
                                .0
                            })
                            .collect::<Vec<u32>>()
                    })
                })
                .collect();
            hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        let mut sorted = all.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (1..=40).collect::<Vec<u32>>());
        let mb = Mailbox::open(&d.0, false).unwrap();
        assert_eq!(mb.len(), 40);
        assert_eq!(d.uidlist().records.len(), 40);
        assert!(!d.0.join("dovecot-uidlist.lock").exists());
    }

    #[test]
    fn info_letters() {
        assert_eq!(
            parse_info("1.M1P1.vm,S=30,W=34:2,Scd"),
            (Flags::SEEN, 0b1100)
        );
        assert_eq!(
            parse_info("x:2,DFPRSTaz,extra"),
            (
                Flags::DRAFT | Flags::FLAGGED | Flags::ANSWERED | Flags::SEEN | Flags::DELETED,
                1 | 1 << 25
            )
        );
        assert_eq!(parse_info("x,S=1"), (Flags::empty(), 0));
        assert_eq!(parse_info("x:1,S"), (Flags::empty(), 0));
    }

    #[test]
    fn set_flags_in_names() {
        assert_eq!(with_flags("a,S=1,W=2", Flags::empty(), 0), "a,S=1,W=2:2,");
        assert_eq!(
            with_flags("a:2,FPSab", Flags::SEEN | Flags::DELETED, 0b1),
            "a:2,PSTa"
        );
        assert_eq!(
            with_flags("a:2,S", Flags::DRAFT | Flags::ANSWERED, 1 << 2 | 1 << 3),
            "a:2,DRcd"
        );
        assert_eq!(with_flags("a:2,S,x=1", Flags::empty(), 0), "a:2,,x=1");
        assert_eq!(with_flags("a:1,foo", Flags::SEEN, 0), "a:2,S");
    }

    #[test]
    fn sizes_from_names() {
        assert_eq!(name_size("1.a.h,S=30,W=34:2,S", 'S'), Some(30));
        assert_eq!(name_size("1.a.h,S=30,W=34:2,S", 'W'), Some(34));
        assert_eq!(name_size("1.a.h,S=30:2,S", 'W'), None);
        assert_eq!(name_size("1.a.h,S=3x", 'S'), None);
        assert_eq!(name_size("1.a.h,S=", 'S'), None);
    }

    #[test]
    fn flag_names() {
        assert_eq!(Flags::from_imap("\\seen"), Some(Flags::SEEN));
        assert_eq!(
            (Flags::SEEN | Flags::DRAFT)
                .imap_names()
                .collect::<Vec<_>>(),
            vec!["\\Seen", "\\Draft"]
        );
        let mut f = Flags::SEEN | Flags::FLAGGED;
        f.remove(Flags::SEEN);
        assert_eq!(f, Flags::FLAGGED);
        assert_eq!(Flags::from_bits(0xff).bits(), 31);
    }

    #[test]
    fn message_is_small() {
        assert!(std::mem::size_of::<Message>() <= 64);
    }

    #[test]
    fn unique_names_sort_in_arrival_order() {
        let a = unique_name();
        let b = unique_name();
        assert_ne!(a, b);
        assert!(uidlist::arrival_cmp(&a, &b).is_le());
        assert!(!a.contains(['/', ':', ',']));
    }
}
