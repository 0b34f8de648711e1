//! `s3imap sync` against a real S3 server (SeaweedFS, signatures checked), as a user runs it.

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use support::*;

const USERS: &str = "alice@example.com:{PLAIN}a:5000:5000::/var/mail/vmail/alice@example.com::\n\
                     bob@example.com:{PLAIN}b:5000:5000::/var/mail/vmail/bob@example.com::\n\
                     carol@example.com:{PLAIN}c\n";

struct Setup {
    s3: Bucket,
    work: TempDir,
}

impl Setup {
    fn new() -> Setup {
        let s3 = bucket("mail-in");
        let work = TempDir::new("sync");
        std::fs::write(work.path().join("users"), USERS).unwrap();
        Setup { s3, work }
    }
    fn mail(&self) -> std::path::PathBuf {
        self.work.path().join("mail")
    }
    fn env(&self) -> Vec<(String, String)> {
        let mut e = self.s3.env();
        e.push((
            "S3IMAP_MAIL_ROOT".into(),
            self.mail().to_string_lossy().into_owned(),
        ));
        e.push((
            "S3IMAP_USERS".into(),
            self.work
                .path()
                .join("users")
                .to_string_lossy()
                .into_owned(),
        ));
        e
    }
    fn sync(&self, extra: &[&str]) -> (i32, String) {
        run(s3imap(&self.env()).arg("sync").arg("--once").args(extra))
    }
}

fn summary_counts(stderr: &str) -> HashMap<String, u64> {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains("sync: listed"))
        .unwrap_or_else(|| panic!("no summary line in:\n{stderr}"));
    let mut m = HashMap::new();
    for part in line
        .split("sync: ")
        .last()
        .unwrap()
        .split(" (")
        .next()
        .unwrap()
        .split(", ")
    {
        let mut w = part.split(' ');
        let name = w.next().unwrap().to_string();
        let n = w.next().unwrap().parse().unwrap();
        m.insert(name, n);
    }
    m
}

fn counts(listed: u64, delivered: u64, skipped: u64, failed: u64) -> HashMap<String, u64> {
    [
        ("listed", listed),
        ("delivered", delivered),
        ("skipped", skipped),
        ("failed", failed),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

#[test]
fn delivers_each_message_to_its_recipients_and_folders() {
    let t = Setup::new();
    let to_alice = ses_message(
        "alice@example.com",
        "Alice <alice@example.com>",
        "one",
        "hello alice",
    );
    // The envelope recipient is not a user; the To header names two users: one copy each.
    let to_both = ses_message(
        "list@lists.example",
        "bob@example.com, Carol <carol+news@example.com>",
        "two",
        "hello both",
    );
    let spam = String::from_utf8(ses_message(
        "bob@example.com",
        "bob@example.com",
        "spam",
        "buy",
    ))
    .unwrap()
    .replace("X-SES-Spam-Verdict: PASS", "X-SES-Spam-Verdict: FAIL")
    .into_bytes();
    let virus = String::from_utf8(ses_message(
        "bob@example.com",
        "bob@example.com",
        "virus",
        "x",
    ))
    .unwrap()
    .replace("X-SES-Virus-Verdict: PASS", "X-SES-Virus-Verdict: FAIL")
    .into_bytes();
    // LF-only line ends (not what SES writes, but what other tools do) must keep working.
    let lf_only = b"To: alice@example.com\nSubject: lf\n\nline 1\nline 2\n".to_vec();
    let objects = vec![
        (
            "inbound/AMAZON_SES_SETUP_NOTIFICATION".to_string(),
            b"Amazon SES setup notification".to_vec(),
        ),
        ("inbound/plain".to_string(), to_alice.clone()),
        (
            "inbound/two recipients+plus=eq é".to_string(),
            to_both.clone(),
        ),
        ("inbound/deep/er/spam".to_string(), spam.clone()),
        ("inbound/virus".to_string(), virus.clone()),
        ("inbound/lf".to_string(), lf_only.clone()),
        ("elsewhere/not-synced".to_string(), to_alice.clone()),
    ];
    t.s3.put_all(&objects);

    let (code, err) = t.sync(&["--prefix", "inbound/"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(summary_counts(&err), counts(6, 5, 1, 0), "{err}");

    let m = t.mail();
    assert_eq!(maildir_messages(&m.join("alice@example.com")), {
        let mut v = vec![to_alice.clone(), lf_only.clone()];
        v.sort();
        v
    });
    assert_eq!(
        maildir_messages(&m.join("bob@example.com")),
        vec![to_both.clone()]
    );
    assert_eq!(
        maildir_messages(&m.join("carol@example.com")),
        vec![to_both.clone()]
    );
    assert_eq!(
        maildir_messages(&m.join("bob@example.com/.Junk")),
        vec![spam]
    );
    assert_eq!(
        maildir_messages(&m.join("bob@example.com/.Quarantine")),
        vec![virus]
    );
    assert!(m.join("bob@example.com/.Junk/maildirfolder").exists());
    assert!(!m.join("list@lists.example").exists());
    assert!(tmp_files(&m).is_empty(), "{:?}", tmp_files(&m));
    // Dovecot-style names carry the size and the CRLF size.
    let lf_name = std::fs::read_dir(m.join("alice@example.com/new"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .find(|n| n.ends_with(&format!(",S={},W={}", lf_only.len(), lf_only.len() + 5)))
        .expect("an S=/W= name for the LF message");
    assert!(lf_name.contains(".S3I"), "{lf_name}");
}

#[test]
fn resync_is_a_no_op_and_deleted_mail_stays_deleted() {
    let t = Setup::new();
    let msgs: Vec<(String, Vec<u8>)> = (0..5)
        .map(|i| {
            (
                format!("m{i}"),
                ses_message(
                    "alice@example.com",
                    "alice@example.com",
                    &format!("s{i}"),
                    "b",
                ),
            )
        })
        .collect();
    t.s3.put_all(&msgs);
    let (code, err) = t.sync(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(summary_counts(&err), counts(5, 5, 0, 0));
    // The user reads one (new/ → cur/ with flags) and deletes another, as an IMAP server does.
    let alice = t.mail().join("alice@example.com");
    let mut names: Vec<_> = std::fs::read_dir(alice.join("new"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    names.sort();
    let read = &names[0];
    std::fs::rename(
        read,
        alice.join("cur").join(format!(
            "{}:2,S",
            read.file_name().unwrap().to_str().unwrap()
        )),
    )
    .unwrap();
    std::fs::remove_file(&names[1]).unwrap();

    let (code, err) = t.sync(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(summary_counts(&err), counts(5, 0, 5, 0), "{err}");
    assert_eq!(maildir_messages(&alice).len(), 4);
}

#[test]
fn bad_objects_stay_in_the_bucket_with_a_reason_and_are_not_retried() {
    let t = Setup::new();
    t.s3.put_all(&[
        ("empty".to_string(), Vec::new()),
        (
            "binary".to_string(),
            vec![0x89, b'P', b'N', b'G', 0, 1, 2, 3, 0xff],
        ),
        (
            "nobody".to_string(),
            ses_message("x@elsewhere.example", "y@elsewhere.example", "n", "b"),
        ),
        (
            "good".to_string(),
            ses_message("bob@example.com", "bob@example.com", "g", "b"),
        ),
    ]);
    let (code, err) = t.sync(&[]);
    assert_eq!(code, 1, "a run with failures exits non-zero:\n{err}");
    assert_eq!(summary_counts(&err), counts(4, 1, 0, 3), "{err}");
    assert!(
        err.contains("empty: left in the bucket: empty object"),
        "{err}"
    );
    assert!(
        err.contains("binary: left in the bucket: not a mail message"),
        "{err}"
    );
    assert!(
        err.contains("nobody: left in the bucket: no local recipient"),
        "{err}"
    );
    assert!(err.contains("--catch-all"), "{err}");
    assert_eq!(t.s3.keys(), vec!["binary", "empty", "good", "nobody"]);

    // Not retried forever: the next run skips them and succeeds.
    let (code, err) = t.sync(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(summary_counts(&err), counts(4, 0, 4, 0), "{err}");

    // A catch-all takes what no user claims (new objects; old refusals stay refused).
    t.s3.put(
        "nobody2",
        &ses_message("x@elsewhere.example", "y@elsewhere.example", "n2", "b"),
    );
    let (code, err) = t.sync(&["--catch-all", "postmaster@example.com"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        maildir_messages(&t.mail().join("postmaster@example.com")).len(),
        1
    );
}

#[test]
fn after_delete_and_move_happen_only_after_delivery() {
    let t = Setup::new();
    t.s3.put_all(&[
        (
            "in/a".to_string(),
            ses_message("alice@example.com", "alice@example.com", "a", "b"),
        ),
        (
            "in/b".to_string(),
            ses_message("bob@example.com", "bob@example.com", "b", "b"),
        ),
        ("in/bad".to_string(), Vec::new()),
    ]);
    let (code, err) = t.sync(&["--prefix", "in/", "--after", "move:done/"]);
    assert_eq!(code, 1, "{err}");
    // Delivered objects moved; the refused one stays where it was.
    assert_eq!(t.s3.keys(), vec!["done/a", "done/b", "in/bad"]);
    assert_eq!(
        maildir_messages(&t.mail().join("alice@example.com")).len(),
        1
    );

    t.s3.put(
        "in/c",
        &ses_message("carol@example.com", "carol@example.com", "c", "b"),
    );
    let (code, err) = t.sync(&["--prefix", "in/", "--after", "delete"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(t.s3.keys(), vec!["done/a", "done/b", "in/bad"]);
    assert_eq!(
        maildir_messages(&t.mail().join("carol@example.com")).len(),
        1
    );

    // Moving inside the synced prefix does not re-deliver the moved objects.
    t.s3.put(
        "d",
        &ses_message("carol@example.com", "carol@example.com", "d", "b"),
    );
    let (code, err) = t.sync(&["--after", "move:archive/"]);
    assert_eq!(code, 0, "{err}");
    let (code, err) = t.sync(&["--after", "move:archive/"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        maildir_messages(&t.mail().join("carol@example.com")).len(),
        2,
        "{err}"
    );
    assert!(t.s3.keys().contains(&"archive/d".to_string()));
}

#[test]
fn lists_every_page() {
    let t = Setup::new();
    let objects: Vec<(String, Vec<u8>)> = (0..1205)
        .map(|i| {
            (
                format!("p/{i:05}"),
                format!("To: alice@example.com\r\nSubject: {i}\r\n\r\n{i}\r\n").into_bytes(),
            )
        })
        .collect();
    t.s3.put_all(&objects);
    let (code, err) = t.sync(&["--prefix", "p/"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(summary_counts(&err), counts(1205, 1205, 0, 0), "{err}");
    assert_eq!(
        maildir_messages(&t.mail().join("alice@example.com")).len(),
        1205
    );
}

#[test]
fn a_second_concurrent_run_exits_at_once() {
    let t = Setup::new();
    let state = t.mail().join(".s3imap");
    std::fs::create_dir_all(&state).unwrap();
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(state.join("sync.lock"))
        .unwrap();
    lock.try_lock().unwrap();
    std::fs::write(
        state.join("sync.lock"),
        "pid 4242 on other-pod since 2026-11-28T00:00:00Z",
    )
    .unwrap();
    // It must not wait for the lock: a wait would last until `drop(lock)` below, so a
    // generous ceiling tells "exits at once" from "waits".
    let (code, err) = run_within(
        s3imap(&t.env()).arg("sync").arg("--once"),
        std::time::Duration::from_secs(120),
    );
    assert_eq!(code, 75, "{err}");
    assert!(err.contains("another sync is already running"), "{err}");
    assert!(err.contains("pid 4242 on other-pod"), "{err}");
    drop(lock);
    let (code, err) = t.sync(&[]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn clear_errors_for_wrong_settings_and_no_secret_in_logs() {
    let t = Setup::new();
    let with = |k: &str, v: &str| {
        let mut e: Vec<(String, String)> = t.env().into_iter().filter(|(n, _)| n != k).collect();
        e.push((k.to_string(), v.to_string()));
        e.push(("S3IMAP_LOG".into(), "debug".into()));
        e.push(("AWS_MAX_ATTEMPTS".into(), "2".into()));
        e
    };
    let (code, err) =
        run(s3imap(&with("AWS_SECRET_ACCESS_KEY", "not-the-secret-xyz")).args(["sync", "--once"]));
    assert_ne!(code, 0);
    assert!(err.contains("rejected the credentials"), "{err}");
    assert!(
        !err.contains("not-the-secret-xyz") && !err.contains(SECRET_KEY),
        "{err}"
    );

    let (code, err) =
        run(s3imap(&with("S3IMAP_BUCKET", "no-such-bucket")).args(["sync", "--once"]));
    assert_ne!(code, 0);
    assert!(
        err.contains("bucket \"no-such-bucket\" does not exist"),
        "{err}"
    );

    let (code, err) =
        run(s3imap(&with("AWS_ENDPOINT_URL", "http://127.0.0.1:9")).args(["sync", "--once"]));
    assert_ne!(code, 0);
    assert!(
        err.contains("cannot reach the S3 endpoint http://127.0.0.1:9"),
        "{err}"
    );

    let (code, err) = run(s3imap(&with("S3IMAP_BUCKET", "")).args(["sync", "--once"]));
    assert_eq!(code, 2);
    assert!(err.contains("--bucket"), "{err}");

    // Secrets from files, as Kubernetes mounts them.
    let secret_file = t.work.path().join("secret");
    std::fs::write(&secret_file, format!("{SECRET_KEY}\n")).unwrap();
    let mut env: Vec<(String, String)> = t
        .env()
        .into_iter()
        .filter(|(n, _)| n != "AWS_SECRET_ACCESS_KEY")
        .collect();
    env.push((
        "AWS_SECRET_ACCESS_KEY_FILE".into(),
        secret_file.to_string_lossy().into_owned(),
    ));
    t.s3.put(
        "m",
        &ses_message("alice@example.com", "alice@example.com", "f", "b"),
    );
    let (code, err) = run(s3imap(&env).args(["sync", "--once"]));
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains(SECRET_KEY));
}

#[test]
fn interval_mode_picks_up_new_mail() {
    let t = Setup::new();
    let mut child = s3imap(&t.env())
        .args(["sync", "--interval", "1s"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    t.s3.put(
        "late",
        &ses_message("alice@example.com", "alice@example.com", "late", "b"),
    );
    let alice = t.mail().join("alice@example.com");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while maildir_messages(&alice).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(maildir_messages(&alice).len(), 1);
}

/// Peak RSS of a child, as GNU time reports it (the kernel's maxrss of that process alone;
/// measuring from a Python parent would count the parent's pages copied at fork).
fn peak_rss_kib(cmd: &mut std::process::Command) -> (i32, u64, String) {
    let mut timed = std::process::Command::new("/usr/bin/time");
    timed
        .args(["-f", "S3IMAP-MAXRSS %M"])
        .arg(cmd.get_program());
    timed.args(cmd.get_args());
    timed.env_clear();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            timed.env(k, v);
        }
    }
    let out = timed
        .output()
        .expect("/usr/bin/time (Debian package time; .ci/setup installs it)");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let kib = err
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("S3IMAP-MAXRSS "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(u64::MAX);
    (out.status.code().unwrap_or(-1), kib, err)
}

#[test]
fn a_40_mb_message_streams_in_little_memory() {
    let t = Setup::new();
    let mut body = ses_message("alice@example.com", "alice@example.com", "big", "");
    body.extend_from_slice(b"Content-Transfer-Encoding: base64\r\n\r\n");
    let line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\r\n";
    while body.len() < 40 << 20 {
        body.extend_from_slice(line);
    }
    t.s3.put("big", &body);
    let mut cmd = s3imap(&t.env());
    cmd.args(["sync", "--once"]);
    let (code, kib, err) = peak_rss_kib(&mut cmd);
    assert_eq!(code, 0, "{err}");
    let got = maildir_messages(&t.mail().join("alice@example.com"));
    assert_eq!(got.len(), 1);
    assert!(got[0] == body, "the delivered file differs from the object");
    if std::env::var("S3IMAP_TEST_RUNNER").is_err() {
        // Under an emulator the figure would be the emulator's.
        assert!(kib < 16 * 1024, "peak RSS {kib} KiB, budget 16 MiB");
    }
}

/// SIGKILL at many moments during a sync; after each kill, nothing partial is visible and
/// nothing is doubled; in the end every message is there exactly once.
#[test]
fn survives_sigkill_at_any_moment() {
    let t = Setup::new();
    let mut objects = Vec::new();
    for i in 0..60 {
        let mut m = ses_message(
            if i % 3 == 0 {
                "bob@example.com"
            } else {
                "alice@example.com"
            },
            if i % 7 == 0 {
                "alice@example.com, bob@example.com"
            } else {
                "x@elsewhere.example"
            },
            &format!("crash{i}"),
            &format!("message {i}"),
        );
        if i % 10 == 0 {
            // A few larger ones so that kills land mid-stream too.
            m.extend(std::iter::repeat_n(b'x', 600_000 + i * 1000));
            m.extend_from_slice(b"\r\n");
        }
        objects.push((format!("k/{i:03}"), m));
    }
    t.s3.put_all(&objects);
    let originals: std::collections::HashSet<Vec<u8>> =
        objects.iter().map(|(_, b)| b.clone()).collect();

    // How long an uninterrupted run takes, to spread the kills across it.
    let probe = TempDir::new("probe");
    let mut penv = t.env();
    penv.retain(|(k, _)| k != "S3IMAP_MAIL_ROOT");
    penv.push((
        "S3IMAP_MAIL_ROOT".into(),
        probe.path().to_string_lossy().into_owned(),
    ));
    let started = std::time::Instant::now();
    let (code, err) = run(s3imap(&penv).args(["sync", "--once", "--workers", "2"]));
    assert_eq!(code, 0, "{err}");
    let full = started.elapsed().max(std::time::Duration::from_millis(50));

    let check = |mail: &Path, round: usize| {
        let files = message_files(mail);
        let mut per_dir: HashMap<std::path::PathBuf, Vec<Vec<u8>>> = HashMap::new();
        for (path, content) in &files {
            assert!(
                originals.contains(content),
                "round {round}: {} is not a whole original message ({} bytes)",
                path.display(),
                content.len()
            );
            let maildir = path.parent().unwrap().parent().unwrap().to_path_buf();
            per_dir.entry(maildir).or_default().push(content.clone());
        }
        for (dir, mut v) in per_dir {
            let n = v.len();
            v.sort();
            v.dedup();
            assert_eq!(
                n,
                v.len(),
                "round {round}: a message is doubled in {}",
                dir.display()
            );
        }
    };

    let rounds = 24;
    for round in 0..rounds {
        let delay = full.mul_f64(round as f64 / rounds as f64 * 1.2);
        let mut child = s3imap(&t.env())
            .args([
                "sync",
                "--once",
                "--workers",
                if round % 2 == 0 { "1" } else { "4" },
            ])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        check(&t.mail(), round);
        // A mail client reads some of what arrived: new/ → cur/ with a flag.
        if round % 3 == 0 {
            for maildir in ["alice@example.com", "bob@example.com"] {
                let new = t.mail().join(maildir).join("new");
                if let Some(e) = std::fs::read_dir(&new)
                    .ok()
                    .and_then(|mut r| r.next())
                    .and_then(|e| e.ok())
                {
                    let name = e.file_name().into_string().unwrap();
                    std::fs::rename(
                        e.path(),
                        t.mail()
                            .join(maildir)
                            .join("cur")
                            .join(format!("{name}:2,S")),
                    )
                    .unwrap();
                }
            }
        }
    }
    let (code, err) = run(s3imap(&t.env()).args(["sync", "--once"]));
    assert_eq!(code, 0, "{err}");
    check(&t.mail(), rounds);
    // Exactly once per recipient: same as the uninterrupted run.
    for maildir in ["alice@example.com", "bob@example.com"] {
        assert_eq!(
            maildir_messages(&t.mail().join(maildir)),
            maildir_messages(&probe.path().join(maildir)),
            "{maildir} differs from an uninterrupted sync"
        );
    }
    assert!(!maildir_messages(&t.mail().join("alice@example.com")).is_empty());
}

#[test]
fn a_listing_with_repeated_keys_and_tokens_delivers_each_message_once_and_ends() {
    let work = TempDir::new("broken-s3");
    let objects = work.path().join("objects");
    std::fs::create_dir_all(&objects).unwrap();
    for i in 0..4 {
        std::fs::write(
            objects.join(format!("msg{i}")),
            ses_message(
                "alice@example.com",
                "alice@example.com",
                &format!("m{i}"),
                "body",
            ),
        )
        .unwrap();
    }
    let portfile = work.path().join("port");
    let mut server = Command::new("python3")
        .arg(project_dir().join("tests/broken_s3.py"))
        .arg(&objects)
        .arg(&portfile)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !portfile.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the stand-in did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let port = std::fs::read_to_string(&portfile).unwrap();
    std::fs::write(work.path().join("users"), USERS).unwrap();
    let mail = work.path().join("mail");
    let env: Vec<(String, String)> = [
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_MAX_ATTEMPTS", "1"),
        ("S3IMAP_BUCKET", "mail-in"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .chain([
        (
            "AWS_ENDPOINT_URL".into(),
            format!("http://127.0.0.1:{port}"),
        ),
        (
            "S3IMAP_MAIL_ROOT".into(),
            mail.to_string_lossy().into_owned(),
        ),
        (
            "S3IMAP_USERS".into(),
            work.path().join("users").to_string_lossy().into_owned(),
        ),
    ])
    .collect();
    let (code, stderr) = run_within(
        s3imap(&env).args(["sync", "--once", "--workers", "4"]),
        std::time::Duration::from_secs(120),
    );
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("gave the continuation token \"T1\" a second time"),
        "{stderr}"
    );
    let delivered = maildir_messages(&mail.join("alice@example.com"));
    assert_eq!(delivered.len(), 4, "each message once:\n{stderr}");
    // The next run (same broken server) delivers nothing again.
    let mut server = Command::new("python3")
        .arg(project_dir().join("tests/broken_s3.py"))
        .arg(&objects)
        .arg(work.path().join("port2"))
        .spawn()
        .unwrap();
    while !work.path().join("port2").exists() {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let port2 = std::fs::read_to_string(work.path().join("port2")).unwrap();
    let env2: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| {
            if k == "AWS_ENDPOINT_URL" {
                (k.clone(), format!("http://127.0.0.1:{port2}"))
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect();
    let (code, stderr) = run_within(
        s3imap(&env2).args(["sync", "--once", "--workers", "4"]),
        std::time::Duration::from_secs(120),
    );
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        maildir_messages(&mail.join("alice@example.com")).len(),
        4,
        "{stderr}"
    );
}

#[test]
fn adopt_records_what_the_old_sync_copied_and_delivers_the_rest() {
    let t = Setup::new();
    let msgs: Vec<(String, Vec<u8>)> = (0..4)
        .map(|i| {
            (
                format!("m{i}"),
                ses_message(
                    "alice@example.com",
                    "alice@example.com",
                    &format!("s{i}"),
                    "b",
                ),
            )
        })
        .collect();
    t.s3.put_all(&msgs);
    // What `aws s3 sync` into the Maildir left, then Dovecot: one read and flagged in cur/,
    // one still in new/; m2 and m3 never copied.
    let alice = t.mail().join("alice@example.com");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(alice.join(sub)).unwrap();
    }
    std::fs::write(alice.join("cur/1700000000.m0.old:2,FS"), &msgs[0].1).unwrap();
    std::fs::write(alice.join("new/m1"), &msgs[1].1).unwrap();
    // A different message with m2's subject but another size is not m2.
    std::fs::write(
        alice.join("new/other"),
        b"Subject: s2\r\n\r\nsomething else\r\n",
    )
    .unwrap();
    let (code, err) = t.sync(&["--adopt"]);
    assert_eq!(code, 0, "{err}");
    let c = summary_counts(&err);
    assert_eq!((c["delivered"], c["adopted"]), (2, 2), "{err}");
    assert_eq!(
        maildir_messages(&alice).len(),
        5,
        "2 old + 1 other + 2 new, no copy twice"
    );
    // The ledger has all four: the next run (with or without --adopt) delivers nothing.
    let (code, err) = t.sync(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(summary_counts(&err), counts(4, 0, 4, 0), "{err}");
    assert_eq!(maildir_messages(&alice).len(), 5);
}
