//! Maildir and Maildir++ as Dovecot lays them out, and the one durable delivery primitive.
//!
//! A user's mail directory `<mail-root>/<address>/` is INBOX (`cur/ new/ tmp/`); folder `Junk`
//! is `.Junk/` beside them, marked by an empty `maildirfolder` file. A message file is named
//! `<unique>,S=<size>,W=<crlf-size>` in `new/`, and gains `:2,<flags>` when it moves to `cur/`.
//!
//! Delivery, the one primitive every writer uses (the sync, APPEND, COPY/MOVE across file
//! systems): [`Incoming`] writes the message once into `tmp/` and fsyncs it ([`Durable`]);
//! [`link_into`] hard-links it into `new/` (the sync: an existing name there means it was
//! delivered already) or into `cur/` with its flags (APPEND, COPY), copying into the target's
//! own `tmp/` first when it is on another file system; the caller fsyncs the directory
//! ([`DirSyncer`] groups those fsyncs); the tmp file goes when the [`Durable`] is dropped. A
//! crash at any point leaves either nothing or whole messages in `new/` and `cur/`; never a
//! partial one.

pub mod folders;
pub mod keywords;
pub mod modseq;
pub mod state;
pub mod store;
pub mod uidlist;

use std::collections::HashSet;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// A user's mail directory, `<mail-root>/<address>`, for an address checked not to reach
/// outside the mail root. Only [`user_dir`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserDir(PathBuf);

/// A Maildir inside a user's directory: INBOX (the user's directory) or a Maildir++ folder
/// `.<name>` with a checked name. Only [`folder_dir`] and [`folders::folder_path`] make one,
/// and the IMAP side opens mailboxes ([`crate::imap::registry`]) only by these.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MaildirPath(PathBuf);

impl std::ops::Deref for UserDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for UserDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl UserDir {
    /// The user's INBOX (the directory itself).
    pub fn inbox(&self) -> MaildirPath {
        MaildirPath(self.0.clone())
    }

    /// The Maildir at `dir_name` (`.Name`, as [`folders`] encodes it) under this directory.
    pub(crate) fn folder(&self, dir_name: &str) -> MaildirPath {
        MaildirPath(self.0.join(dir_name))
    }
}

impl std::ops::Deref for MaildirPath {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for MaildirPath {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

/// When a message was saved into its Maildir (RFC 8514 SAVEDATE), from its unique name: a
/// delivery, APPEND or COPY names the new file `<seconds>.<…>` at that moment (s3imap,
/// Dovecot and the Maildir convention alike). None for a name that does not start so.
pub fn save_time(unique: &str) -> Option<u64> {
    let secs = unique.split('.').next()?;
    if secs.is_empty() || secs.len() > 12 || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    secs.parse().ok().filter(|&t| t > 0)
}

/// The directory of `address`'s mail under `mail_root`, for an address that cannot reach
/// outside it ([`crate::mail::address::check_address`]: no `/`, no leading `.`, no control
/// characters); the reason otherwise.
pub fn user_dir(mail_root: &Path, address: &str) -> Result<UserDir, &'static str> {
    crate::mail::address::check_address(address)?;
    Ok(UserDir(mail_root.join(address)))
}

/// The Maildir of `folder` (None: INBOX) in a user's mail directory; `folder` is a name the
/// sync's routing checked ([`crate::sync::route::check_folder`]: no `/`, no `..`).
pub fn folder_dir(user: &UserDir, folder: Option<&str>) -> MaildirPath {
    match folder {
        None => user.inbox(),
        Some(f) => user.folder(&format!(".{f}")),
    }
}

/// Creates `cur/ new/ tmp/` (mode 0700) in `dir` if missing; `is_folder` also writes the
/// `maildirfolder` marker Maildir++ folders carry.
pub fn create(dir: &Path, is_folder: bool) -> io::Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true).mode(0o700);
    for sub in ["cur", "new", "tmp"] {
        b.create(dir.join(sub))?;
    }
    if is_folder {
        let marker = dir.join("maildirfolder");
        if !marker.exists() {
            File::create(marker)?;
        }
    }
    Ok(())
}

/// `<unique>,S=<size>,W=<vsize>`: the name Dovecot reads sizes from without opening the file.
pub fn file_name(unique: &str, size: u64, vsize: u64) -> String {
    format!("{unique},S={size},W={vsize}")
}

/// The unique part of a message file name: everything before the first `,` or `:`.
pub fn unique_part(name: &str) -> &str {
    name.split([',', ':']).next().unwrap_or(name)
}

/// Creates `path` as a new, empty file. A file already there (left by a crashed delivery)
/// is unlinked first, never truncated: it may be the same inode as a message already linked
/// into `new/`, and truncating it would empty that message.
pub fn create_fresh(path: &Path) -> io::Result<File> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    File::options().write(true).create_new(true).open(path)
}

/// fsyncs a directory so that the entries created in it survive a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Group commit for directory fsyncs: threads that linked files into the same directory share
/// one fsync instead of queueing one each. A caller returns once an fsync that *started after
/// its call* has completed, so its own entries are covered.
#[derive(Default)]
pub struct DirSyncer {
    state: std::sync::Mutex<std::collections::HashMap<PathBuf, DirSyncState>>,
    done: std::sync::Condvar,
}

#[derive(Default)]
struct DirSyncState {
    /// Tickets handed out.
    requested: u64,
    /// Every ticket up to this one is durable.
    completed: u64,
    running: bool,
}

impl DirSyncer {
    pub fn new() -> DirSyncer {
        DirSyncer::default()
    }

    /// Makes the entries created in `dir` before this call durable.
    pub fn sync(&self, dir: &Path) -> io::Result<()> {
        let poisoned = |_| io::Error::other("a thread panicked while syncing a directory");
        let mut map = self.state.lock().map_err(poisoned)?;
        let ticket = {
            let st = map.entry(dir.to_path_buf()).or_default();
            st.requested += 1;
            st.requested
        };
        loop {
            let st = map.get_mut(dir).expect("entry created above");
            if st.completed >= ticket {
                return Ok(());
            }
            if !st.running {
                st.running = true;
                let covers = st.requested;
                drop(map);
                let r = sync_dir(dir);
                map = self.state.lock().map_err(poisoned)?;
                let st = map.get_mut(dir).expect("entry created above");
                st.running = false;
                if r.is_ok() {
                    st.completed = st.completed.max(covers);
                }
                self.done.notify_all();
                r?;
                continue;
            }
            map = self.done.wait(map).map_err(poisoned)?;
        }
    }
}

/// What linking a message into `new/` or `cur/` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linked {
    New,
    /// A file of that name was there already: this message was delivered before.
    AlreadyThere,
}

/// `new/` or `cur/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sub {
    New,
    Cur,
}

impl Sub {
    fn dir(self) -> &'static str {
        match self {
            Sub::New => "new",
            Sub::Cur => "cur",
        }
    }
}

/// A message being written into a Maildir's `tmp/`, once, as it arrives.
pub struct Incoming {
    path: PathBuf,
    file: File,
    unique: String,
    sizes: SizeCounter,
}

impl Incoming {
    /// Starts `<maildir>/tmp/<unique>` (a leftover of that name is unlinked, never truncated:
    /// see [`create_fresh`]).
    pub fn create(maildir: &Path, unique: &str) -> io::Result<Incoming> {
        let tmp = maildir.join("tmp");
        if !tmp.is_dir() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&tmp)?;
        }
        let path = tmp.join(unique);
        let file = create_fresh(&path)?;
        Ok(Incoming {
            path,
            file,
            unique: unique.to_string(),
            sizes: SizeCounter::default(),
        })
    }

    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.sizes.feed(data);
        io::Write::write_all(&mut self.file, data)
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.sizes.size
    }

    /// The path in `tmp/` (for error messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sets the mtime (the INTERNALDATE Dovecot reads) and fsyncs: the message is whole on disk.
    pub fn finish(mut self, mtime: Option<std::time::SystemTime>) -> io::Result<Durable> {
        if let Some(t) = mtime
            && let Err(e) = self.file.set_modified(t)
        {
            // The date is not worth losing the message for.
            crate::warn!(
                "maildir",
                "{}: cannot set its date: {e}",
                self.path.display()
            );
        }
        let r = self.file.sync_all();
        // From here the Durable owns the tmp file (and removes it, also on an error).
        let durable = Durable {
            path: std::mem::take(&mut self.path),
            unique: self.unique.clone(),
            size: self.sizes.size,
            vsize: self.sizes.vsize,
        };
        r.map(|()| durable)
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        // Unfinished (an error, a client gone): nothing may stay behind. `finish` moves the
        // path into the Durable first.
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// A message whole and fsynced in `tmp/`, ready to be linked where it belongs; its tmp file is
/// removed when this is dropped.
#[derive(Debug)]
pub struct Durable {
    path: PathBuf,
    pub unique: String,
    pub size: u64,
    pub vsize: u64,
}

impl Durable {
    /// `<unique>,S=<size>,W=<vsize>`.
    pub fn name(&self) -> String {
        file_name(&self.unique, self.size, self.vsize)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Durable {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Links the complete file `src` (a [`Durable`]'s, or a message of another Maildir) into
/// `<maildir>/<sub>/<name>`. Across file systems it copies into that Maildir's own `tmp/`
/// first (keeping the mtime), fsyncs, and links that. The caller fsyncs the directory.
pub fn link_into(src: &Path, maildir: &Path, sub: Sub, name: &str) -> io::Result<Linked> {
    let dest = maildir.join(sub.dir()).join(name);
    let linked = |r: io::Result<()>| match r {
        Ok(()) => Ok(Linked::New),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Linked::AlreadyThere),
        Err(e) => Err(e),
    };
    match fs::hard_link(src, &dest) {
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
            let local_tmp = maildir.join("tmp").join(unique_part(name));
            let r = (|| {
                let mtime = fs::metadata(src)?.modified()?;
                let mut out = create_fresh(&local_tmp)?;
                io::copy(&mut File::open(src)?, &mut out)?;
                out.set_modified(mtime)?;
                out.sync_all()?;
                linked(fs::hard_link(&local_tmp, &dest))
            })();
            let _ = fs::remove_file(&local_tmp);
            r
        }
        r => linked(r),
    }
}

/// The unique parts of every message in `new/` and `cur/` of a Maildir.
pub fn unique_parts(maildir: &Path) -> io::Result<HashSet<String>> {
    let mut out = HashSet::new();
    for sub in ["new", "cur"] {
        let rd = match fs::read_dir(maildir.join(sub)) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in rd {
            let entry = entry?;
            if let Some(n) = entry.file_name().to_str() {
                out.insert(unique_part(n).to_string());
            }
        }
    }
    Ok(out)
}

/// Counts bytes and the CRLF-normalised size (every bare LF counts as two bytes) of a stream
/// fed in chunks.
#[derive(Debug, Default, Clone)]
pub struct SizeCounter {
    pub size: u64,
    pub vsize: u64,
    last_was_cr: bool,
}

impl SizeCounter {
    pub fn feed(&mut self, chunk: &[u8]) {
        self.size += chunk.len() as u64;
        self.vsize += chunk.len() as u64;
        let mut prev_cr = self.last_was_cr;
        for i in memchr::memchr_iter(b'\n', chunk) {
            let cr = if i == 0 {
                prev_cr
            } else {
                chunk[i - 1] == b'\r'
            };
            if !cr {
                self.vsize += 1;
            }
            prev_cr = false;
        }
        if let Some(&b) = chunk.last() {
            self.last_was_cr = b == b'\r';
        } else {
            self.last_was_cr = prev_cr;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            file_name("1.S3Iab.s3imap", 10, 12),
            "1.S3Iab.s3imap,S=10,W=12"
        );
        assert_eq!(unique_part("1.M2P3.h,S=10,W=12:2,S"), "1.M2P3.h");
        assert_eq!(unique_part("1.M2P3.h:2,"), "1.M2P3.h");
        assert_eq!(unique_part("plain"), "plain");
    }

    #[test]
    fn sizes_count_bare_lf_twice_across_chunks() {
        let mut c = SizeCounter::default();
        c.feed(b"a\r");
        c.feed(b"\nb\n");
        c.feed(b"\n");
        assert_eq!(c.size, 6);
        assert_eq!(c.vsize, 8);
        let mut d = SizeCounter::default();
        d.feed(b"x\r\n\r\n");
        assert_eq!((d.size, d.vsize), (5, 5));
    }

    #[test]
    fn dir_syncer_shares_fsyncs_between_threads() {
        let root = std::env::temp_dir().join(format!("s3imap-dirsync-{}", std::process::id()));
        fs::create_dir_all(&root).unwrap();
        let s = DirSyncer::new();
        std::thread::scope(|sc| {
            for i in 0..8 {
                let (s, root) = (&s, &root);
                sc.spawn(move || {
                    for j in 0..20 {
                        fs::write(root.join(format!("f{i}-{j}")), b"x").unwrap();
                        s.sync(root).unwrap();
                    }
                });
            }
        });
        {
            let map = s.state.lock().unwrap();
            let st = map.get(&root).unwrap();
            assert_eq!(st.requested, 160);
            assert_eq!(st.completed, 160);
        }
        assert!(s.sync(&root.join("missing")).is_err());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_leftover_tmp_file_is_replaced_not_truncated() {
        let root = std::env::temp_dir().join(format!("s3imap-fresh-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        create(&root, false).unwrap();
        let tmp = root.join("tmp/u1");
        fs::write(&tmp, b"whole message").unwrap();
        // A crash after the link left the tmp name pointing at the delivered inode.
        link_into(&tmp, &root, Sub::New, "u1,S=13,W=13").unwrap();
        let mut f = create_fresh(&tmp).unwrap();
        std::io::Write::write_all(&mut f, b"x").unwrap();
        assert_eq!(
            fs::read(root.join("new/u1,S=13,W=13")).unwrap(),
            b"whole message"
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn incoming_is_written_once_and_leaves_nothing_behind() {
        let root = std::env::temp_dir().join(format!("s3imap-incoming-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        create(&root, false).unwrap();
        // Abandoned half-way (a client gone): its tmp file goes.
        let mut f = Incoming::create(&root, "gone").unwrap();
        f.write(b"half").unwrap();
        drop(f);
        assert!(!root.join("tmp/gone").exists());
        // Finished: sizes counted as it was written (bare LF counts twice), linked into cur/.
        let mut f = Incoming::create(&root, "u2").unwrap();
        f.write(b"Subject: a\n\n").unwrap();
        f.write(b"b\r\n").unwrap();
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let d = f.finish(Some(t)).unwrap();
        assert_eq!(d.name(), "u2,S=15,W=17");
        let name = format!("{}:2,S", d.name());
        assert_eq!(
            link_into(d.path(), &root, Sub::Cur, &name).unwrap(),
            Linked::New
        );
        drop(d);
        assert!(!root.join("tmp/u2").exists(), "the tmp name is removed");
        let p = root.join("cur").join(&name);
        assert_eq!(fs::read(&p).unwrap(), b"Subject: a\n\nb\r\n");
        assert_eq!(fs::metadata(&p).unwrap().modified().unwrap(), t);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn layout_and_link() {
        let root = std::env::temp_dir().join(format!("s3imap-maildir-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let user = user_dir(&root, "a@b.c").unwrap();
        assert!(user_dir(&root, "../x@y").is_err());
        let junk = folder_dir(&user, Some("Junk"));
        create(&user, false).unwrap();
        create(&junk, true).unwrap();
        assert!(junk.join("maildirfolder").exists());
        assert!(!user.join("maildirfolder").exists());
        let tmp = user.join("tmp").join("u1");
        fs::write(&tmp, b"m").unwrap();
        assert_eq!(
            link_into(&tmp, &user, Sub::New, "u1,S=1,W=1").unwrap(),
            Linked::New
        );
        assert_eq!(
            link_into(&tmp, &junk, Sub::New, "u1,S=1,W=1").unwrap(),
            Linked::New
        );
        assert_eq!(
            link_into(&tmp, &user, Sub::New, "u1,S=1,W=1").unwrap(),
            Linked::AlreadyThere
        );
        fs::rename(user.join("new/u1,S=1,W=1"), user.join("cur/u1,S=1,W=1:2,S")).unwrap();
        assert!(unique_parts(&user).unwrap().contains("u1"));
        fs::remove_dir_all(&root).unwrap();
    }
}

#[cfg(test)]
mod save_time_tests {
    use super::save_time;

    #[test]
    fn save_time_from_unique_names() {
        assert_eq!(save_time("1764662400.M1P2Q3.host"), Some(1_764_662_400));
        assert_eq!(save_time("1700000000.S3Iab.s3imap"), Some(1_700_000_000));
        assert_eq!(save_time("msg.123"), None);
        assert_eq!(save_time(""), None);
        assert_eq!(save_time("0.x"), None);
    }
}
