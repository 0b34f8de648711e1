//! mbsync (isync) keeping a local Maildir in two-way sync with `s3imap serve`: new mail, flag
//! changes and deletions in both directions, and a second run that changes nothing.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use support::*;

const PASSWORD: &str = "pw";

/// What the server holds: each INBOX message's subject and flags, and Sent's count.
const SERVER_STATE: &str = r#"
ok(M.select('INBOX'))
typ, d = ok(M.fetch('1:*', '(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])'))
for x in d:
    if isinstance(x, tuple):
        print(x[1].decode().strip(), re.search(rb'FLAGS \(([^)]*)\)', x[0]).group(1).decode())
print('sent', ok(M.status('Sent', '(MESSAGES)'))[1][0].decode())
"#;

/// Local message files of a Maildir folder: (file name without mbsync's U= part, flags).
fn local(dir: &Path) -> Vec<(String, String)> {
    let mut v = Vec::new();
    for sub in ["new", "cur"] {
        for e in std::fs::read_dir(dir.join(sub))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().into_string().unwrap();
            let flags = name.split(":2,").nth(1).unwrap_or("").to_string();
            let body = std::fs::read_to_string(e.path()).unwrap();
            let subject = body
                .lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap_or("")
                .trim()
                .to_string();
            v.push((subject, flags));
        }
    }
    v.sort();
    v
}

fn mbsync(conf: &Path) -> String {
    let out = Command::new("mbsync")
        .arg("-V")
        .arg("-c")
        .arg(conf)
        .arg("-a")
        .output()
        .expect("mbsync (Debian package isync)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "mbsync failed:\n{text}");
    text
}

#[test]
fn mbsync_two_way() {
    let found = Command::new("mbsync").arg("--version").output().is_ok();
    if !peer("mbsync", found, "bash .ci/apt ensure isync") {
        return;
    }
    let work = TempDir::new("mbsync");
    let w = work.path();
    std::fs::write(
        w.join("users"),
        format!("alice@example.com:{{PLAIN}}{PASSWORD}\n"),
    )
    .unwrap();
    std::fs::create_dir_all(w.join("mail")).unwrap();
    let serve = Serve::start(&w.join("users"), &w.join("mail"));
    let port = serve.port;
    let server = |script: &str| imaplib(port, "alice@example.com", PASSWORD, script).unwrap();
    server(
        r#"
for i in range(3):
    ok(M.append('INBOX', '(\\Seen)' if i == 0 else None, None, b'Subject: s%d\r\n\r\nserver %d\r\n' % (i, i)))
ok(M.append('Sent', None, None, b'Subject: sent\r\n\r\nsent\r\n'))
"#,
    );
    let localdir: PathBuf = w.join("local");
    std::fs::create_dir_all(&localdir).unwrap();
    let conf = w.join("mbsyncrc");
    std::fs::write(
        &conf,
        format!(
            "IMAPAccount s3imap\nHost 127.0.0.1\nPort {port}\nUser alice@example.com\nPass {PASSWORD}\n\
             SSLType None\nAuthMechs LOGIN\n\nIMAPStore remote\nAccount s3imap\n\n\
             MaildirStore local\nPath {l}/\nInbox {l}/INBOX\nSubFolders Verbatim\n\n\
             Channel sync\nFar :remote:\nNear :local:\nPatterns *\nCreate Both\nExpunge Both\nSyncState *\n",
            l = localdir.display()
        ),
    )
    .unwrap();

    // 1. Pull: every folder and message arrives, flags included.
    mbsync(&conf);
    let inbox = localdir.join("INBOX");
    assert_eq!(
        local(&inbox),
        vec![
            ("s0".into(), "S".into()),
            ("s1".into(), "".into()),
            ("s2".into(), "".into())
        ]
    );
    assert_eq!(
        local(&localdir.join("Sent")),
        vec![("sent".into(), "".into())]
    );
    for f in ["Drafts", "Trash", "Junk", "Archive"] {
        assert!(localdir.join(f).is_dir(), "{f} not created locally");
    }

    // 2. Changes on both sides.
    std::fs::write(
        inbox.join("new/1795898100.laptop.vm"),
        "Subject: local\r\n\r\nfrom the laptop\r\n",
    )
    .unwrap();
    let find = |subject: &str| -> PathBuf {
        ["new", "cur"]
            .iter()
            .flat_map(|s| std::fs::read_dir(inbox.join(s)).unwrap().flatten())
            .map(|e| e.path())
            .find(|p| {
                std::fs::read_to_string(p)
                    .unwrap()
                    .lines()
                    .any(|l| l.trim_end() == format!("Subject: {subject}"))
            })
            .unwrap()
    };
    let s1 = find("s1");
    let flagged = inbox.join("cur").join(format!(
        "{}F",
        s1.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .split(":2,")
            .next()
            .unwrap()
            .to_string()
            + ":2,"
    ));
    std::fs::rename(&s1, &flagged).unwrap();
    std::fs::remove_file(find("s2")).unwrap();
    server(
        r#"
ok(M.select('INBOX'))
ok(M.store('1', '+FLAGS', '(\\Answered)'))
ok(M.select('Sent'))
ok(M.store('1', '+FLAGS', '(\\Deleted)'))
ok(M.expunge())
"#,
    );
    mbsync(&conf);
    let seen = server(SERVER_STATE);
    assert!(seen.contains("Subject: s0 \\Answered \\Seen"), "{seen}");
    assert!(
        seen.contains("Subject: s1 \\Flagged"),
        "local flag pushed: {seen}"
    );
    assert!(seen.contains("Subject: local"), "local mail pushed: {seen}");
    assert!(
        !seen.contains("Subject: s2"),
        "local deletion pushed: {seen}"
    );
    assert!(seen.contains("sent Sent (MESSAGES 0)"), "{seen}");
    assert_eq!(
        local(&inbox)
            .into_iter()
            .map(|(s, f)| format!("{s}:{f}"))
            .collect::<Vec<_>>(),
        vec!["local:", "s0:RS", "s1:F"],
        "server flag and deletions pulled"
    );
    assert_eq!(local(&localdir.join("Sent")), vec![]);

    // 3. A second run finds nothing to do, on either side.
    let before = (local(&inbox), seen);
    let log = mbsync(&conf);
    let after_server = server(SERVER_STATE);
    assert_eq!(before, (local(&inbox), after_server), "{log}");
    assert!(!log.contains("Error"), "{log}");
}

#[test]
fn mbsync_logs_in_with_an_app_password_until_it_is_revoked() {
    let found = Command::new("mbsync").arg("--version").output().is_ok();
    if !peer("mbsync", found, "bash .ci/apt ensure isync") {
        return;
    }
    let work = TempDir::new("mbsync-token");
    let w = work.path();
    std::fs::write(
        w.join("users"),
        format!("alice@example.com:{{PLAIN}}{PASSWORD}\n"),
    )
    .unwrap();
    std::fs::create_dir_all(w.join("mail")).unwrap();
    let token = |args: &[&str]| {
        let out = s3imap(&[])
            .arg("token")
            .args(args)
            .arg("--mail-root")
            .arg(w.join("mail"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let users = w.join("users").to_string_lossy().into_owned();
    let laptop = token(&[
        "issue",
        "alice@example.com",
        "--name",
        "laptop",
        "--users",
        &users,
    ]);
    let serve = Serve::start(&w.join("users"), &w.join("mail"));
    imaplib(
        serve.port,
        "alice@example.com",
        PASSWORD,
        "ok(M.append('INBOX', None, None, b'Subject: hello\\r\\n\\r\\nhi\\r\\n'))",
    )
    .unwrap();
    let localdir = w.join("local");
    std::fs::create_dir_all(&localdir).unwrap();
    let conf = w.join("mbsyncrc");
    std::fs::write(
        &conf,
        format!(
            "IMAPAccount s3imap\nHost 127.0.0.1\nPort {port}\nUser alice@example.com\nPass {laptop}\n\
             SSLType None\nAuthMechs LOGIN\n\nIMAPStore remote\nAccount s3imap\n\n\
             MaildirStore local\nPath {l}/\nInbox {l}/INBOX\nSubFolders Verbatim\n\n\
             Channel sync\nFar :remote:INBOX\nNear :local:INBOX\nCreate Both\nSyncState *\n",
            port = serve.port,
            l = localdir.display()
        ),
    )
    .unwrap();
    mbsync(&conf);
    assert_eq!(
        local(&localdir.join("INBOX")),
        vec![("hello".into(), "".into())]
    );
    let list = token(&["list"]);
    let id = list
        .lines()
        .nth(1)
        .and_then(|l| l.split('\t').next())
        .unwrap();
    assert!(list.contains("laptop"), "{list}");
    token(&["revoke", id]);
    let out = Command::new("mbsync")
        .arg("-c")
        .arg(&conf)
        .arg("-a")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a revoked token still syncs: {text}");
    assert!(
        text.contains("AUTHENTICATIONFAILED") || text.contains("LOGIN"),
        "{text}"
    );
}
