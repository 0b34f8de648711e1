//! Many clients at once on one mailbox doing random APPEND / FETCH / STORE / COPY / MOVE /
//! EXPUNGE / IDLE for a bounded time; then the mailbox must be consistent: UIDs unique and
//! ascending, every message intact, each message's flags as its owner last set them, and no
//! protocol error on any connection.

mod support;

use std::process::Command;
use support::*;

const SCRIPT: &str = r#"
import imaplib, random, re, sys, threading, time, hashlib
PORT, CLIENTS, SECONDS = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
errors, lock = [], threading.Lock()
owned = {}      # client -> {msgid: (body digest, last flags)}
moved = set()   # msgids moved to Archive
def body(c, n):
    return (b'Subject: c%d-m%d\r\nMessage-ID: <c%d-m%d@stress>\r\n\r\n' % (c, n, c, n)) + (b'line %d\r\n' % n) * random.randint(1, 200)
def worker(c):
    rnd = random.Random(c)
    mine = owned.setdefault(c, {})
    try:
        M = imaplib.IMAP4('127.0.0.1', PORT)
        M.login('alice@example.com', 'pw')
        r = M.select('INBOX')
        assert r[0] == 'OK', r
        n, end = 0, time.time() + SECONDS
        while time.time() < end:
            op = rnd.choice(['append', 'append', 'fetch', 'store', 'copy', 'move', 'expunge', 'idle', 'noop'])
            if op == 'append':
                b = body(c, n); mid = 'c%d-m%d' % (c, n); n += 1
                r = M.append('INBOX', None, None, b)
                assert r[0] == 'OK', r
                mine[mid] = (hashlib.sha256(b).hexdigest(), set())
            elif op == 'fetch':
                typ, d = M.uid('FETCH', '1:*', '(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])')
                assert typ == 'OK', d
            elif op in ('store', 'copy', 'move') and mine:
                mid = rnd.choice(sorted(mine))
                typ, d = M.uid('SEARCH', 'HEADER', 'Message-ID', '<%s@stress>' % mid)
                assert typ == 'OK', d
                uids = d[0].split()
                if not uids:
                    continue
                uid = uids[-1].decode()
                if op == 'store':
                    flags = set(rnd.sample(['\\Seen', '\\Flagged', '\\Answered', '$Work'], rnd.randint(0, 3)))
                    typ, d = M.uid('STORE', uid, 'FLAGS', '(%s)' % ' '.join(sorted(flags)))
                    assert typ == 'OK', d
                    mine[mid] = (mine[mid][0], flags)
                elif op == 'copy':
                    typ, d = M.uid('COPY', uid, 'Archive')
                    assert typ == 'OK', d
                else:
                    typ, d = M._simple_command('UID', 'MOVE', uid, 'Archive')
                    assert typ == 'OK', d
                    with lock:
                        moved.add(mid)
                    del mine[mid]
            elif op == 'expunge':
                r = M.expunge()
                assert r[0] == 'OK', r
            elif op == 'idle':
                tag = M._new_tag()
                M.send(tag + b' IDLE\r\n')
                while True:
                    l = M.readline()
                    if l.startswith(b'+'):
                        break
                    assert l.startswith(b'* '), l
                time.sleep(rnd.uniform(0, 0.3))
                M.send(b'DONE\r\n')
                while True:
                    l = M.readline()
                    if l.startswith(tag):
                        assert b' OK' in l, l
                        break
            else:
                r = M.noop()
                assert r[0] == 'OK', r
        M.logout()
    except Exception as e:
        with lock:
            errors.append('client %d: %r' % (c, e))
ts = [threading.Thread(target=worker, args=(c,)) for c in range(CLIENTS)]
[t.start() for t in ts]; [t.join() for t in ts]
if errors:
    print('\n'.join(errors)); sys.exit(1)
# Consistency, seen by a fresh session.
M = imaplib.IMAP4('127.0.0.1', PORT); M.login('alice@example.com', 'pw')
M.select('INBOX')
typ, d = M.uid('FETCH', '1:*', '(UID FLAGS BODY.PEEK[])')
assert typ == 'OK'
uids, found = [], {}
for x in d:
    if not isinstance(x, tuple):
        continue
    uid = int(re.search(rb'UID (\d+)', x[0]).group(1))
    flags = set(f.decode() for f in re.search(rb'FLAGS \(([^)]*)\)', x[0]).group(1).split()) - {'\\Recent'}
    mid = re.search(rb'Message-ID: <([^@]+)@stress>', x[1]).group(1).decode()
    uids.append(uid)
    assert mid not in found, 'message %s twice in INBOX' % mid
    found[mid] = (hashlib.sha256(x[1]).hexdigest(), flags)
assert uids == sorted(uids) and len(set(uids)) == len(uids), uids
want = {m: v for c in owned.values() for m, v in c.items()}
assert set(found) == set(want), (sorted(set(want) - set(found))[:5], sorted(set(found) - set(want))[:5])
for m, (digest, flags) in want.items():
    assert found[m][0] == digest, 'message %s damaged' % m
    assert found[m][1] == flags, (m, found[m][1], flags)
M.select('Archive')
typ, d = M.uid('FETCH', '1:*', '(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])')
archived = set(re.findall(rb'<([^@]+)@stress>', b''.join(x[1] for x in d if isinstance(x, tuple))))
assert {m.encode() for m in moved} <= archived, 'a moved message is missing from Archive'
print('ok', len(found), 'in INBOX,', len(archived), 'distinct in Archive')
"#;

#[test]
fn concurrent_clients_leave_a_consistent_mailbox() {
    let work = TempDir::new("stress");
    let w = work.path();
    std::fs::write(w.join("users"), "alice@example.com:{PLAIN}pw\n").unwrap();
    std::fs::create_dir_all(w.join("mail")).unwrap();
    let serve = Serve::start(&w.join("users"), &w.join("mail"));
    let port = serve.port;
    let out = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .args([port.to_string(), "6".into(), "12".into()])
        .output()
        .expect("python3");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.starts_with("ok "), "{text}");
}

/// One session FETCHes a message while another expunges it, 300 times: every FETCH answers
/// OK (the message is in the answer whole, or left out), never NO, never a NUL byte, never a
/// body that is not the message.
const RACE: &str = r#"
import imaplib, sys, threading
PORT, ROUNDS = int(sys.argv[1]), int(sys.argv[2])
A = imaplib.IMAP4('127.0.0.1', PORT); A.login('alice@example.com', 'pw'); A.select('INBOX')
B = imaplib.IMAP4('127.0.0.1', PORT); B.login('alice@example.com', 'pw'); B.select('INBOX')
bad, whole, gone = [], 0, 0
for i in range(ROUNDS):
    body = b'Subject: race %d\r\nMessage-ID: <r%d@race>\r\n\r\n' % (i, i) + b'x' * (i * 37 % 5000) + b'\r\n'
    typ, d = A.append('INBOX', None, None, body)
    assert typ == 'OK', d
    uid = d[0].split(b'APPENDUID ')[1].split(b' ')[1].rstrip(b']')
    B.noop()
    start = threading.Barrier(2)
    def expunge():
        start.wait()
        A.uid('STORE', uid, '+FLAGS.SILENT', '(\\Deleted)')
        A.expunge()
    t = threading.Thread(target=expunge); t.start()
    start.wait()
    typ, d = B.uid('FETCH', uid, '(ENVELOPE BODY.PEEK[])')
    t.join()
    raw = b''.join(x if isinstance(x, bytes) else b''.join(x) for x in d if x)
    if typ != 'OK' or b'\x00' in raw:
        bad.append((i, typ, raw[:200]))
    for x in d:
        if isinstance(x, tuple):
            if x[1] == body:
                whole += 1
            else:
                bad.append((i, 'not the message', x[1][:80]))
    if not any(isinstance(x, tuple) for x in d):
        gone += 1
    B.noop()
print('whole', whole, 'left out', gone)
if bad:
    print(bad[:5]); sys.exit(1)
"#;

#[test]
fn fetch_racing_an_expunge_answers_ok_and_whole_or_not_at_all() {
    let work = TempDir::new("race");
    let w = work.path();
    std::fs::write(w.join("users"), "alice@example.com:{PLAIN}pw\n").unwrap();
    std::fs::create_dir_all(w.join("mail")).unwrap();
    let serve = Serve::start(&w.join("users"), &w.join("mail"));
    let out = Command::new("python3")
        .arg("-c")
        .arg(RACE)
        .args([serve.port.to_string(), "300".into()])
        .output()
        .expect("python3");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("fetch/expunge race: {text}");
    assert!(out.status.success(), "{text}");
}
