//! Dovecot's passwd-file: `user:{SCHEME}hash:uid:gid:gecos:home:shell:extra`, every field after
//! the password optional. Blank lines and `#` comments are skipped.
//!
//! Parsing is pure; [`load`] reads the file. The password field is kept only inside [`Entry`],
//! whose Debug output hides it.

use std::fmt;
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
}
