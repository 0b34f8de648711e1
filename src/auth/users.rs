//! The live user table: a Dovecot passwd-file that the servers authenticate against and the sync
//! takes its user names from, re-read when the file changes.
//!
//! [`UserDb`] is shared by reference between threads (the IMAP server calls it from a blocking
//! pool). On use, at most once per second, it compares the file's inode, size and mtime with
//! those of the version it holds; a changed file is re-read, and one that no longer parses keeps
//! the previous good table (with a warning, once per change). An unreadable file makes logins
//! [`AuthResult::Unavailable`] until it is readable again.
//!
//! Unknown users and wrong passwords are the same [`AuthResult::BadCredentials`], and an unknown
//! user still pays for a hash verification (against a fixed dummy hash of the file's most common
//! scheme), so response times do not reveal which addresses exist. Logs name the user, never the
//! password or the hash.

use crate::auth::passwd::{self, Entry, LoadError};
use crate::auth::scheme::{self, Scheme, SchemeError};
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// How often, at most, the file is looked at again.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// A user who logged in: what the passwd-file says beyond the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The name as the file spells it (the login may differ in case).
    pub name: String,
    pub home: Option<String>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// The extra fields (`userdb_…=…`), unparsed.
    pub extra: Option<String>,
    /// Logged in with a read-only app password: may read, not change.
    pub read_only: bool,
    /// The id of the app password it logged in with.
    pub token: Option<String>,
}

impl From<&Entry> for User {
    fn from(e: &Entry) -> User {
        User {
            name: e.user.clone(),
            home: e.home.clone(),
            uid: e.uid,
            gid: e.gid,
            extra: e.extra.clone(),
            read_only: false,
            token: None,
        }
    }
}

/// The answer to a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthResult {
    Ok(User),
    /// Unknown user or wrong password; deliberately not saying which.
    BadCredentials,
    /// The credentials cannot be checked now (unreadable file, unsupported or malformed hash).
    /// The reason is for the log and the administrator, not for the client.
    Unavailable(String),
    /// Not checked: too many failed logins from the client's address
    /// ([`super::throttle`]).
    Blocked,
}

/// A passwd-file's users, reloaded when the file changes.
pub struct UserDb {
    path: PathBuf,
    interval: Duration,
    state: RwLock<State>,
    /// Held while one thread looks at the file, so a burst of logins stats it once.
    refresh: Mutex<()>,
}

struct State {
    table: Arc<Table>,
    /// The version of the file last read (loaded or rejected); `None` after a read failure.
    stamp: Option<Stamp>,
    checked: Instant,
    /// Why the file cannot be read now.
    unavailable: Option<String>,
}

/// What identifies a version of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Stamp {
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
        }
    }
}

struct Table {
    /// Keyed by the ASCII-lowercased name.
    by_name: HashMap<String, Entry>,
    names: Vec<String>,
    /// Verified for unknown users, to cost what a real user costs.
    dummy: &'static str,
}

impl Table {
    fn new(entries: Vec<Entry>) -> Table {
        let mut counts: HashMap<Scheme, usize> = HashMap::new();
        for e in &entries {
            if let Ok(s) = Scheme::parse(&e.password) {
                *counts.entry(s).or_default() += 1;
            }
        }
        let common = Scheme::ALL
            .into_iter()
            .max_by_key(|s| counts.get(s).copied().unwrap_or(0))
            .filter(|s| counts.contains_key(s))
            .unwrap_or(scheme::DEFAULT_SCHEME);
        Table {
            names: entries.iter().map(|e| e.user.clone()).collect(),
            by_name: entries
                .into_iter()
                .map(|e| (e.user.to_ascii_lowercase(), e))
                .collect(),
            dummy: dummy_hash(common),
        }
    }

    fn get(&self, user: &str) -> Option<&Entry> {
        self.by_name.get(&user.to_ascii_lowercase())
    }
}

/// A hash of a random password nobody knows, per scheme (written by `doveadm pw`).
fn dummy_hash(s: Scheme) -> &'static str {
    match s {
        Scheme::Sha256Crypt => {
            "{SHA256-CRYPT}$5$ofGrfUBoUKMiP3qq$GO5N7NQsGiqh5DD3Q0Jlr8U8t0B8N627ePEkO58IrzA"
        }
        Scheme::BlfCrypt => {
            "{BLF-CRYPT}$2y$05$m2emtd72Ua793T5qHdMrLOD.8fOd8.st3XiKbe2RJ9tPgCi20y4c6"
        }
        Scheme::Argon2id => {
            "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$hjJcn0aO7B+DlZLtG9jn3A$q2cqB4KBLECMp7wcFNi8V0bBlmTaFMMsuSXZ0Qi7xSA"
        }
        Scheme::Argon2i => {
            "{ARGON2I}$argon2i$v=19$m=32768,t=4,p=1$yRaCVYtmcMeXYxz+SjMu7Q$9oj8uD5o58jXwT6mLrAynQO1B4gOTDX2yTeXsg4bFCs"
        }
        // The cheap digests gain nothing from a dummy that costs more than they do, but one
        // SHA512-CRYPT is still negligible next to a network round trip.
        _ => {
            "{SHA512-CRYPT}$6$V1T25vtbAU.WU64.$F6iGrDDU6076atj1nmN5EBXW7rfGHDVpZQBFrbzyBqD5s85Wvvf.8WDwii4eKJKT39z373M83pRL8dc4Ycx5e0"
        }
    }
}

/// What one look at the file found.
enum Probe {
    Same,
    Loaded(Table, Stamp),
    Rejected(Stamp, String),
    Unreadable(String),
}

impl UserDb {
    /// Loads the file; fails if it cannot be read or parsed (so a server does not start on a
    /// broken file).
    pub fn open(path: impl Into<PathBuf>) -> Result<UserDb, LoadError> {
        let path = path.into();
        let io = |err| LoadError::Io {
            path: path.clone(),
            err,
        };
        let (text, stamp) = read(&path).map_err(io)?;
        let entries = passwd::parse(&text).map_err(|err| LoadError::Parse {
            path: path.clone(),
            err,
        })?;
        Ok(UserDb {
            path,
            interval: CHECK_INTERVAL,
            state: RwLock::new(State {
                table: Arc::new(Table::new(entries)),
                stamp: Some(stamp),
                checked: Instant::now(),
                unavailable: None,
            }),
            refresh: Mutex::new(()),
        })
    }

    /// Looks at the file at most every `interval` instead of every second (zero: on every use).
    pub fn with_check_interval(mut self, interval: Duration) -> UserDb {
        self.interval = interval;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks a login. Never logs or keeps `password`.
    pub fn authenticate(&self, user: &str, password: &[u8]) -> AuthResult {
        let table = match self.table() {
            Ok(t) => t,
            Err(reason) => {
                crate::warn!("auth", "cannot check the login of {user:?}: {reason}");
                return AuthResult::Unavailable(reason);
            }
        };
        let Some(entry) = table.get(user) else {
            let _ = scheme::verify(table.dummy, password);
            crate::debug!("auth", "login of unknown user {user:?}");
            return AuthResult::BadCredentials;
        };
        match scheme::verify(&entry.password, password) {
            Ok(true) => AuthResult::Ok(User::from(entry)),
            Ok(false) => {
                crate::debug!("auth", "wrong password for {:?}", entry.user);
                AuthResult::BadCredentials
            }
            Err(SchemeError::Empty) => {
                let _ = scheme::verify(table.dummy, password);
                crate::warn!(
                    "auth",
                    "{:?} has no password in {}: login refused",
                    entry.user,
                    self.path.display()
                );
                AuthResult::BadCredentials
            }
            Err(err) => {
                let _ = scheme::verify(table.dummy, password);
                let reason = format!("user {:?} in {}: {err}", entry.user, self.path.display());
                crate::warn!("auth", "cannot check the login of {reason}");
                AuthResult::Unavailable(reason)
            }
        }
    }

    /// Why logins cannot be checked now (the file unreadable), or None when they can
    /// (blocking: may look at the file).
    pub fn unavailable(&self) -> Option<String> {
        self.table().err()
    }

    /// The user's entry when the account can log in at all (a password is set): what an app
    /// password logs in as. An empty password field locks tokens out too.
    pub fn lookup_active(&self, user: &str) -> Option<User> {
        let table = self.table().ok()?;
        table
            .get(user)
            .filter(|e| !e.password.trim().is_empty())
            .map(User::from)
    }

    /// The user's entry without checking a password (for userdb-style lookups).
    pub fn lookup(&self, user: &str) -> Option<User> {
        let table = self.table().ok()?;
        table.get(user).map(User::from)
    }

    /// The user names as the file spells them, in file order (from the last good version, even
    /// while the file is unreadable).
    pub fn users(&self) -> Vec<String> {
        let _ = self.table();
        self.read_state().table.names.clone()
    }

    fn read_state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current table, after looking at the file if it is time to.
    fn table(&self) -> Result<Arc<Table>, String> {
        let current = |st: &State| match &st.unavailable {
            Some(reason) => Err(reason.clone()),
            None => Ok(Arc::clone(&st.table)),
        };
        {
            let st = self.read_state();
            if st.checked.elapsed() < self.interval {
                return current(&st);
            }
        }
        let _one_at_a_time = self.refresh.lock().unwrap_or_else(PoisonError::into_inner);
        let prev = {
            let st = self.read_state();
            if st.checked.elapsed() < self.interval {
                return current(&st); // another thread looked while this one waited
            }
            st.stamp
        };
        let probe = self.probe(prev);
        let mut st = self.state.write().unwrap_or_else(PoisonError::into_inner);
        st.checked = Instant::now();
        match probe {
            Probe::Same => {
                if st.unavailable.take().is_some() {
                    crate::info!("auth", "{} is readable again", self.path.display());
                }
            }
            Probe::Loaded(table, stamp) => {
                crate::info!(
                    "auth",
                    "reloaded {} users from {}",
                    table.names.len(),
                    self.path.display()
                );
                st.table = Arc::new(table);
                st.stamp = Some(stamp);
                st.unavailable = None;
            }
            Probe::Rejected(stamp, reason) => {
                crate::warn!(
                    "auth",
                    "{reason}; keeping the {} users loaded before until the file is fixed",
                    st.table.names.len()
                );
                st.stamp = Some(stamp);
                st.unavailable = None;
            }
            Probe::Unreadable(reason) => {
                if st.unavailable.is_none() {
                    crate::warn!("auth", "{reason}; logins fail until it is readable");
                }
                st.stamp = None;
                st.unavailable = Some(reason);
            }
        }
        current(&st)
    }

    fn probe(&self, prev: Option<Stamp>) -> Probe {
        let unreadable = |e: std::io::Error| {
            Probe::Unreadable(format!(
                "cannot read the users file {}: {e}",
                self.path.display()
            ))
        };
        let mut file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) => return unreadable(e),
        };
        let stamp = match file.metadata() {
            Ok(m) => Stamp::of(&m),
            Err(e) => return unreadable(e),
        };
        if prev == Some(stamp) {
            return Probe::Same;
        }
        let mut text = String::new();
        if let Err(e) = file.read_to_string(&mut text) {
            return unreadable(e);
        }
        match passwd::parse(&text) {
            Ok(entries) => Probe::Loaded(Table::new(entries), stamp),
            Err(err) => Probe::Rejected(
                stamp,
                LoadError::Parse {
                    path: self.path.clone(),
                    err,
                }
                .to_string(),
            ),
        }
    }
}

/// The file's text and the stamp of the very inode it was read from.
fn read(path: &Path) -> std::io::Result<(String, Stamp)> {
    let mut f = File::open(path)?;
    let stamp = Stamp::of(&f.metadata()?);
    let mut text = String::new();
    f.read_to_string(&mut text)?;
    Ok((text, stamp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct Scratch(PathBuf);
    impl Scratch {
        fn new(content: &str) -> Scratch {
            static N: AtomicU32 = AtomicU32::new(0);
            let dir = std::env::temp_dir().join(format!(
                "s3imap-users-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let s = Scratch(dir);
            s.write(content);
            s
        }
        fn file(&self) -> PathBuf {
            self.0.join("users")
        }
        /// Replaces the file atomically, as an editor or `s3imap user` does.
        fn write(&self, content: &str) {
            let tmp = self.0.join("users.tmp");
            std::fs::write(&tmp, content).unwrap();
            std::fs::rename(&tmp, self.file()).unwrap();
        }
        fn db(&self) -> UserDb {
            UserDb::open(self.file())
                .unwrap()
                .with_check_interval(Duration::ZERO)
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const ALICE: &str = "Alice@Example.com:{SHA512-CRYPT}$6$LTOBMK.ZXW7fm6k.$zHl4H98qYUn51Pb9AbQ2SwusYQTad3QZyTX.rH2wWu1ks/40ssGcdEYx9M09YybXDDo3DVOCE92SOjLQ5J/It/:5000:5000::/var/mail/vmail/alice@example.com::userdb_x=1\n";

    #[test]
    fn authenticates_case_insensitively_and_hides_which_part_was_wrong() {
        let s = Scratch::new(&format!("# users\n{ALICE}bob@example.com:{{PLAIN}}b\n"));
        let db = s.db();
        let want = User {
            name: "Alice@Example.com".into(),
            home: Some("/var/mail/vmail/alice@example.com".into()),
            uid: Some(5000),
            gid: Some(5000),
            extra: Some("userdb_x=1".into()),
            read_only: false,
            token: None,
        };
        assert_eq!(
            db.authenticate("alice@example.COM", b"correct horse"),
            AuthResult::Ok(want.clone())
        );
        assert_eq!(db.lookup("ALICE@example.com"), Some(want));
        assert_eq!(
            db.authenticate("alice@example.com", b"wrong"),
            AuthResult::BadCredentials
        );
        assert_eq!(
            db.authenticate("nobody@example.com", b"correct horse"),
            AuthResult::BadCredentials
        );
        assert!(matches!(
            db.authenticate("bob@example.com", b"b"),
            AuthResult::Ok(User {
                uid: None,
                home: None,
                ..
            })
        ));
        assert_eq!(db.users(), ["Alice@Example.com", "bob@example.com"]);
    }

    #[test]
    fn unknown_users_cost_a_real_verification() {
        let s = Scratch::new(ALICE);
        let db = s.db();
        let time = |user: &str| {
            let t = Instant::now();
            let _ = db.authenticate(user, b"x");
            t.elapsed()
        };
        let known = time("alice@example.com");
        let unknown = time("zed@example.com");
        assert!(
            unknown * 3 > known,
            "unknown {unknown:?} vs known {known:?}"
        );
        assert_eq!(Table::new(vec![]).dummy, dummy_hash(Scheme::Sha512Crypt));
        for s in Scheme::ALL {
            let d = dummy_hash(s);
            assert!(scheme::verify(d, b"").is_ok(), "{d}");
        }
    }

    #[test]
    fn unusable_hashes_and_files_are_unavailable_not_bad_credentials() {
        let s = Scratch::new("a@x:{MD5-CRYPT}$1$CwsPo0eI$ivYyroOw4Tpl7sc66lT010\nb@x:\n");
        let db = s.db();
        match db.authenticate("a@x", b"pw") {
            AuthResult::Unavailable(r) => {
                assert!(r.contains("\"a@x\"") && r.contains("MD5-CRYPT"), "{r}")
            }
            other => panic!("{other:?}"),
        }
        // An empty password field is a locked account.
        assert_eq!(db.authenticate("b@x", b""), AuthResult::BadCredentials);

        std::fs::remove_file(s.file()).unwrap();
        assert!(matches!(
            db.authenticate("a@x", b"pw"),
            AuthResult::Unavailable(r) if r.contains("cannot read the users file")
        ));
        assert_eq!(db.users(), ["a@x", "b@x"], "the last good names stay");
        s.write("a@x:{PLAIN}pw\n");
        assert!(matches!(db.authenticate("a@x", b"pw"), AuthResult::Ok(_)));
    }

    #[test]
    fn reloads_changes_and_keeps_the_last_good_table_on_a_parse_error() {
        let s = Scratch::new("a@x:{PLAIN}one\n");
        let db = s.db();
        assert!(matches!(db.authenticate("a@x", b"one"), AuthResult::Ok(_)));
        s.write("a@x:{PLAIN}two\nb@x:{PLAIN}b\n");
        assert!(matches!(db.authenticate("a@x", b"two"), AuthResult::Ok(_)));
        assert_eq!(db.users(), ["a@x", "b@x"]);
        s.write("a@x:{PLAIN}three\nb@x:{PLAIN}b:notanumber\n");
        assert!(matches!(db.authenticate("a@x", b"two"), AuthResult::Ok(_)));
        assert_eq!(db.authenticate("a@x", b"three"), AuthResult::BadCredentials);
        s.write("c@x:{PLAIN}c\n");
        assert_eq!(db.users(), ["c@x"]);
        assert_eq!(db.authenticate("a@x", b"two"), AuthResult::BadCredentials);
    }

    #[test]
    fn looks_at_the_file_at_most_once_per_interval() {
        let s = Scratch::new("a@x:{PLAIN}one\n");
        let db = UserDb::open(s.file()).unwrap();
        s.write("a@x:{PLAIN}two\n");
        // Within the second after open, the old table answers.
        assert!(matches!(db.authenticate("a@x", b"one"), AuthResult::Ok(_)));
        std::thread::sleep(CHECK_INTERVAL + Duration::from_millis(50));
        assert!(matches!(db.authenticate("a@x", b"two"), AuthResult::Ok(_)));
    }

    #[test]
    fn open_fails_on_a_missing_or_broken_file() {
        let s = Scratch::new(":x\n");
        let e = UserDb::open(s.file()).err().unwrap();
        assert!(e.to_string().contains("line 1"), "{e}");
        let e = UserDb::open(s.0.join("missing")).err().unwrap();
        assert!(e.to_string().contains("cannot read the users file"), "{e}");
    }

    #[test]
    fn is_shared_between_threads_while_the_file_changes() {
        let s = Scratch::new("a@x:{PLAIN}pw\n");
        let db = s.db();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..200 {
                        assert!(matches!(db.authenticate("a@x", b"pw"), AuthResult::Ok(_)));
                    }
                });
            }
            for i in 0..50 {
                s.write(&format!("a@x:{{PLAIN}}pw\nu{i}@x:{{PLAIN}}u\n"));
            }
        });
    }
}
