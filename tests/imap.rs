//! `s3imap serve` as mail clients see it: python imaplib and curl against the real server
//! process, the in-process S3 sync end to end, bad input, and Dovecot compatibility.

mod dovecot;
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

const PASSWORD: &str = "correct horse";

/// A running `s3imap serve` on a free loopback port, stopped (SIGTERM) on drop.
struct Server {
    child: Option<Child>,
    port: u16,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Server {
    fn start(
        mail_root: &Path,
        users: &Path,
        extra_env: &[(String, String)],
        extra_args: &[&str],
    ) -> Server {
        let mut env = extra_env.to_vec();
        env.push(("S3IMAP_LOG".into(), "debug".into()));
        let mut cmd = s3imap(&env);
        cmd.arg("serve")
            .args(["--listen", "127.0.0.1:0", "--users"])
            .arg(users)
            .arg("--mail-root")
            .arg(mail_root)
            .args(extra_args);
        Server::spawn(cmd)
    }

    /// Starts a prepared `s3imap serve` command (its own stderr is read for the port).
    fn spawn(mut cmd: Command) -> Server {
        let mut child = cmd
            .stderr(Stdio::piped())
            .spawn()
            .expect("start s3imap serve");
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && let Some(rest) = line.split("listening on 127.0.0.1:").nth(1) {
                    let port: u16 = rest
                        .split(|c: char| !c.is_ascii_digit())
                        .next()
                        .unwrap()
                        .parse()
                        .unwrap();
                    let _ = tx.send(port);
                    sent = true;
                }
                let mut l = log2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("serve did not start:\n{}", log.lock().unwrap()));
        Server {
            child: Some(child),
            port,
            log,
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Runs an imaplib script as `user` ([`support::imaplib`]); panics with the server log.
    fn python(&self, user: &str, script: &str) -> String {
        imaplib(self.port, user, PASSWORD, script).unwrap_or_else(|e| {
            panic!(
                "imaplib script failed:\n{e}\n--- server log ---\n{}",
                self.log()
            )
        })
    }

    /// A raw connection: send lines, read until the tagged answer.
    fn raw(&self) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        // A generous ceiling for any one answer (qemu, a loaded machine): timing is bench/'s job.
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut r = Raw { s, buf: Vec::new() };
        let greeting = r.line();
        assert!(greeting.starts_with("* OK"), "{greeting}");
        r
    }

    fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                return st.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Raw {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    fn send(&mut self, b: &[u8]) {
        self.s.write_all(b).unwrap();
    }
    fn line(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let l: Vec<u8> = self.buf.drain(..=i).collect();
                return String::from_utf8_lossy(&l).into_owned();
            }
            let mut tmp = [0u8; 4096];
            let n = self.s.read(&mut tmp).unwrap_or(0);
            if n == 0 {
                let rest = String::from_utf8_lossy(&self.buf).into_owned();
                self.buf.clear();
                return rest;
            }
            self.buf.extend_from_slice(&tmp[..n]);
        }
    }
    /// Sends `tag cmd` and returns every line up to and including the tagged answer.
    fn cmd(&mut self, tag: &str, cmd: &str) -> Vec<String> {
        self.send(format!("{tag} {cmd}\r\n").as_bytes());
        self.until(tag)
    }
    fn until(&mut self, tag: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let l = self.line();
            if l.is_empty() {
                return lines;
            }
            let done = l.starts_with(&format!("{tag} "));
            lines.push(l);
            if done {
                return lines;
            }
        }
    }
}

struct Setup {
    work: TempDir,
}

impl Setup {
    fn new() -> Setup {
        let work = TempDir::new("imap");
        std::fs::write(
            work.path().join("users"),
            format!("alice@example.com:{{PLAIN}}{PASSWORD}\nbob@example.com:{{PLAIN}}{PASSWORD}\n"),
        )
        .unwrap();
        std::fs::create_dir_all(work.path().join("mail")).unwrap();
        Setup { work }
    }
    fn mail(&self) -> std::path::PathBuf {
        self.work.path().join("mail")
    }
    fn users(&self) -> std::path::PathBuf {
        self.work.path().join("users")
    }
    /// Delivers a message the way the sync does (a file in new/).
    fn deliver(&self, user: &str, name: &str, body: &[u8]) {
        let dir = self.mail().join(user);
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        std::fs::write(dir.join("new").join(name), body).unwrap();
    }
    fn serve(&self) -> Server {
        Server::start(&self.mail(), &self.users(), &[], &[])
    }
}

fn multipart() -> Vec<u8> {
    b"From: Carol <carol@other.example>\r\nTo: alice@example.com\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= report\r\n\
Date: Fri, 27 Nov 2026 09:00:00 +0100\r\nMessage-ID: <m1@other.example>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\r\nThe quarterly numbers are in. Caf=C3=A9 at noon?\r\n--b1\r\n\
Content-Type: application/pdf; name=\"r.pdf\"\r\nContent-Disposition: attachment; filename=\"r.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJcfsj6IK\r\n--b1--\r\n"
        .to_vec()
}

#[test]
fn a_mail_client_session_reads_searches_and_changes_flags() {
    let t = Setup::new();
    t.deliver(
        "alice@example.com",
        "1795000000.S3Iaaaa.s3imap",
        &ses_message(
            "alice@example.com",
            "alice@example.com",
            "first",
            "hello world",
        ),
    );
    t.deliver(
        "alice@example.com",
        "1795000100.S3Ibbbb.s3imap",
        &multipart(),
    );
    let s = t.serve();
    let out = s.python(
        "alice@example.com",
        r#"
print(ok(M.capability()))
typ, boxes = ok(M.list())
print([b.decode() for b in boxes])
typ, d = ok(M.select('INBOX'))
print('exists', d[0].decode())
typ, d = ok(M.uid('FETCH', '1:*', '(UID FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE)'))
print(len([x for x in d if isinstance(x, tuple) or x != b')']))
typ, d = ok(M.fetch('2', '(BODY.PEEK[1] BODY.PEEK[2.MIME] BODY.PEEK[HEADER.FIELDS (SUBJECT)])'))
print(d)
typ, d = ok(M.search(None, 'UNSEEN'))
print('unseen', d)
typ, d = ok(M.search('UTF-8', 'TEXT', '"café"'.encode()))
print('text', d)
typ, d = ok(M.search('UTF-8', 'SUBJECT', '"Grüße"'.encode()))
print('subject', d)
typ, d = ok(M.search(None, 'OR', 'FROM', 'carol', 'SINCE', '1-Jan-2030'))
print('or', d)
typ, d = ok(M.fetch('1', '(BODY[])'))
print('seen', d[-1] if isinstance(d[-1], bytes) else d[0][0])
ok(M.store('1', '+FLAGS', '(\\Deleted $Forwarded)'))
typ, d = ok(M.fetch('1', '(FLAGS)'))
print('flags', d)
typ, d = ok(M.expunge())
print('expunge', d)
typ, d = ok(M.status('INBOX', '(MESSAGES UNSEEN UIDNEXT)'))
print('status', d)
"#,
    );
    assert!(
        out.contains("IDLE") && out.contains("UIDPLUS") && out.contains("MOVE"),
        "{out}"
    );
    for special in [
        "\\Drafts) \"/\" Drafts",
        "\\Sent) \"/\" Sent",
        "\\Trash) \"/\" Trash",
        "\\Junk) \"/\" Junk",
        "\\Archive) \"/\" Archive",
    ] {
        assert!(
            out.contains(special),
            "special-use folder {special} missing:\n{out}"
        );
    }
    assert!(out.contains("exists 2"), "{out}");
    assert!(
        out.contains("The quarterly numbers are in. Caf=C3=A9 at noon?"),
        "{out}"
    );
    assert!(out.contains("Content-Type: application/pdf"), "{out}");
    assert!(
        out.contains("Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= report"),
        "{out}"
    );
    assert!(out.contains("unseen [b'1 2']"), "{out}");
    assert!(out.contains("text [b'2']"), "{out}");
    assert!(out.contains("subject [b'2']"), "{out}");
    assert!(out.contains("or [b'2']"), "{out}");
    assert!(out.contains("\\Seen"), "BODY[] sets \\Seen:\n{out}");
    assert!(
        out.contains("$Forwarded") && out.contains("\\Deleted"),
        "{out}"
    );
    assert!(out.contains("expunge [b'1']"), "{out}");
    assert!(
        out.contains("status [b'INBOX (MESSAGES 1 UNSEEN 1 UIDNEXT 3)']"),
        "{out}"
    );
}

#[test]
fn append_copy_move_and_folders() {
    let t = Setup::new();
    let s = t.serve();
    let out = s.python(
        "bob@example.com",
        r#"
msg = b'From: bob@example.com\r\nSubject: draft\r\n\r\nbody\r\n'
typ, d = ok(M.append('Drafts', '(\\Draft \\Seen)', None, msg))
print('append', d)
ok(M.create('Projects/2026'))
typ, d = ok(M.list('""', 'Projects/*'))
print('list', d)
ok(M.select('Drafts'))
typ, d = ok(M._simple_command('UID', 'COPY', '1', 'Projects/2026'))
print('copy', d)
typ, d = M._simple_command('UID', 'MOVE', '1', 'Trash')
print('move', typ, M.untagged_responses.get('OK'))
typ, d = ok(M.status('Trash', '(MESSAGES)'))
print('trash', d)
typ, d = ok(M.status('Drafts', '(MESSAGES)'))
print('drafts', d)
ok(M.rename('Projects/2026', 'Projects/Done'))
ok(M.subscribe('Projects/Done'))
typ, d = ok(M.lsub('""', 'Projects/*'))
print('lsub', d)
print(M.select('Nope'))
typ, d = ok(M._simple_command('LIST', '""', '*', 'RETURN', '(STATUS (MESSAGES UIDNEXT) SUBSCRIBED)'))
print('liststatus', M.untagged_responses.get('STATUS'))
ok(M.append('INBOX', None, None, b'Subject: old inbox\r\n\r\nx\r\n'))
ok(M.rename('INBOX', 'Old'))
print('renamed', ok(M.status('INBOX', '(MESSAGES UIDNEXT)'))[1][-1], ok(M.status('Old', '(MESSAGES)'))[1][-1])
"#,
    );
    assert!(out.contains("append [b'[APPENDUID "), "{out}");
    assert!(out.contains("Projects/2026"), "{out}");
    assert!(out.contains("copy [b'[COPYUID "), "{out}");
    assert!(out.contains("move OK"), "{out}");
    assert!(out.contains("trash [b'Trash (MESSAGES 1)']"), "{out}");
    assert!(out.contains("drafts [b'Drafts (MESSAGES 0)']"), "{out}");
    assert!(out.contains("Projects/Done"), "{out}");
    assert!(out.contains("NONEXISTENT"), "{out}");
    assert!(
        out.contains("Trash (MESSAGES 1 UIDNEXT 2)"),
        "LIST RETURN (STATUS): {out}"
    );
    // RENAME INBOX moves its messages to the new folder and leaves INBOX empty (RFC 3501).
    assert!(
        out.contains("renamed b'INBOX (MESSAGES 0 UIDNEXT 2)' b'Old (MESSAGES 1)'"),
        "{out}"
    );
    // The appended draft is a whole file in the Maildir of the Trash after the move.
    let trash = maildir_messages(&t.mail().join("bob@example.com/.Trash"));
    assert_eq!(
        trash,
        vec![b"From: bob@example.com\r\nSubject: draft\r\n\r\nbody\r\n".to_vec()]
    );
}

#[test]
fn bad_input_gets_bad_and_the_connection_survives() {
    let t = Setup::new();
    let s = t.serve();
    let mut c = s.raw();
    let r = c.cmd("a1", "FROBNICATE");
    assert!(r.last().unwrap().starts_with("a1 BAD"), "{r:?}");
    let r = c.cmd("a2", "LOGIN");
    assert!(r.last().unwrap().starts_with("a2 BAD"), "{r:?}");
    let r = c.cmd("a3", "SELECT INBOX");
    assert!(
        r.last().unwrap().starts_with("a3 BAD"),
        "needs login: {r:?}"
    );
    c.send(b"a4 LOGIN alice@example.com {99999999999}\r\n");
    let r = c.until("a4");
    assert!(
        r.last().unwrap().contains("a4 BAD") || r.last().unwrap().contains("a4 NO"),
        "{r:?}"
    );
    c.send(&vec![b'x'; 100 * 1024]);
    c.send(b"\r\n");
    let r = c.cmd("a5", "NOOP");
    assert!(
        r.last().unwrap().starts_with("a5 OK"),
        "after an over-long line: {r:?}"
    );
    let started = Instant::now();
    let r = c.cmd("a6", "LOGIN alice@example.com wrong");
    assert!(
        r.last()
            .unwrap()
            .starts_with("a6 NO [AUTHENTICATIONFAILED]"),
        "{r:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "a failed login costs time"
    );
    // AUTHENTICATE PLAIN without an initial response: an empty challenge, then the answer.
    c.send(b"a7 AUTHENTICATE PLAIN\r\n");
    assert!(c.line().starts_with("+ "));
    let plain = base64_encode(format!("\0alice@example.com\0{PASSWORD}").as_bytes());
    c.send(format!("{plain}\r\n").as_bytes());
    let r = c.until("a7");
    assert!(r.last().unwrap().starts_with("a7 OK"), "{r:?}");
    let r = c.cmd("a8", "SELECT INBOX");
    assert!(r.last().unwrap().starts_with("a8 OK [READ-WRITE]"), "{r:?}");
    let r = c.cmd("a9", "FETCH 5 FLAGS");
    assert!(r.last().unwrap().starts_with("a9 BAD"), "{r:?}");
    let r = c.cmd("b1", "SEARCH CHARSET KOI8-R TEXT x");
    assert!(r.last().unwrap().starts_with("b1 NO [BADCHARSET"), "{r:?}");
    let r = c.cmd("b2", "LOGOUT");
    assert!(r[0].starts_with("* BYE"), "{r:?}");
    assert!(!s.log().contains("panicked"), "{}", s.log());
}

#[test]
fn curl_reads_mail() {
    let t = Setup::new();
    let body = ses_message(
        "alice@example.com",
        "alice@example.com",
        "curl",
        "fetched by curl",
    );
    t.deliver("alice@example.com", "1795000000.S3Icccc.s3imap", &body);
    let s = t.serve();
    let url = format!("imap://127.0.0.1:{}/INBOX;UID=1", s.port);
    let out = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "20",
            "-u",
            &format!("alice@example.com:{PASSWORD}"),
            &url,
        ])
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "curl failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
    assert_eq!(out.stdout, body);
    let list = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "20",
            "-u",
            &format!("alice@example.com:{PASSWORD}"),
            &format!("imap://127.0.0.1:{}/", s.port),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains("INBOX") && text.contains("Sent"), "{text}");
}

#[test]
fn idle_hears_new_mail_and_sigterm_says_bye() {
    let t = Setup::new();
    t.deliver(
        "alice@example.com",
        "1795000000.S3Idddd.s3imap",
        &ses_message("alice@example.com", "alice@example.com", "one", "x"),
    );
    let mut s = t.serve();
    let mut c = s.raw();
    c.cmd("a1", &format!("LOGIN alice@example.com \"{PASSWORD}\""));
    let r = c.cmd("a2", "SELECT INBOX");
    assert!(r.iter().any(|l| l.starts_with("* 1 EXISTS")), "{r:?}");
    c.send(b"a3 IDLE\r\n");
    assert!(c.line().starts_with("+ "));
    t.deliver(
        "alice@example.com",
        "1795000100.S3Ieeee.s3imap",
        &ses_message("alice@example.com", "alice@example.com", "two", "y"),
    );
    // How soon is bench/latency's question; here: it comes, unasked.
    let l = c.line();
    assert!(
        l.starts_with("* 2 EXISTS"),
        "{l}\n--- server log ---\n{}",
        s.log()
    );
    // SIGTERM: the session is told, the server exits cleanly.
    let code = s.stop();
    let mut rest = String::new();
    loop {
        let l = c.line();
        if l.is_empty() {
            break;
        }
        rest.push_str(&l);
    }
    assert!(rest.contains("* BYE"), "{rest}");
    assert_eq!(code, Some(0));
}

#[test]
fn ses_mail_put_into_s3_appears_in_inbox_through_the_in_process_sync() {
    let t = Setup::new();
    let s3 = bucket("mail-in");
    let env = s3.env();
    let s = Server::start(&t.mail(), &t.users(), &env, &["--sync-interval", "1s"]);
    let body = ses_message(
        "alice@example.com",
        "alice@example.com",
        "from-ses",
        "arrived via S3",
    );
    s3.put("inbound/abc123", &body);
    let out = s.python(
        "alice@example.com",
        r#"
for i in range(300):
    typ, d = ok(M.select('INBOX'))
    if int(d[0]) > 0:
        break
    time.sleep(0.2)
typ, d = ok(M.fetch('1', '(BODY.PEEK[])'))
sys.stdout.write(d[0][1].decode())
"#,
    );
    assert_eq!(out.as_bytes(), body.as_slice(), "server log:\n{}", s.log());
}

#[test]
fn serves_a_mail_root_dovecot_wrote_with_the_same_uids() {
    if !dovecot::require() {
        return;
    }
    let t = Setup::new();
    let root = t.mail();
    // Dovecot writes the mail root.
    let before = {
        let d = dovecot::Dovecot::start(&root, &[("alice@example.com", PASSWORD)]);
        d.python(
            "alice@example.com",
            PASSWORD,
            r#"
for i in range(6):
    ok(M.append('INBOX', '(\\Seen)' if i % 2 else None, None, b'Subject: m%d\r\n\r\nbody %d\r\n' % (i, i)))
ok(M.select('INBOX'))
ok(M.store('2', '+FLAGS', '(\\Deleted)'))
ok(M.expunge())
ok(M.store('3', '+FLAGS', '($Forwarded \\Flagged)'))
typ, d = ok(M.uid('FETCH', '1:*', '(UID FLAGS)'))
for x in d: print(x.decode())
print(ok(M.status('INBOX', '(UIDVALIDITY UIDNEXT)'))[1][0].decode())
"#,
        )
    };
    // s3imap serves it (the files may now belong to Dovecot's mail user; root reads them).
    let s = Server::start(&root, &t.users(), &[], &[]);
    let after = s.python(
        "alice@example.com",
        r#"
ok(M.select('INBOX'))
typ, d = ok(M.uid('FETCH', '1:*', '(UID FLAGS)'))
for x in d: print(x.decode())
print(ok(M.status('INBOX', '(UIDVALIDITY UIDNEXT)'))[1][0].decode())
"#,
    );
    // Compare UID and the set of flags per message (order and \Recent may differ).
    let norm = |s: &str| -> Vec<String> {
        s.lines()
            .map(|l| {
                let Some(f) = l.find("FLAGS (") else {
                    // A STATUS line: items in any order.
                    let mut w: Vec<&str> =
                        l.split([' ', '(', ')']).filter(|x| !x.is_empty()).collect();
                    w.sort();
                    return w.join(" ");
                };
                let inner = &l[f + 7..];
                let inner = &inner[..inner.find(')').unwrap_or(inner.len())];
                let mut flags: Vec<&str> = inner
                    .split_whitespace()
                    .filter(|x| *x != "\\Recent")
                    .collect();
                flags.sort();
                let uid = l
                    .split("UID ")
                    .nth(1)
                    .and_then(|r| r.split([' ', ')']).next())
                    .unwrap_or("");
                format!("UID {uid} FLAGS {}", flags.join(" "))
            })
            .collect()
    };
    assert_eq!(
        norm(&after),
        norm(&before),
        "dovecot:\n{before}\ns3imap:\n{after}"
    );
}

fn base64_encode(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

#[test]
fn idle_hears_a_delivery_of_the_in_process_sync() {
    let t = Setup::new();
    let s3 = bucket("mail-in");
    let env = s3.env();
    let s = Server::start(&t.mail(), &t.users(), &env, &["--sync-interval", "1s"]);
    let mut c = s.raw();
    c.cmd("a1", &format!("LOGIN alice@example.com \"{PASSWORD}\""));
    let r = c.cmd("a2", "SELECT INBOX");
    assert!(r.iter().any(|l| l.starts_with("* 0 EXISTS")), "{r:?}");
    c.send(b"a3 IDLE\r\n");
    assert!(c.line().starts_with("+ "));
    s3.put(
        "inbound/idle1",
        &ses_message("alice@example.com", "alice@example.com", "idle", "ping"),
    );
    // The latency (p50/p95) is measured by bench/latency; the test asserts that it comes.
    let l = c.line();
    assert!(l.starts_with("* 1 EXISTS"), "{l}\n{}", s.log());
    c.send(b"DONE\r\n");
    let r = c.until("a3");
    assert!(r.last().unwrap().starts_with("a3 OK"), "{r:?}");
}

#[test]
fn a_user_cannot_open_unlimited_sessions() {
    let t = Setup::new();
    let s = Server::start(&t.mail(), &t.users(), &[], &["--max-user-connections", "3"]);
    let mut open = Vec::new();
    for i in 0..3 {
        let mut c = s.raw();
        let r = c.cmd(
            &format!("a{i}"),
            &format!("LOGIN bob@example.com \"{PASSWORD}\""),
        );
        assert!(r.last().unwrap().contains(" OK"), "{r:?}");
        open.push(c);
    }
    let mut extra = s.raw();
    let r = extra.cmd("b1", &format!("LOGIN bob@example.com \"{PASSWORD}\""));
    assert!(r.last().unwrap().starts_with("b1 NO [LIMIT]"), "{r:?}");
    // Another user is not affected; a closed session frees a place.
    let r = extra.cmd("b2", &format!("LOGIN alice@example.com \"{PASSWORD}\""));
    assert!(r.last().unwrap().starts_with("b2 OK"), "{r:?}");
    let mut first = open.remove(0);
    first.cmd("z", "LOGOUT");
    drop(first);
    let mut again = s.raw();
    let r = again.cmd("c1", &format!("LOGIN bob@example.com \"{PASSWORD}\""));
    assert!(r.last().unwrap().starts_with("c1 OK"), "{r:?}");
}

#[test]
fn two_sessions_on_one_mailbox_agree() {
    let t = Setup::new();
    for i in 0..3 {
        t.deliver(
            "alice@example.com",
            &format!("179500000{i}.S3Ik{i}.s3imap"),
            &ses_message(
                "alice@example.com",
                "alice@example.com",
                &format!("m{i}"),
                "x",
            ),
        );
    }
    let s = t.serve();
    let login = format!("LOGIN alice@example.com \"{PASSWORD}\"");
    let mut a = s.raw();
    let mut b = s.raw();
    a.cmd("a1", &login);
    b.cmd("b1", &login);
    a.cmd("a2", "SELECT INBOX");
    let r = b.cmd("b2", "SELECT INBOX");
    assert!(r.iter().any(|l| l.starts_with("* 3 EXISTS")), "{r:?}");
    b.send(b"b3 IDLE\r\n");
    assert!(b.line().starts_with("+ "));
    // A flags and expunges message 2; B, idling, hears both, in order, numbered as it knows them.
    a.cmd("a3", "STORE 1 +FLAGS (\\Flagged)");
    let l = b.line();
    assert!(
        l.starts_with("* 1 FETCH (FLAGS (") && l.contains("\\Flagged"),
        "{l}"
    );
    a.cmd("a4", "STORE 2 +FLAGS.SILENT (\\Deleted)");
    a.cmd("a5", "EXPUNGE");
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.starts_with("* 2 EXPUNGE")) {
        let l = b.line();
        assert!(!l.is_empty(), "connection closed; saw {seen:?}");
        seen.push(l);
    }
    b.send(b"DONE\r\n");
    b.until("b3");
    // Both now see two messages with the same UIDs.
    let ra = a.cmd("a6", "UID FETCH 1:* (FLAGS)");
    let rb = b.cmd("b4", "UID FETCH 1:* (FLAGS)");
    let uids = |r: &[String]| -> Vec<String> {
        r.iter()
            .filter(|l| l.starts_with("* "))
            .map(|l| {
                l.split("UID ")
                    .nth(1)
                    .unwrap_or("")
                    .split([' ', ')'])
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(uids(&ra), vec!["1", "3"], "{ra:?}");
    assert_eq!(uids(&ra), uids(&rb), "{rb:?}");
    // New mail delivered from outside shows up in both.
    t.deliver(
        "alice@example.com",
        "1795000009.S3Iz.s3imap",
        &ses_message("alice@example.com", "alice@example.com", "late", "y"),
    );
    let ra = a.cmd("a7", "NOOP");
    let rb = b.cmd("b5", "NOOP");
    assert!(ra.iter().any(|l| l.starts_with("* 3 EXISTS")), "{ra:?}");
    assert!(rb.iter().any(|l| l.starts_with("* 3 EXISTS")), "{rb:?}");
}

/// neomutt's "postpone draft" (and any client that waits for `+`): APPEND with a
/// synchronizing literal gets exactly one continuation, then the tagged answer.
#[test]
fn synchronizing_append_gets_exactly_one_continuation() {
    let t = Setup::new();
    let s = t.serve();
    let mut c = s.raw();
    c.cmd("a1", &format!("LOGIN alice@example.com \"{PASSWORD}\""));
    let msg = b"From: alice@example.com\r\nSubject: draft\r\n\r\npostponed\r\n";
    c.send(format!("a2 APPEND Drafts (\\Draft) {{{}}}\r\n", msg.len()).as_bytes());
    let l = c.line();
    assert!(l.starts_with("+ "), "{l}");
    c.send(msg);
    c.send(b"\r\n");
    let l = c.line();
    assert!(
        l.starts_with("a2 OK [APPENDUID "),
        "one '+' only, then the answer: {l}"
    );
    // Two messages, both synchronizing (MULTIAPPEND-style): one '+' each.
    c.send(format!("a3 APPEND Drafts {{{}}}\r\n", msg.len()).as_bytes());
    assert!(c.line().starts_with("+ "));
    c.send(msg);
    c.send(format!(" {{{}}}\r\n", msg.len()).as_bytes());
    assert!(c.line().starts_with("+ "));
    c.send(msg);
    c.send(b"\r\n");
    let l = c.line();
    assert!(l.starts_with("a3 OK [APPENDUID "), "{l}");
    let r = c.cmd("a4", "STATUS Drafts (MESSAGES)");
    assert!(r[0].contains("MESSAGES 3"), "no duplicate drafts: {r:?}");
}

/// `curl -T` uploads a message with APPEND (it sends `{n}` and waits for one `+`).
#[test]
fn curl_uploads_a_message() {
    let t = Setup::new();
    let s = t.serve();
    let file = t.work.path().join("upload.eml");
    std::fs::write(
        &file,
        b"From: bob@example.com\r\nTo: alice@example.com\r\nSubject: uploaded\r\n\r\nvia curl -T\r\n",
    )
    .unwrap();
    let out = Command::new("curl")
        .args(["-s", "-S", "--max-time", "30", "-T"])
        .arg(&file)
        .args([
            "-u",
            &format!("alice@example.com:{PASSWORD}"),
            &format!("imap://127.0.0.1:{}/Drafts", s.port),
        ])
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "curl -T failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
    let got = s.python(
        "alice@example.com",
        "typ, d = ok(M.select('Drafts'))\nprint(int(d[0]))\n\
         typ, d = ok(M.fetch('1', '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])'))\nprint(d[0][1].decode().strip())\n",
    );
    assert_eq!(got, "1\nSubject: uploaded\n");
}

/// imaplib with `ENABLE UTF8=ACCEPT` (it then sends strings as UTF-8): a folder with a
/// non-ASCII name is created, listed in UTF-8 and selected; without ENABLE the same folder
/// is listed in modified UTF-7.
#[test]
fn utf8_folder_names_after_enable_utf8_accept() {
    let t = Setup::new();
    let s = t.serve();
    let out = s.python(
        "alice@example.com",
        r#"
typ, d = ok(M.capability())
assert b'UTF8=ACCEPT' in d[0], d
ok(M.enable('UTF8=ACCEPT'))
ok(M.create('"Entwürfe"'))
typ, d = ok(M.list('""', '"Entw*"'))
print(d)
typ, d = ok(M.select('"Entwürfe"'))
print(int(d[0]))
"#,
    );
    // imaplib prints the (literal) name as bytes: UTF-8, not modified UTF-7.
    assert!(out.contains(r"Entw\xc3\xbcrfe"), "listed in UTF-8: {out}");
    assert!(out.trim_end().ends_with('0'), "{out}");
    let out = s.python(
        "alice@example.com",
        "typ, d = ok(M.list('\"\"', 'Entw*'))\nprint(d)\n",
    );
    assert!(out.contains("Entw&APw-rfe"), "without ENABLE: {out}");
}

/// A failed command leaves a debug line with the connection, the tag and the command's
/// name, never its arguments (a password, a literal's content).
#[test]
fn failed_commands_are_logged_at_debug_without_their_arguments() {
    let t = Setup::new();
    let s = t.serve();
    let mut c = s.raw();
    c.cmd("x0", "LOGIN alice@example.com \"not-the-password-42\"");
    c.cmd("x1", &format!("LOGIN alice@example.com \"{PASSWORD}\""));
    c.cmd("x2", "SELECT NoSuchFolder");
    c.send(b"x3 APPEND Nowhere {11}\r\n");
    let l = c.line();
    assert!(l.starts_with("x3 NO [TRYCREATE]"), "{l}");
    c.cmd("x4", "FROBNICATE secret-literal-content");
    c.cmd("x5", "LOGOUT");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !s.log().contains("x4") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = s.log();
    for want in [
        "127.0.0.1:",
        "SELECT: x2 NO [NONEXISTENT]",
        "APPEND: x3 NO [TRYCREATE]",
        "x4 BAD",
    ] {
        assert!(log.contains(want), "{want:?} not in the log:\n{log}");
    }
    for secret in ["not-the-password-42", PASSWORD, "secret-literal-content"] {
        assert!(
            !log.contains(secret),
            "{secret:?} leaked into the log:\n{log}"
        );
    }
}

/// Another program (Dovecot) holds alice's `dovecot-uidlist.lock` for 10 s. Four of alice's
/// sessions APPEND meanwhile and wait for it (as many as the server has executor threads, or
/// more); bob's NOOP, FETCH and IDLE are answered while they wait, and alice's APPENDs
/// complete once the lock is gone. (The latency is printed; bench/ measures, the test asserts
/// the order.)
#[test]
fn a_held_uidlist_lock_stalls_only_that_mailbox() {
    let t = Setup::new();
    t.deliver(
        "alice@example.com",
        "1795000000.S3Ia1.s3imap",
        &ses_message("alice@example.com", "alice@example.com", "a", "x"),
    );
    t.deliver(
        "bob@example.com",
        "1795000000.S3Ib1.s3imap",
        &ses_message("bob@example.com", "bob@example.com", "b", "y"),
    );
    let s = t.serve();
    let mut alices: Vec<Raw> = (0..4)
        .map(|i| {
            let mut c = s.raw();
            c.cmd(
                &format!("l{i}"),
                &format!("LOGIN alice@example.com \"{PASSWORD}\""),
            );
            c.cmd(&format!("s{i}"), "SELECT INBOX");
            c
        })
        .collect();
    let mut bob = s.raw();
    bob.cmd("b0", &format!("LOGIN bob@example.com \"{PASSWORD}\""));
    bob.cmd("b1", "SELECT INBOX");
    let mut bob_idle = s.raw();
    bob_idle.cmd("i0", &format!("LOGIN bob@example.com \"{PASSWORD}\""));
    bob_idle.cmd("i1", "SELECT INBOX");
    bob_idle.send(b"i2 IDLE\r\n");
    assert!(bob_idle.line().starts_with("+ "));

    let lock = t.mail().join("alice@example.com/dovecot-uidlist.lock");
    std::fs::write(&lock, b"dovecot 4242\n").unwrap();
    let locked = Instant::now();
    let msg = b"Subject: waits for the lock\r\n\r\nbody\r\n";
    for (i, c) in alices.iter_mut().enumerate() {
        c.send(format!("ap{i} APPEND INBOX {{{}+}}\r\n", msg.len()).as_bytes());
        c.send(msg);
        c.send(b"\r\n");
    }
    std::thread::sleep(Duration::from_millis(300));
    let asked = Instant::now();
    let r = bob.cmd("b2", "NOOP");
    assert!(r.last().unwrap().starts_with("b2 OK"), "{r:?}");
    let r = bob.cmd("b3", "FETCH 1 (BODY.PEEK[])");
    assert!(r.last().unwrap().starts_with("b3 OK"), "{r:?}");
    t.deliver(
        "bob@example.com",
        "1795000100.S3Ib2.s3imap",
        &ses_message("bob@example.com", "bob@example.com", "b2", "z"),
    );
    let l = bob_idle.line();
    assert!(l.starts_with("* 2 EXISTS"), "{l}");
    let answered = asked.elapsed();
    let lock_age = locked.elapsed();
    eprintln!(
        "bob's NOOP, FETCH and IDLE answered in {answered:?} while alice's mailbox was locked"
    );
    assert!(
        lock_age < Duration::from_secs(10),
        "bob was answered only after {lock_age:?}: the lock was still held, so bob waited for it"
    );
    // alice's APPENDs are still waiting: nothing to read yet.
    for c in &mut alices {
        c.s.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut b = [0u8; 1];
        assert!(
            std::io::Read::read(&mut c.s, &mut b).is_err(),
            "an APPEND was answered while the lock was held"
        );
        c.s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    }
    std::thread::sleep(Duration::from_secs(10).saturating_sub(locked.elapsed()));
    std::fs::remove_file(&lock).unwrap();
    for (i, c) in alices.iter_mut().enumerate() {
        let r = c.until(&format!("ap{i}"));
        assert!(
            r.last()
                .unwrap()
                .starts_with(&format!("ap{i} OK [APPENDUID")),
            "{r:?}\n{}",
            s.log()
        );
    }
    bob_idle.send(b"DONE\r\n");
    let r = bob_idle.until("i2");
    assert!(r.last().unwrap().starts_with("i2 OK"), "{r:?}");
}

/// HIGHESTMODSEQ only grows: across a restart, a SIGKILL, and changes another program made
/// while s3imap was down (read from `s3imap-modseq`, since CONDSTORE is not advertised yet).
#[test]
fn modseqs_grow_across_restarts_sigkill_and_outside_changes() {
    let t = Setup::new();
    for i in 0..3 {
        t.deliver(
            "alice@example.com",
            &format!("179500000{i}.S3Im{i}.s3imap"),
            &ses_message("alice@example.com", "alice@example.com", "m", "x"),
        );
    }
    let inbox = t.mail().join("alice@example.com");
    let highest = || s3imap::maildir::modseq::highest(&inbox).unwrap();
    let mut s = t.serve();
    s.python(
        "alice@example.com",
        "ok(M.select('INBOX'))\nok(M.store('1:2', '+FLAGS', '(\\\\Flagged)'))\n",
    );
    let h1 = highest();
    assert!(h1 >= 5, "3 arrivals and 2 changes numbered: {h1}");
    // SIGKILL: nothing to flush, nothing lost.
    let mut child = s.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(highest(), h1);
    // Another program (Dovecot) marks message 3 \Seen while s3imap is down.
    let cur = inbox.join("cur");
    let name = std::fs::read_dir(&cur)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n.starts_with("1795000002"))
        .unwrap();
    let seen = format!("{}S", name);
    std::fs::rename(cur.join(&name), cur.join(&seen)).unwrap();
    let s = t.serve();
    s.python(
        "alice@example.com",
        "ok(M.select('INBOX'))\nok(M.store('1', '-FLAGS', '(\\\\Flagged)'))\n",
    );
    let h2 = highest();
    assert!(
        h2 >= h1 + 2,
        "the outside change and the new STORE: {h1} -> {h2}"
    );
}

/// The number in `[NAME n]` among `lines` (a SELECT's untagged OKs, say).
fn code_number(lines: &[String], name: &str) -> u64 {
    let key = format!("[{name} ");
    lines
        .iter()
        .find_map(|l| {
            let rest = &l[l.find(&key)? + key.len()..];
            rest[..rest.find(']')?].parse().ok()
        })
        .unwrap_or_else(|| panic!("no [{name} …] in {lines:#?}"))
}

/// `(uid, flags)` of the untagged FETCH lines, and the `VANISHED (EARLIER)` sets.
fn resync_answer(lines: &[String]) -> (Vec<(u32, String)>, Vec<String>) {
    let mut fetched = Vec::new();
    let mut vanished = Vec::new();
    for l in lines {
        if let Some(v) = l.strip_prefix("* VANISHED (EARLIER) ") {
            vanished.push(v.trim().to_string());
        } else if l.starts_with("* ") && l.contains(" FETCH (") {
            let uid = l
                .split("UID ")
                .nth(1)
                .unwrap()
                .split([' ', ')'])
                .next()
                .unwrap();
            let f = l.split("FLAGS (").nth(1).unwrap();
            let mut flags: Vec<&str> = f[..f.find(')').unwrap()]
                .split_whitespace()
                .filter(|x| *x != "\\Recent")
                .collect();
            flags.sort();
            assert!(l.contains("MODSEQ ("), "QRESYNC FETCH without MODSEQ: {l}");
            fetched.push((uid.parse().unwrap(), flags.join(" ")));
        }
    }
    fetched.sort();
    (fetched, vanished)
}

#[test]
fn qresync_tells_exactly_what_changed_across_sigkill_dovecot_and_deliveries() {
    if !dovecot::require() {
        return;
    }
    let t = Setup::new();
    for i in 1..=6 {
        t.deliver(
            "alice@example.com",
            &format!("17950000{i:02}.S3Im{i}.s3imap"),
            &ses_message(
                "alice@example.com",
                "alice@example.com",
                &format!("m{i}"),
                "x",
            ),
        );
    }
    let login = format!("LOGIN alice@example.com \"{PASSWORD}\"");
    let mut s = t.serve();
    let mut a = s.raw();
    a.cmd("a1", &login);
    let r = a.cmd("a2", "ENABLE QRESYNC");
    assert!(
        r.iter().any(|l| l.starts_with("* ENABLED QRESYNC")),
        "{r:?}"
    );
    let r = a.cmd("a3", "SELECT INBOX");
    let (h0, uv) = (
        code_number(&r, "HIGHESTMODSEQ"),
        code_number(&r, "UIDVALIDITY"),
    );
    // A phone changes message 2 and expunges 3; the desktop (a) hears VANISHED.
    let mut b = s.raw();
    b.cmd("b1", &login);
    b.cmd("b2", "SELECT INBOX");
    b.cmd("b3", "UID STORE 2 +FLAGS.SILENT (\\Flagged)");
    b.cmd("b4", "UID STORE 3 +FLAGS.SILENT (\\Deleted)");
    b.cmd("b5", "UID EXPUNGE 3");
    let r = a.cmd("a4", "NOOP");
    assert!(r.iter().any(|l| l == "* VANISHED 3\r\n"), "{r:?}");
    let h1 = code_number(&r, "HIGHESTMODSEQ");
    assert!(h1 > h0, "{h0} -> {h1}");
    // SIGKILL, then Dovecot changes 4, expunges 5 and stores a new message (UID 7) while
    // s3imap is down, and the sync delivers one more (UID 8).
    let mut child = s.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    drop(s);
    {
        let d = dovecot::Dovecot::start(&t.mail(), &[("alice@example.com", PASSWORD)]);
        d.python(
            "alice@example.com",
            PASSWORD,
            r#"
ok(M.select('INBOX'))
ok(M.uid('STORE', '4', '+FLAGS', '(\\Answered)'))
ok(M.uid('STORE', '5', '+FLAGS', '(\\Deleted)'))
ok(M.expunge())
ok(M.append('INBOX', None, None, b'Subject: from dovecot\r\n\r\nx\r\n'))
"#,
        );
    }
    t.deliver(
        "alice@example.com",
        "1795000099.S3Im8.s3imap",
        &ses_message("alice@example.com", "alice@example.com", "m8", "x"),
    );
    let s = t.serve();
    let mut a = s.raw();
    a.cmd("c1", &login);
    a.cmd("c2", "ENABLE QRESYNC");
    let r = a.cmd("c3", &format!("SELECT INBOX (QRESYNC ({uv} {h0}))"));
    assert!(r.last().unwrap().starts_with("c3 OK"), "{r:?}");
    let h2 = code_number(&r, "HIGHESTMODSEQ");
    assert!(h2 > h1, "the outside changes are numbered after {h1}: {h2}");
    let (fetched, vanished) = resync_answer(&r);
    assert_eq!(vanished, ["3,5"], "{r:?}");
    let fetched_uids: Vec<u32> = fetched.iter().map(|f| f.0).collect();
    assert_eq!(fetched_uids, [2, 4, 7, 8], "{r:?}");
    assert_eq!(fetched[0].1, "\\Flagged");
    assert_eq!(fetched[1].1, "\\Answered");
    // Since the SIGKILL: only what Dovecot and the delivery did.
    let r = a.cmd(
        "c4",
        &format!("UID FETCH 1:* (FLAGS) (CHANGEDSINCE {h1} VANISHED)"),
    );
    let (fetched, vanished) = resync_answer(&r);
    assert_eq!(vanished, ["5"], "{r:?}");
    assert_eq!(
        fetched.iter().map(|f| f.0).collect::<Vec<_>>(),
        [4, 7, 8],
        "{r:?}"
    );
    // A restart with no change in between renumbers nothing.
    drop(a);
    drop(s);
    let s = t.serve();
    let mut a = s.raw();
    a.cmd("d1", &login);
    a.cmd("d2", "ENABLE QRESYNC");
    let r = a.cmd("d3", &format!("SELECT INBOX (QRESYNC ({uv} {h2}))"));
    assert_eq!(code_number(&r, "HIGHESTMODSEQ"), h2, "{r:?}");
    assert_eq!(resync_answer(&r), (vec![], vec![]), "{r:?}");
}

#[test]
fn imapclient_resyncs_with_qresync_and_condstore_like_dovecot() {
    if !have_imapclient() || !dovecot::require() {
        return;
    }
    let play = |port: u16| imapclient_script("imapclient_resync.py", port);
    let seeded = || {
        let t = Setup::new();
        for i in 1..=6 {
            t.deliver(
                "alice@example.com",
                &format!("17950000{i:02}.S3Im{i}.s3imap"),
                &ses_message(
                    "alice@example.com",
                    "alice@example.com",
                    &format!("m{i}"),
                    "x",
                ),
            );
        }
        let dir = t.mail().join("alice@example.com");
        let first = dir.join("new/1795000001.S3Im1.s3imap");
        std::fs::rename(&first, dir.join("cur/1795000001.S3Im1.s3imap:2,S")).unwrap();
        t
    };
    let t = seeded();
    let s = t.serve();
    let ours = play(s.port);
    let t2 = seeded();
    let d = dovecot::Dovecot::start(&t2.mail(), &[("alice@example.com", PASSWORD)]);
    let theirs = play(d.port);
    assert_eq!(ours, theirs, "s3imap:\n{ours}\nDovecot:\n{theirs}");
    for want in [
        "capabilities True True",
        "vanished ['(EARLIER) 3,5']",
        "changed [1, 2, 4] with modseq True",
        "new [7]",
        "qresync cache right True",
        "condstore cache right True",
        "current store OK no code",
        "stale store OK [MODIFIED 2]",
    ] {
        assert!(ours.lines().any(|l| l == want), "no {want:?} in\n{ours}");
    }
}

#[test]
fn compress_deflate_gives_the_same_answers_as_dovecot_with_imap_zlib() {
    if !dovecot::require() {
        return;
    }
    let script = project_dir().join("tests/clients/compress.py");
    let play = |port: u16| -> (String, String) {
        let out = Command::new("python3")
            .arg(&script)
            .args([&port.to_string(), "alice@example.com", PASSWORD])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let seeded = || {
        let t = Setup::new();
        t.deliver("alice@example.com", "1795000001.S3Im1.s3imap", &multipart());
        for i in 2..=30 {
            t.deliver(
                "alice@example.com",
                &format!("17950000{i:02}.S3Im{i}.s3imap"),
                &ses_message(
                    "alice@example.com",
                    "alice@example.com",
                    &format!("m{i}"),
                    "x",
                ),
            );
        }
        t
    };
    let t = seeded();
    let s = t.serve();
    let (ours, bytes) = play(s.port);
    let t2 = seeded();
    let d = dovecot::Dovecot::start_with(
        &t2.mail(),
        &[("alice@example.com", PASSWORD)],
        "",
        "mail_plugins = $mail_plugins zlib\nprotocol imap {\n  mail_plugins = $mail_plugins imap_zlib\n}\n",
    );
    let (theirs, _) = play(d.port);
    assert_eq!(ours, theirs, "s3imap:\n{ours}\nDovecot:\n{theirs}");
    for want in [
        "advertised True",
        "compress OK",
        "same answer compressed True",
        "header sync 30 responses",
        "second compress NO [COMPRESSIONACTIVE]",
        "body arrives whole True",
        "pipelined ['OK', 'OK', 'OK']",
    ] {
        assert!(ours.lines().any(|l| l == want), "no {want:?} in\n{ours}");
    }
    eprintln!("{bytes}");
}

/// Runs `tests/clients/<script>` (imapclient, in .venv) against a server; its stdout.
fn imapclient_script(script: &str, port: u16) -> String {
    let python = project_dir().join(".venv/bin/python");
    let out = Command::new(&python)
        .arg(project_dir().join("tests/clients").join(script))
        .args([&port.to_string(), "alice@example.com", PASSWORD])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn have_imapclient() -> bool {
    let python = project_dir().join(".venv/bin/python");
    let found = python.exists()
        && Command::new(&python)
            .args(["-c", "import imapclient"])
            .status()
            .is_ok_and(|s| s.success());
    peer("imapclient", found, "pip install IMAPClient")
}

#[test]
fn imapclient_sorts_and_threads_like_dovecot() {
    if !have_imapclient() || !dovecot::require() {
        return;
    }
    let msg = |id: u32, subject: &str, date: &str, refs: &str, from: &str| {
        let refs = if refs.is_empty() {
            String::new()
        } else {
            format!("References: {refs}\r\n")
        };
        format!(
            "From: {from}\r\nTo: alice@example.com\r\nMessage-ID: <s{id}@t>\r\nSubject: {subject}\r\n\
             Date: {date}\r\n{refs}\r\nbody {id}\r\n"
        )
        .into_bytes()
    };
    let seeded = || {
        let t = Setup::new();
        let msgs = [
            msg(1, "plans", "Thu, 1 Jan 2026 10:00:00 +0000", "", "zed@x"),
            msg(
                2,
                "Re: plans",
                "Thu, 1 Jan 2026 12:00:00 +0000",
                "<s1@t>",
                "amy@x",
            ),
            msg(3, "lunch", "Thu, 1 Jan 2026 09:00:00 +0000", "", "bob@x"),
            msg(
                4,
                "Re: plans",
                "Thu, 1 Jan 2026 11:00:00 +0000",
                "<s1@t>",
                "cat@x",
            ),
            msg(
                5,
                "Re: lunch",
                "Fri, 2 Jan 2026 09:00:00 +0000",
                "<s3@t>",
                "amy@x",
            ),
        ];
        for (i, m) in msgs.iter().enumerate() {
            t.deliver(
                "alice@example.com",
                &format!("17950000{:02}.S3Im{i}.s3imap", i + 1),
                m,
            );
        }
        // Message 3 is \Seen; INTERNALDATEs (file times) a minute apart.
        let dir = t.mail().join("alice@example.com");
        std::fs::rename(
            dir.join("new/1795000003.S3Im2.s3imap"),
            dir.join("cur/1795000003.S3Im2.s3imap:2,S"),
        )
        .unwrap();
        for sub in ["new", "cur"] {
            for e in std::fs::read_dir(dir.join(sub)).unwrap() {
                let p = e.unwrap().path();
                let n: u64 = p.file_name().unwrap().to_str().unwrap()[8..10]
                    .parse()
                    .unwrap();
                let f = std::fs::File::options().write(true).open(&p).unwrap();
                f.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(1_767_261_600 + n * 60))
                    .unwrap();
            }
        }
        t
    };
    let t = seeded();
    let s = t.serve();
    let ours = imapclient_script("imapclient_sort.py", s.port);
    let t2 = seeded();
    let d = dovecot::Dovecot::start(&t2.mail(), &[("alice@example.com", PASSWORD)]);
    let theirs = imapclient_script("imapclient_sort.py", d.port);
    assert_eq!(ours, theirs, "s3imap:\n{ours}\nDovecot:\n{theirs}");
    for want in [
        "capabilities True",
        "date [3, 1, 4, 2, 5]",
        "reverse arrival [5, 4, 3, 2, 1]",
        "subject then date [3, 5, 1, 4, 2]",
        "from, unseen only [2, 5, 4, 1]",
        "references ((3, 5), (1, (4,), (2,)))",
        "orderedsubject ((3, 5), (1, (4,), (2,)))",
    ] {
        assert!(ours.lines().any(|l| l == want), "no {want:?} in\n{ours}");
    }
}

#[test]
fn binary_sends_decoded_bytes_with_nul_as_literal8_and_append_takes_literal8() {
    let t = Setup::new();
    let s = t.serve();
    let mut c = s.raw();
    c.cmd("a1", &format!("LOGIN alice@example.com \"{PASSWORD}\""));
    // A message with a base64 part of raw bytes (NULs, CR and LF among them), stored through
    // APPEND with a literal8 (RFC 3516 §4.4).
    let bytes: Vec<u8> = (0u8..=255).chain([0, 0, 13, 10, 13]).collect();
    let b64 = base64_encode(&bytes);
    let msg = format!(
        "From: a@x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n\
         Content-Type: text/plain\r\n\r\nhi\r\n--q\r\nContent-Type: application/octet-stream\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--q--\r\n"
    );
    c.send(format!("a2 APPEND INBOX ~{{{}+}}\r\n", msg.len()).as_bytes());
    c.send(msg.as_bytes());
    c.send(b"\r\n");
    let r = c.until("a2");
    assert!(r.last().unwrap().starts_with("a2 OK"), "{r:?}");
    c.cmd("a3", "SELECT INBOX");
    c.send(b"a4 FETCH 1 (BINARY.SIZE[2] BINARY.PEEK[2])\r\n");
    let mut got = Vec::new();
    while !got.windows(6).any(|w| w == b"\r\na4 O") {
        let mut buf = [0u8; 4096];
        let n = c.s.read(&mut buf).unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let head = format!(
        "* 1 FETCH (BINARY.SIZE[2] {} BINARY[2] ~{{{}}}\r\n",
        bytes.len(),
        bytes.len()
    );
    assert!(
        got.starts_with(head.as_bytes()),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert_eq!(&got[head.len()..head.len() + bytes.len()], &bytes[..]);
    assert_eq!(
        &got[head.len() + bytes.len()..head.len() + bytes.len() + 3],
        b")\r\n"
    );
}

#[test]
fn a_flood_of_unauthenticated_connections_from_one_address_does_not_lock_others_out() {
    let t = Setup::new();
    let s = Server::start(
        &t.mail(),
        &t.users(),
        &[],
        &[
            "--max-unauthenticated-per-address",
            "10",
            "--login-deadline",
            "3s",
        ],
    );
    let script = format!(
        r#"
import resource, socket, sys, time, imaplib
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
port = {port}
flood, greeted, refused = [], 0, 0
for i in range(1000):
    c = socket.socket()
    c.bind(('127.0.0.2', 0))
    c.connect(('127.0.0.1', port))
    c.settimeout(30)
    line = c.makefile('rb').readline()
    if line.startswith(b'* OK'):
        greeted += 1
    elif b'not logged in' in line:
        refused += 1
    flood.append(c)
print('greeted', greeted, 'refused', refused)
# Another address logs in while the flood holds its share.
M = imaplib.IMAP4('127.0.0.1', port)
print('login', M.login('alice@example.com', {password:?})[0])
M.logout()
# A slowloris (one byte at a time, never a whole line) is closed at the login deadline.
c = socket.socket(); c.bind(('127.0.0.3', 0)); c.connect(('127.0.0.1', port)); c.settimeout(30)
f = c.makefile('rb'); f.readline()
t0 = time.time(); bye = b''
try:
    for _ in range(60):
        c.sendall(b'a')
        time.sleep(0.5)
except OSError:
    pass
c.settimeout(5)
try:
    bye = f.readline()
except OSError:
    pass
print('slowloris closed after', round(time.time() - t0), 's:', bye.decode().strip())
"#,
        port = s.port,
        password = PASSWORD
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
    assert!(stdout.contains("greeted 10 refused 990"), "{stdout}");
    assert!(stdout.contains("login OK"), "{stdout}");
    let closed = stdout
        .lines()
        .find(|l| l.starts_with("slowloris"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(closed.contains("* BYE Login took too long"), "{stdout}");
    // Closed at the deadline (3 s), not after the 30 s the bytes would buy: generous bounds.
    let secs: u64 = closed.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert!((2..=25).contains(&secs), "{stdout}");
}

#[test]
fn password_guessing_is_blocked_per_address_without_locking_the_user_out() {
    let t = Setup::new();
    let s = Server::start(
        &t.mail(),
        &t.users(),
        &[],
        &[
            "--login-failure-delay",
            "0s",
            "--max-unauthenticated-per-address",
            "100",
        ],
    );
    let script = format!(
        r#"
import socket, threading
port = {port}
answers = []
lock = threading.Lock()
def guesser(n):
    c = socket.socket(); c.bind(('127.0.0.2', 0)); c.connect(('127.0.0.1', port))
    f = c.makefile('rb'); f.readline()
    for i in range(4):
        c.sendall(b'g%d LOGIN alice@example.com wrong%d-%d\r\n' % (i, n, i))
        while True:
            l = f.readline()
            if l.startswith(b'g%d ' % i):
                break
        with lock:
            answers.append(l.split(b'[')[1].split(b']')[0].decode() if b'[' in l else l.decode())
    c.close()
ts = [threading.Thread(target=guesser, args=(n,)) for n in range(50)]
for x in ts: x.start()
for x in ts: x.join()
print('failed', answers.count('AUTHENTICATIONFAILED'), 'blocked', answers.count('UNAVAILABLE'), 'of', len(answers))
def login(src, pw):
    c = socket.socket(); c.bind((src, 0)); c.connect(('127.0.0.1', port))
    f = c.makefile('rb'); f.readline()
    c.sendall(b'a LOGIN alice@example.com "' + pw.encode() + b'"\r\n')
    while True:
        l = f.readline()
        if l.startswith(b'a '):
            return l.decode().strip()
print('from the guessing address:', login('127.0.0.2', {password:?}))
print('from another address:', login('127.0.0.1', {password:?}))
"#,
        port = s.port,
        password = PASSWORD
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let nums: Vec<usize> = stdout
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let (failed, blocked, total) = (nums[0], nums[1], nums[2]);
    assert_eq!(total, 200, "{stdout}");
    assert_eq!(failed + blocked, 200, "{stdout}");
    // Blocked at the tenth failure; a few more may have been checked in flight at that moment.
    assert!((10..=60).contains(&failed), "{stdout}");
    assert!(
        stdout.contains("from the guessing address: a NO [UNAVAILABLE]"),
        "{stdout}"
    );
    assert!(stdout.contains("from another address: a OK"), "{stdout}");
    // Every failure is logged once, the blocked ones marked (no password was checked for them).
    let log = s.log();
    let checked = log
        .lines()
        .filter(|l| l.contains("failed login for") && !l.contains("(blocked"))
        .count();
    let marked = log.lines().filter(|l| l.contains("(blocked")).count();
    assert_eq!((checked, marked), (failed, blocked + 1), "{stdout}");
}

/// A self-signed EC certificate for `cn` and its key, written to `dir/<cn>.crt` and `.key`.
fn make_cert(dir: &Path, cn: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let (crt, key) = (dir.join(format!("{cn}.crt")), dir.join(format!("{cn}.key")));
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args([
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={cn}"),
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .stderr(Stdio::null())
        .status()
        .expect("run openssl");
    assert!(st.success());
    (crt, key)
}

/// The subject of the certificate a TLS handshake on `port` is answered with.
fn served_subject(port: u16) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect 127.0.0.1:{port} </dev/null 2>/dev/null | openssl x509 -noout -subject"
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_certificate_replaced_on_disk_is_served_to_the_next_handshake() {
    let found = Command::new("openssl").arg("version").output().is_ok();
    if !peer("openssl", found, "bash .ci/apt ensure openssl") {
        return;
    }
    let t = Setup::new();
    let dir = t.work.path().join("tls");
    std::fs::create_dir_all(&dir).unwrap();
    let (c1, k1) = make_cert(&dir, "one");
    let (crt, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::copy(&c1, &crt).unwrap();
    std::fs::copy(&k1, &key).unwrap();
    let tls_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = Server::start(
        &t.mail(),
        &t.users(),
        &[],
        &[
            "--tls-listen",
            &format!("127.0.0.1:{tls_port}"),
            "--tls-cert",
            crt.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(served_subject(tls_port).contains("CN = one"), "{}", s.log());
    // A session that is up keeps its TLS session through the change.
    let mut kept = Command::new("openssl")
        .args([
            "s_client",
            "-quiet",
            "-connect",
            &format!("127.0.0.1:{tls_port}"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The renewal: a new pair put in place as cert-manager does (written aside, renamed in).
    let (c2, k2) = make_cert(&dir, "two");
    std::fs::copy(&k2, dir.join("new.key")).unwrap();
    std::fs::copy(&c2, dir.join("new.crt")).unwrap();
    std::fs::rename(dir.join("new.key"), &key).unwrap();
    std::fs::rename(dir.join("new.crt"), &crt).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !served_subject(tls_port).contains("CN = two") {
        assert!(Instant::now() < deadline, "still the old one:\n{}", s.log());
        std::thread::sleep(Duration::from_millis(500));
    }
    {
        let stdin = kept.stdin.as_mut().unwrap();
        stdin
            .write_all(
                format!("a LOGIN alice@example.com \"{PASSWORD}\"\r\nb LOGOUT\r\n").as_bytes(),
            )
            .unwrap();
    }
    let out = kept.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("a OK"),
        "the session opened before the change: {text}"
    );
    // A broken new certificate: the working pair stays and the log says why.
    std::fs::write(&crt, "not a certificate\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !s.log().contains("the previous certificate stays in use") {
        assert!(Instant::now() < deadline, "{}", s.log());
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(served_subject(tls_port).contains("CN = two"), "{}", s.log());
}

#[test]
fn systemd_hears_ready_watchdog_pings_and_stopping() {
    let t = Setup::new();
    let sock_path = t.work.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut s = Server::start(
        &t.mail(),
        &t.users(),
        &[
            (
                "NOTIFY_SOCKET".into(),
                sock_path.to_string_lossy().into_owned(),
            ),
            ("WATCHDOG_USEC".into(), "400000".into()),
        ],
        &[],
    );
    let mut buf = [0u8; 256];
    let mut got: Vec<String> = Vec::new();
    while got.iter().filter(|m| *m == "WATCHDOG=1").count() < 3 {
        let n = sock.recv(&mut buf).expect("a notification");
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(got.contains(&"READY=1".to_string()), "{got:?}");
    assert_eq!(s.stop(), Some(0));
    loop {
        let n = sock.recv(&mut buf).expect("STOPPING=1 at shutdown");
        if &buf[..n] == b"STOPPING=1" {
            break;
        }
    }
}

/// `s3imap token …` against this setup's users file and mail root: (exit code, stdout,
/// stderr).
fn token_cli(t: &Setup, args: &[&str]) -> (i32, String, String) {
    let out = s3imap(&[])
        .arg("token")
        .args(args)
        .arg("--mail-root")
        .arg(t.mail())
        .args(if args[0] == "issue" {
            vec![
                "--users".to_string(),
                t.users().to_string_lossy().into_owned(),
            ]
        } else {
            Vec::new()
        })
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn app_passwords_log_in_read_only_ones_change_nothing_and_revocation_holds_at_once() {
    let t = Setup::new();
    t.deliver(
        "alice@example.com",
        "1700000000.M1.h",
        b"Subject: one\r\n\r\nbody\r\n",
    );
    let (code, full, err) = token_cli(&t, &["issue", "alice@example.com", "--name", "phone"]);
    assert_eq!(code, 0, "{err}");
    assert!(full.starts_with("v4.local."), "{full}");
    let (code, ro, err) = token_cli(
        &t,
        &[
            "issue",
            "alice@example.com",
            "--name",
            "tablet",
            "--read-only",
            "--expires",
            "90d",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = token_cli(&t, &["issue", "nobody@example.com", "--name", "x"]);
    assert_eq!(code, 2, "an unknown user gets no token: {err}");
    // Only app passwords: the real password stays off the devices.
    let s = Server::start(&t.mail(), &t.users(), &[], &["--auth", "token"]);
    let login = |pw: &str| {
        let mut r = s.raw();
        let a = r.cmd("a", &format!("LOGIN alice@example.com \"{pw}\""));
        (r, a.last().unwrap().clone())
    };
    let (_, a) = login(PASSWORD);
    assert!(a.starts_with("a NO [AUTHENTICATIONFAILED]"), "{a}");
    // imaplib with the full token: reads and changes.
    let out = imaplib(
        s.port,
        "alice@example.com",
        &full,
        r#"
ok(M.select('INBOX'))
ok(M.store('1', '+FLAGS', '(\\Flagged)'))
print(ok(M.fetch('1', '(FLAGS)'))[1][0].decode())
"#,
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", s.log()));
    assert!(out.contains("\\Flagged"), "{out}");
    // The read-only token: reads, and every change is NO [NOPERM].
    let out = imaplib(
        s.port,
        "alice@example.com",
        &ro,
        r#"
# imaplib's select() raises on a read-only answer: the command itself, then.
typ, d = M._simple_command('SELECT', 'INBOX')
M.state = 'SELECTED'
M.is_readonly = True
print('select', typ, 'READ-ONLY' in M.untagged_responses)
print('fetch', ok(M.fetch('1', '(BODY[])'))[0])
print('seen', b'\\Seen' in ok(M.fetch('1', '(FLAGS)'))[1][0])
for name, call in [
    ('store', lambda: M.store('1', '+FLAGS', '(\\Deleted)')),
    ('append', lambda: M.append('INBOX', None, None, b'Subject: x\r\n\r\nx\r\n')),
    ('expunge', lambda: M.expunge()),
    ('copy', lambda: M.copy('1', 'Archive')),
    ('move', lambda: M._simple_command('MOVE', '1', 'Archive')),
    ('create', lambda: M.create('New')),
    ('delete', lambda: M.delete('Archive')),
    ('rename', lambda: M.rename('Archive', 'Old')),
]:
    try:
        typ, d = call()
        print(name, typ, d)
    except imaplib.IMAP4.error as e:
        print(name, 'NO', e)
"#,
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", s.log()));
    assert!(out.contains("select OK True"), "read-only SELECT: {out}");
    assert!(out.contains("fetch OK"), "{out}");
    assert!(out.contains("seen False"), "reading set \\Seen: {out}");
    for name in [
        "store", "append", "expunge", "copy", "move", "create", "delete", "rename",
    ] {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or("");
        assert!(line.contains("NOPERM"), "{name}: {line}\n{out}");
    }
    // Revoked: refused at the next login, on this running server.
    let (code, list, _) = token_cli(&t, &["list", "alice@example.com"]);
    assert_eq!(code, 0);
    assert!(
        !list.contains(&full) && !list.contains(&ro),
        "list shows no token"
    );
    let id = list
        .lines()
        .find(|l| l.contains("\tphone\t"))
        .and_then(|l| l.split('\t').next())
        .unwrap()
        .to_string();
    assert!(
        list.contains("read-only") && list.contains("full"),
        "{list}"
    );
    // Sessions already logged in with it end too: one between commands, one in IDLE.
    let (mut busy, a) = login(&full);
    assert!(a.starts_with("a OK"), "{a}");
    busy.cmd("s", "SELECT INBOX");
    let (mut idler, _) = login(&full);
    idler.cmd("s", "SELECT INBOX");
    idler.send(b"i IDLE\r\n");
    assert!(idler.line().starts_with("+ "));
    let (code, _, err) = token_cli(&t, &["revoke", &id]);
    assert_eq!(code, 0, "{err}");
    std::thread::sleep(Duration::from_secs(6));
    let bye = idler.line();
    assert!(
        bye.starts_with("* BYE [UNAVAILABLE]"),
        "IDLE after revoke: {bye}"
    );
    busy.send(b"n NOOP\r\n");
    let bye = busy.line();
    assert!(
        bye.starts_with("* BYE [UNAVAILABLE]"),
        "a command after revoke: {bye}"
    );
    let (_, a) = login(&full);
    assert!(a.starts_with("a NO [AUTHENTICATIONFAILED]"), "revoked: {a}");
    let (_, a) = login(&ro);
    assert!(a.starts_with("a OK"), "the other token still works: {a}");
    let (code, _, _) = token_cli(&t, &["revoke", "--all", "alice@example.com"]);
    assert_eq!(code, 0);
    let (_, a) = login(&ro);
    assert!(a.starts_with("a NO [AUTHENTICATIONFAILED]"), "{a}");
    // AUTHENTICATE PLAIN takes a token too; an expired one is refused.
    let (_, soon, _) = token_cli(
        &t,
        &[
            "issue",
            "alice@example.com",
            "--name",
            "x",
            "--expires",
            "2s",
        ],
    );
    let plain = base64_encode(format!("\0alice@example.com\0{soon}").as_bytes());
    let mut r = s.raw();
    let a = r.cmd("p", &format!("AUTHENTICATE PLAIN {plain}"));
    assert!(a.last().unwrap().starts_with("p OK"), "{a:?}");
    std::thread::sleep(Duration::from_millis(2500));
    let mut r = s.raw();
    let a = r.cmd("p", &format!("AUTHENTICATE PLAIN {plain}"));
    assert!(a.last().unwrap().starts_with("p NO"), "expired: {a:?}");
    let log = s.log();
    for secret in [&full, &ro, &soon] {
        assert!(!log.contains(secret.as_str()), "a token in the log");
    }
    assert!(log.contains("logged in with app password"), "{log}");
    // `user del` takes the user's app passwords with it.
    token_cli(&t, &["issue", "bob@example.com", "--name", "x"]);
    let out = s3imap(&[])
        .args(["user", "del", "bob@example.com", "--users"])
        .arg(t.users())
        .arg("--mail-root")
        .arg(t.mail())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, list, _) = token_cli(&t, &["list", "bob@example.com"]);
    assert_eq!(list.lines().count(), 1, "only the heading left: {list}");
}

/// One HTTP GET on loopback: (status code, body).
fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (code, body.to_string())
}

#[test]
fn readyz_follows_a_mail_root_that_goes_read_only_and_metrics_count_logins() {
    let t = Setup::new();
    t.deliver(
        "alice@example.com",
        "1700000000.M1.h",
        b"Subject: one\r\n\r\nbody\r\n",
    );
    let root = t.mail();
    // As root, only a read-only mount refuses writes: the server runs in a mount namespace of
    // its own with the mail root bind-mounted, which the test remounts read-only and back.
    let as_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let mut env = vec![("S3IMAP_LOG".to_string(), "debug".to_string())];
    env.push(("S3IMAP_HTTP_LISTEN".into(), "127.0.0.1:0".into()));
    let serve = s3imap(&env);
    let mut cmd = if as_root {
        let mut c = Command::new("unshare");
        c.args([
            "-m",
            "sh",
            "-c",
            "mount --bind \"$0\" \"$0\" && exec \"$@\"",
        ])
        .arg(&root)
        .arg(serve.get_program())
        .args(serve.get_args());
        for (k, v) in serve.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c
    } else {
        serve
    };
    cmd.arg("serve")
        .args(["--listen", "127.0.0.1:0", "--users"])
        .arg(t.users())
        .arg("--mail-root")
        .arg(&root);
    let s = Server::spawn(cmd);
    let log = s.log();
    let port: u16 = log
        .split("health and metrics on http://127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no health port in\n{log}"));
    assert_eq!(http_get(port, "/healthz").0, 200);
    let (code, body) = http_get(port, "/readyz");
    assert_eq!(code, 200, "{body}");
    let pid = s.child.as_ref().unwrap().id().to_string();
    let set = |ro: bool| {
        let ok = if as_root {
            Command::new("nsenter")
                .args(["-t", &pid, "-m", "mount", "-o"])
                .arg(if ro {
                    "remount,bind,ro"
                } else {
                    "remount,bind,rw"
                })
                .arg(&root)
                .status()
                .unwrap()
                .success()
        } else {
            use std::os::unix::fs::PermissionsExt;
            for d in [root.clone(), root.join(".s3imap")] {
                let _ = std::fs::set_permissions(
                    &d,
                    std::fs::Permissions::from_mode(if ro { 0o555 } else { 0o755 }),
                );
            }
            true
        };
        assert!(
            ok,
            "could not make the mail root {}",
            if ro { "read-only" } else { "writable" }
        );
    };
    set(true);
    let (code, body) = http_get(port, "/readyz");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("the mail root takes no writes"), "{body}");
    assert_eq!(http_get(port, "/healthz").0, 200, "alive while unready");
    set(false);
    let (code, body) = http_get(port, "/readyz");
    assert_eq!(code, 200, "recovered: {body}");
    // Metrics count what clients did.
    let mut r = s.raw();
    r.cmd("a", "LOGIN alice@example.com wrong");
    r.cmd("b", &format!("LOGIN alice@example.com \"{PASSWORD}\""));
    r.cmd("c", "SELECT INBOX");
    r.cmd("d", "FETCH 99 FLAGS");
    let (code, m) = http_get(port, "/metrics");
    assert_eq!(code, 200);
    for line in [
        "s3imap_logins_total{result=\"ok\"} 1",
        "s3imap_logins_total{result=\"failed\"} 1",
        "s3imap_commands_total{command=\"SELECT\"} 1",
        "s3imap_command_failures_total{command=\"FETCH\",result=\"bad\"} 1",
        "s3imap_sessions{state=\"authenticated\"} 1",
    ] {
        assert!(m.lines().any(|l| l == line), "{line} not in\n{m}");
    }
    assert_eq!(http_get(port, "/nothing").0, 404);
}
