//! The events path and client-side-encrypted objects against real peers: SeaweedFS for S3
//! (signatures checked), moto server for SQS, SNS and KMS, notifications built as AWS
//! documents them and published through SNS by boto3 (`tests/aws_peer.py`), and `s3imap serve`
//! as a user runs it.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

const USERS: &str =
    "alice@example.com:{PLAIN}a\nbob@example.com:{PLAIN}b\ncarol@example.com:{PLAIN}c\n";

/// moto server on a free loopback port, killed on drop.
struct Moto {
    child: Child,
    url: String,
}

impl Moto {
    fn start() -> Option<Moto> {
        let bin = project_dir().join(".venv/bin/moto_server");
        if !peer(
            "moto server",
            bin.exists(),
            ".venv/bin/pip install 'moto[server]'",
        ) {
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let mut child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        for _ in 0..600 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(Moto {
                    child,
                    url: format!("http://127.0.0.1:{port}"),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("moto server did not start on port {port}");
    }

    /// Runs `tests/aws_peer.py CMD MOTO ARGS...`; its stdout.
    fn peer(&self, cmd: &str, args: &[&str]) -> String {
        let out = Command::new(project_dir().join(".venv/bin/python"))
            .arg(project_dir().join("tests/aws_peer.py"))
            .arg(cmd)
            .arg(&self.url)
            .args(args)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .output()
            .expect("run aws_peer.py");
        assert!(
            out.status.success(),
            "aws_peer.py {cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// (visible, in flight) messages on the queue.
    fn depth(&self, queue: &str) -> (u32, u32) {
        let d = self.peer("depth", &[queue]);
        let mut it = d.split_whitespace().map(|n| n.parse().unwrap());
        (it.next().unwrap(), it.next().unwrap())
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Setup {
    s3: Bucket,
    moto: Moto,
    work: TempDir,
    queue: String,
    topic: String,
}

impl Setup {
    fn new() -> Option<Setup> {
        let moto = Moto::start()?;
        let s3 = bucket("events");
        let work = TempDir::new("events");
        std::fs::write(work.path().join("users"), USERS).unwrap();
        let wired = moto.peer("wire", &[]);
        let mut lines = wired.lines();
        let queue = lines.next().unwrap().to_string();
        let topic = lines.next().unwrap().to_string();
        Some(Setup {
            s3,
            moto,
            work,
            queue,
            topic,
        })
    }

    fn mail(&self) -> PathBuf {
        self.work.path().join("mail")
    }

    fn env(&self) -> Vec<(String, String)> {
        let mut e = self.s3.env();
        for (k, v) in [
            ("S3IMAP_MAIL_ROOT", self.mail()),
            ("S3IMAP_USERS", self.work.path().join("users")),
        ] {
            e.push((k.into(), v.to_string_lossy().into_owned()));
        }
        e.push(("AWS_ENDPOINT_URL_S3".into(), self.s3.endpoint().into()));
        e.push(("AWS_ENDPOINT_URL_KMS".into(), self.moto.url.clone()));
        e
    }

    /// `s3imap serve` with the events queue, its log in `serve.log`; killed on drop.
    fn serve(&self) -> Killed {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let log = std::fs::File::create(self.work.path().join("serve.log")).unwrap();
        Killed(
            s3imap(&self.env())
                .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
                .args(["--events-queue", &self.queue])
                .env("S3IMAP_LOG", "debug")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start s3imap serve"),
        )
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.work.path().join("serve.log")).unwrap_or_default()
    }

    /// Puts a message as SES does and publishes SES's notification for it through SNS.
    fn arrive(&self, key: &str, message: &[u8], recipients: &[&str]) {
        self.s3.put(key, message);
        self.notify(key, recipients);
    }

    fn notify(&self, key: &str, recipients: &[&str]) {
        let mut args = vec![self.topic.as_str(), self.s3.bucket.as_str(), key];
        args.extend_from_slice(recipients);
        self.moto.peer("ses", &args);
    }
}

/// Messages in new/ and cur/ of `user`'s INBOX.
fn count(mail: &Path, user: &str) -> usize {
    ["new", "cur"]
        .iter()
        .map(|d| {
            std::fs::read_dir(mail.join(user).join(d))
                .map(|r| r.count())
                .unwrap_or(0)
        })
        .sum()
}

fn wait_for(what: &str, ceiling: Duration, mut ok: impl FnMut() -> bool, log: impl Fn() -> String) {
    let until = Instant::now() + ceiling;
    while !ok() {
        if Instant::now() > until {
            panic!(
                "{what}: not within {ceiling:?}; the server's log:\n{}",
                log()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What SES stores: its Received line names one envelope recipient (alice); carol is Bcc'd,
/// so no header names her.
const BCC_MESSAGE: &[u8] = b"Return-Path: <sender@other.example>\r\n\
    Received: from mail.other.example by inbound-smtp.us-east-1.amazonaws.com with SMTP id \
    e1 for alice@example.com; Wed, 02 Dec 2026 10:00:00 +0000 (UTC)\r\n\
    X-SES-Spam-Verdict: PASS\r\nX-SES-Virus-Verdict: PASS\r\n\
    From: Sender <sender@other.example>\r\nTo: Alice <alice@example.com>\r\n\
    Subject: one of you in Bcc\r\nMessage-ID: <bcc-1@other.example>\r\n\r\nHello both.\r\n";

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_message_with_a_bcc_recipient_reaches_both_once_through_the_events_path() {
    let Some(t) = Setup::new() else { return };
    let _serve = t.serve();
    let log = || t.log();
    wait_for(
        "the first listing pass",
        Duration::from_secs(120),
        || t.log().contains("receiving notifications"),
        log,
    );
    t.arrive(
        "inbound/bcc1",
        BCC_MESSAGE,
        &["alice@example.com", "carol@example.com"],
    );
    wait_for(
        "delivery to alice and carol",
        Duration::from_secs(60),
        || count(&t.mail(), "alice@example.com") == 1 && count(&t.mail(), "carol@example.com") == 1,
        log,
    );
    // The queue forgets the message once delivery is durable.
    wait_for(
        "the queue emptied",
        Duration::from_secs(30),
        || t.moto.depth(&t.queue) == (0, 0),
        log,
    );
    // The same notification again (SNS delivers at least once): nothing delivered twice.
    t.notify("inbound/bcc1", &["alice@example.com", "carol@example.com"]);
    wait_for(
        "the repeated notification handled",
        Duration::from_secs(30),
        || t.moto.depth(&t.queue) == (0, 0) && t.log().contains("delivered already"),
        log,
    );
    // The listing sync (the safety net) finds it in the ledger, too.
    let (code, err) = run(s3imap(&t.env()).args(["sync", "--once"]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("delivered 0"), "{err}");
    assert_eq!(count(&t.mail(), "alice@example.com"), 1);
    assert_eq!(count(&t.mail(), "carol@example.com"), 1);
    assert_eq!(
        count(&t.mail(), "bob@example.com"),
        0,
        "bob was not a recipient"
    );
    let body = std::fs::read_dir(t.mail().join("carol@example.com/new"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(std::fs::read(&body).unwrap(), BCC_MESSAGE);

    // A crash after the link and before the ledger line, with the message read meanwhile (a
    // client moved it to cur/): the notification comes back and finds it there.
    let cur = t.mail().join("carol@example.com/cur");
    let name = body.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::rename(&body, cur.join(format!("{name}:2,S"))).unwrap();
    std::fs::remove_file(t.mail().join(format!(".s3imap/{}.ledger", t.s3.bucket))).unwrap();
    let before = t.log().matches("delivered to").count();
    t.notify("inbound/bcc1", &["alice@example.com", "carol@example.com"]);
    wait_for(
        "the notification after the lost ledger line",
        Duration::from_secs(30),
        || t.log().matches("delivered to").count() > before && t.moto.depth(&t.queue) == (0, 0),
        log,
    );
    assert_eq!(count(&t.mail(), "alice@example.com"), 1);
    assert_eq!(count(&t.mail(), "carol@example.com"), 1, "not linked again");
}

#[test]
fn s3_events_route_on_the_header_and_bad_messages_wait_for_the_redrive_policy() {
    let Some(t) = Setup::new() else { return };
    let _serve = t.serve();
    let log = || t.log();
    wait_for(
        "the server up",
        Duration::from_secs(120),
        || t.log().contains("receiving notifications"),
        log,
    );
    // S3 wired to SQS directly: S3's own event format, no recipients; the header routes.
    let msg = b"Received: from x by inbound-smtp.us-east-1.amazonaws.com for bob@example.com; \
        Wed, 02 Dec 2026 10:00:00 +0000\r\nTo: bob@example.com\r\nSubject: s3 event\r\n\r\nhi\r\n";
    t.s3.put("inbound/s3 event+1", msg);
    let event = serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-12-02T10:00:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "mail",
               "bucket": {"name": t.s3.bucket, "arn": format!("arn:aws:s3:::{}", t.s3.bucket)},
               "object": {"key": "inbound/s3+event%2B1", "size": msg.len(),
                          "eTag": "0", "sequencer": "0055AED6DCD90281E5"}}}]});
    t.moto.peer("raw", &[&t.queue, &event.to_string()]);
    t.moto.peer(
        "raw",
        &[
            &t.queue,
            r#"{"Service":"Amazon S3","Event":"s3:TestEvent"}"#,
        ],
    );
    wait_for(
        "delivery to bob",
        Duration::from_secs(60),
        || count(&t.mail(), "bob@example.com") == 1,
        log,
    );
    // Not a notification at all: kept (hidden for a while), not deleted, not looped on.
    t.moto.peer("raw", &[&t.queue, "this is not JSON"]);
    wait_for(
        "the bad message postponed",
        Duration::from_secs(30),
        || {
            t.log().contains("left for the queue's redrive policy")
                && t.moto.depth(&t.queue) == (0, 1)
        },
        log,
    );
    std::thread::sleep(Duration::from_secs(2));
    let tries = t.log().matches("not JSON; left for").count();
    assert_eq!(tries, 1, "received once, then hidden: {}", t.log());
    assert_eq!(count(&t.mail(), "alice@example.com"), 0);
}

#[test]
fn kms_encrypted_objects_are_decrypted_and_a_tampered_one_is_refused() {
    let Some(t) = Setup::new() else { return };
    let staging = TempDir::new("kms");
    let mut message =
        b"Received: from x by inbound-smtp.us-east-1.amazonaws.com for alice@example.com; \
        Wed, 02 Dec 2026 10:00:00 +0000\r\nTo: alice@example.com\r\nSubject: sealed\r\n\r\n"
            .to_vec();
    for i in 0..20_000 {
        message.extend_from_slice(format!("line {i} of a long encrypted message\r\n").as_bytes());
    }
    let file = staging.path().join("m");
    std::fs::write(&file, &message).unwrap();
    let file = file.to_string_lossy().into_owned();
    let (s3, bucket) = (t.s3.endpoint(), t.s3.bucket.as_str());
    t.moto
        .peer("encrypt", &[s3, bucket, "inbound/sealed", &file]);
    t.moto.peer(
        "encrypt",
        &[s3, bucket, "inbound/tampered", &file, "tamper"],
    );
    let (code, err) = run(s3imap(&t.env()).args(["sync", "--once"]));
    assert_eq!(code, 1, "a run with a refused object exits non-zero: {err}");
    assert!(err.contains("delivered 1"), "{err}");
    assert!(
        err.contains("inbound/tampered: left in the bucket"),
        "{err}"
    );
    assert!(err.contains("does not decrypt"), "{err}");
    let dir = t.mail().join("alice@example.com");
    let got: Vec<_> = std::fs::read_dir(dir.join("new")).unwrap().collect();
    assert_eq!(got.len(), 1, "only the intact one is delivered");
    let path = got[0].as_ref().unwrap().path();
    assert_eq!(
        std::fs::read(path).unwrap(),
        message,
        "decrypted byte for byte"
    );
    assert_eq!(
        std::fs::read_dir(dir.join("tmp")).unwrap().count(),
        0,
        "nothing left half-written"
    );
}

#[test]
fn check_tries_the_events_queue_and_kms() {
    let Some(t) = Setup::new() else { return };
    std::fs::create_dir_all(t.mail()).unwrap();
    let staging = TempDir::new("check");
    let file = staging.path().join("m");
    std::fs::write(&file, BCC_MESSAGE).unwrap();
    let (s3, bucket) = (t.s3.endpoint(), t.s3.bucket.as_str());
    t.moto.peer(
        "encrypt",
        &[s3, bucket, "inbound/sealed", file.to_str().unwrap()],
    );
    t.notify("inbound/sealed", &["alice@example.com"]);
    let check = |extra: &[(&str, &str)]| {
        let mut env = t.env();
        env.push(("S3IMAP_EVENTS_QUEUE".into(), t.queue.clone()));
        for (k, v) in extra {
            env.retain(|(n, _)| n != k);
            env.push((k.to_string(), v.to_string()));
        }
        let out = s3imap(&env).arg("check").output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = check(&[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("ok   kms: inbound/sealed is encrypted and its data key decrypts"),
        "{out}"
    );
    assert!(out.contains("ok   events:"), "{out}");
    assert!(out.contains("a redrive policy"), "{out}");
    assert!(
        out.contains(&format!("names s3://{bucket}/inbound/sealed")),
        "{out}"
    );
    // The peek leaves the message for the server.
    assert_eq!(t.moto.depth(&t.queue).0, 1);

    let missing = t.queue.replace("/mail", "/no-such-queue");
    let (code, out) = check(&[("S3IMAP_EVENTS_QUEUE", &missing)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL events:"), "{out}");
    let (code, out) = check(&[("S3IMAP_EVENTS_QUEUE", "sqs://nowhere")]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAIL events: \"sqs://nowhere\": expected the queue URL"),
        "{out}"
    );
    // KMS unreachable: the encrypted object cannot be read.
    let (code, out) = check(&[("AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:9")]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAIL kms: inbound/sealed is encrypted: cannot reach"),
        "{out}"
    );
}
