//! A throw-away Dovecot 2.3 IMAP server on loopback, for tests that check s3imap against the
//! real thing: `Dovecot::start(mail_root, users)` writes a config into a scratch directory,
//! starts `dovecot -F` on a free port with `mail_location = maildir:<mail_root>/%u`, and waits
//! for the greeting; dropping it stops Dovecot (SIGTERM, then SIGKILL) and removes the scratch.
//! [`Dovecot::python`] runs a python3 imaplib script against it.
//!
//! Users: `users` are (name, password) pairs in a passwd-file with `{PLAIN}` passwords; the
//! namespace is INBOX with `/` as separator, plain-text LOGIN allowed, no TLS.
//!
//! Privileges: Dovecot never touches mail as root, and its login process refuses to run as
//! root. Run as root (CI), it uses `nobody` for mail and logins, and `start` hands the mail
//! root to `nobody` first (files s3imap wrote as root would be unreadable to it otherwise);
//! run as another user, everything runs as that user.
//!
//! Include with `mod dovecot;`; call [`require`] first and return when it says false.
#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The `dovecot` binary: on PATH, or in the sbin directories a non-root PATH may lack.
pub fn available() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|d| d.join("dovecot"))
        .find(|p| p.is_file())
}

/// Whether Dovecot is here for a test: under `CI=true` its absence fails the test with what to
/// install; elsewhere the test is skipped, loudly (`support::peer`; include `mod support;` too).
pub fn require() -> bool {
    crate::support::peer(
        "Dovecot",
        available().is_some(),
        "bash .ci/apt ensure dovecot-imapd dovecot-core",
    )
}

/// A running Dovecot.
pub struct Dovecot {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

fn id(args: &[&str]) -> String {
    let out = Command::new("id").args(args).output().expect("run id");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    let _ = std::os::unix::fs::lchown(path, Some(uid), Some(gid));
    if path.is_dir() && !path.is_symlink() {
        for e in fs::read_dir(path).into_iter().flatten().flatten() {
            chown_tree(&e.path(), uid, gid);
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Dovecot {
    /// Starts Dovecot serving `mail_root` for `users` (name, password).
    pub fn start(mail_root: &Path, users: &[(&str, &str)]) -> Dovecot {
        Dovecot::start_with(mail_root, users, "", "")
    }

    /// [`Dovecot::start`] with more settings: `namespace` goes inside the INBOX namespace
    /// block (`mailbox Sent { ... }`), `extra_conf` at the end of dovecot.conf.
    pub fn start_with(
        mail_root: &Path,
        users: &[(&str, &str)],
        namespace: &str,
        extra_conf: &str,
    ) -> Dovecot {
        static N: AtomicU32 = AtomicU32::new(0);
        let bin = available().expect("dovecot is installed");
        // Short: Dovecot's unix sockets live under base_dir.
        let dir = std::env::temp_dir().join(format!(
            "s3imap-dv-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("state")).unwrap();
        fs::create_dir_all(mail_root).unwrap();
        let mail_root = fs::canonicalize(mail_root).unwrap();

        let root = fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false);
        let (mail_user, internal_user) = if root {
            ("nobody".to_string(), "root".to_string())
        } else {
            let me = id(&["-un"]);
            (me.clone(), me)
        };
        let uid: u32 = id(&["-u", &mail_user])
            .parse()
            .expect("uid of the mail user");
        let gid: u32 = id(&["-g", &mail_user])
            .parse()
            .expect("gid of the mail user");
        if root {
            chown_tree(&mail_root, uid, gid);
        }

        let passwd = dir.join("passwd");
        let mut entries = String::new();
        for (user, pass) in users {
            entries.push_str(&format!(
                "{user}:{{PLAIN}}{pass}::::{}\n",
                mail_root.join(user).display()
            ));
        }
        fs::write(&passwd, entries).unwrap();

        let port = free_port();
        let conf = dir.join("dovecot.conf");
        let d = dir.display();
        fs::write(
            &conf,
            format!(
                r#"protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
instance_name = s3imap-test-{port}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
mail_location = maildir:{root}/%u
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = 0
first_valid_gid = 0
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {mail_user}
passdb {{
  driver = passwd-file
  args = {passwd}
}}
userdb {{
  driver = passwd-file
  args = {passwd}
}}
namespace inbox {{
  inbox = yes
  prefix =
  separator = /
{namespace}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
{extra_conf}
"#,
                root = mail_root.display(),
                passwd = passwd.display(),
                internal_group = if root {
                    "root".to_string()
                } else {
                    id(&["-gn"])
                },
            ),
        )
        .unwrap();
        let log = fs::File::create(dir.join("stderr.log")).unwrap();
        let child = Command::new(bin)
            .arg("-F")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start dovecot");
        let mut dv = Dovecot {
            port,
            dir,
            child: Some(child),
        };
        dv.wait_ready();
        dv
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                s.set_read_timeout(Some(Duration::from_secs(5))).ok();
                let mut buf = [0u8; 64];
                if let Ok(n) = s.read(&mut buf)
                    && buf[..n].starts_with(b"* OK")
                {
                    let _ = s.write_all(b"a LOGOUT\r\n");
                    return;
                }
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("dovecot exited with {status}:\n{}", self.log());
            }
            if Instant::now() > deadline {
                panic!(
                    "dovecot did not answer on port {}:\n{}",
                    self.port,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Dovecot's log so far.
    pub fn log(&self) -> String {
        let mut s = fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default();
        s.push_str(&fs::read_to_string(self.dir.join("dovecot.log")).unwrap_or_default());
        s
    }

    /// Runs an imaplib script as `user` (`support::imaplib`); panics with Dovecot's log.
    pub fn python(&self, user: &str, password: &str, script: &str) -> String {
        crate::support::imaplib(self.port, user, password, script).unwrap_or_else(|e| {
            panic!(
                "python3 imaplib script failed:\n{e}\n--- dovecot log ---\n{}",
                self.log()
            )
        })
    }

    /// Stops Dovecot and waits until it is gone.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                // Give the imap processes it signalled a moment to finish their writes.
                std::thread::sleep(Duration::from_millis(200));
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
        let _ = fs::remove_dir_all(&self.dir);
    }
}
