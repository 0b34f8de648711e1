//! The integration-test harness: a real SeaweedFS S3 server on loopback (signature checks on),
//! objects put with s5cmd (a peer, not our own client), the `s3imap` binary run as a user runs
//! it, and scratch directories that clean up after themselves.
//!
//! Needs `.ci/setup` to have been run (it installs SeaweedFS and s5cmd into `.venv`). When
//! `S3IMAP_TEST_RUNNER` is set (e.g. `qemu-aarch64-static -cpu cortex-a53`), the binary is
//! started through it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

pub const ACCESS_KEY: &str = "AKIAS3IMAPTEST";
pub const SECRET_KEY: &str = "s3imap-test-secret";

pub fn project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn venv_bin(name: &str) -> PathBuf {
    let p = project_dir().join(".venv/bin").join(name);
    assert!(
        p.exists(),
        "{} is missing: run `bash .ci/setup` first",
        p.display()
    );
    p
}

/// Whether a test's real peer is here. `found` says if it is; when it is not, under `CI=true`
/// the test fails with what to install (CI must never count a skip as a pass), elsewhere it
/// prints a loud SKIPPED line and the test returns early.
pub fn peer(what: &str, found: bool, install: &str) -> bool {
    if found {
        return true;
    }
    let msg = format!("{what} is not installed: {install} (or `bash .ci/setup`)");
    if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0") {
        panic!("CI=true and a test peer is missing: {msg}");
    }
    eprintln!("\n*** SKIPPED: {msg} ***\n");
    false
}

/// A scratch directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "s3imap-it-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The SeaweedFS S3 server on 127.0.0.1 that every test of one test binary shares: started
/// at the first [`bucket`] call, stopped by `.ci/s3-server`'s watcher when the test process
/// exits (statics are never dropped). Each test gets a bucket of its own.
pub struct S3Server {
    dir: PathBuf,
    pub endpoint: String,
}

/// One test's bucket on the shared server.
pub struct Bucket {
    pub server: &'static S3Server,
    pub bucket: String,
}

fn port_free(p: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
}

impl S3Server {
    /// The server of this test process, started on first use.
    pub fn shared() -> &'static S3Server {
        static SERVER: std::sync::OnceLock<S3Server> = std::sync::OnceLock::new();
        SERVER.get_or_init(S3Server::start)
    }

    fn start() -> S3Server {
        let weed = venv_bin("weed");
        let dir = std::env::temp_dir().join(format!("s3imap-it-s3-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let seed = std::process::id() as u64 * 7919
            + std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos() as u64;
        for attempt in 0..20u64 {
            let base = 20_000 + ((seed + attempt * 4099) % 2_800) as u16 * 15;
            if !(0..14).all(|i| port_free(base + i)) {
                continue;
            }
            let out = Command::new(project_dir().join(".ci/s3-server"))
                .arg("start")
                .arg(&dir)
                .arg(base.to_string())
                .env("S3_TEST_WATCH_PID", std::process::id().to_string())
                .env("WEED", &weed)
                .stderr(Stdio::inherit())
                .output()
                .expect("run .ci/s3-server");
            if out.status.success() {
                let endpoint = String::from_utf8(out.stdout).unwrap().trim().to_string();
                return S3Server { dir, endpoint };
            }
        }
        panic!("could not start SeaweedFS on any free port range");
    }

    /// s5cmd against this server with the test credentials.
    pub fn s5cmd(&self, args: &[&str]) -> Output {
        Command::new(venv_bin("s5cmd"))
            .arg("--endpoint-url")
            .arg(&self.endpoint)
            .args(args)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_REGION", "us-east-1")
            .output()
            .expect("run s5cmd")
    }

    /// The server's data directory (its log is `weed.log` there).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// A new, empty bucket for one test, named `<name>-<n>` (S3 bucket name rules: lower case).
pub fn bucket(name: &str) -> Bucket {
    static N: AtomicU32 = AtomicU32::new(0);
    let server = S3Server::shared();
    let bucket = format!(
        "{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let mut last = String::new();
    // SeaweedFS answers its health check a little before the filer takes buckets.
    for _ in 0..300 {
        let out = server.s5cmd(&["mb", &format!("s3://{bucket}")]);
        if out.status.success() {
            return Bucket { server, bucket };
        }
        last = String::from_utf8_lossy(&out.stderr).into_owned();
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("could not create bucket {bucket}: {last}");
}

impl Bucket {
    pub fn endpoint(&self) -> &str {
        &self.server.endpoint
    }

    /// The environment a user would give s3imap for this server and bucket
    /// (`S3IMAP_BUCKET` included).
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY".into(), SECRET_KEY.into()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_ENDPOINT_URL".into(), self.server.endpoint.clone()),
            ("S3IMAP_BUCKET".into(), self.bucket.clone()),
        ]
    }

    pub fn s5cmd(&self, args: &[&str]) -> Output {
        self.server.s5cmd(args)
    }

    /// Puts objects (key, body) with s5cmd, in one batch.
    pub fn put_all(&self, objects: &[(String, Vec<u8>)]) {
        let staging = TempDir::new("put");
        let mut script = String::new();
        for (i, (key, body)) in objects.iter().enumerate() {
            let f = staging.path().join(format!("o{i}"));
            std::fs::write(&f, body).unwrap();
            script.push_str(&format!(
                "cp \"{}\" \"s3://{}/{}\"\n",
                f.display(),
                self.bucket,
                key.replace('"', "\\\"")
            ));
        }
        let cmds = staging.path().join("commands.txt");
        std::fs::write(&cmds, script).unwrap();
        let out = self.s5cmd(&["run", cmds.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "s5cmd run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn put(&self, key: &str, body: &[u8]) {
        self.put_all(&[(key.to_string(), body.to_vec())]);
    }

    /// Every key in the bucket, sorted.
    pub fn keys(&self) -> Vec<String> {
        let out = self.s5cmd(&["ls", &format!("s3://{}/*", self.bucket)]);
        let text = String::from_utf8_lossy(&out.stdout);
        let mut keys: Vec<String> = text
            .lines()
            .filter_map(|l| {
                // "2026/11/28 18:48:23   240  inbound/msg1" — the key is the 4th field onwards.
                let mut rest = l;
                for _ in 0..3 {
                    rest = rest.trim_start();
                    rest = &rest[rest.find(' ')?..];
                }
                Some(rest.trim_start().to_string())
            })
            .collect();
        keys.sort();
        keys
    }
}

/// `s3imap` as a user would start it (through S3IMAP_TEST_RUNNER when set), with a clean
/// environment plus `env`.
pub fn s3imap(env: &[(String, String)]) -> Command {
    let bin = env!("CARGO_BIN_EXE_s3imap");
    let mut cmd = match std::env::var("S3IMAP_TEST_RUNNER") {
        Ok(r) if !r.trim().is_empty() => {
            let mut words = r.split_whitespace();
            let mut c = Command::new(words.next().unwrap());
            c.args(words).arg(bin);
            c
        }
        _ => Command::new(bin),
    };
    cmd.env_clear();
    for k in ["PATH", "TMPDIR", "QEMU_CPU"] {
        if let Ok(v) = std::env::var(k) {
            cmd.env(k, v);
        }
    }
    cmd.env("HOME", "/nonexistent");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs to completion; returns (exit code, stderr).
pub fn run(cmd: &mut Command) -> (i32, String) {
    let out = cmd.output().expect("start s3imap");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), err)
}

/// Runs to completion like [`run`], but kills the process and fails the test if it takes
/// longer than `ceiling` (a hang is a failure; the ceiling is generous, not a timing check).
pub fn run_within(cmd: &mut Command, ceiling: std::time::Duration) -> (i32, String) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start s3imap");
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let deadline = std::time::Instant::now() + ceiling;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {ceiling:?}: {cmd:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    (status.code().unwrap_or(-1), reader.join().unwrap())
}

/// A message as SES stores it: its receipt headers, then the sender's message.
pub fn ses_message(envelope_to: &str, to: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "Return-Path: <sender@other.example>\r\n\
         Received: from mail-out.other.example (mail-out.other.example [192.0.2.10])\r\n \
         by inbound-smtp.us-east-1.amazonaws.com with SMTP id 0a1b2c3d\r\n \
         for {envelope_to};\r\n Sat, 28 Nov 2026 10:00:00 +0000 (UTC)\r\n\
         X-SES-Spam-Verdict: PASS\r\n\
         X-SES-Virus-Verdict: PASS\r\n\
         Received-SPF: pass\r\n\
         From: Sender <sender@other.example>\r\n\
         To: {to}\r\n\
         Subject: {subject}\r\n\
         Date: Sat, 28 Nov 2026 10:00:00 +0000\r\n\
         Message-ID: <{subject}@other.example>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         {body}\r\n"
    )
    .into_bytes()
}

/// Every message file (new/ and cur/) under `dir`, recursively, as (path, contents).
pub fn message_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    fn walk(d: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n == ".s3imap") {
                    continue;
                }
                walk(&p, out);
            } else if p
                .parent()
                .and_then(|q| q.file_name())
                .is_some_and(|n| n == "new" || n == "cur")
            {
                out.push((p.clone(), std::fs::read(&p).unwrap_or_default()));
            }
        }
    }
    walk(dir, &mut out);
    out.sort();
    out
}

/// Message files of one Maildir (`new/` and `cur/`).
pub fn maildir_messages(maildir: &Path) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(rd) = std::fs::read_dir(maildir.join(sub)) {
            for e in rd.flatten() {
                v.push(std::fs::read(e.path()).unwrap());
            }
        }
    }
    v.sort();
    v
}

/// Files left in any tmp/ under `dir`.
pub fn tmp_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p
                .parent()
                .and_then(|q| q.file_name())
                .is_some_and(|n| n == "tmp")
            {
                out.push(p);
            }
        }
    }
    walk(dir, &mut out);
    out
}

/// Runs a python3 script against the IMAP server on 127.0.0.1:`port` with `M`, an
/// `imaplib.IMAP4` logged in as `user`, and `ok(r)`, which asserts an OK answer and returns
/// it. Returns what the script printed, or its stderr when it failed.
pub fn imaplib(port: u16, user: &str, password: &str, script: &str) -> Result<String, String> {
    let prelude = format!(
        "import imaplib, re, sys, time\n\
         M = imaplib.IMAP4('127.0.0.1', {port})\n\
         M.login({user:?}, {password:?})\n\
         def ok(r):\n    assert r[0] == 'OK', r\n    return r\n"
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!("{prelude}{script}\nM.logout()\n"))
        .output()
        .expect("run python3");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// `s3imap serve` on a free loopback port with a users file and mail root and no sync,
/// killed on drop. Ready once the port accepts connections.
pub struct Serve {
    child: std::process::Child,
    pub port: u16,
}

impl Serve {
    pub fn start(users: &Path, mail_root: &Path) -> Serve {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut child = s3imap(&[])
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--users"])
            .arg(users)
            .arg("--mail-root")
            .arg(mail_root)
            .stderr(Stdio::null())
            .spawn()
            .expect("start s3imap serve");
        // A generous ceiling (qemu): 120 s.
        for _ in 0..2400 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Serve { child, port };
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("s3imap serve did not start on 127.0.0.1:{port}");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
