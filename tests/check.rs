//! `s3imap check` finds each planted misconfiguration: S3 credentials and bucket (against
//! SeaweedFS, which checks signatures), the users file, the mail root, the TLS pair.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use support::*;

/// `s3imap check` with `env` and `args`: (exit code, stdout).
fn check(env: &[(String, String)], args: &[&str]) -> (i32, String) {
    let out = s3imap(env).arg("check").args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn line<'a>(out: &'a str, part: &str) -> &'a str {
    out.lines()
        .find(|l| l[5..].starts_with(&format!("{part}:")))
        .unwrap_or_else(|| panic!("no {part} line in\n{out}"))
}

fn cert(dir: &Path, name: &str) -> (String, String) {
    let (crt, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "30", "-subj", "/CN=check", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .stderr(Stdio::null())
        .status()
        .expect("run openssl");
    assert!(st.success());
    (
        crt.to_string_lossy().into_owned(),
        key.to_string_lossy().into_owned(),
    )
}

#[test]
fn check_finds_each_planted_misconfiguration() {
    let found = Command::new("openssl").arg("version").output().is_ok();
    if !peer("openssl", found, "bash .ci/apt ensure openssl") {
        return;
    }
    let b = bucket("check");
    b.put("inbound/one", b"Subject: x\r\n\r\nx\r\n");
    let work = TempDir::new("check");
    let w = work.path();
    let root = w.join("mail");
    std::fs::create_dir_all(root.join("alice@example.com/cur")).unwrap();
    let users = w.join("users");
    std::fs::write(&users, "alice@example.com:{PLAIN}pw\n").unwrap();
    let (crt, key) = cert(w, "good");
    let base = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = vec![
            "--prefix".into(),
            "inbound/".into(),
            "--mail-root".into(),
            root.to_string_lossy().into_owned(),
            "--users".into(),
            users.to_string_lossy().into_owned(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |env: &[(String, String)], v: Vec<String>| {
        let a: Vec<&str> = v.iter().map(String::as_str).collect();
        check(env, &a)
    };

    // All good.
    let (code, out) = run(&b.env(), base(&["--tls-cert", &crt, "--tls-key", &key]));
    assert_eq!(code, 0, "{out}");
    for part in ["s3", "users", "mail root", "tls"] {
        assert!(line(&out, part).starts_with("ok"), "{out}");
    }
    assert!(line(&out, "tls").contains("days left"), "{out}");

    // A wrong secret key: S3 rejects the signature.
    let mut env = b.env();
    env.iter_mut()
        .find(|(k, _)| k == "AWS_SECRET_ACCESS_KEY")
        .unwrap()
        .1 = "wrong-secret".into();
    let (code, out) = run(&env, base(&[]));
    assert_eq!(code, 1, "{out}");
    assert!(line(&out, "s3").starts_with("FAIL"), "{out}");
    assert!(line(&out, "s3").contains("credentials"), "{out}");

    // A bucket that does not exist.
    let mut env = b.env();
    env.iter_mut()
        .find(|(k, _)| k == "S3IMAP_BUCKET")
        .unwrap()
        .1 = "no-such-bucket-here".into();
    let (code, out) = run(&env, base(&[]));
    assert_eq!(code, 1);
    assert!(line(&out, "s3").contains("does not exist"), "{out}");

    // A users file with a scheme the server cannot verify, and a line that does not parse.
    std::fs::write(&users, "alice@example.com:{MD5-CRYPT}$1$x$y\n").unwrap();
    let (code, out) = run(&b.env(), base(&[]));
    assert_eq!(code, 1);
    assert!(line(&out, "users").starts_with("FAIL"), "{out}");
    std::fs::write(&users, "alice@example.com\n:broken\n").unwrap();
    let (_, out) = run(&b.env(), base(&[]));
    assert!(line(&out, "users").starts_with("FAIL"), "{out}");
    std::fs::write(&users, "alice@example.com:{PLAIN}pw\n").unwrap();

    // A Maildir owned by someone else than the mail root (as root only: chown).
    let as_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if as_root {
        std::os::unix::fs::chown(root.join("alice@example.com"), Some(12345), Some(12345)).unwrap();
        let (code, out) = run(&b.env(), base(&[]));
        assert_eq!(code, 1);
        assert!(line(&out, "mail root").contains("uid 12345"), "{out}");
        std::os::unix::fs::chown(root.join("alice@example.com"), Some(0), Some(0)).unwrap();
    }
    // A mail root that is missing, or a file.
    let gone = w.join("nowhere");
    let mut v = base(&[]);
    v[3] = gone.to_string_lossy().into_owned();
    let (code, out) = run(&b.env(), v);
    assert_eq!(code, 1);
    assert!(line(&out, "mail root").starts_with("FAIL"), "{out}");
    let mut v = base(&[]);
    v[3] = users.to_string_lossy().into_owned();
    let (_, out) = run(&b.env(), v);
    assert!(line(&out, "mail root").contains("not a directory"), "{out}");

    // A key that is not the certificate's.
    let (_, other_key) = cert(w, "other");
    let (code, out) = run(
        &b.env(),
        base(&["--tls-cert", &crt, "--tls-key", &other_key]),
    );
    assert_eq!(code, 1);
    assert!(line(&out, "tls").starts_with("FAIL"), "{out}");
    // Expired: the same certificate checked 31 days on.
    let now = s3imap::sync::now_unix();
    let f = s3imap::check::tls(&crt, &key, now + 31 * 86_400);
    assert!(!f.ok && f.detail.contains("expired"), "{f:?}");
    let f = s3imap::check::tls(&crt, &key, now + 20 * 86_400);
    assert!(f.ok && f.detail.contains("renew it soon"), "{f:?}");
}
