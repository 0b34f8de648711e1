//! `s3imap user add|passwd|del` as an administrator runs it (password on standard input), checked
//! three ways: the file's exact bytes, `UserDb::authenticate`, and — when `doveadm` is on PATH —
//! Dovecot itself (`doveadm pw -t`), so hashes we write are hashes Dovecot accepts.

mod support;

use s3imap::auth::passwd;
use s3imap::auth::users::{AuthResult, UserDb};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use support::TempDir;

/// Runs `s3imap user <args>` with `stdin` piped in; returns (exit code, stderr).
fn user(env: &[(String, String)], args: &[&str], stdin: &[u8]) -> (i32, String) {
    let mut cmd = support::s3imap(env);
    cmd.arg("user")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start s3imap");
    // The child may exit before reading (a refused name): a broken pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), err)
}

fn users_env(file: &Path) -> Vec<(String, String)> {
    vec![(
        "S3IMAP_USERS".to_string(),
        file.to_string_lossy().into_owned(),
    )]
}

fn read(file: &Path) -> String {
    std::fs::read_to_string(file).unwrap()
}

/// `doveadm pw -t` on `field`: Some(accepted) when doveadm is installed, None when it is not.
fn doveadm_accepts(field: &str, password: &str) -> Option<bool> {
    match Command::new("doveadm")
        .args(["pw", "-t", field, "-p", password])
        .output()
    {
        Ok(out) => Some(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("(verified)"),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("cannot run doveadm: {e}"),
    }
}

fn field_of(text: &str, user: &str) -> String {
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{user}:")))
        .unwrap_or_else(|| panic!("{user} not in {text:?}"));
    line.split(':').nth(1).unwrap().to_string()
}

#[test]
fn every_scheme_round_trips_through_the_cli_userdb_and_doveadm() {
    let dir = TempDir::new("auth-schemes");
    let file = dir.path().join("users");
    let env = users_env(&file);
    let mut doveadm_missing = false;
    for scheme in [
        "SHA512-CRYPT",
        "SHA256-CRYPT",
        "BLF-CRYPT",
        "ARGON2ID",
        "ARGON2I",
    ] {
        let name = format!("{}@example.com", scheme.to_ascii_lowercase());
        let password = format!("pässwörd {scheme}:$1");
        let (code, err) = user(
            &env,
            &["add", &name, "--scheme", scheme],
            format!("{password}\n").as_bytes(),
        );
        assert_eq!(code, 0, "{err}");
        assert!(err.contains(&format!("added {name}")), "{err}");
        assert!(!err.contains(&password), "the password is never printed");

        let text = read(&file);
        let line = text.lines().last().unwrap();
        assert!(
            line.starts_with(&format!("{name}:{{{scheme}}}")) && line.ends_with("::::::"),
            "{line}"
        );
        let field = field_of(&text, &name);
        match doveadm_accepts(&field, &password) {
            Some(ok) => assert!(ok, "doveadm pw -t rejected our {scheme} hash {field}"),
            None => doveadm_missing = true,
        }
        let db = UserDb::open(&file).unwrap();
        match db.authenticate(&name.to_ascii_uppercase(), password.as_bytes()) {
            AuthResult::Ok(u) => assert_eq!(u.name, name),
            other => panic!("{scheme}: {other:?}"),
        }
        // Argon2's wrong-password case runs in the unit tests, on cheap parameters.
        if !scheme.starts_with("ARGON2") {
            assert_eq!(db.authenticate(&name, b"wrong"), AuthResult::BadCredentials);
        }
    }
    if doveadm_missing {
        eprintln!(
            "note: doveadm is not on PATH, so Dovecot did not check our hashes \
             (apt-get install dovecot-core to include that check)"
        );
    }
    assert_eq!(UserDb::open(&file).unwrap().users().len(), 5);
}

#[test]
fn passwd_add_and_del_keep_every_other_byte() {
    let dir = TempDir::new("auth-edit");
    let file = dir.path().join("users");
    let before = "# managed by hand and by s3imap\r\n\
                  \n\
                  alice@example.com:{PLAIN}old:5000:5000::/var/mail/vmail/alice@example.com::userdb_quota_rule=*:storage=1G\r\n\
                  #zed@example.com:{PLAIN}gone\n\
                  bob@example.com:{PLAIN}b";
    std::fs::write(&file, before).unwrap();
    let users = file.to_str().unwrap();

    let (code, err) = user(
        &[],
        &["passwd", "Alice@Example.com", "--users", users],
        b"new pw\r\nignored second line\n",
    );
    assert_eq!(code, 0, "{err}");
    let after = read(&file);
    let field = field_of(&after, "alice@example.com");
    assert!(field.starts_with("{SHA512-CRYPT}$6$"), "{field}");
    assert_eq!(after, before.replace("{PLAIN}old", &field));
    match UserDb::open(&file)
        .unwrap()
        .authenticate("alice@example.com", b"new pw")
    {
        AuthResult::Ok(u) => {
            assert_eq!(u.uid, Some(5000));
            assert_eq!(u.home.as_deref(), Some("/var/mail/vmail/alice@example.com"));
        }
        other => panic!("{other:?}"),
    }
    if let Some(ok) = doveadm_accepts(&field, "new pw") {
        assert!(ok, "doveadm rejected {field}");
    }

    let (code, err) = user(
        &[],
        &[
            "add",
            "carol@example.com",
            "--users",
            users,
            "--uid",
            "5000",
        ],
        b"c\n",
    );
    assert_eq!(code, 0, "{err}");
    let with_carol = read(&file);
    let carol = field_of(&with_carol, "carol@example.com");
    assert_eq!(
        with_carol,
        format!("{after}\ncarol@example.com:{carol}:5000:::::\n")
    );

    let (code, err) = user(&[], &["del", "BOB@example.com", "--users", users], b"");
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        read(&file),
        with_carol.replace("bob@example.com:{PLAIN}b\n", "")
    );
    let left = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(left, 1, "no tmp file is left behind");
}

#[test]
fn refusals_leave_the_file_alone_with_their_exit_codes() {
    let dir = TempDir::new("auth-refuse");
    let file = dir.path().join("users");
    let env = users_env(&file);
    let original = "alice@example.com:{PLAIN}a\n";
    std::fs::write(&file, original).unwrap();
    let cases: &[(&[&str], &[u8], i32, &str)] = &[
        (&["add", "ALICE@example.com"], b"x\n", 1, "already exists"),
        (&["passwd", "bob@example.com"], b"x\n", 1, "is not in"),
        (&["del", "bob@example.com"], b"", 1, "is not in"),
        (&["add", "bob"], b"x\n", 2, "needs an '@'"),
        (&["add", "b:ob@example.com"], b"x\n", 2, "':'"),
        (
            &["add", "../bob@example.com"],
            b"x\n",
            2,
            "cannot be a user name",
        ),
        (&["add", "bob@example.com"], b"\n", 2, "password is empty"),
        (&["add", "bob@example.com"], b"", 2, "password is empty"),
        (
            &["add", "bob@example.com", "--scheme", "PLAIN"],
            b"x\n",
            2,
            "use one of SHA512-CRYPT",
        ),
    ];
    for (args, stdin, want, msg) in cases {
        let (code, err) = user(&env, args, stdin);
        assert_eq!(code, *want, "{args:?}: {err}");
        assert!(err.contains(msg), "{args:?}: {err}");
        assert_eq!(read(&file), original, "{args:?}");
    }

    // A file that does not parse is not edited.
    let broken = "alice@example.com:{PLAIN}a:notanumber\n";
    std::fs::write(&file, broken).unwrap();
    let (code, err) = user(&env, &["add", "bob@example.com"], b"x\n");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("line 1") && err.contains("uid"), "{err}");
    assert_eq!(read(&file), broken);

    // The flag wins over the environment.
    let other = dir.path().join("other");
    let (code, err) = user(
        &env,
        &["add", "bob@example.com", "--users", other.to_str().unwrap()],
        b"b\n",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(passwd::load(&other).unwrap()[0].user, "bob@example.com");
    assert_eq!(read(&file), broken);
}
