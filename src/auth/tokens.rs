//! App passwords: PASETO v4.local tokens a user pastes into one client as its password, each
//! revocable on its own, optionally read-only.
//!
//! A token is `v4.local.<encrypted claims>.<footer>`: the claims (JSON) name the user (`sub`),
//! the token's id (`jti`), when it was issued and when it expires; the footer is the PASERK id
//! (`k4.lid.…`) of the key that made it, so keys can rotate. The state lives in a directory
//! (by default `<mail-root>/.s3imap/tokens/`):
//! - `keys`: PASERK `k4.local.…` keys, one per line, the first one issuing; created mode 0600
//!   at the first `token issue`, and refused if anyone but its owner may read it;
//! - `list`: one line per token that is valid (`id`, address, name, created, expires, scope,
//!   tab-separated; times in Unix seconds, 0 for never). Revoking removes the line, so a
//!   token counts only while its id is listed: revocation and expiry hold from the next login
//!   on, also on a running server (both files are looked at on every token login);
//! - `used`: when each token last logged in (written by the server, at most every ten minutes
//!   per token).
//!
//! The token itself is stored nowhere and never logged: only its id is.

use pasetors::Local;
use pasetors::keys::{Generate, SymmetricKey};
use pasetors::paserk::{FormatAsPaserk, Id};
use pasetors::token::UntrustedToken;
use pasetors::version4::{LocalToken, V4};
use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// What every token starts with.
pub const PREFIX: &str = "v4.local.";
/// A token's `last used` time is written again after this long.
const USED_EVERY: u64 = 600;
/// Opening the lock file never follows a link planted there (its value differs by
/// architecture, so libc's).
const O_NOFOLLOW: i32 = libc::O_NOFOLLOW;
/// The longest name a token may have.
const MAX_NAME: usize = 64;

/// One issued token, as `list` holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// 16 hex digits, random.
    pub id: String,
    pub address: String,
    /// What the user called it ("phone").
    pub name: String,
    /// Unix seconds.
    pub created: u64,
    pub expires: Option<u64>,
    /// Its sessions may read but change nothing.
    pub read_only: bool,
}

impl Record {
    fn line(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}\t{}\t{}\n",
            self.id,
            self.address,
            self.name,
            self.created,
            self.expires.unwrap_or(0),
            if self.read_only { "read-only" } else { "full" }
        )
    }

    fn parse(line: &str) -> Option<Record> {
        let f: Vec<&str> = line.split('\t').collect();
        let [id, address, name, created, expires, scope] = f.as_slice() else {
            return None;
        };
        let read_only = match *scope {
            "read-only" => true,
            "full" => false,
            _ => return None,
        };
        let expires: u64 = expires.parse().ok()?;
        Some(Record {
            id: id.to_string(),
            address: address.to_string(),
            name: name.to_string(),
            created: created.parse().ok()?,
            expires: (expires != 0).then_some(expires),
            read_only,
        })
    }
}

/// Why a token operation failed.
#[derive(Debug)]
pub enum TokenError {
    Io {
        path: PathBuf,
        err: io::Error,
    },
    /// The keys file can be read by others than its owner.
    KeysExposed {
        path: PathBuf,
        mode: u32,
    },
    /// A line of `keys` or `list` is not what this program writes.
    Corrupt {
        path: PathBuf,
        line: usize,
    },
    /// `--name` empty, too long, or with control characters.
    BadName,
    /// `token revoke ID` of an id that is not listed.
    UnknownId(String),
    /// The token library refused (no randomness, a bad key).
    Crypto(String),
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::Io { path, err } => write!(f, "{}: {err}", path.display()),
            TokenError::KeysExposed { path, mode } => write!(
                f,
                "{}: mode {mode:o} lets others read the token keys; chmod 600 it",
                path.display()
            ),
            TokenError::Corrupt { path, line } => {
                write!(f, "{}: line {line} is not a valid entry", path.display())
            }
            TokenError::BadName => write!(
                f,
                "a token's name is 1 to {MAX_NAME} printable characters without tabs"
            ),
            TokenError::UnknownId(id) => write!(f, "no token has the id {id:?}"),
            TokenError::Crypto(why) => write!(f, "token: {why}"),
        }
    }
}

impl std::error::Error for TokenError {}

/// What a password that may be a token turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Not shaped like a token: a password, for the users file.
    NotAToken,
    /// A valid token of this user.
    Valid(Record),
    /// A token that does not let this user in; why, for the log (never the token).
    Refused(&'static str),
}

/// A token directory: what `s3imap token` edits and the server checks logins against.
pub struct TokenStore {
    dir: PathBuf,
    /// Last-used times this process knows (and when each was last written).
    used: Mutex<HashMap<String, (u64, u64)>>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn io_at(path: &Path) -> impl Fn(io::Error) -> TokenError + '_ {
    move |err| TokenError::Io {
        path: path.to_path_buf(),
        err,
    }
}

/// The PASERK id of a key.
fn key_id(key: &SymmetricKey<V4>) -> String {
    let mut s = String::new();
    let _ = FormatAsPaserk::fmt(&Id::from(key), &mut s);
    s
}

impl TokenStore {
    /// The store in `dir` (nothing is created until a token is issued).
    pub fn new(dir: impl Into<PathBuf>) -> TokenStore {
        TokenStore {
            dir: dir.into(),
            used: Mutex::new(HashMap::new()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn keys_path(&self) -> PathBuf {
        self.dir.join("keys")
    }

    fn list_path(&self) -> PathBuf {
        self.dir.join("list")
    }

    fn used_path(&self) -> PathBuf {
        self.dir.join("used")
    }

    /// Who owns the token directory, or else the closest directory above it that exists
    /// (by default `<mail root>/.s3imap`, the server's user's).
    fn owner(&self) -> Option<(u32, u32)> {
        self.dir
            .ancestors()
            .find_map(|a| fs::metadata(a).ok())
            .map(|m| (m.uid(), m.gid()))
    }

    /// Gives a file this process just created (and holds open) to `owner` when it may (root
    /// running `s3imap token`), so the server can read what root wrote. By descriptor, so
    /// no link planted at the path can redirect it.
    fn give(owner: Option<(u32, u32)>, f: &File) {
        if let Some((uid, gid)) = owner {
            let _ = std::os::unix::fs::fchown(f, Some(uid), Some(gid));
        }
    }

    /// Holds the directory's lock file (`lock`, flock) across a read-change-write of
    /// `list`, so two `s3imap token` runs cannot undo each other (a revoked token coming
    /// back).
    fn lock(&self) -> Result<File, TokenError> {
        let owner = self.owner();
        self.make_dir(owner)?;
        let path = self.dir.join("lock");
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(O_NOFOLLOW)
            .mode(0o600)
            .open(&path)
            .map_err(io_at(&path))?;
        Self::give(owner, &f);
        f.lock().map_err(io_at(&path))?;
        Ok(f)
    }

    /// Creates the token directory (mode 0700) and any directory above it that is missing,
    /// each given to `owner` without following links.
    fn make_dir(&self, owner: Option<(u32, u32)>) -> Result<(), TokenError> {
        if self.dir.is_dir() {
            return Ok(());
        }
        let made: Vec<PathBuf> = self
            .dir
            .ancestors()
            .take_while(|a| !a.exists())
            .map(Path::to_path_buf)
            .collect();
        fs::create_dir_all(&self.dir).map_err(io_at(&self.dir))?;
        let _ = fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700));
        if let Some((uid, gid)) = owner {
            for d in &made {
                let _ = std::os::unix::fs::lchown(d, Some(uid), Some(gid));
            }
        }
        Ok(())
    }

    /// The keys, the issuing one first, each with its id; none when there is no keys file.
    fn keys(&self) -> Result<Vec<(String, SymmetricKey<V4>)>, TokenError> {
        let path = self.keys_path();
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_at(&path)(e)),
        };
        let mode = fs::metadata(&path).map_err(io_at(&path))?.mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(TokenError::KeysExposed { path, mode });
        }
        let mut keys = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key = SymmetricKey::<V4>::try_from(line).map_err(|_| TokenError::Corrupt {
                path: path.clone(),
                line: i + 1,
            })?;
            keys.push((key_id(&key), key));
        }
        Ok(keys)
    }

    /// The issuing key, made (mode 0600) if there is none yet.
    fn issuing_key(&self) -> Result<(String, SymmetricKey<V4>), TokenError> {
        if let Some(k) = self.keys()?.into_iter().next() {
            return Ok(k);
        }
        let owner = self.owner();
        self.make_dir(owner)?;
        if self.keys_path().exists() {
            // A keys file with no key in it (comments only): not overwritten.
            return Err(TokenError::Corrupt {
                path: self.keys_path(),
                line: 0,
            });
        }
        let key =
            SymmetricKey::<V4>::generate().map_err(|e| TokenError::Crypto(format!("{e:?}")))?;
        let mut text = String::new();
        FormatAsPaserk::fmt(&key, &mut text).map_err(|e| TokenError::Crypto(e.to_string()))?;
        text.push('\n');
        let path = self.keys_path();
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_at(&path))?;
        Self::give(owner, &f);
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(io_at(&path))?;
        let id = key_id(&key);
        Ok((id, key))
    }

    /// The tokens listed (valid or expired, not revoked).
    pub fn records(&self) -> Result<Vec<Record>, TokenError> {
        let path = self.list_path();
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_at(&path)(e)),
        };
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.is_empty())
            .map(|(i, l)| {
                Record::parse(l).ok_or(TokenError::Corrupt {
                    path: path.clone(),
                    line: i + 1,
                })
            })
            .collect()
    }

    /// Writes `name` in the directory whole: a temporary file, fsynced, renamed over it.
    fn replace(&self, name: &str, text: &str) -> Result<(), TokenError> {
        let path = self.dir.join(name);
        // A fresh name, created exclusively: nothing planted in the directory is followed.
        let mut raw = [0u8; 8];
        getrandom::getrandom(&mut raw)
            .map_err(|e| io_at(&path)(io::Error::other(e.to_string())))?;
        let nonce: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let tmp = self.dir.join(format!(".{name}.{nonce}.tmp"));
        let owner = self.owner();
        let write = || -> io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            Self::give(owner, &f);
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            File::open(&self.dir)?.sync_all()
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io_at(&path)(e)
        })
    }

    fn write_records(&self, records: &[Record]) -> Result<(), TokenError> {
        let text: String = records.iter().map(Record::line).collect();
        self.replace("list", &text)
    }

    /// Issues a token for `address`: (the token, its record). `expires_in`: seconds.
    pub fn issue(
        &self,
        address: &str,
        name: &str,
        expires_in: Option<u64>,
        read_only: bool,
    ) -> Result<(String, Record), TokenError> {
        if name.is_empty() || name.len() > MAX_NAME || name.chars().any(char::is_control) {
            return Err(TokenError::BadName);
        }
        let (kid, key) = self.issuing_key()?;
        let mut raw = [0u8; 8];
        getrandom::getrandom(&mut raw).map_err(|e| TokenError::Crypto(e.to_string()))?;
        let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let created = now();
        let record = Record {
            id,
            address: address.to_string(),
            name: name.to_string(),
            created,
            expires: expires_in.map(|s| created.saturating_add(s)),
            read_only,
        };
        let mut claims = serde_json::json!({
            "sub": record.address,
            "jti": record.id,
            "iat": crate::time::utc_timestamp(created),
        });
        if let Some(e) = record.expires {
            claims["exp"] = serde_json::Value::String(crate::time::utc_timestamp(e));
        }
        let token = LocalToken::encrypt(
            &key,
            claims.to_string().as_bytes(),
            Some(kid.as_bytes()),
            None,
        )
        .map_err(|e| TokenError::Crypto(format!("{e:?}")))?;
        let _lock = self.lock()?;
        let mut records = self.records()?;
        records.push(record.clone());
        self.write_records(&records)?;
        Ok((token, record))
    }

    /// Revokes one token by id.
    pub fn revoke(&self, id: &str) -> Result<Record, TokenError> {
        let _lock = self.lock()?;
        let mut records = self.records()?;
        let Some(i) = records.iter().position(|r| r.id == id) else {
            return Err(TokenError::UnknownId(id.to_string()));
        };
        let gone = records.remove(i);
        self.write_records(&records)?;
        Ok(gone)
    }

    /// Revokes every token of `address`; returns how many.
    pub fn revoke_all(&self, address: &str) -> Result<usize, TokenError> {
        if !self.list_path().exists() {
            return Ok(0);
        }
        let _lock = self.lock()?;
        let mut records = self.records()?;
        let before = records.len();
        records.retain(|r| !r.address.eq_ignore_ascii_case(address));
        let n = before - records.len();
        if n > 0 {
            self.write_records(&records)?;
        }
        Ok(n)
    }

    /// When each token last logged in (Unix seconds), as the server wrote it.
    pub fn last_used(&self) -> HashMap<String, u64> {
        let text = fs::read_to_string(self.used_path()).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let (id, t) = l.split_once('\t')?;
                Some((id.to_string(), t.parse().ok()?))
            })
            .collect()
    }

    /// Whether the token `id` still counts (listed, not expired): a session logged in with it
    /// ends when it does not (blocking: reads `list`).
    pub fn still_valid(&self, id: &str) -> bool {
        let t = now();
        match self.records() {
            Ok(r) => r
                .iter()
                .any(|r| r.id == id && r.expires.is_none_or(|e| e > t)),
            // Unreadable for now: the session is not ended for a passing error.
            Err(_) => true,
        }
    }

    /// Checks a login's password as a token of `user` (blocking: reads the directory). A
    /// token that fails says why only in the answer's reason, for the log.
    pub fn check(&self, user: &str, password: &[u8]) -> Result<Check, TokenError> {
        let Ok(text) = std::str::from_utf8(password) else {
            return Ok(Check::NotAToken);
        };
        if !text.starts_with(PREFIX) {
            return Ok(Check::NotAToken);
        }
        let Ok(untrusted) = UntrustedToken::<Local, V4>::try_from(text) else {
            return Ok(Check::Refused("malformed token"));
        };
        let footer = untrusted.untrusted_footer().to_vec();
        let keys = self.keys()?;
        let Some((_, key)) = keys.iter().find(|(id, _)| id.as_bytes() == footer) else {
            return Ok(Check::Refused("token of an unknown key"));
        };
        let Ok(trusted) = LocalToken::decrypt(key, &untrusted, Some(&footer), None) else {
            return Ok(Check::Refused("token does not verify"));
        };
        let claims: serde_json::Value = match serde_json::from_str(trusted.payload()) {
            Ok(v) => v,
            Err(_) => return Ok(Check::Refused("token claims unreadable")),
        };
        let (Some(sub), Some(jti)) = (claims["sub"].as_str(), claims["jti"].as_str()) else {
            return Ok(Check::Refused("token claims incomplete"));
        };
        if !sub.eq_ignore_ascii_case(user) {
            return Ok(Check::Refused("token of another user"));
        }
        let Some(record) = self.records()?.into_iter().find(|r| r.id == jti) else {
            return Ok(Check::Refused("token revoked"));
        };
        if !record.address.eq_ignore_ascii_case(user) {
            return Ok(Check::Refused("token of another user"));
        }
        let t = now();
        if record.expires.is_some_and(|e| e <= t) {
            return Ok(Check::Refused("token expired"));
        }
        self.note_used(&record.id, t);
        Ok(Check::Valid(record))
    }

    /// Remembers a login with token `id`; writes `used` when that time is news enough.
    fn note_used(&self, id: &str, t: u64) {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        let written = used.get(id).map_or(0, |&(_, w)| w);
        used.insert(id.to_string(), (t, written));
        if t.saturating_sub(written) < USED_EVERY {
            return;
        }
        // Tried at most every USED_EVERY per token, written or not.
        if let Some(e) = used.get_mut(id) {
            e.1 = t;
        }
        let Ok(listed) = self.records() else {
            return;
        };
        let listed: std::collections::HashSet<String> = listed.into_iter().map(|r| r.id).collect();
        let mut all = self.last_used();
        for (k, &(at, _)) in used.iter() {
            all.insert(k.clone(), at);
        }
        all.retain(|k, _| listed.contains(k));
        let text: String = all.iter().map(|(k, v)| format!("{k}\t{v}\n")).collect();
        if let Err(e) = self.replace("used", &text) {
            crate::warn!("auth", "recording a token's use: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(name: &str) -> TokenStore {
        let d = std::env::temp_dir().join(format!("s3imap-tokens-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        TokenStore::new(d)
    }

    #[test]
    fn issued_tokens_log_in_until_revoked() {
        let s = store("life");
        let (tok, rec) = s.issue("a@x.org", "phone", None, false).unwrap();
        assert!(tok.starts_with(PREFIX));
        assert!(!fs::read_to_string(s.list_path()).unwrap().contains(&tok));
        let mode = fs::metadata(s.keys_path()).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            s.check("A@x.org", tok.as_bytes()).unwrap(),
            Check::Valid(rec.clone())
        );
        assert_eq!(
            s.check("b@x.org", tok.as_bytes()).unwrap(),
            Check::Refused("token of another user")
        );
        assert_eq!(s.check("a@x.org", b"hunter2").unwrap(), Check::NotAToken);
        // A changed byte no longer verifies.
        let mut bad = tok.clone().into_bytes();
        bad[20] = if bad[20] == b'A' { b'B' } else { b'A' };
        assert!(matches!(
            s.check("a@x.org", &bad).unwrap(),
            Check::Refused(_)
        ));
        assert!(s.last_used().contains_key(&rec.id));
        assert!(s.still_valid(&rec.id));
        s.revoke(&rec.id).unwrap();
        assert!(!s.still_valid(&rec.id));
        assert_eq!(
            s.check("a@x.org", tok.as_bytes()).unwrap(),
            Check::Refused("token revoked")
        );
        assert!(matches!(s.revoke(&rec.id), Err(TokenError::UnknownId(_))));
        let _ = fs::remove_dir_all(s.dir());
    }

    #[test]
    fn expired_read_only_and_rotated_keys() {
        let s = store("expiry");
        let (old, _) = s.issue("a@x.org", "laptop", None, true).unwrap();
        // Rotation: a new key first; tokens of the old key still verify.
        let new = SymmetricKey::<V4>::generate().unwrap();
        let mut text = String::new();
        FormatAsPaserk::fmt(&new, &mut text).unwrap();
        let keys = fs::read_to_string(s.keys_path()).unwrap();
        fs::write(s.keys_path(), format!("{text}\n{keys}")).unwrap();
        match s.check("a@x.org", old.as_bytes()).unwrap() {
            Check::Valid(r) => assert!(r.read_only),
            other => panic!("{other:?}"),
        }
        let (tok, _) = s.issue("a@x.org", "tablet", Some(0), false).unwrap();
        assert!(tok.ends_with(&base64_footer(&key_id(&new))));
        assert_eq!(
            s.check("a@x.org", tok.as_bytes()).unwrap(),
            Check::Refused("token expired")
        );
        assert_eq!(s.revoke_all("A@X.org").unwrap(), 2);
        assert!(s.records().unwrap().is_empty());
        // Keys others may read are refused.
        fs::set_permissions(s.keys_path(), fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            s.check("a@x.org", old.as_bytes()),
            Err(TokenError::KeysExposed { .. })
        ));
        assert!(matches!(
            s.issue("a@x.org", "bad\tname", None, false),
            Err(TokenError::BadName)
        ));
        // A link planted as the lock file is not followed.
        fs::set_permissions(s.keys_path(), fs::Permissions::from_mode(0o600)).unwrap();
        let target = s.dir().join("target");
        fs::write(&target, "precious").unwrap();
        let _ = fs::remove_file(s.dir().join("lock"));
        std::os::unix::fs::symlink(&target, s.dir().join("lock")).unwrap();
        assert!(matches!(
            s.issue("a@x.org", "x", None, false),
            Err(TokenError::Io { .. })
        ));
        assert_eq!(fs::read_to_string(&target).unwrap(), "precious");
        let _ = fs::remove_dir_all(s.dir());
    }

    fn base64_footer(kid: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(kid)
    }
}
