//! Dovecot's passwd-file: `user:{SCHEME}hash:uid:gid:gecos:home:shell:extra`, every field after
//! the password optional. Blank lines and `#` comments are skipped.
//!
//! Parsing is pure; [`load`] reads the file. The password field is kept only inside [`Entry`],
//! whose Debug output hides it.
//!
//! Editing ([`add_user`], [`change_password`], [`set_password`], [`remove_user`]) rewrites only
//! the one user's line (only its password field, for a change): comments, blank lines, other
//! users' lines and line endings stay byte for byte. A new user is appended as
//! `user:{SCHEME}hash::::::` — uid, gid and home empty unless given, because the usual virtual
//! setup takes them from elsewhere (Dovecot's `mail_uid`/`userdb static`, s3imap's mail root)
//! and a guessed uid would be worse than none. Every write is atomic: `<file>.tmp` in the same
//! directory, with the file's mode and owner (0600 for a new file), fsynced, renamed over the
//! file, then the directory fsynced. Concurrent editors are serialised by a lock on the tmp
//! file; the file is never edited while it does not parse.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// One user line.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    /// The login name, for us always an email address (`alice@example.com`).
    pub user: String,
    /// `{SCHEME}hash` as written (or a bare hash, which Dovecot reads as its default scheme).
    pub password: String,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub home: Option<String>,
    /// The extra fields (`userdb_mail=...` etc.), unparsed.
    pub extra: Option<String>,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("uid", &self.uid)
            .field("gid", &self.gid)
            .field("home", &self.home)
            .finish()
    }
}

/// A line that is not a passwd-file entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    EmptyUser { line: usize },
    BadNumber { line: usize, field: &'static str },
    Duplicate { line: usize, user: String },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::EmptyUser { line } => write!(f, "line {line}: the user name is empty"),
            ParseError::BadNumber { line, field } => {
                write!(f, "line {line}: the {field} field is not a number")
            }
            ParseError::Duplicate { line, user } => {
                write!(f, "line {line}: user {user:?} is listed twice")
            }
        }
    }
}

impl std::error::Error for ParseError {}

/// Reading the users file failed.
#[derive(Debug)]
pub enum LoadError {
    Io { path: PathBuf, err: std::io::Error },
    Parse { path: PathBuf, err: ParseError },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io { path, err } => {
                write!(f, "cannot read the users file {}: {err}", path.display())
            }
            LoadError::Parse { path, err } => {
                write!(f, "users file {}: {err}", path.display())
            }
        }
    }
}

impl std::error::Error for LoadError {}

/// Parses a whole passwd-file.
pub fn parse(text: &str) -> Result<Vec<Entry>, ParseError> {
    let mut out: Vec<Entry> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim_end_matches('\r');
        if l.trim().is_empty() || l.trim_start().starts_with('#') {
            continue;
        }
        let mut parts = l.splitn(8, ':');
        let user = parts.next().unwrap_or("").trim().to_string();
        if user.is_empty() {
            return Err(ParseError::EmptyUser { line });
        }
        let password = parts.next().unwrap_or("").to_string();
        let num = |s: Option<&str>, field| -> Result<Option<u32>, ParseError> {
            match s.map(str::trim) {
                None | Some("") => Ok(None),
                Some(v) => v
                    .parse()
                    .map(Some)
                    .map_err(|_| ParseError::BadNumber { line, field }),
            }
        };
        let uid = num(parts.next(), "uid")?;
        let gid = num(parts.next(), "gid")?;
        let _gecos = parts.next();
        let home = parts.next().filter(|s| !s.is_empty()).map(str::to_string);
        let _shell = parts.next();
        let extra = parts.next().filter(|s| !s.is_empty()).map(str::to_string);
        if out.iter().any(|e| e.user.eq_ignore_ascii_case(&user)) {
            return Err(ParseError::Duplicate { line, user });
        }
        out.push(Entry {
            user,
            password,
            uid,
            gid,
            home,
            extra,
        });
    }
    Ok(out)
}

/// Reads and parses the file at `path`.
pub fn load(path: &Path) -> Result<Vec<Entry>, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|err| LoadError::Io {
        path: path.to_path_buf(),
        err,
    })?;
    parse(&text).map_err(|err| LoadError::Parse {
        path: path.to_path_buf(),
        err,
    })
}

/// What an edit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    Added,
    Changed,
    Removed,
}

/// Optional fields of a new user's line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewFields {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub home: Option<String>,
}

/// An edit that was refused or failed; the file is unchanged in every case.
#[derive(Debug)]
pub enum EditError {
    /// The name cannot be a user (the passwd-file format or a Maildir path would break).
    BadUser { user: String, problem: &'static str },
    /// A field value would break the line.
    BadField {
        field: &'static str,
        problem: &'static str,
    },
    /// `add` of a user who is there (spelt as in the file).
    Exists { path: PathBuf, user: String },
    /// `passwd` or `del` of a user who is not there.
    Missing { path: PathBuf, user: String },
    /// The file does not parse now; it is not touched until it is fixed.
    Parse { path: PathBuf, err: ParseError },
    Io {
        path: PathBuf,
        action: &'static str,
        err: io::Error,
    },
}

impl fmt::Display for EditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EditError::BadUser { user, problem } => {
                write!(f, "{user:?} cannot be a user name: {problem}")
            }
            EditError::BadField { field, problem } => write!(f, "the {field} {problem}"),
            EditError::Exists { path, user } => write!(
                f,
                "user {user:?} already exists in {}; change its password with `s3imap user passwd`",
                path.display()
            ),
            EditError::Missing { path, user } => write!(
                f,
                "user {user:?} is not in {}; add it with `s3imap user add`",
                path.display()
            ),
            EditError::Parse { path, err } => write!(
                f,
                "users file {}: {err}; fix that line first (nothing was changed)",
                path.display()
            ),
            EditError::Io { path, action, err } => {
                write!(f, "cannot {action} {}: {err}", path.display())
            }
        }
    }
}

impl std::error::Error for EditError {}

/// Whether `user` can be a line of the file and a Maildir name: an address (see
/// [`crate::mail::address::check_address`]) without ':', whitespace or a leading '#'.
pub fn check_user(user: &str) -> Result<(), &'static str> {
    crate::mail::address::check_address(user)?;
    if user.contains(':') {
        return Err("it must not contain ':'");
    }
    if user.chars().any(char::is_whitespace) {
        return Err("it must not contain spaces");
    }
    if user.starts_with('#') {
        return Err("it must not start with '#'");
    }
    Ok(())
}

/// Adds `user` with password field `new_field` (`{SCHEME}hash`); fails if the user exists.
pub fn add_user(
    path: &Path,
    user: &str,
    new_field: &str,
    fields: &NewFields,
) -> Result<Edit, EditError> {
    edit(path, user, Op::Set(new_field, Want::New, fields))
}

/// Replaces the password field of an existing `user`; fails if the user is missing.
pub fn change_password(path: &Path, user: &str, new_field: &str) -> Result<Edit, EditError> {
    edit(
        path,
        user,
        Op::Set(new_field, Want::Existing, &NewFields::default()),
    )
}

/// Replaces `user`'s password field, or adds the user (with empty uid, gid and home).
pub fn set_password(path: &Path, user: &str, new_field: &str) -> Result<Edit, EditError> {
    edit(
        path,
        user,
        Op::Set(new_field, Want::Either, &NewFields::default()),
    )
}

/// Removes `user`'s line; fails if the user is missing.
pub fn remove_user(path: &Path, user: &str) -> Result<Edit, EditError> {
    edit(path, user, Op::Remove)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    New,
    Existing,
    Either,
}

enum Op<'a> {
    Set(&'a str, Want, &'a NewFields),
    Remove,
}

/// Why [`apply`] refused (the caller adds the path).
#[derive(Debug, PartialEq, Eq)]
enum Refused {
    Exists(String),
    Missing,
    Parse(ParseError),
}

fn check_field(field: &'static str, v: &str, may_be_empty: bool) -> Result<(), EditError> {
    let problem = if !may_be_empty && v.is_empty() {
        "is empty"
    } else if v.contains(':') {
        "must not contain ':'"
    } else if v.chars().any(char::is_control) {
        "must not contain control characters"
    } else {
        return Ok(());
    };
    Err(EditError::BadField { field, problem })
}

fn edit(path: &Path, user: &str, op: Op<'_>) -> Result<Edit, EditError> {
    check_user(user).map_err(|problem| EditError::BadUser {
        user: user.to_string(),
        problem,
    })?;
    if let Op::Set(field, _, extra) = &op {
        check_field("password field", field, false)?;
        if let Some(home) = &extra.home {
            check_field("home directory", home, false)?;
        }
    }
    let io = |path: &Path, action| {
        let path = path.to_path_buf();
        move |err| EditError::Io { path, action, err }
    };
    // Edit the target of a symlink, so that the link stays a link.
    let path = match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            fs::canonicalize(path).map_err(io(path, "follow the symlink"))?
        }
        _ => path.to_path_buf(),
    };
    let adds = matches!(op, Op::Set(_, Want::New | Want::Either, _));
    if !adds && fs::symlink_metadata(&path).is_err_and(|e| e.kind() == io::ErrorKind::NotFound) {
        return Err(EditError::Missing {
            path,
            user: user.to_string(),
        });
    }
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    let mut lock = lock_tmp(&tmp).map_err(io(&tmp, "create and lock"))?;
    let mut renamed = false;
    let result = (|| {
        let (text, meta) = match fs::read_to_string(&path) {
            Ok(t) => {
                let m = fs::metadata(&path).map_err(io(&path, "read"))?;
                (t, Some(m))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => (String::new(), None),
            Err(e) => return Err(io(&path, "read")(e)),
        };
        let (new_text, edit) = apply(&text, user, &op).map_err(|r| match r {
            Refused::Exists(user) => EditError::Exists {
                path: path.clone(),
                user,
            },
            Refused::Missing => EditError::Missing {
                path: path.clone(),
                user: user.to_string(),
            },
            Refused::Parse(err) => EditError::Parse {
                path: path.clone(),
                err,
            },
        })?;
        write_tmp(&mut lock, new_text.as_bytes(), meta.as_ref()).map_err(io(&tmp, "write"))?;
        fs::rename(&tmp, &path).map_err(io(&path, "replace"))?;
        renamed = true;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir, "sync the directory"))?;
        Ok(edit)
    })();
    if !renamed {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Opens `tmp` and takes an exclusive lock on it, making sure the locked inode is still the one
/// at `tmp` (an editor that held it before may have renamed it into place meanwhile).
fn lock_tmp(tmp: &Path) -> io::Result<File> {
    loop {
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(tmp)?;
        f.lock()?;
        let mine = f.metadata()?;
        match fs::symlink_metadata(tmp) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(io::Error::other("it is a symlink; remove it"));
            }
            Ok(m) if m.dev() == mine.dev() && m.ino() == mine.ino() => return Ok(f),
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        }
    }
}

fn write_tmp(f: &mut File, text: &[u8], like: Option<&fs::Metadata>) -> io::Result<()> {
    f.set_len(0)?;
    f.write_all(text)?;
    match like {
        Some(m) => {
            f.set_permissions(fs::Permissions::from_mode(m.mode() & 0o7777))?;
            // Keeps the owner when allowed to (root); otherwise the file becomes the editor's.
            let _ = std::os::unix::fs::fchown(&*f, Some(m.uid()), Some(m.gid()));
        }
        None => f.set_permissions(fs::Permissions::from_mode(0o600))?,
    }
    f.sync_all()
}

/// The user name of a line, as [`parse`] reads it, or `None` for a blank or comment line.
fn line_user(body: &str) -> Option<&str> {
    if body.trim().is_empty() || body.trim_start().starts_with('#') {
        return None;
    }
    Some(body.split(':').next().unwrap_or("").trim())
}

/// The file's new text. Pure: the part of editing that tests can see in full.
fn apply(text: &str, user: &str, op: &Op<'_>) -> Result<(String, Edit), Refused> {
    parse(text).map_err(Refused::Parse)?;
    let mut out = String::with_capacity(text.len() + 160);
    let mut found: Option<String> = None;
    for raw in text.split_inclusive('\n') {
        let no_nl = raw.strip_suffix('\n').unwrap_or(raw);
        let body = no_nl.trim_end_matches('\r');
        let ending = &raw[body.len()..];
        let matches = line_user(body).is_some_and(|u| u.eq_ignore_ascii_case(user));
        if !matches {
            out.push_str(raw);
            continue;
        }
        found = Some(line_user(body).unwrap_or(user).to_string());
        match op {
            Op::Remove => {}
            Op::Set(_, Want::New, _) => {}
            Op::Set(field, _, _) => {
                match body.split_once(':') {
                    None => {
                        out.push_str(body);
                        out.push(':');
                        out.push_str(field);
                    }
                    Some((name, rest)) => {
                        out.push_str(name);
                        out.push(':');
                        out.push_str(field);
                        if let Some(i) = rest.find(':') {
                            out.push_str(&rest[i..]);
                        }
                    }
                }
                out.push_str(ending);
            }
        }
    }
    let edit = match (op, found) {
        (Op::Set(_, Want::New, _), Some(existing)) => return Err(Refused::Exists(existing)),
        (Op::Set(_, Want::Existing, _), None) | (Op::Remove, None) => return Err(Refused::Missing),
        (Op::Remove, Some(_)) => Edit::Removed,
        (Op::Set(..), Some(_)) => Edit::Changed,
        (Op::Set(field, _, extra), None) => {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            let num = |n: Option<u32>| n.map(|n| n.to_string()).unwrap_or_default();
            out.push_str(&format!(
                "{user}:{field}:{}:{}::{}::\n",
                num(extra.uid),
                num(extra.gid),
                extra.home.as_deref().unwrap_or("")
            ));
            Edit::Added
        }
    };
    // The result must read back as the file did plus this one change.
    parse(&out).map_err(Refused::Parse)?;
    Ok((out, edit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dovecot_lines() {
        let t = "# users\n\
                 alice@example.com:{SHA512-CRYPT}$6$salt$hash:5000:5000::/var/mail/vmail/alice@example.com::\n\
                 \n\
                 bob@example.com:{PLAIN}pw\n\
                 carol@example.com:{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA:::::: userdb_quota_rule=*:storage=1G\r\n";
        let e = parse(t).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].user, "alice@example.com");
        assert_eq!(e[0].uid, Some(5000));
        assert_eq!(
            e[0].home.as_deref(),
            Some("/var/mail/vmail/alice@example.com")
        );
        assert_eq!(e[1].password, "{PLAIN}pw");
        assert_eq!(e[1].uid, None);
        assert!(
            e[2].password
                .starts_with("{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$")
        );
        assert_eq!(
            e[2].extra.as_deref(),
            Some(" userdb_quota_rule=*:storage=1G")
        );
    }

    #[test]
    fn rejects_bad_lines_with_their_number() {
        assert_eq!(parse(":x").unwrap_err(), ParseError::EmptyUser { line: 1 });
        assert_eq!(
            parse("a:x\nb:x:abc").unwrap_err(),
            ParseError::BadNumber {
                line: 2,
                field: "uid"
            }
        );
        assert!(matches!(
            parse("a:x\nA:y").unwrap_err(),
            ParseError::Duplicate { line: 2, .. }
        ));
    }

    #[test]
    fn debug_hides_the_password() {
        let e = parse("a@b:{PLAIN}hunter2").unwrap();
        assert!(!format!("{e:?}").contains("hunter2"));
    }

    const FILE: &str = "# s3imap users\r\n\
                        \n\
                        alice@example.com:{PLAIN}old:5000:5000::/home/a::userdb_x=1\r\n\
                        #bob@example.com:{PLAIN}commented\n\
                        carol@example.com:{PLAIN}c\n\
                        dave@example.com\n\
                        erin@example.com:{PLAIN}e";

    fn set(text: &str, user: &str, field: &str, want: Want) -> Result<(String, Edit), Refused> {
        apply(text, user, &Op::Set(field, want, &NewFields::default()))
    }

    #[test]
    fn changing_a_password_touches_only_that_field() {
        let (t, e) = set(FILE, "ALICE@example.com", "{PLAIN}new", Want::Existing).unwrap();
        assert_eq!(e, Edit::Changed);
        assert_eq!(t, FILE.replace("{PLAIN}old", "{PLAIN}new"));
        let (t, _) = set(FILE, "carol@example.com", "{X}y", Want::Either).unwrap();
        assert_eq!(t, FILE.replace("{PLAIN}c\n", "{X}y\n"));
        let (t, _) = set(FILE, "dave@example.com", "{X}y", Want::Existing).unwrap();
        assert_eq!(
            t,
            FILE.replace("dave@example.com\n", "dave@example.com:{X}y\n")
        );
        let (t, _) = set(FILE, "erin@example.com", "{X}y", Want::Existing).unwrap();
        assert_eq!(t, FILE.replace("{PLAIN}e", "{X}y"));
    }

    #[test]
    fn adding_appends_one_line_and_keeps_the_rest() {
        let (t, e) = set(FILE, "bob@example.com", "{X}y", Want::New).unwrap();
        assert_eq!(e, Edit::Added);
        assert_eq!(t, format!("{FILE}\nbob@example.com:{{X}}y::::::\n"));
        let fields = NewFields {
            uid: Some(5000),
            gid: Some(5001),
            home: Some("/var/mail/vmail/bob@example.com".into()),
        };
        let (t, _) = apply("", "bob@example.com", &Op::Set("{X}y", Want::New, &fields)).unwrap();
        assert_eq!(
            t,
            "bob@example.com:{X}y:5000:5001::/var/mail/vmail/bob@example.com::\n"
        );
        let e = parse(&t).unwrap();
        assert_eq!((e[0].uid, e[0].gid), (Some(5000), Some(5001)));
        let (t, _) = set("a@x:{P}a\n", "b@x", "{P}b", Want::Either).unwrap();
        assert_eq!(t, "a@x:{P}a\nb@x:{P}b::::::\n");
    }

    #[test]
    fn removing_drops_exactly_one_line() {
        let (t, e) = apply(FILE, "Carol@Example.com", &Op::Remove).unwrap();
        assert_eq!(e, Edit::Removed);
        assert_eq!(t, FILE.replace("carol@example.com:{PLAIN}c\n", ""));
        let (t, _) = apply(FILE, "erin@example.com", &Op::Remove).unwrap();
        assert_eq!(t, FILE.strip_suffix("erin@example.com:{PLAIN}e").unwrap());
    }

    #[test]
    fn refuses_what_the_caller_did_not_expect() {
        assert_eq!(
            set(FILE, "Alice@example.com", "{X}y", Want::New).unwrap_err(),
            Refused::Exists("alice@example.com".into())
        );
        assert_eq!(
            set(FILE, "bob@example.com", "{X}y", Want::Existing).unwrap_err(),
            Refused::Missing
        );
        assert_eq!(
            apply(FILE, "bob@example.com", &Op::Remove).unwrap_err(),
            Refused::Missing
        );
        assert!(matches!(
            set("a@x:p:nan\n", "b@x", "{X}y", Want::New).unwrap_err(),
            Refused::Parse(ParseError::BadNumber { line: 1, .. })
        ));
    }

    #[test]
    fn user_names_must_be_safe_addresses() {
        assert!(check_user("alice@example.com").is_ok());
        for bad in [
            "alice",
            "a:b@x",
            "a\n@x",
            "../a@x",
            ".a@x",
            "a/b@x",
            "a b@x",
            "#a@x",
            "",
            "a\u{7f}@x",
        ] {
            assert!(check_user(bad).is_err(), "{bad:?}");
        }
    }

    struct Dir(PathBuf);
    impl Dir {
        fn new() -> Dir {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let d = std::env::temp_dir().join(format!(
                "s3imap-passwd-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&d);
            fs::create_dir_all(&d).unwrap();
            Dir(d)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn edits_on_disk_are_atomic_and_keep_the_mode() {
        let d = Dir::new();
        let f = d.0.join("users");
        let none = NewFields::default();
        assert_eq!(add_user(&f, "a@x", "{PLAIN}a", &none).unwrap(), Edit::Added);
        assert_eq!(fs::metadata(&f).unwrap().mode() & 0o777, 0o600);
        assert!(matches!(
            add_user(&f, "A@x", "{PLAIN}b", &none),
            Err(EditError::Exists { .. })
        ));
        fs::set_permissions(&f, fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(
            change_password(&f, "a@x", "{PLAIN}b").unwrap(),
            Edit::Changed
        );
        assert_eq!(fs::metadata(&f).unwrap().mode() & 0o777, 0o640);
        assert_eq!(set_password(&f, "c@x", "{PLAIN}c").unwrap(), Edit::Added);
        assert_eq!(
            fs::read_to_string(&f).unwrap(),
            "a@x:{PLAIN}b::::::\nc@x:{PLAIN}c::::::\n"
        );
        assert_eq!(remove_user(&f, "a@x").unwrap(), Edit::Removed);
        assert!(matches!(
            remove_user(&f, "a@x"),
            Err(EditError::Missing { .. })
        ));
        assert!(matches!(
            change_password(&d.0.join("nope"), "a@x", "{PLAIN}a"),
            Err(EditError::Missing { .. })
        ));
        assert!(!d.0.join("nope").exists());
        assert!(matches!(
            remove_user(&d.0.join("no/such/dir/users"), "a@x"),
            Err(EditError::Missing { .. })
        ));
        let names: Vec<_> = fs::read_dir(&d.0)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["users"], "no tmp file is left behind");
        assert!(matches!(
            set_password(&f, "a:b@x", "{PLAIN}a"),
            Err(EditError::BadUser { .. })
        ));
        assert!(matches!(
            set_password(&f, "a@x", "{PLAIN}a:b"),
            Err(EditError::BadField { .. })
        ));
        let msg = add_user(&d.0.join("no/such/dir"), "a@x", "{PLAIN}a", &none)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("cannot create and lock"), "{msg}");
    }

    #[test]
    fn edits_through_a_symlink_keep_the_link() {
        let d = Dir::new();
        let real = d.0.join("real");
        fs::write(&real, "a@x:{PLAIN}a\n").unwrap();
        let link = d.0.join("users");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        change_password(&link, "a@x", "{PLAIN}b").unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read_to_string(&real).unwrap(), "a@x:{PLAIN}b\n");
    }

    #[test]
    fn concurrent_editors_lose_no_update() {
        let d = Dir::new();
        let f = d.0.join("users");
        std::thread::scope(|s| {
            for t in 0..4 {
                let f = &f;
                s.spawn(move || {
                    for i in 0..10 {
                        let user = format!("u{t}-{i}@x");
                        add_user(f, &user, "{PLAIN}p", &NewFields::default()).unwrap();
                    }
                });
            }
        });
        assert_eq!(load(&f).unwrap().len(), 40);
    }
}
