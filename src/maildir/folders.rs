//! A user's folders as Dovecot lays them out in Maildir++, and their subscriptions.
//!
//! INBOX is the user's directory itself; every other folder is a directory `.<name>` beside
//! INBOX's `cur/ new/ tmp/`, where the IMAP hierarchy separator `/` becomes `.` and each level
//! is stored in modified UTF-7 (`Lists/rust` → `.Lists.rust`, `Écrits` → `.&AMk-crits`,
//! `Tom & Jerry` → `.Tom &- Jerry`). A parent needs no directory of its own: Dovecot creates
//! only the leaf, and lists a missing parent as `\Noselect`. Names are [`Folder::name`] in
//! Unicode with `/`; the IMAP layer encodes them for the wire.
//!
//! Dovecot's rules, which we follow: `.` cannot appear in a name, nor a leading `~` or `/`,
//! nor empty levels; a trailing `/` is dropped; `INBOX` is case-insensitive. DELETE removes
//! only the folder's own directory (its children stay, the name turns `\Noselect`) and fails
//! for a name with no directory. RENAME moves the children along and refuses a target inside
//! the source. Subscriptions are left alone by both. Where Dovecot refuses to rename INBOX,
//! we do what RFC 3501 §6.3.5 asks: its messages move to the new folder and INBOX stays, empty.
//!
//! `subscriptions` (Dovecot's version 2 format): the line `V\t2`, an empty line, then one
//! name per line with its levels separated by a tab, each level in modified UTF-7 and
//! tab-escaped (`\x01` + `1`/`t`/`r`/`n` for `\x01`, tab, CR, LF). It is rewritten through
//! `subscriptions.lock` like Dovecot does.
//!
//! Every name goes through [`dir_name`] before it touches the disk, so no name can reach
//! outside the user's directory.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::store::{Mailbox, StoreError};
use super::uidlist::{self, DotLock, Loaded, LockError, LockOptions, Uidlist};
use super::{MaildirPath, UserDir};
use crate::utf7;

/// The IMAP hierarchy separator.
pub const SEPARATOR: char = '/';
/// The subscriptions file in the user's directory.
pub const SUBSCRIPTIONS: &str = "subscriptions";
/// Where a deleted folder goes before it is removed (Dovecot's name; never listed).
const TRASH_DIR: &str = "DOVECOT-TRASHED";
/// Longest directory name most file systems allow.
const NAME_MAX: usize = 255;

/// A folder that exists on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    /// The IMAP name in Unicode, levels separated by `/`; `INBOX` for the root.
    pub name: String,
    /// The directory name under the user's directory (`.Lists.rust`); empty for INBOX.
    pub dir: String,
}

impl Folder {
    /// The Maildir of this folder.
    pub fn path(&self, user_dir: &Path) -> PathBuf {
        if self.dir.is_empty() {
            user_dir.to_path_buf()
        } else {
            user_dir.join(&self.dir)
        }
    }
}

/// One line of a LIST answer: a folder, or a parent that exists only through its children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    pub name: String,
    /// False for a parent without a directory (`\Noselect`).
    pub selectable: bool,
    pub has_children: bool,
}

/// Why a folder operation failed.
#[derive(Debug)]
pub enum FolderError {
    InvalidName {
        name: String,
        reason: &'static str,
    },
    NoSuchFolder {
        name: String,
    },
    AlreadyExists {
        name: String,
    },
    InboxNotDeletable,
    /// RENAME into the folder's own subtree.
    IntoItself {
        from: String,
        to: String,
    },
    Store(StoreError),
    Lock(LockError),
    Io {
        path: PathBuf,
        err: io::Error,
    },
}

impl fmt::Display for FolderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FolderError::InvalidName { name, reason } => {
                write!(f, "invalid folder name {name:?}: {reason}")
            }
            FolderError::NoSuchFolder { name } => write!(f, "folder {name:?} does not exist"),
            FolderError::AlreadyExists { name } => write!(f, "folder {name:?} already exists"),
            FolderError::InboxNotDeletable => write!(f, "INBOX cannot be deleted"),
            FolderError::IntoItself { from, to } => {
                write!(f, "cannot rename {from:?} to {to:?}, inside itself")
            }
            FolderError::Store(e) => e.fmt(f),
            FolderError::Lock(e) => e.fmt(f),
            FolderError::Io { path, err } => {
                write!(f, "{}: {err}", path.display())?;
                if err.kind() == io::ErrorKind::PermissionDenied {
                    write!(f, " (run s3imap as the user that owns the mail directory)")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for FolderError {}

impl From<StoreError> for FolderError {
    fn from(e: StoreError) -> Self {
        FolderError::Store(e)
    }
}

impl From<LockError> for FolderError {
    fn from(e: LockError) -> Self {
        FolderError::Lock(e)
    }
}

fn io_at(path: &Path) -> impl Fn(io::Error) -> FolderError + '_ {
    move |err| FolderError::Io {
        path: path.to_path_buf(),
        err,
    }
}

/// Whether `name` is INBOX (case-insensitive).
pub fn is_inbox(name: &str) -> bool {
    name.eq_ignore_ascii_case("INBOX")
}

/// The name with `INBOX` spelled canonically (also as the first level) and a trailing
/// separator dropped, or why it cannot be a folder name.
pub fn normalize(name: &str) -> Result<String, FolderError> {
    let bad = |reason| FolderError::InvalidName {
        name: name.to_string(),
        reason,
    };
    let trimmed = name.strip_suffix(SEPARATOR).unwrap_or(name);
    if trimmed.is_empty() {
        return Err(bad("it is empty"));
    }
    if trimmed.starts_with(SEPARATOR) {
        return Err(bad("it begins with the hierarchy separator '/'"));
    }
    if trimmed.starts_with('~') {
        return Err(bad("it begins with '~'"));
    }
    if trimmed.contains("//") {
        return Err(bad("it has an empty level ('//')"));
    }
    if trimmed.contains('.') {
        return Err(bad("'.' is not allowed (it separates levels on disk)"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(bad("it contains control characters"));
    }
    let mut levels = trimmed.split(SEPARATOR);
    let first = levels.next().unwrap_or_default();
    let mut out = if is_inbox(first) {
        "INBOX".to_string()
    } else {
        first.to_string()
    };
    for l in levels {
        out.push(SEPARATOR);
        out.push_str(l);
    }
    Ok(out)
}

/// The directory (under the user's directory) that holds folder `name`: empty for INBOX,
/// else `.` + the levels in modified UTF-7 joined by `.`. Pure; rejects every name that is not
/// a valid Maildir++ folder (see the module docs), so the result is a single path component
/// that starts with `.` and is neither `.` nor `..`.
pub fn dir_name(name: &str) -> Result<String, FolderError> {
    let name = normalize(name)?;
    if is_inbox(&name) {
        return Ok(String::new());
    }
    let mut dir = String::with_capacity(name.len() + 8);
    for level in name.split(SEPARATOR) {
        dir.push('.');
        dir.push_str(&utf7::encode(level));
    }
    if dir.len() > NAME_MAX {
        return Err(FolderError::InvalidName {
            name,
            reason: "it is too long for a directory name",
        });
    }
    Ok(dir)
}

/// The folder name of a Maildir++ directory name (`.Lists.rust` → `Lists/rust`), None for
/// directories that are not folders (`.`, `..`, empty levels, invalid modified UTF-7, levels
/// that decode to `/`).
pub fn folder_name(dir: &str) -> Option<String> {
    let rest = dir.strip_prefix('.')?;
    if rest.is_empty() {
        return None;
    }
    let mut name = String::with_capacity(rest.len());
    for (i, level) in rest.split('.').enumerate() {
        if level.is_empty() {
            return None;
        }
        let l = utf7::decode(level.as_bytes()).ok()?;
        if l.contains(SEPARATOR) || l.chars().any(char::is_control) {
            return None;
        }
        if i > 0 {
            name.push(SEPARATOR);
        }
        name.push_str(&l);
    }
    Some(name)
}

/// The Maildir of folder `name` under `user_dir` (whether or not it exists).
pub fn folder_path(user_dir: &UserDir, name: &str) -> Result<MaildirPath, FolderError> {
    let d = dir_name(name)?;
    Ok(if d.is_empty() {
        user_dir.inbox()
    } else {
        user_dir.folder(&d)
    })
}

/// Creates INBOX (the user's directory as a Maildir) when it is missing.
pub fn ensure_inbox(user_dir: &UserDir) -> Result<(), FolderError> {
    if !user_dir.join("cur").is_dir() {
        super::create(user_dir, false).map_err(io_at(user_dir))?;
    }
    Ok(())
}

/// INBOX, then every folder of the user (directories `.<name>` with a `cur/`), sorted by name.
pub fn list(user_dir: &UserDir) -> Result<Vec<Folder>, FolderError> {
    let mut out = Vec::new();
    let rd = match fs::read_dir(user_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(vec![Folder {
                name: "INBOX".into(),
                dir: String::new(),
            }]);
        }
        Err(e) => return Err(io_at(user_dir)(e)),
    };
    for entry in rd {
        let entry = entry.map_err(io_at(user_dir))?;
        let Some(dir) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if !dir.starts_with('.') || dir == "." || dir == ".." {
            continue;
        }
        if !entry.path().join("cur").is_dir() {
            continue;
        }
        match folder_name(&dir) {
            Some(name) => out.push(Folder { name, dir }),
            None => crate::warn!(
                "maildir",
                "{}: {dir:?} is not a Maildir++ folder name Dovecot would write; not listed",
                user_dir.display()
            ),
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.insert(
        0,
        Folder {
            name: "INBOX".into(),
            dir: String::new(),
        },
    );
    Ok(out)
}

/// The LIST view of `folders`: each folder, plus each parent that exists only through its
/// children (not selectable), with `has_children` set; sorted by name, INBOX first.
pub fn tree(folders: &[Folder]) -> Vec<ListEntry> {
    let mut names: std::collections::BTreeMap<String, bool> = std::collections::BTreeMap::new();
    for f in folders {
        names.insert(f.name.clone(), true);
        let mut at = 0;
        while let Some(i) = f.name[at..].find(SEPARATOR) {
            let parent = &f.name[..at + i];
            names.entry(parent.to_string()).or_insert(false);
            at += i + 1;
        }
    }
    let all: Vec<&String> = names.keys().collect();
    let mut out: Vec<ListEntry> = names
        .iter()
        .map(|(n, sel)| {
            let prefix = format!("{n}{SEPARATOR}");
            ListEntry {
                name: n.clone(),
                selectable: *sel,
                has_children: all.iter().any(|o| o.starts_with(&prefix)),
            }
        })
        .collect();
    if let Some(i) = out.iter().position(|e| e.name == "INBOX") {
        let inbox = out.remove(i);
        out.insert(0, inbox);
    }
    out
}

/// Creates folder `name` (only its own directory, as Dovecot does): `cur/ new/ tmp/`, the
/// `maildirfolder` marker and a `dovecot-uidlist` with a fresh UIDVALIDITY.
pub fn create(user_dir: &UserDir, name: &str) -> Result<PathBuf, FolderError> {
    let name = normalize(name)?;
    let dir = dir_name(&name)?;
    if dir.is_empty() {
        return Err(FolderError::AlreadyExists { name });
    }
    ensure_inbox(user_dir)?;
    let path = user_dir.join(&dir);
    if path.join("cur").is_dir() {
        return Err(FolderError::AlreadyExists { name });
    }
    super::create(&path, true).map_err(io_at(&path))?;
    uidlist::create_if_missing(&path, LockOptions::DOVECOT)?;
    Ok(path)
}

/// Deletes folder `name` with its messages. Its children stay (the name becomes a
/// `\Noselect` parent); a name without its own directory is [`FolderError::NoSuchFolder`].
pub fn delete(user_dir: &UserDir, name: &str) -> Result<(), FolderError> {
    let name = normalize(name)?;
    let dir = dir_name(&name)?;
    if dir.is_empty() {
        return Err(FolderError::InboxNotDeletable);
    }
    let path = user_dir.join(&dir);
    if !path.is_dir() {
        return Err(FolderError::NoSuchFolder { name });
    }
    // Out of sight first (one rename), then removed: a crash leaves only the trash dir.
    let trash = user_dir.join(TRASH_DIR);
    for _ in 0..3 {
        match fs::rename(&path, &trash) {
            Ok(()) => {
                return fs::remove_dir_all(&trash).map_err(io_at(&trash));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(FolderError::NoSuchFolder { name });
            }
            Err(_) if trash.exists() => {
                fs::remove_dir_all(&trash).map_err(io_at(&trash))?;
            }
            Err(e) => return Err(io_at(&path)(e)),
        }
    }
    fs::remove_dir_all(&path).map_err(io_at(&path))
}

/// Renames folder `from` to `to` with all its children. Renaming INBOX moves its messages
/// (UIDs, UIDVALIDITY and keywords with them) into the new folder and leaves INBOX empty.
pub fn rename(user_dir: &UserDir, from: &str, to: &str) -> Result<(), FolderError> {
    let from = normalize(from)?;
    let to = normalize(to)?;
    let from_dir = dir_name(&from)?;
    let to_dir = dir_name(&to)?;
    if to_dir.is_empty() || from_dir == to_dir {
        return Err(FolderError::AlreadyExists { name: to });
    }
    if from_dir.is_empty() {
        return rename_inbox(user_dir, &to, &to_dir);
    }
    if to_dir.starts_with(&format!("{from_dir}.")) {
        return Err(FolderError::IntoItself { from, to });
    }
    // The folder itself and its children, as (old dir, new dir).
    let child_prefix = format!("{from_dir}.");
    let mut moves: Vec<(String, String)> = Vec::new();
    for entry in fs::read_dir(user_dir).map_err(io_at(user_dir))? {
        let entry = entry.map_err(io_at(user_dir))?;
        let Some(d) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if d == from_dir {
            moves.push((d, to_dir.clone()));
        } else if let Some(rest) = d.strip_prefix(&child_prefix) {
            let target = format!("{to_dir}.{rest}");
            moves.push((d, target));
        }
    }
    if moves.is_empty() {
        return Err(FolderError::NoSuchFolder { name: from });
    }
    for (_, target) in &moves {
        if user_dir.join(target).exists() {
            let name = folder_name(target).unwrap_or_else(|| to.clone());
            return Err(FolderError::AlreadyExists { name });
        }
    }
    moves.sort();
    for (old, new) in moves {
        let (a, b) = (user_dir.join(&old), user_dir.join(&new));
        fs::rename(&a, &b).map_err(io_at(&a))?;
    }
    Ok(())
}

/// RFC 3501 §6.3.5: a new folder `to` receives INBOX's messages; INBOX stays, empty, with its
/// UIDVALIDITY and next UID, so its UIDs are never reused.
fn rename_inbox(user_dir: &UserDir, to: &str, to_dir: &str) -> Result<(), FolderError> {
    let target = user_dir.join(to_dir);
    if target.exists() {
        return Err(FolderError::AlreadyExists { name: to.into() });
    }
    // A session's open gives every file a UID and a sound uidlist first.
    drop(Mailbox::open(user_dir, true)?);
    let ul_path = user_dir.join(uidlist::FILE_NAME);
    let lock = DotLock::acquire(&ul_path, LockOptions::DOVECOT)?;
    let list = match uidlist::load(user_dir).map_err(io_at(&ul_path))? {
        Loaded::Ok(l, _) => l,
        _ => {
            return Err(FolderError::Store(StoreError::NoSuchMailbox {
                path: user_dir.to_path_buf(),
            }));
        }
    };
    super::create(&target, true).map_err(io_at(&target))?;
    for sub in ["new", "cur"] {
        let (src, dst) = (user_dir.join(sub), target.join(sub));
        for entry in fs::read_dir(&src).map_err(io_at(&src))? {
            let entry = entry.map_err(io_at(&src))?;
            let n = entry.file_name();
            if n.to_str().is_none_or(|s| s.starts_with('.')) {
                continue;
            }
            match fs::rename(entry.path(), dst.join(&n)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_at(&entry.path())(e)),
            }
        }
        super::sync_dir(&dst).map_err(io_at(&dst))?;
    }
    let kw = user_dir.join(super::keywords::FILE_NAME);
    if kw.exists() {
        let dst = target.join(super::keywords::FILE_NAME);
        fs::copy(&kw, &dst).map_err(io_at(&dst))?;
    }
    let mut moved = Uidlist {
        guid: Some(uidlist::new_guid()),
        ..list.clone()
    };
    let moved_lock = DotLock::acquire(&target.join(uidlist::FILE_NAME), LockOptions::DOVECOT)?;
    uidlist::write(moved_lock, &mut moved).map_err(io_at(&target))?;
    let mut emptied = Uidlist {
        records: Vec::new(),
        ..list
    };
    uidlist::write(lock, &mut emptied).map_err(io_at(&ul_path))?;
    Ok(())
}

/// Tab-escapes one level as Dovecot's `str_append_tabescaped` does.
fn tab_escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\x01' => out.push_str("\x011"),
            '\t' => out.push_str("\x01t"),
            '\r' => out.push_str("\x01r"),
            '\n' => out.push_str("\x01n"),
            c => out.push(c),
        }
    }
}

fn tab_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\x01' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('1') => out.push('\x01'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(o) => out.push(o),
            None => {}
        }
    }
    out
}

const SUBS_HEADER: &str = "V\t2\n\n";

/// The line a subscription to `name` takes in the file.
pub fn subscription_line(name: &str) -> String {
    let mut line = String::new();
    for (i, level) in name.split(SEPARATOR).enumerate() {
        if i > 0 {
            line.push('\t');
        }
        tab_escape(&utf7::encode(level), &mut line);
    }
    line
}

/// The folder name a subscription line stands for. Levels that are not valid modified UTF-7
/// are taken as they are.
fn line_name(line: &str, sep: char) -> String {
    line.split(sep)
        .map(|level| {
            let raw = tab_unescape(level);
            utf7::decode(raw.as_bytes()).unwrap_or(raw)
        })
        .collect::<Vec<_>>()
        .join(&SEPARATOR.to_string())
}

/// The subscribed names in a `subscriptions` file (version 2; or version 1, one name per line
/// with `.` between levels).
pub fn parse_subscriptions(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let (body, sep) = match text.strip_prefix(SUBS_HEADER) {
        Some(b) => (b, '\t'),
        None => (&*text, '.'),
    };
    body.split('\n')
        .filter(|l| !l.is_empty())
        .map(|l| line_name(l, sep))
        .collect()
}

/// A version 2 `subscriptions` file listing `names`.
pub fn format_subscriptions(names: &[String]) -> Vec<u8> {
    let mut out = String::from(SUBS_HEADER);
    for n in names {
        out.push_str(&subscription_line(n));
        out.push('\n');
    }
    out.into_bytes()
}

/// The user's subscribed folder names, in file order.
pub fn subscriptions(user_dir: &UserDir) -> Result<Vec<String>, FolderError> {
    let path = user_dir.join(SUBSCRIPTIONS);
    match fs::read(&path) {
        Ok(b) => Ok(parse_subscriptions(&b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_at(&path)(e)),
    }
}

/// Subscribes to (or unsubscribes from) `name`. Other lines are kept byte for byte, as
/// Dovecot does. Returns whether the file changed.
pub fn set_subscribed(
    user_dir: &UserDir,
    name: &str,
    subscribe: bool,
) -> Result<bool, FolderError> {
    let name = normalize(name)?;
    let path = user_dir.join(SUBSCRIPTIONS);
    let lock = DotLock::acquire(&path, LockOptions::SUBSCRIPTIONS)?;
    let old = match fs::read(&path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io_at(&path)(e)),
    };
    let (body, v2) = match old.strip_prefix(SUBS_HEADER) {
        Some(b) => (b, true),
        None => (old.as_str(), old.is_empty()),
    };
    let line = if v2 {
        subscription_line(&name)
    } else {
        name.replace(SEPARATOR, ".")
    };
    let mut out = String::from(if v2 { SUBS_HEADER } else { "" });
    let mut found = false;
    let mut changed = false;
    for l in body.split('\n').filter(|l| !l.is_empty()) {
        if l == line {
            found = true;
            if !subscribe {
                changed = true;
                continue;
            }
        }
        out.push_str(l);
        out.push('\n');
    }
    if subscribe && !found {
        out.push_str(&line);
        out.push('\n');
        changed = true;
    }
    if changed {
        lock.replace(out.as_bytes()).map_err(io_at(&path))?;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maildir::store::Flags;

    struct Scratch(UserDir);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let root =
                std::env::temp_dir().join(format!("s3imap-folders-{name}-{}", std::process::id()));
            let p = crate::maildir::user_dir(&root, "u@example.org").unwrap();
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            Scratch(p)
        }
        fn dirs(&self) -> Vec<String> {
            let mut v: Vec<String> = fs::read_dir(&self.0)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n.starts_with('.'))
                .collect();
            v.sort();
            v
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(self.0.parent().unwrap_or(&self.0));
        }
    }

    fn names(user: &UserDir) -> Vec<String> {
        list(user).unwrap().into_iter().map(|f| f.name).collect()
    }

    #[test]
    fn create_list_delete_rename() {
        let d = Scratch::new("ops");
        let u = &d.0;
        assert_eq!(names(u), vec!["INBOX"]);
        create(u, "Lists/rust").unwrap();
        create(u, "Écrits").unwrap();
        create(u, "Lists/go/deep").unwrap();
        assert_eq!(
            d.dirs(),
            vec![".&AMk-crits", ".Lists.go.deep", ".Lists.rust"]
        );
        assert!(u.join(".Lists.rust/maildirfolder").exists());
        assert!(u.join(".Lists.rust/dovecot-uidlist").exists());
        assert!(u.join("cur").is_dir(), "INBOX is made on the way");
        assert_eq!(
            names(u),
            vec!["INBOX", "Lists/go/deep", "Lists/rust", "Écrits"]
        );
        assert!(matches!(
            create(u, "Lists/rust/"),
            Err(FolderError::AlreadyExists { .. })
        ));
        assert!(matches!(
            create(u, "inbox"),
            Err(FolderError::AlreadyExists { .. })
        ));
        // Different UIDVALIDITY for every folder.
        let uv = |n: &str| {
            Mailbox::open(&folder_path(u, n).unwrap(), true)
                .unwrap()
                .uid_validity()
        };
        assert_ne!(uv("Lists/rust"), uv("Écrits"));

        // A parent without a directory cannot be deleted; deleting one keeps its children.
        assert!(matches!(
            delete(u, "Lists"),
            Err(FolderError::NoSuchFolder { .. })
        ));
        create(u, "Lists").unwrap();
        delete(u, "Lists").unwrap();
        assert_eq!(
            d.dirs(),
            vec![".&AMk-crits", ".Lists.go.deep", ".Lists.rust"]
        );
        assert!(matches!(
            delete(u, "INBOX"),
            Err(FolderError::InboxNotDeletable)
        ));
        assert!(!u.join(TRASH_DIR).exists());

        // Renames carry the children, refuse targets inside the source or taken names.
        rename(u, "Lists", "Listes").unwrap();
        assert_eq!(
            d.dirs(),
            vec![".&AMk-crits", ".Listes.go.deep", ".Listes.rust"]
        );
        assert!(matches!(
            rename(u, "Listes", "Listes/sub"),
            Err(FolderError::IntoItself { .. })
        ));
        assert!(matches!(
            rename(u, "Listes/rust", "Écrits"),
            Err(FolderError::AlreadyExists { .. })
        ));
        assert!(matches!(
            rename(u, "Nope", "X"),
            Err(FolderError::NoSuchFolder { .. })
        ));
        rename(u, "Écrits", "Archive/Écrits").unwrap();
        assert!(u.join(".Archive.&AMk-crits/cur").is_dir());
    }

    #[test]
    fn rename_inbox_moves_its_messages() {
        let d = Scratch::new("inbox");
        let u = &d.0;
        ensure_inbox(u).unwrap();
        fs::write(u.join("cur/1.a.h:2,Sa"), "x").unwrap();
        fs::write(u.join("new/2.a.h"), "y").unwrap();
        fs::write(u.join("dovecot-keywords"), "0 $Junk\n").unwrap();
        let before = Mailbox::open(u, false).unwrap();
        rename(u, "INBOX", "Old").unwrap();
        let inbox = Mailbox::open(u, false).unwrap();
        assert!(inbox.is_empty());
        assert_eq!(inbox.uid_validity(), before.uid_validity());
        assert_eq!(inbox.uid_next(), 3, "INBOX never reuses its UIDs");
        let old = Mailbox::open(&u.join(".Old"), false).unwrap();
        assert_eq!(old.len(), 2);
        assert_eq!(old.uid_validity(), before.uid_validity());
        assert_eq!(old.keyword_names(1), vec!["$Junk"]);
        let (uid, _) = inbox.append(&b"z"[..], Flags::empty(), &[], None).unwrap();
        assert_eq!(uid, 3);
    }

    #[test]
    fn subscribe_and_unsubscribe() {
        let d = Scratch::new("subs");
        let u = &d.0;
        assert!(subscriptions(u).unwrap().is_empty());
        assert!(set_subscribed(u, "Lists/rust", true).unwrap());
        assert!(set_subscribed(u, "Écrits", true).unwrap());
        assert!(set_subscribed(u, "inbox", true).unwrap());
        assert!(!set_subscribed(u, "Écrits", true).unwrap());
        assert_eq!(
            fs::read_to_string(u.join(SUBSCRIPTIONS)).unwrap(),
            "V\t2\n\nLists\trust\n&AMk-crits\nINBOX\n"
        );
        assert!(set_subscribed(u, "Écrits", false).unwrap());
        assert!(!set_subscribed(u, "Nope", false).unwrap());
        assert_eq!(subscriptions(u).unwrap(), vec!["Lists/rust", "INBOX"]);
        assert!(set_subscribed(u, "a.b", true).is_err());
    }

    #[test]
    fn names_map_like_dovecot() {
        assert_eq!(dir_name("INBOX").unwrap(), "");
        assert_eq!(dir_name("inbox").unwrap(), "");
        assert_eq!(dir_name("Lists/rust").unwrap(), ".Lists.rust");
        assert_eq!(dir_name("Écrits").unwrap(), ".&AMk-crits");
        assert_eq!(dir_name("Tom & Jerry").unwrap(), ".Tom &- Jerry");
        assert_eq!(dir_name("trail/").unwrap(), ".trail");
        assert_eq!(dir_name("inbox/sub").unwrap(), ".INBOX.sub");
        assert_eq!(dir_name("a\\b").unwrap(), ".a\\b");
        assert_eq!(dir_name("tmp").unwrap(), ".tmp");
        assert_eq!(dir_name("x/cur").unwrap(), ".x.cur");
        for bad in [
            "", "/", "..", "a/../b", ".hidden", "a.b", "/abs", "~home", "a//b", "x\u{1}y", "x\ny",
            "x\u{7f}",
        ] {
            assert!(dir_name(bad).is_err(), "{bad:?} must be rejected");
        }
        assert!(dir_name(&"x".repeat(300)).is_err());
    }

    #[test]
    fn dir_names_back_to_folder_names() {
        assert_eq!(folder_name(".Lists.rust").as_deref(), Some("Lists/rust"));
        assert_eq!(folder_name(".&AMk-crits").as_deref(), Some("Écrits"));
        assert_eq!(folder_name(".Tom &- Jerry").as_deref(), Some("Tom & Jerry"));
        assert_eq!(folder_name(".INBOX.sub").as_deref(), Some("INBOX/sub"));
        for bad in [".", "..", "...", ".a..b", ".a.", "cur", ".&AMk", ".Été"] {
            assert_eq!(folder_name(bad), None, "{bad:?}");
        }
        for name in ["Lists/rust", "Écrits/日本語", "Sent Items", "a&b/c"] {
            assert_eq!(folder_name(&dir_name(name).unwrap()).as_deref(), Some(name));
        }
    }

    #[test]
    fn subscriptions_format() {
        let file = b"V\t2\n\nLists\trust\n&AMk-crits\nINBOX\n";
        let names = parse_subscriptions(file);
        assert_eq!(names, vec!["Lists/rust", "Écrits", "INBOX"]);
        assert_eq!(format_subscriptions(&names), file.to_vec());
        assert_eq!(subscription_line("a\tb"), "a&AAk-b");
        assert_eq!(tab_unescape("x\x01ty\x011"), "x\ty\x01");
        assert_eq!(
            parse_subscriptions(b"Lists.rust\nINBOX"),
            vec!["Lists/rust", "INBOX"]
        );
    }

    #[test]
    fn tree_adds_noselect_parents() {
        let f = |name: &str| Folder {
            name: name.into(),
            dir: dir_name(name).unwrap(),
        };
        let t = tree(&[f("INBOX"), f("Lists/rust"), f("Lists/go/deep"), f("A")]);
        let got: Vec<(&str, bool, bool)> = t
            .iter()
            .map(|e| (e.name.as_str(), e.selectable, e.has_children))
            .collect();
        assert_eq!(
            got,
            vec![
                ("INBOX", true, false),
                ("A", true, false),
                ("Lists", false, true),
                ("Lists/go", false, true),
                ("Lists/go/deep", true, false),
                ("Lists/rust", true, false),
            ]
        );
    }
}
